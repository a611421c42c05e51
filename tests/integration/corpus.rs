//! Detection against the real world (issue 11): the manifests of public repositories under
//! `fixtures/real/`, each with the answer its README supports (`fixtures/real/corpus.toml`). The
//! score is printed; the cases pm2-port still gets wrong are listed in
//! `fixtures/real/known-wrong.txt`, and the test fails when a case outside that list goes wrong (a
//! regression) or one on it comes right (so that the list, and the README's score, stay true).

use std::collections::BTreeSet;
use std::fs;

use serde::Deserialize;
use serde_json::Value;

use crate::support::*;

#[derive(Debug, Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    dir: String,
    framework: String,
    package_manager: String,
    command: String,
    fanout: bool,
}

impl Case {
    fn id(&self) -> String {
        if self.dir == "." {
            self.name.clone()
        } else {
            format!("{}/{}", self.name, self.dir)
        }
    }
}

/// What pm2-port answered for `case`, or why it is wrong.
fn judge(case: &Case) -> Result<(), String> {
    let sb = Sandbox::new();
    let root = sb.fixture_as(&format!("real/{}", case.name), &case.name);
    let dir = root.join(&case.dir);
    let out = sb.run([
        "init",
        dir.to_str().unwrap(),
        "--dry-run",
        "--json",
        "--yes",
    ]);
    if case.fanout {
        // A root that starts several apps: the right answer is to say so and offer [[apps]].
        return if out.code() != 0 && out.stderr().contains("[[apps]]") {
            Ok(())
        } else {
            Err(format!(
                "a root that fans out, taken as one app: {}",
                out.stdout().trim()
            ))
        };
    }
    if out.code() != 0 {
        return Err(format!("failed: {}", out.stderr().trim()));
    }
    let report: Value = serde_json::from_str(&out.stdout()).unwrap();
    let app = &report["apps"][0];
    let port = app["port"].as_u64().unwrap().to_string();
    let want = |s: &str| {
        if s.is_empty() {
            Value::Null
        } else {
            Value::from(s)
        }
    };
    let mut wrong = Vec::new();
    for (field, expected) in [
        ("framework", want(&case.framework)),
        ("package_manager", want(&case.package_manager)),
        (
            "command",
            Value::from(case.command.replace("{port}", &port)),
        ),
    ] {
        if app[field] != expected {
            wrong.push(format!("{field} {} (want {expected})", app[field]));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join(", "))
    }
}

#[test]
fn the_real_world_corpus() {
    let real = fixtures().join("real");
    let corpus: Corpus =
        toml_edit::de::from_str(&fs::read_to_string(real.join("corpus.toml")).unwrap()).unwrap();
    let known: BTreeSet<String> = fs::read_to_string(real.join("known-wrong.txt"))
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let mut right = 0;
    let mut regressions = Vec::new();
    let mut fixed = Vec::new();
    let mut report = Vec::new();
    for case in &corpus.case {
        let id = case.id();
        match judge(case) {
            Ok(()) => {
                right += 1;
                if known.contains(&id) {
                    fixed.push(id);
                }
            }
            Err(why) => {
                report.push(format!("  {id}: {why}"));
                if !known.contains(&id) {
                    regressions.push(format!("{id}: {why}"));
                }
            }
        }
    }
    let total = corpus.case.len();
    println!(
        "real-world corpus: {right} of {total} right ({:.0}%)\n{}",
        100.0 * right as f64 / total as f64,
        report.join("\n")
    );
    assert!(
        regressions.is_empty(),
        "wrong now, right before:\n{}",
        regressions.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "right now: take them off fixtures/real/known-wrong.txt (and update the README's score): {fixed:?}"
    );
}
