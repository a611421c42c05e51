//! Port choice against the real world: PM2 apps of every status, listeners on every address.

use std::fs;

use crate::support::*;

#[test]
fn skips_online_and_stopped_pm2_apps_and_listeners_on_v6_and_v4() {
    let sb = Sandbox::new();
    sb.start_foreign_app("online-app", sb.port(0));
    sb.start_foreign_app("stopped-app", sb.port(1));
    sb.pm2(["stop", "stopped-app"]);
    wait_for(10, "the stopped app to release its port", || {
        http_get("127.0.0.1", sb.port(1)).is_none().then_some(())
    });
    let _v6 = listen("::1", sb.port(2));
    let _v4 = listen("0.0.0.0", sb.port(3));

    let dir = sb.fixture("http-app");
    let report = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    assert_eq!(report["apps"][0]["port"], sb.port(4));
    assert_eq!(report["changed"], true);
}

#[test]
fn rerun_on_a_running_app_keeps_its_port_and_leaves_the_file_alone() {
    let sb = Sandbox::new();
    // Something else holds the first port, so the project does not get it by accident.
    let _other = listen("127.0.0.1", sb.port(0));
    let dir = sb.fixture("http-app");
    let first = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    let port = sb.port(1);
    assert_eq!(first["apps"][0]["port"], port);
    let file = dir.join("ecosystem.config.cjs");
    sb.pm2(["start", file.to_str().unwrap()]);
    wait_for(20, "the app to answer", || http_get("127.0.0.1", port));
    let before = fs::metadata(&file).unwrap().modified().unwrap();
    let bytes = fs::read(&file).unwrap();

    let again = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    assert_eq!(again["apps"][0]["port"], port);
    assert_eq!(again["apps"][0]["previous_port"], serde_json::Value::Null);
    assert_eq!(again["changed"], false);
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), before);
    assert_eq!(fs::read(&file).unwrap(), bytes);
}

#[test]
fn explicit_port_that_is_taken_fails_naming_the_holder() {
    let sb = Sandbox::new();
    sb.start_foreign_app("holder", sb.port(0));
    let dir = sb.fixture("http-app");
    let err = sb
        .run([
            "init",
            dir.to_str().unwrap(),
            "--port",
            &sb.port(0).to_string(),
        ])
        .fails(1);
    assert!(
        err.contains(&format!(
            "port {} is taken by PM2 app `holder` (online",
            sb.port(0)
        )),
        "{err}"
    );
    assert!(!dir.join("ecosystem.config.cjs").exists());

    let _l = listen("::1", sb.port(5));
    let err = sb
        .run([
            "init",
            dir.to_str().unwrap(),
            "--port",
            &sb.port(5).to_string(),
        ])
        .fails(1);
    assert!(
        err.contains(&format!(
            "port {0} is taken by a process listening on [::1]:{0}",
            sb.port(5)
        )),
        "{err}"
    );
}

#[test]
fn a_full_range_fails_naming_the_range() {
    let sb = Sandbox::new();
    let _a = listen("127.0.0.1", sb.port(0));
    let _b = listen("::", sb.port(1));
    let dir = sb.fixture("http-app");
    let range = sb.range(2);
    let err = sb
        .run(["init", dir.to_str().unwrap(), "--range", &range])
        .fails(1);
    assert!(
        err.contains(&format!("no free port in {range} (2 taken)")),
        "{err}"
    );
    assert!(!dir.join("ecosystem.config.cjs").exists());
}
