//! The server as one value: PM2's apps with their [`Status`], the listening sockets and their
//! owners, the registry's reservations, the ecosystem files by directory. The effects layer
//! (`sys/`) gathers it; the pure code (port choice, doctor's diagnosis, the inventory, tunnel
//! planning) takes it and nothing else.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One PM2 app, reduced to what port allocation needs.
/// An app's status: PM2's (`online`, `stopped`, `errored`, ...) and pm2-port's own for apps PM2
/// does not run (`saved`, `dump-only`, `not-started`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Status {
    Online,
    Launching,
    Stopping,
    Stopped,
    Errored,
    /// PM2's `one-launch-status`.
    OneLaunch,
    /// PM2's `waiting restart`.
    WaitingRestart,
    /// Only in `dump.pm2`; no daemon runs.
    Saved,
    /// In `dump.pm2` but not in the running daemon (deleted since the last `pm2 save`, or a daemon
    /// started afresh and never resurrected).
    DumpOnly,
    /// A project in the registry that PM2 does not know.
    NotStarted,
    /// A status this version does not know, kept as PM2 wrote it.
    Other(String),
}

impl Status {
    pub fn parse(s: &str) -> Status {
        match s {
            "online" => Status::Online,
            "launching" => Status::Launching,
            "stopping" => Status::Stopping,
            "stopped" => Status::Stopped,
            "errored" => Status::Errored,
            "one-launch-status" => Status::OneLaunch,
            "waiting restart" => Status::WaitingRestart,
            "saved" => Status::Saved,
            "dump-only" => Status::DumpOnly,
            "not-started" => Status::NotStarted,
            other => Status::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Online => "online",
            Status::Launching => "launching",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Errored => "errored",
            Status::OneLaunch => "one-launch-status",
            Status::WaitingRestart => "waiting restart",
            Status::Saved => "saved",
            Status::DumpOnly => "dump-only",
            Status::NotStarted => "not-started",
            Status::Other(s) => s,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub pm_id: Option<u64>,
    /// Missing or 0 when the app is not running.
    pub pid: Option<u32>,
    /// PM2's status; `saved` for an app only in `dump.pm2`.
    pub status: Status,
    /// `pm2_env.pm_cwd`: the app's working directory, which identifies its project.
    pub cwd: Option<PathBuf>,
    /// `pm2_env.env.PORT`, else `pm2_env.PORT`.
    pub port: Option<u16>,
    /// The app's log files (`pm_out_log_path`, `pm_err_log_path`).
    pub logs: Vec<PathBuf>,
}

impl App {
    /// An app for tests: `name` in `cwd` on `port`, with `status`.
    #[cfg(test)]
    pub fn fake(name: &str, cwd: &str, port: u16, status: &str) -> App {
        App {
            name: name.into(),
            pm_id: None,
            pid: None,
            status: Status::parse(status),
            cwd: Some(cwd.into()),
            port: Some(port),
            logs: vec![],
        }
    }

    /// Whether the app is only in `dump.pm2`, not in a running daemon: `saved` (no daemon runs) or
    /// `dump-only` (a daemon runs without it: deleted since the last `pm2 save`, or the daemon was
    /// started afresh and never resurrected).
    pub fn only_saved(&self) -> bool {
        matches!(self.status, Status::Saved | Status::DumpOnly)
    }

    /// Whether this app runs in the project directory `dir`.
    pub fn belongs_to(&self, dir: &Path) -> bool {
        self.cwd.as_deref() == Some(dir)
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: IpAddr,
    pub port: u16,
    /// The socket's inode, to find its owning process.
    pub inode: u64,
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Who holds a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A PM2 app of another directory, whatever its status.
    Pm2App {
        name: String,
        status: Status,
        cwd: Option<PathBuf>,
    },
    /// A project of the registry, configured but perhaps never started.
    Project { name: String, dir: PathBuf },
    /// A listening socket that is not the project's own app.
    Listener { address: String },
    /// Another app of the same run.
    Sibling { name: String },
    /// The port `bump` moves the project off.
    Current,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Pm2App { name, status, cwd } => {
                write!(f, "PM2 app `{name}` ({status}")?;
                if let Some(cwd) = cwd {
                    write!(f, ", in `{}`", cwd.display())?;
                }
                write!(f, ")")
            }
            Holder::Project { name, dir } => {
                write!(
                    f,
                    "project `{name}` in `{}` (reserved by pm2-port)",
                    dir.display()
                )
            }
            Holder::Listener { address } => write!(f, "a process listening on {address}"),
            Holder::Sibling { name } => write!(f, "app `{name}` of this project"),
            Holder::Current => write!(f, "the project itself (moving off it)"),
        }
    }
}

/// Everything that can hold a port, as gathered once per command.
#[derive(Debug, Default, Clone)]
pub struct World {
    pub apps: Vec<App>,
    pub listeners: Vec<Listener>,
    pub reservations: Vec<Reservation>,
    /// The ecosystem files read while gathering, by project directory.
    pub files: std::collections::HashMap<PathBuf, Existing>,
    /// Listener inodes whose owning process descends from one of the project's own PM2 apps.
    pub own_inodes: HashSet<u64>,
    /// Listener inodes whose owner could not be read (another user's process).
    pub unknown_inodes: HashSet<u64>,
}

impl World {
    /// The holder of `port` from the point of view of the project whose directories (its own and
    /// its apps') are `own` (empty: nobody's).
    ///
    /// The project's own PM2 apps and reservations do not hold its ports, nor do listeners that
    /// belong to its running apps' process trees. A listener whose owner cannot be read is taken
    /// to be the project's app when one of its online apps is assigned that port.
    pub fn holder(&self, own: &[PathBuf], port: u16) -> Option<Holder> {
        let own_dirs = own;
        let own = |dir: Option<&Path>| dir.is_some_and(|d| own.iter().any(|o| o == d));
        if let Some(app) = self
            .apps
            .iter()
            .find(|a| a.port == Some(port) && !own(a.cwd.as_deref()))
        {
            return Some(Holder::Pm2App {
                name: app.name.clone(),
                status: app.status.clone(),
                cwd: app.cwd.clone(),
            });
        }
        // A reservation is the project's own when it is the project's entry: another project's,
        // even in one of this project's app directories, is someone else's.
        let own_project = |dir: &Path| own_dirs.first().is_some_and(|d| d == dir);
        if let Some(r) = self
            .reservations
            .iter()
            .find(|r| r.port == port && !own_project(&r.dir))
        {
            return Some(Holder::Project {
                name: r.name.clone(),
                dir: r.dir.clone(),
            });
        }
        let own_online = self
            .apps
            .iter()
            .any(|a| a.port == Some(port) && own(a.cwd.as_deref()) && a.status == Status::Online);
        self.listeners
            .iter()
            .filter(|l| l.port == port)
            .find(|l| {
                !(self.own_inodes.contains(&l.inode)
                    || (own_online && self.unknown_inodes.contains(&l.inode)))
            })
            .map(|l| Holder::Listener {
                address: l.to_string(),
            })
    }

    /// The directory of another project that uses the app name `name`, in PM2 or the registry.
    pub fn name_used_elsewhere(&self, name: &str, own: &[PathBuf]) -> Option<PathBuf> {
        let own_dirs = own;
        let own = |dir: &Path| own.iter().any(|o| o == dir);
        self.apps
            .iter()
            .find(|a| a.name == name && !a.cwd.as_deref().is_some_and(own))
            .map(|a| a.cwd.clone().unwrap_or_default())
            .or_else(|| {
                self.reservations
                    .iter()
                    .find(|r| r.name == name && own_dirs.first() != Some(&r.dir))
                    .map(|r| r.dir.clone())
            })
    }
}

#[derive(Debug, Default, Clone)]
pub struct Processes {
    /// Listener inode → owning PID, where readable.
    pub owners: HashMap<u64, u32>,
    /// PID → parent PID.
    pub parents: HashMap<u32, u32>,
    /// PM2's daemon (`$PM2_HOME/pm2.pid`), when one runs.
    pub daemon: Option<u32>,
    /// PID → command line, for the processes a report names.
    pub commands: HashMap<u32, String>,
}

impl Processes {
    pub fn owner(&self, l: &Listener) -> Option<u32> {
        self.owners.get(&l.inode).copied()
    }

    /// Whether `pid` is one of `ancestors` or descends from one.
    pub fn descends(&self, mut pid: u32, ancestors: &HashSet<u32>) -> bool {
        for _ in 0..128 {
            if ancestors.contains(&pid) {
                return true;
            }
            match self.parents.get(&pid) {
                Some(&ppid) if ppid != 0 && ppid != pid => pid = ppid,
                _ => return false,
            }
        }
        false
    }

    /// Whether the listener belongs to the process trees of `pids`.
    pub fn held_by(&self, l: &Listener, pids: &HashSet<u32>) -> bool {
        self.owner(l).is_some_and(|o| self.descends(o, pids))
    }

    /// Whether PM2's daemon holds the listener itself (an app in cluster mode).
    pub fn held_by_daemon(&self, l: &Listener) -> bool {
        self.daemon.is_some() && self.owner(l) == self.daemon
    }

    /// The ports the process trees of `pids` listen on, sorted.
    pub fn ports_of(&self, listeners: &[Listener], pids: &HashSet<u32>) -> Vec<u16> {
        let mut ports: Vec<u16> = listeners
            .iter()
            .filter(|l| self.held_by(l, pids))
            .map(|l| l.port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegApp {
    pub name: String,
    pub port: u16,
    /// The app's working directory when it is not the project's (`[[apps]]` with a `dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub apps: Vec<RegApp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    pub version: u32,
    /// Keyed by the project's absolute directory.
    pub projects: BTreeMap<PathBuf, Entry>,
}

/// One reserved port, flattened for port choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The project's directory (where its ecosystem file is).
    pub dir: PathBuf,
    /// The app's working directory: PM2's `pm_cwd` once it runs.
    pub cwd: PathBuf,
    pub name: String,
    pub port: u16,
}

impl Registry {
    pub fn reservations(&self) -> Vec<Reservation> {
        self.projects
            .iter()
            .flat_map(|(dir, e)| {
                e.apps.iter().map(|a| Reservation {
                    dir: dir.clone(),
                    cwd: a.cwd.clone().unwrap_or_else(|| dir.clone()),
                    name: a.name.clone(),
                    port: a.port,
                })
            })
            .collect()
    }
}

// The ecosystem files, as read back (`ecosystem::read::classify`).

/// An app as read back from an existing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingApp {
    pub name: Option<String>,
    pub port: Option<u16>,
    pub cwd: Option<PathBuf>,
}

/// Who wrote the existing file, which decides whether pm2-port may replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// pm2-port (its header): regenerated freely.
    Pm2Port,
    /// BuildFlowz's shell scripts (their exact shape): adopted, port kept.
    BuildFlowz,
    /// Anything else: replaced only with `--force`.
    Hand,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    pub text: String,
    pub owner: Owner,
    pub apps: Vec<ExistingApp>,
    /// For a hand-written file of one plain app: what it sets beyond pm2-port's own keys, which
    /// `--force` carries into buildflowz.toml so that replacing the file loses nothing.
    pub extras: Option<Extras>,
    /// The command of the file's only app when it is a `bash -c` line (BuildFlowz's shape and
    /// pm2-port's), in the `$PORT` form, whoever wrote the file: what `init` keeps when it
    /// detects no dev command itself.
    pub command: Option<String>,
}

/// What a hand-written app object holds beyond the keys pm2-port writes itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    /// `env` keys other than `PORT`.
    pub env: serde_json::Map<String, serde_json::Value>,
    /// App options other than `name`, `cwd`, `script`, `args`, `env` (`autorestart` and `watch`
    /// only when they differ from pm2-port's `true` and `false`).
    pub pm2: serde_json::Map<String, serde_json::Value>,
    /// The command of a `bash -c` app, with the port written as `$PORT` (BuildFlowz's
    /// `export PORT=N &&` and `flox activate --` prefixes taken off).
    pub command: Option<String>,
}

impl Extras {
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.pm2.is_empty() && self.command.is_none()
    }
}

impl Existing {
    /// The port the file gives the app `name`; with `or_only`, the port of the file's only app
    /// whatever its name (a single-app project renamed, or a hand-written file).
    pub fn port_of(&self, name: &str, or_only: bool) -> Option<u16> {
        self.apps
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .or(match self.apps.as_slice() {
                [only] if or_only => Some(only),
                _ => None,
            })
            .and_then(|a| a.port)
    }
}
