//! Several apps in one project: `[[apps]]` in buildflowz.toml.

use std::fs;

use serde_json::{Value, json};

use crate::support::*;

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
    let loaded = node_require(&file);
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
    assert_eq!(node_require(&file)["apps"].as_array().unwrap().len(), 2);
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
    // On loopback, or doctor reports them exposed.
    let toml = dir.join("buildflowz.toml");
    let text = fs::read_to_string(&toml).unwrap();
    fs::write(
        &toml,
        text.replace("[env]\n", "[env]\nHOST = \"127.0.0.1\"\n"),
    )
    .unwrap();
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

#[test]
fn adding_an_app_above_the_others_moves_none_of_them() {
    let sb = Sandbox::new();
    let dir = sb.fixture("monorepo");
    let first = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    let ports: Vec<Value> = first["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["port"].clone())
        .collect();
    // A new app, first in the file, with an app of its own in a new directory.
    let toml = fs::read_to_string(dir.join("buildflowz.toml")).unwrap();
    fs::create_dir_all(dir.join("packages/docs")).unwrap();
    fs::copy(
        dir.join("packages/web/package.json"),
        dir.join("packages/docs/package.json"),
    )
    .unwrap();
    let with_docs = toml.replace(
        "[[apps]]\ndir = \"packages/web\"",
        "[[apps]]\ndir = \"packages/docs\"\n\n[[apps]]\ndir = \"packages/web\"",
    );
    fs::write(dir.join("buildflowz.toml"), with_docs).unwrap();
    let after = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    let got: Vec<(String, Value, Value)> = after["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["port"].clone(),
                a["previous_port"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("docs".to_string(), json!(sb.port(3)), Value::Null),
            ("web".to_string(), ports[0].clone(), Value::Null),
            ("mono-api".to_string(), ports[1].clone(), Value::Null),
            ("admin".to_string(), ports[2].clone(), Value::Null),
        ]
    );
}

#[test]
fn bump_one_app_by_its_derived_name() {
    let sb = Sandbox::new();
    let dir = sb.fixture("monorepo");
    sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    let report = sb
        .run(["bump", dir.to_str().unwrap(), "--app", "web", "--json"])
        .json();
    let web = &report["apps"][0];
    assert_eq!(
        (
            web["name"].clone(),
            web["port"].clone(),
            web["previous_port"].clone()
        ),
        (json!("web"), json!(sb.port(3)), json!(sb.port(0)))
    );
    assert_eq!(report["apps"][1]["port"], sb.port(1));
    assert_eq!(report["apps"][1]["previous_port"], Value::Null);
    let err = sb
        .run(["bump", dir.to_str().unwrap(), "--app", "wbe"])
        .fails(2);
    assert!(
        err.contains("no app named `wbe`") && err.contains("web, mono-api, admin"),
        "{err}"
    );
}

#[test]
fn an_app_directory_outside_the_project_is_refused() {
    let sb = Sandbox::new();
    let dir = sb.fixture("monorepo");
    sb.fixture_as("http-app", "neighbour");
    fs::write(
        dir.join("buildflowz.toml"),
        "[[apps]]\ndir = \"../neighbour\"\n",
    )
    .unwrap();
    let err = sb.run(["init", dir.to_str().unwrap()]).fails(2);
    assert!(
        err.contains("`dir = \"../neighbour\"` is not a directory inside the project"),
        "{err}"
    );
    assert!(!dir.join("ecosystem.config.cjs").exists());
}
