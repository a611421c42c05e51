//! `doctor`: healthy servers, conflicts, drift, orphans, and working without a daemon.

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
    let rogue = sb.fixture_as("http-app", "rogue");
    sb.pm2_with_env(
        [
            "start",
            rogue.join("server.js").to_str().unwrap(),
            "--name",
            "rogue",
        ],
        &[
            ("PORT", p0.to_string()),
            ("HOST", "127.0.0.1".to_string()),
            ("APP_NAME", "rogue".into()),
        ],
    );
    wait_for(20, "rogue", || {
        http_get("127.0.0.1", p0).filter(|b| b.contains("rogue"))
    });
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
