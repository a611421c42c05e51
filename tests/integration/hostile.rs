//! Hostile names, paths and commands: every rendered file passes `node --check`, and `require()`
//! returns exactly the values that went in. Nothing in them is ever executed.

use std::fs;

use serde_json::json;

use crate::support::*;

fn hostile_values() -> Vec<String> {
    let mut v: Vec<String> = [
        "\"",
        "'",
        "`",
        "\\",
        "\\\"",
        "line1\nline2",
        "cr\rlf",
        "${x}",
        "`${process.exit(1)}`",
        "$(touch PWNED)",
        "`touch PWNED`",
        "</script><script>alert(1)</script>",
        "\u{2028}",
        "\u{2029}",
        "a\u{2028}b\u{2029}c",
        "\"; require('child_process').execSync('touch PWNED'); //",
        "'); require('child_process').execSync('touch PWNED'); ('",
        "*/ require('child_process').execSync('touch PWNED') /*",
        "}]}; require('child_process').execSync('touch PWNED'); ({",
        "\\u0022 and \\x22 and \\n, literally",
        "\u{1}\u{2}\u{1b}[31mred\u{1b}[0m\u{7f}",
        "tab\there",
        "emoji 🚀🔥 and a ZWJ sequence 👩\u{200d}💻",
        "right-to-left \u{202e}gnp.exe",
        "\u{feff}byte order mark",
        "\u{fffd}\u{fffe}\u{ffff} noncharacters",
        "ÿþ\u{80}\u{9f} latin-1 lookalike binary",
        "null",
        "constructor",
        "a  b   c",
        "-rf --force",
        "%s %d %n %x",
        "{{ name }} {% raw %}{# x #}",
        "<!-- --> ]]> <![CDATA[",
        "'\"`${}\\\n\u{2028}\u{2029}</script>",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(40) + &"é😀\"\\".repeat(30));
    v
}

/// A TOML basic string for any text.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value as a PM2 app name: PM2's command line cannot address names with spaces or commas,
/// `all`, numbers or a leading `-` (pm2-port refuses those, see below), so those characters are
/// swapped; every other hostile character stays.
fn as_name(value: &str) -> String {
    let name: String = value
        .chars()
        .map(|c| match c {
            ' ' => '_',
            ',' => ';',
            c => c,
        })
        .collect();
    // A name JavaScript reads as a number (all white space is 0) would be a process id.
    if name.trim().is_empty() || name.starts_with('-') {
        format!("n{name}")
    } else {
        name
    }
}

#[test]
fn names_pm2_cannot_address_are_refused_or_made_addressable() {
    let sb = Sandbox::new();
    let dir = sb.fixture("http-app");
    for bad in ["all", "42", "-rf", "my app", "a,b", "/web/"] {
        sb.init(&dir)
            .arg(format!("--name={bad}"))
            .expect_code(2)
            .stderr_has(format!("the app name `{bad}` cannot be used"))
            .no_file(dir.join("ecosystem.config.cjs"))
            .run();
    }
    for (dir_name, name) in [
        ("2024", "app-2024"),
        ("my shop", "my-shop"),
        ("all", "app-all"),
    ] {
        let dir = sb.fixture_as("http-app", dir_name);
        let report = sb
            .init(&dir)
            .arg("--json")
            .stderr_has(format!("the app is named `{name}`"))
            .json();
        assert_eq!(report["apps"][0]["name"], name);
    }
}

#[test]
fn hostile_values_round_trip_through_node() {
    let sb = Sandbox::new();
    let values = hostile_values();
    assert!(values.len() >= 30);
    let port = sb.port(0);
    let mut files = Vec::new();
    let mut expected = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let dir_name: String = format!("{i:02}-{}", value.replace('/', "_"))
            .chars()
            .scan(0usize, |len, c| {
                *len += c.len_utf8();
                (*len < 200).then_some(c)
            })
            .collect();
        let dir = sb.dir(&dir_name);
        fs::write(
            dir.join("buildflowz.toml"),
            format!("[env]\nHOSTILE = {}\n", toml_string(value)),
        )
        .unwrap();
        let name = as_name(value);
        let init = sb
            .init(&dir)
            .arg(format!("--name={name}"))
            .arg(format!("--command={value}"))
            .arg("--json")
            // Each project keeps its own registry, so all may have the same port.
            .env(
                "PM2_PORT_STATE_DIR",
                sb.root.path().join(format!("state-{i}")),
            );
        if value.trim().is_empty() {
            // A blank command starts nothing: refused (guarantees::a_blank_command_is_refused).
            init.expect_code(2).run();
            continue;
        }
        let report = init.json();
        assert_eq!(report["apps"][0]["name"], json!(name), "case {i}");
        assert_eq!(report["apps"][0]["command"], json!(value), "case {i}");
        // `--command` was saved beside `[env]`, and reads back exactly.
        let toml = dir.join("buildflowz.toml");
        let saved = pm2_port::buildflowz_toml::parse(&toml, &fs::read_to_string(&toml).unwrap())
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(saved.command.as_deref(), Some(value.as_str()), "case {i}");
        assert_eq!(saved.env["HOSTILE"], json!(value), "case {i}");
        // Node refuses to load a module whose path holds a backslash, whatever the file says:
        // check a copy at a plain path (the file's bytes are what is tested, not its location).
        let file = sb.root.path().join(format!("case-{i:02}.config.cjs"));
        fs::copy(dir.join("ecosystem.config.cjs"), &file).unwrap();
        node_check(&file, &format!("case {i} ({value:?})"));
        files.push(file);
        expected.push(json!({
            "name": name,
            "cwd": dir.to_str().unwrap(),
            "script": "bash",
            "args": ["-c", value],
            "env": {"PORT": port, "HOSTILE": value},
            "autorestart": true,
            "watch": false,
        }));
    }

    // One Node process for every file; each must export exactly `{ apps: [the app] }`.
    let got = node_require_all(sb.root.path(), &files);
    assert_eq!(got.len(), expected.len());
    for (i, (exports, want)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(exports, &json!({ "apps": [want] }), "case {i}");
    }
    // Loading the files ran none of the commands hidden in them.
    assert!(!sb.root.path().join("PWNED").exists());
    assert!(
        fs::read_dir(sb.root.path())
            .unwrap()
            .flatten()
            .all(|e| !e.path().join("PWNED").exists())
    );
}
