//! The interactive prompt, driven through a real pseudo-terminal, and its absence without one.

use std::fs;
use std::process::Stdio;

use crate::support::*;

const PACKAGE: &str =
    r#"{"name":"prompted","scripts":{"lint":"eslint .","watch":"node server.js"}}"#;
const TOML: &str = "# Settings for this project, written by hand.\nflox = false   # no flox on this box\n\n[env]\n# every log line\nDEBUG = \"app:*\"  # all of them\n";

fn project(sb: &Sandbox) -> std::path::PathBuf {
    let dir = sb.fixture_as("http-app", "prompted");
    fs::write(dir.join("package.json"), PACKAGE).unwrap();
    fs::write(dir.join("buildflowz.toml"), TOML).unwrap();
    dir
}

#[test]
fn choosing_a_script_with_the_arrow_keys_and_saving_it() {
    let sb = Sandbox::new();
    let dir = project(&sb);
    let mut cmd = sb.cmd(["init", dir.to_str().unwrap()]);
    cmd.stdin(Stdio::inherit()).env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    p.exp_string("How is this project's dev server started?")
        .unwrap();
    p.exp_string("type a command").unwrap();
    p.send("\x1b[B").unwrap(); // arrow down: from `lint` to `watch`
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string("Save this in").unwrap();
    p.send("y").unwrap();
    p.flush().unwrap();
    let rest = p.exp_eof().unwrap();
    // The plan writes the answer with the rest, and says so (the prompt no longer writes it).
    let saved = format!(
        "note: saved the answer in `{}`",
        dir.join("buildflowz.toml").display()
    );
    assert!(rest.contains(&saved), "{rest}");
    let status = p.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );

    // Every byte of the hand-written file is still there; the answer went in after the top keys.
    assert_eq!(
        fs::read_to_string(dir.join("buildflowz.toml")).unwrap(),
        "# Settings for this project, written by hand.\nflox = false   # no flox on this box\ncommand = \"npm run watch\"\n\n[env]\n# every log line\nDEBUG = \"app:*\"  # all of them\n"
    );
    let file = fs::read_to_string(dir.join("ecosystem.config.cjs")).unwrap();
    assert!(
        file.contains("    args: [\"-c\", \"npm run watch\"],\n"),
        "{file}"
    );
    assert!(file.contains("      \"DEBUG\": \"app:*\"\n"), "{file}");

    // The next run needs no prompt, even without a terminal.
    let again = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    assert_eq!(again["changed"], false);
    assert_eq!(again["apps"][0]["command"], "npm run watch");
}

#[test]
fn without_a_terminal_the_same_project_fails_and_writes_nothing() {
    let sb = Sandbox::new();
    let dir = project(&sb);
    let err = sb.run(["init", dir.to_str().unwrap()]).fails(1);
    assert!(err.contains("no dev command found"), "{err}");
    assert!(
        err.contains("--command")
            && err.contains("`dev` script")
            && err.contains("buildflowz.toml")
    );
    assert_eq!(
        fs::read_to_string(dir.join("buildflowz.toml")).unwrap(),
        TOML
    );
    assert!(!dir.join("ecosystem.config.cjs").exists());
    assert!(!sb.state.join("registry.json").exists());
}

#[test]
fn yes_never_prompts_even_on_a_terminal() {
    let sb = Sandbox::new();
    let dir = project(&sb);
    let mut cmd = sb.cmd(["init", dir.to_str().unwrap(), "--yes"]);
    cmd.stdin(Stdio::inherit()).env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    let out = p.exp_eof().unwrap();
    assert!(out.contains("no dev command found"), "{out}");
    assert!(!out.contains("How is this project"), "{out}");
    assert!(!dir.join("ecosystem.config.cjs").exists());
}

#[test]
fn a_workspace_is_offered_as_one_app_per_package() {
    let sb = Sandbox::new();
    let dir = sb.fixture("monorepo");
    fs::remove_file(dir.join("buildflowz.toml")).unwrap();
    let mut cmd = sb.cmd(["init", dir.to_str().unwrap(), "--json"]);
    cmd.stdin(Stdio::inherit()).env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    p.exp_string("each workspace package with a dev script as its own app (packages/admin, packages/api, packages/web)")
        .unwrap();
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string("Save this in").unwrap();
    p.send("y").unwrap();
    p.flush().unwrap();
    p.exp_eof().unwrap();
    assert_eq!(
        fs::read_to_string(dir.join("buildflowz.toml")).unwrap(),
        "[[apps]]\ndir = \"packages/admin\"\n\n[[apps]]\ndir = \"packages/api\"\n\n[[apps]]\ndir = \"packages/web\"\n"
    );
    let report = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    let names: Vec<&str> = report["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "api", "web"]);
    assert_eq!(report["changed"], false);
}
