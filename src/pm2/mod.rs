//! PM2's view of the server: the apps it knows, whatever their status.
//!
//! The parsers here take text (`pm2 jlist` output, the daemon's reply, `dump.pm2`) and return
//! [`App`]s; spawning `pm2` lives in [`cli`], the daemon socket in [`rpc`]. They deserialise only
//! the fields pm2-port uses: each app also carries the whole environment it was started with,
//! which is most of the bytes and is skipped without being built.

use std::path::{Path, PathBuf};

use crate::model::{App, Status};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

pub mod names;
pub mod options;

/// PORT is a number when the ecosystem file had one, a string when it came from a shell.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Port {
    Number(f64),
    Text(String),
    Other(IgnoredAny),
}

impl Port {
    /// The port the app listens on: as Node's `listen` reads the value (`"0xB7CB"` and
    /// `"4.7005e4"` are ports).
    fn get(&self) -> Option<u16> {
        match self {
            Port::Number(n) => crate::js::port(*n),
            Port::Text(s) => crate::js::port(crate::js::string_to_number(s)?),
            Port::Other(_) => None,
        }
    }
}

/// PORT as found in a JSON value, for callers holding one.
pub fn port_value(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => crate::js::port(n.as_f64()?),
        Value::String(s) => crate::js::port(crate::js::string_to_number(s)?),
        _ => None,
    }
}

/// `pm2_env.args`: a list of strings (or one string, as some PM2 versions keep it).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Args {
    List(Vec<String>),
    Line(String),
    Other(IgnoredAny),
}

impl Args {
    fn port(&self) -> Option<u16> {
        match self {
            Args::List(args) => port_in_args(args),
            Args::Line(line) => port_in_args(std::slice::from_ref(line)),
            Args::Other(_) => None,
        }
    }
}

/// The port a command line gives its server: `--port N`, `--port=N`, `-p N`, `PORT=N` (also
/// inside a `bash -c` line, which is split as the shell would), or `HOST:N` after `--bind`/`-b`
/// or as a word of its own (`runserver 0.0.0.0:8000`).
pub fn port_in_args(args: &[String]) -> Option<u16> {
    let words: Vec<String> = args
        .iter()
        .flat_map(|a| shlex::split(a).unwrap_or_else(|| vec![a.clone()]))
        .collect();
    let number = |s: &str| crate::js::port(crate::js::string_to_number(s)?);
    let host_port = |s: &str| {
        let (host, port) = s.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (host == "localhost" || host.parse::<std::net::IpAddr>().is_ok())
            .then(|| number(port))
            .flatten()
    };
    let mut iter = words.iter().peekable();
    while let Some(word) = iter.next() {
        let found = match word.as_str() {
            "--port" | "-p" | "--http-port" => iter.peek().and_then(|w| number(w)),
            "--bind" | "-b" => iter.peek().and_then(|w| host_port(w)),
            w => w
                .strip_prefix("--port=")
                .or_else(|| w.strip_prefix("PORT="))
                .and_then(number)
                .or_else(|| host_port(w)),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

#[derive(Debug, Default, Deserialize)]
struct AppEnv {
    #[serde(rename = "PORT")]
    port: Option<Port>,
}

#[derive(Debug, Default, Deserialize)]
struct Pm2Env {
    name: Option<String>,
    pm_id: Option<u64>,
    status: Option<String>,
    pm_cwd: Option<PathBuf>,
    #[serde(rename = "PORT")]
    port: Option<Port>,
    env: Option<AppEnv>,
    /// The script's arguments: a stopped app whose port is only there (`--port N`) holds it too.
    args: Option<Args>,
    pm_out_log_path: Option<PathBuf>,
    pm_err_log_path: Option<PathBuf>,
}

impl Pm2Env {
    fn into_app(self, name: Option<String>) -> Option<App> {
        let port = self
            .env
            .as_ref()
            .and_then(|e| e.port.as_ref())
            .and_then(Port::get)
            .or_else(|| self.port.as_ref().and_then(Port::get))
            .or_else(|| self.args.as_ref().and_then(Args::port));
        Some(App {
            name: name.or(self.name)?,
            pm_id: self.pm_id,
            pid: None,
            status: Status::parse(self.status.as_deref().unwrap_or("unknown")),
            cwd: self.pm_cwd,
            port,
            logs: [self.pm_err_log_path, self.pm_out_log_path]
                .into_iter()
                .flatten()
                .collect(),
        })
    }
}

#[derive(Debug, Deserialize)]
struct ListItem {
    name: Option<String>,
    pm_id: Option<u64>,
    pid: Option<Value>,
    pm2_env: Option<Pm2Env>,
}

fn from_items(items: Vec<ListItem>) -> Vec<App> {
    items
        .into_iter()
        .filter_map(|item| {
            let mut app = item.pm2_env?.into_app(item.name)?;
            app.pm_id = item.pm_id.or(app.pm_id);
            app.pid = item
                .pid
                .as_ref()
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok())
                .filter(|&p| p != 0);
            Some(app)
        })
        .collect()
}

/// Parse the process list as `jlist` prints it and the daemon's `getMonitorData` returns it.
pub fn parse_process_list(json: &[u8]) -> Result<Vec<App>> {
    // One UTF-8 check of the whole text, rather than one per string skipped.
    let text = std::str::from_utf8(json).context("PM2's process list is not UTF-8")?;
    let items: Vec<ListItem> =
        serde_json::from_str(text).context("PM2's process list is not a JSON array of apps")?;
    Ok(from_items(items))
}

/// Parse `pm2 jlist` output. The CLI may print banner lines before the JSON (a daemon being
/// spawned, a version mismatch), and some of them start with `[` too (`[PM2] Spawning ...`), so
/// the list is parsed from the first line that starts a JSON array which parses to the end.
pub fn parse_jlist(text: &str) -> Result<Vec<App>> {
    match json_array_in(text) {
        Some(json) => parse_process_list(json.as_bytes()),
        None => bail!("`pm2 jlist` printed no JSON process list"),
    }
}

/// The JSON array that ends a command's output, after whatever banner lines came first: from the
/// first line starting with `[` from which the rest parses as JSON.
pub fn json_array_in(text: &str) -> Option<&str> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let rest = text[offset..].trim_end();
        if line.starts_with('[') && serde_json::from_str::<IgnoredAny>(rest).is_ok() {
            return Some(rest);
        }
        offset += line.len();
    }
    None
}

/// `dump.pm2`'s text without the apps for which `drop(name, cwd)` holds, every other entry kept as
/// it was; `None` when nothing is dropped.
pub fn dump_without(
    text: &str,
    drop: impl Fn(&str, Option<&Path>) -> bool,
) -> Result<Option<String>> {
    let entries: Vec<Value> =
        serde_json::from_str(text).context("`dump.pm2` is not a JSON array of apps")?;
    let before = entries.len();
    let kept: Vec<Value> = entries
        .into_iter()
        .filter(|e| {
            let name = e.get("name").and_then(Value::as_str).unwrap_or_default();
            let cwd = e.get("pm_cwd").and_then(Value::as_str).map(Path::new);
            !drop(name, cwd)
        })
        .collect();
    if kept.len() == before {
        return Ok(None);
    }
    Ok(Some(serde_json::to_string(&kept)?))
}

/// Parse `$PM2_HOME/dump.pm2`: a JSON array of `pm2_env` objects, saved by `pm2 save`. These apps
/// come back on `pm2 resurrect`, so their ports are held while no daemon runs.
pub fn parse_dump(text: &str) -> Result<Vec<App>> {
    let envs: Vec<Pm2Env> =
        serde_json::from_str(text).context("`dump.pm2` is not a JSON array of apps")?;
    Ok(envs
        .into_iter()
        .filter_map(|env| {
            let mut app = env.into_app(None)?;
            app.status = Status::Saved;
            Some(app)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jlist_after_banner_with_both_port_places() {
        let text = r#"[PM2] Spawning PM2 daemon with pm2_home=/tmp/x
>>>> In-memory PM2 is out-of-date, do:
>>>> $ pm2 update
[{"pid":42,"name":"shop","pm_id":0,"pm2_env":{"status":"online","pm_cwd":"/srv/shop","env":{"PORT":3003,"PATH":"/bin"},"PORT":3003,"pm_out_log_path":"/l/shop-out.log"}},
 {"pid":0,"name":"blog","pm_id":1,"pm2_env":{"status":"stopped","pm_cwd":"/srv/blog","PORT":"3004"}},
 {"name":"bare","pm_id":2,"pm2_env":{"status":"errored","env":{"PORT":{"odd":true}}}}]
"#;
        let apps = parse_jlist(text).unwrap();
        assert_eq!(apps.len(), 3);
        assert_eq!(apps[0].port, Some(3003));
        assert_eq!(apps[0].pid, Some(42));
        assert_eq!(apps[0].logs, [PathBuf::from("/l/shop-out.log")]);
        assert_eq!(apps[1].port, Some(3004));
        assert_eq!(apps[1].pid, None);
        assert_eq!(apps[1].status, Status::Stopped);
        assert_eq!(apps[2].port, None);
        assert_eq!(apps[2].cwd, None);
    }

    #[test]
    fn a_port_only_in_args_is_a_port() {
        let list = br#"[{"name":"a","pm2_env":{"status":"stopped","args":["--port","4100"]}},
            {"name":"b","pm2_env":{"status":"stopped","args":["-c","export PORT=4101 && npm run dev -- --port 4101"]}},
            {"name":"c","pm2_env":{"status":"stopped","args":["runserver","0.0.0.0:4102"]}},
            {"name":"d","pm2_env":{"status":"stopped","args":"--port=4103"}},
            {"name":"e","pm2_env":{"status":"stopped","env":{"PORT":"0xB7CB"},"args":["--port","4104"]}},
            {"name":"f","pm2_env":{"status":"stopped","env":{"PORT":"4.7005e4"}}},
            {"name":"g","pm2_env":{"status":"stopped","args":["--workers","4","-p"]}}]"#;
        let ports: Vec<Option<u16>> = parse_process_list(list)
            .unwrap()
            .iter()
            .map(|a| a.port)
            .collect();
        assert_eq!(
            ports,
            [
                Some(4100),
                Some(4101),
                Some(4102),
                Some(4103),
                Some(47051),
                Some(47005),
                None
            ]
        );
    }

    #[test]
    fn env_port_wins_over_flattened_port() {
        let list = br#"[{"name":"a","pm2_env":{"env":{"PORT":"4000"},"PORT":3000}}]"#;
        assert_eq!(parse_process_list(list).unwrap()[0].port, Some(4000));
    }

    #[test]
    fn dump_apps_are_saved() {
        let apps =
            parse_dump(r#"[{"name":"a","pm_cwd":"/a","status":"online","env":{"PORT":3010}}]"#)
                .unwrap();
        assert_eq!(apps[0].status, Status::Saved);
        assert_eq!(apps[0].port, Some(3010));
    }

    #[test]
    fn jlist_without_json_is_an_error() {
        assert!(parse_jlist("[PM2] Spawning PM2 daemon\n").is_err());
    }
}
