//! `bump` on a running app, and socket owners: a foreign listener moves a project, its own app
//! does not.

use std::fs;

use crate::support::*;

#[test]
fn bump_moves_a_running_app_and_releases_the_old_port() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "shop");
    let old = sb.port(0);
    let new = sb.port(1);
    assert_eq!(
        sb.run(["init", dir.to_str().unwrap(), "--json"]).json()["apps"][0]["port"],
        old
    );
    let file = dir.join("ecosystem.config.cjs");
    sb.pm2(["start", file.to_str().unwrap()]);
    wait_for(30, "the app on the old port", || http_get("127.0.0.1", old));

    let report = sb.run(["bump", dir.to_str().unwrap(), "--json"]).json();
    assert_eq!(report["apps"][0]["port"], new);
    assert_eq!(report["apps"][0]["previous_port"], old);
    assert_eq!(report["changed"], true);

    // bump returns once the app listens on its new port.
    assert_eq!(
        http_get("127.0.0.1", new).unwrap(),
        format!("hello from http-app on {new}\n")
    );
    assert!(http_get("127.0.0.1", old).is_none());
    let list = sb.jlist();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["pm2_env"]["env"]["PORT"], new);
    assert_eq!(list[0]["pm2_env"]["status"], "online");
    assert!(
        fs::read_to_string(&file)
            .unwrap()
            .contains(&format!("      PORT: {new}\n"))
    );
    assert_eq!(
        sb.registry()["projects"][dir.to_str().unwrap()]["apps"][0]["port"],
        new
    );
    // Saved, so a resurrect brings back the new port.
    let dump = fs::read_to_string(sb.home.join("dump.pm2")).unwrap();
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(dump[0]["env"]["PORT"], new);
}

#[test]
fn bump_without_a_file_asks_for_init() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let err = sb.run(["bump", dir.to_str().unwrap()]).fails(1);
    assert!(err.contains("run `pm2-port init` there first"), "{err}");
}

#[test]
fn bump_no_restart_rewrites_the_file_only() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    let report = sb
        .run(["bump", dir.to_str().unwrap(), "--no-restart", "--json"])
        .json();
    assert_eq!(report["apps"][0]["port"], sb.port(1));
    assert_eq!(report["apps"][0]["previous_port"], sb.port(0));
    assert!(!sb.home.join("rpc.sock").exists());
}

#[test]
fn a_foreign_listener_moves_a_configured_project() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    assert_eq!(
        sb.run(["init", dir.to_str().unwrap(), "--json"]).json()["apps"][0]["port"],
        sb.port(0)
    );
    let _squatter = listen("::1", sb.port(0));
    let out = sb.run(["init", dir.to_str().unwrap(), "--json"]);
    assert!(
        out.stderr().contains(&format!(
            "port {0} is taken by a process listening on [::1]:{0}; moving `http-app` to {1}",
            sb.port(0),
            sb.port(1)
        )),
        "{}",
        out.stderr()
    );
    let report = out.json();
    assert_eq!(report["apps"][0]["port"], sb.port(1));
    assert_eq!(report["apps"][0]["previous_port"], sb.port(0));
}

#[test]
fn the_project_s_own_app_is_not_a_collision_but_a_squatter_beside_it_is() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    // The app listens on 127.0.0.1 only, which leaves [::1] free for a squatter.
    fs::write(dir.join("buildflowz.toml"), "[env]\nHOST = \"127.0.0.1\"\n").unwrap();
    let port = sb.port(0);
    assert_eq!(
        sb.run(["init", dir.to_str().unwrap(), "--json"]).json()["apps"][0]["port"],
        port
    );
    sb.pm2(["start", dir.join("ecosystem.config.cjs").to_str().unwrap()]);
    wait_for(30, "the app", || http_get("127.0.0.1", port));

    let again = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    assert_eq!(again["apps"][0]["port"], port);
    assert_eq!(again["changed"], false);

    let _squatter = listen("::1", port);
    let moved = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    assert_eq!(moved["apps"][0]["port"], sb.port(1));
}

#[test]
fn bump_keeps_a_stopped_app_stopped_with_its_new_port() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "paused");
    sb.run(["start", dir.to_str().unwrap(), "--json"]).json();
    sb.pm2(["stop", "paused"]);
    let report = sb.run(["bump", dir.to_str().unwrap(), "--json"]).json();
    assert_eq!(report["apps"][0]["port"], sb.port(1));
    let list = sb.jlist();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["pm2_env"]["status"], "stopped");
    assert_eq!(list[0]["pm2_env"]["env"]["PORT"], sb.port(1));
    assert!(http_get("127.0.0.1", sb.port(1)).is_none());
}
