//! The generated file, started by the real `pm2 start`, runs the app on the chosen port.

use crate::support::*;

#[test]
fn pm2_starts_the_generated_file_on_the_chosen_port() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "shop");
    let report = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    let port = sb.port(0);
    assert_eq!(report["apps"][0]["port"], port);
    assert_eq!(report["apps"][0]["command"], "npm run dev");

    let file = dir.join("ecosystem.config.cjs");
    sb.pm2(["start", file.to_str().unwrap()]);
    let body = wait_for(30, "the app to answer HTTP", || http_get("127.0.0.1", port));
    assert_eq!(body, format!("hello from http-app on {port}\n"));

    let list = sb.jlist();
    assert_eq!(list.len(), 1);
    let env = &list[0]["pm2_env"];
    assert_eq!(list[0]["name"], "shop");
    assert_eq!(env["status"], "online");
    assert_eq!(env["pm_cwd"], dir.to_str().unwrap());
    // A number, as the tunnel scripts people already use expect.
    assert_eq!(env["env"]["PORT"], serde_json::json!(port));
}
