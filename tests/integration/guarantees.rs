//! What pm2-port guarantees against hostile files and machines (issue 10): files that are not
//! its own are left alone, nothing hangs on a FIFO or a confusing daemon, values survive the round
//! trip through Node, and PM2 is left as it was when a command fails.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// Every file in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_hand_written_two_app_file_is_refused_and_pm2_keeps_its_worker() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "shop");
    let (web, worker) = (sb.port(5), sb.port(6));
    let hand = format!(
        r#"module.exports = {{
  apps: [{{
    name: "shop-web",
    cwd: "{d}",
    script: "bash",
    args: ["-c", "export PORT={web} && node server.js"],
    env: {{ PORT: {web} }},
    autorestart: true,
    watch: false
  }}, {{
    name: "shop-worker",
    cwd: "{d}",
    script: "bash",
    args: ["-c", "export PORT={worker} && node server.js"],
    env: {{ PORT: {worker} }},
    autorestart: true,
    watch: false
  }}]
}};
"#,
        d = dir.display()
    );
    let file = dir.join("ecosystem.config.cjs");
    fs::write(&file, &hand).unwrap();
    sb.pm2(["start", file.to_str().unwrap()]);
    wait_for(20, "the worker to answer", || http_get("127.0.0.1", worker));

    let bak = dir.join("ecosystem.config.cjs.bak");
    sb.init(&dir)
        .expect_code(1)
        .stderr_has(format!(
            "`{}` was written by hand (it sets PORT {web})",
            file.display()
        ))
        .unchanged(&dir)
        .run();
    sb.call(["start", dir.to_str().unwrap()])
        .expect_code(1)
        .stderr_has("was written by hand")
        .unchanged(&dir)
        .run();
    assert_eq!(fs::read_to_string(&file).unwrap(), hand);
    assert!(!bak.exists());
    let names: Vec<String> = sb
        .jlist()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["shop-web", "shop-worker"]);
    assert_eq!(
        http_get("127.0.0.1", worker).unwrap(),
        format!("hello from http-app on {worker}\n")
    );
}

#[test]
fn an_edited_buildflowz_file_is_refused_and_force_carries_its_settings() {
    let sb = Sandbox::new();
    let dir = sb.fixture_as("http-app", "shop");
    let port = sb.port(4);
    let file = dir.join("ecosystem.config.cjs");
    type Edit = (&'static str, fn(String) -> String);
    let edits: [Edit; 4] = [
        ("env", |t| {
            t.replace(
                "      PORT:",
                "      DATABASE_URL: \"postgres://localhost/shop\",\n      PORT:",
            )
        }),
        ("command", |t| t.replace("npm run dev --", "node api.js")),
        ("autorestart", |t| {
            t.replace("autorestart: true", "autorestart: false")
        }),
        ("watch", |t| t.replace("watch: false", "watch: [\"src\"]")),
    ];
    for (what, edit) in edits {
        let text = buildflowz(&dir, port, edit);
        fs::write(&file, &text).unwrap();
        sb.init(&dir)
            .case(what)
            .expect_code(1)
            .stderr_has("was written by hand")
            .unchanged(&file)
            .no_file(dir.join("buildflowz.toml"))
            .run();
        assert_eq!(fs::read_to_string(&file).unwrap(), text, "{what}");
    }
    // Every edit at once, then --force: nothing is lost.
    let text = buildflowz(&dir, port, |t| edits.iter().fold(t, |t, (_, edit)| edit(t)));
    fs::write(&file, &text).unwrap();
    sb.init(&dir)
        .expect_code(1)
        .stderr_has("(command, env.DATABASE_URL, pm2.autorestart, pm2.watch) is carried into buildflowz.toml")
        .unchanged(&dir)
        .run();
    let report = sb.init(&dir).args(["--force", "--json"]).json();
    assert_eq!(report["apps"][0]["port"], port);
    assert_eq!(report["apps"][0]["command"], "node api.js --port $PORT");
    assert_eq!(
        fs::read_to_string(dir.join("ecosystem.config.cjs.bak")).unwrap(),
        text
    );
    assert_eq!(
        fs::read_to_string(dir.join("buildflowz.toml")).unwrap(),
        "command = \"node api.js --port $PORT\"\n\n[env]\nDATABASE_URL = \"postgres://localhost/shop\"\n\n[pm2]\nautorestart = false\nwatch = [\"src\"]\n"
    );
    let app = &app_in_file(&file);
    assert_eq!(
        app["env"],
        json!({"PORT": port, "DATABASE_URL": "postgres://localhost/shop"})
    );
    assert_eq!(app["args"], json!(["-c", "node api.js --port $PORT"]));
    assert_eq!(app["autorestart"], false);
    assert_eq!(app["watch"], json!(["src"]));
    // And the exact BuildFlowz shape is still adopted without a word.
    let other = sb.fixture_as("http-app", "blog");
    let exact = buildflowz(&other, sb.port(9), |t| t.replace("shop", "blog"));
    fs::write(other.join("ecosystem.config.cjs"), exact).unwrap();
    let report = sb.init(&other).arg("--json").json();
    assert_eq!(report["apps"][0]["port"], sb.port(9));
}

/// A small file system of its own for the state directory, filled to the last byte.
struct FullDisk<'a>(&'a Path);

impl<'a> FullDisk<'a> {
    fn mount(dir: &'a Path) -> FullDisk<'a> {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "cannot mount a tmpfs (the suite runs as root, as CI does, to fill a disk for real)"
        );
        FullDisk(dir)
    }

    fn fill(&self) {
        let mut f = fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while std::io::Write::write_all(&mut f, &block).is_ok() {}
    }
}

impl Drop for FullDisk<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

#[test]
fn a_full_state_directory_writes_no_file_and_names_the_registry() {
    let sb = Sandbox::new();
    let disk = FullDisk::mount(&sb.state);
    let a = sb.fixture_as("http-app", "p-a");
    let report = sb.init(&a).arg("--json").json();
    assert_eq!(report["apps"][0]["port"], sb.port(0));
    disk.fill();
    let b = sb.fixture_as("http-app", "p-b");
    sb.init(&b)
        .expect_code(1)
        .stderr_has(format!(
            "cannot save pm2-port's registry `{}`",
            sb.state.join("registry.json").display()
        ))
        .stderr_has("No space left on device")
        .no_file(b.join("ecosystem.config.cjs"))
        .run();
    assert_eq!(
        names_in(&sb.state),
        ["filler", "lock", "registry.backup.json", "registry.json"]
    );
    fs::remove_file(sb.state.join("filler")).unwrap();
    let report = sb.init(&b).arg("--json").json();
    assert_eq!(report["apps"][0]["port"], sb.port(1));
}

/// The socket of a fake daemon, removed when the test ends (pass or fail): the sandbox would ask
/// it to `pm2 kill` itself, and wait for ever.
struct FakeDaemon(
    #[allow(dead_code)] std::os::unix::net::UnixListener,
    std::path::PathBuf,
);

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.1);
    }
}

/// A fake PM2 daemon on `home/rpc.sock` that answers every call with a well-formed frame holding
/// JSON this client does not know (a fault injection: a future PM2, or something else).
fn confusing_daemon(home: &Path) -> FakeDaemon {
    use std::io::{Read, Write};
    let path = home.join("rpc.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let server = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        for conn in server.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = br#"j:{"result":{"processes":"elsewhere"}}"#;
            let id = b"s:0";
            let mut msg = vec![0x12];
            for arg in [&body[..], &id[..]] {
                msg.extend_from_slice(&(arg.len() as u32).to_be_bytes());
                msg.extend_from_slice(arg);
            }
            let _ = conn.write_all(&msg);
        }
    });
    FakeDaemon(listener, path)
}

#[test]
fn a_confusing_daemon_makes_read_only_commands_fail_fast_and_run_no_pm2() {
    let sb = Sandbox::new();
    let _daemon = confusing_daemon(&sb.home);
    let dir = sb.fixture("http-app");
    for args in [
        vec!["next"],
        vec!["list", "--json"],
        vec!["init", dir.to_str().unwrap(), "--dry-run"],
    ] {
        sb.call(&args)
            .within(20)
            .expect_code(1)
            .stderr_has(format!(
                "PM2's daemon answered `{}` with",
                sb.home.join("rpc.sock").display()
            ))
            .run();
        // No `pm2` ran: it would have written its log and pid files here.
        assert_eq!(names_in(&sb.home), ["rpc.sock"], "{}", args.join(" "));
    }
}

#[test]
fn a_directory_whose_name_is_not_utf8_is_refused_up_front() {
    let sb = Sandbox::new();
    let dir = sb.root.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    copy_dir(&fixtures().join("http-app"), &dir);
    sb.init(&dir)
        .expect_code(2)
        .stderr_has("is not UTF-8")
        .unchanged(&dir)
        .no_file(dir.join("ecosystem.config.cjs"))
        .no_file(sb.state.join("registry.json"))
        .run();
}

#[test]
fn a_truncated_registry_loses_no_project() {
    let sb = Sandbox::new();
    let mut ports = Vec::new();
    for name in ["p-a", "p-b", "p-c"] {
        let dir = sb.fixture_as("http-app", name);
        ports.push(sb.init(&dir).arg("--json").json()["apps"][0]["port"].clone());
    }
    // Cut before the first path: nothing of it names a project any more.
    fs::write(
        sb.state.join("registry.json"),
        "{\n  \"version\": 1,\n  \"pro",
    )
    .unwrap();
    let d = sb.fixture_as("http-app", "p-d");
    let report = sb.init(&d).arg("--json").json();
    assert_eq!(report["apps"][0]["port"], sb.port(3));
    let list = sb.run(["list", "--json"]).json();
    let seen: Vec<(Value, Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].clone(), r["port"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (json!("p-a"), ports[0].clone()),
            (json!("p-b"), ports[1].clone()),
            (json!("p-c"), ports[2].clone()),
            (json!("p-d"), json!(sb.port(3))),
        ]
    );
}

#[test]
fn a_fifo_anywhere_pm2_port_reads_is_refused_without_hanging() {
    let sb = Sandbox::new();
    let configured = sb.fixture_as("http-app", "done");
    sb.init(&configured).arg("--json").json();
    // (what to replace with a FIFO, the command, the exit status)
    let cases: [(&str, &str, i32); 4] = [
        ("project/ecosystem.config.cjs", "init", 1),
        ("project/package.json", "init", 2),
        ("state/registry.json", "next", 1),
        ("pm2/dump.pm2", "next", 1),
    ];
    for (at, command, code) in cases {
        let project = sb.fixture_as("http-app", &format!("project-{}", at.replace('/', "-")));
        let path = match at.split_once('/').unwrap() {
            ("project", f) => project.join(f),
            ("state", f) => sb.state.join(f),
            (_, f) => sb.home.join(f),
        };
        let saved = fs::read(&path).ok();
        let _ = fs::remove_file(&path);
        mkfifo(&path);
        let mut args = vec![command];
        if command == "init" {
            args.push(project.to_str().unwrap());
        }
        sb.call(&args)
            .case(at)
            .within(15)
            .expect_code(code)
            .stderr_has(format!("`{}`", path.display()))
            .stderr_has("FIFO")
            .run();
        fs::remove_file(&path).unwrap();
        if let Some(bytes) = saved {
            fs::write(&path, bytes).unwrap();
        }
    }
}

#[test]
fn a_fifo_dotenv_of_a_flask_project_is_passed_over_without_hanging() {
    // A secret manager may serve `.env` as a FIFO; Flask detection only looks there for FLASK_APP.
    let sb = Sandbox::new();
    let project = sb.fixture("detect/flask-flaskenv");
    mkfifo(&project.join(".env"));
    let report = sb
        .init(&project)
        .args(["--dry-run", "--json"])
        .within(15)
        .json();
    assert_eq!(
        report["apps"][0]["command"],
        format!("FLASK_APP=blog.py flask run --port {}", sb.port(0))
    );
}

#[test]
fn values_that_would_not_survive_node_are_refused_or_read_as_node_does() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let toml = dir.join("buildflowz.toml");
    for (text, message) in [
        (
            "[env]\nBIG = 9007199254740993\n",
            "`env.BIG` = 9007199254740993 is beyond the integers JavaScript holds exactly",
        ),
        (
            "[pm2.deep]\n__proto__ = \"x\"\n",
            "`pm2.deep.__proto__` would set the object's prototype",
        ),
        ("[pm2]\nx = nan\n", "`pm2.x` is not a finite number"),
    ] {
        fs::write(&toml, text).unwrap();
        sb.init(&dir)
            .case(text)
            .expect_code(2)
            .stderr_has(message)
            .unchanged(&dir)
            .no_file(dir.join("ecosystem.config.cjs"))
            .run();
    }
    fs::remove_file(&toml).unwrap();
    // A legacy octal literal: Node reads 047010 as 19976, and so must pm2-port.
    let file = dir.join("ecosystem.config.cjs");
    fs::write(
        &file,
        "module.exports = { apps: [{ name: 'octal', script: 'server.js', env: { PORT: 047010 } }] };\n",
    )
    .unwrap();
    assert_eq!(app_in_file(&file)["env"]["PORT"], 19976);
    sb.init(&dir)
        .expect_code(1)
        .stderr_has("(it sets PORT 19976)")
        .unchanged(&file)
        .run();
}

#[test]
fn a_package_json_with_a_byte_order_mark_is_read() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let pkg = fs::read_to_string(dir.join("package.json")).unwrap();
    fs::write(dir.join("package.json"), format!("\u{feff}{pkg}")).unwrap();
    let report = sb.init(&dir).arg("--json").json();
    assert_eq!(report["apps"][0]["command"], "npm run dev");
}

#[test]
fn a_blank_command_is_refused() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    sb.init(&dir)
        .args(["--command", "  "])
        .expect_code(2)
        .stderr_has("the command is empty")
        .unchanged(&dir)
        .run();
    fs::write(dir.join("buildflowz.toml"), "command = \"\"\n").unwrap();
    sb.init(&dir)
        .expect_code(2)
        .stderr_has(":1:11: `command` is empty")
        .unchanged(&dir)
        .no_file(dir.join("ecosystem.config.cjs"))
        .run();
}

#[test]
fn ports_in_args_and_in_numeric_strings_are_seen() {
    let sb = Sandbox::new();
    let idle = fixtures().join("idle-app/idle.js");
    let idle = idle.to_str().unwrap();
    // A stopped app whose port is only in its arguments.
    sb.pm2([
        "start",
        idle,
        "--name",
        "by-args",
        "--",
        "--port",
        &sb.port(0).to_string(),
    ]);
    sb.pm2(["stop", "by-args"]);
    // Ports written the ways Node's `listen` also accepts.
    sb.pm2_with_env(
        ["start", idle, "--name", "hex"],
        &[("PORT", format!("{:#x}", sb.port(1)))],
    );
    sb.pm2_with_env(
        ["start", idle, "--name", "exp"],
        &[("PORT", format!("{}e1", f64::from(sb.port(2)) / 10.0))],
    );
    assert_eq!(
        sb.run(["next"]).stdout(),
        format!("{}\n", sb.port(3)),
        "{:?}",
        sb.run(["list", "--json"]).stdout()
    );
    // An explicit port that browsers refuse is allowed, with a warning.
    let dir = sb.fixture("http-app");
    let out = sb.run([
        "init",
        dir.to_str().unwrap(),
        "--port",
        "6000",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(out.json()["apps"][0]["port"], 6000);
    assert!(
        out.stderr()
            .contains("port 6000 is one that browsers refuse to open (ERR_UNSAFE_PORT)"),
        "{}",
        out.stderr()
    );
}

#[test]
fn a_start_that_fails_on_drift_leaves_pm2_as_it_was() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let elsewhere = sb.port(9);
    sb.call(["start", dir.to_str().unwrap()])
        .args(["--command", &format!("PORT={elsewhere} node server.js")])
        .args(["--timeout", "30"])
        .expect_code(1)
        .stderr_has("start failed; deleted `http-app` in PM2 again")
        .stderr_has("(drift)")
        .run();
    assert_eq!(sb.jlist(), Vec::<Value>::new());
    assert!(http_get("127.0.0.1", elsewhere).is_none());
}

#[test]
fn an_app_deleted_but_still_saved_shows_as_deleted_and_release_gives_ports_back() {
    let sb = Sandbox::new();
    sb.start_foreign_app("gone", sb.port(0));
    sb.pm2(["save"]);
    sb.pm2(["delete", "gone"]);
    let list = sb.run(["list", "--json"]).json();
    assert_eq!(list[0]["name"], "gone");
    assert_eq!(list[0]["status"], "dump-only");

    // A configured project that never started keeps its port until it is released.
    let test_app = sb.fixture_as("http-app", "test-app");
    sb.init(&test_app).arg("--json").json();
    assert_eq!(sb.run(["next"]).stdout(), format!("{}\n", sb.port(2)));
    let dry = sb
        .run(["release", test_app.to_str().unwrap(), "--dry-run", "--json"])
        .json();
    assert_eq!(
        dry,
        json!({"dir": test_app, "dry_run": true, "released": [{"name": "test-app", "port": sb.port(1)}], "pm2_deleted": []})
    );
    assert_eq!(sb.run(["next"]).stdout(), format!("{}\n", sb.port(2)));
    let out = sb.run(["release", test_app.to_str().unwrap()]);
    assert_eq!(
        out.stdout(),
        format!("released `test-app` (port {})\n", sb.port(1))
    );
    assert_eq!(sb.run(["next"]).stdout(), format!("{}\n", sb.port(1)));

    // A started project: its app leaves PM2 and its saved list; a deleted directory can go too.
    let web = sb.fixture_as("http-app", "web");
    let port = sb.run(["start", web.to_str().unwrap(), "--json"]).json()["apps"][0]["port"]
        .as_u64()
        .unwrap();
    fs::remove_dir_all(&web).unwrap();
    let report = sb.run(["release", web.to_str().unwrap(), "--json"]).json();
    assert_eq!(report["released"], json!([{"name": "web", "port": port}]));
    assert_eq!(report["pm2_deleted"], json!(["web"]));
    assert!(sb.jlist().iter().all(|a| a["name"] != "web"));
    let dump = fs::read_to_string(sb.home.join("dump.pm2")).unwrap();
    assert!(!dump.contains("\"web\""), "{dump}");
    sb.call(["release", web.to_str().unwrap()])
        .expect_code(1)
        .stderr_has("is not a project pm2-port knows")
        .run();
}

// What a hostile review of the fixes above found (each failed before its fix).

#[test]
fn release_keeps_the_saved_apps_of_a_daemon_that_was_never_resurrected() {
    let sb = Sandbox::new();
    let dirs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| sb.fixture_as("http-app", n))
        .collect();
    for d in &dirs {
        sb.run(["start", d.to_str().unwrap(), "--json"]).json();
    }
    sb.pm2(["kill"]);
    sb.pm2(["ping"]);
    let list = sb.run(["list", "--json"]).json();
    let statuses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["dump-only", "dump-only", "dump-only"]);
    let report = sb
        .run(["release", dirs[0].to_str().unwrap(), "--json"])
        .json();
    assert_eq!(report["pm2_deleted"], json!(["a"]));
    let dump: Vec<Value> =
        serde_json::from_str(&fs::read_to_string(sb.home.join("dump.pm2")).unwrap()).unwrap();
    let names: Vec<&str> = dump.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b", "c"]);
}

#[test]
fn a_missing_registry_beside_its_copy_loses_no_project() {
    let sb = Sandbox::new();
    for name in ["p-a", "p-b", "p-c"] {
        let dir = sb.fixture_as("http-app", name);
        sb.init(&dir).arg("--json").json();
    }
    // As a kill leaves it between keeping a broken registry aside and writing the new one.
    fs::remove_file(sb.state.join("registry.json")).unwrap();
    let d = sb.fixture_as("http-app", "p-d");
    let report = sb.init(&d).arg("--json").json();
    assert_eq!(report["apps"][0]["port"], sb.port(3));
    assert_eq!(
        sb.run(["list", "--json"]).json().as_array().unwrap().len(),
        4
    );
}

#[test]
fn an_apps_table_over_a_project_of_its_own_is_refused() {
    let sb = Sandbox::new();
    let mono = sb.dir("mono");
    copy_dir(&fixtures().join("http-app"), &mono.join("packages/web"));
    copy_dir(&fixtures().join("http-app"), &mono.join("packages/api"));
    sb.init(mono.join("packages/web")).arg("--json").json();
    fs::write(
        mono.join("buildflowz.toml"),
        "[[apps]]\ndir = \"packages/api\"\n[[apps]]\ndir = \"packages/web\"\n",
    )
    .unwrap();
    sb.init(&mono)
        .expect_code(1)
        .stderr_has(format!(
            "`{}` is a project of its own",
            mono.join("packages/web").display()
        ))
        .no_file(mono.join("ecosystem.config.cjs"))
        .run();
}

#[test]
fn a_file_copied_from_another_project_changes_nothing_of_that_project() {
    let sb = Sandbox::new();
    let a = sb.fixture_as("http-app", "a");
    let started = sb.run(["start", a.to_str().unwrap(), "--json"]).json();
    assert_eq!(started["apps"][0]["port"], sb.port(0));
    // A copy of the project (a git worktree, `cp -r`), configured, then its file restored from a.
    let b = sb.root.path().join("b");
    copy_dir(&a, &b);
    sb.init(&b).args(["--force", "--json"]).json();
    fs::copy(
        a.join("ecosystem.config.cjs"),
        b.join("ecosystem.config.cjs"),
    )
    .unwrap();
    let again = sb.init(&a).arg("--json").json();
    assert_eq!(again["apps"][0]["name"], "a");
    assert_eq!(again["apps"][0]["port"], sb.port(0));
    assert_eq!(again["changed"], false);
    // Releasing the copy or starting it leaves a's app alone.
    sb.run(["release", b.to_str().unwrap()]);
    let names: Vec<String> = sb
        .jlist()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a"]);
}

#[test]
fn start_never_deletes_an_app_of_another_directory_named_in_its_file() {
    let sb = Sandbox::new();
    let a = sb.fixture_as("http-app", "a");
    let b = sb.fixture_as("http-app", "b");
    sb.run(["start", a.to_str().unwrap(), "--json"]).json();
    sb.run(["start", b.to_str().unwrap(), "--json"]).json();
    let file = b.join("ecosystem.config.cjs");
    let text = fs::read_to_string(&file).unwrap();
    let edited = text.replacen(
        "  apps: [{",
        &format!(
            "  apps: [{{ name: \"a\", cwd: \"{}\", script: \"bash\", args: [\"-c\", \"npm run dev\"], env: {{ PORT: {} }} }}, {{",
            a.display(),
            sb.port(5)
        ),
        1,
    );
    fs::write(&file, edited).unwrap();
    let out = sb.run(["start", b.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert!(!out.stderr().contains("deleted `a`"), "{}", out.stderr());
    let names: Vec<String> = sb
        .jlist()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"a".to_string()), "{names:?}");
}

#[test]
fn an_app_started_from_a_symlinked_directory_is_the_projects_own() {
    let sb = Sandbox::new();
    let real = sb.fixture_as("http-app", "real");
    let link = sb.root.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let port = sb.port(7);
    let text = buildflowz(&link, port, |t| t);
    fs::write(real.join("ecosystem.config.cjs"), text).unwrap();
    sb.pm2(["start", link.join("ecosystem.config.cjs").to_str().unwrap()]);
    let report = sb.init(&link).args(["--dry-run", "--json"]).json();
    assert_eq!(report["apps"][0]["name"], "shop");
    assert_eq!(report["apps"][0]["port"], port);
}

#[test]
fn only_pm2_ports_own_header_makes_a_file_its_own() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let file = dir.join("ecosystem.config.cjs");
    let text = format!(
        "// Generated by pm2-portal v2\nmodule.exports = {{ apps: [{{ name: 'x', env: {{ PORT: {}, SECRET: 's' }} }}] }};\n",
        sb.port(3)
    );
    fs::write(&file, &text).unwrap();
    sb.init(&dir)
        .expect_code(1)
        .stderr_has("was written by hand")
        .unchanged(&dir)
        .run();
    assert_eq!(fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn carrying_thousands_of_settings_does_not_hang() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let env: Vec<String> = (0..10_000).map(|i| format!("K{i}: \"v{i}\"")).collect();
    fs::write(
        dir.join("ecosystem.config.cjs"),
        format!(
            "module.exports = {{ apps: [{{ name: 'big', script: 'bash', args: ['-c', 'npm run dev'], env: {{ PORT: {}, {} }} }}] }};\n",
            sb.port(2),
            env.join(", ")
        ),
    )
    .unwrap();
    // A hang guard, not a speed test: the quadratic version took over two minutes.
    let report = sb.init(&dir).args(["--force", "--json"]).within(60).json();
    assert_eq!(report["apps"][0]["port"], sb.port(2));
    let app = &app_in_file(&dir.join("ecosystem.config.cjs"));
    assert_eq!(app["env"].as_object().unwrap().len(), 10_001);
    assert_eq!(app["env"]["K9999"], "v9999");
}

#[test]
fn a_huge_file_is_refused_by_its_size_not_read() {
    let sb = Sandbox::new();
    let big = sb.fixture_as("http-app", "big");
    sb.init(&big).arg("--json").json();
    // Sparse: 3 GiB that take no disk.
    let f = fs::File::options()
        .write(true)
        .open(big.join("ecosystem.config.cjs"))
        .unwrap();
    f.set_len(3 << 30).unwrap();
    sb.call(["next"])
        .within(20)
        .stdout(format!("{}\n", sb.port(1)))
        .run();
    sb.init(&big)
        .expect_code(1)
        .stderr_has("over pm2-port's cap of 64 MiB")
        .run();
}
