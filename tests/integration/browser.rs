//! A real browser for the integration tests: Debian's headless Chromium (`/usr/bin/chromium`),
//! driven by `tests/browser/drive.mjs` (playwright-core, pinned by tests/browser/package-lock.json;
//! no browser download) running in a [`Laptop`]'s network namespace, so that Chromium's 127.0.0.1
//! and ::1, and the `*.localhost` names it resolves to them by itself, are the laptop's.
//!
//! [`Browser`] keeps one driver running (its REPL: one JSON step a line in, one JSON answer a line
//! out), so that a test can act between two steps and then wait for the page to follow:
//!
//! ```ignore
//! let b = Browser::start(&laptop);
//! assert_eq!(b.goto("index", &format!("http://localhost:{port}/")), 200);
//! b.eval("index", "window.__marker = 1");
//! server.start_app("third", 21005); // meanwhile, on the server
//! b.wait_text("index", "#apps", "third"); // the page followed, by itself
//! assert_eq!(b.eval("index", "window.__marker"), 1); // without a reload
//! b.screenshot("index", "index-page"); // kept: <target>/test-artifacts/index-page.png
//! // any step of drive.mjs (see its header), as JSON; `page` names a tab, default "main":
//! let title = b.step(json!({"eval": "document.title", "page": "index", "timeout_ms": 5000}));
//! ```
//!
//! Pages are tabs of one browser context: cookies are shared per host, as in a real browser. A step
//! that fails panics with the driver's message (the step, the page's URL, what the page logged
//! last); the driver then exits, so a `Browser` is done after its first failure. No step waits
//! forever: the driver bounds each by its `timeout_ms` (default [`STEP_MS`]), and this side gives up
//! on an answer [`MARGIN`] later. Chromium (a missing one is a failure, never a skip; tests/run.sh
//! installs it) gets a fresh profile in a temporary directory, removed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::netns::Laptop;
use crate::support::*;

/// The browser Debian installs (a launcher script that execs /usr/lib/chromium/chromium).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A step's timeout in the driver unless the step gives its own `timeout_ms`.
pub const STEP_MS: u64 = 20_000;

/// How much longer than a step's timeout this side waits for its answer.
pub const MARGIN: Duration = Duration::from_secs(15);

/// The first answer comes once Chromium is up (playwright gives a launch 30 s).
const LAUNCH: Duration = Duration::from_secs(60);

/// How long the driver is given to close Chromium and exit, at the end or after a failed step,
/// before it is killed.
const GRACE: Duration = Duration::from_secs(10);

/// The driver's whole life (`DRIVE_TIMEOUT_MS`): a guard against a test that never drops it.
const LIFETIME_MS: u64 = 600_000;

/// `tests/browser`: drive.mjs and its playwright-core.
pub fn browser_dir() -> PathBuf {
    repo().join("tests/browser")
}

/// Where tests keep what they want to survive them (screenshots): `test-artifacts` in cargo's
/// target directory (`target/test-artifacts`, or under `CARGO_TARGET_DIR`), created on demand.
pub fn artifacts_dir() -> PathBuf {
    // BIN is TARGET/debug/pm2-port (or TARGET/TRIPLE/debug/pm2-port).
    let dir = Path::new(BIN)
        .ancestors()
        .nth(2)
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Chromium and the driver's playwright-core must be installed, the latter at the version
/// package.json pins: a failure naming the fix, never a skip.
fn check_installed() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "Chromium is not installed at {CHROMIUM}: `apt-get install chromium` (bash tests/run.sh does)"
    );
    let dir = browser_dir();
    let read = |f: PathBuf| -> Value {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run `npm ci --prefix tests/browser` (bash tests/run.sh does)",
                f.display()
            )
        });
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()))
    };
    let pinned = read(dir.join("package.json"))["dependencies"]["playwright-core"].clone();
    let installed = read(dir.join("node_modules/playwright-core/package.json"))["version"].clone();
    assert_eq!(
        installed, pinned,
        "a stale playwright-core in tests/browser: run `npm ci --prefix tests/browser` (bash tests/run.sh does)"
    );
}

/// `node drive.mjs ARGS...` in the laptop's namespace, its temporary files (Chromium's profile
/// among them) and `HOME` in `scratch`. A step file as argument runs it as a batch; none, a REPL
/// on stdin.
pub fn driver_command(laptop: &Laptop, scratch: &Path) -> Command {
    check_installed();
    let mut c = laptop.ns.exec("node");
    c.arg(browser_dir().join("drive.mjs"))
        .current_dir(browser_dir())
        .env("TMPDIR", scratch)
        .env("HOME", scratch)
        .env("DRIVE_CHROMIUM", CHROMIUM)
        .env("DRIVE_STEP_TIMEOUT_MS", STEP_MS.to_string())
        .env("DRIVE_TIMEOUT_MS", LIFETIME_MS.to_string());
    c
}

/// A headless Chromium on the laptop, driven step by step. See the module's documentation.
pub struct Browser<'a> {
    driver: Mutex<Driver>,
    /// What Chromium says it is (`navigator.userAgent`), read once it is up.
    pub user_agent: String,
    /// The driver's `TMPDIR` and `HOME`.
    _scratch: tempfile::TempDir,
    /// The namespace it runs in must outlive it.
    _laptop: PhantomData<&'a Laptop>,
}

struct Driver {
    child: Child,
    /// Closed on drop: the driver then closes Chromium and exits.
    stdin: Option<ChildStdin>,
    /// The driver's stdout, a line at a time.
    answers: Receiver<String>,
    /// Everything the driver wrote on stderr so far, for failure messages.
    stderr: Arc<Mutex<String>>,
}

impl Driver {
    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A failure: the step, why, and what the driver said on stderr. The driver is given `grace`
    /// to exit by itself (it closes Chromium when a step fails), then killed, and reaped.
    fn fail(&mut self, step: &Value, why: &str, grace: Duration) -> ! {
        drop(self.stdin.take());
        let status = self.end(grace);
        // The stderr thread may still be reading the last lines.
        std::thread::sleep(Duration::from_millis(100));
        panic!(
            "browser step {step}: {why}\n--- drive.mjs ({status}), stderr:\n{}---",
            self.stderr()
        );
    }

    /// Wait up to `grace` for the driver to exit, then kill it; how it ended.
    fn end(&mut self, grace: Duration) -> String {
        let deadline = Instant::now() + grace;
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().map(|s| s.to_string()).unwrap_or_default()
    }
}

impl<'a> Browser<'a> {
    /// Start the driver and Chromium in `laptop`'s namespace; returns once Chromium answers.
    pub fn start(laptop: &'a Laptop) -> Browser<'a> {
        let scratch = tempfile::Builder::new()
            .prefix("p2p-browser")
            .tempdir_in("/tmp")
            .unwrap();
        let mut child = driver_command(laptop, scratch.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run node for tests/browser/drive.mjs");
        let (tx, answers) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        let stdin = child.stdin.take();
        let mut b = Browser {
            driver: Mutex::new(Driver {
                child,
                stdin,
                answers,
                stderr,
            }),
            user_agent: String::new(),
            _scratch: scratch,
            _laptop: PhantomData,
        };
        // The first step waits for the launch too.
        let ua = b.exchange(
            &[json!({"eval": "navigator.userAgent"})],
            LAUNCH + Duration::from_millis(STEP_MS),
        );
        b.user_agent = ua[0].as_str().unwrap_or_default().to_string();
        b
    }

    /// Run one step of drive.mjs (see its header) and return its value; panics when it fails.
    #[track_caller]
    pub fn step(&self, step: Value) -> Value {
        self.steps(vec![step]).pop().unwrap()
    }

    /// Run steps in order and return their values; panics at the first that fails.
    #[track_caller]
    pub fn steps(&self, steps: Vec<Value>) -> Vec<Value> {
        self.exchange(&steps, Duration::ZERO)
    }

    /// Send `steps` as one line and read one answer per step, each within its timeout plus
    /// [`MARGIN`] plus `extra`.
    fn exchange(&self, steps: &[Value], extra: Duration) -> Vec<Value> {
        let mut d = self.driver.lock().unwrap_or_else(|e| e.into_inner());
        let line = serde_json::to_string(steps).unwrap();
        let sent = match d.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        if let Err(e) = sent {
            d.fail(
                &Value::from(steps),
                &format!("the driver is gone ({e})"),
                GRACE,
            );
        }
        let mut values = Vec::new();
        for step in steps {
            let ms = step["timeout_ms"].as_u64().unwrap_or(STEP_MS);
            let wait = Duration::from_millis(ms) + MARGIN + extra;
            let answer = match d.answers.recv_timeout(wait) {
                Ok(answer) => answer,
                Err(RecvTimeoutError::Timeout) => {
                    d.fail(step, &format!("no answer within {wait:?}"), Duration::ZERO)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    d.fail(step, "the driver exited before answering", GRACE)
                }
            };
            let answer: Value = match serde_json::from_str(&answer) {
                Ok(v) => v,
                Err(e) => d.fail(step, &format!("not a JSON answer ({e}): {answer}"), GRACE),
            };
            if answer["ok"] != true {
                let why = answer["error"].as_str().unwrap_or("failed").to_string();
                d.fail(step, &why, GRACE);
            }
            values.push(answer["value"].clone());
        }
        values
    }

    /// Navigate `page` to `url`; the HTTP status (a navigation that gets no answer fails).
    #[track_caller]
    pub fn goto(&self, page: &str, url: &str) -> u16 {
        let v = self.step(json!({"goto": url, "page": page}));
        v["status"]
            .as_u64()
            .unwrap_or_else(|| panic!("no status: {v}")) as u16
    }

    /// Navigate `page` to `url`: its HTTP status, or Chromium's network error
    /// (`net::ERR_CONNECTION_REFUSED`, ...) when nothing answered.
    #[track_caller]
    pub fn status(&self, page: &str, url: &str) -> Result<u16, String> {
        match self.step(json!({"status": url, "page": page})) {
            Value::Number(n) => Ok(n.as_u64().unwrap() as u16),
            other => Err(other.as_str().unwrap_or_default().to_string()),
        }
    }

    /// The text of the element `selector` matches in `page` (exactly one must).
    #[track_caller]
    pub fn text(&self, page: &str, selector: &str) -> String {
        let v = self.step(json!({"text": selector, "page": page}));
        v.as_str().unwrap_or_default().to_string()
    }

    /// Wait (up to [`STEP_MS`]) until that element's text contains `contains`; that text.
    #[track_caller]
    pub fn wait_text(&self, page: &str, selector: &str, contains: &str) -> String {
        let v = self.step(json!({"wait_text": selector, "contains": contains, "page": page}));
        v.as_str().unwrap_or_default().to_string()
    }

    /// The value of a JavaScript expression in `page` (a promise is awaited), as JSON.
    #[track_caller]
    pub fn eval(&self, page: &str, js: &str) -> Value {
        self.step(json!({"eval": js, "page": page}))
    }

    /// The cookies the browser would send to `url`, as `(name, value)`, sorted.
    #[track_caller]
    pub fn cookies(&self, url: &str) -> Vec<(String, String)> {
        let v = self.step(json!({"cookies": url}));
        let mut pairs: Vec<(String, String)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                (s("name"), s("value"))
            })
            .collect();
        pairs.sort();
        pairs
    }

    /// What `page` logged (`"log: [vite] connected."`, `"pageerror: ..."`), in order.
    #[track_caller]
    pub fn console(&self, page: &str) -> Vec<String> {
        let v = self.step(json!({"console": true, "page": page}));
        serde_json::from_value(v).unwrap()
    }

    /// A screenshot of `page`, kept as `NAME.png` in [`artifacts_dir`]; its path. It must be a PNG.
    #[track_caller]
    pub fn screenshot(&self, page: &str, name: &str) -> PathBuf {
        let path = artifacts_dir().join(format!("{name}.png"));
        // One from an earlier run must not pass for this one.
        let _ = std::fs::remove_file(&path);
        self.step(json!({"screenshot": path, "page": page}));
        png_size(&path);
        path
    }
}

impl Drop for Browser<'_> {
    /// stdin closed: the driver closes Chromium and exits; killed if it has not within [`GRACE`]
    /// (Chromium then exits too, its pipe to the driver closed).
    fn drop(&mut self) {
        let d = self.driver.get_mut().unwrap_or_else(|e| e.into_inner());
        drop(d.stdin.take());
        d.end(GRACE);
    }
}

/// The width and height of the PNG at `path`, which must be one (its signature, then the IHDR
/// chunk).
#[track_caller]
pub fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is not a PNG",
        path.display()
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Make the Vite project at `dir` a page that shows a module's message and takes that module's
/// hot updates (Vite's HMR API): `#app` shows `message` of `message.js`. Returns a function that
/// writes a new `message.js`.
pub fn hmr_page(dir: &Path) -> impl Fn(&str) + '_ {
    std::fs::write(
        dir.join("index.html"),
        r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <title>hmr</title>
    <link rel="icon" href="data:," />
  </head>
  <body>
    <h1 id="app">hmr</h1>
    <script type="module" src="/main.js"></script>
  </body>
</html>
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("main.js"),
        r##"import { message } from "./message.js";
const show = (m) => (document.querySelector("#app").textContent = m);
show(message);
if (import.meta.hot) import.meta.hot.accept("./message.js", (m) => show(m.message));
"##,
    )
    .unwrap();
    move |text: &str| {
        std::fs::write(
            dir.join("message.js"),
            format!("export const message = {text:?};\n"),
        )
        .unwrap()
    }
}

/// Wait until the page's Vite client says it is connected (a change made before would go unseen).
pub fn vite_connected(b: &Browser, page: &str) {
    wait_for(20, "Vite's client to connect", || {
        b.console(page)
            .iter()
            .any(|l| l.contains("[vite] connected."))
            .then_some(())
    });
}

/// The page was hot-updated in place: a value set on `window` before the change is still there,
/// its console says Vite applied `/message.js`, and nothing logged an error.
#[track_caller]
pub fn assert_hot_updated(b: &Browser, page: &str) {
    assert_eq!(
        b.eval(page, "window.__marker"),
        json!(1),
        "the page reloaded"
    );
    let console = b.console(page);
    assert!(
        console
            .iter()
            .any(|l| l.contains("[vite] hot updated: /message.js")),
        "no hot update in the page's console: {console:?}"
    );
    assert!(
        !console.iter().any(|l| l.starts_with("error")),
        "{console:?}"
    );
}
