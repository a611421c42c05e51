//! The tunnel's pure parts: the remote app list (one `list --json` answer, or one line of the
//! `list --json --watch` stream), which forwards to add and cancel, and which local port each
//! gets.

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::Value;

/// An app of the server worth forwarding: online, with a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteApp {
    pub name: String,
    pub port: u16,
}

/// An app as the server listed it, whatever its status: what the proxy shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub status: String,
    pub port: Option<u16>,
}

/// A server's apps: those to forward, and all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Apps {
    /// Online, with a port; sorted by port, one app a port.
    pub online: Vec<RemoteApp>,
    /// Every app listed, in the server's order.
    pub all: Vec<Listed>,
}

impl Apps {
    fn from_listed(all: Vec<Listed>) -> Apps {
        let online = all
            .iter()
            .filter(|l| crate::model::Status::parse(&l.status) == crate::model::Status::Online)
            .filter_map(|l| Some((l.name.clone(), l.port?)))
            .collect();
        Apps {
            online: one_a_port(online),
            all,
        }
    }
}

/// A forward in place: `127.0.0.1:local_port` here to `localhost:remote_port` on `host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forward {
    pub host: String,
    pub name: String,
    pub remote_port: u16,
    pub local_port: u16,
}

/// Parse what the server printed: `pm2-port list --json` rows, or `pm2 jlist` (after any banner).
pub fn parse_apps(text: &str) -> Result<Apps> {
    let Some(json) = crate::pm2::json_array_in(text) else {
        bail!("the server printed no app list");
    };
    let rows: Vec<Value> = serde_json::from_str(json)?;
    if rows.iter().any(|r| r.get("pm2_env").is_some()) {
        let all = crate::pm2::parse_process_list(json.as_bytes())?
            .into_iter()
            .map(|a| Listed {
                status: a.status.as_str().to_string(),
                name: a.name,
                port: a.port,
            })
            .collect();
        Ok(Apps::from_listed(all))
    } else {
        Ok(listed_rows(&rows))
    }
}

/// One line of `list --json --watch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamLine {
    /// The server's apps now.
    Apps(Apps),
    /// PM2's daemon went away (an `apps` line follows).
    DaemonDown,
    /// PM2's daemon came (back).
    DaemonUp,
    /// The server could not be read; the stream goes on.
    Error(String),
    /// An event this version does not know: a newer server's; skipped.
    Other,
}

/// Parse one line of the stream. A line that is not a JSON object with an `event` is an error:
/// the other end is not `list --json --watch`.
pub fn parse_line(line: &str) -> Result<StreamLine> {
    let value: Value = serde_json::from_str(line)?;
    let Some(event) = value.get("event").and_then(Value::as_str) else {
        bail!("not an event of `list --json --watch`");
    };
    Ok(match event {
        "apps" => match value.get("apps") {
            Some(Value::Array(rows)) => StreamLine::Apps(listed_rows(rows)),
            _ => bail!("an `apps` event without its `apps` list"),
        },
        "daemon-down" => StreamLine::DaemonDown,
        "daemon-up" => StreamLine::DaemonUp,
        "error" => StreamLine::Error(
            value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_string(),
        ),
        _ => StreamLine::Other,
    })
}

/// The apps of `list --json` rows (rows without a name are skipped).
fn listed_rows(rows: &[Value]) -> Apps {
    let all = rows
        .iter()
        .filter_map(|r| {
            Some(Listed {
                name: r.get("name")?.as_str()?.to_string(),
                status: r
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string(),
                port: r.get("port").and_then(crate::pm2::port_value),
            })
        })
        .collect();
    Apps::from_listed(all)
}

/// Sorted by port, the first app of each port kept.
fn one_a_port(online: Vec<(String, u16)>) -> Vec<RemoteApp> {
    let mut apps: Vec<RemoteApp> = Vec::new();
    for (name, port) in online {
        if !apps.iter().any(|a| a.port == port) {
            apps.push(RemoteApp { name, port });
        }
    }
    apps.sort_by_key(|a| a.port);
    apps
}

/// The forwards of `host` to cancel (their app went away or changed port) and the apps of `host`
/// to forward. `current` may hold other hosts' forwards: they are left alone.
pub fn diff(
    current: &[Forward],
    host: &str,
    wanted: &[RemoteApp],
) -> (Vec<Forward>, Vec<RemoteApp>) {
    let current: Vec<&Forward> = current.iter().filter(|f| f.host == host).collect();
    let cancel = current
        .iter()
        .filter(|f| {
            !wanted
                .iter()
                .any(|a| a.name == f.name && a.port == f.remote_port)
        })
        .map(|f| (*f).clone())
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
            parse_apps(list).unwrap().online,
            [RemoteApp {
                name: "shop".into(),
                port: 3003
            }]
        );
        let jlist = "[PM2] Spawning\n[{\"name\":\"a\",\"pm2_env\":{\"status\":\"online\",\"env\":{\"PORT\":\"3010\"}}},\
                     {\"name\":\"b\",\"pm2_env\":{\"status\":\"online\"}}]\n";
        let listed = parse_apps(jlist).unwrap();
        assert_eq!(
            listed.all,
            [
                Listed {
                    name: "a".into(),
                    status: "online".into(),
                    port: Some(3010)
                },
                Listed {
                    name: "b".into(),
                    status: "online".into(),
                    port: None
                }
            ]
        );
        assert_eq!(
            listed.online,
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
            host: "h".into(),
            name: n.into(),
            remote_port: r,
            local_port: l,
        };
        let a = |n: &str, p| RemoteApp {
            name: n.into(),
            port: p,
        };
        let mut other = f("b", 2, 5);
        other.host = "other".into();
        let (cancel, add) = diff(
            &[f("a", 1, 1), f("b", 2, 2), other.clone()],
            "h",
            &[a("a", 1), a("b", 3), a("c", 4)],
        );
        assert_eq!(cancel, [f("b", 2, 2)]);
        assert_eq!(add, [a("b", 3), a("c", 4)]);
        // Another host's forward is neither cancelled nor taken for this host's.
        let (cancel, add) = diff(&[other], "h", &[a("b", 2)]);
        assert_eq!(cancel, []);
        assert_eq!(add, [a("b", 2)]);
    }

    #[test]
    fn stream_lines() {
        let apps = r#"{"event":"apps","daemon":true,"apps":[{"name":"b","port":3002,"status":"online"},
            {"name":"a","port":3001,"status":"online"},{"name":"dup","port":3001,"status":"online"},
            {"name":"off","port":3003,"status":"stopped"},{"name":"noport","port":null,"status":"online"}]}"#;
        let a = |n: &str, p| RemoteApp {
            name: n.into(),
            port: p,
        };
        let StreamLine::Apps(listed) = parse_line(apps).unwrap() else {
            panic!()
        };
        assert_eq!(listed.online, [a("a", 3001), a("b", 3002)]);
        assert_eq!(
            listed
                .all
                .iter()
                .map(|l| (l.name.as_str(), l.status.as_str(), l.port))
                .collect::<Vec<_>>(),
            [
                ("b", "online", Some(3002)),
                ("a", "online", Some(3001)),
                ("dup", "online", Some(3001)),
                ("off", "stopped", Some(3003)),
                ("noport", "online", None)
            ]
        );
        assert_eq!(
            parse_line(r#"{"event":"apps","daemon":false,"apps":[]}"#).unwrap(),
            StreamLine::Apps(Apps::default())
        );
        assert_eq!(
            parse_line(r#"{"event":"daemon-down"}"#).unwrap(),
            StreamLine::DaemonDown
        );
        assert_eq!(
            parse_line(r#"{"event":"daemon-up"}"#).unwrap(),
            StreamLine::DaemonUp
        );
        assert_eq!(
            parse_line(r#"{"event":"error","message":"boom"}"#).unwrap(),
            StreamLine::Error("boom".into())
        );
        assert_eq!(
            parse_line(r#"{"event":"from-the-future","x":1}"#).unwrap(),
            StreamLine::Other
        );
        // Not the stream: an old `list --json` array, a banner, an `apps` event without apps.
        assert!(parse_line(r#"[{"name":"a","port":3001,"status":"online"}]"#).is_err());
        assert!(parse_line("[PM2] Spawning PM2 daemon").is_err());
        assert!(parse_line(r#"{"event":"apps"}"#).is_err());
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
