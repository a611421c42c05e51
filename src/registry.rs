//! The registry of configured projects (directory → apps and ports) and the lock around it.
//!
//! It lives in `PM2_PORT_STATE_DIR` (default `$PM2_HOME/pm2-port`): `registry.json`, written
//! atomically, and `lock`, held exclusively from reading the registry to writing it back so that
//! two pm2-port processes never hand out one port. Readers take no lock: a rename is atomic.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::ecosystem::{FILE_NAME, read as eco_read, write::atomic_write};

pub const REGISTRY_FILE: &str = "registry.json";
const LOCK_FILE: &str = "lock";
const VERSION: u32 = 1;

/// `PM2_PORT_STATE_DIR`, else `$PM2_HOME/pm2-port`.
pub fn state_dir(pm2_home: &Path) -> PathBuf {
    std::env::var_os("PM2_PORT_STATE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| pm2_home.join("pm2-port"))
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

    /// Drop projects whose directory or ecosystem file is gone; say which.
    fn prune(&mut self) -> Vec<PathBuf> {
        let gone: Vec<PathBuf> = self
            .projects
            .keys()
            .filter(|dir| !dir.join(FILE_NAME).is_file())
            .cloned()
            .collect();
        for dir in &gone {
            self.projects.remove(dir);
        }
        gone
    }
}

/// How the registry was found.
#[derive(Debug)]
pub struct Loaded {
    pub registry: Registry,
    /// Set when the file did not parse and was rebuilt: where [`save`] keeps the broken file.
    pub keep_broken_as: Option<PathBuf>,
}

/// The exclusive lock; released on drop.
pub struct Lock {
    _file: File,
}

/// Take the exclusive lock, waiting for another pm2-port to finish.
pub fn lock(state: &Path) -> Result<Lock> {
    fs::create_dir_all(state)
        .with_context(|| format!("cannot create the state directory `{}`", state.display()))?;
    let path = state.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open `{}`", path.display()))?;
    file.lock()
        .with_context(|| format!("cannot lock `{}`", path.display()))?;
    Ok(Lock { _file: file })
}

/// Read the registry. A missing file is an empty registry. A file that does not parse is rebuilt
/// from `known_dirs` (PM2's app directories) and the directories the broken text still names, by
/// reading their ecosystem files. Nothing is written here: the broken file stays until a [`save`]
/// keeps it aside, so a command that fails loses nothing.
pub fn load(state: &Path, known_dirs: &[PathBuf]) -> Result<Loaded> {
    let path = state.join(REGISTRY_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Loaded {
                registry: Registry {
                    version: VERSION,
                    ..Registry::default()
                },
                keep_broken_as: None,
            });
        }
        Err(err) => return Err(err).with_context(|| format!("cannot read `{}`", path.display())),
    };
    match serde_json::from_str::<Registry>(&text) {
        Ok(mut registry) => {
            registry.prune();
            Ok(Loaded {
                registry,
                keep_broken_as: None,
            })
        }
        Err(_) => {
            let aside = state.join(format!(
                "{REGISTRY_FILE}.corrupt-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            ));
            let mut dirs: Vec<PathBuf> = known_dirs.to_vec();
            dirs.extend(paths_in(&text));
            Ok(Loaded {
                registry: rebuild(&dirs),
                keep_broken_as: Some(aside),
            })
        }
    }
}

/// The registry as the ecosystem files in `dirs` describe it.
pub fn rebuild(dirs: &[PathBuf]) -> Registry {
    let mut registry = Registry {
        version: VERSION,
        ..Registry::default()
    };
    for dir in dirs {
        if registry.projects.contains_key(dir) {
            continue;
        }
        let Ok(text) = fs::read_to_string(dir.join(FILE_NAME)) else {
            continue;
        };
        let existing = eco_read::classify(text);
        if existing.owner == eco_read::Owner::Hand {
            continue;
        }
        let apps: Vec<RegApp> = existing
            .apps
            .iter()
            .filter_map(|a| {
                Some(RegApp {
                    name: a.name.clone()?,
                    port: a.port?,
                    cwd: a.cwd.clone().filter(|c| c != dir),
                })
            })
            .collect();
        if !apps.is_empty() {
            registry.projects.insert(dir.clone(), Entry { apps });
        }
    }
    registry
}

/// Absolute paths quoted in a (possibly truncated) JSON text.
fn paths_in(text: &str) -> Vec<PathBuf> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/') && !s.contains('\\'))
        .map(PathBuf::from)
        .collect()
}

/// Write the registry (the caller holds the lock), first keeping a broken one as `keep_broken_as`.
pub fn save(state: &Path, registry: &Registry, keep_broken_as: Option<&Path>) -> Result<()> {
    fs::create_dir_all(state)
        .with_context(|| format!("cannot create the state directory `{}`", state.display()))?;
    let path = state.join(REGISTRY_FILE);
    if let Some(aside) = keep_broken_as
        && path.exists()
    {
        fs::rename(&path, aside)
            .with_context(|| format!("cannot move the broken `{}` aside", path.display()))?;
        note!("kept the broken registry as `{}`", aside.display());
    }
    let mut registry = registry.clone();
    registry.version = VERSION;
    registry.prune();
    let mut text = serde_json::to_string_pretty(&registry)?;
    text.push('\n');
    atomic_write(&state.join(REGISTRY_FILE), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_survive_truncation() {
        let text = r#"{"version":1,"projects":{"/srv/a":{"apps":[{"name":"a","port":3000}]},"/srv/b":{"apps":[{"na"#;
        assert_eq!(
            paths_in(text),
            [PathBuf::from("/srv/a"), PathBuf::from("/srv/b")]
        );
    }

    #[test]
    fn round_trip_and_prune() {
        let state = tempfile::tempdir().unwrap();
        let live = tempfile::tempdir().unwrap();
        fs::write(live.path().join(FILE_NAME), "x").unwrap();
        let mut r = Registry::default();
        let app = |port| Entry {
            apps: vec![RegApp {
                name: "a".into(),
                port,
                cwd: None,
            }],
        };
        r.projects.insert(live.path().to_path_buf(), app(3000));
        r.projects.insert("/nonexistent/dir".into(), app(3001));
        save(state.path(), &r, None).unwrap();
        let loaded = load(state.path(), &[]).unwrap();
        assert_eq!(loaded.registry.projects.len(), 1);
        assert_eq!(loaded.registry.reservations()[0].port, 3000);
    }
}
