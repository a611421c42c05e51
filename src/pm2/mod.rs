//! PM2's view of the server: the apps it knows, whatever their status.
//!
//! The parsers here take text (`pm2 jlist` output, `dump.pm2`) and return [`App`]s; spawning `pm2`
//! lives in [`cli`].

pub mod cli;
pub mod rpc;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// One PM2 app, reduced to what port allocation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub pm_id: Option<u64>,
    /// Missing or 0 when the app is not running.
    pub pid: Option<u32>,
    /// PM2's status: `online`, `stopped`, `errored`, ...; `saved` for an app only in `dump.pm2`.
    pub status: String,
    /// `pm2_env.pm_cwd`: the app's working directory, which identifies its project.
    pub cwd: Option<PathBuf>,
    /// `pm2_env.env.PORT`, else `pm2_env.PORT`.
    pub port: Option<u16>,
    /// The app's log files (`pm_out_log_path`, `pm_err_log_path`).
    pub logs: Vec<PathBuf>,
}

impl App {
    /// Whether this app runs in the project directory `dir`.
    pub fn belongs_to(&self, dir: &Path) -> bool {
        self.cwd.as_deref() == Some(dir)
    }

    /// Read an app from a `pm2_env` object (as in `dump.pm2`, or inside a `jlist` entry).
    fn from_pm2_env(env: &Value, name: Option<&str>) -> Option<App> {
        let name = name.or_else(|| env.get("name")?.as_str())?.to_string();
        let port = env
            .get("env")
            .and_then(|e| e.get("PORT"))
            .and_then(port_value)
            .or_else(|| env.get("PORT").and_then(port_value));
        Some(App {
            name,
            pm_id: env.get("pm_id").and_then(Value::as_u64),
            pid: None,
            status: env
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            cwd: env.get("pm_cwd").and_then(Value::as_str).map(PathBuf::from),
            port,
            logs: ["pm_err_log_path", "pm_out_log_path"]
                .iter()
                .filter_map(|k| env.get(*k)?.as_str().map(PathBuf::from))
                .collect(),
        })
    }
}

/// PORT is a number when the ecosystem file had one, a string when it came from a shell.
pub fn port_value(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parse `pm2 jlist` output. The CLI may print banner lines before the JSON (a daemon being
/// spawned, a version mismatch), and some of them start with `[` too (`[PM2] Spawning ...`), so
/// the list is parsed from the first line that starts a JSON array which parses to the end.
pub fn parse_jlist(text: &str) -> Result<Vec<App>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with('[')
            && let Ok(list) = serde_json::from_str::<Value>(text[offset..].trim_end())
        {
            return parse_process_list(&list);
        }
        offset += line.len();
    }
    bail!("`pm2 jlist` printed no JSON process list")
}

/// Parse the process list as `jlist` and the daemon's `getMonitorData` return it.
pub fn parse_process_list(list: &Value) -> Result<Vec<App>> {
    let Some(items) = list.as_array() else {
        bail!("PM2's process list is not an array");
    };
    Ok(items
        .iter()
        .filter_map(|item| {
            let env = item.get("pm2_env")?;
            let mut app = App::from_pm2_env(env, item.get("name").and_then(Value::as_str))?;
            app.pm_id = item.get("pm_id").and_then(Value::as_u64).or(app.pm_id);
            app.pid = item
                .get("pid")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok())
                .filter(|&p| p != 0);
            Some(app)
        })
        .collect())
}

/// Parse `$PM2_HOME/dump.pm2`: a JSON array of `pm2_env` objects, saved by `pm2 save`. These apps
/// come back on `pm2 resurrect`, so their ports are held while no daemon runs.
pub fn parse_dump(text: &str) -> Result<Vec<App>> {
    let list: Value = serde_json::from_str(text).context("`dump.pm2` is not valid JSON")?;
    let Some(items) = list.as_array() else {
        bail!("`dump.pm2` is not a JSON array");
    };
    Ok(items
        .iter()
        .filter_map(|env| {
            let mut app = App::from_pm2_env(env, None)?;
            app.status = "saved".to_string();
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
[{"pid":42,"name":"shop","pm_id":0,"pm2_env":{"status":"online","pm_cwd":"/srv/shop","env":{"PORT":3003},"PORT":3003}},
 {"pid":0,"name":"blog","pm_id":1,"pm2_env":{"status":"stopped","pm_cwd":"/srv/blog","PORT":"3004"}},
 {"name":"bare","pm_id":2,"pm2_env":{"status":"errored"}}]
"#;
        let apps = parse_jlist(text).unwrap();
        assert_eq!(apps.len(), 3);
        assert_eq!(apps[0].port, Some(3003));
        assert_eq!(apps[0].pid, Some(42));
        assert_eq!(apps[1].port, Some(3004));
        assert_eq!(apps[1].pid, None);
        assert_eq!(apps[1].status, "stopped");
        assert_eq!(apps[2].port, None);
        assert_eq!(apps[2].cwd, None);
    }

    #[test]
    fn env_port_wins_over_flattened_port() {
        let v: Value =
            serde_json::from_str(r#"[{"name":"a","pm2_env":{"env":{"PORT":"4000"},"PORT":3000}}]"#)
                .unwrap();
        assert_eq!(parse_process_list(&v).unwrap()[0].port, Some(4000));
    }

    #[test]
    fn dump_apps_are_saved() {
        let apps =
            parse_dump(r#"[{"name":"a","pm_cwd":"/a","status":"online","env":{"PORT":3010}}]"#)
                .unwrap();
        assert_eq!(apps[0].status, "saved");
        assert_eq!(apps[0].port, Some(3010));
    }

    #[test]
    fn jlist_without_json_is_an_error() {
        assert!(parse_jlist("[PM2] Spawning PM2 daemon\n").is_err());
    }
}
