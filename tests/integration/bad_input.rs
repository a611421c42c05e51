//! Bad input exits 2, names the file and position, writes nothing and starts no PM2 daemon.

use std::fs;
use std::path::Path;

use crate::support::*;

/// `init DIR` on bad input: exit 2, every file of the project as it was, no ecosystem file, no
/// PM2 daemon.
fn bad_init<'a>(sb: &'a Sandbox, dir: &Path) -> Call<'a> {
    sb.init(dir)
        .expect_code(2)
        .unchanged(dir)
        .no_file(dir.join("ecosystem.config.cjs"))
        .no_daemon()
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
    let path = dir.join("package.json");
    bad_init(&sb, &dir)
        .stderr_has(format!("`{}`:5:", path.display()))
        .run();
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
    let path = dir.join("buildflowz.toml");
    bad_init(&sb, &dir)
        .stderr_has(format!("`{}`:2:", path.display()))
        .run();
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
    let path = dir.join("buildflowz.toml");
    bad_init(&sb, &dir)
        .stderr_has(format!("`{}`:3:1: unknown field `comand`", path.display()))
        .run();
}

#[test]
fn reversed_range_and_out_of_bounds_port_are_usage_errors() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    bad_init(&sb, &dir)
        .args(["--range", "5000-4000"])
        .stderr_has("`5000-4000` is not a port range")
        .run();
    bad_init(&sb, &dir)
        .args(["--port", "70000"])
        .stderr_has("70000")
        .run();
}

#[test]
fn bad_range_in_the_environment_is_a_usage_error() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    bad_init(&sb, &dir)
        .env("PM2_PORT_RANGE", "3100-3000")
        .stderr_has("PM2_PORT_RANGE: `3100-3000` is not a port range")
        .run();
}

#[test]
fn no_dev_command_without_a_terminal_names_the_three_ways_out() {
    let sb = Sandbox::new();
    let dir = sb.dir("empty");
    fs::write(dir.join("README.md"), "nothing to run\n").unwrap();
    sb.init(&dir)
        .expect_code(1)
        .stderr_has("--command")
        .stderr_has("`dev` script")
        .stderr_has("`command = \"CMD\"`")
        .stderr_has("buildflowz.toml")
        .no_file(dir.join("ecosystem.config.cjs"))
        .run();
}
