//! `doctor`: healthy servers, conflicts, drift, orphans, exposed apps, and working without a
//! daemon.

use std::fs;

use serde_json::{Value, json};

use crate::support::*;

fn doctor(sb: &Sandbox, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["doctor", "--json"];
    all.extend_from_slice(args);
    let out = sb.run(&all);
    let json = serde_json::from_str(&out.stdout())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout(), out.stderr()));
    (out.code(), json)
}

#[test]
fn healthy_then_conflict_and_drift_then_fixed() {
    let sb = Sandbox::new();
    let shop = sb.fixture_as("http-app", "shop");
    // shop listens on [::1] only, so that a hand-started app can take 127.0.0.1 on the same port.
    fs::write(shop.join("buildflowz.toml"), "[env]\nHOST = \"::1\"\n").unwrap();
    let p0 = sb.port(0);
    sb.run(["start", shop.to_str().unwrap(), "--json"]).json();
    assert_eq!(
        doctor(&sb, &[]),
        (0, json!({"healthy": true, "findings": []}))
    );

    // An app started by hand on shop's port.
    sb.start_rogue(p0);
    // A pm2-port app whose command listens elsewhere than assigned.
    let blog = sb.fixture_as("http-app", "blog");
    let q = sb.port(7);
    fs::write(
        blog.join("buildflowz.toml"),
        format!("command = \"HOST=127.0.0.1 PORT={q} node server.js\"\n"),
    )
    .unwrap();
    let assigned =
        sb.run(["init", blog.to_str().unwrap(), "--json"]).json()["apps"][0]["port"].clone();
    assert_eq!(assigned, sb.port(1));
    sb.pm2(["start", blog.join("ecosystem.config.cjs").to_str().unwrap()]);
    wait_for(20, "blog on its own port", || http_get("127.0.0.1", q));

    let (code, report) = doctor(&sb, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        report,
        json!({"healthy": false, "findings": [
            {"kind": "conflict", "port": p0, "apps": ["rogue", "shop"]},
            {"kind": "drift", "app": "blog", "port": sb.port(1), "listening": [q]},
        ]})
    );

    // The plain report offers what `--fix` does, and leaves nothing of it to the user.
    let human = sb.run(["doctor"]);
    assert_eq!(human.code(), 1);
    assert_eq!(
        human.stdout(),
        format!(
            "found 2 problem(s):\n  conflict: port {p0} claimed by rogue, shop\n  drift: `blog` assigned {p1}, listening on {q}\n`pm2-port doctor --fix` would:\n  move `shop` off port {p0}\n  record port {q} for `blog`, which listens there (was {p1})\n",
            p1 = sb.port(1)
        )
    );

    let (code, report) = doctor(&sb, &["--fix"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["healthy"], true);
    assert_eq!(report["remaining"], json!([]));
    assert_eq!(
        report["fixes"],
        json!([
            {"action": "bump", "app": "shop", "dir": shop.to_str().unwrap(), "port": p0, "ok": true},
            {"action": "adopt", "app": "blog", "dir": blog.to_str().unwrap(), "from": sb.port(1), "to": q, "ok": true},
        ])
    );
    assert_eq!(
        doctor(&sb, &[]),
        (0, json!({"healthy": true, "findings": []}))
    );
    // shop moved to the lowest free port; rogue kept its own.
    let moved = sb.port(2);
    assert_eq!(
        http_get("[::1]", moved).unwrap(),
        format!("hello from http-app on {moved}\n")
    );
    assert!(http_get("127.0.0.1", p0).unwrap().contains("rogue"));
}

#[test]
fn an_orphan_left_after_stop_is_reported_with_its_pid() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "web");
    // Like Next.js: the server runs in a child that PM2's process tree loses track of.
    fs::write(
        dir.join("buildflowz.toml"),
        "command = \"(node server.js &); exec sleep 100000\"\n",
    )
    .unwrap();
    let port = sb.port(0);
    sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    sb.pm2(["start", dir.join("ecosystem.config.cjs").to_str().unwrap()]);
    wait_for(20, "the server", || http_get("127.0.0.1", port));
    sb.pm2(["stop", "web"]);
    assert!(
        http_get("127.0.0.1", port).is_some(),
        "the orphan should outlive the stop"
    );

    let (code, report) = doctor(&sb, &[]);
    assert_eq!(code, 1, "{report}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    let pid = findings[0]["pid"].as_u64().unwrap();
    assert_eq!(
        findings[0],
        json!({"kind": "orphan", "port": port, "app": "web", "pid": pid, "command": "node server.js"})
    );
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(String::from_utf8_lossy(&cmdline), "node\0server.js\0");

    let human = sb.run(["doctor"]);
    assert_eq!(human.code(), 1);
    assert!(
        human
            .stdout()
            .contains(&format!("stop it with `kill {pid}`")),
        "{}",
        human.stdout()
    );
}

#[test]
fn list_and_doctor_work_from_dump_without_starting_a_daemon() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "api");
    sb.run(["start", dir.to_str().unwrap(), "--json"]).json();
    sb.pm2(["kill"]);
    assert!(!sb.home.join("rpc.sock").exists());

    let list = sb.run(["list", "--json"]).json();
    assert_eq!(
        list,
        json!([{"name": "api", "port": sb.port(0), "status": "saved", "cwd": dir.to_str().unwrap(),
                "sources": ["pm2", "registry", "ecosystem"], "conflicts": []}])
    );
    assert_eq!(
        doctor(&sb, &[]),
        (0, json!({"healthy": true, "findings": []}))
    );
    assert!(!sb.home.join("rpc.sock").exists(), "a daemon was started");
    assert!(!sb.daemon_running());
}

#[test]
fn a_cluster_mode_app_whose_socket_pm2_holds_is_healthy() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "clu");
    let port = sb.port(0);
    sb.pm2_with_env(
        [
            "start",
            dir.join("server.js").to_str().unwrap(),
            "-i",
            "2",
            "--name",
            "clu",
        ],
        &[("PORT", port.to_string())],
    );
    wait_for(20, "the cluster", || http_get("127.0.0.1", port));
    // Two instances of one app on one port, the socket held by PM2's daemon: nothing to report.
    assert_eq!(
        doctor(&sb, &[]),
        (0, json!({"healthy": true, "findings": []}))
    );
    let list = sb.run(["list", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|r| r["conflicts"] == json!([]))
    );
}

/// What `doctor` prints for one exposed app, advice included.
fn exposed_report(app: &str, address: &str, port: u16, dir: &std::path::Path) -> String {
    let config = dir.join("buildflowz.toml");
    format!(
        "found 1 problem(s):\n  exposed: `{app}` listens on {address} (port {port}), beyond loopback\nleft for you:\n  other machines can reach `{app}` on port {port}, while the tunnel needs only 127.0.0.1: make it listen there (the framework's host flag, such as `--host 127.0.0.1`, in its `command` in `{}`, or the address its code gives `listen`), then `pm2-port start {}`; or, to keep it open on purpose, set `host = \"0.0.0.0\"` in that file\n",
        config.display(),
        dir.display()
    )
}

/// PM2's view of its apps that a pm2-port command must not change: name, pid, status, restarts.
fn pm2_state(sb: &Sandbox) -> Vec<Value> {
    sb.jlist()
        .iter()
        .map(|a| {
            json!([
                a["name"],
                a["pid"],
                a["pm2_env"]["status"],
                a["pm2_env"]["restart_time"],
                a["pm2_env"]["env"]["PORT"]
            ])
        })
        .collect()
}

#[test]
fn an_app_on_every_address_is_exposed_until_it_binds_loopback_or_host_says_so() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "web");
    let toml = dir.join("buildflowz.toml");
    let config = toml.to_str().unwrap();
    // The app's own code picks the address, whatever pm2-port passes.
    fs::write(&toml, "command = \"HOST=0.0.0.0 node server.js\"\n").unwrap();
    let port = sb.port(0);
    sb.run(["start", dir.to_str().unwrap(), "--json"]).json();
    let exposed = json!({"kind": "exposed", "app": "web", "port": port, "addresses": ["0.0.0.0"],
                         "config": config});
    assert_eq!(
        doctor(&sb, &[]),
        (1, json!({"healthy": false, "findings": [exposed]}))
    );
    let human = sb.run(["doctor"]);
    assert_eq!(human.code(), 1, "{}", human.stderr());
    assert_eq!(human.stdout(), exposed_report("web", "0.0.0.0", port, &dir));

    // --fix leaves the address to the user: PM2 is not touched.
    let before = pm2_state(&sb);
    let (code, report) = doctor(&sb, &["--fix"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["fixes"], json!([]));
    assert_eq!(report["remaining"], json!([exposed]));
    assert_eq!(pm2_state(&sb), before);

    // `host` acknowledges the exposure: an unspecified address any address, a loopback one none.
    for (host, code) in [
        ("0.0.0.0", 0),
        ("::", 0),
        ("127.0.0.1", 1),
        ("192.0.2.1", 1),
    ] {
        fs::write(
            &toml,
            format!("command = \"HOST=0.0.0.0 node server.js\"\nhost = \"{host}\"\n"),
        )
        .unwrap();
        let (got, report) = doctor(&sb, &[]);
        assert_eq!(got, code, "host = {host}: {report}");
        let findings = if code == 0 {
            json!([])
        } else {
            json!([exposed])
        };
        assert_eq!(report["findings"], findings, "host = {host}");
    }
    let last = sb.run(["doctor"]);
    assert_eq!(
        (last.code(), last.stderr().as_str()),
        (1, ""),
        "{}",
        last.stdout()
    );

    // The same app bound to loopback: nothing to report.
    fs::write(&toml, "command = \"HOST=127.0.0.1 node server.js\"\n").unwrap();
    sb.run(["start", dir.to_str().unwrap(), "--json"]).json();
    assert_eq!(
        http_get("127.0.0.1", port).unwrap(),
        format!("hello from http-app on {port}\n")
    );
    assert_eq!(
        doctor(&sb, &[]),
        (0, json!({"healthy": true, "findings": []}))
    );
    assert_eq!(
        sb.run(["doctor"]).stdout(),
        "healthy: no conflicts, drift, orphans, mismatches or exposed apps\n"
    );
}

#[test]
fn apps_of_a_monorepo_are_exposed_each_and_host_in_their_table_acknowledges_one() {
    let sb = Sandbox::new();
    let dir = sb.fixture("monorepo");
    let toml = dir.join("buildflowz.toml");
    let apps = "[[apps]]\ndir = \"packages/web\"\n\n[[apps]]\nname = \"mono-api\"\ndir = \"packages/api\"\nHOST_LINE\n[[apps]]\ndir = \"packages/admin\"\n";
    // The servers listen on `::` (Node's every address, IPv4 and IPv6), as their code says.
    let write = |top: &str, api_host: &str| {
        fs::write(
            &toml,
            format!(
                "{top}[env]\nHOST = \"::\"\n\n{}",
                apps.replace("HOST_LINE", api_host)
            ),
        )
        .unwrap()
    };
    write("", "");
    sb.run(["start", dir.to_str().unwrap(), "--json"]).json();
    let exposed = |app: &str, i: u16| {
        json!({"kind": "exposed", "app": app, "port": sb.port(i), "addresses": ["::"],
               "config": toml.to_str().unwrap()})
    };
    let (code, report) = doctor(&sb, &[]);
    assert_eq!(code, 1, "{report}");
    let mut findings = report["findings"].as_array().unwrap().clone();
    findings.sort_by_key(|f| f["port"].as_u64());
    assert_eq!(
        findings,
        [
            exposed("web", 0),
            exposed("mono-api", 1),
            exposed("admin", 2)
        ]
    );

    // In mono-api's table (found by its name), then on top for every app (web and admin found by
    // their directories).
    write("", "host = \"0.0.0.0\"\n");
    let (code, report) = doctor(&sb, &[]);
    assert_eq!(code, 1, "{report}");
    let mut findings = report["findings"].as_array().unwrap().clone();
    findings.sort_by_key(|f| f["port"].as_u64());
    assert_eq!(findings, [exposed("web", 0), exposed("admin", 2)]);
    write("host = \"::\"\n", "host = \"127.0.0.1\"\n");
    assert_eq!(
        doctor(&sb, &[]),
        (
            1,
            json!({"healthy": false, "findings": [exposed("mono-api", 1)]})
        )
    );
    write("host = \"::\"\n", "");
    assert_eq!(
        doctor(&sb, &[]),
        (0, json!({"healthy": true, "findings": []}))
    );
}

#[test]
fn a_host_that_is_not_an_address_is_refused_and_doctor_says_so() {
    let sb = Sandbox::new();
    sb.start_foreign_app("other", sb.port(5));
    let dir = sb.fixture_as("http-app", "web");
    let toml = dir.join("buildflowz.toml");
    let state = || {
        (
            pm2_state(&sb),
            fs::read(sb.home.join("dump.pm2")).ok(),
            fs::read(sb.state.join("registry.json")).ok(),
        )
    };
    let before = state();
    fs::write(
        &toml,
        "command = \"HOST=0.0.0.0 node server.js\"\nhost = \"everywhere\"\n",
    )
    .unwrap();
    let err = sb.run(["start", dir.to_str().unwrap()]).fails(2);
    assert_eq!(
        err,
        format!(
            "error: `{}`:2:8: `host = \"everywhere\"` is not an IP address; write one, like \"127.0.0.1\" (this machine only, the default) or \"0.0.0.0\" (every address: other machines reach the app)\n",
            toml.display()
        )
    );
    assert!(!dir.join("ecosystem.config.cjs").exists());
    assert_eq!(state(), before, "PM2 or the registry changed");

    // A project configured before its file went bad: doctor goes on, warns, and takes no `host`.
    fs::write(
        &toml,
        "command = \"HOST=0.0.0.0 node server.js\"\nhost = \"0.0.0.0\"\n",
    )
    .unwrap();
    sb.run(["start", dir.to_str().unwrap(), "--json"]).json();
    assert_eq!(
        doctor(&sb, &[]),
        (0, json!({"healthy": true, "findings": []}))
    );
    fs::write(
        &toml,
        "command = \"HOST=0.0.0.0 node server.js\"\nhost = \"0.0.0.0/0\"\n",
    )
    .unwrap();
    let out = sb.run(["doctor"]);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    assert_eq!(
        out.stdout(),
        exposed_report("web", "0.0.0.0", sb.port(0), &dir)
    );
    assert_eq!(
        out.stderr(),
        format!(
            "warning: `{}`:2:8: `host = \"0.0.0.0/0\"` is not an IP address; write one, like \"127.0.0.1\" (this machine only, the default) or \"0.0.0.0\" (every address: other machines reach the app) (doctor examines the apps of `{}` as if it set no `host`)\n",
            toml.display(),
            dir.display()
        )
    );
}

/// `doctor --fix` re-applies a file PM2 then refuses (a `uid` that names nobody, with an escape
/// sequence in it): the report says which fix failed and that the app is gone from PM2's list,
/// and no escape sequence of PM2's message reaches the terminal.
#[test]
fn a_failed_reapply_says_the_app_is_gone_and_prints_no_escape() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "esc");
    sb.run(["start", dir.to_str().unwrap(), "--json"]).json();
    fs::write(
        dir.join("buildflowz.toml"),
        "[pm2]\nuid = \"nosuch\\u001b]0;PWNED\\u0007\"\n",
    )
    .unwrap();
    sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    // The file now says another port than PM2's copy: a mismatch, which --fix re-applies.
    let file = dir.join("ecosystem.config.cjs");
    let (p0, p5) = (sb.port(0), sb.port(5));
    let text = fs::read_to_string(&file).unwrap();
    fs::write(
        &file,
        text.replace(&format!("PORT: {p0}"), &format!("PORT: {p5}")),
    )
    .unwrap();

    let out = sb.run(["doctor", "--fix"]);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    let said = out.stdout();
    assert!(!said.contains('\x1b'), "{said:?}");
    let failed = said
        .lines()
        .find(|l| l.starts_with("could not re-apply"))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        failed.starts_with(&format!(
            "could not re-apply `{}` to PM2 for `esc`: `esc` is no longer in PM2's list: once its file is right, `pm2-port start {}` starts it again: ",
            file.display(),
            dir.display()
        )),
        "{failed}"
    );
    assert!(failed.contains(r"nosuch\e]0;PWNED\u{7}"), "{failed}");
    assert!(sb.jlist().is_empty());
}
