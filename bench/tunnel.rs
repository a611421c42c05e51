//! Tunnel benchmark: `pm2-port tunnel` against its reference, side by side in one run
//! (`bash bench/tunnel.sh`, or `cargo test --release --test tunnel-bench -- [FLAGS]` as root).
//!
//! The laptop and each server run in network namespaces of their own, with the test suite's
//! helpers (tests/integration/netns.rs, sshd.rs, support.rs): PM2, its apps and an sshd (inetd
//! mode, through `ProxyCommand ip netns exec NS sshd -i`) on the server, `pm2-port tunnel` and its
//! ssh on the laptop, where an app is reachable only through a forward. Two modes, the same tunnel:
//!
//! - stream: the server's real pm2-port, which can stream its list (`list --json --watch`);
//! - poll (the reference): the server's pm2-port behind a wrapper that refuses `--watch` the way an
//!   old pm2-port does (clap's "unexpected argument '--watch'", exit 2), so that a tunnel able to
//!   stream falls back to polling.
//!
//! Three sections:
//!
//! 1. Latency: 20 apps started one by one under the server's PM2 (`pm2 start --wait-ready`, after
//!    a random pause of up to one poll interval so that the starts fall anywhere in the polling
//!    cycle); for each, the time from `pm2 start` returning to the app answering GET / on
//!    127.0.0.1:PORT on the laptop (probed every 5 ms). n, p50, p95, max, and poll / stream.
//! 2. Steady state: the tunnel up with every app online and nothing changing, `strace -f` attached
//!    to the tunnel and every descendant of it for `--duration` seconds (60): the processes they
//!    create (clone/clone3 without CLONE_THREAD, fork, vfork) and the programs they run
//!    (execve, execveat), each side apart. The server's side is the `sshd -i` that the ssh
//!    master's ProxyCommand runs in the server's namespace, and everything below it (sessions,
//!    login shells, the remote pm2-port); the laptop's side is the rest.
//! 3. Two servers whose apps share a port, one tunnel for both (`tunnel -F CONFIG alpha beta`):
//!    the local port of each, whether the events name the host, then the sshd of one server
//!    killed (-9): how the other's forward serves meanwhile (probed every 20 ms) and how long the
//!    first takes to serve again. Skipped, with a note, while `tunnel --help` takes one HOST.
//!
//! A section that fails (the tunnel exits, three apps in a row never show up) says so in its place
//! and the others still report. Progress goes to stderr, the report to stdout.
//!
//! Flags: `--apps N` (20), `--duration SECS` (60; 0 skips section 2), `--interval SECS` (passed
//! to the tunnel; its own default otherwise), `--strict` (exit 1 when an acceptance line fails).

#![allow(dead_code)]

#[path = "../tests/integration/netns.rs"]
mod netns;
#[path = "../tests/integration/sshd.rs"]
mod sshd;
#[path = "../tests/integration/support.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::{Laptop, Netns, Server};
use crate::support::*;

/// The tunnel's own `--interval` default, for the random pause before each start.
const DEFAULT_INTERVAL: u64 = 2;

struct Opts {
    apps: u16,
    duration: u64,
    interval: Option<u64>,
    strict: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench/tunnel.sh [--apps N] [--duration SECS] [--interval SECS] [--strict]\n\
         \n  --apps N          apps started one by one for the latency (default 20)\
         \n  --duration SECS   steady-state window under strace (default 60; 0 skips it)\
         \n  --interval SECS   the tunnel's --interval (default: the tunnel's own)\
         \n  --strict          exit 1 when an acceptance line says FAIL"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut opts = Opts {
        apps: 20,
        duration: 60,
        interval: None,
        strict: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| -> u64 {
            match args.next().and_then(|v| v.parse().ok()) {
                Some(v) => v,
                None => {
                    eprintln!("bench: {what} takes a whole number");
                    usage()
                }
            }
        };
        match a.as_str() {
            "--apps" => match value("--apps") {
                n @ 1..=200 => opts.apps = n as u16,
                _ => {
                    eprintln!("bench: --apps takes 1 to 200");
                    usage()
                }
            },
            "--duration" => opts.duration = value("--duration"),
            "--interval" => opts.interval = Some(value("--interval").max(1)),
            "--strict" => opts.strict = true,
            "-h" | "--help" => usage(),
            other => {
                eprintln!("bench: unknown argument `{other}`");
                usage()
            }
        }
    }
    opts
}

/// An executable file `name` on `PATH`, or at one of `fallbacks`.
fn which(name: &str, fallbacks: &[&str]) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain(fallbacks.iter().map(PathBuf::from))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Root, strace and ip, or a clear refusal.
fn preflight() -> PathBuf {
    let mut missing = Vec::new();
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (network namespaces, and strace attached to sshd)".to_string());
    }
    let strace = which("strace", &["/usr/bin/strace"]);
    if strace.is_none() {
        missing.push("strace (`apt-get install strace`)".to_string());
    }
    if which(
        "ip",
        &["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"],
    )
    .is_none()
    {
        missing.push("iproute2's `ip` (`apt-get install iproute2`)".to_string());
    }
    if !Path::new("/usr/sbin/sshd").exists() {
        missing.push("OpenSSH's server (`apt-get install openssh-server`)".to_string());
    }
    if !missing.is_empty() {
        eprintln!("bench: needs {}", missing.join(", "));
        std::process::exit(1);
    }
    strace.unwrap()
}

/// A line of a command's output, or `?`.
fn first_line(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("?")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

fn machine_line() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    format!("machine: Linux {kernel}, {cores} cores, {cpu}")
}

/// What this build's `tunnel` takes.
struct Caps {
    /// `--watch` must be given: without it a 0.1 tunnel lists once and never again (a tunnel
    /// with `--once` follows by default).
    watch_flag: bool,
    /// `HOST...`: several hosts in one tunnel.
    multi_host: bool,
}

fn caps() -> Caps {
    let out = Command::new(bin())
        .args(["tunnel", "--help"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run pm2-port");
    let help = String::from_utf8_lossy(&out.stdout);
    Caps {
        watch_flag: help.contains("--watch") && !help.contains("--once"),
        multi_host: help.contains("HOST>...") || help.contains("HOST..."),
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Every process (not thread) and its parent, from /proc.
fn parents() -> HashMap<u32, u32> {
    let mut map = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return map;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            map.insert(pid, ppid);
        }
    }
    map
}

/// The processes below `root` (not `root` itself), parents before children.
fn descendants(root: u32) -> Vec<u32> {
    let map = parents();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        let mut kids: Vec<u32> = map
            .iter()
            .filter(|&(_, &pp)| pp == p)
            .map(|(&c, _)| c)
            .collect();
        kids.sort_unstable();
        out.extend(&kids);
        frontier.extend(kids);
    }
    out
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a pid; a pid gone meanwhile is only ESRCH.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .is_some_and(|i| !s[i + 1..].trim_start().starts_with('Z'))
    })
}

/// A running `pm2-port tunnel --json`, its stdout lines and its stderr in a file.
struct TunnelProc {
    child: Child,
    lines: Receiver<String>,
    log: PathBuf,
}

impl TunnelProc {
    fn spawn(mut cmd: Command, log: PathBuf) -> TunnelProc {
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("cannot start pm2-port tunnel");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        TunnelProc { child, lines, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the tunnel said on stderr so far.
    fn said(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// JSON events until `done` says the events read so far are enough; panics after `secs`.
    fn events_until(
        &mut self,
        secs: u64,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut all = Vec::new();
        while !done(&all) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        all.push(v);
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "bench: no {what} from the tunnel within {secs}s; events: {all:?}; its stderr:\n{}",
                    self.said()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self
                        .child
                        .wait()
                        .map_or_else(|e| e.to_string(), |s| s.to_string());
                    panic!(
                        "bench: the tunnel exited ({status}) before {what}; events: {all:?}; its stderr:\n{}",
                        self.said()
                    )
                }
            }
        }
        all
    }

    /// The JSON events printed and not read yet.
    fn pending(&self) -> Vec<Value> {
        self.lines
            .try_iter()
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }

    /// SIGTERM, up to 10 s to exit, then SIGKILL to whatever of it and below it is left.
    fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let below = descendants(self.pid());
        kill(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in below {
            if alive(pid) {
                kill(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for TunnelProc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `pm2-port tunnel -F CONFIG --json [--watch] [--interval SECS] HOST...` on the laptop.
fn start_tunnel(
    sb: &Sandbox,
    laptop: &Laptop,
    config: &Path,
    hosts: &[&str],
    opts: &Opts,
    caps: &Caps,
    log: PathBuf,
) -> TunnelProc {
    let mut args: Vec<String> = vec![
        "tunnel".into(),
        "-F".into(),
        config.display().to_string(),
        "--json".into(),
    ];
    if caps.watch_flag {
        args.push("--watch".into());
    }
    if let Some(i) = opts.interval {
        args.extend(["--interval".into(), i.to_string()]);
    }
    args.extend(hosts.iter().map(|h| h.to_string()));
    TunnelProc::spawn(laptop.cmd(sb, &args), log)
}

// ---------------------------------------------------------------------------------------------
// Probes

/// One GET / on 127.0.0.1:`port` from the calling thread's namespace, with short timeouts:
/// whether it answered 200 with `want` in the body.
fn answers(port: u16, want: &str) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(1000)));
    let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    if s.read_to_end(&mut buf).is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&buf);
    let status_ok = text
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .is_some_and(|c| c == "200");
    status_ok && text.contains(want)
}

/// Probe every 5 ms until the app answers; how long that took from `since`.
fn reach(port: u16, want: &str, since: Instant, timeout: Duration) -> Option<Duration> {
    loop {
        if answers(port, want) {
            return Some(since.elapsed());
        }
        if since.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A small xorshift: the pauses before each start need no more.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Rng(seed)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------------------------
// Steady state under strace

/// What one side created while traced.
#[derive(Default)]
struct Side {
    /// clone/clone3 without CLONE_THREAD, fork, vfork.
    forks: u32,
    /// execve/execveat that succeeded.
    execs: u32,
    /// clone/clone3 with CLONE_THREAD: not spawns, shown apart.
    threads: u32,
    /// The programs run, by base name.
    programs: BTreeMap<String, u32>,
    /// Of `execs`, those of the real pm2-port by its own path: the poll mode's wrapper handing
    /// over (the stream mode's login shell runs it through the `PATH` link instead). An old
    /// pm2-port would not make them.
    handovers: u32,
}

impl Side {
    fn spawns(&self) -> u32 {
        self.forks + self.execs
    }

    fn programs(&self) -> String {
        if self.programs.is_empty() {
            return "none".into();
        }
        self.programs
            .iter()
            .map(|(p, n)| format!("{p} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

struct Spawns {
    laptop: Side,
    server: Side,
    /// Tasks whose side could not be told (a thread that appeared between the listing and the
    /// attach): shown only when not empty.
    unknown: Side,
    /// Processes traced at the start, on each side.
    traced: (usize, usize),
    secs: f64,
}

/// One syscall line of strace: its name, its arguments' text and its return value.
struct Call<'a> {
    name: &'a str,
    text: String,
    ret: Option<i64>,
}

/// The calls of one `-ff` file (one task), `<unfinished ...>` joined with its `resumed` half.
fn calls(content: &str) -> Vec<Call<'_>> {
    let mut out = Vec::new();
    let mut pending: Option<(&str, String)> = None;
    for line in content.lines() {
        let line = line.trim_end();
        let (name, text) = if let Some(rest) = line.strip_prefix("<... ") {
            // `<... clone3 resumed>ARGS) = RET`
            let Some((name, after)) = rest.split_once(" resumed>") else {
                continue;
            };
            let before = match pending.take() {
                Some((n, t)) if n == name => t,
                _ => String::new(),
            };
            (name, format!("{before}{after}"))
        } else {
            let Some(open) = line.find('(') else {
                continue;
            };
            let name = &line[..open];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            if let Some(head) = line.strip_suffix("<unfinished ...>") {
                pending = Some((name, head.to_string()));
                continue;
            }
            (name, line.to_string())
        };
        // The return value follows the last `) = ` (a quoted argument may hold one too, but
        // never after the closing parenthesis of the call).
        let ret = text.rfind(") = ").and_then(|at| {
            text[at + 4..]
                .split_whitespace()
                .next()
                .and_then(|r| r.parse::<i64>().ok())
        });
        out.push(Call { name, text, ret });
    }
    out
}

/// The program of an `execve("PATH", ...)` line, as given.
fn exec_path(text: &str) -> &str {
    text.split_once("(\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("?", |(path, _)| path)
}

/// Attach strace to the tunnel and everything below it for `secs`; count what each side creates.
fn trace_spawns(strace: &Path, tunnel: u32, server: &Netns, secs: u64, dir: &Path) -> Spawns {
    std::fs::create_dir_all(dir).unwrap();
    let mut roots = vec![tunnel];
    roots.extend(descendants(tunnel));
    // Each task (thread) of each process, and its side.
    let mut side_of: HashMap<u32, bool> = HashMap::new();
    let mut traced = (0, 0);
    for &pid in &roots {
        let on_server = server.holds(pid);
        if on_server {
            traced.1 += 1;
        } else {
            traced.0 += 1;
        }
        side_of.insert(pid, on_server);
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                if let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) {
                    side_of.insert(tid, on_server);
                }
            }
        }
    }
    let prefix = dir.join("t");
    let mut cmd = Command::new(strace);
    cmd.args(["-f", "-ff", "-qq", "-s", "64", "-e", "signal=none", "-e"])
        .arg("trace=execve,execveat,clone,clone3,fork,vfork")
        .arg("-o")
        .arg(&prefix);
    for pid in &roots {
        cmd.arg("-p").arg(pid.to_string());
    }
    let log = dir.join("strace.log");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("cannot run strace");
    // Attached: each process that is still there has strace as its tracer.
    let attach_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all =
            roots.iter().all(
                |pid| match std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    Ok(s) => s
                        .lines()
                        .find_map(|l| l.strip_prefix("TracerPid:"))
                        .is_some_and(|t| t.trim() != "0"),
                    Err(_) => true,
                },
            );
        if all {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "bench: strace exited ({status}) before attaching: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < attach_deadline,
            "bench: strace did not attach within 10s: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    kill(child.id(), libc::SIGINT);
    let secs = started.elapsed().as_secs_f64();
    let detach_deadline = Instant::now() + Duration::from_secs(10);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < detach_deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();

    // Every task's calls, and who created whom.
    let mut files: Vec<(u32, String)> = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(tid) = name.strip_prefix("t.").and_then(|t| t.parse::<u32>().ok()) {
            files.push((tid, std::fs::read_to_string(e.path()).unwrap_or_default()));
        }
    }
    let mut parent: HashMap<u32, u32> = HashMap::new();
    for (tid, content) in &files {
        for c in calls(content) {
            if matches!(c.name, "clone" | "clone3" | "fork" | "vfork")
                && let Some(child) = c.ret.filter(|&r| r > 0)
            {
                parent.insert(child as u32, *tid);
            }
        }
    }
    let side = |mut tid: u32| -> Option<bool> {
        for _ in 0..10_000 {
            if let Some(&s) = side_of.get(&tid) {
                return Some(s);
            }
            tid = *parent.get(&tid)?;
        }
        None
    };
    let mut out = Spawns {
        laptop: Side::default(),
        server: Side::default(),
        unknown: Side::default(),
        traced,
        secs,
    };
    for (tid, content) in &files {
        let s = match side(*tid) {
            Some(false) => &mut out.laptop,
            Some(true) => &mut out.server,
            None => &mut out.unknown,
        };
        for c in calls(content) {
            match c.name {
                "clone" | "clone3" if c.ret.is_some_and(|r| r > 0) => {
                    if c.text.contains("CLONE_THREAD") {
                        s.threads += 1;
                    } else {
                        s.forks += 1;
                    }
                }
                "fork" | "vfork" if c.ret.is_some_and(|r| r > 0) => s.forks += 1,
                "execve" | "execveat" if c.ret == Some(0) => {
                    let path = exec_path(&c.text);
                    s.execs += 1;
                    s.handovers += u32::from(path == BIN);
                    let base = path.rsplit('/').next().unwrap_or(path);
                    *s.programs.entry(base.to_string()).or_default() += 1;
                }
                _ => {}
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Sections 1 and 2: one mode

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Stream,
    Poll,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Stream => "stream",
            Mode::Poll => "poll (reference)",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Mode::Stream => "s",
            Mode::Poll => "p",
        }
    }
}

/// The server's `pm2-port` as an old one: clap's refusal of `--watch`, else the real binary.
fn old_pm2_port() -> String {
    format!(
        "#!/bin/sh\n\
         # An old pm2-port: no `--watch` (clap's refusal, exit 2); the real one for the rest.\n\
         for a in \"$@\"; do\n\
         \x20 case \"$a\" in\n\
         \x20   --watch|--watch=*)\n\
         \x20     printf \"error: unexpected argument '--watch' found\\n\\nUsage: pm2-port list [OPTIONS]\\n\\nFor more information, try '--help'.\\n\" >&2\n\
         \x20     exit 2 ;;\n\
         \x20 esac\n\
         done\n\
         exec '{}' \"$@\"\n",
        BIN
    )
}

struct ModeResult {
    latencies: Vec<Duration>,
    missed: Vec<String>,
    spawns: Option<Spawns>,
}

/// `f`, or the message it panicked with (already printed on stderr by then): a section that
/// fails (a tunnel that exits, an app that never shows) leaves the others to report.
fn attempt<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into())
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    })
}

fn run_mode(mode: Mode, opts: &Opts, caps: &Caps, strace: &Path) -> ModeResult {
    let sb = Sandbox::with_ports(opts.apps);
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    if mode == Mode::Poll {
        server.fake_pm2_port(&old_pm2_port());
    }
    // PM2's daemon up before the tunnel, as on a real server.
    server.pm2(["ping"]);
    let mut tunnel = start_tunnel(
        &sb,
        &laptop,
        server.config(),
        &["testhost"],
        opts,
        caps,
        sb.root.path().join("tunnel.log"),
    );
    tunnel.events_until(60, "`ready` event", |evs| {
        evs.iter().any(|e| e["event"] == "ready")
    });

    let interval = opts.interval.unwrap_or(DEFAULT_INTERVAL) as f64;
    let timeout = Duration::from_secs(20 + 3 * opts.interval.unwrap_or(DEFAULT_INTERVAL));
    let mut rng = Rng::new();
    let mut latencies = Vec::new();
    let mut missed = Vec::new();
    let mut in_a_row = 0;
    for i in 0..opts.apps {
        let name = format!("{}{i:02}", mode.tag());
        let port = sb.port(i);
        // Anywhere in the polling cycle.
        std::thread::sleep(Duration::from_secs_f64(rng.unit() * interval));
        server.start_app_no_wait(&name, port);
        let started = Instant::now();
        let want = format!("hello from {name} on {port}");
        match laptop.ns.enter(|| reach(port, &want, started, timeout)) {
            Some(d) => {
                eprintln!("bench: {}: {name} on {port}: {:.0} ms", mode.label(), ms(d));
                latencies.push(d);
                in_a_row = 0;
            }
            None => {
                eprintln!(
                    "bench: {}: {name} on {port}: not reachable within {}s",
                    mode.label(),
                    timeout.as_secs()
                );
                missed.push(name);
                in_a_row += 1;
                if in_a_row == 3 {
                    panic!(
                        "bench: {}: three apps in a row never reached the laptop; the tunnel said:\n{}",
                        mode.label(),
                        tunnel.said()
                    );
                }
            }
        }
    }

    let spawns = (opts.duration > 0).then(|| {
        // Let whatever the last start set off settle.
        std::thread::sleep(Duration::from_secs(3));
        eprintln!(
            "bench: {}: strace on the tunnel and below for {}s",
            mode.label(),
            opts.duration
        );
        trace_spawns(
            strace,
            tunnel.pid(),
            &server.ns,
            opts.duration,
            &sb.root.path().join("strace"),
        )
    });
    tunnel.stop();
    ModeResult {
        latencies,
        missed,
        spawns,
    }
}

// ---------------------------------------------------------------------------------------------
// Section 3: two servers, one tunnel

/// One server of section 3, as the tunnel forwarded it.
struct HostRow {
    host: &'static str,
    app: String,
    /// From its `forward` event.
    local: Option<u16>,
    /// The event's `host`.
    named: Option<String>,
    /// It answered GET / on the local port, as itself.
    answers: bool,
}

struct TwoServers {
    port: u16,
    /// Per host: app, local port, the `host` its event gave, whether it answered.
    rows: Vec<HostRow>,
    killed: usize,
    other_probes: u32,
    other_failed: u32,
    other_longest_gap: Duration,
    back_after: Option<Duration>,
    back_port: Option<u16>,
}

/// The block `Host testhost` of a server's ssh config, renamed `Host NAME`.
fn host_block(config: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(
        text.starts_with("Host testhost\n"),
        "bench: unexpected ssh config {}: {text}",
        config.display()
    );
    format!("Host {name}\n{}", &text["Host testhost\n".len()..])
}

fn two_servers(opts: &Opts, caps: &Caps) -> TwoServers {
    let (sb_a, sb_b) = (Sandbox::new(), Sandbox::new());
    let laptop = Laptop::new();
    let (a, b) = (Server::start(&sb_a), Server::start(&sb_b));
    let port = sb_a.port(0);
    let hosts = [("alpha", &a), ("beta", &b)];
    for (host, server) in hosts {
        server.start_app(&format!("{host}-web"), port);
    }
    let config = sb_a.root.path().join("ssh_config_both");
    std::fs::write(
        &config,
        format!(
            "{}\n{}",
            host_block(a.config(), "alpha"),
            host_block(b.config(), "beta")
        ),
    )
    .unwrap();
    let mut tunnel = start_tunnel(
        &sb_a,
        &laptop,
        &config,
        &["alpha", "beta"],
        opts,
        caps,
        sb_a.root.path().join("tunnel-both.log"),
    );
    let forward_for = |evs: &[Value], app: &str| -> Option<Value> {
        evs.iter()
            .rev()
            .find(|e| e["event"] == "forward" && e["name"] == app)
            .cloned()
    };
    let events = tunnel.events_until(60, "forwards for both hosts and `ready`", |evs| {
        evs.iter().any(|e| e["event"] == "ready")
            && hosts
                .iter()
                .all(|(h, _)| forward_for(evs, &format!("{h}-web")).is_some())
    });
    let mut rows = Vec::new();
    for (host, _) in hosts {
        let app = format!("{host}-web");
        let f = forward_for(&events, &app).unwrap();
        let local = f["local_port"].as_u64().map(|p| p as u16);
        let named = f["host"].as_str().map(str::to_string);
        let want = format!("hello from {app} on {port}");
        let ok = local.is_some_and(|l| laptop.ns.enter(|| answers(l, &want)));
        rows.push(HostRow {
            host,
            app,
            local,
            named,
            answers: ok,
        });
    }
    let (Some(la), Some(lb)) = (rows[0].local, rows[1].local) else {
        panic!("bench: a forward event without local_port: {events:?}");
    };

    // Down goes alpha's sshd: whatever below the tunnel lives in alpha's namespace.
    let doomed: Vec<u32> = descendants(tunnel.pid())
        .into_iter()
        .filter(|&p| a.ns.holds(p))
        .collect();
    eprintln!(
        "bench: two servers: kill -9 {} ({})",
        doomed
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        doomed
            .iter()
            .map(|&p| comm(p))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let killed_at = Instant::now();
    for &p in &doomed {
        kill(p, libc::SIGKILL);
    }
    let want_a = format!("hello from alpha-web on {port}");
    let want_b = format!("hello from beta-web on {port}");
    let limit = Duration::from_secs(60);
    let (probes, failed, gap, back) = laptop.ns.enter(|| {
        let (mut probes, mut failed, mut gap) = (0u32, 0u32, Duration::ZERO);
        let mut down_since: Option<Instant> = None;
        let mut back = None;
        while killed_at.elapsed() < limit {
            let tick = Instant::now();
            probes += 1;
            if answers(lb, &want_b) {
                if let Some(t) = down_since.take() {
                    gap = gap.max(t.elapsed());
                }
            } else {
                failed += 1;
                down_since.get_or_insert(tick);
            }
            if answers(la, &want_a) {
                back = Some(killed_at.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(20).saturating_sub(tick.elapsed()));
        }
        if let Some(t) = down_since {
            gap = gap.max(t.elapsed());
        }
        (probes, failed, gap, back)
    });
    // A forward put back on another local port is said by a new event.
    let back_port = forward_for(&tunnel.pending(), "alpha-web")
        .and_then(|f| f["local_port"].as_u64())
        .map(|p| p as u16)
        .or(back.map(|_| la));
    tunnel.stop();
    TwoServers {
        port,
        rows,
        killed: doomed.len(),
        other_probes: probes,
        other_failed: failed,
        other_longest_gap: gap,
        back_after: back,
        back_port,
    }
}

// ---------------------------------------------------------------------------------------------
// Report

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ratio(reference: f64, tool: f64) -> String {
    if tool > 0.0 {
        format!("{:.2}x", reference / tool)
    } else if reference > 0.0 {
        "inf".into()
    } else {
        "-".into()
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "FAIL" }
}

fn main() {
    let opts = parse_opts();
    let strace = preflight();
    let caps = caps();
    let begun = Instant::now();

    println!("{}", machine_line());
    let pm2_version =
        std::fs::read_to_string(Pm2::LATEST.dir().join("node_modules/pm2/package.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_string))
            .unwrap_or_else(|| "?".into());
    println!(
        "pm2 {pm2_version}, node {}, {}, {}",
        first_line("node", &["--version"]),
        first_line("ssh", &["-V"]),
        first_line(bin(), &["--version"]),
    );
    println!(
        "{} apps, steady state {} s, tunnel interval {}; tunnel takes {}{}",
        opts.apps,
        opts.duration,
        opts.interval
            .map_or_else(|| "default".to_string(), |i| format!("{i} s")),
        if caps.multi_host {
            "HOST..."
        } else {
            "one HOST"
        },
        if caps.watch_flag {
            " and `--watch` (given: without it the tunnel lists once)"
        } else {
            ", following by default"
        },
    );
    println!(
        "modes: stream = the server's pm2-port; poll (reference) = the server's pm2-port refusing \
         `--watch` like an old one\n"
    );

    let mut results = Vec::new();
    for mode in [Mode::Stream, Mode::Poll] {
        results.push((mode, attempt(|| run_mode(mode, &opts, &caps, &strace))));
    }
    let mut passed = true;

    println!(
        "1. Latency: `pm2 start --wait-ready` returning -> the app answering GET / on the laptop \
         ({} apps, one by one)",
        opts.apps
    );
    println!(
        "  {:<18} {:>4} {:>9} {:>9} {:>9} {:>7}",
        "mode", "n", "p50", "p95", "max", "missed"
    );
    let mut stats = HashMap::new();
    for (mode, r) in &results {
        let r = match r {
            Ok(r) => r,
            Err(why) => {
                println!("  {:<18} failed: {why}", mode.label());
                continue;
            }
        };
        let mut sorted = r.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            println!(
                "  {:<18} {:>4} {:>9} {:>9} {:>9} {:>7}",
                mode.label(),
                0,
                "-",
                "-",
                "-",
                r.missed.len()
            );
            continue;
        }
        let (p50, p95, max) = (
            percentile(&sorted, 0.50),
            percentile(&sorted, 0.95),
            *sorted.last().unwrap(),
        );
        stats.insert(*mode, (p50, p95, max, r.missed.len()));
        println!(
            "  {:<18} {:>4} {:>7.0}ms {:>7.0}ms {:>7.0}ms {:>7}",
            mode.label(),
            sorted.len(),
            ms(p50),
            ms(p95),
            ms(max),
            r.missed.len()
        );
    }
    if let (Some(s), Some(p)) = (stats.get(&Mode::Stream), stats.get(&Mode::Poll)) {
        println!(
            "  poll / stream: p50 {}, p95 {}, max {}",
            ratio(ms(p.0), ms(s.0)),
            ratio(ms(p.1), ms(s.1)),
            ratio(ms(p.2), ms(s.2))
        );
    }
    let latency_ok = stats.get(&Mode::Stream).is_some_and(|s| {
        s.3 == 0 && s.0 <= Duration::from_millis(300) && s.1 <= Duration::from_secs(1)
    });
    passed &= latency_ok;
    println!(
        "  acceptance (stream: p50 <= 300 ms, p95 <= 1 s, none missed): {}\n",
        verdict(latency_ok)
    );

    if opts.duration > 0 {
        println!(
            "2. Steady state: what the tunnel and everything below it create in {} s, every app \
             online, nothing changing (strace -f)",
            opts.duration
        );
        println!(
            "  {:<18} {:>13} {:>13} {:>13} {:>13} {:>7}",
            "mode", "laptop forks", "laptop execs", "server forks", "server execs", "/ min"
        );
        let mut totals = HashMap::new();
        for (mode, r) in &results {
            let s = match r {
                Ok(ModeResult {
                    spawns: Some(s), ..
                }) => s,
                _ => {
                    println!("  {:<18} failed (see section 1)", mode.label());
                    continue;
                }
            };
            let total = s.laptop.spawns() + s.server.spawns() + s.unknown.spawns();
            let per_min = f64::from(total) * 60.0 / s.secs;
            totals.insert(*mode, (total, per_min));
            println!(
                "  {:<18} {:>13} {:>13} {:>13} {:>13} {:>7.1}",
                mode.label(),
                s.laptop.forks,
                s.laptop.execs,
                s.server.forks,
                s.server.execs,
                per_min
            );
        }
        for (mode, r) in &results {
            let Ok(ModeResult {
                spawns: Some(s), ..
            }) = r
            else {
                continue;
            };
            println!(
                "  {}: traced {} laptop and {} server processes for {:.1} s; programs run: laptop {}; server {}; threads started: laptop {}, server {}",
                mode.label(),
                s.traced.0,
                s.traced.1,
                s.secs,
                s.laptop.programs(),
                s.server.programs(),
                s.laptop.threads,
                s.server.threads
            );
            if s.unknown.spawns() + s.unknown.threads > 0 {
                println!(
                    "  {}: of a task whose side is unknown: {} forks, {} execs ({}), {} threads",
                    mode.label(),
                    s.unknown.forks,
                    s.unknown.execs,
                    s.unknown.programs(),
                    s.unknown.threads
                );
            }
        }
        if let (Some(s), Some(p)) = (totals.get(&Mode::Stream), totals.get(&Mode::Poll)) {
            let handovers = results
                .iter()
                .find(|(m, _)| *m == Mode::Poll)
                .and_then(|(_, r)| r.as_ref().ok()?.spawns.as_ref())
                .map_or(0, |s| s.server.handovers + s.laptop.handovers);
            let without = if handovers > 0 {
                format!(
                    " ({} without the {handovers} execs of the poll wrapper handing over to the real pm2-port)",
                    ratio(f64::from(p.0 - handovers), f64::from(s.0))
                )
            } else {
                String::new()
            };
            println!(
                "  poll / stream: spawns {}{without}",
                ratio(f64::from(p.0), f64::from(s.0))
            );
        }
        let steady_ok = totals.get(&Mode::Stream).is_some_and(|s| s.0 == 0);
        passed &= steady_ok;
        println!(
            "  acceptance (stream: nothing spawned on either side): {}\n",
            verdict(steady_ok)
        );
    }

    println!("3. Two servers whose apps share a port, one tunnel for both");
    if !caps.multi_host {
        println!(
            "  skipped: `pm2-port tunnel --help` shows one HOST (no `<HOST>...`): this build has \
             no multi-host tunnel yet"
        );
    } else {
        eprintln!("bench: two servers, one tunnel");
        match attempt(|| two_servers(&opts, &caps)) {
            Ok(t) => passed &= report_two_servers(&t),
            Err(why) => {
                println!("  failed: {why}");
                passed = false;
            }
        }
    }
    println!("\n(run took {:.0} s)", begun.elapsed().as_secs_f64());
    if opts.strict && !passed {
        std::process::exit(1);
    }
}

/// Section 3's lines; whether its acceptance holds.
fn report_two_servers(t: &TwoServers) -> bool {
    println!("  both servers' app on port {}", t.port);
    for HostRow {
        host,
        app,
        local,
        named,
        answers: ok,
    } in &t.rows
    {
        println!(
            "  {host:<6} {app}: local port {}, event host {}, answers: {}",
            local.map_or("?".into(), |l| l.to_string()),
            named
                .as_deref()
                .map_or("(none)".into(), |n| format!("\"{n}\"")),
            if *ok { "yes" } else { "NO" }
        );
    }
    let distinct = t.rows[0].local != t.rows[1].local;
    let named = t.rows.iter().all(|r| r.named.as_deref() == Some(r.host));
    let reachable = t.rows.iter().all(|r| r.answers);
    println!(
        "  alpha's sshd killed (kill -9, processes: {}); beta meanwhile: {} probes every 20 ms, {} failed, longest outage {:.0} ms",
        t.killed,
        t.other_probes,
        t.other_failed,
        ms(t.other_longest_gap)
    );
    match t.back_after {
        Some(d) => println!(
            "  alpha serves again after {:.0} ms (local port {})",
            ms(d),
            t.back_port.map_or("?".into(), |p| p.to_string())
        ),
        None => println!("  alpha did not serve again within 60 s"),
    }
    let ok = distinct && named && reachable && t.other_failed == 0 && t.back_after.is_some();
    println!(
        "  acceptance (both reachable, distinct local ports, events name the host, beta \
         never fails, alpha comes back): {}",
        verdict(ok)
    );
    ok
}
