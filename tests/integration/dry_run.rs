//! `--dry-run` of `start`, `bump` and `doctor --fix`: the file diff and the PM2 operations are
//! printed, and nothing changes: PM2's apps (pids, statuses, restarts, ports), the ecosystem
//! files, buildflowz.toml, the registry, its copy and `dump.pm2` are as they were, byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

/// Everything a command could change: PM2's apps as `pm2 jlist` shows them (name, pid, status,
/// restarts, port), and the bytes of the given files and of pm2-port's and PM2's state files.
#[derive(Debug, PartialEq)]
struct Snapshot {
    pm2: Vec<Value>,
    files: Vec<(PathBuf, Option<Vec<u8>>)>,
    state_dir: Vec<String>,
}

fn snapshot(sb: &Sandbox, files: &[PathBuf]) -> Snapshot {
    let pm2 = if sb.daemon_running() {
        sb.jlist()
            .iter()
            .map(|a| {
                json!([
                    a["name"],
                    a["pm_id"],
                    a["pid"],
                    a["pm2_env"]["status"],
                    a["pm2_env"]["restart_time"],
                    a["pm2_env"]["env"]["PORT"]
                ])
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut all: Vec<PathBuf> = files.to_vec();
    all.push(sb.state.join("registry.json"));
    all.push(sb.state.join("registry.backup.json"));
    all.push(sb.home.join("dump.pm2"));
    let mut state_dir: Vec<String> = fs::read_dir(&sb.state)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    state_dir.sort();
    Snapshot {
        pm2,
        files: all
            .into_iter()
            .map(|f| (f.clone(), fs::read(&f).ok()))
            .collect(),
        state_dir,
    }
}

/// A project's ecosystem file and buildflowz.toml.
fn project_files(dirs: &[&Path]) -> Vec<PathBuf> {
    dirs.iter()
        .flat_map(|d| [d.join("ecosystem.config.cjs"), d.join("buildflowz.toml")])
        .collect()
}

/// The lines of stdout from `PM2 operations:` (or `PM2: nothing to do`) on.
fn ops_section(stdout: &str) -> String {
    let at = stdout
        .find("PM2 operations:\n")
        .or_else(|| stdout.find("PM2: nothing to do\n"))
        .unwrap_or_else(|| panic!("no operations in: {stdout}"));
    stdout[at..].to_string()
}

fn file_of(dir: &Path) -> String {
    dir.join("ecosystem.config.cjs")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn start_dry_run_prints_the_operations_and_changes_nothing() {
    let sb = Sandbox::new();
    let shop = sb.fixture_as("http-app", "shop");
    let blog = sb.fixture_as("http-app", "blog");
    let p0 = sb.port(0);

    // No daemon yet: the plan starts one, but the dry run does not, and writes nothing.
    let out = sb.run(["start", blog.to_str().unwrap(), "--dry-run"]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(
        ops_section(&out.stdout()),
        format!(
            "PM2 operations:\n  pm2 start {} --only blog\n  wait for `blog` to listen on port {p0} (timeout 60s)\n  pm2 save\n",
            file_of(&blog)
        )
    );
    assert!(
        out.stdout().contains("+++ b/ecosystem.config.cjs\n"),
        "{}",
        out.stdout()
    );
    assert!(!sb.home.join("rpc.sock").exists(), "a daemon was started");
    assert!(!sb.daemon_running());
    assert!(!blog.join("ecosystem.config.cjs").exists());
    assert!(!sb.state.join("registry.json").exists());

    sb.run(["start", shop.to_str().unwrap(), "--json"]).json();
    let files = project_files(&[&shop, &blog]);
    let before = snapshot(&sb, &files);
    assert_eq!(before.pm2.len(), 1);

    // Online on its port with an unchanged file: nothing to do.
    let out = sb.run(["start", shop.to_str().unwrap(), "--dry-run"]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(ops_section(&out.stdout()), "PM2: nothing to do\n");
    assert!(
        out.stderr()
            .contains(&format!("`shop` is already online on port {p0}")),
        "{}",
        out.stderr()
    );
    let report = sb
        .run(["start", shop.to_str().unwrap(), "--dry-run", "--json"])
        .json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["changed"], false);
    assert_eq!(report["operations"], json!([]));

    // A changed file: PM2's app is deleted and started anew from it.
    fs::write(shop.join("buildflowz.toml"), "[env]\nGREETING = \"hi\"\n").unwrap();
    let files = project_files(&[&shop, &blog]);
    let before = Snapshot {
        files: snapshot(&sb, &files).files,
        ..before
    };
    let out = sb.run(["start", shop.to_str().unwrap(), "--dry-run"]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(
        ops_section(&out.stdout()),
        format!(
            "PM2 operations:\n  pm2 delete shop\n  pm2 start {} --only shop\n  wait for `shop` to listen on port {p0} (timeout 60s)\n  pm2 save\n",
            file_of(&shop)
        )
    );
    assert!(
        out.stdout().contains("+      \"GREETING\": \"hi\"\n"),
        "{}",
        out.stdout()
    );
    let out = sb.run([
        "start",
        shop.to_str().unwrap(),
        "--dry-run",
        "--json",
        "--timeout",
        "7",
    ]);
    let report = out.json();
    assert_eq!(report["changed"], true);
    assert_eq!(report["apps"][0]["port"], p0);
    assert_eq!(
        report["operations"],
        json!([
            {"op": "delete", "name": "shop"},
            {"op": "start", "name": "shop", "file": file_of(&shop)},
            {"op": "wait-listening", "name": "shop", "port": p0, "timeout": 7},
            {"op": "save"},
        ])
    );
    // The diff goes to stderr, so that stdout stays one JSON object.
    assert!(
        out.stderr().contains("+      \"GREETING\": \"hi\"\n"),
        "{}",
        out.stderr()
    );

    // Another project PM2 does not know, with the daemon running: started, awaited, saved.
    let report = sb
        .run(["start", blog.to_str().unwrap(), "--dry-run", "--json"])
        .json();
    assert_eq!(report["apps"][0]["port"], sb.port(1));
    assert_eq!(
        report["operations"],
        json!([
            {"op": "start", "name": "blog", "file": file_of(&blog)},
            {"op": "wait-listening", "name": "blog", "port": sb.port(1), "timeout": 60},
            {"op": "save"},
        ])
    );

    assert_eq!(snapshot(&sb, &files), before, "a dry run changed something");
    assert!(!blog.join("ecosystem.config.cjs").exists());
}

#[test]
fn bump_dry_run_prints_the_pm2_steps_and_changes_nothing() {
    let sb = Sandbox::new();
    let shop = sb.fixture_as("http-app", "shop");
    let paused = sb.fixture_as("http-app", "paused");
    sb.run(["start", shop.to_str().unwrap(), "--json"]).json();
    sb.run(["start", paused.to_str().unwrap(), "--json"]).json();
    sb.pm2(["stop", "paused"]);
    sb.pm2(["save"]);
    let (p0, p1, p2) = (sb.port(0), sb.port(1), sb.port(2));
    let files = project_files(&[&shop, &paused]);
    let before = snapshot(&sb, &files);
    assert_eq!(before.pm2.len(), 2);

    // Online: re-applied, awaited on the new port, the old one checked for orphans.
    let out = sb.run(["bump", shop.to_str().unwrap(), "--dry-run"]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert!(
        out.stdout()
            .contains(&format!("-      PORT: {p0}\n+      PORT: {p2}\n")),
        "{}",
        out.stdout()
    );
    assert_eq!(
        ops_section(&out.stdout()),
        format!(
            "PM2 operations:\n  pm2 delete shop\n  pm2 start {} --only shop\n  pm2 save\n  wait for `shop` to listen on port {p2} (timeout 60s)\n  wait for old port {p0} of `shop` to be released (5s), else name its holder\n",
            file_of(&shop)
        )
    );
    let report = sb
        .run(["bump", shop.to_str().unwrap(), "--dry-run", "--json"])
        .json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["apps"][0]["port"], p2);
    assert_eq!(report["apps"][0]["previous_port"], p0);
    assert_eq!(
        report["operations"],
        json!([
            {"op": "delete", "name": "shop"},
            {"op": "start", "name": "shop", "file": file_of(&shop)},
            {"op": "save"},
            {"op": "wait-listening", "name": "shop", "port": p2, "timeout": 60},
            {"op": "check-orphans", "name": "shop", "port": p0, "within": 5},
        ])
    );

    // Stopped: re-applied, stopped again, and its new port must stay closed.
    let report = sb
        .run(["bump", paused.to_str().unwrap(), "--dry-run", "--json"])
        .json();
    assert_eq!(report["apps"][0]["previous_port"], p1);
    assert_eq!(
        report["operations"],
        json!([
            {"op": "delete", "name": "paused"},
            {"op": "start", "name": "paused", "file": file_of(&paused)},
            {"op": "stop", "name": "paused"},
            {"op": "save"},
            {"op": "wait-closed", "name": "paused", "port": p2, "within": 10},
        ])
    );

    // `--no-restart` leaves PM2 alone.
    let report = sb
        .run([
            "bump",
            shop.to_str().unwrap(),
            "--dry-run",
            "--no-restart",
            "--json",
        ])
        .json();
    assert_eq!(report["operations"], json!([]));

    assert_eq!(snapshot(&sb, &files), before, "a dry run changed something");
}

#[test]
fn doctor_fix_dry_run_prints_each_fix_and_changes_nothing() {
    let sb = Sandbox::new();
    let shop = sb.fixture_as("http-app", "shop");
    // shop listens on [::1] only, so that a hand-started app can take 127.0.0.1 on the same port.
    fs::write(shop.join("buildflowz.toml"), "[env]\nHOST = \"::1\"\n").unwrap();
    let p0 = sb.port(0);
    sb.run(["start", shop.to_str().unwrap(), "--json"]).json();
    // An app started by hand on shop's port: a conflict.
    sb.start_rogue(p0);
    // A pm2-port app whose command listens elsewhere than assigned: drift.
    let blog = sb.fixture_as("http-app", "blog");
    let q = sb.port(7);
    fs::write(
        blog.join("buildflowz.toml"),
        format!("command = \"HOST=127.0.0.1 PORT={q} node server.js\"\n"),
    )
    .unwrap();
    sb.run(["init", blog.to_str().unwrap(), "--json"]).json();
    sb.pm2(["start", blog.join("ecosystem.config.cjs").to_str().unwrap()]);
    wait_for(20, "blog on its own port", || http_get("127.0.0.1", q));
    sb.pm2(["save"]);
    let p1 = sb.port(1);
    let p2 = sb.port(2);
    let files = project_files(&[&shop, &blog]);
    let before = snapshot(&sb, &files);
    assert_eq!(before.pm2.len(), 3);

    let out = sb.run(["doctor", "--fix", "--dry-run", "--json"]);
    assert_eq!(out.code(), 1, "{}\n{}", out.stdout(), out.stderr());
    let report: Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(report["healthy"], false);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report.get("remaining"), None);
    assert_eq!(
        report["findings"],
        json!([
            {"kind": "conflict", "port": p0, "apps": ["rogue", "shop"]},
            {"kind": "drift", "app": "blog", "port": p1, "listening": [q]},
        ])
    );
    let fixes = report["fixes"].as_array().unwrap();
    assert_eq!(fixes.len(), 2, "{report}");
    assert_eq!(fixes[0]["configure"]["apps"][0]["port"], p2);
    assert_eq!(fixes[0]["configure"]["dry_run"], true);
    assert_eq!(fixes[1]["configure"]["apps"][0]["port"], q);
    let without_configure = |f: &Value| {
        let mut f = f.clone();
        f.as_object_mut().unwrap().remove("configure");
        f
    };
    assert_eq!(
        without_configure(&fixes[0]),
        json!({"action": "bump", "app": "shop", "dir": shop.to_str().unwrap(), "port": p0,
        "operations": [
            {"op": "delete", "name": "shop"},
            {"op": "start", "name": "shop", "file": file_of(&shop)},
            {"op": "save"},
            {"op": "wait-listening", "name": "shop", "port": p2, "timeout": 60},
            {"op": "check-orphans", "name": "shop", "port": p0, "within": 5},
        ]})
    );
    assert_eq!(
        without_configure(&fixes[1]),
        json!({"action": "adopt", "app": "blog", "dir": blog.to_str().unwrap(), "from": p1, "to": q,
        "operations": [
            {"op": "delete", "name": "blog"},
            {"op": "start", "name": "blog", "file": file_of(&blog)},
            {"op": "save"},
            {"op": "wait-listening", "name": "blog", "port": q, "timeout": 60},
            {"op": "check-orphans", "name": "blog", "port": p1, "within": 5},
        ]})
    );

    let out = sb.run(["doctor", "--fix", "--dry-run"]);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    let text = out.stdout();
    let shop_file = file_of(&shop);
    let blog_file = file_of(&blog);
    let expected_tail = format!(
        "PM2 operations:\n  pm2 delete shop\n  pm2 start {shop_file} --only shop\n  pm2 save\n  wait for `shop` to listen on port {p2} (timeout 60s)\n  wait for old port {p0} of `shop` to be released (5s), else name its holder\n"
    );
    assert!(
        text.starts_with(&format!(
            "found 2 problem(s):\n  conflict: port {p0} claimed by rogue, shop\n  drift: `blog` assigned {p1}, listening on {q}\nwould fix: move `shop` off port {p0} to {p2}\n--- a/ecosystem.config.cjs\n"
        )),
        "{text}"
    );
    assert!(text.contains(&expected_tail), "{text}");
    assert!(
        text.ends_with(&format!(
            "would fix: record port {q} for `blog`, which listens there (was {p1})\n--- a/ecosystem.config.cjs\n+++ b/ecosystem.config.cjs\n@@ -8,7 +8,7 @@\n     script: \"bash\",\n     args: [\"-c\", \"HOST=127.0.0.1 PORT={q} node server.js\"],\n     env: {{\n-      PORT: {p1}\n+      PORT: {q}\n     }},\n     autorestart: true,\n     watch: false\nPM2 operations:\n  pm2 delete blog\n  pm2 start {blog_file} --only blog\n  pm2 save\n  wait for `blog` to listen on port {q} (timeout 60s)\n  wait for old port {p1} of `blog` to be released (5s), else name its holder\ndry run: nothing was changed\n"
        )),
        "{text}"
    );

    assert_eq!(snapshot(&sb, &files), before, "a dry run changed something");
    // `--dry-run` is for `--fix`.
    let err = sb.run(["doctor", "--dry-run"]).fails(2);
    assert!(err.contains("--fix"), "{err}");
}
