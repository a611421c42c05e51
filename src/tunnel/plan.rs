//! The tunnel's pure parts: the remote app list, which forwards to add and cancel, and which
//! local port each gets.

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::Value;

/// An app of the server worth forwarding: online, with a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteApp {
    pub name: String,
    pub port: u16,
}

/// A forward in place: `127.0.0.1:local_port` here to `localhost:remote_port` there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forward {
    pub name: String,
    pub remote_port: u16,
    pub local_port: u16,
}

/// Parse what the server printed: `pm2-port list --json` rows, or `pm2 jlist` (after any banner).
/// Keeps online apps with a port, sorted by port, one app a port.
pub fn parse_apps(text: &str) -> Result<Vec<RemoteApp>> {
    let Some(json) = crate::pm2::json_array_in(text) else {
        bail!("the server printed no app list");
    };
    let rows: Vec<Value> = serde_json::from_str(json)?;
    let online: Vec<(String, u16)> = if rows.iter().any(|r| r.get("pm2_env").is_some()) {
        crate::pm2::parse_process_list(json.as_bytes())?
            .into_iter()
            .filter(|a| a.status == crate::model::Status::Online)
            .filter_map(|a| Some((a.name, a.port?)))
            .collect()
    } else {
        rows.iter()
            .filter(|r| {
                r.get("status")
                    .and_then(Value::as_str)
                    .map(crate::model::Status::parse)
                    == Some(crate::model::Status::Online)
            })
            .filter_map(|r| {
                let name = r.get("name")?.as_str()?.to_string();
                Some((name, crate::pm2::port_value(r.get("port")?)?))
            })
            .collect()
    };
    let mut apps: Vec<RemoteApp> = Vec::new();
    for (name, port) in online {
        if !apps.iter().any(|a| a.port == port) {
            apps.push(RemoteApp { name, port });
        }
    }
    apps.sort_by_key(|a| a.port);
    Ok(apps)
}

/// The forwards to cancel (their app went away or changed port) and the apps to forward.
pub fn diff(current: &[Forward], wanted: &[RemoteApp]) -> (Vec<Forward>, Vec<RemoteApp>) {
    let cancel = current
        .iter()
        .filter(|f| {
            !wanted
                .iter()
                .any(|a| a.name == f.name && a.port == f.remote_port)
        })
        .cloned()
        .collect();
    let add = wanted
        .iter()
        .filter(|a| {
            !current
                .iter()
                .any(|f| f.name == a.name && f.remote_port == a.port)
        })
        .cloned()
        .collect();
    (cancel, add)
}

/// The local port for a remote one: the same when free here, else `remote + 10000` and up, else
/// the first free from 20000 up.
pub fn local_port(remote: u16, used: &[u16], free: impl Fn(u16) -> bool) -> Option<u16> {
    let ok = |p: u16| !used.contains(&p) && free(p);
    if ok(remote) {
        return Some(remote);
    }
    let start = remote.saturating_add(10000).max(1024);
    (start..=u16::MAX).chain(20000..start).find(|&p| ok(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_list_formats() {
        let list = r#"[{"name":"shop","port":3003,"status":"online","cwd":"/s","sources":["pm2"],"conflicts":[]},
                       {"name":"off","port":3004,"status":"stopped"},{"name":"new","port":3001,"status":"not-started"}]"#;
        assert_eq!(
            parse_apps(list).unwrap(),
            [RemoteApp {
                name: "shop".into(),
                port: 3003
            }]
        );
        let jlist = "[PM2] Spawning\n[{\"name\":\"a\",\"pm2_env\":{\"status\":\"online\",\"env\":{\"PORT\":\"3010\"}}},\
                     {\"name\":\"b\",\"pm2_env\":{\"status\":\"online\"}}]\n";
        assert_eq!(
            parse_apps(jlist).unwrap(),
            [RemoteApp {
                name: "a".into(),
                port: 3010
            }]
        );
        assert!(parse_apps("bash: pm2: command not found\n").is_err());
    }

    #[test]
    fn diffs() {
        let f = |n: &str, r, l| Forward {
            name: n.into(),
            remote_port: r,
            local_port: l,
        };
        let a = |n: &str, p| RemoteApp {
            name: n.into(),
            port: p,
        };
        let (cancel, add) = diff(
            &[f("a", 1, 1), f("b", 2, 2)],
            &[a("a", 1), a("b", 3), a("c", 4)],
        );
        assert_eq!(cancel, [f("b", 2, 2)]);
        assert_eq!(add, [a("b", 3), a("c", 4)]);
    }

    #[test]
    fn local_ports() {
        assert_eq!(local_port(3003, &[], |_| true), Some(3003));
        assert_eq!(local_port(3003, &[], |p| p != 3003), Some(13003));
        assert_eq!(local_port(3003, &[13003], |p| p != 3003), Some(13004));
        assert_eq!(
            local_port(60000, &[], |p| p != 60000 && p != 65535),
            Some(20000)
        );
    }
}
