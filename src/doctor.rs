//! `doctor`'s diagnosis: conflicts, drift, orphans, files that disagree with PM2 and apps open to
//! other machines, as a pure function of the gathered world, and the fixes that are safe to make.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use crate::ecosystem::read::{Existing, Owner};
use crate::inventory::Row;
use crate::model::World;
use crate::model::{Processes, Status};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// Two or more apps claim one port.
    Conflict { port: u16, apps: Vec<String> },
    /// An online app listens, but not on its assigned port.
    Drift {
        app: String,
        port: u16,
        listening: Vec<u16>,
    },
    /// An online app listens nowhere.
    NotListening { app: String, port: u16 },
    /// A process outside PM2 holds an app's port.
    Orphan {
        port: u16,
        app: String,
        pid: Option<u32>,
        command: Option<String>,
    },
    /// The ecosystem file and PM2 disagree on an app's port.
    Mismatch {
        app: String,
        pm2_port: u16,
        file_port: u16,
        file: PathBuf,
    },
    /// A pm2-port app listens on its port at an address other machines reach (`0.0.0.0`, `::`,
    /// a LAN or public address), and its buildflowz.toml does not ask for it.
    Exposed {
        app: String,
        port: u16,
        /// The non-loopback addresses, sorted.
        addresses: Vec<IpAddr>,
        /// The buildflowz.toml where `host` would acknowledge it.
        config: PathBuf,
    },
}

/// The `host` each app's buildflowz.toml sets (its `[[apps]]` table's, else the top level's), by
/// PM2 app name and working directory; apps without one are absent.
pub type Hosts = HashMap<(String, PathBuf), IpAddr>;

/// Whether `host`, set in buildflowz.toml, asks for a listener on `addr`: an unspecified `host`
/// (`0.0.0.0` or `::`, every address) covers any address, a concrete one itself; a loopback
/// `host` covers nothing beyond loopback.
pub fn acknowledged(host: IpAddr, addr: IpAddr) -> bool {
    let (host, addr) = (crate::ports::unmapped(host), crate::ports::unmapped(addr));
    !crate::ports::is_loopback(host) && (host.is_unspecified() || host == addr)
}

pub fn diagnose(
    world: &World,
    rows: &[Row],
    files: &HashMap<PathBuf, Existing>,
    procs: &Processes,
    hosts: &Hosts,
) -> Vec<Finding> {
    let mut findings = Vec::new();

    let mut by_port: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for row in rows.iter().filter(|r| !r.conflicts.is_empty()) {
        if let Some(port) = row.port {
            by_port.entry(port).or_default().push(row.name.clone());
        }
    }
    for (port, mut apps) in by_port {
        apps.sort();
        apps.dedup();
        findings.push(Finding::Conflict { port, apps });
    }

    for app in &world.apps {
        let (Some(port), Some(pid), Status::Online) = (app.port, app.pid, &app.status) else {
            continue;
        };
        let mut listening = procs.ports_of(&world.listeners, &[pid].into());
        // In cluster mode PM2's daemon holds the app's socket.
        if world
            .listeners
            .iter()
            .any(|l| l.port == port && procs.held_by_daemon(l))
            && !listening.contains(&port)
        {
            listening.push(port);
            listening.sort_unstable();
        }
        if listening.is_empty() {
            // An owner we cannot read may be this app: only say so when we can see everything.
            if !world
                .listeners
                .iter()
                .any(|l| l.port == port && !procs.owners.contains_key(&l.inode))
            {
                findings.push(Finding::NotListening {
                    app: app.name.clone(),
                    port,
                });
            }
        } else if !listening.contains(&port) {
            findings.push(Finding::Drift {
                app: app.name.clone(),
                port,
                listening,
            });
        }
    }

    let pm2_pids: HashSet<u32> = world
        .apps
        .iter()
        .filter(|a| a.status == Status::Online)
        .filter_map(|a| a.pid)
        .collect();
    let mut seen = HashSet::new();
    for row in rows {
        let Some(port) = row.port else { continue };
        if !seen.insert(port) {
            continue;
        }
        for l in world.listeners.iter().filter(|l| l.port == port) {
            let pid = procs.owner(l);
            if procs.held_by(l, &pm2_pids) || procs.held_by_daemon(l) {
                continue;
            }
            let finding = Finding::Orphan {
                port,
                app: row.name.clone(),
                pid,
                command: pid.and_then(|p| procs.commands.get(&p).cloned()),
            };
            if !findings.contains(&finding) {
                findings.push(finding);
            }
        }
    }

    for app in &world.apps {
        let (Some(pm2_port), Some(cwd)) = (app.port, app.cwd.as_ref()) else {
            continue;
        };
        let project = crate::inventory::project_of(world, &app.name, cwd);
        let Some(file) = files.get(&project).filter(|f| f.owner != Owner::Hand) else {
            continue;
        };
        if let Some(file_port) = file
            .apps
            .iter()
            .find(|a| a.name.as_deref() == Some(&app.name))
            .and_then(|a| a.port)
            && file_port != pm2_port
        {
            findings.push(Finding::Mismatch {
                app: app.name.clone(),
                pm2_port,
                file_port,
                file: project.join(crate::ecosystem::FILE_NAME),
            });
        }
    }

    for app in &world.apps {
        let (Some(port), Some(pid), Some(cwd), Status::Online) =
            (app.port, app.pid, app.cwd.as_ref(), &app.status)
        else {
            continue;
        };
        let project = crate::inventory::project_of(world, &app.name, cwd);
        if !managed(files, Some(&project), &app.name) {
            continue;
        }
        let host = hosts.get(&(app.name.clone(), cwd.clone())).copied();
        let mut addresses: Vec<IpAddr> = world
            .listeners
            .iter()
            .filter(|l| l.port == port && !crate::ports::is_loopback(l.addr))
            .filter(|l| procs.held_by(l, &[pid].into()) || procs.held_by_daemon(l))
            .filter(|l| !host.is_some_and(|h| acknowledged(h, l.addr)))
            .map(|l| l.addr)
            .collect();
        addresses.sort();
        addresses.dedup();
        if addresses.is_empty() {
            continue;
        }
        let finding = Finding::Exposed {
            app: app.name.clone(),
            port,
            addresses,
            config: project.join(crate::buildflowz_toml::FILE_NAME),
        };
        // Instances of one app share its socket.
        if !findings.contains(&finding) {
            findings.push(finding);
        }
    }
    findings
}

/// A repair `doctor --fix` makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Fix {
    /// Move a pm2-port project off a port another app claims.
    Bump {
        app: String,
        dir: PathBuf,
        port: u16,
    },
    /// Record the port a pm2-port project's app really listens on.
    Adopt {
        app: String,
        dir: PathBuf,
        from: u16,
        to: u16,
    },
    /// Re-apply the ecosystem file to PM2.
    Reapply {
        app: String,
        dir: PathBuf,
        file: PathBuf,
        online: bool,
    },
}

impl Fix {
    /// Whether this fix is `--fix`'s answer to `finding`: a bump to a conflict on its port, an
    /// adoption to its app's drift, a re-application to its app's mismatch.
    pub fn covers(&self, finding: &Finding) -> bool {
        match (self, finding) {
            (Fix::Bump { port, .. }, Finding::Conflict { port: p, .. }) => port == p,
            (Fix::Adopt { app, .. }, Finding::Drift { app: a, .. })
            | (Fix::Reapply { app, .. }, Finding::Mismatch { app: a, .. }) => app == a,
            _ => false,
        }
    }
}

/// What is left of `finding` once `fixes` are made: nothing when one of them covers it, except a
/// conflict whose claimants not moved are still two or more (hand-written apps on one port that
/// a pm2-port app shared with them).
pub fn left_after(finding: &Finding, fixes: &[Fix]) -> Option<Finding> {
    match finding {
        Finding::Conflict { port, apps } => {
            let moved: Vec<&String> = fixes
                .iter()
                .filter_map(|x| match x {
                    Fix::Bump { app, port: p, .. } if p == port => Some(app),
                    _ => None,
                })
                .collect();
            if moved.is_empty() {
                return Some(finding.clone());
            }
            let rest: Vec<String> = apps
                .iter()
                .filter(|a| !moved.contains(a))
                .cloned()
                .collect();
            (rest.len() > 1).then_some(Finding::Conflict {
                port: *port,
                apps: rest,
            })
        }
        _ => (!fixes.iter().any(|x| x.covers(finding))).then(|| finding.clone()),
    }
}

/// Whether the app `name` of project `dir` is pm2-port's to change: the project's file is
/// pm2-port's and names it.
pub fn managed(files: &HashMap<PathBuf, Existing>, dir: Option<&PathBuf>, name: &str) -> bool {
    dir.and_then(|d| files.get(d)).is_some_and(|f| {
        f.owner == Owner::Pm2Port && f.apps.iter().any(|a| a.name.as_deref() == Some(name))
    })
}

/// The fixes that are safe: for a conflict, bump the pm2-port side (all of it when the other side
/// is not pm2-port's; all but the app that really listens when every side is); for drift, adopt
/// the one other port a pm2-port app listens on when nobody claims it; for a mismatch, re-apply the
/// file. Everything else is left to the user.
pub fn plan_fixes(
    findings: &[Finding],
    world: &World,
    rows: &[Row],
    files: &HashMap<PathBuf, Existing>,
    procs: &Processes,
) -> Vec<Fix> {
    let mut fixes = Vec::new();
    for finding in findings {
        match finding {
            Finding::Conflict { port, .. } => {
                let claimants: Vec<&Row> = rows.iter().filter(|r| r.port == Some(*port)).collect();
                let managed_rows: Vec<&&Row> = claimants
                    .iter()
                    .filter(|r| managed(files, r.project.as_ref(), &r.name))
                    .collect();
                let keep = if managed_rows.len() == claimants.len() {
                    // Every side is ours: keep the one whose process holds the port.
                    let holder = claimants.iter().position(|r| {
                        world.apps.iter().any(|a| {
                            a.name == r.name
                                && a.cwd == r.cwd
                                && a.pid.is_some_and(|pid| {
                                    world
                                        .listeners
                                        .iter()
                                        .any(|l| l.port == *port && procs.held_by(l, &[pid].into()))
                                })
                        })
                    });
                    Some(claimants[holder.unwrap_or(0)].name.clone())
                } else {
                    None
                };
                for r in managed_rows {
                    if Some(&r.name) == keep.as_ref() {
                        continue;
                    }
                    if let Some(dir) = &r.project {
                        fixes.push(Fix::Bump {
                            app: r.name.clone(),
                            dir: dir.clone(),
                            port: *port,
                        });
                    }
                }
            }
            Finding::Drift {
                app,
                port,
                listening,
            } => {
                let Some(a) = world.apps.iter().find(|a| &a.name == app) else {
                    continue;
                };
                let [to] = listening.as_slice() else { continue };
                let claimed = rows
                    .iter()
                    .any(|r| r.port == Some(*to) && (r.name != *app || r.cwd != a.cwd));
                let project = a
                    .cwd
                    .as_ref()
                    .map(|c| crate::inventory::project_of(world, app, c));
                if managed(files, project.as_ref(), app)
                    && !claimed
                    && let Some(dir) = &project
                {
                    fixes.push(Fix::Adopt {
                        app: app.clone(),
                        dir: dir.clone(),
                        from: *port,
                        to: *to,
                    });
                }
            }
            Finding::Mismatch { app, file, .. } => {
                let Some(a) = world.apps.iter().find(|a| &a.name == app) else {
                    continue;
                };
                if a.only_saved() {
                    continue;
                }
                if let Some(dir) = a
                    .cwd
                    .as_ref()
                    .map(|c| crate::inventory::project_of(world, app, c))
                {
                    fixes.push(Fix::Reapply {
                        app: app.clone(),
                        dir,
                        file: file.clone(),
                        online: a.status == Status::Online,
                    });
                }
            }
            // Which address to listen on is the user's choice (`host`), never made for them.
            Finding::NotListening { .. } | Finding::Orphan { .. } | Finding::Exposed { .. } => {}
        }
    }
    fixes
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[impl std::fmt::Display]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => items.concat(),
    }
}

fn join(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Finding {
    /// The finding in one line, for the human report.
    pub fn describe(&self) -> String {
        match self {
            Finding::Conflict { port, apps } => {
                format!("conflict: port {port} claimed by {}", apps.join(", "))
            }
            Finding::Drift {
                app,
                port,
                listening,
            } => format!(
                "drift: `{app}` assigned {port}, listening on {}",
                join(listening)
            ),
            Finding::NotListening { app, port } => {
                format!("not listening: `{app}` is online, assigned {port}, listens nowhere")
            }
            Finding::Orphan { port, app, pid, .. } => match pid {
                Some(pid) => format!("orphan: PID {pid} holds port {port} of `{app}` outside PM2"),
                None => format!("orphan: an unseen process holds port {port} of `{app}`"),
            },
            Finding::Mismatch {
                app,
                pm2_port,
                file_port,
                ..
            } => format!("mismatch: `{app}` runs on {pm2_port} in PM2, its file says {file_port}"),
            Finding::Exposed {
                app,
                port,
                addresses,
                ..
            } => format!(
                "exposed: `{app}` listens on {} (port {port}), beyond loopback",
                and_list(addresses)
            ),
        }
    }

    /// What the user should do about a finding no fix covers.
    pub fn advice(&self) -> String {
        match self {
            Finding::Conflict { port, apps } => format!(
                "port {port} is claimed by {}: none of them is pm2-port's to move; give one another port (`pm2-port init DIR` writes one)",
                apps.join(", ")
            ),
            Finding::Drift {
                app,
                port,
                listening,
            } => format!(
                "`{app}` is assigned {port} but listens on {}: make its dev server fail on a busy port (Vite's --strictPort) or fix its command, then `pm2-port start`",
                join(listening)
            ),
            Finding::NotListening { app, port } => {
                format!(
                    "`{app}` is online but listens nowhere (assigned {port}): see `pm2 logs {app}`"
                )
            }
            Finding::Orphan {
                port,
                app,
                pid: Some(pid),
                command,
            } => format!(
                "PID {pid} (`{}`) holds port {port} of `{app}` outside PM2: stop it with `kill {pid}`",
                command.as_deref().unwrap_or("?")
            ),
            Finding::Orphan { port, app, .. } => format!(
                "a process pm2-port cannot see holds port {port} of `{app}`: look with `ss -ltnp 'sport = :{port}'`"
            ),
            Finding::Mismatch {
                app,
                pm2_port,
                file_port,
                file,
            } => format!(
                "PM2 runs `{app}` on {pm2_port} but `{}` says {file_port}: `pm2-port start` applies the file",
                file.display()
            ),
            Finding::Exposed {
                app, port, config, ..
            } => format!(
                "other machines can reach `{app}` on port {port}, while the tunnel needs only 127.0.0.1: make it listen there (the framework's host flag, such as `--host 127.0.0.1`, in its `command` in `{}`, or the address its code gives `listen`), then `pm2-port start {}`; or, to keep it open on purpose, set `host = \"0.0.0.0\"` in that file",
                config.display(),
                config.parent().unwrap_or(config).display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecosystem::read::classify;
    use crate::inventory::rows;
    use crate::model::App;
    use crate::model::Listener;

    fn app(name: &str, cwd: &str, port: u16, pid: u32) -> App {
        App {
            pid: Some(pid),
            ..App::fake(name, cwd, port, "online")
        }
    }

    fn listener(port: u16, inode: u64) -> Listener {
        Listener {
            addr: "::1".parse().unwrap(),
            port,
            inode,
        }
    }

    fn ours(name: &str, port: u16) -> Existing {
        classify(format!(
            "// Generated by pm2-port: test\nmodule.exports = {{apps: [{{name: \"{name}\", env: {{PORT: {port}}}}}]}};"
        ))
    }

    #[test]
    fn a_conflict_bumps_our_side_and_drift_is_adopted() {
        let world = World {
            apps: vec![
                app("shop", "/shop", 3000, 10),
                app("rogue", "/rogue", 3000, 20),
                app("blog", "/blog", 3001, 30),
            ],
            listeners: vec![listener(3000, 1), listener(3000, 2), listener(3005, 3)],
            ..World::default()
        };
        let procs = Processes {
            owners: [(1, 11), (2, 20), (3, 31)].into(),
            parents: [(11, 10), (31, 30)].into(),
            ..Processes::default()
        };
        let mut files = HashMap::new();
        files.insert(PathBuf::from("/shop"), ours("shop", 3000));
        files.insert(PathBuf::from("/blog"), ours("blog", 3001));
        let rows = rows(&world, &files);
        let findings = diagnose(&world, &rows, &files, &procs, &Hosts::new());
        assert_eq!(
            findings,
            vec![
                Finding::Conflict {
                    port: 3000,
                    apps: vec!["rogue".into(), "shop".into()]
                },
                Finding::Drift {
                    app: "blog".into(),
                    port: 3001,
                    listening: vec![3005]
                },
            ]
        );
        let fixes = plan_fixes(&findings, &world, &rows, &files, &procs);
        assert_eq!(
            fixes,
            vec![
                Fix::Bump {
                    app: "shop".into(),
                    dir: "/shop".into(),
                    port: 3000
                },
                Fix::Adopt {
                    app: "blog".into(),
                    dir: "/blog".into(),
                    from: 3001,
                    to: 3005
                },
            ]
        );
        // Each fix answers its own finding and no other.
        let covered: Vec<Vec<bool>> = fixes
            .iter()
            .map(|x| findings.iter().map(|f| x.covers(f)).collect())
            .collect();
        assert_eq!(covered, vec![vec![true, false], vec![false, true]]);
        let elsewhere = Finding::Conflict {
            port: 3001,
            apps: vec!["a".into(), "b".into()],
        };
        assert!(!fixes[0].covers(&elsewhere));
        assert_eq!(left_after(&findings[0], &fixes), None);
        assert_eq!(left_after(&elsewhere, &fixes), Some(elsewhere.clone()));
        // Moving `shop` off a port that two hand-written apps also claim leaves their conflict.
        let three = Finding::Conflict {
            port: 3000,
            apps: vec!["b".into(), "f".into(), "shop".into()],
        };
        assert_eq!(
            left_after(&three, &fixes),
            Some(Finding::Conflict {
                port: 3000,
                apps: vec!["b".into(), "f".into()]
            })
        );
    }

    /// An online app whose process tree listens nowhere; a stopped one is not examined.
    #[test]
    fn an_online_app_listening_nowhere_is_not_listening() {
        let mut stopped = app("blog", "/blog", 3002, 40);
        stopped.status = Status::Stopped;
        let world = World {
            apps: vec![app("shop", "/shop", 3000, 10), stopped],
            // Someone else's listener on another port does not count for `shop`.
            listeners: vec![listener(3009, 1)],
            ..World::default()
        };
        let procs = Processes {
            owners: [(1, 99)].into(),
            ..Processes::default()
        };
        let mut files = HashMap::new();
        files.insert(PathBuf::from("/shop"), ours("shop", 3000));
        files.insert(PathBuf::from("/blog"), ours("blog", 3002));
        let rows = rows(&world, &files);
        let findings = diagnose(&world, &rows, &files, &procs, &Hosts::new());
        assert_eq!(
            findings,
            vec![Finding::NotListening {
                app: "shop".into(),
                port: 3000
            }]
        );
        assert_eq!(plan_fixes(&findings, &world, &rows, &files, &procs), vec![]);
    }

    #[test]
    fn an_app_listening_beyond_loopback_is_exposed_unless_its_host_asks_for_it() {
        let at = |addr: &str, port: u16, inode: u64| Listener {
            addr: addr.parse().unwrap(),
            port,
            inode,
        };
        let world = World {
            apps: vec![
                app("web", "/web", 3000, 10),
                app("api", "/api", 3001, 20),
                app("local", "/local", 3002, 30),
                // Not pm2-port's: PM2's business.
                app("prod", "/prod", 3003, 40),
            ],
            listeners: vec![
                at("0.0.0.0", 3000, 1),
                at("::", 3000, 2),
                at("::1", 3000, 3),
                at("192.168.1.20", 3001, 4),
                at("127.0.0.1", 3002, 5),
                at("::ffff:127.0.0.1", 3002, 6),
                at("::1", 3002, 7),
                at("0.0.0.0", 3003, 8),
                // The app's other ports are not its port.
                at("0.0.0.0", 9229, 9),
            ],
            ..World::default()
        };
        let procs = Processes {
            owners: [
                (1, 11),
                (2, 11),
                (3, 11),
                (4, 21),
                (5, 30),
                (6, 30),
                (7, 30),
            ]
            .into_iter()
            .chain([(8, 40), (9, 11)])
            .collect(),
            parents: [(11, 10), (21, 20)].into(),
            ..Processes::default()
        };
        let mut files = HashMap::new();
        for (name, port) in [("web", 3000), ("api", 3001), ("local", 3002)] {
            files.insert(PathBuf::from(format!("/{name}")), ours(name, port));
        }
        let rows = rows(&world, &files);
        let exposed = |hosts: &[(&str, &str)]| {
            let hosts: Hosts = hosts
                .iter()
                .map(|(name, h)| {
                    (
                        (name.to_string(), PathBuf::from(format!("/{name}"))),
                        h.parse().unwrap(),
                    )
                })
                .collect();
            diagnose(&world, &rows, &files, &procs, &hosts)
        };
        let web = |addresses: &[&str]| Finding::Exposed {
            app: "web".into(),
            port: 3000,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            config: "/web/buildflowz.toml".into(),
        };
        let api = Finding::Exposed {
            app: "api".into(),
            port: 3001,
            addresses: vec!["192.168.1.20".parse().unwrap()],
            config: "/api/buildflowz.toml".into(),
        };
        assert_eq!(exposed(&[]), vec![web(&["0.0.0.0", "::"]), api.clone()]);
        // A loopback host acknowledges nothing; an unspecified one every address; a concrete one
        // itself only.
        assert_eq!(
            exposed(&[("web", "127.0.0.1"), ("api", "::1")]),
            vec![web(&["0.0.0.0", "::"]), api.clone()]
        );
        assert_eq!(exposed(&[("web", "0.0.0.0"), ("api", "::")]), vec![]);
        assert_eq!(exposed(&[("web", "::")]), vec![api.clone()]);
        assert_eq!(
            exposed(&[("web", "10.0.0.5"), ("api", "192.168.1.20")]),
            vec![web(&["0.0.0.0", "::"])]
        );
        assert_eq!(
            exposed(&[("api", "::ffff:192.168.1.20")]),
            vec![web(&["0.0.0.0", "::"])]
        );
        assert_eq!(
            plan_fixes(&exposed(&[]), &world, &rows, &files, &procs),
            vec![]
        );

        let json = serde_json::to_value(web(&["0.0.0.0"])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "exposed", "app": "web", "port": 3000,
                               "addresses": ["0.0.0.0"], "config": "/web/buildflowz.toml"})
        );
        assert_eq!(
            web(&["0.0.0.0", "::"]).describe(),
            "exposed: `web` listens on 0.0.0.0 and :: (port 3000), beyond loopback"
        );
        assert_eq!(
            api.advice(),
            "other machines can reach `api` on port 3001, while the tunnel needs only 127.0.0.1: make it listen there (the framework's host flag, such as `--host 127.0.0.1`, in its `command` in `/api/buildflowz.toml`, or the address its code gives `listen`), then `pm2-port start /api`; or, to keep it open on purpose, set `host = \"0.0.0.0\"` in that file"
        );
        assert_eq!(and_list(&["a", "b", "c"]), "a, b and c");
        assert_eq!(and_list(&["a"]), "a");
    }

    #[test]
    fn acknowledgement() {
        let ack = |h: &str, a: &str| acknowledged(h.parse().unwrap(), a.parse().unwrap());
        assert!(ack("0.0.0.0", "0.0.0.0"));
        assert!(ack("0.0.0.0", "::"));
        assert!(ack("::", "203.0.113.7"));
        assert!(ack("10.0.0.5", "10.0.0.5"));
        assert!(ack("10.0.0.5", "::ffff:10.0.0.5"));
        assert!(!ack("10.0.0.5", "0.0.0.0"));
        assert!(!ack("10.0.0.5", "10.0.0.6"));
        assert!(!ack("127.0.0.1", "0.0.0.0"));
        assert!(!ack("::1", "::"));
        assert!(!ack("::ffff:127.0.0.1", "0.0.0.0"));
    }

    #[test]
    fn orphans_and_mismatches() {
        let mut stopped = app("web", "/web", 3002, 40);
        stopped.status = Status::Stopped;
        stopped.pid = None;
        let world = World {
            apps: vec![stopped],
            listeners: vec![listener(3002, 5)],
            ..World::default()
        };
        let procs = Processes {
            owners: [(5, 77)].into(),
            parents: [(77, 1)].into(),
            commands: [(77, "node server.js".to_string())].into(),
            daemon: None,
        };
        let mut files = HashMap::new();
        files.insert(PathBuf::from("/web"), ours("web", 3003));
        let rows = rows(&world, &files);
        let findings = diagnose(&world, &rows, &files, &procs, &Hosts::new());
        assert_eq!(
            findings,
            vec![
                Finding::Orphan {
                    port: 3002,
                    app: "web".into(),
                    pid: Some(77),
                    command: Some("node server.js".into())
                },
                Finding::Mismatch {
                    app: "web".into(),
                    pm2_port: 3002,
                    file_port: 3003,
                    file: "/web/ecosystem.config.cjs".into()
                },
            ]
        );
        let fixes = plan_fixes(&findings, &world, &rows, &files, &procs);
        assert_eq!(
            fixes,
            vec![Fix::Reapply {
                app: "web".into(),
                dir: "/web".into(),
                file: "/web/ecosystem.config.cjs".into(),
                online: false
            }]
        );
    }
}
