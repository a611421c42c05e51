//! Real frameworks, run for real (issue 11, point 9): each project of `fixtures/live/` (its
//! versions pinned by its package-lock.json, installed by tests/run.sh) is started under PM2 by
//! `pm2-port start` with nothing but its manifests to go on, and the page on the allocated port
//! must be that framework's page with the project's own content.
//!
//! Run just these: `bash tests/live.sh` (installs what they need, then
//! `cargo test --test integration live::`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// `fixtures/live/NAME` copied into the sandbox, its `node_modules` (installed by tests/run.sh)
/// hard-linked rather than copied or symlinked: dev servers resolve files to their real path and
/// refuse, or fail to compile, those outside the project (Turbopack, Vite's `server.fs`).
fn live_project(sb: &Sandbox, name: &str) -> PathBuf {
    let fixture = fixtures().join("live").join(name);
    let install = format!(
        "run `npm ci --prefix fixtures/live/{name}` (bash tests/run.sh and tests/live.sh do)"
    );
    let modules = fixture.join("node_modules");
    assert!(
        modules.is_dir(),
        "fixtures/live/{name} is not installed: {install}"
    );
    // A stale install is a failure too: every pinned package at its pinned version.
    let manifest: Value =
        serde_json::from_str(&fs::read_to_string(fixture.join("package.json")).unwrap()).unwrap();
    for deps in ["dependencies", "devDependencies"] {
        for (dep, pinned) in manifest[deps].as_object().into_iter().flatten() {
            let installed = fs::read_to_string(modules.join(dep).join("package.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .map(|p| p["version"].clone());
            assert_eq!(
                installed.as_ref(),
                Some(pinned),
                "{dep} in fixtures/live/{name}: {install}"
            );
        }
    }
    let dir = sb.dir(name);
    for entry in fs::read_dir(&fixture).unwrap().flatten() {
        let file = entry.file_name();
        if file == "node_modules" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dir.join(&file));
        } else {
            fs::copy(entry.path(), dir.join(&file)).unwrap();
        }
    }
    link_tree(&modules, &dir.join("node_modules"));
    dir
}

/// `to` as a tree of hard links to the files of `from` (copies where the file system refuses a
/// link), its symlinks recreated as they are.
fn link_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let ty = entry.file_type().unwrap();
        let dest = to.join(entry.file_name());
        if ty.is_dir() {
            link_tree(&entry.path(), &dest);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else if fs::hard_link(entry.path(), &dest).is_err() {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// `pm2-port start DIR --json`, with the frameworks' calls home turned off (this machine reaches
/// no such host, and tests send nothing off it): the report.
fn start(sb: &Sandbox, dir: &Path) -> Value {
    let out = sb
        .cmd(["start", dir.to_str().unwrap(), "--json", "--timeout", "120"])
        .env("NEXT_TELEMETRY_DISABLED", "1")
        .env("STORYBOOK_DISABLE_TELEMETRY", "1")
        // Storybook skips its version check on CI.
        .env("CI", "true")
        .output()
        .unwrap();
    Run(out).json()
}

/// GET `path` on the app's port (IPv6 or IPv4 loopback, whichever it listens on).
fn get(port: u16, path: &str) -> (u16, String) {
    let wait = Duration::from_secs(60);
    http_request("[::1]", port, path, wait)
        .or_else(|| http_request("127.0.0.1", port, path, wait))
        .unwrap_or_else(|| panic!("nothing answered GET {path} on port {port}"))
}

/// The start of a page, for a message.
fn short(page: &str) -> String {
    match page.char_indices().nth(600) {
        Some((at, _)) => format!("{}…", &page[..at]),
        None => page.to_string(),
    }
}

/// GET `path` on `port`: it must answer 200 with a body holding every one of `needles`; the body.
fn expect(port: u16, path: &str, needles: &[&str], report: &Value) -> String {
    let (status, body) = get(port, path);
    assert_eq!(
        status,
        200,
        "GET {path} on port {port}: {}\npm2-port start: {report}",
        short(&body)
    );
    for needle in needles {
        assert!(
            body.contains(needle),
            "GET {path} on port {port} has no {needle:?}: {}\npm2-port start: {report}",
            short(&body)
        );
    }
    body
}

/// The app's report, its port (the first of the sandbox's range) checked.
fn the_app(sb: &Sandbox, report: &Value) -> (Value, u16) {
    let app = report["apps"][0].clone();
    assert_eq!(app["port"], sb.port(0), "{report}");
    (app, sb.port(0))
}

#[test]
fn vitepress_serves_the_site_in_docs_through_its_docs_dev_script() {
    let sb = Sandbox::new();
    let dir = live_project(&sb, "vitepress");
    let report = start(&sb, &dir);
    let (app, port) = the_app(&sb, &report);

    expect(port, "/", &["/vitepress/dist/client/app/index.js"], &report);
    // VitePress renders in the browser: the site's title is in its site data (from
    // docs/.vitepress/config.mjs), the page's in the module compiled from the fixture's
    // vitepress/docs/index.md. Served from anywhere but docs/, neither is there.
    expect(
        port,
        "/@siteData",
        &[r#"\"title\":\"Harbour Lights Handbook\""#],
        &report,
    );
    expect(port, "/index.md", &["Keeping the lamps lit"], &report);

    assert_eq!(app["framework"], "vitepress", "{report}");
    assert_eq!(
        app["command"],
        format!("npm run docs:dev -- --port {port} --strictPort"),
        "{report}"
    );
    listens_on_loopback_only(&sb, &report);
}

#[test]
fn a_storybook_only_project_serves_storybook_on_its_port() {
    let sb = Sandbox::new();
    let dir = live_project(&sb, "storybook");
    let report = start(&sb, &dir);
    let (app, port) = the_app(&sb, &report);

    // Storybook's manager page; bare Vite would answer 404 here (the project has no index.html).
    expect(
        port,
        "/",
        &[" - Storybook</title>", "./sb-manager/runtime.js"],
        &report,
    );
    // The project's own story is indexed.
    expect(port, "/index.json", &["\"harbour-lamp--lit\""], &report);

    assert_eq!(app["framework"], "storybook", "{report}");
    // Its `storybook` script pins port 6006: Storybook runs directly, or the script with the
    // allocated port in its place.
    assert_eq!(
        app["command"],
        format!("npx storybook dev -p {port} --ci --exact-port"),
        "{report}"
    );
    listens_on_loopback_only(&sb, &report);
}

#[test]
fn next_serves_its_app_router_page_on_the_port_it_reads_from_port() {
    let sb = Sandbox::new();
    let dir = live_project(&sb, "next");
    let report = start(&sb, &dir);
    let (app, port) = the_app(&sb, &report);

    expect(
        port,
        "/",
        &[
            "<title>Tide Tables</title>",
            "<h1>High water at the harbour mouth</h1>",
            "/_next/static/",
        ],
        &report,
    );

    assert_eq!(app["framework"], "next", "{report}");
    assert_eq!(app["command"], "npm run dev -- -H 127.0.0.1", "{report}");
    // `next dev` listens on every interface unless told: here it is on loopback only.
    listens_on_loopback_only(&sb, &report);
}

/// `doctor` finds nothing: in particular the app is not `exposed` beyond loopback.
fn listens_on_loopback_only(sb: &Sandbox, report: &Value) {
    let out = sb.run(["doctor", "--json"]);
    let doctor = out.json();
    assert_eq!(
        doctor["findings"],
        serde_json::json!([]),
        "{doctor}\n{report}"
    );
    assert_eq!(out.code(), 0, "{doctor}");
}
