//! The two sides of the tunnel tests, each in its own network namespace, so that the laptop
//! (`pm2-port tunnel`, its ssh, the test's connections to the forwards) and the server (PM2, its
//! apps, sshd and what its sessions run) never share a network stack: a port taken on one side is
//! free on the other, and an app is reachable from the laptop only through a forward.
//!
//! [`Netns`] is one namespace (`ip netns add`, its loopback up), deleted on drop after every
//! process in it is killed. [`Laptop`] is the laptop's side in one (the tunnel runs there, the
//! test's connections to the forwards are made from there). [`Server`] is a sandbox's server in
//! one: PM2 and the apps started with `ip netns exec NS ...`, and an sshd reached with
//! `ProxyCommand ip netns exec NS /usr/sbin/sshd -i ...` (inetd mode: a session per connection,
//! no TCP listener). Two namespaces give two servers. Needs root and iproute2's `ip` (a failure
//! when missing, never a skip; tests/run.sh installs it).

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::sshd::SshServer;
use crate::support::*;

/// Namespaces this suite creates are named `PREFIX<pid>-<n>`, the pid the test binary's.
const PREFIX: &str = "p2p-test-";

/// iproute2's `ip`, by absolute path (it is not on every `PATH`).
pub fn ip() -> PathBuf {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect(
            "iproute2's `ip` is not installed: `apt-get install iproute2` (bash tests/run.sh does); \
             the tunnel tests run the server in its own network namespace",
        )
}

/// `ip ARGS...`, which must succeed.
fn ip_run(args: &[&str]) -> Output {
    let out = Command::new(ip())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`ip {}` failed (the tunnel tests need root to make network namespaces): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Namespaces are made one at a time: the first `ip netns add` on a machine sets up the mount
/// under /run/netns, and two of them at once may stack it twice.
static CREATE: Mutex<bool> = Mutex::new(false);
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace of its own, with its loopback up.
pub struct Netns {
    pub name: String,
    /// `/run/netns/NAME`: the namespace, for `setns` and to compare with a process's.
    path: PathBuf,
}

impl Netns {
    pub fn new() -> Netns {
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        {
            let mut swept = CREATE.lock().unwrap_or_else(|e| e.into_inner());
            if !*swept {
                sweep_leftovers();
                *swept = true;
            }
            ip_run(&["netns", "add", &name]);
        }
        let ns = Netns {
            path: PathBuf::from("/run/netns").join(&name),
            name,
        };
        let mut up = ns.exec(ip());
        up.args(["link", "set", "lo", "up"]);
        let out = up.stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "cannot bring up the loopback of {}: {}",
            ns.name,
            String::from_utf8_lossy(&out.stderr)
        );
        ns
    }

    /// `ip netns exec NAME PROGRAM`: a command run in the namespace (its environment and
    /// arguments as for `PROGRAM`).
    pub fn exec(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(ip());
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// The `ProxyCommand` that runs `command` in the namespace.
    pub fn proxy_command(&self, command: &str) -> String {
        format!("{} netns exec {} {command}", ip().display(), self.name)
    }

    /// Run `f` on a thread of this process that has entered the namespace (`setns` changes only
    /// the calling thread's network stack).
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&self.path).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                if let Err(e) = enter_net(file.as_raw_fd()) {
                    panic!("setns({}): {e}", self.name);
                }
                f()
            })
            .join()
            .unwrap()
        })
    }

    /// GET / on 127.0.0.1:`port` inside the namespace; the body on 200.
    pub fn http_get(&self, port: u16) -> Option<String> {
        self.enter(|| http_get("127.0.0.1", port))
    }

    /// Whether process `pid` lives in this namespace.
    pub fn holds(&self, pid: u32) -> bool {
        let Ok(ns) = std::fs::metadata(&self.path) else {
            return false;
        };
        std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .is_ok_and(|m| m.dev() == ns.dev() && m.ino() == ns.ino())
    }
}

/// Move the calling thread into the network namespace `fd` refers to.
#[cfg(target_os = "linux")]
fn enter_net(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    match unsafe { libc::setns(fd, libc::CLONE_NEWNET) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Network namespaces are Linux's: elsewhere these tests compile (the cross checks) and fail.
#[cfg(not(target_os = "linux"))]
fn enter_net(_fd: std::os::fd::RawFd) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "network namespaces are Linux-only",
    ))
}

/// The processes whose network namespace is the one at `path`.
fn pids_in(path: &Path) -> Vec<u32> {
    let Ok(ns) = std::fs::metadata(path) else {
        return Vec::new();
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.dev() == ns.dev() && m.ino() == ns.ino())
        })
        .collect()
}

/// Kill every process in the namespace at `path` (they may fork meanwhile: again until none is
/// left, for at most 10 s), then delete it.
fn destroy(name: &str, path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = pids_in(path);
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new(ip())
        .args(["netns", "delete", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Namespaces left by a test binary that died without its drops (killed, aborted): those named
/// after a process that no longer runs.
fn sweep_leftovers() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            destroy(&name, &entry.path());
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        destroy(&self.name, &self.path);
    }
}

/// The laptop in a network namespace of its own too: `pm2-port tunnel` (and its ssh) run there,
/// and the test's own connections to the forwards are made from there ([`Netns::enter`]). Nothing
/// else on this machine (another test, another checkout's suite using the same port blocks) holds
/// or serves a port in it, so that a port free or closed here is so because of the tunnel alone.
pub struct Laptop {
    pub ns: Netns,
}

impl Laptop {
    pub fn new() -> Laptop {
        Laptop { ns: Netns::new() }
    }

    /// `pm2-port ARGS...` on the laptop, with the sandbox's environment (as [`Sandbox::cmd`]).
    pub fn cmd<I, S>(&self, sb: &Sandbox, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.ns.exec(bin());
        c.args(args);
        sb.env(&mut c);
        c.env("PM2_PORT_RANGE", sb.range(sb.size));
        c
    }

    /// Run pm2-port on the laptop and capture what it printed.
    pub fn run<I, S>(&self, sb: &Sandbox, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run(self.cmd(sb, args).output().unwrap())
    }

    /// GET / on 127.0.0.1:`port` from the laptop; the body on 200.
    pub fn http_get(&self, port: u16) -> Option<String> {
        self.ns.http_get(port)
    }

    /// Nothing answers on `port` on the laptop, on either loopback address.
    #[track_caller]
    pub fn unreachable(&self, port: u16) {
        let (v4, v6) = self
            .ns
            .enter(|| (http_get("127.0.0.1", port), http_get("[::1]", port)));
        assert_eq!(v4, None, "port {port} answers on the laptop");
        assert_eq!(v6, None, "port {port} answers on the laptop (::1)");
    }

    /// Whether a TCP connection to 127.0.0.1:`port` on the laptop is refused.
    pub fn refused(&self, port: u16) -> bool {
        self.ns
            .enter(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_err())
    }

    /// A listener on 127.0.0.1:`port` on the laptop: the port taken there.
    pub fn listen(&self, port: u16) -> std::net::TcpListener {
        self.ns.enter(|| listen("127.0.0.1", port))
    }

    /// A port nothing listens on, on the laptop.
    pub fn closed_port(&self) -> u16 {
        self.ns.enter(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        })
    }
}

/// A sandbox's server in a network namespace of its own: its PM2 daemon and apps, and the sshd
/// the laptop's ssh reaches through `ProxyCommand`.
pub struct Server<'a> {
    pub sb: &'a Sandbox,
    pub ssh: SshServer,
    pub ns: Netns,
}

impl<'a> Server<'a> {
    pub fn start(sb: &'a Sandbox) -> Server<'a> {
        let ns = Netns::new();
        let ssh = SshServer::in_netns(sb, &ns);
        Server { sb, ssh, ns }
    }

    /// The ssh client configuration naming this server `testhost`.
    pub fn config(&self) -> &Path {
        &self.ssh.config
    }

    /// Run the sandbox's pm2 in the namespace; panics when it fails.
    pub fn pm2<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.pm2_with_env(args, &[])
    }

    /// Run the sandbox's pm2 in the namespace with extra environment (PM2 copies it into the app
    /// it starts); panics when it fails.
    pub fn pm2_with_env<I, S>(&self, args: I, vars: &[(&str, String)]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let what = format!("pm2 (in {})", self.ns.name);
        self.sb
            .pm2_through(self.ns.exec(&self.sb.pm2_program), args, vars, &what)
    }

    /// Start `fixtures/http-app/server.js` under the namespace's PM2 as `name`, in its own
    /// directory, on `port`, and wait until it answers there. Its daemon and the app must be in
    /// the namespace.
    pub fn start_app(&self, name: &str, port: u16) -> PathBuf {
        self.start_fixture("http-app", name, port)
    }

    /// [`Server::start_app`] with another fixture's `server.js`.
    pub fn start_fixture(&self, fixture: &str, name: &str, port: u16) -> PathBuf {
        let dir = self.start_fixture_no_wait(fixture, name, port);
        wait_for(
            20,
            &format!("{name} to answer on {port} in {}", self.ns.name),
            || self.http_get(port),
        );
        let daemon: u32 = std::fs::read_to_string(self.sb.home.join("pm2.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            self.ns.holds(daemon),
            "PM2's daemon runs outside {}",
            self.ns.name
        );
        let app = self
            .jlist()
            .into_iter()
            .find(|a| a["name"] == name)
            .and_then(|a| a["pid"].as_u64())
            .unwrap_or_else(|| panic!("no pid for {name} in pm2 jlist"));
        assert!(
            self.ns.holds(app as u32),
            "{name} runs outside {}",
            self.ns.name
        );
        dir
    }

    /// [`Server::start_app`] up to `pm2 start` returning (PM2 marks the app online once it
    /// listens, `--wait-ready`), and nothing more: no wait on the server's loopback, no check.
    /// For the tunnel benchmark, which times from there.
    #[allow(dead_code)] // bench/tunnel.rs's
    pub fn start_app_no_wait(&self, name: &str, port: u16) -> PathBuf {
        self.start_fixture_no_wait("http-app", name, port)
    }

    /// [`Server::start_app_no_wait`] with another fixture's `server.js`.
    pub fn start_fixture_no_wait(&self, fixture: &str, name: &str, port: u16) -> PathBuf {
        let dir = self.sb.fixture_as(fixture, &format!("foreign-{name}"));
        let script = dir.join("server.js");
        self.pm2_with_env(
            start_args(&script, name, &dir),
            &[("PORT", port.to_string()), ("APP_NAME", name.to_string())],
        );
        dir
    }

    /// `pm2 jlist` in the namespace, parsed.
    pub fn jlist(&self) -> Vec<serde_json::Value> {
        parse_jlist(&self.pm2(["jlist"]))
    }

    /// GET / on the server's own loopback; the body on 200.
    pub fn http_get(&self, port: u16) -> Option<String> {
        self.ns.http_get(port)
    }

    /// The `HOME` of the server's sessions.
    pub fn home(&self) -> PathBuf {
        self.ssh.home()
    }

    /// See [`SshServer::fake_pm2_port`].
    pub fn fake_pm2_port(&self, script: &str) {
        self.ssh.fake_pm2_port(script)
    }
}

impl Drop for Server<'_> {
    /// PM2's daemon stopped in the namespace before it goes (the namespace's own drop then kills
    /// whatever is left in it: sshd sessions, orphans).
    fn drop(&mut self) {
        if self.sb.daemon_running() {
            let mut c = self.ns.exec(&self.sb.pm2_program);
            c.arg("kill");
            self.sb.env(&mut c);
            let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}
