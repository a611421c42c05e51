//! Several apps in one project: `[[apps]]` in buildflowz.toml.

use std::fs;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;

fn require(file: &std::path::Path) -> Value {
    let out = Command::new("node")
        .arg("-e")
        .arg("process.stdout.write(JSON.stringify(require(process.argv[1])))")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn three_apps_get_one_file_three_ports_and_removing_one_frees_its_port() {
    let sb = Sandbox::new();
    let dir = sb.fixture("monorepo");
    let report = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    let apps = report["apps"].as_array().unwrap();
    let got: Vec<(&str, u64, &str)> = apps
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["port"].as_u64().unwrap(),
                a["command"].as_str().unwrap(),
            )
        })
        .collect();
    let p = |i| u64::from(sb.port(i));
    assert_eq!(
        got,
        [
            ("web", p(0), "npm run dev"),
            ("mono-api", p(1), "npm run dev"),
            ("admin", p(2), "npm run dev")
        ]
    );

    let file = dir.join("ecosystem.config.cjs");
    let cwd = |a: &str| dir.join("packages").join(a).to_str().unwrap().to_string();
    let loaded = require(&file);
    let summary: Vec<Value> = loaded["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!([a["name"], a["cwd"], a["env"]]))
        .collect();
    assert_eq!(
        summary,
        [
            json!(["web", cwd("web"), {"PORT": p(0), "NODE_ENV": "development"}]),
            json!(["mono-api", cwd("api"), {"PORT": p(1), "NODE_ENV": "development", "LOG_LEVEL": "debug"}]),
            json!(["admin", cwd("admin"), {"PORT": p(2), "NODE_ENV": "development"}]),
        ]
    );

    let before = fs::metadata(&file).unwrap().modified().unwrap();
    let again = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    assert_eq!(again["changed"], false);
    assert_eq!(again["apps"], report["apps"]);
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), before);

    // Remove the middle app: it leaves the file and its port is free again.
    let toml = fs::read_to_string(dir.join("buildflowz.toml")).unwrap();
    let without = toml.replace(
        "[[apps]]\nname = \"mono-api\"\ndir = \"packages/api\"\n[apps.env]\nLOG_LEVEL = \"debug\"\n\n",
        "",
    );
    assert_ne!(without, toml);
    fs::write(dir.join("buildflowz.toml"), without).unwrap();
    let after = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    let names: Vec<&str> = after["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "admin"]);
    assert_eq!(after["apps"][1]["port"], p(2), "admin keeps its port");
    assert_eq!(require(&file)["apps"].as_array().unwrap().len(), 2);
    let registry = sb.registry();
    let entry = &registry["projects"][dir.to_str().unwrap()]["apps"];
    assert_eq!(
        entry,
        &json!([
            {"name": "web", "port": p(0), "cwd": cwd("web")},
            {"name": "admin", "port": p(2), "cwd": cwd("admin")},
        ])
    );
    assert_eq!(sb.run(["next"]).stdout(), format!("{}\n", p(1)));
}

#[test]
fn start_brings_up_every_app_of_the_project() {
    let sb = Sandbox::new();
    let dir = sb.fixture("monorepo");
    let out = sb.run(["start", dir.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let p = |i| sb.port(i);
    assert_eq!(
        out.stdout(),
        format!(
            "web  http://localhost:{}\nmono-api  http://localhost:{}\nadmin  http://localhost:{}\n",
            p(0),
            p(1),
            p(2)
        )
    );
    for (i, name) in ["web", "api", "admin"].iter().enumerate() {
        let port = p(i as u16);
        assert_eq!(
            http_get("127.0.0.1", port).unwrap(),
            format!("hello from {name} on {port}\n")
        );
    }
    let list = sb.run(["list", "--json"]).json();
    for row in list.as_array().unwrap() {
        assert_eq!(row["status"], "online");
        assert_eq!(
            row["sources"],
            json!(["pm2", "registry", "ecosystem"]),
            "{row}"
        );
    }
    assert_eq!(sb.run(["doctor"]).code(), 0);
}

#[test]
fn port_and_name_flags_need_a_single_app() {
    let sb = Sandbox::new();
    let dir = sb.fixture("monorepo");
    let err = sb
        .run([
            "init",
            dir.to_str().unwrap(),
            "--port",
            &sb.port(5).to_string(),
        ])
        .fails(2);
    assert!(err.contains("`--port` needs one app"), "{err}");
    let err = sb
        .run(["init", dir.to_str().unwrap(), "--name", "x"])
        .fails(2);
    assert!(
        err.contains("`--name` cannot apply to the several [[apps]]"),
        "{err}"
    );
    assert!(!dir.join("ecosystem.config.cjs").exists());
}
