//! `tunnel` between a laptop and real servers, each in its own network namespace
//! (tests/integration/netns.rs): `pm2-port tunnel` and its ssh on the laptop, PM2, its apps and an
//! sshd on each server. An app's port is reachable from the laptop only through a forward.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::netns::{Laptop, Server};
use crate::support::*;

/// `pm2-port tunnel -F CONFIG ARGS... testhost` on the laptop.
pub fn tunnel_cmd(sb: &Sandbox, laptop: &Laptop, server: &Server, args: &[&str]) -> Command {
    let mut all = vec!["tunnel", "-F", server.config().to_str().unwrap()];
    all.extend_from_slice(args);
    all.push("testhost");
    laptop.cmd(sb, &all)
}

/// A file to send a tunnel's stderr to.
pub fn log_file(path: &Path) -> Stdio {
    Stdio::from(std::fs::File::create(path).unwrap())
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// A running tunnel and its stdout lines.
pub struct Tunnel {
    pub child: Child,
    lines: Receiver<String>,
}

impl Tunnel {
    /// `tunnel --json EXTRA... testhost`, stderr dropped.
    pub fn spawn(sb: &Sandbox, laptop: &Laptop, server: &Server, extra: &[&str]) -> Tunnel {
        Tunnel::spawn_logging(sb, laptop, server, extra, Stdio::null())
    }

    pub fn spawn_logging(
        sb: &Sandbox,
        laptop: &Laptop,
        server: &Server,
        extra: &[&str],
        stderr: Stdio,
    ) -> Tunnel {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        Tunnel::start(tunnel_cmd(sb, laptop, server, &args), stderr)
    }

    pub fn start(mut cmd: Command, stderr: Stdio) -> Tunnel {
        let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            while stdout.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                line.clear();
            }
        });
        Tunnel { child, lines }
    }

    /// The next stdout line, as printed (with its line feed).
    pub fn next_line(&self, secs: u64) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(secs))
            .expect("no line from the tunnel in time")
    }

    /// The next stdout line if one comes within `secs`.
    pub fn try_next_line(&self, secs: u64) -> Option<String> {
        self.lines.recv_timeout(Duration::from_secs(secs)).ok()
    }

    pub fn next(&self, secs: u64) -> Value {
        serde_json::from_str(&self.next_line(secs)).unwrap()
    }

    /// Events up to `ready`, after the `proxy` event that comes first (checked, not returned).
    pub fn until_ready(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let first = self.next(30);
        assert_eq!(
            first,
            json!({"event": "proxy", "port": 8800, "url": "http://localhost:8800/"})
        );
        loop {
            let e = self.next(30);
            if e["event"] == "ready" {
                return all;
            }
            all.push(e);
        }
    }

    /// The next event named `event` within `secs`, the others skipped; panics naming them.
    pub fn until_event(&self, secs: u64, event: &str) -> Value {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                let e: Value = serde_json::from_str(&line).unwrap();
                if e["event"] == event {
                    return e;
                }
                seen.push(e);
            }
        }
        panic!("no `{event}` event within {secs} s; saw {seen:?}");
    }

    /// The stdout lines not read yet, up to the end of stdout (once the tunnel has exited).
    pub fn rest(&self) -> Vec<String> {
        let mut all = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(5)) {
                Ok(line) => all.push(line),
                Err(RecvTimeoutError::Disconnected) => return all,
                Err(RecvTimeoutError::Timeout) => panic!("stdout still open: {all:?}"),
            }
        }
    }

    /// Wait for the tunnel to exit on its own.
    pub fn wait(&mut self, secs: u64, what: &str) -> ExitStatus {
        wait_for(secs, what, || self.child.try_wait().unwrap())
    }

    /// The ssh processes this tunnel started (its children).
    pub fn ssh_children(&self) -> Vec<u32> {
        let me = self.child.id();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let after = stat.rfind(')').map(|i| &stat[i + 1..]).unwrap_or("");
                after.split_whitespace().nth(1) == Some(&me.to_string()) && stat.contains("(ssh)")
            })
            .collect()
    }

    /// SIGTERM, then the exit status; asserts no ssh process of ours is left.
    pub fn terminate(&mut self, server: &Server) -> i32 {
        self.terminate_timed(server).0
    }

    /// SIGTERM, then the exit status and how long the tunnel took to exit; asserts no ssh process
    /// of ours is left.
    pub fn terminate_timed(&mut self, server: &Server) -> (i32, Duration) {
        let ssh = self.ssh_children();
        assert!(!ssh.is_empty(), "the tunnel has no ssh control master");
        let sent = Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.wait(10, "the tunnel to exit");
        let took = sent.elapsed();
        for pid in ssh {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z "));
            assert!(!alive, "ssh process {pid} outlived the tunnel");
        }
        assert_eq!(ssh_left(server), Vec::<String>::new(), "ssh processes left");
        (status.code().unwrap_or(-1), took)
    }
}

impl Drop for Tunnel {
    /// A test that failed half-way: end the tunnel and its ssh processes.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            for pid in self.ssh_children() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The ssh processes still running with this server's client configuration.
fn ssh_left(server: &Server) -> Vec<String> {
    ssh_left_with(server.config())
}

/// The ssh processes still running with the client configuration `config`.
pub fn ssh_left_with(config: &Path) -> Vec<String> {
    let config = config.to_str().unwrap().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.starts_with("ssh ") && c.contains(&config))
        .collect()
}

/// A forward's local port.
pub fn local_of(forward: &Value) -> u16 {
    forward["local_port"].as_u64().unwrap() as u16
}

/// The `forward` events among `events`.
pub fn forwards(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "forward").collect()
}

/// The event saying that `testhost` streams its apps.
pub fn live() -> Value {
    json!({"event": "host", "host": "testhost", "state": "live"})
}

/// Fault injection: the server's pm2-port as it was before `list --watch` (clap refuses the
/// flag); everything else is the real one.
pub fn old_pm2_port() -> String {
    format!(
        "#!/bin/sh
case \" $* \" in *\" --watch \"*) \
         echo \"error: unexpected argument '--watch' found\" >&2; exit 2;; esac\nexec {} \"$@\"\n",
        bin().display()
    )
}

/// Fault injection: a `pm2-port` whose `list --watch` runs `watch` (sh), and whose `list --json`
/// says no apps.
pub fn fake_stream(watch: &str) -> String {
    format!("#!/bin/sh\ncase \" $* \" in *\" --watch \"*) {watch};; esac\necho '[]'\n")
}

/// An `apps` line of `list --json --watch`: the one app `name`, online on `port`.
pub fn apps_line(name: &str, port: u16) -> String {
    json!({"event": "apps", "daemon": true, "apps": [{"name": name, "port": port, "status": "online"}]})
        .to_string()
}

pub fn forward_of<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "forward" && e["name"] == name)
        .unwrap_or_else(|| panic!("no forward for {name} in {events:?}"))
}

#[test]
fn two_apps_are_forwarded_and_sigterm_leaves_no_ssh() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.start_app("shop", sb.port(0));
    server.start_app("blog", sb.port(1));
    // The apps listen in the server's network stack only.
    laptop.unreachable(sb.port(0));
    laptop.unreachable(sb.port(1));
    // The laptop uses both ports itself.
    let _held = [laptop.listen(sb.port(0)), laptop.listen(sb.port(1))];

    let mut tunnel = Tunnel::spawn(&sb, &laptop, &server, &[]);
    let events = tunnel.until_ready();
    assert_eq!(events.len(), 3, "{events:?}");
    // Followed live: the stream, not a poll.
    assert_eq!(events[0], live());
    for (name, port) in [("shop", sb.port(0)), ("blog", sb.port(1))] {
        let f = forward_of(&events, name);
        assert_eq!(f["remote_port"], port);
        // The remote port is busy here: remapped.
        let local = f["local_port"].as_u64().unwrap() as u16;
        assert_ne!(local, port);
        assert_eq!(
            laptop.http_get(local).unwrap(),
            format!("hello from {name} on {port}\n")
        );
    }
    assert_eq!(tunnel.terminate(&server), 0);
}

#[test]
fn watch_adds_new_apps_and_cancels_deleted_ones() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.start_app("one", sb.port(0));
    server.start_app("two", sb.port(1));
    laptop.unreachable(sb.port(0));
    laptop.unreachable(sb.port(1));
    // `--watch` is the default now, and still accepted.
    let mut tunnel = Tunnel::spawn(&sb, &laptop, &server, &["--watch"]);
    let events = tunnel.until_ready();
    assert_eq!(events[0], live());
    assert_eq!(forwards(&events).len(), 2, "{events:?}");
    let two_local = forward_of(&events, "two")["local_port"].as_u64().unwrap() as u16;
    // Free here: the same port on both sides.
    assert_eq!(two_local, sb.port(1));
    assert_eq!(
        laptop.http_get(two_local).unwrap(),
        format!("hello from two on {}\n", sb.port(1))
    );

    laptop.unreachable(sb.port(2));
    server.start_app("three", sb.port(2));
    let added = tunnel.next(10);
    assert_eq!(added["event"], "forward", "{added}");
    assert_eq!(added["name"], "three");
    assert_eq!(added["remote_port"], sb.port(2));
    let local = added["local_port"].as_u64().unwrap() as u16;
    assert_eq!(local, sb.port(2));
    assert_eq!(
        laptop.http_get(local).unwrap(),
        format!("hello from three on {}\n", sb.port(2))
    );

    server.pm2(["delete", "two"]);
    let cancelled = tunnel.next(10);
    assert_eq!(
        cancelled,
        json!({"event": "cancel", "host": "testhost", "name": "two", "local_port": two_local})
    );
    wait_for(5, "the local port to close", || {
        laptop.refused(two_local).then_some(())
    });
    assert_eq!(tunnel.terminate(&server), 0);
}

#[test]
fn a_host_that_looks_like_an_option_is_refused_and_runs_nothing() {
    let sb = Sandbox::new();
    let marker = sb.root.path().join("PWNED");
    let proxy = format!("-oProxyCommand=touch {}", marker.display());
    let err = sb.run(["tunnel", "--", &proxy]).fails(2);
    assert!(err.contains("would be read by ssh as an option"), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists());
}

/// Two aliases of one server (same user, address, port and ProxyCommand) would be two
/// connections and its apps twice: refused before connecting. Two servers that share an address
/// and differ in the way there (their ProxyCommands) are two servers.
#[test]
fn two_names_of_one_server_are_refused() {
    let (sb, sb_b) = (Sandbox::new(), Sandbox::new());
    let laptop = Laptop::new();
    let (a, b) = (Server::start(&sb), Server::start(&sb_b));
    let config = config_for(
        sb.root.path(),
        &[("shop", &a), ("shop-again", &a), ("other", &b)],
    );
    let config = config.to_str().unwrap();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let err = laptop
        .run(
            &sb,
            [
                "tunnel",
                "-F",
                config,
                "--once",
                "shop",
                "other",
                "shop-again",
            ],
        )
        .fails(2);
    let proxy = read(a.config())
        .lines()
        .find_map(|l| l.strip_prefix("  ProxyCommand ").map(str::to_string))
        .unwrap();
    assert_eq!(
        err,
        format!(
            "error: `shop` and `shop-again` are the same server ({user}@127.0.0.1:22 through `{proxy}`, by `ssh -G`): give it once\n"
        )
    );
    // Nothing connected.
    let log = std::fs::read_to_string(a.ssh.dir.join("sshd.log")).unwrap_or_default();
    assert!(!log.contains("Accepted"), "{log}");
}

#[test]
fn no_apps_unreachable_and_a_bad_key_fail_clearly() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let config = server.config().to_str().unwrap();

    let err = laptop
        .run(&sb, ["tunnel", "-F", config, "--once", "testhost"])
        .fails(1);
    assert_eq!(
        err,
        "error: `testhost` has no online PM2 app with a port (leave out `--once` to wait for \
         some)\n"
    );

    let closed = laptop.closed_port();
    let err = laptop
        .run(
            &sb,
            [
                "tunnel",
                "-F",
                config,
                // Straight to a closed port here, not through the server's sshd.
                "-o",
                "ProxyCommand=none",
                "-o",
                &format!("Port={closed}"),
                "testhost",
            ],
        )
        .fails(1);
    assert!(
        err.contains("cannot connect to `testhost`") && err.contains("Connection refused"),
        "{err}"
    );

    let bad = server.ssh.dir.join("bad_config");
    std::fs::write(
        &bad,
        std::fs::read_to_string(server.config())
            .unwrap()
            .replace("/id\n", "/other_id\n"),
    )
    .unwrap();
    let err = laptop
        .run(&sb, ["tunnel", "-F", bad.to_str().unwrap(), "testhost"])
        .fails(1);
    assert!(
        err.contains("cannot connect to `testhost`") && err.contains("Permission denied"),
        "{err}"
    );
}

#[test]
fn a_broken_connection_is_reconnected_and_said_so() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.start_app("web", sb.port(0));
    laptop.unreachable(sb.port(0));
    let log = sb.root.path().join("tunnel.log");
    let mut tunnel = Tunnel::spawn_logging(
        &sb,
        &laptop,
        &server,
        &[],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let events = tunnel.until_ready();
    let local = forward_of(&events, "web")["local_port"].as_u64().unwrap() as u16;
    // Break the link: the control master dies.
    for pid in tunnel.ssh_children() {
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
    let body = wait_for(20, "the forward to come back", || laptop.http_get(local));
    assert_eq!(body, format!("hello from web on {}\n", sb.port(0)));
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("the connection to `testhost` broke"),
        "{said}"
    );
    assert!(said.contains("reconnecting in 1s"), "{said}");
    assert!(said.contains("reconnected to `testhost`"), "{said}");
    assert_eq!(tunnel.terminate(&server), 0);
}

/// Fault injection: a `pm2-port` that never answers `list --json` (a stuck PM2, a hung disk).
/// It marks each start in `$HOME/listing` and sleeps in the sandbox, whose end kills it.
const HUNG_LIST: &str = "#!/bin/sh\ncd \"$HOME\" || exit 1\n: > listing\nexec sleep 600\n";

#[test]
fn a_hung_first_list_fails_naming_the_host_and_the_wait() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.fake_pm2_port(HUNG_LIST);

    let log = sb.root.path().join("timeout.log");
    let mut cmd = tunnel_cmd(&sb, &laptop, &server, &[]);
    cmd.env("PM2_PORT_TUNNEL_LIST_TIMEOUT", "2");
    let mut tunnel = Tunnel::start(cmd, log_file(&log));
    let started = Instant::now();
    let status = tunnel.wait(20, "the tunnel to give up on the hung list");
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        read(&log),
        "error: asking `testhost` for its apps: no answer within 2s (a stuck `pm2-port list` or \
         `pm2 jlist` there? PM2_PORT_TUNNEL_LIST_TIMEOUT=SECS waits longer)\n"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(tunnel.rest(), Vec::<String>::new());
    assert_eq!(ssh_left(&server), Vec::<String>::new());
}

#[test]
fn sigterm_while_the_first_list_hangs_ends_the_tunnel_at_once() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.fake_pm2_port(HUNG_LIST);
    let listing = server.home().join("listing");
    // The default wait (30 s) is far longer than the test's bound.
    let log = sb.root.path().join("sigterm.log");
    let mut tunnel = Tunnel::start(tunnel_cmd(&sb, &laptop, &server, &[]), log_file(&log));
    wait_for(20, "the list to hang", || listing.exists().then_some(()));
    let (code, took) = tunnel.terminate_timed(&server);
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(read(&log), "");
    assert_eq!(tunnel.rest(), Vec::<String>::new());
}

/// A server whose pm2-port cannot stream: listed every interval, and a listing that hangs there is
/// a warning.
#[test]
fn a_hung_list_while_polling_is_a_warning_and_sigterm_ends_the_wait() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.start_app("web", sb.port(0));
    laptop.unreachable(sb.port(0));
    server.fake_pm2_port(&old_pm2_port());
    let log = sb.root.path().join("tunnel.log");
    let mut cmd = tunnel_cmd(&sb, &laptop, &server, &["--json", "--interval", "1"]);
    cmd.env("PM2_PORT_TUNNEL_LIST_TIMEOUT", "2");
    let mut tunnel = Tunnel::start(cmd, log_file(&log));
    let events = tunnel.until_ready();
    let why = "error: unexpected argument '--watch' found";
    assert_eq!(
        events[0],
        json!({"event": "host", "host": "testhost", "state": "polling", "message": why})
    );
    let local = forward_of(&events, "web")["local_port"].as_u64().unwrap() as u16;
    assert_eq!(local, sb.port(0));

    server.fake_pm2_port(HUNG_LIST);
    let warning = "warning: asking `testhost` for its apps: no answer within 2s (a stuck \
                   `pm2-port list` or `pm2 jlist` there? PM2_PORT_TUNNEL_LIST_TIMEOUT=SECS waits \
                   longer)";
    wait_for(20, "a warning about the hung list", || {
        read(&log).contains("\nwarning: ").then_some(())
    });
    // The forward in place works on meanwhile.
    assert_eq!(
        laptop.http_get(local).unwrap(),
        format!("hello from web on {}\n", sb.port(0))
    );

    // SIGTERM while a list hangs.
    let listing = server.home().join("listing");
    std::fs::remove_file(&listing).unwrap();
    wait_for(20, "the next list to hang", || {
        listing.exists().then_some(())
    });
    let (code, took) = tunnel.terminate_timed(&server);
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let said = read(&log);
    let mut lines = said.lines();
    assert_eq!(
        lines.next(),
        Some(
            format!(
                "note: `testhost` cannot stream its apps ({why}); listing them every 1s instead \
                 (a pm2-port with `list --watch` there follows them live)"
            )
            .as_str()
        )
    );
    assert!(lines.all(|l| l == warning), "{said}");
    assert_eq!(tunnel.rest(), Vec::<String>::new());
}

/// A hostile server: its `pm2-port list --json` prints `$HOME/list.out`, and `$HOME/list.err` on
/// stderr; it fails when `$HOME/list.fail` exists.
const HOSTILE_LIST: &str = "#!/bin/sh\ncd \"$HOME\" || exit 1\n[ -f list.err ] && cat list.err >&2\n\
                            [ -f list.fail ] && exit 1\ncat list.out\n";

#[test]
fn remote_names_and_stderr_reach_the_terminal_escaped() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.fake_pm2_port(HOSTILE_LIST);
    let home = server.home();
    let port = sb.port(0);
    // Sets the window title, clears the screen, and forges a table line.
    let name = "web\x1b]0;pwned\x07\x1b[2J\n  http://localhost:1  forged";
    std::fs::write(
        home.join("list.out"),
        json!([{"name": name, "port": port, "status": "online"}]).to_string(),
    )
    .unwrap();

    // JSON stays faithful data. The fake answers `list --watch` with the list and ends: not a
    // stream, so it is polled, and the message quotes what it printed, escaped.
    let mut tunnel = Tunnel::spawn(&sb, &laptop, &server, &[]);
    let events = tunnel.until_ready();
    let printed = r#"its `pm2-port list --json --watch` printed `[{"name":"web\u001b]0;pwned\u0007\u001b[2J\n  http://localho…`"#;
    assert_eq!(
        events,
        [
            json!({"event": "host", "host": "testhost", "state": "polling", "message": printed}),
            json!({"event": "forward", "host": "testhost", "name": name, "remote_port": port, "local_port": port, "url": "http://web-0-pwned-2j-http-localhost-1-forged.localhost:8800"})
        ]
    );
    assert_eq!(tunnel.terminate(&server), 0);

    let log = sb.root.path().join("tunnel.log");
    let mut tunnel = Tunnel::start(
        tunnel_cmd(&sb, &laptop, &server, &["--interval", "1"]),
        log_file(&log),
    );
    let shown = r"web\e]0;pwned\u{7}\e[2J\n  http://localhost:1  forged";
    assert_eq!(
        tunnel.next_line(30),
        format!(
            "  http://web-0-pwned-2j-http-localhost-1-forged.localhost:8800  \
             http://localhost:{port}  {shown}\n"
        )
    );
    std::fs::write(home.join("list.out"), "[]").unwrap();
    assert_eq!(
        tunnel.next_line(10),
        format!("- {shown} (was http://localhost:{port})\n")
    );
    std::fs::write(
        home.join("list.err"),
        "\x1b]2;owned\x07\x1b[31mboom\u{202e}\n",
    )
    .unwrap();
    std::fs::write(home.join("list.fail"), "").unwrap();
    wait_for(10, "a warning quoting the server's stderr", || {
        read(&log).contains("\nwarning: ").then_some(())
    });
    assert_eq!(tunnel.terminate(&server), 0);
    assert_eq!(tunnel.rest(), Vec::<String>::new());
    let said = read(&log);
    let mut lines = said.lines();
    assert_eq!(
        lines.next(),
        Some("tunnel to `testhost`; Ctrl-C to close it")
    );
    assert_eq!(
        lines.next(),
        Some("every app at http://NAME.localhost:8800; the list at http://localhost:8800/")
    );
    assert_eq!(
        lines.next(),
        Some(
            format!(
                "note: `testhost` cannot stream its apps ({printed}); listing them every 1s \
                 instead (a pm2-port with `list --watch` there follows them live)"
            )
            .as_str()
        )
    );
    let warning = r"warning: asking `testhost` for its apps failed (exit status: 1): \e]2;owned\u{7}\e[31mboom\u{202e}";
    assert!(lines.all(|l| l == warning), "{said:?}");
    assert!(!said.contains('\x1b'), "{said:?}");
}

/// An ssh configuration naming each server by its alias (their own configurations name each one
/// `testhost`).
pub fn config_for(dir: &Path, servers: &[(&str, &Server)]) -> std::path::PathBuf {
    let text: String = servers
        .iter()
        .map(|(alias, server)| {
            read(server.config()).replace("Host testhost\n", &format!("Host {alias}\n"))
        })
        .collect();
    let path = dir.join("ssh_config");
    std::fs::write(&path, text).unwrap();
    path
}

/// `tunnel -F CONFIG --json hosta hostb` on the laptop (CONFIG from [`config_for`]).
pub fn both(sb: &Sandbox, laptop: &Laptop, config: &Path) -> Command {
    laptop.cmd(
        sb,
        [
            "tunnel",
            "-F",
            config.to_str().unwrap(),
            "--json",
            "hosta",
            "hostb",
        ],
    )
}

/// Kill -9 every sshd process of `server` (its namespace's): the link to it breaks as when the
/// machine goes away.
fn kill_sshd(server: &Server) -> usize {
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sshd")
                && server.ns.holds(pid)
        })
        .collect();
    for pid in &pids {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    pids.len()
}

#[test]
fn two_servers_whose_apps_share_a_port_are_both_reachable_and_one_breaking_spares_the_other() {
    let (sb_a, sb_b) = (Sandbox::new(), Sandbox::new());
    // One laptop, two servers.
    let laptop = Laptop::new();
    let (a, b) = (Server::start(&sb_a), Server::start(&sb_b));
    // The same port on both servers, each in its own network stack.
    let port = sb_a.port(0);
    a.start_app("alpha", port);
    b.start_app("beta", port);
    laptop.unreachable(port);

    // One tunnel to both.
    let config = config_for(sb_a.root.path(), &[("hosta", &a), ("hostb", &b)]);
    let log = sb_a.root.path().join("tunnel.log");
    let mut tunnel = Tunnel::start(both(&sb_a, &laptop, &config), log_file(&log));
    let events = tunnel.until_ready();
    assert_eq!(events.len(), 4, "{events:?}");
    for host in ["hosta", "hostb"] {
        assert!(
            events.contains(&json!({"event": "host", "host": host, "state": "live"})),
            "{events:?}"
        );
    }
    let (fa, fb) = (forward_of(&events, "alpha"), forward_of(&events, "beta"));
    assert_eq!(
        (&fa["host"], &fa["remote_port"]),
        (&json!("hosta"), &json!(port))
    );
    assert_eq!(
        (&fb["host"], &fb["remote_port"]),
        (&json!("hostb"), &json!(port))
    );
    let (local_a, local_b) = (local_of(fa), local_of(fb));
    // Distinct local ports: the first forward kept the port, the other got port + 10000.
    let mut locals = [local_a, local_b];
    locals.sort();
    assert_eq!(locals, [port, port + 10000]);
    let alpha = format!("hello from alpha on {port}\n");
    let beta = format!("hello from beta on {port}\n");
    assert_eq!(laptop.http_get(local_a).unwrap(), alpha);
    assert_eq!(laptop.http_get(local_b).unwrap(), beta);
    // By name through the proxy: each app's name is unique, so the short name works as well as
    // the one with its server's.
    assert_eq!(fa["url"], "http://alpha.localhost:8800");
    for (host, body) in [
        ("alpha.localhost", &alpha),
        ("alpha.hosta.localhost", &alpha),
        ("beta.hostb.localhost", &beta),
    ] {
        let r = crate::proxy::get(&laptop, 8800, host, "/", &[]);
        assert_eq!((r.status, &r.text()), (200, body), "{host}");
    }
    assert_eq!(
        crate::proxy::get(&laptop, 8800, "beta.hosta.localhost", "/", &[]).status,
        404
    );

    // Server A goes away: its forward with it; B's serves on, and A's comes back by itself.
    assert!(kill_sshd(&a) > 0, "no sshd of server A");
    let down = tunnel.next(20);
    assert_eq!(
        (&down["event"], &down["host"], &down["state"]),
        (&json!("host"), &json!("hosta"), &json!("down")),
        "{down}"
    );
    assert_eq!(down["retry_in"], 1, "{down}");
    let mut b_failed = 0;
    let mut probes = 0;
    let back = wait_for(30, "alpha to answer again", || {
        probes += 1;
        if laptop.http_get(local_b).as_deref() != Some(beta.as_str()) {
            b_failed += 1;
        }
        laptop.http_get(local_a)
    });
    assert_eq!(back, alpha);
    assert_eq!(
        b_failed, 0,
        "beta failed {b_failed} of {probes} probes while hosta was down"
    );
    assert_eq!(laptop.http_get(local_b).unwrap(), beta);
    assert_eq!(
        tunnel.next(10),
        json!({"event": "host", "host": "hosta", "state": "up"})
    );
    assert_eq!(
        tunnel.next(10),
        json!({"event": "host", "host": "hosta", "state": "live"})
    );
    let said = read(&log);
    assert!(
        said.starts_with("warning: the connection to `hosta` broke"),
        "{said}"
    );
    assert!(
        said.contains("reconnecting in 1s\nreconnected to `hosta`\n"),
        "{said}"
    );
    assert!(!said.contains("hostb"), "{said}");

    // Each app is still where it was.
    assert_eq!(tunnel.terminate(&a), 0);
    assert_eq!(tunnel.rest(), Vec::<String>::new());
    laptop.unreachable(local_a);
    laptop.unreachable(local_b);
    assert_eq!(ssh_left_with(&config), Vec::<String>::new());
}

/// Every process below `pid` (children, their children, ...), from `/proc`: on the laptop the
/// tunnel's ssh processes, and through the master's ProxyCommand the server's sshd, its session
/// and what the session runs.
pub fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let p = e.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 1..];
            Some((p, after.split_whitespace().nth(1)?.parse().ok()?))
        })
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found.sort();
    found
}

#[test]
fn the_stream_spawns_nothing_while_nothing_changes_and_follows_a_daemon_kill() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.start_app("web", sb.port(0));
    laptop.unreachable(sb.port(0));
    let log = sb.root.path().join("tunnel.log");
    let mut tunnel = Tunnel::start(
        tunnel_cmd(&sb, &laptop, &server, &["--json"]),
        log_file(&log),
    );
    let events = tunnel.until_ready();
    let web = json!({"event": "forward", "host": "testhost", "name": "web", "remote_port": sb.port(0), "local_port": sb.port(0), "url": "http://web.localhost:8800"});
    assert_eq!(events, [live(), web.clone()]);

    // Nothing changes for 3 s (a poll every 2 s would run an ssh client here and a session
    // there): the same processes on both sides throughout, sampled every 10 ms.
    let at_rest = descendants(tunnel.child.id());
    assert!(at_rest.len() >= 4, "{at_rest:?}");
    let until = Instant::now() + Duration::from_secs(3);
    let mut samples = 0;
    while Instant::now() < until {
        assert_eq!(
            descendants(tunnel.child.id()),
            at_rest,
            "a process came or went"
        );
        samples += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(samples > 50, "{samples}");

    // PM2's daemon killed: its app is gone, its forward cancelled; a new daemon with the app
    // brings the forward back.
    server.pm2(["kill"]);
    assert_eq!(
        tunnel.next(10),
        json!({"event": "cancel", "host": "testhost", "name": "web", "local_port": sb.port(0)})
    );
    wait_for(5, "the local port to close", || {
        laptop.refused(sb.port(0)).then_some(())
    });
    server.start_app("web", sb.port(0));
    assert_eq!(tunnel.next(10), web);
    assert_eq!(
        laptop.http_get(sb.port(0)).unwrap(),
        format!("hello from web on {}\n", sb.port(0))
    );
    assert_eq!(tunnel.terminate(&server), 0);
    assert_eq!(
        read(&log),
        "PM2's daemon on `testhost` stopped; its apps are gone\nPM2's daemon on `testhost` runs (again)\n"
    );
}

// Attacks on the follower (issue 14, points 2 and 3): each test below failed on the commit that
// introduced `sys::follow`. Its comment tells what went wrong then (in the present tense of the
// report, naming the code as it was); the test asserts what happens now.

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Watch the tunnel's memory for `secs`: panics (after killing it) as soon as it passes `max_mib`.
fn assert_memory_stays_below(tunnel: &mut Tunnel, secs: u64, max_mib: u64) {
    let pid = tunnel.child.id();
    let until = Instant::now() + Duration::from_secs(secs);
    let mut peak = 0;
    while Instant::now() < until {
        let rss = rss_kib(pid) / 1024;
        peak = peak.max(rss);
        if rss > max_mib {
            // Before it takes the machine down.
            for pid in tunnel.ssh_children() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            let _ = tunnel.child.kill();
            let _ = tunnel.child.wait();
            panic!(
                "the tunnel took {rss} MiB after {:?} (limit {max_mib} MiB)",
                Instant::now() + Duration::from_secs(secs) - until
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("peak {peak} MiB");
}

/// A hostile server: its stream starts an `apps` event and never ends the line. The tunnel reads
/// the whole line into memory (BufRead::lines in sys/follow.rs), ~60 MiB a second here, until the
/// laptop runs out of memory. A line longer than any real event (a few MiB at most) should end
/// the stream instead.
#[test]
fn attack_a_stream_line_that_never_ends_does_not_eat_the_laptops_memory() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.fake_pm2_port(&fake_stream(
        "printf '{\"event\":\"apps\",\"daemon\":true,\"apps\":[{\"name\":\"'; \
         yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | tr -d '\\n'",
    ));
    let mut tunnel = Tunnel::spawn(&sb, &laptop, &server, &[]);
    assert_memory_stays_below(&mut tunnel, 15, 256);
}

/// A hostile (or just chatty) server: a well-formed `apps` event of 2 MiB, sent again and again as
/// fast as ssh carries it. The lines queue up unbounded between the stream's reader thread and the
/// follower (the `mpsc::channel()` in `Follower::stream`): hundreds of MiB within seconds.
#[test]
fn attack_a_flood_of_big_events_does_not_eat_the_laptops_memory() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let apps: Vec<Value> = (0..2000)
        .map(|i| json!({"name": format!("a{i}"), "port": 30000 + i, "status": "stopped", "pad": "x".repeat(1000)}))
        .collect();
    std::fs::write(
        server.home().join("big.line"),
        format!(
            "{}\n",
            json!({"event": "apps", "daemon": true, "apps": apps})
        ),
    )
    .unwrap();
    server.fake_pm2_port(&fake_stream(
        "while :; do cat \"$HOME/big.line\" || exit; done",
    ));
    let mut tunnel = Tunnel::spawn(&sb, &laptop, &server, &[]);
    assert_memory_stays_below(&mut tunnel, 15, 256);
}

/// A login shell that greets on stdout (`.profile` echoing a banner, as many do): the greeting is
/// the stream's first line, so the tunnel decides the server cannot stream and polls it every
/// interval for as long as the link lives (a login shell and a pm2-port every 2 s), though its
/// pm2-port streams fine. Lines before the first event that are not JSON should be skipped.
#[test]
fn attack_a_profile_that_greets_on_stdout_does_not_disable_the_stream() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.start_app("web", sb.port(0));
    let profile = server.home().join(".profile");
    let mut text = read(&profile);
    text.push_str("echo \"Welcome to the server!\"\n");
    std::fs::write(&profile, text).unwrap();
    let mut tunnel = Tunnel::spawn(&sb, &laptop, &server, &[]);
    let events = tunnel.until_ready();
    assert_eq!(events[0], live(), "{events:?}");
    assert_eq!(tunnel.terminate(&server), 0);
}

/// Fault injection: a stream whose first event is an `error` (what the real `list --watch` sends
/// when PM2's daemon is wedged: `kill -STOP` of the daemon reproduces it), then nothing.
const ERROR_FIRST: &str = "echo '{\"event\":\"error\",\"message\":\"cannot ask PM2s daemon: no reply\"}'; \
    exec cat >/dev/null";

/// Two servers, one with a wedged PM2 daemon: its stream's first event is an `error`, which
/// counts as an event (so the list timeout no longer applies) but not as an answer (only `apps`
/// sets `answered`), so `ready` never comes, for either host, for as long as the daemon is wedged.
/// The error should count as the host's first answer (ready, with a warning), or fail it after
/// the list timeout.
#[test]
fn attack_ready_comes_though_one_server_answers_its_stream_with_an_error() {
    let (sb_a, sb_b) = (Sandbox::new(), Sandbox::new());
    let laptop = Laptop::new();
    let (a, b) = (Server::start(&sb_a), Server::start(&sb_b));
    a.start_app("alpha", sb_a.port(0));
    b.fake_pm2_port(&fake_stream(ERROR_FIRST));
    let config = config_for(sb_a.root.path(), &[("hosta", &a), ("hostb", &b)]);
    let mut cmd = both(&sb_a, &laptop, &config);
    cmd.env("PM2_PORT_TUNNEL_LIST_TIMEOUT", "3");
    let mut tunnel = Tunnel::start(cmd, Stdio::null());
    tunnel.until_event(20, "ready");
    assert_eq!(tunnel.terminate(&a), 0);
}

/// A stream whose first event is an `error` and whose apps come after: the host streams, but its
/// `host`/`live` event is never sent (`events > 1 || self.send(Event::Live)` in `Follower::stream`
/// counts the error as the first event).
#[test]
fn attack_a_stream_that_starts_with_an_error_is_still_said_live() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let port = sb.port(0);
    server.fake_pm2_port(&fake_stream(&format!(
        "echo '{{\"event\":\"error\",\"message\":\"boom\"}}'; sleep 1; echo '{}'; exec cat >/dev/null",
        apps_line("web", port)
    )));
    let mut tunnel = Tunnel::spawn(&sb, &laptop, &server, &[]);
    let events = tunnel.until_ready();
    assert!(events.contains(&live()), "{events:?}");
    assert_eq!(tunnel.terminate(&server), 0);
}

/// A server whose stream ends after each event (a crashing pm2-port, a wrapper that exits): it is
/// started again every ~2 s forever, without backoff (the fixed `pause(.., 1s)` of
/// `Follower::session`), each time a new ssh session, login shell and pm2-port there, a warning
/// and a `live` event here.
#[test]
fn attack_a_stream_that_keeps_ending_is_restarted_with_backoff() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let port = sb.port(0);
    server.fake_pm2_port(&fake_stream(&format!(
        "echo x >> \"$HOME/starts\"; echo '{}'; exit 0",
        apps_line("web", port)
    )));
    let mut tunnel = Tunnel::spawn(&sb, &laptop, &server, &[]);
    tunnel.until_ready();
    std::thread::sleep(Duration::from_secs(24));
    let starts = read(&server.home().join("starts")).lines().count();
    assert_eq!(tunnel.terminate(&server), 0);
    // Backoff 1, 2, 4, 8 s: about 5 starts in 24 s. Without it: 12.
    assert!(starts <= 6, "the stream was started {starts} times in 24 s");
}

/// A host that cannot be reached in the middle of its connection (its ProxyCommand answers the
/// banner, then nothing: a jump host whose target hangs, a stuck `cloudflared`/`aws ssm`): the
/// master is SIGKILLed (`Ssh::close`) when the tunnel ends or an attempt times out, and its
/// ProxyCommand, in the master's process group, outlives it: one left per attempt.
#[test]
fn attack_no_proxy_command_outlives_the_tunnel() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.start_app("web", sb.port(0));
    let stall = sb.root.path().join("stall.sh");
    std::fs::write(&stall, "echo SSH-2.0-OpenSSH_9.2\nsleep 600\n").unwrap();
    let config = sb.root.path().join("with_stall");
    std::fs::write(
        &config,
        format!(
            "{}Host stall\n  ProxyCommand sh {}\n",
            read(server.config()),
            stall.display()
        ),
    )
    .unwrap();
    let mut tunnel = Tunnel::start(
        laptop.cmd(
            &sb,
            [
                "tunnel",
                "-F",
                config.to_str().unwrap(),
                "--json",
                "testhost",
                "stall",
            ],
        ),
        Stdio::null(),
    );
    let stall_text = stall.to_str().unwrap().to_string();
    let proxies = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&stall_text))
            })
            .collect()
    };
    wait_for(20, "the stall host's ProxyCommand", || {
        (!proxies().is_empty()).then_some(())
    });
    let proxy = tunnel.next(30);
    assert_eq!(proxy["event"], "proxy", "{proxy}");
    let first = tunnel.next(30);
    assert_eq!(first, live(), "{first}");
    assert_eq!(tunnel.terminate(&server), 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(proxies(), Vec::<u32>::new(), "ProxyCommand processes left");
}

/// The local port chosen for an app is taken before ssh binds it (another program starts between
/// the check and `ssh -O forward`): the forward fails with a warning and the app is never
/// forwarded, neither on another port nor later, since a streaming server sends no new event
/// while its apps do not change (`Tunnel::add` returns on the error).
#[test]
fn attack_an_app_whose_local_port_is_taken_before_the_forward_is_forwarded_anyway() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let port = sb.port(0);
    server.start_app("web", port);
    laptop.unreachable(port);
    // An `ssh` that lets another program take the port just before the first forward to it.
    let wrap = sb.root.path().join("wrap");
    std::fs::create_dir_all(&wrap).unwrap();
    let node = Command::new("sh")
        .args(["-c", "command -v node"])
        .output()
        .unwrap();
    let node = String::from_utf8_lossy(&node.stdout).trim().to_string();
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in *\"-O forward -L 127.0.0.1:{port}:\"*)\n\
         if mkdir {w}/raced 2>/dev/null; then\n\
         {node} -e \"require('net').createServer().listen({port},'127.0.0.1');setTimeout(()=>process.exit(),3000)\" </dev/null >/dev/null 2>&1 &\n\
         sleep 1\nfi;;\nesac\nexec /usr/bin/ssh \"$@\"\n",
        w = wrap.display()
    );
    let ssh = wrap.join("ssh");
    std::fs::write(&ssh, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = tunnel_cmd(&sb, &laptop, &server, &["--json"]);
    cmd.env(
        "PATH",
        format!("{}:{}", wrap.display(), std::env::var("PATH").unwrap()),
    );
    let mut tunnel = Tunnel::start(cmd, Stdio::null());
    let e = tunnel.until_event(15, "forward");
    assert_eq!(
        laptop.http_get(local_of(&e)).unwrap(),
        format!("hello from web on {port}\n")
    );
    assert_eq!(tunnel.terminate(&server), 0);
}

/// Two hosts, one of which refuses the key: its first failure is only a line on stderr; a `--json`
/// reader learns nothing of it until its second failure (`Event::Failed` gives no `host` event).
#[test]
fn attack_a_host_failing_its_first_connection_gets_a_down_event() {
    let (sb_a, sb_b) = (Sandbox::new(), Sandbox::new());
    let laptop = Laptop::new();
    let (a, b) = (Server::start(&sb_a), Server::start(&sb_b));
    a.start_app("alpha", sb_a.port(0));
    let config = config_for(sb_a.root.path(), &[("hosta", &a), ("hostb", &b)]);
    // hostb offers a key its server does not know.
    let text = read(&config);
    let b_id = format!("{}/id\n", b.ssh.dir.display());
    let b_other = format!("{}/other_id\n", b.ssh.dir.display());
    std::fs::write(&config, text.replace(&b_id, &b_other)).unwrap();
    let mut tunnel = Tunnel::start(both(&sb_a, &laptop, &config), Stdio::null());
    let events = tunnel.until_ready();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "host" && e["host"] == "hostb" && e["state"] == "down"),
        "{events:?}"
    );
    assert_eq!(tunnel.terminate(&a), 0);
}

/// A host whose first connection fails after the others are up: the proxy's index shows it down
/// at once (it used to keep the state it had before, until the host's next event).
#[test]
fn the_index_shows_a_host_whose_first_connection_fails_as_down_at_once() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let a = Server::start(&sb);
    a.start_app("alpha", sb.port(0));
    let config = config_for(sb.root.path(), &[("hosta", &a)]);
    // hostb: a link that fails after 5 s, when hosta is long up and streaming.
    let mut text = read(&config);
    text.push_str("Host hostb\n  HostName 127.0.0.1\n  ProxyCommand sh -c 'sleep 5; exit 1'\n");
    std::fs::write(&config, text).unwrap();
    let mut tunnel = Tunnel::start(both(&sb, &laptop, &config), Stdio::null());
    let events = tunnel.until_ready();
    let down = events
        .iter()
        .position(|e| e["event"] == "host" && e["host"] == "hostb" && e["state"] == "down")
        .expect("a down event for hostb");
    let forward = events
        .iter()
        .position(|e| e["event"] == "forward" && e["host"] == "hosta")
        .expect("a forward of hosta");
    assert!(
        forward < down,
        "hostb failed before hosta was up: {events:?}"
    );
    let r = crate::proxy::get(&laptop, 8800, "localhost:8800", "/.pm2-port/apps.json", &[]);
    let model: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        model["servers"],
        json!([
            {"host": "hosta", "label": "hosta", "state": "live"},
            {"host": "hostb", "label": "hostb", "state": "down"}
        ])
    );
    assert_eq!(tunnel.terminate(&a), 0);
}

/// `--interval` is any u64: a server that cannot stream is then polled with `Instant::now() +
/// interval` (`Follower::poll`), which panics; the scope re-panics in the main thread (exit 101)
/// and the panicked thread's master and its session are left running. Same with
/// PM2_PORT_TUNNEL_LIST_TIMEOUT=18446744073709551615 (`proc::run`'s deadline). Both are now
/// refused (1 to 86400 seconds) before anything runs.
#[test]
fn attack_a_huge_interval_is_refused_before_anything_runs() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    for (flag, env) in [
        ("18446744073709551615", None),
        ("2", Some("18446744073709551615")),
    ] {
        let mut cmd = tunnel_cmd(&sb, &laptop, &server, &["--interval", flag]);
        if let Some(secs) = env {
            cmd.env("PM2_PORT_TUNNEL_LIST_TIMEOUT", secs);
        }
        let out = Run(cmd.output().unwrap());
        let err = out.fails(2);
        assert!(
            err.contains("1..=86400") || err.contains("1 to 86400"),
            "{err}"
        );
    }
    assert_eq!(ssh_left(&server), Vec::<String>::new());
}

/// On a terminal, several hosts connect at once and each master may prompt there: two host-key
/// questions are printed together and read the same terminal, so the `yes` typed after the
/// fingerprint shown last may accept the other host's key. One prompt at a time (connect the
/// hosts that may prompt one after the other) is needed.
#[test]
fn attack_two_new_hosts_never_ask_their_host_key_questions_at_once() {
    let (sb_a, sb_b) = (Sandbox::new(), Sandbox::new());
    let laptop = Laptop::new();
    let (a, b) = (Server::start(&sb_a), Server::start(&sb_b));
    let config = config_for(sb_a.root.path(), &[("hosta", &a), ("hostb", &b)]);
    // Unknown host keys, asked about; each host its own name in a fresh known_hosts.
    let known = sb_a.root.path().join("fresh_known_hosts");
    let text: String = read(&config)
        .replace(
            "StrictHostKeyChecking accept-new",
            "StrictHostKeyChecking ask",
        )
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("UserKnownHostsFile") {
                format!("  UserKnownHostsFile {}\n", known.display())
            } else if let Some(alias) = l.strip_prefix("Host ") {
                format!("Host {alias}\n  HostKeyAlias {alias}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&config, text).unwrap();
    let mut cmd = laptop.cmd(
        &sb_a,
        ["tunnel", "-F", config.to_str().unwrap(), "hosta", "hostb"],
    );
    cmd.stdin(Stdio::inherit()).env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(5_000)).unwrap();
    p.exp_string("Are you sure you want to continue connecting")
        .unwrap();
    let second = p.exp_string("Are you sure you want to continue connecting");
    // Ctrl-C, then the session's drop kills what is left.
    let _ = p.send_control('c');
    std::thread::sleep(Duration::from_secs(3));
    drop(p);
    assert!(
        second.is_err(),
        "a second host-key question while the first is unanswered"
    );
}

/// The link breaks and, meanwhile, another program takes the forward's local port: once
/// reconnected, the app is said cancelled on its old port and forwarded on a new one.
#[test]
fn a_forward_whose_port_was_taken_during_a_break_moves_and_says_so() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    server.start_app("web", sb.port(0));
    let mut tunnel = Tunnel::spawn(&sb, &laptop, &server, &[]);
    let events = tunnel.until_ready();
    let local = local_of(forward_of(&events, "web"));
    for pid in tunnel.ssh_children() {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    // Taken here as soon as the dead master lets it go.
    let _held = wait_for(10, "the old forward's port to be free", || {
        laptop
            .ns
            .enter(|| std::net::TcpListener::bind(("127.0.0.1", local)).ok())
    });
    let mut seen = Vec::new();
    let moved = wait_for(30, "the forward to move", || {
        let e = tunnel.next(30);
        seen.push(e.clone());
        (e["event"] == "forward").then_some(e)
    });
    assert!(
        seen.contains(
            &json!({"event": "cancel", "host": "testhost", "name": "web", "local_port": local})
        ),
        "{seen:?}"
    );
    let new = local_of(&moved);
    assert_ne!(new, local);
    assert_eq!(
        laptop.http_get(new).unwrap(),
        format!("hello from web on {}\n", sb.port(0))
    );
    assert_eq!(tunnel.terminate(&server), 0);
}
