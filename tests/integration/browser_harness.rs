//! The browser harness's own tests (tests/integration/browser.rs, tests/browser/drive.mjs), on a
//! laptop's network namespace alone: no server, no tunnel. What the tunnel's tests rely on:
//! Chromium there reaches the laptop's loopback by `*.localhost` names it resolves by itself,
//! keeps a cookie jar per name (whatever the port), follows a real Vite page's hot updates over
//! its WebSocket without a reload, and leaves a screenshot behind; and the driver fails a step
//! clearly rather than hang.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::browser::*;
use crate::netns::Laptop;
use crate::support::*;

/// A process started for a test, killed when it ends (the laptop's namespace would kill it too,
/// when it goes).
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `c` with its output in `log`.
fn spawn_logging(mut c: Command, log: &Path) -> Bg {
    let file = std::fs::File::create(log).unwrap();
    let child = c
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    Bg(child)
}

/// `fixtures/http-app/server.js` as `name` on the laptop, listening on `host`:`port` only;
/// returns once it answers.
fn http_app(sb: &Sandbox, laptop: &Laptop, name: &str, host: &str, port: u16) -> Bg {
    let mut c = laptop.ns.exec("node");
    c.arg(fixtures().join("http-app/server.js"))
        .env("PORT", port.to_string())
        .env("HOST", host)
        .env("APP_NAME", name);
    let app = spawn_logging(c, &sb.root.path().join(format!("{name}.log")));
    let addr = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    wait_for(20, &format!("{name} on {addr}:{port}"), || {
        laptop.ns.enter(|| http_get(&addr, port))
    });
    app
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Two apps, `shop` and `blog`, opened by name on one port, each set a cookie: each sees its own
/// only. A cookie belongs to a name, not to a port: shop's goes to shop on another port (another
/// app) too, which is why the tunnel's proxy serves each app under its own name. The apps listen
/// on the laptop's loopback only (one on 127.0.0.1, the other on ::1; Chromium tries ::1 first
/// and falls back), in a namespace with no other interface and so no DNS: Chromium resolves
/// `*.localhost` itself (here glibc's resolver knows no `shop.localhost`).
#[test]
fn chromium_keeps_a_cookie_jar_per_localhost_name_whatever_the_port() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let (one, two) = (sb.port(0), sb.port(1));
    let _one = http_app(&sb, &laptop, "one", "127.0.0.1", one);
    let _two = http_app(&sb, &laptop, "two", "::1", two);
    let url = |name: &str, port: u16, path: &str| format!("http://{name}.localhost:{port}{path}");

    let b = Browser::start(&laptop);
    assert!(
        b.user_agent.contains("HeadlessChrome/"),
        "not headless Chromium: {}",
        b.user_agent
    );

    // shop sets its cookie (the request that sets it carries none); the app got shop's name.
    assert_eq!(
        b.goto("shop", &url("shop", one, "/cookie?session=shop-1")),
        200
    );
    assert_eq!(b.text("shop", "#host"), format!("shop.localhost:{one}"));
    assert_eq!(b.text("shop", "#app"), "one");
    assert_eq!(b.text("shop", "#cookie"), "");
    // blog, on the same port, in another tab of the same browser: not shop's cookie.
    assert_eq!(b.goto("blog", &url("blog", one, "/cookie")), 200);
    assert_eq!(b.text("blog", "#cookie"), "");
    assert_eq!(
        b.goto("blog", &url("blog", one, "/cookie?session=blog-1")),
        200
    );
    // Each sends back its own only.
    assert_eq!(b.goto("shop", &url("shop", one, "/cookie")), 200);
    assert_eq!(b.text("shop", "#cookie"), "session=shop-1");
    assert_eq!(b.goto("blog", &url("blog", one, "/cookie")), 200);
    assert_eq!(b.text("blog", "#cookie"), "session=blog-1");
    // Another port, another app (on ::1): shop's cookie goes there too.
    assert_eq!(b.goto("shop", &url("shop", two, "/cookie")), 200);
    assert_eq!(b.text("shop", "#app"), "two");
    assert_eq!(b.text("shop", "#cookie"), "session=shop-1");

    assert_eq!(
        b.cookies(&url("shop", two, "/")),
        pairs(&[("session", "shop-1")])
    );
    assert_eq!(
        b.cookies(&url("blog", one, "/")),
        pairs(&[("session", "blog-1")])
    );
    assert_eq!(b.cookies(&format!("http://localhost:{one}/")), pairs(&[]));

    // localhost itself (the index page's address) is the laptop's too.
    assert_eq!(b.goto("index", &format!("http://localhost:{one}/")), 200);
    assert_eq!(
        b.text("index", "body"),
        format!("hello from one on {one}\n")
    );
    // Nothing listening: Chromium's error, at once.
    assert_eq!(
        b.status("index", &url("shop", laptop.closed_port(), "/")),
        Err("net::ERR_CONNECTION_REFUSED".to_string())
    );
}

/// The real Vite dev server of a copy of fixtures/vite-app on the laptop, opened by name: a change
/// to a module on disk reaches the page over Vite's WebSocket and is applied in place (a value set
/// on `window` before the change is still there after it: no reload).
#[test]
fn a_vite_page_follows_a_change_on_disk_without_a_reload() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let dir = vite_project(&sb, "hmr");
    let message = hmr_page(&dir);
    message("first message");

    let port = sb.port(0);
    let mut vite = laptop.ns.exec(dir.join("node_modules/.bin/vite"));
    vite.args([
        "--port",
        &port.to_string(),
        "--strictPort",
        "--host",
        "127.0.0.1",
    ])
    .current_dir(&dir);
    let log = sb.root.path().join("vite.log");
    let _vite = spawn_logging(vite, &log);
    wait_for(30, "Vite to answer", || laptop.http_get(port));

    let b = Browser::start(&laptop);
    assert_eq!(b.goto("app", &format!("http://hmr.localhost:{port}/")), 200);
    assert_eq!(b.wait_text("app", "#app", "first message"), "first message");
    vite_connected(&b, "app");
    b.eval("app", "window.__marker = 1");

    message("second message");
    assert_eq!(
        b.wait_text("app", "#app", "second message"),
        "second message",
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_hot_updated(&b, "app");
}

/// A screenshot is written where tests keep their artifacts (cargo's target directory), as a
/// PNG of the page's viewport that is not blank.
#[test]
fn a_screenshot_is_kept_as_a_png_under_the_target_directory() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let port = sb.port(0);
    let _app = http_app(&sb, &laptop, "shop", "127.0.0.1", port);
    let b = Browser::start(&laptop);

    // A blank viewport, to compare (not an artifact).
    let blank = sb.root.path().join("blank.png");
    b.step(json!({"goto": "about:blank", "page": "blank"}));
    b.step(json!({"screenshot": blank, "page": "blank"}));
    assert_eq!(png_size(&blank), (1280, 720));
    assert_eq!(
        b.goto("shop", &format!("http://shop.localhost:{port}/cookie")),
        200
    );
    let shot = b.screenshot("shop", "browser-harness-shop");

    let target = Path::new(BIN).ancestors().nth(2).unwrap();
    assert_eq!(shot, target.join("test-artifacts/browser-harness-shop.png"));
    // playwright's default viewport.
    assert_eq!(png_size(&shot), (1280, 720));
    // Not blank: the page's two lines of text add about 2.8 KB to a blank viewport's 4.3 KB.
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&shot) > size(&blank) + 1000,
        "the page's screenshot ({} bytes) is hardly more than a blank one ({} bytes)",
        size(&shot),
        size(&blank)
    );
}

/// The driver's failures: a step that fails (here one that never settles) ends the run at once
/// with a message naming the step, exit 1, the steps before it answered; a run that outlives
/// DRIVE_TIMEOUT_MS ends with exit 2; neither leaves Chromium or its profile behind. Through
/// [`Browser`], a failed step is a panic saying the same.
#[test]
fn the_driver_fails_a_step_clearly_and_never_hangs() {
    let laptop = Laptop::new();
    let scratch = tempfile::tempdir().unwrap();
    let refused = format!("http://shop.localhost:{}/", laptop.closed_port());

    // A batch from a file.
    let steps = scratch.path().join("steps.json");
    std::fs::write(
        &steps,
        json!([
            {"status": refused},
            {"eval": "new Promise(() => {})", "timeout_ms": 500},
            {"eval": "1"},
        ])
        .to_string(),
    )
    .unwrap();
    let mut batch = driver_command(&laptop, scratch.path());
    batch.arg(&steps);
    let started = Instant::now();
    let out = run_bounded(&mut batch, 60).expect("drive.mjs hung");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let answers: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 2, "{stdout}");
    assert_eq!(
        answers[0],
        json!({"ok": true, "value": "net::ERR_CONNECTION_REFUSED"})
    );
    assert_eq!(answers[1]["ok"], false);
    let error = answers[1]["error"].as_str().unwrap();
    assert!(
        error.contains(r#"{"eval":"new Promise(() => {})","timeout_ms":500}"#)
            && error.contains("no answer after 500 ms"),
        "{error}"
    );
    assert!(stderr.contains(error), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );

    // A REPL nobody talks to, with a short life.
    let mut idle = driver_command(&laptop, scratch.path());
    idle.env("DRIVE_TIMEOUT_MS", "5000");
    let mut child = idle
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_for(60, "the idle driver to give up", || {
        child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(2));
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(stdout.contains("DRIVE_TIMEOUT_MS (5000 ms)"), "{stdout}");

    // Through Browser.
    let b = Browser::start(&laptop);
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.step(json!({"wait_text": "#nothing", "contains": "x", "timeout_ms": 500}))
    }));
    let message = *failed.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains("timed out after 500 ms waiting for #nothing"),
        "{message}"
    );
    drop(b);

    // Chromium is gone with its profile (playwright's, under the driver's TMPDIR).
    wait_for(10, "Chromium to exit", || {
        let pids = pids_running("/usr/lib/chromium/chromium");
        pids.iter().all(|&pid| !laptop.ns.holds(pid)).then_some(())
    });
    let left: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("playwright"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The processes whose executable is `exe`.
fn pids_running(exe: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == Path::new(exe))
        })
        .collect()
}
