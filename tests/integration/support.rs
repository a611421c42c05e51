//! The test harness: a sandbox per test with its own PM2 home, state directory and port range, the
//! real `pm2` installed from `tests/pm2/package-lock.json` (or an older PM2 from `tests/pm2-5`,
//! `tests/pm2-6`), and helpers to run the binary.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_pm2-port");

/// The binary under test: `PM2_PORT_TEST_BIN` when set (to run this suite against another build,
/// for example the one before a fix, to see its tests fail), else the one cargo built.
pub fn bin() -> PathBuf {
    std::env::var_os("PM2_PORT_TEST_BIN")
        .filter(|b| !b.is_empty())
        .map_or_else(|| PathBuf::from(BIN), PathBuf::from)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

/// A PM2 the suite can drive, each installed from its own lockfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pm2 {
    /// 5.4.3, from `tests/pm2-5`.
    V5,
    /// 6.0.14, from `tests/pm2-6`.
    V6,
    /// 7.0.4, from `tests/pm2`: the one every other test uses.
    V7,
}

impl Pm2 {
    pub const LATEST: Pm2 = Pm2::V7;

    /// The directory whose `package-lock.json` pins this PM2.
    pub fn dir(self) -> PathBuf {
        repo().join(match self {
            Pm2::V5 => "tests/pm2-5",
            Pm2::V6 => "tests/pm2-6",
            Pm2::V7 => "tests/pm2",
        })
    }

    /// The `pm2` program. Missing, or another version than the lockfile's, is a failure, never a
    /// skip.
    pub fn bin(self) -> PathBuf {
        let dir = self.dir();
        let p = dir.join("node_modules/.bin/pm2");
        let install = format!(
            "run `npm ci --prefix {}` (bash tests/run.sh does)",
            dir.strip_prefix(repo()).unwrap().display()
        );
        assert!(
            p.exists(),
            "the test PM2 is not installed at {}: {install}",
            p.display()
        );
        let read = |f: PathBuf| -> Value {
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        };
        let pinned = read(dir.join("package.json"))["dependencies"]["pm2"].clone();
        let installed = read(dir.join("node_modules/pm2/package.json"))["version"].clone();
        assert_eq!(
            installed,
            pinned,
            "a stale PM2 in {}: {install}",
            dir.display()
        );
        p
    }
}

/// The real pm2 most tests drive (7.0.4).
pub fn pm2_bin() -> PathBuf {
    Pm2::LATEST.bin()
}

/// Ports the suite hands out: blocks from 21000 up, each checked to be free.
const BLOCK: u16 = 20;
static NEXT_BLOCK: AtomicU16 = AtomicU16::new(21000);

fn listening_ports() -> Vec<u16> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| pm2_port::ports::procnet::parse(&t))
        .map(|l| l.port)
        .collect()
}

fn allocate_block(size: u16) -> u16 {
    loop {
        let start = NEXT_BLOCK.fetch_add(size, Ordering::SeqCst);
        assert!(start < 29000, "the suite ran out of port blocks");
        let busy = listening_ports();
        if !(start..start + size).any(|p| busy.contains(&p)) {
            return start;
        }
    }
}

/// One test's world.
pub struct Sandbox {
    pub root: tempfile::TempDir,
    /// `PM2_HOME` for both pm2-port and pm2.
    pub home: PathBuf,
    pub state: PathBuf,
    /// First port of this sandbox's range; the range is `start..start+size`.
    pub start: u16,
    pub size: u16,
    /// The `pm2` program of this sandbox, for pm2-port (`PM2_PORT_PM2`) and the test alike.
    pub pm2_program: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox::with_ports(BLOCK)
    }

    pub fn with_ports(size: u16) -> Sandbox {
        Sandbox::build(Pm2::LATEST, size)
    }

    /// A sandbox driving another PM2.
    pub fn with_pm2(pm2: Pm2) -> Sandbox {
        Sandbox::build(pm2, BLOCK)
    }

    pub fn build(pm2: Pm2, size: u16) -> Sandbox {
        let pm2_program = pm2.bin();
        let root = tempfile::Builder::new()
            .prefix("p2p")
            .tempdir_in("/tmp")
            .unwrap();
        let home = root.path().join("pm2");
        let state = root.path().join("state");
        std::fs::create_dir_all(&home).unwrap();
        Sandbox {
            home,
            state,
            root,
            start: allocate_block(size),
            size,
            pm2_program,
        }
    }

    /// The i-th port of this sandbox's range.
    pub fn port(&self, i: u16) -> u16 {
        assert!(i < self.size);
        self.start + i
    }

    /// `A-B` for the first `n` ports of the range.
    pub fn range(&self, n: u16) -> String {
        format!("{}-{}", self.start, self.start + n - 1)
    }

    /// Copy `fixtures/NAME` into the sandbox as `DEST` and return its absolute path.
    pub fn fixture_as(&self, name: &str, dest: &str) -> PathBuf {
        let to = self.root.path().join(dest);
        copy_dir(&fixtures().join(name), &to);
        to.canonicalize().unwrap()
    }

    pub fn fixture(&self, name: &str) -> PathBuf {
        self.fixture_as(name, name)
    }

    /// An empty project directory.
    pub fn dir(&self, name: &str) -> PathBuf {
        let d = self.root.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d.canonicalize().unwrap()
    }

    /// A `Command` for pm2-port with this sandbox's environment (range: the whole block).
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(bin());
        c.args(args);
        self.env(&mut c);
        c.env("PM2_PORT_RANGE", self.range(self.size));
        c
    }

    pub fn env(&self, c: &mut Command) {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PM2_") {
                c.env_remove(&k);
            }
        }
        c.env("PM2_HOME", &self.home)
            .env("PM2_PORT_STATE_DIR", &self.state)
            .env("PM2_PORT_PM2", &self.pm2_program)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
    }

    /// Run pm2-port and capture what it printed.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run(self.cmd(args).output().unwrap())
    }

    /// A run of pm2-port to describe, then check with [`Call::run`]: `sb.call(["next"])`.
    pub fn call<I, S>(&self, args: I) -> Call<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Call::new(
            self,
            args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
        )
    }

    /// `pm2-port init DIR`, to describe further: `sb.init(&dir).arg("--json").json()`.
    pub fn init(&self, dir: impl AsRef<Path>) -> Call<'_> {
        self.call([OsStr::new("init"), dir.as_ref().as_os_str()])
    }

    /// Run the real pm2 in this sandbox's home; panics when it fails.
    pub fn pm2<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.pm2_with_env(args, &[])
    }

    /// Run the real pm2 with extra environment (PM2 copies it into the app it starts).
    pub fn pm2_with_env<I, S>(&self, args: I, vars: &[(&str, String)]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.pm2_through(Command::new(&self.pm2_program), args, vars, "pm2")
    }

    /// Run `c` (the sandbox's pm2, perhaps behind `ip netns exec`) with `args`, the sandbox's
    /// environment and `vars`; panics, naming `what`, when it fails.
    pub fn pm2_through<I, S>(
        &self,
        mut c: Command,
        args: I,
        vars: &[(&str, String)],
        what: &str,
    ) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        c.args(args);
        self.env(&mut c);
        for (k, v) in vars {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{what} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Start `fixtures/http-app` by hand under PM2 as `rogue` (in the sandbox's `rogue`
    /// directory), on 127.0.0.1:`port`, and wait until it answers: an app pm2-port did not
    /// configure, holding a port.
    pub fn start_rogue(&self, port: u16) {
        let rogue = self.fixture_as("http-app", "rogue");
        self.pm2_with_env(
            [
                "start",
                rogue.join("server.js").to_str().unwrap(),
                "--name",
                "rogue",
            ],
            &[
                ("PORT", port.to_string()),
                ("HOST", "127.0.0.1".to_string()),
                ("APP_NAME", "rogue".into()),
            ],
        );
        wait_for(20, "rogue", || {
            http_get("127.0.0.1", port).filter(|b| b.contains("rogue"))
        });
    }

    /// Start `fixtures/http-app/server.js` under PM2 as `name`, in its own directory, on `port`,
    /// and wait until it answers. PM2 marks it online once it listens (`--wait-ready`).
    pub fn start_foreign_app(&self, name: &str, port: u16) -> PathBuf {
        let dir = self.fixture_as("http-app", &format!("foreign-{name}"));
        let script = dir.join("server.js");
        self.pm2_with_env(
            start_args(&script, name, &dir),
            &[("PORT", port.to_string()), ("APP_NAME", name.to_string())],
        );
        wait_for(20, &format!("{name} to answer on {port}"), || {
            http_get("127.0.0.1", port)
        });
        dir
    }

    /// `pm2 jlist`, parsed.
    pub fn jlist(&self) -> Vec<Value> {
        parse_jlist(&self.pm2(["jlist"]))
    }

    /// The registry file, parsed.
    pub fn registry(&self) -> Value {
        let text = std::fs::read_to_string(self.state.join("registry.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub fn daemon_running(&self) -> bool {
        std::os::unix::net::UnixStream::connect(self.home.join("rpc.sock")).is_ok()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.daemon_running() {
            let mut c = Command::new(&self.pm2_program);
            c.arg("kill");
            self.env(&mut c);
            let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        // Orphans that outlived PM2 (tests make some on purpose): every process working in here.
        let root = self.root.path().canonicalize().unwrap();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&root))
            {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// What `pm2 jlist` printed, parsed (PM2 may print notices before the JSON).
pub fn parse_jlist(out: &Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text
        .lines()
        .position(|l| l.starts_with('['))
        .expect("jlist printed JSON");
    let json: String = text.lines().skip(at).collect::<Vec<_>>().join("\n");
    serde_json::from_str::<Value>(&json)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// `fixtures/vite-app` copied as `name` (its `node_modules`, installed by tests/run.sh, linked
/// rather than copied), its page saying `name`.
pub fn vite_project(sb: &Sandbox, name: &str) -> PathBuf {
    let fixture = fixtures().join("vite-app");
    let modules = fixture.join("node_modules");
    assert!(
        modules.join(".bin/vite").exists(),
        "Vite is not installed in {}: run `npm ci --prefix fixtures/vite-app` (bash tests/run.sh does)",
        fixture.display()
    );
    let dir = sb.dir(name);
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(fixture.join(file), dir.join(file)).unwrap();
    }
    let page = std::fs::read_to_string(fixture.join("index.html")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        page.replace(">vite-app<", &format!(">{name}<")),
    )
    .unwrap();
    std::os::unix::fs::symlink(&modules, dir.join("node_modules")).unwrap();
    dir
}

/// GET / on localhost, whichever address family the server chose.
pub fn http_get_localhost(port: u16) -> Option<String> {
    http_get("[::1]", port).or_else(|| http_get("127.0.0.1", port))
}

/// What a run of pm2-port printed.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Assert success and return stdout parsed as JSON.
    pub fn json(&self) -> Value {
        assert_eq!(
            self.code(),
            0,
            "stdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout()))
    }
    /// Assert the exit status and return stderr.
    pub fn fails(&self, code: i32) -> String {
        assert_eq!(
            self.code(),
            code,
            "stdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        self.stderr()
    }
}

/// A run of pm2-port and what it must do, checked at once by [`Call::run`] (after just's `Test`):
///
/// ```ignore
/// sb.init(&dir).arg("--port").arg("70000")
///     .expect_code(2).stderr_has("70000").unchanged(&dir).no_daemon().run();
/// ```
///
/// Unless told otherwise it must exit 0. Every failure names the command line and shows what it
/// printed.
#[must_use = "a Call checks nothing until `run`, `json` or `stderr`"]
pub struct Call<'a> {
    sb: &'a Sandbox,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    code: i32,
    stdout: Option<String>,
    stderr: Option<String>,
    stderr_has: Vec<String>,
    stderr_lacks: Vec<String>,
    unchanged: Vec<PathBuf>,
    absent: Vec<PathBuf>,
    no_daemon: bool,
    within: Option<u64>,
    case: Option<String>,
}

impl<'a> Call<'a> {
    fn new(sb: &'a Sandbox, args: Vec<OsString>) -> Call<'a> {
        Call {
            sb,
            args,
            env: Vec::new(),
            code: 0,
            stdout: None,
            stderr: None,
            stderr_has: Vec::new(),
            stderr_lacks: Vec::new(),
            unchanged: Vec::new(),
            absent: Vec::new(),
            no_daemon: false,
            within: None,
            case: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable for this run, over the sandbox's own (`PM2_PORT_RANGE`, ...).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The exit status it must end with (0 unless told).
    pub fn expect_code(mut self, code: i32) -> Self {
        self.code = code;
        self
    }

    /// Its whole stdout.
    pub fn stdout(mut self, text: impl Into<String>) -> Self {
        self.stdout = Some(text.into());
        self
    }

    /// Its whole stderr.
    pub fn stderr(mut self, text: impl Into<String>) -> Self {
        self.stderr = Some(text.into());
        self
    }

    /// A text its stderr must contain.
    pub fn stderr_has(mut self, text: impl Into<String>) -> Self {
        self.stderr_has.push(text.into());
        self
    }

    /// A text its stderr must not contain.
    pub fn stderr_lacks(mut self, text: impl Into<String>) -> Self {
        self.stderr_lacks.push(text.into());
        self
    }

    /// A file, or a directory and everything in it, that must be byte for byte the same after the
    /// run (a missing file must stay missing).
    pub fn unchanged(mut self, path: impl AsRef<Path>) -> Self {
        self.unchanged.push(path.as_ref().to_owned());
        self
    }

    /// A path that must not exist after the run.
    pub fn no_file(mut self, path: impl AsRef<Path>) -> Self {
        self.absent.push(path.as_ref().to_owned());
        self
    }

    /// No PM2 daemon may have been started: no `rpc.sock` in the sandbox's `PM2_HOME`.
    pub fn no_daemon(mut self) -> Self {
        self.no_daemon = true;
        self
    }

    /// Which case of a test's loop this is, for the failure message.
    pub fn case(mut self, label: impl Into<String>) -> Self {
        self.case = Some(label.into());
        self
    }

    /// It must end within `secs` seconds (a hang is a failure, not a hung suite).
    pub fn within(mut self, secs: u64) -> Self {
        self.within = Some(secs);
        self
    }

    /// Run it, check everything it was told, and return what it printed.
    #[track_caller]
    pub fn run(self) -> Run {
        let shown = std::iter::once("pm2-port".to_string())
            .chain(self.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let case = self
            .case
            .as_ref()
            .map_or(String::new(), |c| format!(" ({c})"));
        let before: Vec<(PathBuf, Snapshot)> = self
            .unchanged
            .iter()
            .map(|p| (p.clone(), snapshot(p)))
            .collect();
        let mut cmd = self.sb.cmd(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = match self.within {
            Some(secs) => run_bounded(&mut cmd, secs)
                .unwrap_or_else(|| panic!("`{shown}` hung: still running after {secs} s")),
            None => cmd.output().unwrap(),
        };
        let run = Run(out);
        let (stdout, stderr) = (run.stdout(), run.stderr());
        let printed = format!("--- stdout:\n{stdout}--- stderr:\n{stderr}---");
        let mut wrong = Vec::new();
        if run.code() != self.code {
            wrong.push(format!(
                "exit status {}, expected {}",
                run.code(),
                self.code
            ));
        }
        if let Some(want) = &self.stdout
            && *want != stdout
        {
            wrong.push(format!("stdout is not exactly {want:?}"));
        }
        if let Some(want) = &self.stderr
            && *want != stderr
        {
            wrong.push(format!("stderr is not exactly {want:?}"));
        }
        for text in &self.stderr_has {
            if !stderr.contains(text.as_str()) {
                wrong.push(format!("stderr lacks {text:?}"));
            }
        }
        for text in &self.stderr_lacks {
            if stderr.contains(text.as_str()) {
                wrong.push(format!("stderr has {text:?}"));
            }
        }
        for (path, was) in &before {
            let now = snapshot(path);
            if now != *was {
                wrong.push(format!("`{}` changed: {}", path.display(), diff(was, &now)));
            }
        }
        for path in &self.absent {
            if path.symlink_metadata().is_ok() {
                wrong.push(format!("`{}` exists", path.display()));
            }
        }
        if self.no_daemon && self.sb.home.join("rpc.sock").exists() {
            wrong.push("a PM2 daemon was started (rpc.sock exists)".to_string());
        }
        assert!(
            wrong.is_empty(),
            "`{shown}`{case}:\n  {}\n{printed}",
            wrong.join("\n  ")
        );
        run
    }

    /// Run it (it must exit 0 unless told) and return its stdout parsed as JSON.
    #[track_caller]
    pub fn json(self) -> Value {
        let run = self.run();
        serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", run.stdout()))
    }

    /// Run it and return its stderr, for checks the builder has no word for.
    #[track_caller]
    pub fn err(self) -> String {
        self.run().stderr()
    }
}

/// A path's contents for [`Call::unchanged`]: a file's bytes, a symlink's target, a directory's
/// entries recursively (symlinks not followed), or nothing.
#[derive(Debug, PartialEq, Eq)]
enum Snapshot {
    Missing,
    File(Vec<u8>),
    Link(PathBuf),
    Dir(Vec<(String, Snapshot)>),
    /// A FIFO or a device: only its presence counts (reading it could block).
    Special,
}

fn snapshot(path: &Path) -> Snapshot {
    let Ok(meta) = path.symlink_metadata() else {
        return Snapshot::Missing;
    };
    if meta.is_symlink() {
        Snapshot::Link(std::fs::read_link(path).unwrap())
    } else if meta.is_dir() {
        let mut entries: Vec<(String, Snapshot)> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    snapshot(&e.path()),
                )
            })
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Snapshot::Dir(entries)
    } else if meta.is_file() {
        Snapshot::File(std::fs::read(path).unwrap())
    } else {
        Snapshot::Special
    }
}

/// What differs between two snapshots, in words.
fn diff(was: &Snapshot, now: &Snapshot) -> String {
    match (was, now) {
        (Snapshot::Dir(a), Snapshot::Dir(b)) => {
            let names =
                |d: &[(String, Snapshot)]| d.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
            let (na, nb) = (names(a), names(b));
            let added: Vec<_> = nb.iter().filter(|n| !na.contains(n)).collect();
            let removed: Vec<_> = na.iter().filter(|n| !nb.contains(n)).collect();
            let changed: Vec<_> = a
                .iter()
                .filter(|(n, s)| b.iter().any(|(m, t)| m == n && t != s))
                .map(|e| &e.0)
                .collect();
            format!("added {added:?}, removed {removed:?}, changed {changed:?}")
        }
        (Snapshot::File(a), Snapshot::File(b)) => format!(
            "was {:?}, is {:?}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        ),
        (a, b) => format!("was {a:?}, is {b:?}"),
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let ty = entry.file_type().unwrap();
        let dest = to.join(entry.file_name());
        if ty.is_dir() {
            copy_dir(&entry.path(), &dest);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Listen on `addr:port` (for example `"::1"` or `"0.0.0.0"`).
pub fn listen(addr: &str, port: u16) -> TcpListener {
    let host = if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    };
    TcpListener::bind(format!("{host}:{port}")).unwrap()
}

/// Wait until `f` returns `Some`, or panic after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP GET on 127.0.0.1 (or `::1` when the host is `[::1]`); the body on 200.
pub fn http_get(host: &str, port: u16) -> Option<String> {
    let (status, body) = http_request(host, port, "/", Duration::from_secs(5))?;
    (status == 200).then_some(body)
}

/// GET `path` from `host:port` over HTTP/1.0, waiting up to `wait` for the whole answer (a dev
/// server may compile the page first); its status and body (lossy UTF-8), or `None` when nothing
/// answered.
pub fn http_request(host: &str, port: u16, path: &str, wait: Duration) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{host}:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let buf = String::from_utf8_lossy(&buf);
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Run `c` with its output captured, killing it after `secs`: `None` when it had to be killed (a
/// hang is a test failure, not a hung suite). The output is read while it runs, so a chatty child
/// never blocks on a full pipe.
pub fn run_bounded(c: &mut Command, secs: u64) -> Option<Output> {
    match pm2_port::sys::proc::run(c, Duration::from_secs(secs), None) {
        Ok(out) => Some(out),
        Err(pm2_port::sys::proc::RunError::TimedOut { .. }) => None,
        Err(err) => panic!("cannot run {c:?}: {err}"),
    }
}

/// The apps `node` reads from an ecosystem file: `require(FILE)` must be exactly `{ apps: [...] }`.
#[track_caller]
pub fn apps_in_file(file: &Path) -> Vec<Value> {
    let exports = node_require(file);
    let keys: Vec<&String> = exports
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    match exports.get("apps").and_then(Value::as_array) {
        Some(apps) if keys == ["apps"] => apps.clone(),
        _ => panic!(
            "node reads no `{{ apps: [...] }}` alone from {}: {exports}",
            file.display()
        ),
    }
}

/// The one app `node` reads from an ecosystem file (exactly one, or a failure saying what it read).
#[track_caller]
pub fn app_in_file(file: &Path) -> Value {
    let apps = apps_in_file(file);
    match <[Value; 1]>::try_from(apps) {
        Ok([app]) => app,
        Err(apps) => panic!(
            "node reads {} apps from {}, expected one: {}",
            apps.len(),
            file.display(),
            Value::from(apps)
        ),
    }
}

/// What `node` reads from each of `files` (`module.exports` as JSON), in one Node process working
/// in `cwd` (where a command smuggled into a file would leave its traces).
#[track_caller]
pub fn node_require_all(cwd: &Path, files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new("node")
        .current_dir(cwd)
        .arg("-e")
        .arg("process.stdout.write(JSON.stringify(process.argv.slice(1).map(f => require(f))))")
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node could not load one of {files:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.len(), files.len(), "node read {all:?}");
    all
}

/// `node --check FILE` must accept the file; `what` says which case it is.
#[track_caller]
pub fn node_check(file: &Path, what: &str) {
    let check = Command::new("node")
        .arg("--check")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "node --check rejects {what} ({}): {}",
        file.display(),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// What `node` reads from an ecosystem file: `require(FILE)` as JSON.
pub fn node_require(file: &Path) -> Value {
    let out = Command::new("node")
        .arg("-e")
        .arg("process.stdout.write(JSON.stringify(require(process.argv[1])))")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node could not load {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `pm2 start SCRIPT --name NAME --cwd DIR --wait-ready`: online only once the app says it listens
/// (`process.send("ready")`), so that a list then shows it with its port.
pub fn start_args<'a>(script: &'a Path, name: &'a str, dir: &'a Path) -> [&'a OsStr; 7] {
    [
        OsStr::new("start"),
        script.as_os_str(),
        OsStr::new("--name"),
        OsStr::new(name),
        OsStr::new("--cwd"),
        dir.as_os_str(),
        OsStr::new("--wait-ready"),
    ]
}

/// BuildFlowz's file for `dir` on `port`, with `edit` applied to its text.
pub fn buildflowz(dir: &Path, port: u16, edit: impl Fn(String) -> String) -> String {
    edit(format!(
        r#"module.exports = {{
  apps: [{{
    name: "shop",
    cwd: "{}",
    script: "bash",
    args: ["-c", "export PORT={port} && npm run dev -- --port {port}"],
    env: {{
      PORT: {port}
    }},
    autorestart: true,
    watch: false
  }}]
}};
"#,
        dir.display()
    ))
}
