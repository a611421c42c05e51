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
    opt("cron_restart", STRING | NUMBER, &["cron"]),
    opt("merge_logs", BOOLEAN, &["combine_logs"]),
    opt("vizion", BOOLEAN, &[]),
    opt("autostart", BOOLEAN, &[]),
    opt("autorestart", BOOLEAN, &[]),
    opt("stop_exit_codes", ARRAY | NUMBER, &[]),
    opt("watch_delay", NUMBER, &[]),
    opt("watch", BOOLEAN | ARRAY | STRING, &[]),
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

/// Whether PM2 keeps an app option called `key` (an option, an alias of one, or `env_NAME`).
pub fn known(key: &str) -> bool {
    find(key).is_some() || is_env_variant(key)
}

/// `^env_\S*$`: the environments `pm2 start --env NAME` picks.
fn is_env_variant(key: &str) -> bool {
    key.strip_prefix("env_")
        .is_some_and(|rest| !rest.chars().any(char::is_whitespace))
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

/// Whether PM2 starts an app whose option `key` is `value`; `Err` says what PM2 takes there.
/// Options PM2 does not know pass (see [`known`]).
pub fn check(key: &str, value: &Value) -> Result<(), String> {
    let (types, rule) = match find(key) {
        Some(o) => (o.types, o.rule),
        None if is_env_variant(key) => (OBJECT | STRING, Rule::None),
        None => return Ok(()),
    };
    // As PM2 does: a string that reads as a number is one where a number is allowed.
    let (kind, number) = match value {
        Value::String(s) if types & NUMBER != 0 => match crate::js::string_to_number(s) {
            Some(n) => (NUMBER, Some(n)),
            None => (STRING, None),
        },
        Value::String(_) => (STRING, None),
        Value::Number(n) => (NUMBER, n.as_f64()),
        Value::Bool(_) => (BOOLEAN, None),
        Value::Array(_) => (ARRAY, None),
        Value::Object(_) => (OBJECT, None),
        Value::Null => return Ok(()),
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
        _ => None,
    };
    match bad {
        Some(wanted) => Err(format!(
            "PM2 takes {wanted} there, and refuses to start an app given {value}"
        )),
        None => Ok(()),
    }
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
                Rule::None | Rule::NotNegative => None,
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
        assert!(check("combine_logs", &json!("x")).is_err());
        // Unknown options pass here; `known` tells them.
        assert!(check("autorestat", &json!("x")).is_ok());
        assert!(!known("autorestat") && known("merge_logs") && known("env_staging"));
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
    fn slips_get_a_hint() {
        assert_eq!(suggest("autorestat"), Some("autorestart"));
        assert_eq!(suggest("Watch"), Some("watch"));
        assert_eq!(suggest("combine_log"), Some("merge_logs"));
        assert_eq!(suggest("colour"), None);
        assert_eq!(suggest("x"), None);
    }
}
