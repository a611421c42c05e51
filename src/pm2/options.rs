//! PM2's app options, as PM2's own validator checks an ecosystem file's app (`Config.validateJSON`
//! over `lib/API/schema.json`; the types, aliases and rules below are the same in PM2 5.4, 6.0
//! and 7.0, and a test compares them with the pinned PM2's schema). Two facts make this matter
//! for `[pm2]` in buildflowz.toml: PM2 *refuses to start* an app whose option has the wrong type
//! or fails its rule (`pm2 start` exits 1 with only a warning on stdout), and it *silently drops*
//! an option it does not know (`autorestat = false` changes nothing).

use serde_json::Value;

const STRING: u8 = 1;
const NUMBER: u8 = 2;
const BOOLEAN: u8 = 4;
const ARRAY: u8 = 8;
const OBJECT: u8 = 16;

/// A rule beyond the type: a pattern a string must match, a least number.
#[derive(Clone, Copy)]
enum Rule {
    None,
    /// `^\d+(G|M|K)?$`
    Bytes,
    /// `^\d+(h|m|s)?$`, and at least 100 as a number.
    Time,
    /// at least 0.
    NotNegative,
    /// `^(cluster|fork)(_mode)?$`
    ExecMode,
    /// Not in the schema, measured: PM2 refuses a cron expression its cron library cannot read
    /// (`@daily`, 8 fields, words) and any number but 0.
    Cron,
    /// Not in the schema, measured: an array with an item that is not a string stops PM2's daemon.
    StringItems,
}

struct Opt {
    name: &'static str,
    types: u8,
    aliases: &'static [&'static str],
    rule: Rule,
}

const fn opt(name: &'static str, types: u8, aliases: &'static [&'static str]) -> Opt {
    Opt {
        name,
        types,
        aliases,
        rule: Rule::None,
    }
}

const fn ruled(name: &'static str, types: u8, rule: Rule) -> Opt {
    Opt {
        name,
        types,
        aliases: &[],
        rule,
    }
}

/// Every option of PM2's schema but the pattern `^env_\S*$` (see [`check`]), in its order.
const OPTIONS: &[Opt] = &[
    opt("script", STRING, &["exec"]),
    opt("name", STRING, &[]),
    opt("name_prefix", STRING, &[]),
    opt("filter_env", BOOLEAN | ARRAY | STRING, &[]),
    opt("namespace", STRING, &[]),
    opt("install_url", STRING, &[]),
    opt("cwd", STRING, &[]),
    opt("args", ARRAY | STRING, &[]),
    opt("exec_interpreter", STRING, &["interpreter"]),
    opt(
        "node_args",
        ARRAY | STRING,
        &["interpreterArgs", "interpreter_args"],
    ),
    opt("out_file", STRING, &["out", "output", "out_log"]),
    opt(
        "error_file",
        STRING,
        &["error", "err", "err_file", "err_log"],
    ),
    opt("log_file", BOOLEAN | STRING, &["log"]),
    opt("disable_logs", BOOLEAN, &[]),
    opt("log_type", STRING, &[]),
    opt("log_date_format", STRING, &[]),
    opt("time", BOOLEAN, &[]),
    opt("env", OBJECT | STRING, &[]),
    ruled("max_memory_restart", STRING | NUMBER, Rule::Bytes),
    opt("pid_file", STRING, &["pid"]),
    opt("restart_delay", NUMBER, &[]),
    opt("exp_backoff_restart_delay", NUMBER, &[]),
    opt("source_map_support", BOOLEAN, &[]),
    opt("disable_source_map_support", BOOLEAN, &[]),
    opt("wait_ready", BOOLEAN, &[]),
    opt("instances", NUMBER, &[]),
    opt("kill_timeout", NUMBER, &[]),
    opt("shutdown_with_message", BOOLEAN, &[]),
    opt("listen_timeout", NUMBER, &[]),
    Opt {
        name: "cron_restart",
        types: STRING | NUMBER,
        aliases: &["cron"],
        rule: Rule::Cron,
    },
    opt("merge_logs", BOOLEAN, &["combine_logs"]),
    opt("vizion", BOOLEAN, &[]),
    opt("autostart", BOOLEAN, &[]),
    opt("autorestart", BOOLEAN, &[]),
    opt("stop_exit_codes", ARRAY | NUMBER, &[]),
    opt("watch_delay", NUMBER, &[]),
    ruled("watch", BOOLEAN | ARRAY | STRING, Rule::StringItems),
    opt("ignore_watch", ARRAY | STRING, &[]),
    opt("watch_options", OBJECT, &[]),
    ruled("min_uptime", NUMBER | STRING, Rule::Time),
    ruled("max_restarts", NUMBER, Rule::NotNegative),
    opt("execute_command", BOOLEAN, &[]),
    ruled("exec_mode", STRING, Rule::ExecMode),
    opt("force", BOOLEAN, &[]),
    opt("append_env_to_name", BOOLEAN, &[]),
    opt("post_update", ARRAY, &[]),
    opt("trace", BOOLEAN, &[]),
    opt("disable_trace", BOOLEAN, &[]),
    opt("v8", BOOLEAN, &[]),
    opt("event_loop_inspector", BOOLEAN, &[]),
    opt("deep_monitoring", BOOLEAN, &[]),
    opt("increment_var", STRING, &[]),
    opt("instance_var", STRING, &[]),
    opt("pmx", BOOLEAN | STRING, &[]),
    opt("automation", BOOLEAN, &[]),
    opt("treekill", BOOLEAN, &[]),
    opt("port", NUMBER, &[]),
    opt("username", STRING, &[]),
    opt("uid", NUMBER | STRING, &["user"]),
    opt("gid", NUMBER | STRING, &[]),
    opt("windowsHide", BOOLEAN, &[]),
    opt("kill_retry_time", NUMBER, &[]),
    opt("write", BOOLEAN, &[]),
    opt("io", OBJECT, &[]),
];

fn find(key: &str) -> Option<&'static Opt> {
    OPTIONS
        .iter()
        .find(|o| o.name == key || o.aliases.contains(&key))
}

/// The option `key` names: its own name, or the one it is an alias of.
pub fn canonical(key: &str) -> Option<&'static str> {
    find(key).map(|o| o.name)
}

/// `^env_\S*$`: the environments `pm2 start --env NAME` picks.
fn is_env_variant(key: &str) -> bool {
    key.strip_prefix("env_")
        .is_some_and(|rest| !rest.chars().any(crate::js::is_js_space))
}

fn type_names(types: u8) -> String {
    let names: Vec<&str> = [
        (STRING, "a string"),
        (NUMBER, "a number"),
        (BOOLEAN, "a boolean"),
        (ARRAY, "an array"),
        (OBJECT, "a table"),
    ]
    .iter()
    .filter(|(t, _)| types & t != 0)
    .map(|(_, n)| *n)
    .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// Why PM2 ignores option `key` of an app pm2-port writes, when it does: an unknown key, or an
/// alias whose option is set before PM2 looks at aliases.
pub fn ignored(key: &str) -> Option<&'static str> {
    match canonical(key) {
        _ if is_env_variant(key) => None,
        None => Some("it is none of PM2's app options"),
        Some("script") if key != "script" => Some("pm2-port sets `script`, which it stands for"),
        // Measured: PM2 sets `merge_logs` before it reads the alias, and `username` always.
        Some("merge_logs") if key != "merge_logs" => {
            Some("PM2 sets `merge_logs`, which it stands for, first")
        }
        Some("username") => Some("PM2 sets it to the user it runs as"),
        Some(_) => None,
    }
}

/// [`ignored`], for `key` among the other options `options` sets: PM2 reads an alias only when
/// its option is not set (to anything truthy).
pub fn ignored_among(key: &str, options: &serde_json::Map<String, Value>) -> Option<String> {
    if let Some(why) = ignored(key) {
        return Some(why.to_string());
    }
    let name = canonical(key)?;
    (name != key && options.get(name).is_some_and(truthy))
        .then(|| format!("`{name}`, which it stands for, is set"))
}

/// JavaScript's truthiness of a value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `value == true` in JavaScript (`1`, `"1"`, `true`): PM2 then drops `execute_command` unread.
fn loosely_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() == Some(1.0),
        Value::String(s) => crate::js::string_to_number(s) == Some(1.0),
        _ => false,
    }
}

/// Whether PM2 starts an app whose option `key` is `value`; `Err` says what PM2 takes there.
/// Options PM2 ignores pass (see [`ignored`]).
pub fn check(key: &str, value: &Value) -> Result<(), String> {
    if ignored(key).is_some() || (key == "execute_command" && loosely_true(value)) {
        return Ok(());
    }
    let (types, rule) = match find(key) {
        Some(o) => (o.types, o.rule),
        None => (OBJECT | STRING, Rule::None),
    };
    // As PM2 does: where a number is allowed, a string or an array that reads as one is one.
    let coerced = match value {
        Value::String(_) | Value::Array(_) if types & NUMBER != 0 => crate::js::pm2_number(value),
        _ => None,
    };
    let (kind, number) = match (value, coerced) {
        (_, Some(n)) => (NUMBER, Some(n)),
        (Value::String(_), None) => (STRING, None),
        (Value::Number(n), None) => (NUMBER, n.as_f64()),
        (Value::Bool(_), None) => (BOOLEAN, None),
        (Value::Array(_), None) => (ARRAY, None),
        // A TOML date, which reaches here as a table.
        (Value::Object(o), None) if o.contains_key(TOML_DATETIME) => {
            return Err("a date cannot be written to the ecosystem file; quote it".into());
        }
        (Value::Object(_), None) => (OBJECT, None),
        (Value::Null, None) => return Ok(()),
    };
    if types & kind == 0 {
        return Err(format!(
            "PM2 takes {} there, and refuses to start an app given {}",
            type_names(types),
            type_names(kind)
        ));
    }
    let digits_then = |s: &str, units: &[char]| {
        let body = s.strip_suffix(units).unwrap_or(s);
        !body.is_empty() && body.chars().all(|c| c.is_ascii_digit())
    };
    let text = value.as_str().filter(|_| kind == STRING);
    let bad = match (rule, text, number) {
        (Rule::Bytes, Some(s), _) if !digits_then(s, &['G', 'M', 'K']) => {
            Some("a number of bytes, or digits followed by K, M or G (`512M`)")
        }
        (Rule::Time, Some(s), _) if !digits_then(s, &['h', 'm', 's']) => {
            Some("milliseconds, or digits followed by h, m or s (`5s`)")
        }
        (Rule::Time, None, Some(n)) if n < 100.0 => Some("at least 100 (milliseconds)"),
        (Rule::NotNegative, None, Some(n)) if n < 0.0 => Some("0 or more"),
        (Rule::ExecMode, Some(s), _)
            if !["cluster", "fork", "cluster_mode", "fork_mode"].contains(&s) =>
        {
            Some("`fork` or `cluster`")
        }
        (Rule::Cron, Some(s), _) if !is_cron(s) => {
            Some("a cron expression of 5 or 6 fields (`0 4 * * *`)")
        }
        // 0, and NaN from `""` or `[]`, are no cron at all to PM2.
        (Rule::Cron, None, Some(n)) if n != 0.0 && !n.is_nan() => {
            Some("a cron expression of 5 or 6 fields (`0 4 * * *`), or 0 for none")
        }
        (Rule::StringItems, _, _)
            if value
                .as_array()
                .is_some_and(|items| !items.iter().all(Value::is_string)) =>
        {
            Some("a list of paths (strings)")
        }
        _ => None,
    };
    match bad {
        Some(wanted) => Err(format!(
            "PM2 takes {wanted} there, and refuses to start an app given {}",
            crate::text::escape(&value.to_string())
        )),
        None => Ok(()),
    }
}

/// The key serde gives a TOML date when it reaches a JSON value.
const TOML_DATETIME: &str = "$__toml_private_datetime";

/// A cron expression as PM2's cron library (croner) reads one: 5 fields (minute, hour, day of
/// month, month, day of week) or 6 (seconds first); in each, comma-separated `*`, values, ranges
/// `a-b` with `a <= b`, each with an optional `/step`; names for months and days of the week;
/// `?` in the day fields, `L` for the last day of the month (measured with PM2 7: `5#2`, `5L` and
/// `1W` are refused).
fn is_cron(s: &str) -> bool {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    #[derive(Clone, Copy, PartialEq)]
    enum F {
        Plain(u32, u32),
        Dom,
        Month,
        Dow,
    }
    let fields: Vec<&str> = s.split([' ', '\t']).filter(|f| !f.is_empty()).collect();
    let kinds: &[F] = match fields.len() {
        5 => &[F::Plain(0, 59), F::Plain(0, 23), F::Dom, F::Month, F::Dow],
        6 => &[
            F::Plain(0, 59),
            F::Plain(0, 59),
            F::Plain(0, 23),
            F::Dom,
            F::Month,
            F::Dow,
        ],
        _ => return false,
    };
    let value = |kind: F, v: &str| -> Option<u32> {
        let upper = v.to_ascii_uppercase();
        let named = match kind {
            F::Month => MONTHS
                .iter()
                .position(|m| *m == upper)
                .map(|i| i as u32 + 1),
            F::Dow => DAYS.iter().position(|d| *d == upper).map(|i| i as u32),
            _ => None,
        };
        let (lo, hi) = match kind {
            F::Plain(lo, hi) => (lo, hi),
            F::Dom => (1, 31),
            F::Month => (1, 12),
            F::Dow => (0, 7),
        };
        let n = named.or_else(|| {
            (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.parse().ok())
                .flatten()
        })?;
        (lo..=hi).contains(&n).then_some(n)
    };
    let part_ok = |kind: F, part: &str| -> bool {
        let (base, step) = match part.split_once('/') {
            Some((b, st)) => (b, Some(st)),
            None => (part, None),
        };
        if let Some(st) = step
            && !st.parse::<u32>().is_ok_and(|n| n >= 1)
        {
            return false;
        }
        match base {
            "*" => true,
            "?" => matches!(kind, F::Dom | F::Dow) && step.is_none(),
            "L" => kind == F::Dom && step.is_none(),
            _ => match base.split_once('-') {
                Some((a, b)) => {
                    matches!((value(kind, a), value(kind, b)), (Some(a), Some(b)) if a <= b)
                }
                None => value(kind, base).is_some(),
            },
        }
    };
    fields
        .iter()
        .zip(kinds)
        .all(|(field, kind)| field.split(',').all(|part| part_ok(*kind, part)))
}

/// One option as PM2's schema states it: its types (the schema's names), its aliases, the pattern
/// a string must match and the least number; for the test that compares this table with the
/// pinned PM2's `lib/API/schema.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaEntry {
    pub name: &'static str,
    pub types: Vec<&'static str>,
    pub aliases: Vec<&'static str>,
    pub regex: Option<&'static str>,
    pub min: Option<f64>,
}

/// [`SchemaEntry`] of every option, in the schema's order.
pub fn schema() -> Vec<SchemaEntry> {
    OPTIONS
        .iter()
        .map(|o| SchemaEntry {
            name: o.name,
            types: [
                (BOOLEAN, "boolean"),
                (ARRAY, "array"),
                (NUMBER, "number"),
                (OBJECT, "object"),
                (STRING, "string"),
            ]
            .iter()
            .filter(|(t, _)| o.types & t != 0)
            .map(|(_, n)| *n)
            .collect(),
            aliases: o.aliases.to_vec(),
            regex: match o.rule {
                Rule::Bytes => Some(r"^\d+(G|M|K)?$"),
                Rule::Time => Some(r"^\d+(h|m|s)?$"),
                Rule::ExecMode => Some("^(cluster|fork)(_mode)?$"),
                Rule::None | Rule::NotNegative | Rule::Cron | Rule::StringItems => None,
            },
            min: match o.rule {
                Rule::Time => Some(100.0),
                Rule::NotNegative => Some(0.0),
                _ => None,
            },
        })
        .collect()
}

/// The option PM2 knows that `key` is likely a slip of (a small edit away), for a hint.
pub fn suggest(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    OPTIONS
        .iter()
        .flat_map(|o| std::iter::once(o.name).chain(o.aliases.iter().copied()))
        .map(|name| (edit_distance(&lower, &name.to_ascii_lowercase()), name))
        .filter(|(d, name)| *d <= 2 && *d < name.len() / 2 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| canonical(name).unwrap_or(name))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_as_pm2_checks_them() {
        assert!(check("autorestart", &json!(false)).is_ok());
        assert_eq!(
            check("autorestart", &json!("yes")).unwrap_err(),
            "PM2 takes a boolean there, and refuses to start an app given a string"
        );
        // A string that reads as a number is one, where PM2 takes a number.
        assert!(check("restart_delay", &json!("1000")).is_ok());
        assert!(check("restart_delay", &json!(" 0x10 ")).is_ok());
        assert!(check("restart_delay", &json!("1s")).is_err());
        assert!(check("restart_delay", &json!(true)).is_err());
        assert!(check("watch", &json!(["src"])).is_ok());
        assert!(check("watch", &json!({"a": 1})).is_err());
        assert!(check("env_production", &json!({"A": "1"})).is_ok());
        assert!(check("env_production", &json!(1)).is_err());
        // Aliases are their option.
        assert!(check("interpreter", &json!(5)).is_err());
        assert!(check("cron", &json!("garbage")).is_err());
        // Unknown options pass here; `known` tells them.
        assert!(check("autorestat", &json!("x")).is_ok());
        assert_eq!(
            ignored("autorestat"),
            Some("it is none of PM2's app options")
        );
        assert_eq!(ignored("merge_logs"), None);
        assert_eq!(ignored("env_staging"), None);
        // Measured with PM2 7: these aliases are set over before PM2 reads them.
        assert!(ignored("combine_logs").is_some() && ignored("exec").is_some());
        assert!(check("combine_logs", &json!("x")).is_ok());
        // JavaScript's `\s` is not Rust's whitespace: U+0085 is a name character to PM2, U+FEFF
        // a space.
        assert!(check("env_\u{85}x", &json!(5)).is_err());
        assert_eq!(
            ignored("env_\u{feff}x"),
            Some("it is none of PM2's app options")
        );
    }

    /// Each as PM2 7 answered `pm2 start` (the attack's cases).
    #[test]
    fn coercions_and_measured_rules() {
        for (key, value, starts) in [
            ("min_uptime", json!("0x100"), false),
            ("min_uptime", json!("0b11111111"), false),
            ("min_uptime", json!(""), true),
            ("min_uptime", json!([200]), true),
            ("restart_delay", json!([5]), true),
            ("restart_delay", json!([]), true),
            ("restart_delay", json!(["12"]), true),
            ("kill_timeout", json!([[3]]), true),
            ("restart_delay", json!([1, 2]), false),
            ("cron_restart", json!("garbage"), false),
            ("cron_restart", json!(5), false),
            ("cron_restart", json!(0), true),
            ("cron_restart", json!("0"), true),
            ("cron_restart", json!("* * * * * * * *"), false),
            ("cron_restart", json!("@daily"), false),
            ("cron_restart", json!("0 0 * * MON"), true),
            ("cron_restart", json!("*/5 * * * * *"), true),
            ("cron_restart", json!("x\n[PM2][ERROR] forged"), false),
            // Croner's ranges and forms (the second attack, against PM2 7).
            ("cron_restart", json!("60 * * * *"), false),
            ("cron_restart", json!("* 24 * * *"), false),
            ("cron_restart", json!("0 0 32 * *"), false),
            ("cron_restart", json!("0 0 * 13 *"), false),
            ("cron_restart", json!("0 0 * * 8"), false),
            ("cron_restart", json!("*/0 * * * *"), false),
            ("cron_restart", json!("5-1 * * * *"), false),
            ("cron_restart", json!("- * * * *"), false),
            ("cron_restart", json!("MON * * * *"), false),
            ("cron_restart", json!("L * * * *"), false),
            ("cron_restart", json!("0 0 1W * *"), false),
            ("cron_restart", json!("0 0 * * 5#6"), false),
            ("cron_restart", json!("0 0 * * * 2024"), false),
            ("cron_restart", json!("0 0 L * *"), true),
            ("cron_restart", json!("0 0 ? * *"), true),
            ("cron_restart", json!("0 0 1 JAN *"), true),
            ("cron_restart", json!("0 0 * * 1-5"), true),
            ("cron_restart", json!("0 0 * * 5#2"), false),
            ("cron_restart", json!("0 0 * * 5L"), false),
            ("cron_restart", json!("0 0 * * 7"), true),
            ("cron_restart", json!("5/15 * * * *"), true),
            ("cron_restart", json!("0,30 9-17/2 * * mon-fri"), true),
            ("watch", json!([1]), false),
            ("watch", json!([["a"]]), false),
            ("watch", json!(["src", "lib"]), true),
            ("ignore_watch", json!([1]), true),
            ("exec", json!(5), true),
            ("username", json!(5), true),
            ("execute_command", json!(1), true),
            ("execute_command", json!("1"), true),
            ("execute_command", json!(0), false),
            ("cron_restart", json!(""), true),
            ("cron_restart", json!([]), true),
        ] {
            assert_eq!(check(key, &value).is_ok(), starts, "{key} = {value}");
        }
        assert_eq!(
            check(
                "watch_options",
                &json!({"$__toml_private_datetime": "1979-05-27"})
            )
            .unwrap_err(),
            "a date cannot be written to the ecosystem file; quote it"
        );
    }

    #[test]
    fn rules_as_pm2_checks_them() {
        assert!(check("max_memory_restart", &json!("512M")).is_ok());
        assert!(check("max_memory_restart", &json!(1024)).is_ok());
        assert_eq!(
            check("max_memory_restart", &json!("512 MB")).unwrap_err(),
            "PM2 takes a number of bytes, or digits followed by K, M or G (`512M`) there, and refuses to start an app given \"512 MB\""
        );
        assert!(check("min_uptime", &json!("5s")).is_ok());
        assert!(check("min_uptime", &json!("5 seconds")).is_err());
        assert!(check("min_uptime", &json!(50)).is_err());
        assert!(check("min_uptime", &json!("50")).is_err());
        assert!(check("min_uptime", &json!(100)).is_ok());
        assert!(check("max_restarts", &json!(-1)).is_err());
        assert!(check("exec_mode", &json!("fork_mode")).is_ok());
        assert!(check("exec_mode", &json!("forked")).is_err());
    }

    #[test]
    fn an_alias_beside_its_option_is_ignored() {
        let options = |v: Value| v.as_object().unwrap().clone();
        let set = options(json!({"log_file": "x.log", "log": 5}));
        assert_eq!(
            ignored_among("log", &set).as_deref(),
            Some("`log_file`, which it stands for, is set")
        );
        assert_eq!(ignored_among("log_file", &set), None);
        let unset = options(json!({"log_file": "", "log": 5}));
        assert_eq!(ignored_among("log", &unset), None);
        assert!(check("log", &json!(5)).is_err());
    }

    #[test]
    fn slips_get_a_hint() {
        assert_eq!(suggest("autorestat"), Some("autorestart"));
        assert_eq!(suggest("Watch"), Some("watch"));
        assert_eq!(suggest("combine_log"), Some("merge_logs"));
        assert_eq!(suggest("colour"), None);
        assert_eq!(suggest("x"), None);
    }
}
