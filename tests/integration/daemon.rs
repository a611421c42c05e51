//! PM2's daemon: ports held in every state, the socket client against `pm2 jlist`, and no daemon
//! ever started by a read-only command, each against every pinned PM2 (5, 6 and 7).

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

fn next(sb: &Sandbox) -> u64 {
    sb.run(["next", "--json"]).json()["port"].as_u64().unwrap()
}

/// Each scenario `NAME(pm2: Pm2)` becomes the tests `NAME::pm2_5`, `NAME::pm2_6` and `NAME::pm2_7`.
macro_rules! each_pm2 {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::support::Pm2;
            #[test]
            fn pm2_5() {
                super::$name(Pm2::V5)
            }
            #[test]
            fn pm2_6() {
                super::$name(Pm2::V6)
            }
            #[test]
            fn pm2_7() {
                super::$name(Pm2::V7)
            }
        }
    )*};
}

each_pm2!(
    an_app_port_is_taken_online_stopped_and_saved_without_a_daemon,
    the_socket_client_agrees_with_jlist_on_30_apps_and_restarts_nothing,
    a_stale_socket_and_a_missing_one_start_no_daemon,
);

fn an_app_port_is_taken_online_stopped_and_saved_without_a_daemon(pm2: Pm2) {
    let sb = Sandbox::with_pm2(pm2);
    sb.start_foreign_app("web", sb.port(0));
    assert_eq!(next(&sb), u64::from(sb.port(1)), "online");
    sb.pm2(["stop", "web"]);
    wait_for(10, "the port to be released", || {
        http_get("127.0.0.1", sb.port(0)).is_none().then_some(())
    });
    assert_eq!(next(&sb), u64::from(sb.port(1)), "stopped");
    sb.pm2(["save"]);
    sb.pm2(["kill"]);
    assert!(!sb.daemon_running());
    assert!(!sb.home.join("rpc.sock").exists());
    assert_eq!(next(&sb), u64::from(sb.port(1)), "saved in dump.pm2");

    let list = sb.run(["list", "--json"]).json();
    assert_eq!(list[0]["name"], "web");
    assert_eq!(list[0]["port"], sb.port(0));
    assert_eq!(list[0]["status"], "saved");
    let dir = sb.fixture("http-app");
    let dry = sb
        .run(["init", dir.to_str().unwrap(), "--dry-run", "--json"])
        .json();
    assert_eq!(dry["apps"][0]["port"], sb.port(1));
    assert!(
        !sb.home.join("rpc.sock").exists(),
        "a read-only command started a daemon"
    );
    assert!(!sb.daemon_running());
}

/// Name, status and port of every app, as `pm2 jlist` reports them.
fn jlist_view(list: &[Value]) -> BTreeSet<(String, String, u64)> {
    list.iter()
        .map(|a| {
            let env = &a["pm2_env"];
            let port = env["env"]["PORT"]
                .as_u64()
                .or_else(|| env["env"]["PORT"].as_str()?.parse().ok());
            (
                a["name"].as_str().unwrap().to_string(),
                env["status"].as_str().unwrap().to_string(),
                port.unwrap(),
            )
        })
        .collect()
}

fn the_socket_client_agrees_with_jlist_on_30_apps_and_restarts_nothing(pm2: Pm2) {
    let sb = Sandbox::build(pm2, 30);
    let dir = sb.fixture("idle-app");
    let apps: Vec<String> = (0..30)
        .map(|i| {
            format!(
                "{{ name: 'idle-{i:02}', script: 'idle.js', cwd: '{}', env: {{ PORT: {} }} }}",
                dir.display(),
                sb.port(i)
            )
        })
        .collect();
    let file = dir.join("apps.config.js");
    fs::write(
        &file,
        format!("module.exports = {{ apps: [{}] }};\n", apps.join(",\n")),
    )
    .unwrap();
    sb.pm2(["start", file.to_str().unwrap()]);
    for i in (0..30).step_by(3) {
        sb.pm2(["stop", &format!("idle-{i:02}")]);
    }
    let before = sb.jlist();
    assert_eq!(before.len(), 30);

    for _ in 0..3 {
        let run = sb.run(["--verbose", "list", "--json"]);
        assert!(
            run.stderr().contains("PM2's daemon listed 30 apps"),
            "the list did not come from the socket: {}",
            run.stderr()
        );
        let rows = run.json();
        let got: BTreeSet<(String, String, u64)> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                    r["port"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, jlist_view(&before));
        for r in rows.as_array().unwrap() {
            assert_eq!(r["cwd"], dir.to_str().unwrap());
            assert_eq!(r["sources"], serde_json::json!(["pm2"]));
            assert_eq!(r["conflicts"], serde_json::json!([]));
        }
    }
    let err = sb.run(["next"]).fails(1);
    assert!(
        err.contains(&format!("no free port in {} (30 taken)", sb.range(30))),
        "{err}"
    );
    // A wrong argument count would have made the daemon restart every app: nothing restarted.
    let after = sb.jlist();
    let pids = |l: &[Value]| -> Vec<(Value, Value)> {
        l.iter()
            .map(|a| (a["pid"].clone(), a["pm2_env"]["restart_time"].clone()))
            .collect()
    };
    assert_eq!(pids(&after), pids(&before));
}

fn a_stale_socket_and_a_missing_one_start_no_daemon(pm2: Pm2) {
    let sb = Sandbox::with_pm2(pm2);
    start_idle_app(&sb);
    sb.pm2(["save"]);
    let app_pid = sb.jlist()[0]["pid"].as_u64().unwrap();
    let daemon_pid: i32 = fs::read_to_string(sb.home.join("pm2.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Kill the daemon the hard way: its socket file stays behind.
    for pid in [daemon_pid, app_pid as i32] {
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
    wait_for(10, "the daemon to die", || {
        (!sb.daemon_running()).then_some(())
    });
    assert!(
        sb.home.join("rpc.sock").exists(),
        "the stale socket should remain"
    );

    assert_eq!(
        next(&sb),
        u64::from(sb.port(1)),
        "the saved app still holds its port"
    );
    let list = sb.run(["list", "--json"]).json();
    assert_eq!(list[0]["status"], "saved");
    assert!(!sb.daemon_running(), "a daemon was started");

    let fresh = Sandbox::with_pm2(pm2);
    assert_eq!(next(&fresh), u64::from(fresh.port(0)));
    assert!(!fresh.home.join("rpc.sock").exists());
}

// A hostile or stuck daemon: pm2-port gives up within its deadline, in little memory, and says why.

/// The deadline the tests below set (`PM2_PORT_DAEMON_TIMEOUT`), in seconds.
const DEADLINE: u64 = 3;

/// A fake daemon listening on `$PM2_HOME/rpc.sock`: it reads each request, then hands the
/// connection to `reply`. It stops accepting when dropped; `reply` sees `stopped()` turn true.
struct FakeDaemon {
    stop: Arc<AtomicBool>,
}

impl FakeDaemon {
    fn start(sb: &Sandbox, reply: fn(UnixStream, &AtomicBool)) -> FakeDaemon {
        let listener = UnixListener::bind(sb.home.join("rpc.sock")).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let flag = flag.clone();
                        std::thread::spawn(move || {
                            conn.set_nonblocking(false).unwrap();
                            if pm2_port::sys::pm2_rpc::read_message(&mut conn).is_ok() {
                                reply(conn, &flag);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        FakeDaemon { stop }
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// How a run of pm2-port ended: its output, how long it took, its peak resident memory.
struct Watched {
    run: Run,
    took: Duration,
    max_rss_kib: i64,
}

/// Run `cmd`, killing it after `limit` (a failed assertion, not a hang).
#[expect(
    clippy::zombie_processes,
    reason = "reaped by wait4, which also reports the peak RSS"
)]
fn run_watched(mut cmd: Command, limit: Duration) -> Watched {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).unwrap();
        v
    });
    // wait4 rather than Child::wait: it also reports the child's peak RSS.
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
        if r == pid {
            break;
        }
        if start.elapsed() > limit && !killed {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    let output = std::process::Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    let run = Run(output);
    assert!(
        !killed,
        "pm2-port still ran after {limit:?} and was killed; stderr: {}",
        run.stderr()
    );
    Watched {
        run,
        took,
        max_rss_kib: usage.ru_maxrss,
    }
}

fn next_with_deadline(sb: &Sandbox) -> Watched {
    let mut cmd = sb.cmd(["next"]);
    cmd.env("PM2_PORT_DAEMON_TIMEOUT", DEADLINE.to_string());
    run_watched(cmd, Duration::from_secs(20))
}

/// The failure of a run that hit the deadline: exit 1, in about the deadline, and a message that
/// names the socket and the timeout and says what to check.
fn assert_timed_out(sb: &Sandbox, w: &Watched) -> String {
    let err = w.run.fails(1);
    assert!(
        w.took < Duration::from_secs(DEADLINE + 3),
        "took {:?}: {err}",
        w.took
    );
    assert!(
        w.took >= Duration::from_millis(DEADLINE * 1000 - 500),
        "gave up before the deadline, after {:?}: {err}",
        w.took
    );
    let sock = sb.home.join("rpc.sock");
    assert!(err.contains(&sock.display().to_string()), "{err}");
    assert!(
        err.contains(&format!("did not answer within {DEADLINE} s")),
        "{err}"
    );
    assert!(err.contains("pm2 kill"), "{err}");
    err
}

#[test]
fn a_reply_claiming_a_4_gib_argument_fails_at_once_in_little_memory() {
    let sb = Sandbox::new();
    let _daemon = FakeDaemon::start(&sb, |mut conn, stop| {
        // One argument of 4 GiB - 1 bytes, then as many bytes as the client takes, up to 512 MiB.
        let mut head = vec![0x12];
        head.extend_from_slice(&u32::MAX.to_be_bytes());
        if conn.write_all(&head).is_err() {
            return;
        }
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..512 {
            if stop.load(Ordering::SeqCst) || conn.write_all(&chunk).is_err() {
                return;
            }
        }
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // A child's peak RSS counts the test process's own memory when it is forked from it: measure
    // a program that allocates nothing, spawned the same way, and compare with that.
    let base = run_watched(Command::new("true"), Duration::from_secs(5)).max_rss_kib;
    let w = next_with_deadline(&sb);
    let err = w.run.stderr();
    let facts = format!(
        "exit {}, took {:?}, peak RSS {} KiB (a bare `true`: {base} KiB), stderr: {err}",
        w.run.code(),
        w.took,
        w.max_rss_kib
    );
    assert_eq!(w.run.code(), 1, "{facts}");
    assert!(w.took < Duration::from_secs(2), "{facts}");
    assert!(w.max_rss_kib < base.max(32 * 1024) + 32 * 1024, "{facts}");
    assert!(
        err.contains(&sb.home.join("rpc.sock").display().to_string()),
        "{facts}"
    );
    assert!(err.contains("4294967295 bytes"), "{facts}");
    assert!(err.contains("cap of 64 MiB"), "{facts}");
}

#[test]
fn a_daemon_trickling_a_byte_a_second_is_given_up_at_the_deadline() {
    let sb = Sandbox::new();
    let _daemon = FakeDaemon::start(&sb, |mut conn, stop| {
        // A plausible start (one argument of 1 MiB), then one byte a second, for ever.
        let mut bytes = vec![0x11];
        bytes.extend_from_slice(&(1u32 << 20).to_be_bytes());
        bytes.extend_from_slice(b"j:");
        for byte in bytes.into_iter().chain(std::iter::repeat(b' ')) {
            if stop.load(Ordering::SeqCst) || conn.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let w = next_with_deadline(&sb);
    assert_timed_out(&sb, &w);
}

#[test]
fn a_socket_whose_backlog_is_full_is_given_up_at_the_deadline() {
    let sb = Sandbox::new();
    let path = sb.home.join("rpc.sock");
    // Dropped before the sandbox, whose own check for a daemon would wait on this backlog too.
    let mut fds = Fds(vec![unix_socket()]);
    let addr = sockaddr(&path);
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    unsafe {
        assert_eq!(libc::bind(fds.0[0], &addr as *const _ as *const _, len), 0);
        assert_eq!(libc::listen(fds.0[0], 0), 0);
    }
    // Fill the accept queue that nobody empties: the next blocking connect() would wait for ever.
    loop {
        let fd = unix_socket();
        fds.0.push(fd);
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
        let r = unsafe { libc::connect(fd, &addr as *const _ as *const _, len) };
        if r != 0 {
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EAGAIN)
            );
            break;
        }
        assert!(fds.0.len() < 100, "the backlog does not fill");
    }
    let w = next_with_deadline(&sb);
    let err = assert_timed_out(&sb, &w);
    assert!(err.contains("accepted no connection"), "{err}");
}

/// File descriptors closed on drop.
struct Fds(Vec<libc::c_int>);

impl Drop for Fds {
    fn drop(&mut self) {
        for &fd in &self.0 {
            unsafe { libc::close(fd) };
        }
    }
}

#[test]
fn a_stopped_pm2_daemon_is_given_up_at_the_deadline_and_the_message_says_kill_cont() {
    let sb = Sandbox::new();
    let daemon = idle_app_and_daemon_pid(&sb);
    unsafe { libc::kill(daemon, libc::SIGSTOP) };
    // Resumed even when the run panics: the sandbox's `pm2 kill` would wait on it for ever.
    let resume = Resume(daemon);
    let w = next_with_deadline(&sb);
    drop(resume);
    let err = assert_timed_out(&sb, &w);
    assert!(err.contains(&format!("kill -CONT {daemon}")), "{err}");
    assert_eq!(next(&sb), u64::from(sb.port(1)), "after SIGCONT");
}

/// Start `idle`, an app that holds port 0 of the sandbox without listening.
fn start_idle_app(sb: &Sandbox) {
    let dir = sb.fixture("idle-app");
    sb.pm2_with_env(
        [
            "start",
            dir.join("idle.js").to_str().unwrap(),
            "--name",
            "idle",
        ],
        &[("PORT", sb.port(0).to_string())],
    );
}

/// [`start_idle_app`], then PM2's daemon's PID.
fn idle_app_and_daemon_pid(sb: &Sandbox) -> i32 {
    start_idle_app(sb);
    fs::read_to_string(sb.home.join("pm2.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Sends SIGCONT to a stopped process on drop.
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

fn unix_socket() -> libc::c_int {
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    fd
}

fn sockaddr(path: &std::path::Path) -> libc::sockaddr_un {
    use std::os::unix::ffi::OsStrExt;
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len());
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    addr
}

/// Issue 10, point 12: PM2 is read before the registry lock, so inits waiting on a stopped daemon
/// wait side by side (one deadline in all), not one after another under the lock.
#[test]
fn parallel_inits_on_a_stopped_daemon_wait_one_deadline_not_one_each() {
    let sb = Sandbox::new();
    let daemon = idle_app_and_daemon_pid(&sb);
    let dirs: Vec<_> = (0..6)
        .map(|i| sb.fixture_as("http-app", &format!("p{i}")))
        .collect();
    let inits = |dirs: &[std::path::PathBuf]| -> Vec<std::process::Child> {
        dirs.iter()
            .map(|d| {
                let mut c = sb.cmd(["init", d.to_str().unwrap(), "--json"]);
                c.env("PM2_PORT_DAEMON_TIMEOUT", "2")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                c.spawn().unwrap()
            })
            .collect()
    };
    unsafe { libc::kill(daemon, libc::SIGSTOP) };
    let resume = Resume(daemon);
    let started = Instant::now();
    let outs: Vec<_> = inits(&dirs)
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let took = started.elapsed();
    drop(resume);
    for out in &outs {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("did not answer within 2 s"), "{err}");
    }
    assert!(
        took < Duration::from_secs(7),
        "6 inits took {took:?}: they waited on the daemon one after another"
    );
    assert!(!sb.state.join("registry.json").exists());
    // Resumed, the same six get six distinct ports.
    let mut ports: Vec<u64> = inits(&dirs)
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v["apps"][0]["port"].as_u64().unwrap()
        })
        .collect();
    ports.sort();
    let want: Vec<u64> = (1..7).map(|i| u64::from(sb.port(i))).collect();
    assert_eq!(ports, want);
}
