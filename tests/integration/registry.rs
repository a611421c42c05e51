//! The registry and its lock: parallel runs, reservations, unique names, a corrupt file.

use std::collections::BTreeSet;
use std::fs;
use std::process::Stdio;

use crate::support::*;

#[test]
fn parallel_inits_get_distinct_ports_and_start_no_daemon() {
    let sb = Sandbox::with_ports(30);
    let dirs: Vec<_> = (0..24)
        .map(|i| sb.fixture_as("http-app", &format!("p{i:02}")))
        .collect();
    let children: Vec<_> = dirs
        .iter()
        .map(|d| {
            sb.cmd(["init", d.to_str().unwrap(), "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ports: Vec<u64> = children
        .into_iter()
        .map(|c| {
            Run(c.wait_with_output().unwrap()).json()["apps"][0]["port"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let distinct: BTreeSet<u64> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), 24, "{ports:?}");
    let expected: BTreeSet<u64> = (0..24).map(|i| u64::from(sb.port(i))).collect();
    assert_eq!(distinct, expected);

    let next = sb.run(["next", "--json"]).json();
    assert_eq!(next["port"], sb.port(24));
    assert_eq!(sb.registry()["projects"].as_object().unwrap().len(), 24);
    assert!(
        !sb.home.join("rpc.sock").exists(),
        "a PM2 daemon was started"
    );
}

#[test]
fn a_configured_project_keeps_its_port_reserved_and_next_skips_it() {
    let sb = Sandbox::new();
    let a = sb.fixture_as("http-app", "a");
    assert_eq!(
        sb.run(["init", a.to_str().unwrap(), "--json"]).json()["apps"][0]["port"],
        sb.port(0)
    );
    assert_eq!(sb.run(["next"]).stdout(), format!("{}\n", sb.port(1)));
    let b = sb.fixture_as("http-app", "b");
    assert_eq!(
        sb.run(["init", b.to_str().unwrap(), "--json"]).json()["apps"][0]["port"],
        sb.port(1)
    );
    // A project whose directory is gone frees its port.
    fs::remove_dir_all(&a).unwrap();
    assert_eq!(sb.run(["next"]).stdout(), format!("{}\n", sb.port(0)));
}

#[test]
fn two_directories_named_web_get_distinct_names() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.root.path().join("client")).unwrap();
    fs::create_dir_all(sb.root.path().join("admin")).unwrap();
    let one = sb.fixture_as("http-app", "client/web");
    let two = sb.fixture_as("http-app", "admin/web");
    let first = sb.run(["init", one.to_str().unwrap(), "--json"]).json();
    let second = sb.run(["init", two.to_str().unwrap(), "--json"]);
    assert!(
        second.stderr().contains("the name `web` is used by"),
        "{}",
        second.stderr()
    );
    let second = second.json();
    assert_eq!(first["apps"][0]["name"], "web");
    assert_eq!(second["apps"][0]["name"], "web-admin");
    assert_ne!(first["apps"][0]["port"], second["apps"][0]["port"]);
    // Stable: a re-run keeps the disambiguated name.
    let again = sb.run(["init", two.to_str().unwrap(), "--json"]).json();
    assert_eq!(again["apps"][0]["name"], "web-admin");
    assert_eq!(again["changed"], false);
    // An explicit name that another directory uses is refused.
    let err = sb
        .run(["init", two.to_str().unwrap(), "--name", "web"])
        .fails(1);
    assert!(
        err.contains("the app name `web` is already used by"),
        "{err}"
    );
}

#[test]
fn a_corrupt_registry_is_kept_aside_and_rebuilt_with_the_ports_assigned() {
    let sb = Sandbox::new();
    let mut assigned = Vec::new();
    for name in ["p-a", "p-b", "p-c"] {
        let dir = sb.fixture_as("http-app", name);
        let r = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
        assigned.push((dir, r["apps"][0]["port"].as_u64().unwrap()));
    }
    // The last project runs under PM2, so PM2 knows it even where the broken text does not.
    sb.pm2([
        "start",
        assigned[2].0.join("ecosystem.config.cjs").to_str().unwrap(),
    ]);
    let path = sb.state.join("registry.json");
    let text = fs::read_to_string(&path).unwrap();
    let truncated = &text[..text.len() * 2 / 3];
    fs::write(&path, truncated).unwrap();

    let d = sb.fixture_as("http-app", "p-d");
    let out = sb.run(["init", d.to_str().unwrap(), "--json"]);
    assert!(out.stderr().contains("was corrupt"), "{}", out.stderr());
    let port_d = out.json()["apps"][0]["port"].as_u64().unwrap();
    assert_eq!(port_d, u64::from(sb.port(3)));

    let aside: Vec<_> = fs::read_dir(&sb.state)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("registry.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(fs::read_to_string(aside[0].path()).unwrap(), truncated);

    let registry = sb.registry();
    for (dir, port) in &assigned {
        assert_eq!(
            registry["projects"][dir.to_str().unwrap()]["apps"][0]["port"],
            *port,
            "{registry}"
        );
    }
    assert_eq!(registry["projects"].as_object().unwrap().len(), 4);
}

#[test]
fn a_failing_command_on_a_corrupt_registry_loses_no_reservation() {
    let sb = Sandbox::new();
    for name in ["p-a", "p-b"] {
        let dir = sb.fixture_as("http-app", name);
        sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    }
    let path = sb.state.join("registry.json");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, &text[..text.len() - 10]).unwrap();
    let broken = fs::read(&path).unwrap();

    // A command that fails (an explicit port that a configured project holds) writes nothing...
    let c = sb.fixture_as("http-app", "p-c");
    let err = sb
        .run([
            "init",
            c.to_str().unwrap(),
            "--port",
            &sb.port(0).to_string(),
        ])
        .fails(1);
    assert!(err.contains("was corrupt"), "{err}");
    assert!(
        err.contains(&format!("port {} is taken by project `p-a`", sb.port(0))),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), broken);
    let mut names: Vec<String> = fs::read_dir(&sb.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["lock", "registry.backup.json", "registry.json"]);
    // ...and the reservations still hold, rebuilt from the projects' files.
    assert_eq!(sb.run(["next"]).stdout(), format!("{}\n", sb.port(2)));
}
