//! `start`: real Vite projects up and serving, a crashing app's logs, no pm2 at all.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn two_vite_projects_start_serve_their_own_page_and_keep_their_ports() {
    let sb = Sandbox::new();
    let shop = vite_project(&sb, "shop");
    let blog = vite_project(&sb, "blog");
    let mut ports = Vec::new();
    for dir in [&shop, &blog] {
        let report = sb
            .run(["start", dir.to_str().unwrap(), "--json", "--timeout", "90"])
            .json();
        let port = report["apps"][0]["port"].as_u64().unwrap() as u16;
        assert_eq!(report["apps"][0]["framework"], "vite");
        assert_eq!(
            report["apps"][0]["command"],
            format!("npm run dev -- --port {port} --strictPort")
        );
        // `start` returned: the page is served now, without waiting.
        let name = dir.file_name().unwrap().to_str().unwrap();
        let page = http_get_localhost(port).expect("the page is served when start returns");
        assert!(
            page.contains(&format!("<h1 id=\"app\">{name}</h1>")),
            "{page}"
        );
        ports.push(port);
    }
    assert_eq!(ports, [sb.port(0), sb.port(1)]);

    let list = sb.run(["list", "--json"]).json();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, (name, port)) in rows.iter().zip([("shop", ports[0]), ("blog", ports[1])]) {
        assert_eq!(row["name"], name);
        assert_eq!(row["port"], port);
        assert_eq!(row["status"], "online");
        assert_eq!(
            row["sources"],
            serde_json::json!(["pm2", "registry", "ecosystem"])
        );
        assert_eq!(row["conflicts"], serde_json::json!([]));
    }

    let pid_before = sb.jlist()[0]["pid"].clone();
    let again = sb.run(["start", shop.to_str().unwrap(), "--json"]);
    assert!(
        again.stderr().contains("already online"),
        "{}",
        again.stderr()
    );
    let again = again.json();
    assert_eq!(again["apps"][0]["port"], ports[0]);
    assert_eq!(again["changed"], false);
    assert_eq!(
        sb.jlist()[0]["pid"],
        pid_before,
        "a second start restarted the app"
    );
}

#[test]
fn a_crashing_app_fails_within_the_timeout_with_its_error_output() {
    let sb = Sandbox::new();
    let dir = sb.fixture("crash-app");
    // An earlier run's lines in the log PM2 will append to are not this start's error.
    let logs = sb.home.join("logs");
    fs::create_dir_all(&logs).unwrap();
    fs::write(
        logs.join("crash-app-error.log"),
        "crash-app: an error of yesterday's run\n",
    )
    .unwrap();
    let began = Instant::now();
    let out = sb.run(["start", dir.to_str().unwrap(), "--timeout", "20"]);
    let took = began.elapsed();
    let err = out.fails(1);
    // The timeout counts from the start of the wait; init and `pm2 start` come before it.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // PM2 gives up on it (errored or stopped) or the timeout comes first, depending on the
    // machine's pace.
    assert!(
        [
            "is errored in PM2",
            "is stopped in PM2",
            "did not listen on port"
        ]
        .iter()
        .any(|m| err.contains(&format!("`crash-app` {m}"))),
        "{err}"
    );
    assert!(
        err.contains(
            "crash-app: cannot connect to the database at db.internal:5432 (ECONNREFUSED)"
        ),
        "{err}"
    );
    assert!(!err.contains("yesterday"), "{err}");
    assert!(
        err.contains(&format!(
            "--- last lines of {} ---\n",
            logs.join("crash-app-error.log").display()
        )),
        "{err}"
    );
}

#[test]
fn start_without_pm2_says_how_to_install_it_and_writes_nothing() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let out = sb
        .cmd(["start", dir.to_str().unwrap()])
        .env("PM2_PORT_PM2", sb.root.path().join("no-such-pm2"))
        .output()
        .unwrap();
    let err = Run(out).fails(1);
    assert!(
        err.contains("not found; install PM2 with `npm install -g pm2`"),
        "{err}"
    );
    assert!(!dir.join("ecosystem.config.cjs").exists());
}

#[test]
fn start_on_a_plain_terminalless_run_prints_the_url() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "api");
    let out = sb.run(["start", dir.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(
        out.stdout(),
        format!("api  http://localhost:{}\n", sb.port(0))
    );
    assert!(out.stderr().contains(&format!(
        "waiting for `api` to listen on port {}",
        sb.port(0)
    )));
    assert_eq!(
        http_get("127.0.0.1", sb.port(0)).unwrap(),
        format!("hello from http-app on {}\n", sb.port(0))
    );
}

/// PM2 refusing the file outright (a `uid` that names nobody): the error quotes PM2's reason
/// without its colours, and does not try to take back an app PM2 never had.
#[test]
fn a_start_pm2_refuses_quotes_its_reason_and_takes_back_nothing() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "nobody");
    fs::write(
        dir.join("buildflowz.toml"),
        "[pm2]\nuid = \"no-such-user-here\"\n",
    )
    .unwrap();
    let err = sb.run(["start", dir.to_str().unwrap()]).fails(1);
    let file = dir.join("ecosystem.config.cjs");
    assert!(
        err.ends_with(&format!(
            "error: start failed; PM2 did not start `nobody` (PM2's saved list is unchanged): `pm2 start {} --only nobody` failed (exit status: 1): [PM2][ERROR] User no-such-user-here cannot be found\n",
            file.display()
        )),
        "{err}"
    );
    assert!(sb.jlist().is_empty());
}

/// A log the project's file names (`error_file`), with an earlier run's lines in it: a failed
/// start shows only its own.
#[test]
fn a_failed_start_shows_only_its_own_lines_of_a_log_the_file_names() {
    let sb = Sandbox::new();
    let dir = sb.fixture("crash-app");
    fs::write(
        dir.join("buildflowz.toml"),
        "[pm2]\nautorestart = false\nerror_file = \"logs/err.log\"\n",
    )
    .unwrap();
    fs::create_dir_all(dir.join("logs")).unwrap();
    fs::write(
        dir.join("logs/err.log"),
        "crash-app: an error of yesterday's run\n",
    )
    .unwrap();
    let err = sb
        .run(["start", dir.to_str().unwrap(), "--timeout", "20"])
        .fails(1);
    assert!(
        err.contains(&format!(
            "--- last lines of {} ---\ncrash-app: cannot connect to the database at db.internal:5432 (ECONNREFUSED)\n",
            dir.join("logs/err.log").display()
        )),
        "{err}"
    );
    assert!(!err.contains("yesterday"), "{err}");
}
