//! `buildflowz.toml`: a project's optional settings (docs/product.md section 4).
//!
//! Unknown keys are errors, since a typo must not pass silently; every error names the file, line
//! and column.

use std::net::{IpAddr, Ipv4Addr};
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
    #[serde(default, deserialize_with = "de_command")]
    pub command: Option<String>,
    /// Preferred port.
    #[serde(default, deserialize_with = "de_port")]
    pub port: Option<u16>,
    /// Allocation range for this project.
    #[serde(default, deserialize_with = "de_range")]
    pub range: Option<PortRange>,
    /// Force the flox wrapper on or off; default: on when `.flox/env/manifest.toml` exists.
    pub flox: Option<bool>,
    /// The address the apps' dev servers listen on, for every app; see [`ProjectConfig::host_for`].
    #[serde(default, deserialize_with = "de_host")]
    pub host: Option<IpAddr>,
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
    #[serde(default, deserialize_with = "de_command")]
    pub command: Option<String>,
    /// Preferred port.
    #[serde(default, deserialize_with = "de_port")]
    pub port: Option<u16>,
    /// The address this app's dev server listens on, over the top-level `host`.
    #[serde(default, deserialize_with = "de_host")]
    pub host: Option<IpAddr>,
    /// Extra environment, over the project's `[env]`.
    #[serde(default, deserialize_with = "de_env")]
    pub env: Map<String, Value>,
}

fn de_command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(serde::de::Error::custom(
            "`command` is empty; give the line that starts the dev server, like \"npm run dev\", or leave the key out to detect it",
        ));
    }
    Ok(Some(s))
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

fn de_host<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "`host = {s:?}` is not an IP address; write one, like \"127.0.0.1\" (this machine only, the default) or \"0.0.0.0\" (every address: other machines reach the app)"
        ))
    })
}

fn de_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PortRange>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

/// The largest integer JavaScript holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A value that would not come back from the ecosystem file as it was written: a key JavaScript
/// takes as the object's prototype (`__proto__`, at any depth), or an integer beyond what a
/// JavaScript number holds exactly.
fn check_js<E: serde::de::Error>(value: &Value, at: &str) -> Result<(), E> {
    match value {
        // How serde hands over a TOML date.
        Value::Object(map) if map.contains_key("$__toml_private_datetime") => {
            return Err(E::custom(format!(
                "`{at}` is a TOML date, which the ecosystem file cannot hold; quote it"
            )));
        }
        Value::Object(map) => {
            for (key, v) in map {
                if key == "__proto__" {
                    return Err(E::custom(format!(
                        "`{at}.__proto__` would set the object's prototype in JavaScript, not a value"
                    )));
                }
                check_js(v, &format!("{at}.{}", toml_key(key)))?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_js(v, &format!("{at}[{i}]"))?;
            }
        }
        Value::Number(n) if n.as_i64().is_some_and(|i| i.abs() > MAX_SAFE_INTEGER) => {
            return Err(E::custom(format!(
                "`{at}` = {n} is beyond the integers JavaScript holds exactly (±{MAX_SAFE_INTEGER}); write it as a string: \"{n}\""
            )));
        }
        // TOML has no null: this was `nan` or `inf`, which JSON and the file cannot hold.
        Value::Null => {
            return Err(E::custom(format!(
                "`{at}` is not a finite number; JavaScript's ecosystem file cannot hold it"
            )));
        }
        _ => {}
    }
    Ok(())
}

fn check_proto<E: serde::de::Error>(map: &Map<String, Value>, table: &str) -> Result<(), E> {
    check_js(&Value::Object(map.clone()), table)
}

fn de_env<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    let map = Map::<String, Value>::deserialize(d)?;
    check_proto(&map, "env")?;
    if map.contains_key("PORT") {
        return Err(serde::de::Error::custom(
            "`env.PORT` is set by pm2-port; use the top-level `port` key to prefer a port",
        ));
    }
    for (key, value) in &map {
        if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            return Err(serde::de::Error::custom(format!(
                "`env.{}` must be a string, number or boolean",
                toml_key(key)
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
    // As PM2 reads it: `"1"` and `1.0` are one instance, `"max"` one per core.
    let several = map
        .get("instances")
        .is_some_and(|v| crate::js::pm2_number(v) != Some(1.0));
    if cluster || several {
        return Err(serde::de::Error::custom(
            "pm2-port runs the dev command through bash, which PM2 can only fork once: `pm2.exec_mode = \"cluster\"` and `pm2.instances` are not supported (several instances would fight over one port)",
        ));
    }
    if let Some(key) = map.keys().find(|k| RESERVED_PM2_KEYS.contains(&k.as_str())) {
        return Err(serde::de::Error::custom(format!(
            "`pm2.{}` is written by pm2-port; set `name`, `command` or `[env]` at the top level instead",
            toml_key(key)
        )));
    }
    for (key, value) in &map {
        // PM2 copies its `port` option over `env.PORT`.
        if crate::pm2::options::canonical(key) == Some("port") {
            return Err(serde::de::Error::custom(format!(
                "`pm2.{}` would replace the PORT pm2-port gives the app; use the top-level `port` key to prefer a port",
                toml_key(key)
            )));
        }
        if crate::pm2::options::ignored_among(key, &map).is_some() {
            continue;
        }
        if let Err(why) = crate::pm2::options::check(key, value) {
            return Err(serde::de::Error::custom(format!(
                "`pm2.{}`: {why}",
                toml_key(key)
            )));
        }
    }
    Ok(map)
}

/// The address an app's dev server listens on when `host` is not set: loopback, which the SSH
/// tunnel reaches and other machines do not.
pub const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

impl ProjectConfig {
    /// The address the user asked the dev server of `app` (one of [`ProjectConfig::apps`], or
    /// `None` for the single app of a project without `[[apps]]`) to listen on: the app's `host`,
    /// else the top-level one. `None` when neither is set: pass [`DEFAULT_HOST`] to frameworks
    /// that take a host. A `host` that is not loopback (`"0.0.0.0"` above all) opts the app out
    /// of loopback on purpose, and `doctor` takes it as the acknowledgement of the exposure.
    pub fn host_for(&self, app: Option<&AppConfig>) -> Option<IpAddr> {
        app.and_then(|a| a.host).or(self.host)
    }

    /// The `[[apps]]` table of the PM2 app `name` working in `cwd`: the one named `name`, else
    /// the first unnamed one whose `dir` is `cwd` (a name taken from the directory may have been
    /// made unique on the server, `web-mono`; `dir_of` resolves a table's `dir`, relative to the
    /// project, to the directory PM2 sees). `None` without `[[apps]]` or when no table matches.
    pub fn app_for(
        &self,
        name: &str,
        cwd: &Path,
        dir_of: impl Fn(&str) -> Option<std::path::PathBuf>,
    ) -> Option<&AppConfig> {
        self.apps
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .or_else(|| {
                // A table with a `name` of its own is another app, whatever its `dir`.
                self.apps.iter().find(|a| {
                    a.name.is_none()
                        && dir_of(a.dir.as_deref().unwrap_or(".")).is_some_and(|d| d == cwd)
                })
            })
    }
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
        let near = err.span().map_or(0, |s| s.start);
        let message = err.message().trim().to_string();
        error(locate(text, near, &message).unwrap_or(near), message)
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

/// `key` as a TOML path names it: bare when it can be (`watch`), else quoted (`"a.b"`), so that
/// a message's path reads back as the keys it names.
pub fn toml_key(key: &str) -> std::borrow::Cow<'_, str> {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        std::borrow::Cow::Borrowed(key)
    } else {
        std::borrow::Cow::Owned(serde_json::to_string(key).unwrap_or_default())
    }
}

/// One step of a message's path: a key, or an array's index.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The path an error message starts to quote (`` `pm2."env_x.y"[2]` must ``): its keys (bare or
/// quoted as [`toml_key`] writes them) and indexes, up to the closing backtick. `None` when the
/// text there is not such a path, or more follows the backtick than a message would put there.
fn quoted_path(message: &str) -> Option<Vec<Step>> {
    let mut rest = &message[message.find('`')? + 1..];
    let mut steps = Vec::new();
    loop {
        if rest.starts_with('"') {
            // A JSON string is a TOML basic string here: find its end, then read it.
            let mut escaped = false;
            let end = rest[1..].char_indices().find_map(|(i, c)| {
                let end = !escaped && c == '"';
                escaped = !escaped && c == '\\';
                end.then_some(i + 2)
            })?;
            steps.push(Step::Key(serde_json::from_str(&rest[..end]).ok()?));
            rest = &rest[end..];
        } else {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            if len == 0 {
                return None;
            }
            steps.push(Step::Key(rest[..len].to_string()));
            rest = &rest[len..];
        }
        while let Some(index) = rest.strip_prefix('[') {
            let (digits, after) = index.split_once(']')?;
            steps.push(Step::Index(digits.parse().ok()?));
            rest = after;
        }
        if let Some(after) = rest.strip_prefix('.') {
            rest = after;
            continue;
        }
        let after = rest.strip_prefix('`')?;
        return after
            .chars()
            .next()
            .is_none_or(|c| c == ' ' || c == ':' || c == ',')
            .then_some(steps);
    }
}

/// Which `[[apps]]` table (its index) the text at `near` is in: the one whose header, or a header
/// of its subtables (`[apps.env]`), comes last before `near`; `None` in the document's own tables.
fn apps_table_at(text: &str, near: usize) -> Option<usize> {
    let mut apps = 0;
    let mut in_app = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > near {
            break;
        }
        offset += line.len();
        // A header's comment is not part of it.
        let header: String = line
            .split('#')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if header == "[[apps]]" {
            apps += 1;
            in_app = true;
        } else if header.starts_with('[') {
            in_app = header.starts_with("[apps.") || header.starts_with("[[apps.");
        }
    }
    in_app.then(|| apps.max(1) - 1)
}

/// Where the key that an error's message names (`env.B`, `pm2.watch[0]`) is written, looked up in
/// the table that the error's span `near` falls in (the document, or the `[[apps]]` table it is
/// in): the checks of a whole table (`[env]`, `[pm2]`) can only point serde at the table itself.
fn locate(text: &str, near: usize, message: &str) -> Option<usize> {
    use toml_edit::{Item, TableLike, Value};
    let path = quoted_path(message)?;
    // A top-level key's error already points at its value.
    if path.len() < 2 {
        return None;
    }
    let doc = toml_edit::Document::parse(text).ok()?;
    let Step::Key(first) = &path[0] else {
        return None;
    };
    // The table the error is in: the one (the document, or an `[[apps]]` table) whose item for the
    // path's first key is where serde pointed (its header, or its inline value); else by the
    // headers before that place.
    let mut scopes: Vec<&dyn TableLike> = vec![doc.as_table()];
    if let Some(apps) = doc.get("apps").and_then(Item::as_array_of_tables) {
        scopes.extend(apps.iter().map(|t| t as &dyn TableLike));
    }
    let pointed = scopes.iter().position(|t| {
        t.get(first)
            .and_then(Item::span)
            .is_some_and(|s| s.start == near || s.contains(&near))
    });
    let mut table: &dyn TableLike = match (pointed, apps_table_at(text, near)) {
        (Some(i), _) => scopes[i],
        (None, Some(i)) => *scopes.get(i + 1)?,
        (None, None) => doc.as_table(),
    };
    let mut value: Option<&Value> = None;
    let mut at = None;
    for step in &path {
        match step {
            Step::Key(name) => {
                let within: &dyn TableLike = match value {
                    Some(v) => v.as_inline_table()?,
                    None => table,
                };
                let (key, item) = within.get_key_value(name)?;
                at = Some(key.span()?.start);
                match item {
                    Item::Value(v) => value = Some(v),
                    _ => {
                        table = item.as_table_like()?;
                        value = None;
                    }
                }
            }
            Step::Index(i) => {
                let v = value?.as_array()?.get(*i)?;
                at = Some(v.span()?.start);
                value = Some(v);
            }
        }
    }
    at
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

/// The offset of the `i`-th `[[name]]` table's header (as TOML reads it: not a line of a string or
/// a comment, whatever its spacing or quotes).
fn nth_table(text: &str, name: &str, i: usize) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let table = doc.get(name)?.as_array_of_tables()?.get(i)?;
    Some(table.span()?.start)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

// The answer to the prompt for a dev command (`sys::prompt`), as buildflowz.toml settings.

/// What the user chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Command(String),
    /// One app per workspace package (relative directories).
    Apps(Vec<String>),
}

impl Answer {
    /// Apply the answer to the project's settings, as if buildflowz.toml had said it.
    pub fn apply(&self, config: &mut ProjectConfig) {
        match self {
            Answer::Command(cmd) => config.command = Some(cmd.clone()),
            Answer::Apps(dirs) => {
                config.apps = dirs
                    .iter()
                    .map(|d| AppConfig {
                        dir: Some(d.clone()),
                        ..AppConfig::default()
                    })
                    .collect();
            }
        }
    }
}

/// The text of buildflowz.toml with the answer added (pure, for tests).
pub fn answer_edited(text: &str, answer: &Answer) -> anyhow::Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse()?;
    match answer {
        Answer::Command(cmd) => {
            doc["command"] = toml_edit::value(cmd.as_str());
        }
        Answer::Apps(dirs) => {
            let mut apps = toml_edit::ArrayOfTables::new();
            for dir in dirs {
                let mut t = toml_edit::Table::new();
                t["dir"] = toml_edit::value(dir.as_str());
                apps.push(t);
            }
            doc["apps"] = toml_edit::Item::ArrayOfTables(apps);
        }
    }
    Ok(doc.to_string())
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
    fn host_is_an_ip_address_at_the_top_and_in_apps() {
        let c = parse(Path::new("b.toml"), "host = \"0.0.0.0\"\n").unwrap();
        assert_eq!(c.host, Some("0.0.0.0".parse().unwrap()));
        assert_eq!(c.host_for(None), c.host);
        assert_eq!(
            parse(Path::new("b.toml"), "name = \"a\"\n")
                .unwrap()
                .host_for(None),
            None
        );
        assert_eq!(DEFAULT_HOST.to_string(), "127.0.0.1");

        let text = "host = \"::\"\n\n[[apps]]\ndir = \"packages/web\"\n\n[[apps]]\nname = \"api\"\ndir = \"packages/api\"\nhost = \"127.0.0.1\"\n\n[[apps]]\nname = \"worker\"\ndir = \"packages/web\"\nhost = \"10.0.0.5\"\n";
        let c = parse(Path::new("b.toml"), text).unwrap();
        let dir_of = |d: &str| Some(Path::new("/p").join(d));
        let host = |name: &str, cwd: &str| {
            let app = c.app_for(name, Path::new(cwd), dir_of);
            c.host_for(app).map(|h| h.to_string())
        };
        // By name, then (an app renamed to be unique on the server) by directory.
        assert_eq!(host("api", "/p/packages/api").as_deref(), Some("127.0.0.1"));
        assert_eq!(
            host("worker", "/p/packages/web").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(host("web-p", "/p/packages/web").as_deref(), Some("::"));
        assert_eq!(
            c.app_for("web-p", Path::new("/p/packages/web"), dir_of)
                .unwrap()
                .name,
            None
        );
        // No table matches: the top level's.
        assert!(
            c.app_for("other", Path::new("/elsewhere"), dir_of)
                .is_none()
        );
        assert_eq!(host("other", "/elsewhere").as_deref(), Some("::"));
    }

    #[test]
    fn a_host_that_is_not_an_ip_address_names_file_line_and_value() {
        let e = err("name = \"a\"\nhost = \"localhost\"\n");
        assert_eq!(
            e,
            "`/p/buildflowz.toml`:2:8: `host = \"localhost\"` is not an IP address; write one, like \"127.0.0.1\" (this machine only, the default) or \"0.0.0.0\" (every address: other machines reach the app)"
        );
        let e = err("[[apps]]\ndir = \"web\"\nhost = \"0.0.0.0:3000\"\n");
        assert!(
            e.starts_with(
                "`/p/buildflowz.toml`:3:8: `host = \"0.0.0.0:3000\"` is not an IP address"
            ),
            "{e}"
        );
        for bad in [
            "\"[::1]\"",
            "\" 127.0.0.1\"",
            "\"\"",
            "\"256.0.0.1\"",
            "\"fe80::1%eth0\"",
        ] {
            let e = err(&format!("host = {bad}\n"));
            assert!(e.contains("is not an IP address"), "{bad}: {e}");
        }
        let e = err("host = 127\n");
        assert!(
            e.starts_with(
                "`/p/buildflowz.toml`:1:8: invalid type: integer `127`, expected a string"
            ),
            "{e}"
        );
        assert!(err("[[apps]]\nhots = \"::1\"\n").contains("unknown field `hots`"));
    }

    #[test]
    fn bad_values() {
        assert!(err("port = 70000").contains("out of bounds"));
        assert!(err("range = \"5000-4000\"").contains("not a port range"));
        assert!(err("[env]\nPORT = 1").contains("`env.PORT` is set by pm2-port"));
        assert!(err("[pm2]\nscript = \"x\"").contains("`pm2.script`"));
        assert!(err("[pm2]\n__proto__ = \"x\"").contains("`pm2.__proto__`"));
        assert!(err("[pm2]\nexec_mode = \"cluster\"").contains("not supported"));
        assert!(err("[pm2]\ninstances = 4").contains("not supported"));
        assert!(parse(Path::new("b.toml"), "[pm2]\ninstances = 1\n").is_ok());
        assert!(parse(Path::new("b.toml"), "[pm2]\ninstances = \"1\"\n").is_ok());
        assert!(parse(Path::new("b.toml"), "[pm2]\ninstances = 1.0\n").is_ok());
        assert!(err("[pm2]\ninstances = \"max\"").contains("not supported"));
        assert!(
            err("[pm2.watch_options]\nsince = 1979-05-27\n")
                .contains("`pm2.watch_options.since` is a TOML date")
        );
        assert!(err("[env]\nWHEN = 1979-05-27T07:32:00Z\n").contains("`env.WHEN` is a TOML date"));
        assert!(err("[env]\n__proto__ = \"x\"").contains("`env.__proto__`"));
    }

    /// A table's checks point at the key they name, not at the table's header: in `[env]`, in
    /// `[pm2]` down to an array's item, in an inline table, and in the `[[apps]]` table it is in.
    #[test]
    fn a_bad_value_of_a_table_points_at_its_key() {
        let at = |text: &str| {
            let e = err(text);
            e.split(": ").next().unwrap().to_string()
        };
        assert_eq!(
            at("# c\n[env]\nA = \"x\"\nB = [1]\n"),
            "`/p/buildflowz.toml`:4:1"
        );
        assert_eq!(at("[env]\nA = 1\n  PORT = 3\n"), "`/p/buildflowz.toml`:3:3");
        assert_eq!(
            at("[pm2]\nwatch = [\"a\", 9007199254740993]\n"),
            "`/p/buildflowz.toml`:2:15"
        );
        assert_eq!(
            at("env = { A = 1, B = [2] }\n"),
            "`/p/buildflowz.toml`:1:16"
        );
        assert_eq!(
            at(
                "[[apps]]\nname = \"a\"\n[apps.env]\nZ = 1\n\n[[apps]]\nname = \"b\"\n[apps.env]\nZ = { a = 1 }\n"
            ),
            "`/p/buildflowz.toml`:9:1"
        );
        // A top-level key's error keeps pointing at its value.
        assert_eq!(at("command = \"\"\n"), "`/p/buildflowz.toml`:1:11");
        // Keys that need quotes are quoted in the message, and found.
        assert_eq!(
            at("[env]\nx = 1\n\"a.b\" = [1]\n"),
            "`/p/buildflowz.toml`:3:1"
        );
        assert_eq!(
            at("[env]\na = 1\n\"a`b\" = [1]\n"),
            "`/p/buildflowz.toml`:3:1"
        );
        assert_eq!(
            at("[pm2]\nenv_x = { y = \"1\" }\n\"env_x.y\" = 5\n"),
            "`/p/buildflowz.toml`:3:1"
        );
        // Headers inside multi-line strings, comments after headers.
        assert_eq!(
            at(
                "[[apps]]\nname = \"a\"\ncommand = \"\"\"\n[[apps]]\n\"\"\"\nenv = { B = [1] }\n[[apps]]\nname = \"b\"\nenv = { B = 2 }\n"
            ),
            "`/p/buildflowz.toml`:6:9"
        );
        assert_eq!(
            at(
                "env = { B = 1 }\n[[apps]]\nname = \"a\"\ncommand = \"\"\"\n[x]\n\"\"\"\nenv = { B = [1] }\n"
            ),
            "`/p/buildflowz.toml`:7:9"
        );
        assert_eq!(
            at(
                "[[apps]]\nname = \"a\"\n[apps.env]\nB = 1\n\n[[apps]] # second\nname = \"b\"\n[apps.env]\nB = [1]\n"
            ),
            "`/p/buildflowz.toml`:9:1"
        );
        // Two [[apps]] of one name: the second's header, however it is written.
        for text in [
            "# one [[apps]] per package\n[[apps]]\nname = \"a\"\n[[ apps ]]\nname = \"a\"\n",
            "# c\n[[apps]]\nname = \"a\"\n[[\"apps\"]]\nname = \"a\"\n",
        ] {
            assert_eq!(at(text), "`/p/buildflowz.toml`:4:1", "{text}");
        }
        // The document's own [env] after an [[apps]] table is the document's.
        assert_eq!(
            at("[[apps]]\nname = \"a\"\n[apps.env]\nB = 1\n\n[env]\nB = [1]\n"),
            "`/p/buildflowz.toml`:7:1"
        );
    }
}

/// `text` (buildflowz.toml, maybe empty) with the top-level `command` set to `command`, keeping
/// the file's comments, key order and formatting (a `command` already there keeps its place and
/// its comments); `None` when the file says exactly that already. The result must parse: a file
/// with `[[apps]]` has no top-level command, and is refused.
pub fn set_command(path: &Path, text: &str, command: &str) -> Result<Option<String>, InputError> {
    let before = parse(path, text)?;
    if before.command.as_deref() == Some(command) {
        return Ok(None);
    }
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|err| InputError::Usage(format!("`{}`: {err}", path.display())))?;
    let mut new = toml_edit::Value::from(command);
    if let Some(old) = doc.get("command").and_then(toml_edit::Item::as_value) {
        *new.decor_mut() = old.decor().clone();
    }
    doc["command"] = toml_edit::Item::Value(new);
    let out = doc.to_string();
    parse(path, &out)?;
    Ok(Some(out))
}

/// What `init --force` carries from a replaced hand-written file into buildflowz.toml.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    /// The new text of buildflowz.toml.
    pub text: String,
    /// What went in, as `env.KEY`, `pm2.KEY`, `command`.
    pub added: Vec<String>,
    /// What could not, with why.
    pub left: Vec<String>,
}

/// `text` (buildflowz.toml, maybe empty) with `env`, `pm2` and `command` added where the file does
/// not set them already (the user's settings win), keeping its comments, order and formatting.
/// Each addition must leave a file [`parse`] accepts; one that does not is left out and said.
pub fn carry(
    path: &Path,
    text: &str,
    env: &Map<String, Value>,
    pm2: &Map<String, Value>,
    command: Option<&str>,
) -> Result<Carried, InputError> {
    parse(path, text)?;
    let mut out = Carried {
        text: text.to_string(),
        ..Carried::default()
    };
    let mut candidates: Vec<(Option<&str>, &str, Value)> = Vec::new();
    if let Some(cmd) = command {
        candidates.push((None, "command", Value::String(cmd.to_string())));
    }
    candidates.extend(
        env.iter()
            .map(|(k, v)| (Some("env"), k.as_str(), v.clone())),
    );
    candidates.extend(
        pm2.iter()
            .map(|(k, v)| (Some("pm2"), k.as_str(), v.clone())),
    );
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|err| InputError::Usage(format!("`{}`: {err}", path.display())))?;
    for (table, key, value) in candidates {
        let shown = table.map_or(key.to_string(), |t| format!("{t}.{key}"));
        let Some(item) = toml_value(&value) else {
            out.left.push(format!("`{shown}` (TOML has no null)"));
            continue;
        };
        // Each value checked on its own, in a file of just it: linear in the number of keys.
        let mut alone = toml_edit::DocumentMut::new();
        match table {
            None => alone.insert(key, toml_edit::Item::Value(item.clone())),
            Some(t) => {
                let mut one = toml_edit::Table::new();
                one.insert(key, toml_edit::Item::Value(item.clone()));
                alone.insert(t, toml_edit::Item::Table(one))
            }
        };
        if let Err(err) = parse(path, &alone.to_string()) {
            let message = match err {
                InputError::Manifest { message, .. } => message,
                other => other.to_string(),
            };
            out.left.push(format!("`{shown}` ({message})"));
            continue;
        }
        let slot = match table {
            None => doc.as_table_mut(),
            Some(t) => {
                let entry = doc
                    .entry(t)
                    .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
                match entry.as_table_mut() {
                    Some(table) => table,
                    None => {
                        out.left
                            .push(format!("`{shown}` (`{t}` is not a table there)"));
                        continue;
                    }
                }
            }
        };
        if slot.contains_key(key) {
            continue;
        }
        slot.insert(key, toml_edit::Item::Value(item));
        out.added.push(format!("`{shown}`"));
    }
    out.text = doc.to_string();
    // The whole, once: what is valid alone may not be together (a `command` beside [[apps]]).
    parse(path, &out.text)?;
    Ok(out)
}

/// A JSON value as a TOML value; `None` for null, which TOML cannot hold.
fn toml_value(value: &Value) -> Option<toml_edit::Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64()?.into(),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => {
            let mut array = toml_edit::Array::new();
            for item in items {
                array.push(toml_value(item)?);
            }
            toml_edit::Value::Array(array)
        }
        Value::Object(map) => {
            let mut table = toml_edit::InlineTable::new();
            for (k, v) in map {
                table.insert(k, toml_value(v)?);
            }
            toml_edit::Value::InlineTable(table)
        }
    })
}

#[cfg(test)]
mod carry_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extras_go_in_where_the_user_has_not_set_them() {
        let text = "# mine\nname = \"shop\"\n\n[env]\nNODE_ENV = \"production\" # keep\n";
        let env = json!({"NODE_ENV": "development", "DATABASE_URL": "postgres://x"});
        let pm2 =
            json!({"autorestart": false, "watch": ["src"], "instances": 2, "kill_timeout": null});
        let c = carry(
            Path::new("/p/buildflowz.toml"),
            text,
            env.as_object().unwrap(),
            pm2.as_object().unwrap(),
            Some("npm run dev -- --port $PORT"),
        )
        .unwrap();
        assert_eq!(
            c.text,
            "# mine\nname = \"shop\"\ncommand = \"npm run dev -- --port $PORT\"\n\n[env]\nNODE_ENV = \"production\" # keep\nDATABASE_URL = \"postgres://x\"\n\n[pm2]\nautorestart = false\nwatch = [\"src\"]\n"
        );
        assert_eq!(
            c.added,
            [
                "`command`",
                "`env.DATABASE_URL`",
                "`pm2.autorestart`",
                "`pm2.watch`"
            ]
        );
        assert_eq!(c.left.len(), 2, "{:?}", c.left);
        assert!(
            c.left[0].starts_with("`pm2.instances` (pm2-port runs"),
            "{:?}",
            c.left
        );
        assert_eq!(c.left[1], "`pm2.kill_timeout` (TOML has no null)");
        let parsed = parse(Path::new("b.toml"), &c.text).unwrap();
        assert_eq!(parsed.env["DATABASE_URL"], "postgres://x");
        assert_eq!(parsed.pm2["watch"], json!(["src"]));
    }
}

#[cfg(test)]
mod set_command_tests {
    use super::*;

    fn set(text: &str, command: &str) -> Option<String> {
        set_command(Path::new("/p/buildflowz.toml"), text, command).unwrap()
    }

    #[test]
    fn a_new_file_holds_just_the_command() {
        assert_eq!(
            set("", "npm run dev -- --port $PORT").unwrap(),
            "command = \"npm run dev -- --port $PORT\"\n"
        );
    }

    #[test]
    fn comments_order_and_tables_are_kept() {
        let text = "# mine\nname = \"shop\"   # the app\nflox = false\n\n[env]\n# logs\nDEBUG = \"app:*\"\n";
        assert_eq!(
            set(text, "node server.js").unwrap(),
            "# mine\nname = \"shop\"   # the app\nflox = false\ncommand = \"node server.js\"\n\n[env]\n# logs\nDEBUG = \"app:*\"\n"
        );
    }

    #[test]
    fn a_command_there_is_replaced_in_its_place_with_its_comment() {
        let text = "# top\ncommand = \"npm run dev\"  # changed by hand\nport = 3005\n";
        assert_eq!(
            set(text, "pnpm dev").unwrap(),
            "# top\ncommand = \"pnpm dev\"  # changed by hand\nport = 3005\n"
        );
        assert_eq!(set(text, "npm run dev"), None);
    }

    #[test]
    fn any_line_comes_back_exactly() {
        for line in [
            "echo \"a\" 'b' \\ $PORT",
            "a\nb\r\n\tc",
            "\u{7}\u{1b}[2J\u{7f}",
            "\u{2028}é 🎉 '''\"\"\"",
        ] {
            let text = set("[env]\nX = 1\n", line).unwrap();
            let parsed = parse(Path::new("b.toml"), &text).unwrap();
            assert_eq!(parsed.command.as_deref(), Some(line), "{text}");
            assert_eq!(parsed.env["X"], 1);
        }
    }

    #[test]
    fn a_file_with_apps_is_refused() {
        let err = set_command(
            Path::new("/p/buildflowz.toml"),
            "[[apps]]\ndir = \"web\"\n",
            "npm run dev",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("inside each [[apps]] table"), "{err}");
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    const HAND: &str = "# Settings for this project, by hand.\nflox = false   # no flox here\n\n[env]\n# logs\nDEBUG = \"app:*\"  # all of them\n";

    #[test]
    fn a_command_keeps_comments_and_order() {
        let out = answer_edited(HAND, &Answer::Command("npm run watch".into())).unwrap();
        assert_eq!(
            out,
            "# Settings for this project, by hand.\nflox = false   # no flox here\ncommand = \"npm run watch\"\n\n[env]\n# logs\nDEBUG = \"app:*\"  # all of them\n"
        );
    }

    #[test]
    fn apps_are_appended_as_tables() {
        let out = answer_edited(
            HAND,
            &Answer::Apps(vec!["packages/web".into(), "packages/api".into()]),
        )
        .unwrap();
        assert!(out.starts_with(HAND), "{out}");
        assert!(
            out.ends_with("[[apps]]\ndir = \"packages/web\"\n\n[[apps]]\ndir = \"packages/api\"\n"),
            "{out}"
        );
        let c = crate::buildflowz_toml::parse(std::path::Path::new("b.toml"), &out).unwrap();
        assert_eq!(c.apps.len(), 2);
    }
}
