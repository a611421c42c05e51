//! What users of cargo and pm2 expect of a CLI: help with examples, completions, quiet and
//! verbose, and a quiet end when the reader of its output goes away.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn every_command_has_help_with_an_example() {
    let sb = Sandbox::new();
    for cmd in [
        "init",
        "start",
        "bump",
        "next",
        "list",
        "doctor",
        "completions",
    ] {
        let out = sb.run([cmd, "--help"]);
        assert_eq!(out.code(), 0, "{cmd}");
        let help = out.stdout();
        assert!(
            help.contains("Examples:\n  pm2-port "),
            "{cmd} --help has no example:\n{help}"
        );
    }
}

#[test]
fn bash_completions_parse() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = sb.run(["completions", shell]);
        assert_eq!(out.code(), 0);
        assert!(out.stdout().contains("pm2-port"), "{shell}");
    }
    let script = sb.root.path().join("pm2-port.bash");
    std::fs::write(&script, sb.run(["completions", "bash"]).stdout()).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn a_closed_pipe_ends_quietly_with_status_0() {
    let sb = Sandbox::with_ports(40);
    // Enough projects that the listing outgrows a pipe's buffer.
    for i in 0..40 {
        let dir = sb.fixture_as(
            "http-app",
            &format!("a-rather-long-project-directory-name-{i:02}"),
        );
        sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    }
    let mut child = sb
        .cmd(["list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(err, "");

    let shell = Command::new("bash")
        .args(["-c", "set -o pipefail; \"$0\" list | head -1"])
        .arg(BIN)
        .envs(
            sb.cmd(["x"])
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .output()
        .unwrap();
    assert!(
        shell.status.success(),
        "{}",
        String::from_utf8_lossy(&shell.stderr)
    );
    let first = String::from_utf8_lossy(&shell.stdout).into_owned();
    assert_eq!(first.lines().count(), 1, "{first}");
    let header: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(header, ["NAME", "PORT", "STATUS", "CWD", "SOURCES"]);
    assert_eq!(String::from_utf8_lossy(&shell.stderr), "");
}

#[test]
fn quiet_keeps_only_data_and_verbose_tells_what_was_read() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let quiet = sb.run(["init", dir.to_str().unwrap(), "--quiet"]);
    assert_eq!(quiet.code(), 0);
    assert_eq!(quiet.stdout(), "");
    assert_eq!(quiet.stderr(), "");
    let verbose = sb.run(["next", "--verbose"]);
    assert_eq!(verbose.stdout(), format!("{}\n", sb.port(1)));
    assert!(
        verbose.stderr().contains("no PM2 daemon socket in"),
        "{}",
        verbose.stderr()
    );
    assert!(
        verbose.stderr().contains("registry `"),
        "{}",
        verbose.stderr()
    );
    let both = sb.run(["next", "-q", "-v"]);
    assert_eq!(both.code(), 2);
}
