//! `[pm2]` in buildflowz.toml against PM2 itself: pm2-port's table of PM2's app options is the
//! pinned PM2's schema, and what pm2-port refuses is what the real `pm2 start` refuses.

use std::fs;
use std::process::Command;

use pm2_port::pm2::options::{SchemaEntry, schema};
use serde_json::Value;

use crate::support::*;

/// An option: name, types (sorted), aliases, pattern, least number.
type Row = (
    String,
    Vec<String>,
    Vec<String>,
    Option<String>,
    Option<f64>,
);

#[test]
fn the_table_of_pm2_options_is_the_pinned_pm2s_schema() {
    let path = repo().join("tests/pm2/node_modules/pm2/lib/API/schema.json");
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (tests/run.sh installs PM2)", path.display()));
    let json: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
            _ => Vec::new(),
        }
    };
    let mut theirs: Vec<Row> = json
        .iter()
        // The pattern key `^env_\S*$` is code in pm2-port, not a row.
        .filter(|(k, _)| !k.contains('\\'))
        .map(|(k, v)| {
            let mut types = strings(v.get("type"));
            types.sort();
            (
                k.clone(),
                types,
                strings(v.get("alias")),
                v.get("regex").and_then(Value::as_str).map(str::to_string),
                v.get("min").and_then(Value::as_f64),
            )
        })
        .collect();
    let mut ours: Vec<Row> = schema()
        .into_iter()
        .map(|e: SchemaEntry| {
            let mut types: Vec<String> = e.types.iter().map(|t| t.to_string()).collect();
            types.sort();
            (
                e.name.to_string(),
                types,
                e.aliases.iter().map(|a| a.to_string()).collect(),
                e.regex.map(str::to_string),
                e.min,
            )
        })
        .collect();
    theirs.sort_by(|a, b| a.0.cmp(&b.0));
    ours.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(theirs.len(), 64);
    assert_eq!(ours, theirs);
    assert!(json.contains_key(r"^env_\S*$"));
}

/// Each value as buildflowz.toml writes it and as the ecosystem file holds it, and whether PM2
/// starts the app.
const CASES: &[(&str, &str, &str, bool)] = &[
    ("autorestart", "false", "false", true),
    ("autorestart", "\"yes\"", "\"yes\"", false),
    ("restart_delay", "\"1000\"", "\"1000\"", true),
    ("restart_delay", "\"1s\"", "\"1s\"", false),
    ("max_memory_restart", "\"512M\"", "\"512M\"", true),
    ("max_memory_restart", "\"512 MB\"", "\"512 MB\"", false),
    ("min_uptime", "\"5s\"", "\"5s\"", true),
    ("min_uptime", "50", "50", false),
    ("exec_mode", "\"fork\"", "\"fork\"", true),
    ("exec_mode", "\"forked\"", "\"forked\"", false),
    ("watch", "[\"src\"]", "[\"src\"]", true),
    ("kill_timeout", "true", "true", false),
    // PM2's own coercions: parseFloat("0x100") is 0, below 100; [5] is 5; "" is NaN, which
    // passes; the alias `combine_logs` is ignored.
    ("min_uptime", "\"0x100\"", "\"0x100\"", false),
    ("restart_delay", "[5]", "[5]", true),
    ("min_uptime", "\"\"", "\"\"", true),
    ("combine_logs", "\"x\"", "\"x\"", true),
    // Beyond the schema: PM2's cron library.
    ("cron_restart", "\"0 4 * * *\"", "\"0 4 * * *\"", true),
    ("cron_restart", "5", "5", false),
    ("cron_restart", "\"@daily\"", "\"@daily\"", false),
    ("cron_restart", "\"60 * * * *\"", "\"60 * * * *\"", false),
    ("cron_restart", "\"0 0 * * 5#2\"", "\"0 0 * * 5#2\"", false),
    (
        "cron_restart",
        "\"0,30 9-17/2 * * mon-fri\"",
        "\"0,30 9-17/2 * * mon-fri\"",
        true,
    ),
    // PM2 reads an alias only without its option, and drops `username`.
    ("username", "5", "5", true),
];

#[test]
fn pm2_port_refuses_the_options_pm2_refuses_and_writes_those_it_starts() {
    let sb = Sandbox::new();
    for (i, (key, toml, js, starts)) in CASES.iter().enumerate() {
        // The real PM2, on a file of its own.
        let raw = sb.dir(&format!("raw{i}"));
        let file = raw.join("ecosystem.config.cjs");
        fs::write(
            &file,
            format!(
                "module.exports = {{ apps: [{{ name: 'raw{i}', script: 'bash', args: ['-c', 'sleep 1000'], {key}: {js} }}] }};\n"
            ),
        )
        .unwrap();
        let mut pm2 = Command::new(&sb.pm2_program);
        sb.env(&mut pm2);
        let out = pm2.arg("start").arg(&file).output().unwrap();
        assert_eq!(
            out.status.success(),
            *starts,
            "pm2 start with {key}: {js}: {}",
            String::from_utf8_lossy(&out.stdout)
        );

        // pm2-port, on the same setting in buildflowz.toml.
        let dir = sb.fixture_as("http-app", &format!("app{i}"));
        fs::write(
            dir.join("buildflowz.toml"),
            format!("[pm2]\n{key} = {toml}\n"),
        )
        .unwrap();
        let run = sb.run(["init", dir.to_str().unwrap()]);
        if *starts {
            assert_eq!(run.code(), 0, "{key} = {toml}: {}", run.stderr());
            // What node reads back is the value PM2 was given above.
            let app = &node_require(&dir.join("ecosystem.config.cjs"))["apps"][0];
            let want: Value = serde_json::from_str(js).unwrap();
            assert_eq!(app[key], want, "{key} = {toml}");
        } else {
            let err = run.fails(2);
            assert!(
                err.starts_with(&format!(
                    "error: `{}`:2:1: `pm2.{key}`: PM2 takes ",
                    dir.join("buildflowz.toml").display()
                )),
                "{key} = {toml}: {err}"
            );
            assert!(!dir.join("ecosystem.config.cjs").exists());
        }
    }
    sb.pm2(["delete", "all"]);
}

#[test]
fn the_pm2_port_option_and_unknown_options_are_named() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    let toml = dir.join("buildflowz.toml");
    fs::write(&toml, "[pm2]\nport = 4000\n").unwrap();
    assert_eq!(
        sb.run(["init", dir.to_str().unwrap()]).fails(2),
        format!(
            "error: `{}`:2:1: `pm2.port` would replace the PORT pm2-port gives the app; use the top-level `port` key to prefer a port\n",
            toml.display()
        )
    );
    fs::write(&toml, "[pm2]\nautorestat = false\n").unwrap();
    let out = sb.run(["init", dir.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert!(
        out.stderr().contains(
            "note: PM2 ignores `pm2.autorestat` of buildflowz.toml (`autorestart`?): it is none of PM2's app options\n"
        ),
        "{}",
        out.stderr()
    );
}
