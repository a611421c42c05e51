//! Bad input exits 2, names the file and position, writes nothing and starts no PM2 daemon.

use std::fs;
use std::path::Path;

use crate::support::*;

/// Every file of a directory with its bytes, to prove nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

fn fails_cleanly(sb: &Sandbox, dir: &Path, args: &[&str]) -> String {
    let before = snapshot(dir);
    let mut full = vec!["init", dir.to_str().unwrap()];
    full.extend_from_slice(args);
    let err = sb.run(&full).fails(2);
    assert_eq!(snapshot(dir), before, "files changed after {args:?}");
    assert!(!dir.join("ecosystem.config.cjs").exists());
    assert!(
        !sb.home.join("rpc.sock").exists(),
        "a PM2 daemon was started"
    );
    err
}

#[test]
fn malformed_package_json_names_file_and_line() {
    let sb = Sandbox::new();
    let dir = sb.dir("broken");
    fs::write(
        dir.join("package.json"),
        "{\n  \"name\": \"broken\",\n  \"scripts\": { \"dev\": \"vite\" \n}\n",
    )
    .unwrap();
    let err = fails_cleanly(&sb, &dir, &[]);
    let path = dir.join("package.json");
    assert!(err.contains(&format!("`{}`:5:", path.display())), "{err}");
}

#[test]
fn malformed_buildflowz_toml_names_file_line_and_column() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    fs::write(
        dir.join("buildflowz.toml"),
        "name = \"shop\"\nport = = 3000\n",
    )
    .unwrap();
    let err = fails_cleanly(&sb, &dir, &[]);
    let path = dir.join("buildflowz.toml");
    assert!(err.contains(&format!("`{}`:2:", path.display())), "{err}");
}

#[test]
fn unknown_key_in_buildflowz_toml_is_refused() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    fs::write(
        dir.join("buildflowz.toml"),
        "name = \"shop\"\n\ncomand = \"npm start\"\n",
    )
    .unwrap();
    let err = fails_cleanly(&sb, &dir, &[]);
    let path = dir.join("buildflowz.toml");
    assert!(
        err.contains(&format!("`{}`:3:1: unknown field `comand`", path.display())),
        "{err}"
    );
}

#[test]
fn reversed_range_and_out_of_bounds_port_are_usage_errors() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let err = fails_cleanly(&sb, &dir, &["--range", "5000-4000"]);
    assert!(err.contains("`5000-4000` is not a port range"), "{err}");
    let err = fails_cleanly(&sb, &dir, &["--port", "70000"]);
    assert!(err.contains("70000"), "{err}");
}

#[test]
fn bad_range_in_the_environment_is_a_usage_error() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let out = sb
        .cmd(["init", dir.to_str().unwrap()])
        .env("PM2_PORT_RANGE", "3100-3000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("PM2_PORT_RANGE: `3100-3000` is not a port range")
    );
    assert!(!dir.join("ecosystem.config.cjs").exists());
}

#[test]
fn no_dev_command_without_a_terminal_names_the_three_ways_out() {
    let sb = Sandbox::new();
    let dir = sb.dir("empty");
    fs::write(dir.join("README.md"), "nothing to run\n").unwrap();
    let err = sb.run(["init", dir.to_str().unwrap()]).fails(1);
    assert!(err.contains("--command"), "{err}");
    assert!(err.contains("`dev` script"), "{err}");
    assert!(
        err.contains("`command = \"CMD\"`") && err.contains("buildflowz.toml"),
        "{err}"
    );
    assert!(!dir.join("ecosystem.config.cjs").exists());
}
