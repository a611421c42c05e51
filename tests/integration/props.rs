//! Property tests of the ecosystem file: whatever names, paths, commands and settings go in, Node's
//! `require` gives exactly them back (and so does pm2-port's own reader); the reader never panics
//! or overflows on arbitrary text.

use std::fs;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use pm2_port::ecosystem::jslit;
use pm2_port::ecosystem::read::classify;
use pm2_port::ecosystem::render::{AppSpec, render};

use crate::support::node_require;

/// Keys pm2-port writes itself, or that JavaScript reads as something else.
const RESERVED: &[&str] = &[
    "__proto__",
    "name",
    "cwd",
    "script",
    "args",
    "env",
    "autorestart",
    "watch",
    "PORT",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_]{0,10}",
        any::<String>(),
        Just("constructor".to_string()),
        Just("0".to_string()),
        Just("a-b".to_string()),
    ]
    .prop_filter("a key pm2-port writes or refuses", |k| {
        !RESERVED.contains(&k.as_str())
    })
}

/// What `[env]` holds: strings, integers JavaScript holds exactly, booleans.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::from),
        (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ]
}

/// What `[pm2]` holds: scalars, arrays and tables of them, nested.
fn nested() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Unique keys, first one wins, order kept (as in buildflowz.toml's tables).
fn table(
    entries: impl Strategy<Value = Vec<(String, Value)>>,
) -> impl Strategy<Value = Vec<(String, Value)>> {
    entries.prop_map(|kv| {
        let mut seen = std::collections::HashSet::new();
        kv.into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect()
    })
}

fn app() -> impl Strategy<Value = AppSpec> {
    (
        any::<String>(),
        any::<String>(),
        any::<String>(),
        1u16..,
        table(proptest::collection::vec((key(), scalar()), 0..5)),
        table(proptest::collection::vec((key(), nested()), 0..4)),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(name, cwd, command_line, port, env, pm2, autorestart, watch)| AppSpec {
                name,
                cwd,
                command_line,
                port,
                env,
                autorestart: autorestart.into(),
                watch: watch.into(),
                pm2,
            },
        )
}

/// The value the file must give back for `apps`.
fn expected(apps: &[AppSpec]) -> Value {
    let apps: Vec<Value> = apps
        .iter()
        .map(|a| {
            let mut env = Map::new();
            env.insert("PORT".into(), json!(a.port));
            env.extend(a.env.iter().cloned());
            let mut app = Map::new();
            app.insert("name".into(), json!(a.name));
            app.insert("cwd".into(), json!(a.cwd));
            app.insert("script".into(), json!("bash"));
            app.insert("args".into(), json!(["-c", a.command_line]));
            app.insert("env".into(), Value::Object(env));
            app.insert("autorestart".into(), a.autorestart.clone());
            app.insert("watch".into(), a.watch.clone());
            app.extend(a.pm2.iter().cloned());
            Value::Object(app)
        })
        .collect();
    json!({ "apps": apps })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn node_reads_back_exactly_what_was_rendered(apps in proptest::collection::vec(app(), 1..3)) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ecosystem.config.cjs");
        let text = render(&apps);
        fs::write(&file, &text).unwrap();
        let want = expected(&apps);
        prop_assert_eq!(&node_require(&file), &want);
        // pm2-port's own reader agrees with Node.
        prop_assert_eq!(jslit::module_exports(&text), Some(want));
        let existing = classify(text);
        prop_assert_eq!(existing.apps.len(), apps.len());
        for (read, app) in existing.apps.iter().zip(&apps) {
            prop_assert_eq!(read.port, Some(app.port));
            prop_assert_eq!(read.name.as_deref(), Some(app.name.as_str()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_reader_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = classify(text.clone());
        let _ = classify(format!("module.exports = {text}"));
    }

    #[test]
    fn the_reader_never_panics_on_js_like_text(
        text in "(module\\.exports *= *)?[\\[\\]{}(),:;'\"`\\\\/*a-z0-9 \\n_$.+-]{0,200}"
    ) {
        let _ = classify(text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow(depth in 0usize..200_000, open in "[\\[{]") {
        let close = if open == "[" { "]" } else { "}" };
        let inner = if open == "[" { "1" } else { "a: 1" };
        let body = format!("{}{inner}{}", open.repeat(depth), close.repeat(depth));
        let text = format!("module.exports = {{ apps: {body} }};");
        let _ = classify(text);
    }
}
