//! What `start`, `bump` and `doctor --fix` do to PM2, as a list of operations computed from the
//! model: pure functions of PM2's apps, the listening sockets and the configured project. One
//! executor (`apply::execute`) runs the list; `--dry-run` prints it instead (each operation's
//! `Display` is its human line, its `Serialize` the JSON of `--dry-run --json`).

pub mod wait;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::detect::shell::quote_word;
use crate::model::{App, Listener, Status};

/// How long a stopped app's port may stay open after a re-apply started it for a moment.
pub const CLOSE_WITHIN_SECS: u64 = 10;
/// How long an app's old port may stay open after it moved before the holder is named.
pub const RELEASE_WITHIN_SECS: u64 = 5;

/// One operation on PM2, or one wait for what it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// `pm2 delete NAME`: before a start, so that a changed script and removed env keys do not
    /// linger; alone, for an app taken out of the project's file.
    Delete {
        name: String,
        /// The app is no longer in the project's file.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        removed: bool,
    },
    /// `pm2 start FILE --only NAME`.
    Start { name: String, file: PathBuf },
    /// `pm2 stop NAME`.
    Stop { name: String },
    /// `pm2 save`: what `pm2 resurrect` brings back.
    Save,
    /// Wait until something listens on the app's port ([`wait::Waiter`]): fail when PM2 says the
    /// app errored or stopped, on drift to other ports for 3 s, or after `timeout` seconds.
    WaitListening {
        name: String,
        #[serde(skip)]
        cwd: PathBuf,
        port: u16,
        timeout: u64,
    },
    /// Wait up to `within` seconds for the port of an app kept stopped to close; warn if not.
    WaitClosed {
        name: String,
        port: u16,
        within: u64,
    },
    /// Wait up to `within` seconds for the app's old port to be released; warn, with PIDs, about
    /// a process outside PM2 still holding it.
    CheckOrphans {
        name: String,
        port: u16,
        within: u64,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = |p: &Path| quote_word(&p.to_string_lossy());
        match self {
            Op::Delete { name, removed } => {
                write!(f, "pm2 delete {}", quote_word(name))?;
                if *removed {
                    write!(f, "  (no longer in the project's file)")?;
                }
                Ok(())
            }
            Op::Start { name, file } => {
                write!(f, "pm2 start {} --only {}", path(file), quote_word(name))
            }
            Op::Stop { name } => write!(f, "pm2 stop {}", quote_word(name)),
            Op::Save => write!(f, "pm2 save"),
            Op::WaitListening {
                name,
                port,
                timeout,
                ..
            } => write!(
                f,
                "wait for `{name}` to listen on port {port} (timeout {timeout}s)"
            ),
            Op::WaitClosed { name, port, within } => write!(
                f,
                "wait for port {port} of stopped `{name}` to close ({within}s)"
            ),
            Op::CheckOrphans { name, port, within } => write!(
                f,
                "wait for old port {port} of `{name}` to be released ({within}s), else name its holder"
            ),
        }
    }
}

/// How loud a message of a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A plain line on stderr.
    Say,
    /// `note: ...`.
    Note,
    /// `warning: ...`.
    Warn,
}

/// The operations, and what to tell the user about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pm2Plan {
    pub ops: Vec<Op>,
    pub messages: Vec<(Level, String)>,
}

impl Pm2Plan {
    fn say(&mut self, level: Level, text: String) {
        self.messages.push((level, text));
    }
}

/// One app of a configured project, as `start` and `bump` apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub cwd: PathBuf,
    pub port: u16,
    pub previous_port: Option<u16>,
}

/// The app `name` of directory `cwd` among `apps`.
pub fn find<'a>(apps: &'a [App], name: &str, cwd: &Path) -> Option<&'a App> {
    apps.iter().find(|a| a.name == name && a.belongs_to(cwd))
}

/// What `start` asks of PM2 for one project.
pub struct StartInput<'a> {
    /// The project's ecosystem file.
    pub file: &'a Path,
    /// The project's directory.
    pub project: &'a Path,
    /// The apps of the file, as configured now.
    pub targets: &'a [Target],
    /// The apps the file had before (name, resolved directory): those gone from it leave PM2.
    pub before: &'a [(String, PathBuf)],
    /// The apps PM2's live daemon knows, or `None` when no daemon runs.
    pub live: Option<&'a [App]>,
    /// With no daemon running: the apps `dump.pm2` holds.
    pub saved: &'a [App],
    /// Where `dump.pm2` is, for the message when it is not saved.
    pub dump: &'a Path,
    /// The listening sockets.
    pub listeners: &'a [Listener],
    /// Whether configuring changed the file.
    pub changed: bool,
    /// Seconds to wait for each app to listen.
    pub timeout: u64,
}

/// `start`: delete the apps gone from the file; for each app not already online on its port with
/// an unchanged file, delete it when PM2 knows it (PM2 does not apply a changed script, and keeps
/// env keys the file removed) and start it from the file; wait for each started one to listen;
/// then `pm2 save`, unless PM2's daemon had to be spawned while `dump.pm2` holds other apps
/// (saving would drop them from what `pm2 resurrect` brings back).
pub fn start(input: &StartInput) -> Pm2Plan {
    let mut plan = Pm2Plan::default();
    let live = input.live.unwrap_or_default();
    for (name, cwd) in input.before {
        if input.targets.iter().any(|t| &t.name == name) || !cwd.starts_with(input.project) {
            continue;
        }
        if find(live, name, cwd).is_some() {
            plan.ops.push(Op::Delete {
                name: name.clone(),
                removed: true,
            });
        }
    }
    let mut started = Vec::new();
    for t in input.targets {
        let known = find(live, &t.name, &t.cwd);
        let up_already = known.is_some_and(|a| {
            a.status == Status::Online && a.port == Some(t.port) && !input.changed
        }) && input.listeners.iter().any(|l| l.port == t.port);
        if up_already {
            plan.say(
                Level::Say,
                format!("`{}` is already online on port {}", t.name, t.port),
            );
            continue;
        }
        if known.is_some() {
            plan.ops.push(Op::Delete {
                name: t.name.clone(),
                removed: false,
            });
        }
        plan.ops.push(Op::Start {
            name: t.name.clone(),
            file: input.file.to_path_buf(),
        });
        started.push(t);
    }
    for t in &started {
        plan.ops.push(Op::WaitListening {
            name: t.name.clone(),
            cwd: t.cwd.clone(),
            port: t.port,
            timeout: input.timeout,
        });
    }
    if started.is_empty() {
        return plan;
    }
    // A daemon spawned now runs only what this start started: every other app of the dump would
    // be `dump-only`, and `pm2 save` would forget it.
    let dropped: Vec<&str> = if input.live.is_some() {
        Vec::new()
    } else {
        input
            .saved
            .iter()
            .filter(|a| a.only_saved() && !started.iter().any(|t| t.name == a.name))
            .map(|a| a.name.as_str())
            .collect()
    };
    if dropped.is_empty() {
        plan.ops.push(Op::Save);
    } else {
        plan.say(
            Level::Warn,
            format!(
                "not running `pm2 save`: PM2's daemon was not running and `{}` holds {} other apps ({}); run `pm2 resurrect`, then `pm2 save`",
                input.dump.display(),
                dropped.len(),
                dropped.join(", ")
            ),
        );
    }
    plan
}

/// `bump` and a fix that moved an app: when PM2 knows it, re-apply the file (docs/pm2.md, "Applying a
/// changed port": delete, start from the file, stop again when it was not online, save), then
/// wait for it on its new port and for its old port to be released; a stopped app's port must
/// close again. An app only in `dump.pm2` is left alone, with a note.
pub fn reapply_moved(apps: &[App], file: &Path, t: &Target, timeout: u64) -> Pm2Plan {
    let mut plan = Pm2Plan::default();
    let Some(known) = find(apps, &t.name, &t.cwd) else {
        return plan;
    };
    if known.only_saved() {
        plan.say(
            Level::Note,
            format!(
                "PM2's dump.pm2 still has `{}` on its old port (no daemon runs); start it with `pm2-port start {}` rather than `pm2 resurrect`",
                t.name,
                t.cwd.display()
            ),
        );
        return plan;
    }
    let online = known.status == Status::Online;
    plan.ops = reapply(&t.name, file, online);
    if online {
        plan.ops.push(Op::WaitListening {
            name: t.name.clone(),
            cwd: t.cwd.clone(),
            port: t.port,
            timeout,
        });
        if let Some(old) = t.previous_port {
            plan.ops.push(Op::CheckOrphans {
                name: t.name.clone(),
                port: old,
                within: RELEASE_WITHIN_SECS,
            });
        }
    } else {
        // Re-applying starts it for a moment: done once it is down again.
        plan.ops.push(Op::WaitClosed {
            name: t.name.clone(),
            port: t.port,
            within: CLOSE_WITHIN_SECS,
        });
    }
    plan
}

/// Apply app `name` of `file` to PM2: delete, start from the file, stop again when it was not
/// online, save.
pub fn reapply(name: &str, file: &Path, online: bool) -> Vec<Op> {
    let mut ops = vec![
        Op::Delete {
            name: name.to_string(),
            removed: false,
        },
        Op::Start {
            name: name.to_string(),
            file: file.to_path_buf(),
        },
    ];
    if !online {
        ops.push(Op::Stop {
            name: name.to_string(),
        });
    }
    ops.push(Op::Save);
    ops
}

/// The out and error logs PM2 writes for app `name` (docs: `Common.prepareAppConf`): the paths
/// its ecosystem entry `app` gives (`out_file`, `error_file`, or their aliases; `~/` is `home`,
/// relative paths are from the app's `cwd`, else `dir`), else `$PM2_HOME/logs/NAME-out.log` and
/// `NAME-error.log`, where NAME has every UTF-16 unit other than a letter, digit, `.`, `-` or `\`
/// replaced by `-` (as PM2's regular expression does: an emoji is two).
pub fn log_paths(
    pm2_home: &Path,
    name: &str,
    app: Option<&serde_json::Value>,
    dir: &Path,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    let formatted: String = name
        .chars()
        .flat_map(|c| {
            let keep = c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '\\');
            let n = if keep { 0 } else { c.len_utf16() };
            std::iter::repeat_n('-', n).chain(keep.then_some(c))
        })
        .collect();
    let option = |keys: &[&str]| {
        let app = app?;
        keys.iter().find_map(|k| {
            app.get(*k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
        })
    };
    let cwd = app
        .and_then(|a| a.get("cwd"))
        .and_then(|c| c.as_str())
        .map_or_else(|| dir.to_path_buf(), |c| dir.join(c));
    // As PM2 does: a leading `~` is the home directory (`~x` too), then `path.resolve` from the
    // app's directory, `.` and `..` worked out.
    let resolve = |given: &str| {
        let joined = match (given.strip_prefix('~'), home) {
            (Some(rest), Some(home)) => home.join(rest.trim_start_matches('/')),
            _ => cwd.join(given),
        };
        let mut clean = PathBuf::new();
        for part in joined.components() {
            match part {
                std::path::Component::ParentDir => {
                    clean.pop();
                }
                std::path::Component::CurDir => {}
                other => clean.push(other),
            }
        }
        clean
    };
    let logs = pm2_home.join("logs");
    vec![
        option(&["out_file", "out", "output", "out_log"])
            .map_or_else(|| logs.join(format!("{formatted}-out.log")), resolve),
        option(&["error_file", "error", "err", "err_file", "err_log"])
            .map_or_else(|| logs.join(format!("{formatted}-error.log")), resolve),
    ]
}

/// What takes back a failed `start`, given the operations run so far (the failed one included):
/// each app it started is deleted again when PM2 did not know it, stopped when it did (deleted
/// and started anew here), so that no app is left running on a port other than its own. No
/// `pm2 save`: what `pm2 resurrect` brings back stays as it was.
pub fn undo(done: &[Op]) -> Vec<Op> {
    let mut ops = Vec::new();
    for (i, op) in done.iter().enumerate() {
        let Op::Start { name, .. } = op else { continue };
        let known = done[..i]
            .iter()
            .any(|o| matches!(o, Op::Delete { name: n, removed: false } if n == name));
        ops.push(if known {
            Op::Stop { name: name.clone() }
        } else {
            Op::Delete {
                name: name.clone(),
                removed: false,
            }
        });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_as_pm2_makes_them() {
        let home = Path::new("/h/.pm2");
        assert_eq!(
            log_paths(home, "my_app🚀 x", None, Path::new("/p"), None),
            vec![
                PathBuf::from("/h/.pm2/logs/my-app---x-out.log"),
                PathBuf::from("/h/.pm2/logs/my-app---x-error.log"),
            ]
        );
        let app = serde_json::json!({"cwd": "/srv/shop", "out": "../logs/./out.txt", "error_file": "~err.txt"});
        assert_eq!(
            log_paths(
                home,
                "shop",
                Some(&app),
                Path::new("/p"),
                Some(Path::new("/root"))
            ),
            vec![
                PathBuf::from("/srv/logs/out.txt"),
                PathBuf::from("/root/err.txt"),
            ]
        );
    }
    use std::net::{IpAddr, Ipv4Addr};

    fn target(name: &str, cwd: &str, port: u16, previous: Option<u16>) -> Target {
        Target {
            name: name.into(),
            cwd: cwd.into(),
            port,
            previous_port: previous,
        }
    }

    fn listener(port: u16) -> Listener {
        Listener {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            inode: u64::from(port),
        }
    }

    fn file() -> PathBuf {
        PathBuf::from("/p/shop/ecosystem.config.cjs")
    }

    fn del(name: &str) -> Op {
        Op::Delete {
            name: name.into(),
            removed: false,
        }
    }

    fn start_op(name: &str) -> Op {
        Op::Start {
            name: name.into(),
            file: file(),
        }
    }

    fn wait(name: &str, cwd: &str, port: u16) -> Op {
        Op::WaitListening {
            name: name.into(),
            cwd: cwd.into(),
            port,
            timeout: 60,
        }
    }

    struct Start {
        targets: Vec<Target>,
        before: Vec<(String, PathBuf)>,
        live: Option<Vec<App>>,
        saved: Vec<App>,
        listeners: Vec<Listener>,
        changed: bool,
    }

    impl Start {
        fn new(targets: Vec<Target>) -> Start {
            Start {
                targets,
                before: vec![],
                live: Some(vec![]),
                saved: vec![],
                listeners: vec![],
                changed: true,
            }
        }
        fn plan(&self) -> Pm2Plan {
            start(&StartInput {
                file: &file(),
                project: Path::new("/p/shop"),
                targets: &self.targets,
                before: &self.before,
                live: self.live.as_deref(),
                saved: &self.saved,
                dump: Path::new("/h/dump.pm2"),
                listeners: &self.listeners,
                changed: self.changed,
                timeout: 60,
            })
        }
    }

    #[test]
    fn start_of_an_app_pm2_does_not_know_starts_waits_and_saves() {
        let plan = Start::new(vec![target("shop", "/p/shop", 3000, None)]).plan();
        assert_eq!(
            plan.ops,
            [start_op("shop"), wait("shop", "/p/shop", 3000), Op::Save]
        );
        assert!(plan.messages.is_empty());
    }

    #[test]
    fn start_of_a_known_app_deletes_it_first() {
        let mut s = Start::new(vec![target("shop", "/p/shop", 3001, None)]);
        s.live = Some(vec![App::fake("shop", "/p/shop", 3000, "online")]);
        assert_eq!(
            s.plan().ops,
            [
                del("shop"),
                start_op("shop"),
                wait("shop", "/p/shop", 3001),
                Op::Save
            ]
        );
    }

    #[test]
    fn start_leaves_an_app_online_on_its_port_with_an_unchanged_file_alone() {
        let mut s = Start::new(vec![target("shop", "/p/shop", 3000, None)]);
        s.live = Some(vec![App::fake("shop", "/p/shop", 3000, "online")]);
        s.changed = false;
        s.listeners = vec![listener(3000)];
        let plan = s.plan();
        assert_eq!(plan.ops, []);
        assert_eq!(
            plan.messages,
            [(Level::Say, "`shop` is already online on port 3000".into())]
        );
        // Nothing listens: it is restarted.
        s.listeners = vec![listener(3001)];
        assert_eq!(s.plan().ops.len(), 4);
        // A changed file: restarted too.
        s.listeners = vec![listener(3000)];
        s.changed = true;
        assert_eq!(s.plan().ops[0], del("shop"));
        // Stopped: restarted.
        s.changed = false;
        s.live = Some(vec![App::fake("shop", "/p/shop", 3000, "stopped")]);
        assert_eq!(s.plan().ops[0], del("shop"));
    }

    #[test]
    fn start_deletes_apps_gone_from_the_file_of_this_project_only() {
        let mut s = Start::new(vec![target("web", "/p/shop/web", 3000, None)]);
        s.before = vec![
            ("web".into(), "/p/shop/web".into()),
            ("api".into(), "/p/shop/api".into()),
            ("other".into(), "/p/other".into()),
            ("never-ran".into(), "/p/shop/x".into()),
        ];
        s.live = Some(vec![
            App::fake("api", "/p/shop/api", 3001, "online"),
            App::fake("other", "/p/other", 3002, "online"),
        ]);
        let plan = s.plan();
        assert_eq!(
            plan.ops[0],
            Op::Delete {
                name: "api".into(),
                removed: true
            }
        );
        assert_eq!(plan.ops[1], start_op("web"));
        assert_eq!(plan.ops.len(), 4);
    }

    #[test]
    fn start_starts_every_app_before_waiting_for_any() {
        let s = Start::new(vec![
            target("web", "/p/shop/web", 3000, None),
            target("api", "/p/shop/api", 3001, None),
        ]);
        assert_eq!(
            s.plan().ops,
            [
                start_op("web"),
                start_op("api"),
                wait("web", "/p/shop/web", 3000),
                wait("api", "/p/shop/api", 3001),
                Op::Save
            ]
        );
    }

    #[test]
    fn start_spawning_the_daemon_does_not_save_over_other_saved_apps() {
        let mut s = Start::new(vec![target("shop", "/p/shop", 3000, None)]);
        s.live = None;
        s.saved = vec![
            App::fake("shop", "/p/shop", 3000, "saved"),
            App::fake("blog", "/p/blog", 3001, "saved"),
        ];
        let plan = s.plan();
        assert_eq!(plan.ops, [start_op("shop"), wait("shop", "/p/shop", 3000)]);
        assert_eq!(
            plan.messages,
            [(Level::Warn, "not running `pm2 save`: PM2's daemon was not running and `/h/dump.pm2` holds 1 other apps (blog); run `pm2 resurrect`, then `pm2 save`".into())]
        );
        // Only itself in the dump: saved.
        s.saved.pop();
        assert_eq!(s.plan().ops.last(), Some(&Op::Save));
    }

    #[test]
    fn a_moved_online_app_is_reapplied_awaited_and_its_old_port_checked() {
        let apps = [App::fake("shop", "/p/shop", 3000, "online")];
        let t = target("shop", "/p/shop", 3001, Some(3000));
        let plan = reapply_moved(&apps, &file(), &t, 30);
        assert_eq!(
            plan.ops,
            [
                del("shop"),
                start_op("shop"),
                Op::Save,
                Op::WaitListening {
                    name: "shop".into(),
                    cwd: "/p/shop".into(),
                    port: 3001,
                    timeout: 30
                },
                Op::CheckOrphans {
                    name: "shop".into(),
                    port: 3000,
                    within: 5
                },
            ]
        );
    }

    #[test]
    fn a_moved_stopped_app_is_stopped_again_and_its_port_must_close() {
        let apps = [App::fake("shop", "/p/shop", 3000, "stopped")];
        let t = target("shop", "/p/shop", 3001, Some(3000));
        assert_eq!(
            reapply_moved(&apps, &file(), &t, 30).ops,
            [
                del("shop"),
                start_op("shop"),
                Op::Stop {
                    name: "shop".into()
                },
                Op::Save,
                Op::WaitClosed {
                    name: "shop".into(),
                    port: 3001,
                    within: 10
                },
            ]
        );
    }

    #[test]
    fn a_moved_app_pm2_does_not_run_is_left_alone() {
        let t = target("shop", "/p/shop", 3001, Some(3000));
        // Unknown, or known under another directory.
        for apps in [
            vec![],
            vec![App::fake("shop", "/p/elsewhere", 3000, "online")],
        ] {
            assert_eq!(reapply_moved(&apps, &file(), &t, 30), Pm2Plan::default());
        }
        let plan = reapply_moved(
            &[App::fake("shop", "/p/shop", 3000, "saved")],
            &file(),
            &t,
            30,
        );
        assert_eq!(plan.ops, []);
        assert_eq!(plan.messages[0].0, Level::Note);
        assert!(plan.messages[0].1.contains("dump.pm2 still has `shop`"));
    }

    #[test]
    fn undo_deletes_what_pm2_did_not_know_and_stops_what_it_did() {
        let done = [
            Op::Delete {
                name: "gone".into(),
                removed: true,
            },
            start_op("new"),
            del("known"),
            start_op("known"),
            wait("new", "/p/shop", 3000),
        ];
        assert_eq!(
            undo(&done),
            [
                del("new"),
                Op::Stop {
                    name: "known".into()
                }
            ]
        );
        assert_eq!(undo(&done[..1]), []);
    }

    #[test]
    fn each_op_has_a_human_line_and_a_json_object() {
        let ops = [
            Op::Delete {
                name: "old app".into(),
                removed: true,
            },
            start_op("shop"),
            Op::Stop {
                name: "shop".into(),
            },
            Op::Save,
            wait("shop", "/p/shop", 3001),
            Op::WaitClosed {
                name: "shop".into(),
                port: 3001,
                within: 10,
            },
            Op::CheckOrphans {
                name: "shop".into(),
                port: 3000,
                within: 5,
            },
        ];
        let lines: Vec<String> = ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "pm2 delete 'old app'  (no longer in the project's file)",
                "pm2 start /p/shop/ecosystem.config.cjs --only shop",
                "pm2 stop shop",
                "pm2 save",
                "wait for `shop` to listen on port 3001 (timeout 60s)",
                "wait for port 3001 of stopped `shop` to close (10s)",
                "wait for old port 3000 of `shop` to be released (5s), else name its holder",
            ]
        );
        assert_eq!(
            serde_json::to_value(&ops).unwrap(),
            serde_json::json!([
                {"op": "delete", "name": "old app", "removed": true},
                {"op": "start", "name": "shop", "file": "/p/shop/ecosystem.config.cjs"},
                {"op": "stop", "name": "shop"},
                {"op": "save"},
                {"op": "wait-listening", "name": "shop", "port": 3001, "timeout": 60},
                {"op": "wait-closed", "name": "shop", "port": 3001, "within": 10},
                {"op": "check-orphans", "name": "shop", "port": 3000, "within": 5},
            ])
        );
        assert_eq!(
            serde_json::to_value(del("x")).unwrap(),
            serde_json::json!({"op": "delete", "name": "x"})
        );
    }
}
