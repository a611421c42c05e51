//! `tunnel` against a real sshd on loopback and real PM2 apps behind it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

use crate::sshd::SshServer;
use crate::support::*;

/// A running `tunnel --json` and its event lines.
struct Tunnel {
    child: Child,
    events: Receiver<Value>,
}

impl Tunnel {
    fn spawn(sb: &Sandbox, server: &SshServer, extra: &[&str]) -> Tunnel {
        Tunnel::spawn_logging(sb, server, extra, Stdio::null())
    }

    fn spawn_logging(sb: &Sandbox, server: &SshServer, extra: &[&str], stderr: Stdio) -> Tunnel {
        let mut args = vec!["tunnel", "-F", server.config.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        args.push("testhost");
        let mut child = sb
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str::<Value>(&line).unwrap());
            }
        });
        Tunnel { child, events }
    }

    fn next(&self, secs: u64) -> Value {
        self.events
            .recv_timeout(Duration::from_secs(secs))
            .expect("no event from the tunnel in time")
    }

    /// Events up to and including `ready`.
    fn until_ready(&self) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let e = self.next(30);
            if e["event"] == "ready" {
                return all;
            }
            all.push(e);
        }
    }

    /// The ssh processes this tunnel started (its children).
    fn ssh_children(&self) -> Vec<u32> {
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
    fn terminate(mut self, server: &SshServer) -> i32 {
        let ssh = self.ssh_children();
        assert!(!ssh.is_empty(), "the tunnel has no ssh control master");
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = wait_for(10, "the tunnel to exit", || self.child.try_wait().unwrap());
        for pid in ssh {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z "));
            assert!(!alive, "ssh process {pid} outlived the tunnel");
        }
        let config = server.config.to_str().unwrap().to_string();
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.starts_with("ssh ") && c.contains(&config))
            .collect();
        assert!(left.is_empty(), "ssh processes left: {left:?}");
        status.code().unwrap_or(-1)
    }
}

fn forward_of<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "forward" && e["name"] == name)
        .unwrap_or_else(|| panic!("no forward for {name} in {events:?}"))
}

#[test]
fn two_apps_are_forwarded_and_sigterm_leaves_no_ssh() {
    let sb = Sandbox::new();
    let server = SshServer::start(&sb);
    sb.start_foreign_app("shop", sb.port(0));
    sb.start_foreign_app("blog", sb.port(1));

    let tunnel = Tunnel::spawn(&sb, &server, &[]);
    let events = tunnel.until_ready();
    assert_eq!(events.len(), 2, "{events:?}");
    for (name, port) in [("shop", sb.port(0)), ("blog", sb.port(1))] {
        let f = forward_of(&events, name);
        assert_eq!(f["remote_port"], port);
        // One machine plays both sides, so the remote port is busy here: remapped.
        let local = f["local_port"].as_u64().unwrap() as u16;
        assert_ne!(local, port);
        assert_eq!(
            http_get("127.0.0.1", local).unwrap(),
            format!("hello from {name} on {port}\n")
        );
    }
    assert_eq!(tunnel.terminate(&server), 0);
}

#[test]
fn watch_adds_new_apps_and_cancels_deleted_ones() {
    let sb = Sandbox::new();
    let server = SshServer::start(&sb);
    sb.start_foreign_app("one", sb.port(0));
    sb.start_foreign_app("two", sb.port(1));
    let tunnel = Tunnel::spawn(&sb, &server, &["--watch", "--interval", "1"]);
    let events = tunnel.until_ready();
    let two_local = forward_of(&events, "two")["local_port"].as_u64().unwrap() as u16;

    sb.start_foreign_app("three", sb.port(2));
    let added = tunnel.next(10);
    assert_eq!(added["event"], "forward", "{added}");
    assert_eq!(added["name"], "three");
    assert_eq!(added["remote_port"], sb.port(2));
    let local = added["local_port"].as_u64().unwrap() as u16;
    assert_eq!(
        http_get("127.0.0.1", local).unwrap(),
        format!("hello from three on {}\n", sb.port(2))
    );

    sb.pm2(["delete", "two"]);
    let cancelled = tunnel.next(10);
    assert_eq!(
        cancelled,
        json!({"event": "cancel", "name": "two", "local_port": two_local})
    );
    wait_for(5, "the local port to close", || {
        std::net::TcpStream::connect(("127.0.0.1", two_local))
            .is_err()
            .then_some(())
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

#[test]
fn no_apps_unreachable_and_a_bad_key_fail_clearly() {
    let sb = Sandbox::new();
    let server = SshServer::start(&sb);
    let config = server.config.to_str().unwrap();

    let err = sb.run(["tunnel", "-F", config, "testhost"]).fails(1);
    assert!(
        err.contains("`testhost` has no online PM2 app with a port"),
        "{err}"
    );

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = sb
        .run([
            "tunnel",
            "-F",
            config,
            "-o",
            &format!("Port={closed}"),
            "testhost",
        ])
        .fails(1);
    assert!(
        err.contains("cannot connect to `testhost`") && err.contains("Connection refused"),
        "{err}"
    );

    let bad = server.dir.join("bad_config");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&server.config)
            .unwrap()
            .replace("/id\n", "/other_id\n"),
    )
    .unwrap();
    let err = sb
        .run(["tunnel", "-F", bad.to_str().unwrap(), "testhost"])
        .fails(1);
    assert!(
        err.contains("cannot connect to `testhost`") && err.contains("Permission denied"),
        "{err}"
    );
}

#[test]
fn a_broken_connection_is_reconnected_and_said_so() {
    let sb = Sandbox::new();
    let server = SshServer::start(&sb);
    sb.start_foreign_app("web", sb.port(0));
    let log = sb.root.path().join("tunnel.log");
    let tunnel = Tunnel::spawn_logging(
        &sb,
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
    let body = wait_for(20, "the forward to come back", || {
        http_get("127.0.0.1", local)
    });
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
