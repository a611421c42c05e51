//! The one place that runs the system `ssh`: a control master carrying every forward, and the
//! multiplexed commands that query the server and add or cancel forwards. Arguments are passed as
//! a list, never through a local shell. Every command but the master runs under a deadline and
//! ends when the stop flag (Ctrl-C, SIGTERM) is raised.

use std::borrow::Cow;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::sys::proc::{self, RunError};
use crate::text::escape;

/// How long the server may take to list its apps, unless `PM2_PORT_TUNNEL_LIST_TIMEOUT` says.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a control command (`-O check`, `forward`, `cancel`, `exit`) may take: the master
/// answers them itself, at once.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the server for its apps through a login shell (so nvm-style installs are on `PATH`):
/// `pm2-port list --json` when it is installed, else `pm2 jlist` when PM2's daemon runs (never
/// starting one), else an empty list.
pub const REMOTE_LIST: &str = r#"exec "${SHELL:-/bin/sh}" -lc 'if command -v pm2-port >/dev/null 2>&1; then exec pm2-port list --json; elif command -v pm2 >/dev/null 2>&1; then if [ -S "${PM2_HOME:-$HOME/.pm2}/rpc.sock" ]; then exec pm2 jlist; else echo "[]"; fi; else echo "neither pm2-port nor pm2 is on PATH (login shell)" >&2; exit 127; fi'"#;

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct Ssh {
    pub host: String,
    pub config: Option<PathBuf>,
    pub options: Vec<String>,
    pub control: PathBuf,
    /// No password or passphrase prompts (no terminal to answer them).
    pub batch: bool,
    /// How long the server may take to list its apps.
    pub list_timeout: Duration,
    /// Raised by Ctrl-C or SIGTERM: a command running then is killed.
    pub stop: Arc<AtomicBool>,
}

/// The running control master and what it printed.
pub struct Master {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Master {
    /// Whether the master still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What ssh said on stderr, trimmed.
    pub fn said(&self) -> String {
        self.stderr
            .lock()
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }
}

impl Ssh {
    fn command(&self) -> Command {
        let mut c = Command::new("ssh");
        if let Some(config) = &self.config {
            c.arg("-F").arg(config);
        }
        for o in &self.options {
            c.arg("-o").arg(o);
        }
        c.arg("-S").arg(&self.control);
        if self.batch {
            c.args(["-o", "BatchMode=yes"]);
        }
        c
    }

    fn control_command(&self, op: &str, forward: Option<(u16, u16)>) -> Command {
        let mut c = self.command();
        c.args(["-o", "ControlMaster=no", "-O", op]);
        if let Some((local, remote)) = forward {
            c.arg("-L").arg(spec(local, remote));
        }
        c.arg("--").arg(&self.host);
        c
    }

    /// Run an ssh command to its end, the deadline or the stop flag.
    fn run(&self, mut c: Command, timeout: Duration) -> Result<Output> {
        proc::run(&mut c, timeout, Some(&self.stop)).map_err(|err| match err {
            RunError::Io(io) => anyhow!(io).context("cannot run `ssh`"),
            other => other.into(),
        })
    }

    /// The host as a terminal may show it.
    pub fn host_shown(&self) -> Cow<'_, str> {
        escape(&self.host)
    }

    /// Whether Ctrl-C or SIGTERM asked to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Start the control master and wait until it accepts commands (or the stop flag is raised).
    pub fn connect(&self, timeout: Duration) -> Result<Master> {
        let mut c = self.command();
        c.args([
            "-M",
            "-N",
            "-o",
            "ControlPersist=no",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=3",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ExitOnForwardFailure=no",
        ]);
        c.arg("--").arg(&self.host);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if self.batch {
            // No terminal to prompt on: its own process group, so that only pm2-port decides
            // when it ends. With a terminal it stays in the foreground group, where it may ask
            // for a passphrase or a host key (a background group would be stopped by SIGTTOU).
            c.process_group(0);
        }
        let mut child = c
            .spawn()
            .context("cannot run `ssh`; install the OpenSSH client")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        let mut master = Master { child, stderr };
        let deadline = Instant::now() + timeout;
        loop {
            if !master.alive() {
                // Let the reader thread take the last words.
                std::thread::sleep(Duration::from_millis(50));
                bail!(
                    "cannot connect to `{}`: {}",
                    self.host_shown(),
                    escape(&master.said())
                );
            }
            if self
                .run(self.control_command("check", None), CONTROL_TIMEOUT)
                .is_ok_and(|o| o.status.success())
            {
                return Ok(master);
            }
            if self.stopping() {
                self.close(&mut master);
                return Err(RunError::Stopped.into());
            }
            if Instant::now() >= deadline {
                self.close(&mut master);
                bail!(
                    "cannot connect to `{}`: no answer within {}s",
                    self.host_shown(),
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run the app-list command on the server through the master, for at most `list_timeout`.
    pub fn list(&self) -> Result<Output> {
        let mut c = self.command();
        c.args(["-o", "ControlMaster=no", "-T", "--"])
            .arg(&self.host)
            .arg(REMOTE_LIST);
        self.run(c, self.list_timeout)
    }

    pub fn forward(&self, local: u16, remote: u16) -> Result<()> {
        self.control("forward", local, remote)
    }

    pub fn cancel(&self, local: u16, remote: u16) -> Result<()> {
        self.control("cancel", local, remote)
    }

    fn control(&self, op: &str, local: u16, remote: u16) -> Result<()> {
        let shown = || format!("`ssh -O {op} -L {}`", spec(local, remote).to_string_lossy());
        let out = self
            .run(
                self.control_command(op, Some((local, remote))),
                CONTROL_TIMEOUT,
            )
            .with_context(shown)?;
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                shown(),
                escape(String::from_utf8_lossy(&out.stderr).trim())
            );
        }
        Ok(())
    }

    /// Close the master and make sure no ssh process of ours is left (the stop flag, raised by
    /// then, does not cut this short).
    pub fn close(&self, master: &mut Master) {
        let _ = proc::run(
            &mut self.control_command("exit", None),
            CONTROL_TIMEOUT,
            None,
        );
        let deadline = Instant::now() + Duration::from_secs(2);
        while master.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = master.child.kill();
        let _ = master.child.wait();
        let _ = std::fs::remove_file(&self.control);
    }
}

/// `127.0.0.1:LOCAL:localhost:REMOTE`: loopback only here; `localhost` there, which sshd tries
/// over IPv6 and IPv4, so apps listening on `::1` only are reached too.
fn spec(local: u16, remote: u16) -> OsString {
    OsString::from(format!("127.0.0.1:{local}:localhost:{remote}"))
}

/// A free local port: nothing listens on it (any address, where `/proc` tells) and
/// `127.0.0.1` binds.
pub fn local_free(port: u16) -> bool {
    if Path::new("/proc/net/tcp").exists()
        && crate::sys::world::listeners().is_ok_and(|l| l.iter().any(|l| l.port == port))
    {
        return false;
    }
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}
