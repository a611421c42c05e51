//! `doctor`'s diagnosis: conflicts, drift, orphans and files that disagree with PM2, as a pure
//! function of the gathered world, and the fixes that are safe to make.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::ecosystem::read::{Existing, Owner};
use crate::inventory::Row;
use crate::ports::World;
use crate::procs::Processes;

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
}

pub fn diagnose(
    world: &World,
    rows: &[Row],
    files: &HashMap<PathBuf, Existing>,
    procs: &Processes,
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
        let (Some(port), Some(pid), "online") = (app.port, app.pid, app.status.as_str()) else {
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
        .filter(|a| a.status == "online")
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

/// Whether the app `name` of project `dir` is pm2-port's to change: the project's file is
/// pm2-port's and names it.
fn managed(files: &HashMap<PathBuf, Existing>, dir: Option<&PathBuf>, name: &str) -> bool {
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
                        online: a.status == "online",
                    });
                }
            }
            Finding::NotListening { .. } | Finding::Orphan { .. } => {}
        }
    }
    fixes
}

/// What the user should do about a finding no fix covers.
pub fn advice(finding: &Finding) -> String {
    match finding {
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
            format!("`{app}` is online but listens nowhere (assigned {port}): see `pm2 logs {app}`")
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
    }
}

/// The finding in one line, for the human report.
pub fn describe(finding: &Finding) -> String {
    match finding {
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
    }
}

fn join(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecosystem::read::classify;
    use crate::inventory::rows;
    use crate::pm2::App;
    use crate::ports::Listener;

    fn app(name: &str, cwd: &str, port: u16, pid: u32) -> App {
        App {
            pid: Some(pid),
            ..App::fake(name, cwd, port, "online")
        }
    }

    fn listener(port: u16, inode: u64) -> Listener {
        Listener {
            addr: "::".parse().unwrap(),
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
        let findings = diagnose(&world, &rows, &files, &procs);
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
    }

    #[test]
    fn orphans_and_mismatches() {
        let mut stopped = app("web", "/web", 3002, 40);
        stopped.status = "stopped".into();
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
        let findings = diagnose(&world, &rows, &files, &procs);
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
