//! PM2's daemon: ports held in every state, the socket client against `pm2 jlist`, and no daemon
//! ever started by a read-only command, each against every pinned PM2 (5, 6 and 7).

use std::collections::BTreeSet;
use std::fs;

use serde_json::Value;

use crate::support::*;

fn next(sb: &Sandbox) -> u64 {
    sb.run(["next", "--json"]).json()["port"].as_u64().unwrap()
}

/// Each scenario `NAME(pm2: Pm2)` becomes the tests `NAME::pm2_5`, `NAME::pm2_6` and `NAME::pm2_7`.
macro_rules! each_pm2 {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::support::Pm2;
            #[test]
            fn pm2_5() {
                super::$name(Pm2::V5)
            }
            #[test]
            fn pm2_6() {
                super::$name(Pm2::V6)
            }
            #[test]
            fn pm2_7() {
                super::$name(Pm2::V7)
            }
        }
    )*};
}

each_pm2!(
    an_app_port_is_taken_online_stopped_and_saved_without_a_daemon,
    the_socket_client_agrees_with_jlist_on_30_apps_and_restarts_nothing,
    a_stale_socket_and_a_missing_one_start_no_daemon,
);

fn an_app_port_is_taken_online_stopped_and_saved_without_a_daemon(pm2: Pm2) {
    let sb = Sandbox::with_pm2(pm2);
    sb.start_foreign_app("web", sb.port(0));
    assert_eq!(next(&sb), u64::from(sb.port(1)), "online");
    sb.pm2(["stop", "web"]);
    wait_for(10, "the port to be released", || {
        http_get("127.0.0.1", sb.port(0)).is_none().then_some(())
    });
    assert_eq!(next(&sb), u64::from(sb.port(1)), "stopped");
    sb.pm2(["save"]);
    sb.pm2(["kill"]);
    assert!(!sb.daemon_running());
    assert!(!sb.home.join("rpc.sock").exists());
    assert_eq!(next(&sb), u64::from(sb.port(1)), "saved in dump.pm2");

    let list = sb.run(["list", "--json"]).json();
    assert_eq!(list[0]["name"], "web");
    assert_eq!(list[0]["port"], sb.port(0));
    assert_eq!(list[0]["status"], "saved");
    let dir = sb.fixture("http-app");
    let dry = sb
        .run(["init", dir.to_str().unwrap(), "--dry-run", "--json"])
        .json();
    assert_eq!(dry["apps"][0]["port"], sb.port(1));
    assert!(
        !sb.home.join("rpc.sock").exists(),
        "a read-only command started a daemon"
    );
    assert!(!sb.daemon_running());
}

/// Name, status and port of every app, as `pm2 jlist` reports them.
fn jlist_view(list: &[Value]) -> BTreeSet<(String, String, u64)> {
    list.iter()
        .map(|a| {
            let env = &a["pm2_env"];
            let port = env["env"]["PORT"]
                .as_u64()
                .or_else(|| env["env"]["PORT"].as_str()?.parse().ok());
            (
                a["name"].as_str().unwrap().to_string(),
                env["status"].as_str().unwrap().to_string(),
                port.unwrap(),
            )
        })
        .collect()
}

fn the_socket_client_agrees_with_jlist_on_30_apps_and_restarts_nothing(pm2: Pm2) {
    let sb = Sandbox::build(pm2, 30);
    let dir = sb.fixture("idle-app");
    let apps: Vec<String> = (0..30)
        .map(|i| {
            format!(
                "{{ name: 'idle-{i:02}', script: 'idle.js', cwd: '{}', env: {{ PORT: {} }} }}",
                dir.display(),
                sb.port(i)
            )
        })
        .collect();
    let file = dir.join("apps.config.js");
    fs::write(
        &file,
        format!("module.exports = {{ apps: [{}] }};\n", apps.join(",\n")),
    )
    .unwrap();
    sb.pm2(["start", file.to_str().unwrap()]);
    for i in (0..30).step_by(3) {
        sb.pm2(["stop", &format!("idle-{i:02}")]);
    }
    let before = sb.jlist();
    assert_eq!(before.len(), 30);

    for _ in 0..3 {
        let run = sb.run(["--verbose", "list", "--json"]);
        assert!(
            run.stderr().contains("PM2's daemon listed 30 apps"),
            "the list did not come from the socket: {}",
            run.stderr()
        );
        let rows = run.json();
        let got: BTreeSet<(String, String, u64)> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                    r["port"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, jlist_view(&before));
        for r in rows.as_array().unwrap() {
            assert_eq!(r["cwd"], dir.to_str().unwrap());
            assert_eq!(r["sources"], serde_json::json!(["pm2"]));
            assert_eq!(r["conflicts"], serde_json::json!([]));
        }
    }
    let err = sb.run(["next"]).fails(1);
    assert!(
        err.contains(&format!("no free port in {} (30 taken)", sb.range(30))),
        "{err}"
    );
    // A wrong argument count would have made the daemon restart every app: nothing restarted.
    let after = sb.jlist();
    let pids = |l: &[Value]| -> Vec<(Value, Value)> {
        l.iter()
            .map(|a| (a["pid"].clone(), a["pm2_env"]["restart_time"].clone()))
            .collect()
    };
    assert_eq!(pids(&after), pids(&before));
}

fn a_stale_socket_and_a_missing_one_start_no_daemon(pm2: Pm2) {
    let sb = Sandbox::with_pm2(pm2);
    let dir = sb.fixture("idle-app");
    sb.pm2_with_env(
        [
            "start",
            dir.join("idle.js").to_str().unwrap(),
            "--name",
            "idle",
        ],
        &[("PORT", sb.port(0).to_string())],
    );
    sb.pm2(["save"]);
    let app_pid = sb.jlist()[0]["pid"].as_u64().unwrap();
    let daemon_pid: i32 = fs::read_to_string(sb.home.join("pm2.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Kill the daemon the hard way: its socket file stays behind.
    for pid in [daemon_pid, app_pid as i32] {
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
    wait_for(10, "the daemon to die", || {
        (!sb.daemon_running()).then_some(())
    });
    assert!(
        sb.home.join("rpc.sock").exists(),
        "the stale socket should remain"
    );

    assert_eq!(
        next(&sb),
        u64::from(sb.port(1)),
        "the saved app still holds its port"
    );
    let list = sb.run(["list", "--json"]).json();
    assert_eq!(list[0]["status"], "saved");
    assert!(!sb.daemon_running(), "a daemon was started");

    let fresh = Sandbox::with_pm2(pm2);
    assert_eq!(next(&fresh), u64::from(fresh.port(0)));
    assert!(!fresh.home.join("rpc.sock").exists());
}
