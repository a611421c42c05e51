//! `--command` sticks: given once, it is saved as `command` in buildflowz.toml, and later `init`
//! and `start` run it instead of the detected command (issue 11, point 9c).

use std::fs;

use serde_json::json;

use crate::support::*;

/// `http-app` answers `hello from $APP_NAME on $PORT`: the page says which command runs.
const LINE: &str = "APP_NAME=chosen node server.js";

#[test]
fn a_command_given_once_to_start_sticks_on_the_next_start() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let d = dir.to_str().unwrap();
    let port = sb.port(0);

    let first = sb.run(["start", d, "--command", LINE, "--json"]);
    assert_eq!(first.json()["apps"][0]["command"], LINE);
    let pid = sb.jlist()[0]["pid"].clone();

    // The next `start`, without `--command`: the chosen line still runs, left alone.
    let second = sb.run(["start", d, "--json"]);
    let report = second.json();
    let apps = sb.jlist();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["pm2_env"]["args"], json!(["-c", LINE]));
    assert_eq!(
        node_require(&dir.join("ecosystem.config.cjs"))["apps"][0]["args"],
        json!(["-c", LINE])
    );
    assert_eq!(report["apps"][0]["command"], LINE);
    assert_eq!(report["changed"], false);
    assert!(
        second.stderr().contains("`http-app` is already online"),
        "{}",
        second.stderr()
    );
    assert_eq!(apps[0]["pid"], pid, "the second start restarted the app");
    assert_eq!(
        http_get_localhost(port).unwrap(),
        format!("hello from chosen on {port}\n")
    );
    assert_eq!(
        fs::read(dir.join("buildflowz.toml")).unwrap(),
        b"command = \"APP_NAME=chosen node server.js\"\n"
    );
    assert!(
        first.stderr().contains(&format!(
            "note: saved the command to `{d}/buildflowz.toml`, so that `init` and `start` keep running it"
        )),
        "{}",
        first.stderr()
    );
    // Nothing more was said or saved: the file had it already.
    assert!(!second.stderr().contains("saved the command"));

    // Given again, another line replaces it, in the file and in PM2.
    let other = "APP_NAME=other node server.js";
    let report = sb.run(["start", d, "--command", other, "--json"]).json();
    assert_eq!(report["apps"][0]["command"], other);
    assert_eq!(
        fs::read_to_string(dir.join("buildflowz.toml")).unwrap(),
        "command = \"APP_NAME=other node server.js\"\n"
    );
    assert_eq!(sb.jlist()[0]["pm2_env"]["args"], json!(["-c", other]));
    assert_eq!(
        http_get_localhost(port).unwrap(),
        format!("hello from other on {port}\n")
    );
}

#[test]
fn init_saves_the_command_in_a_new_buildflowz_toml_and_dry_run_writes_nothing() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let d = dir.to_str().unwrap();
    let toml = dir.join("buildflowz.toml");

    let dry = sb.run(["init", d, "--command", LINE, "--dry-run"]);
    assert_eq!(dry.code(), 0, "{}", dry.stderr());
    assert!(
        dry.stdout().contains(
            "--- /dev/null\n+++ b/buildflowz.toml\n@@ -0,0 +1 @@\n+command = \"APP_NAME=chosen node server.js\"\n"
        ),
        "{}",
        dry.stdout()
    );
    assert!(
        dry.stderr().contains(&format!(
            "note: would save the command to `{d}/buildflowz.toml`"
        )),
        "{}",
        dry.stderr()
    );
    assert!(!toml.exists());
    assert!(!dir.join("ecosystem.config.cjs").exists());

    let out = sb.run(["init", d, "--command", LINE]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(
        fs::read(&toml).unwrap(),
        b"command = \"APP_NAME=chosen node server.js\"\n"
    );
    assert!(
        out.stderr().contains(&format!(
            "note: saved the command to `{d}/buildflowz.toml`, so that `init` and `start` keep running it (change it there, or with `--command` again)\n"
        )),
        "{}",
        out.stderr()
    );

    // A later `init` without it runs it, and changes nothing.
    let again = sb.run(["init", d, "--json"]);
    let report = again.json();
    assert_eq!(report["apps"][0]["command"], LINE);
    assert_eq!(report["changed"], false);
    assert!(!again.stderr().contains("saved"), "{}", again.stderr());
    assert_eq!(
        node_require(&dir.join("ecosystem.config.cjs"))["apps"][0]["args"],
        json!(["-c", LINE])
    );
}

#[test]
fn the_command_goes_into_an_existing_buildflowz_toml_keeping_its_comments() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let d = dir.to_str().unwrap();
    let toml = dir.join("buildflowz.toml");
    let mine = "# shop's settings\nname = \"shop\"  # the PM2 name\n\n[env]\n# for the logs\nDEBUG = \"app:*\"\n";
    fs::write(&toml, mine).unwrap();

    let dry = sb.run(["init", d, "--command", LINE, "--dry-run"]);
    assert_eq!(dry.code(), 0, "{}", dry.stderr());
    assert!(
        dry.stdout().contains(
            "--- a/buildflowz.toml\n+++ b/buildflowz.toml\n@@ -1,5 +1,6 @@\n # shop's settings\n name = \"shop\"  # the PM2 name\n+command = \"APP_NAME=chosen node server.js\"\n \n [env]\n # for the logs\n"
        ),
        "{}",
        dry.stdout()
    );
    assert!(
        dry.stderr().contains(&format!(
            "note: would save the command to `{d}/buildflowz.toml`"
        )),
        "{}",
        dry.stderr()
    );
    assert_eq!(fs::read_to_string(&toml).unwrap(), mine);
    assert!(!dir.join("ecosystem.config.cjs").exists());

    let report = sb.run(["init", d, "--command", LINE, "--json"]).json();
    assert_eq!(report["apps"][0]["command"], LINE);
    assert_eq!(
        fs::read_to_string(&toml).unwrap(),
        "# shop's settings\nname = \"shop\"  # the PM2 name\ncommand = \"APP_NAME=chosen node server.js\"\n\n[env]\n# for the logs\nDEBUG = \"app:*\"\n"
    );

    // A later `init` without it runs it, and changes nothing.
    let again = sb.run(["init", d, "--json"]).json();
    assert_eq!(again["apps"][0]["command"], LINE);
    assert_eq!(again["changed"], false);
    let app = node_require(&dir.join("ecosystem.config.cjs"))["apps"][0].clone();
    assert_eq!(app["args"], json!(["-c", LINE]));
    assert_eq!(app["env"]["DEBUG"], "app:*");
    assert_eq!(app["name"], "shop");

    // A command already there is replaced where it stands, its comment kept.
    fs::write(
        &toml,
        "command = \"npm run dev\"  # mine\nname = \"shop\"\n",
    )
    .unwrap();
    sb.run(["init", d, "--command", LINE, "--json"]).json();
    assert_eq!(
        fs::read_to_string(&toml).unwrap(),
        "command = \"APP_NAME=chosen node server.js\"  # mine\nname = \"shop\"\n"
    );
}

#[test]
fn with_apps_the_command_flag_is_refused_and_nothing_is_written() {
    let sb = Sandbox::new();
    let dir = sb.fixture("monorepo");
    let d = dir.to_str().unwrap();
    let toml = dir.join("buildflowz.toml");
    let apps = fs::read_to_string(&toml).unwrap();
    assert!(apps.contains("[[apps]]"), "{apps}");
    let err = sb.run(["init", d, "--command", LINE]).fails(2);
    assert_eq!(
        err,
        format!(
            "error: `--command` cannot apply to the several [[apps]] of `{d}/buildflowz.toml`; set it in their tables\n"
        )
    );
    assert_eq!(fs::read_to_string(&toml).unwrap(), apps);
    assert!(!dir.join("ecosystem.config.cjs").exists());
}
