//! `list --json --watch`: the stream follows PM2's apps as they start, stop, move and go, coalesces
//! bursts, reports the daemon's going and return, ends on stdin's end or SIGTERM, and never starts
//! a daemon.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// A running `list --json --watch`, its lines read on a thread.
struct Watcher {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line read so far, for failure messages.
    seen: Vec<String>,
}

impl Watcher {
    fn spawn(sb: &Sandbox) -> Watcher {
        let mut cmd = sb.cmd(["list", "--json", "--watch"]);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watcher {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line, parsed, within `secs`.
    fn next(&mut self, secs: u64) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|_| {
                panic!(
                    "no line within {secs}s; lines so far:\n{}",
                    self.seen.join("\n")
                )
            });
        self.seen.push(line.clone());
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// The lines up to and including the first one `want` accepts, within `secs`.
    fn until(&mut self, secs: u64, what: &str, want: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "no line with {what} within {secs}s; lines so far:\n{}",
                    self.seen.join("\n")
                );
            };
            self.seen.push(line.clone());
            let value: Value = serde_json::from_str(&line).unwrap();
            let done = want(&value);
            got.push(value);
            if done {
                return got;
            }
        }
    }

    /// No line for `wait`.
    fn quiet(&mut self, wait: Duration) {
        if let Ok(line) = self.lines.recv_timeout(wait) {
            panic!(
                "an unexpected line: {line}\nlines before:\n{}",
                self.seen.join("\n")
            );
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Wait for the process to end within `secs`; its exit code.
    fn exit_within(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "still running {secs}s after being asked to stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The apps of an `apps` line, as (name, port, status).
fn apps(line: &Value) -> Vec<(String, u64, String)> {
    assert_eq!(line["event"], "apps", "{line}");
    line["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["port"].as_u64().unwrap_or(0),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn app(name: &str, port: u16, status: &str) -> (String, u64, String) {
    (name.to_string(), u64::from(port), status.to_string())
}

fn is_apps(line: &Value, want: &[(String, u64, String)]) -> bool {
    line["event"] == "apps" && apps(line) == want
}

/// Every line is an `apps` line (no error, no daemon event).
fn only_apps_lines(lines: &[Value]) {
    for line in lines {
        assert_eq!(line["event"], "apps", "{line}");
    }
}

#[test]
fn follows_apps_as_they_start_stop_move_and_go() {
    let sb = Sandbox::new();
    let (p0, p1, p2) = (sb.port(0), sb.port(1), sb.port(2));
    let dir = sb.start_foreign_app("web", p0);
    let mut w = Watcher::spawn(&sb);
    // The first line at once: exactly the list.
    assert_eq!(
        w.next(5),
        json!({"event": "apps", "daemon": true, "apps": [
            {"name": "web", "port": p0, "status": "online", "cwd": dir, "sources": ["pm2"],
             "conflicts": []}
        ]})
    );

    // Started: a line with it, soon after `pm2 start` returns.
    let started = Instant::now();
    sb.start_foreign_app("api", p1);
    let lines = w.until(5, "api online", |l| {
        is_apps(l, &[app("web", p0, "online"), app("api", p1, "online")])
    });
    only_apps_lines(&lines);
    eprintln!(
        "api seen {} ms after its start began, {} lines",
        started.elapsed().as_millis(),
        lines.len()
    );

    // Stopped: its status changes.
    sb.pm2(["stop", "api"]);
    let lines = w.until(5, "api stopped", |l| {
        is_apps(l, &[app("web", p0, "online"), app("api", p1, "stopped")])
    });
    only_apps_lines(&lines);

    // Deleted: gone (PM2 says nothing on its bus for a stopped app: the periodic check sees it).
    sb.pm2(["delete", "api"]);
    let lines = w.until(5, "api gone", |l| is_apps(l, &[app("web", p0, "online")]));
    only_apps_lines(&lines);

    // Moved to another port.
    sb.pm2_with_env(
        ["restart", "web", "--update-env"],
        &[("PORT", p2.to_string())],
    );
    let lines = w.until(5, "web on its new port", |l| {
        is_apps(l, &[app("web", p2, "online")])
    });
    only_apps_lines(&lines);

    // Nothing changes: nothing printed.
    w.quiet(Duration::from_millis(2500));

    // Stdin closed: it ends, 0.
    drop(w.stdin.take());
    assert_eq!(w.exit_within(3), Some(0));
}

#[test]
fn a_burst_of_ten_apps_gives_a_few_lines() {
    let sb = Sandbox::new();
    let app_dir = sb.fixture("http-app");
    let apps_js: Vec<String> = (0..10)
        .map(|i| {
            format!(
                "{{name: \"a{i}\", script: {:?}, cwd: {:?}, env: {{PORT: {}}}}}",
                app_dir.join("server.js"),
                app_dir,
                sb.port(i)
            )
        })
        .collect();
    let file = sb.root.path().join("ten.config.cjs");
    std::fs::write(
        &file,
        format!("module.exports = {{apps: [{}]}};\n", apps_js.join(",\n")),
    )
    .unwrap();
    sb.pm2(["ping"]);
    let mut w = Watcher::spawn(&sb);
    assert!(is_apps(&w.next(5), &[]));
    sb.pm2([std::ffi::OsStr::new("start"), file.as_os_str()]);
    let all: Vec<_> = (0..10)
        .map(|i| app(&format!("a{i}"), sb.port(i), "online"))
        .collect();
    let lines = w.until(10, "the ten apps online", |l| is_apps(l, &all));
    only_apps_lines(&lines);
    eprintln!("a pm2 start of ten apps: {} lines", lines.len());
    assert!(lines.len() <= 5, "{} lines: {lines:#?}", lines.len());
    w.quiet(Duration::from_millis(1500));
}

#[test]
fn the_daemon_going_and_coming_back_is_reported() {
    let sb = Sandbox::new();
    let p0 = sb.port(0);
    sb.start_foreign_app("web", p0);
    sb.pm2(["save"]);
    let mut w = Watcher::spawn(&sb);
    assert!(is_apps(&w.next(5), &[app("web", p0, "online")]));

    // `pm2 kill`: said, and the saved app stays listed; the watch goes on.
    sb.pm2(["kill"]);
    let lines = w.until(5, "daemon-down", |l| l["event"] == "daemon-down");
    only_apps_lines(&lines[..lines.len() - 1]);
    let next = w.next(5);
    assert_eq!(next["daemon"], false, "{next}");
    assert_eq!(apps(&next), [app("web", p0, "saved")]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(w.running(), "the watch ended with the daemon");

    // `pm2 resurrect`: a daemon again, and the app online.
    sb.pm2(["resurrect"]);
    w.until(10, "daemon-up", |l| l["event"] == "daemon-up");
    w.until(10, "web online again", |l| {
        l["daemon"] == true && is_apps(l, &[app("web", p0, "online")])
    });

    // `pm2 update`: another daemon, however fast it comes back.
    sb.pm2(["update"]);
    let lines = w.until(20, "daemon-down", |l| l["event"] == "daemon-down");
    only_apps_lines(&lines[..lines.len() - 1]);
    w.until(20, "daemon-up", |l| l["event"] == "daemon-up");
    w.until(20, "web online after the update", |l| {
        is_apps(l, &[app("web", p0, "online")])
    });

    // SIGTERM: it ends at once.
    let asked = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(w.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(w.exit_within(2), Some(0));
    eprintln!("ended {} ms after SIGTERM", asked.elapsed().as_millis());
}

#[test]
fn without_a_daemon_it_starts_none() {
    let sb = Sandbox::new();
    let mut w = Watcher::spawn(&sb);
    assert_eq!(
        w.next(5),
        json!({"event": "apps", "daemon": false, "apps": []})
    );
    // Several polls.
    w.quiet(Duration::from_millis(1500));
    assert!(w.running());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(w.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(w.exit_within(2), Some(0));
    for file in ["pm2.pid", "rpc.sock", "pub.sock"] {
        assert!(
            !Path::new(&sb.home).join(file).exists(),
            "{file} in PM2_HOME: a daemon was started"
        );
    }
    assert!(!sb.daemon_running());
}

#[test]
fn without_the_bus_the_poll_follows() {
    let sb = Sandbox::new();
    let (p0, p1) = (sb.port(0), sb.port(1));
    sb.start_foreign_app("web", p0);
    // The daemon keeps its bus, but nobody can connect to it any more.
    std::fs::remove_file(sb.home.join("pub.sock")).unwrap();
    let mut w = Watcher::spawn(&sb);
    assert!(is_apps(&w.next(5), &[app("web", p0, "online")]));
    sb.pm2(["stop", "web"]);
    let stopped = Instant::now();
    w.until(3, "web stopped", |l| {
        is_apps(l, &[app("web", p0, "stopped")])
    });
    let waited = stopped.elapsed();
    eprintln!("seen {} ms after `pm2 stop` returned", waited.as_millis());
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    sb.start_foreign_app("api", p1);
    w.until(3, "api online", |l| {
        is_apps(l, &[app("web", p0, "stopped"), app("api", p1, "online")])
    });
    drop(w.stdin.take());
    assert_eq!(w.exit_within(3), Some(0));
}
