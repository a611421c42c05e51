//! The one place that runs the system `ssh`: a control master carrying every forward, and the
//! multiplexed commands that query the server and add or cancel forwards. Arguments are passed as
//! a list, never through a local shell. Every command but the master runs under a deadline and
//! ends when the stop flag (Ctrl-C, SIGTERM) is raised.

use std::borrow::Cow;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
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

/// Follows the server's apps: `pm2-port list --json --watch` through a login shell, for as long as
/// its standard input stays open. Exit 127 when pm2-port is not on `PATH`; a pm2-port too old to
/// stream fails on `--watch` (clap: exit 2). Either way the stream ends without an event, and the
/// tunnel falls back to [`REMOTE_LIST`].
pub const REMOTE_WATCH: &str = r#"exec "${SHELL:-/bin/sh}" -lc 'if command -v pm2-port >/dev/null 2>&1; then exec pm2-port list --json --watch; else echo "pm2-port is not on PATH (login shell)" >&2; exit 127; fi'"#;

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
    /// Held while a master connects with a terminal to prompt on (a host key to accept, a
    /// passphrase): shared by every host of a tunnel, so that two hosts never ask at once and an
    /// answer meant for one never reaches the other.
    pub prompts: Arc<Mutex<()>>,
}

/// The running control master and what it printed.
pub struct Master {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// In a process group of its own (no terminal): its ProxyCommand is in it too.
    own_group: bool,
}

impl Master {
    /// End it: SIGTERM first (ssh then ends its ProxyCommand), SIGKILL after a second (to its
    /// whole group when it has its own), and reap it.
    fn end(&mut self) {
        if self.alive() {
            let pid = self.child.id() as libc::pid_t;
            // SAFETY: kill(2) on our own child, not reaped yet (alive() just said so).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(1);
            while self.alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if self.own_group {
            // SAFETY: killpg(2) on the group our child leads; its ProxyCommand may outlive it.
            unsafe { libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

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

    /// Where ssh would connect for this host, from `ssh -G` (which prints the configuration it
    /// would use, connecting nowhere): see [`destination`]. `None` when ssh cannot say (an old
    /// ssh without `-G`, a broken configuration: the connection will tell).
    pub fn destination(&self) -> Option<String> {
        let mut c = self.command();
        // Its own process group: a timeout ends what a `Match exec` started too.
        c.arg("-G").arg("--").arg(&self.host).process_group(0);
        let out = self.run(c, CONTROL_TIMEOUT).ok()?;
        out.status
            .success()
            .then(|| destination(&String::from_utf8_lossy(&out.stdout)))
            .flatten()
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
        let _turn = (!self.batch).then(|| self.prompts.lock().unwrap_or_else(|e| e.into_inner()));
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
        let stderr = capture(child.stderr.take());
        let mut master = Master {
            child,
            stderr,
            own_group: self.batch,
        };
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

    /// Start [`REMOTE_WATCH`] through the master: its stdout gives the stream's lines, and
    /// closing its stdin (or killing it) ends the remote command. In a process group of its own,
    /// so that Ctrl-C reaches pm2-port alone, which ends it.
    pub fn stream(&self) -> Result<Child> {
        let mut c = self.command();
        c.args(["-o", "ControlMaster=no", "-T", "--"])
            .arg(&self.host)
            .arg(REMOTE_WATCH);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        c.spawn().context("cannot run `ssh`")
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
        master.end();
        let _ = std::fs::remove_file(&self.control);
    }
}

/// What a pipe says, gathered by a thread of its own (the last 4 KiB: what ssh or the server
/// said last is what is shown).
pub fn capture(pipe: Option<impl Read + Send + 'static>) -> Arc<Mutex<String>> {
    let said = Arc::new(Mutex::new(String::new()));
    if let Some(mut pipe) = pipe {
        let sink = Arc::clone(&said);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if s.len() > 4096 {
                        let cut = s.len() - 4096;
                        let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                        s.drain(..cut);
                    }
                }
            }
        });
    }
    said
}

impl Drop for Master {
    /// A master is never left behind, even by a thread that panicked.
    fn drop(&mut self) {
        self.end();
    }
}

/// `127.0.0.1:LOCAL:localhost:REMOTE`: loopback only here; `localhost` there, which sshd tries
/// over IPv6 and IPv4, so apps listening on `::1` only are reached too.
/// The server `ssh -G`'s output says ssh would reach: `user@hostname:port`, and the proxy
/// command or jump hosts that lead there when there are any (two aliases of one server differ
/// only in name; servers behind different proxies may share a host name).
pub fn destination(ssh_g: &str) -> Option<String> {
    let get = |key: &str| {
        ssh_g.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k.eq_ignore_ascii_case(key) && !v.is_empty() && v != "none").then_some(v)
        })
    };
    let mut to = format!(
        "{}@{}:{}",
        get("user").unwrap_or(""),
        get("hostname")?,
        get("port").unwrap_or("22")
    );
    if let Some(jump) = get("proxyjump") {
        to.push_str(&format!(" through {jump}"));
    }
    if let Some(command) = get("proxycommand") {
        // `ssh -G` leaves its `%h`, `%n`, ... unexpanded: two aliases may go two ways.
        if command.contains('%') {
            return None;
        }
        to.push_str(&format!(" through `{command}`"));
    }
    Some(to)
}

fn spec(local: u16, remote: u16) -> OsString {
    OsString::from(format!("127.0.0.1:{local}:localhost:{remote}"))
}

/// A free local port: nothing listens on it that this system shows (any address and user on
/// Linux; on macOS, one's own processes only, unless root) and it binds on `127.0.0.1` and `::1`
/// ([`binds_on_loopback`], which sees every user's listener).
pub fn local_free(port: u16) -> bool {
    if crate::sys::world::listeners().is_ok_and(|l| l.iter().any(|l| l.port == port)) {
        return false;
    }
    binds_on_loopback(port)
}

/// The bind test: whether a TCP socket binds `port` on `127.0.0.1` and on `::1` (on `::1` only
/// where this machine has IPv6). It is made without `SO_REUSEADDR` (which std's `TcpListener`
/// sets): with it, macOS and the BSDs let a socket bind `127.0.0.1:P` while another listens on
/// `*:P`. A port only root may bind is not free either: ssh could not bind it.
pub fn binds_on_loopback(port: u16) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    let v4 = bind_once(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let v6 = bind_once(SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
    let no_ipv6 = |e: &std::io::Error| {
        matches!(
            e.raw_os_error(),
            Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
        )
    };
    // Out of descriptors here: this test cannot tell, and ssh's own bind will.
    let cannot_tell = |r: &std::io::Result<()>| {
        r.as_ref().is_err_and(|e| {
            matches!(
                e.raw_os_error(),
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS)
            )
        })
    };
    if cannot_tell(&v4) || cannot_tell(&v6) {
        return true;
    }
    v4.is_ok() && v6.as_ref().map_or_else(no_ipv6, |()| true)
}

/// Bind a fresh TCP socket (no `SO_REUSEADDR`, never listening) to `addr`, then close it.
fn bind_once(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let (family, len) = match addr {
        std::net::SocketAddr::V4(_) => (libc::AF_INET, std::mem::size_of::<libc::sockaddr_in>()),
        std::net::SocketAddr::V6(_) => (libc::AF_INET6, std::mem::size_of::<libc::sockaddr_in6>()),
    };
    // SAFETY: plain socket(2); the descriptor is owned by `fd` at once and closed on drop.
    let raw = unsafe { libc::socket(family, libc::SOCK_STREAM, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    // No child may inherit it (it would keep the port bound): closed on exec.
    // SAFETY: F_SETFD on a descriptor we own.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: all-zero sockaddr_in / sockaddr_in6 are valid; every field used is set below.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        std::net::SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            {
                sin.sin_len = len as u8;
            }
        }
        std::net::SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            {
                sin6.sin6_len = len as u8;
            }
        }
    }
    // SAFETY: `storage` holds a valid address of `len` bytes; the descriptor is open.
    let r = unsafe {
        libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            (&raw const storage).cast::<libc::sockaddr>(),
            len as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_destination_is_user_host_port_and_the_way_there() {
        assert_eq!(
            destination("host shop\nuser dev\nhostname 10.0.0.5\nport 2222\nproxycommand none\n"),
            Some("dev@10.0.0.5:2222".into())
        );
        assert_eq!(
            destination("user dev\nhostname box\nport 22\nproxyjump bastion\n"),
            Some("dev@box:22 through bastion".into())
        );
        assert_eq!(
            destination(
                "user dev\nhostname 127.0.0.1\nport 22\nproxycommand ip netns exec a sshd -i\n"
            ),
            Some("dev@127.0.0.1:22 through `ip netns exec a sshd -i`".into())
        );
        assert_eq!(destination("user dev\n"), None);
        // Tokens ssh expands only when it connects: nothing to compare.
        assert_eq!(
            destination(
                "user dev\nhostname dockerhost\nport 22\nproxycommand docker exec -i %n nc localhost 22\n"
            ),
            None
        );
    }

    /// A port nothing holds: the kernel's pick, released again.
    fn unused_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn the_bind_test_sees_a_listener_on_ipv4_loopback() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!binds_on_loopback(port));
        assert!(!local_free(port));
        drop(l);
        assert!(binds_on_loopback(port));
    }

    #[test]
    fn the_bind_test_sees_a_listener_on_ipv6_loopback_only() {
        let Ok(l) = std::net::TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let port = l.local_addr().unwrap().port();
        // 127.0.0.1 alone would still bind: the ::1 half of the test is what sees it.
        assert!(bind_once(std::net::SocketAddr::from(([127, 0, 0, 1], port))).is_ok());
        assert!(!binds_on_loopback(port));
        drop(l);
        assert!(binds_on_loopback(port));
    }

    #[test]
    fn the_bind_test_sees_a_wildcard_listener() {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!binds_on_loopback(port));
    }

    #[test]
    fn a_port_nothing_holds_is_free() {
        let port = unused_port();
        assert!(binds_on_loopback(port));
        assert!(local_free(port));
    }
}
