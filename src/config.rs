//! `buildflowz.toml`: a project's optional settings (product.md section 4).
//!
//! Unknown keys are errors, since a typo must not pass silently; every error names the file, line
//! and column.

use std::path::Path;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::InputError;
use crate::ports::PortRange;

pub const FILE_NAME: &str = "buildflowz.toml";

/// App options pm2-port writes itself; `[pm2]` may not override them.
const RESERVED_PM2_KEYS: &[&str] = &["name", "cwd", "script", "args", "env"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// PM2 app name.
    pub name: Option<String>,
    /// Dev command, a shell command line; skips detection.
    pub command: Option<String>,
    /// Preferred port.
    #[serde(default, deserialize_with = "de_port")]
    pub port: Option<u16>,
    /// Allocation range for this project.
    #[serde(default, deserialize_with = "de_range")]
    pub range: Option<PortRange>,
    /// Force the flox wrapper on or off; default: on when `.flox/env/manifest.toml` exists.
    pub flox: Option<bool>,
    /// Extra environment for the app.
    #[serde(default, deserialize_with = "de_env")]
    pub env: Map<String, Value>,
    /// Extra PM2 app options, merged into every app object.
    #[serde(default, deserialize_with = "de_pm2")]
    pub pm2: Map<String, Value>,
    /// Several apps in one project, each with its own port.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
}

/// One `[[apps]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// PM2 app name; default: the name of its directory.
    pub name: Option<String>,
    /// Its directory, relative to the project; default: the project's.
    pub dir: Option<String>,
    /// Dev command; default: detected in `dir`.
    pub command: Option<String>,
    /// Preferred port.
    #[serde(default, deserialize_with = "de_port")]
    pub port: Option<u16>,
    /// Extra environment, over the project's `[env]`.
    #[serde(default, deserialize_with = "de_env")]
    pub env: Map<String, Value>,
}

fn de_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let n = i64::deserialize(d)?;
    match u16::try_from(n) {
        Ok(p) if p > 0 => Ok(Some(p)),
        _ => Err(serde::de::Error::custom(format!(
            "port {n} is out of bounds; a port is 1 to 65535"
        ))),
    }
}

fn de_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PortRange>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

/// A key JavaScript would take as the object's prototype instead of a property.
fn check_proto<E: serde::de::Error>(map: &Map<String, Value>, table: &str) -> Result<(), E> {
    if map.contains_key("__proto__") {
        return Err(E::custom(format!(
            "`{table}.__proto__` would set the object's prototype in JavaScript, not a value"
        )));
    }
    Ok(())
}

fn de_env<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    let map = Map::<String, Value>::deserialize(d)?;
    check_proto(&map, "env")?;
    if map.contains_key("PORT") {
        return Err(serde::de::Error::custom(
            "`PORT` is set by pm2-port; use the top-level `port` key to prefer a port",
        ));
    }
    for (key, value) in &map {
        if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            return Err(serde::de::Error::custom(format!(
                "`env.{key}` must be a string, number or boolean"
            )));
        }
    }
    Ok(map)
}

fn de_pm2<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    let map = Map::<String, Value>::deserialize(d)?;
    check_proto(&map, "pm2")?;
    let cluster = map
        .get("exec_mode")
        .and_then(Value::as_str)
        .is_some_and(|m| m.starts_with("cluster"));
    let several = map.get("instances").is_some_and(|v| v.as_i64() != Some(1));
    if cluster || several {
        return Err(serde::de::Error::custom(
            "pm2-port runs the dev command through bash, which PM2 can only fork once: `pm2.exec_mode = \"cluster\"` and `pm2.instances` are not supported (several instances would fight over one port)",
        ));
    }
    if let Some(key) = map.keys().find(|k| RESERVED_PM2_KEYS.contains(&k.as_str())) {
        return Err(serde::de::Error::custom(format!(
            "`pm2.{key}` is written by pm2-port; set `name`, `command` or `[env]` at the top level instead"
        )));
    }
    Ok(map)
}

/// Parse the text of `buildflowz.toml` at `path` (the path is for messages only).
pub fn parse(path: &Path, text: &str) -> Result<ProjectConfig, InputError> {
    let error = |offset: usize, message: String| {
        let (line, column) = line_col(text, offset);
        InputError::Manifest {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let config: ProjectConfig = toml_edit::de::from_str(text).map_err(|err| {
        error(
            err.span().map_or(0, |s| s.start),
            err.message().trim().to_string(),
        )
    })?;
    if !config.apps.is_empty() {
        for key in ["name", "command", "port"] {
            if let Some(at) = top_level_key(text, key) {
                return Err(error(
                    at,
                    format!(
                        "with [[apps]], set `{key}` inside each [[apps]] table, not at the top"
                    ),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, app) in config.apps.iter().enumerate() {
            let name = app.name.clone().unwrap_or_else(|| {
                let dir = app.dir.as_deref().unwrap_or(".");
                Path::new(dir)
                    .file_name()
                    .map_or_else(|| dir.to_string(), |n| n.to_string_lossy().into_owned())
            });
            if !seen.insert(name.clone()) {
                let at = nth_table(text, "apps", i).unwrap_or(0);
                return Err(error(
                    at,
                    format!("two [[apps]] are named `{name}`; give each a distinct `name`"),
                ));
            }
        }
    }
    Ok(config)
}

/// The offset of a top-level `key = ...` line (before the first table header).
fn top_level_key(text: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            return None;
        }
        let rest = [format!("\"{key}\""), format!("'{key}'"), key.to_string()]
            .iter()
            .find_map(|k| trimmed.strip_prefix(k.as_str()));
        if rest.is_some_and(|r| r.trim_start().starts_with('=')) {
            return Some(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

/// The offset of the `i`-th `[[name]]` header.
fn nth_table(text: &str, name: &str, i: usize) -> Option<usize> {
    let header = format!("[[{name}]]");
    text.match_indices(&header).nth(i).map(|(at, _)| at)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("/p/buildflowz.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn full_example_parses() {
        let c = parse(
            Path::new("b.toml"),
            r#"
name = "shop"               # PM2 app name
command = "pnpm dev"
port = 3005
range = "3000-3100"
flox = true

[env]
NODE_ENV = "development"

[pm2]
max_memory_restart = "1G"
"#,
        )
        .unwrap();
        assert_eq!(c.name.as_deref(), Some("shop"));
        assert_eq!(c.port, Some(3005));
        assert_eq!(c.range, Some(PortRange::DEFAULT));
        assert_eq!(c.env["NODE_ENV"], "development");
        assert_eq!(c.pm2["max_memory_restart"], "1G");
    }

    #[test]
    fn unknown_key_names_file_line_column() {
        let e = err("name = \"a\"\nprot = 3000\n");
        assert!(
            e.starts_with("`/p/buildflowz.toml`:2:1: unknown field `prot`"),
            "{e}"
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let e = err("name = \"a\"\ncommand = \n");
        assert!(e.starts_with("`/p/buildflowz.toml`:2:"), "{e}");
    }

    #[test]
    fn apps_tables() {
        let c = parse(
            Path::new("b.toml"),
            "[env]\nA = \"1\"\n\n[[apps]]\nname = \"web\"\ndir = \"packages/web\"\n\n[[apps]]\ndir = \"packages/api\"\nport = 4000\n[apps.env]\nB = 2\n",
        )
        .unwrap();
        assert_eq!(c.apps.len(), 2);
        assert_eq!(c.apps[1].port, Some(4000));
        assert_eq!(c.apps[1].env["B"], 2);
        let e = err("command = \"x\"\n[[apps]]\nname = \"a\"\n");
        assert!(
            e.starts_with("`/p/buildflowz.toml`:1:1: with [[apps]], set `command`"),
            "{e}"
        );
        let e = err("\"port\" = 3050\n[[apps]]\nname = \"a\"\n");
        assert!(
            e.starts_with("`/p/buildflowz.toml`:1:1: with [[apps]], set `port`"),
            "{e}"
        );
        let e = err("[[apps]]\nname = \"a\"\n[[apps]]\ndir = \"x/a\"\n");
        assert!(
            e.starts_with("`/p/buildflowz.toml`:3:1: two [[apps]] are named `a`"),
            "{e}"
        );
        assert!(err("[[apps]]\nnmae = \"a\"\n").contains("unknown field `nmae`"));
    }

    #[test]
    fn bad_values() {
        assert!(err("port = 70000").contains("out of bounds"));
        assert!(err("range = \"5000-4000\"").contains("not a port range"));
        assert!(err("[env]\nPORT = 1").contains("`PORT` is set by pm2-port"));
        assert!(err("[pm2]\nscript = \"x\"").contains("`pm2.script`"));
        assert!(err("[pm2]\n__proto__ = \"x\"").contains("`pm2.__proto__`"));
        assert!(err("[pm2]\nexec_mode = \"cluster\"").contains("not supported"));
        assert!(err("[pm2]\ninstances = 4").contains("not supported"));
        assert!(parse(Path::new("b.toml"), "[pm2]\ninstances = 1\n").is_ok());
        assert!(err("[env]\n__proto__ = \"x\"").contains("`env.__proto__`"));
    }
}
