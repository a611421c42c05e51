//! The registry of configured projects (directory → apps and ports) and the lock around it.
//!
//! It lives in `PM2_PORT_STATE_DIR` (default `$PM2_HOME/pm2-port`): `registry.json`, written
//! atomically, and `lock`, held exclusively from reading the registry to writing it back so that
//! two pm2-port processes never hand out one port. Readers take no lock: a rename is atomic.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::ecosystem::FILE_NAME;
use crate::ecosystem::read::{self as eco_read, Existing};
use crate::model::{Entry, RegApp, Registry};
use crate::sys::files;

pub const REGISTRY_FILE: &str = "registry.json";
/// A second copy, written just before the registry: the one to read when the registry is broken.
pub const BACKUP_FILE: &str = "registry.backup.json";
const LOCK_FILE: &str = "lock";
const VERSION: u32 = 1;

/// `PM2_PORT_STATE_DIR`, else `$PM2_HOME/pm2-port`.
pub fn state_dir(pm2_home: &Path) -> PathBuf {
    std::env::var_os("PM2_PORT_STATE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| pm2_home.join("pm2-port"))
}

/// How the registry was found.
#[derive(Debug)]
pub struct Loaded {
    /// The registry as the ecosystem files on disk describe it.
    pub registry: Registry,
    /// Set when the file did not parse and was rebuilt: where [`save`] keeps the broken file.
    pub keep_broken_as: Option<PathBuf>,
    /// What is on disk differs from [`Loaded::registry`] (a file changed, a project went away, a
    /// write was interrupted): a command holding the lock writes it back.
    pub stale: bool,
    /// The ecosystem files read on the way, by project directory.
    pub files: HashMap<PathBuf, Existing>,
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
    // Non-blocking open: a FIFO put there must not hang us (it fails with ENXIO, or is refused).
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .map_err(|err| match err.raw_os_error() {
            // A FIFO without a reader: non-blocking opens for writing fail with ENXIO.
            Some(libc::ENXIO) => anyhow::anyhow!(
                "the lock file `{}` is a FIFO, not a regular file; remove it",
                path.display()
            ),
            _ => anyhow::Error::new(err)
                .context(format!("cannot open the lock file `{}`", path.display())),
        })?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        anyhow::bail!(
            "the lock file `{}` is not a regular file; remove it",
            path.display()
        );
    }
    file.lock()
        .with_context(|| format!("cannot lock `{}`", path.display()))?;
    Ok(Lock { _file: file })
}

/// Read a registry file: `None` when missing, `Err(text)` when it does not parse.
fn read_one(path: &Path) -> Result<Option<Result<Registry, String>>> {
    let Some(text) = files::read_text(path)? else {
        return Ok(None);
    };
    Ok(Some(
        serde_json::from_str::<Registry>(&text).map_err(|_| text),
    ))
}

/// Read the registry and check it against the ecosystem files it names, which are the truth: a
/// project whose file is gone is dropped, and the apps and ports of a file pm2-port or BuildFlowz
/// wrote replace what the registry recorded (a write interrupted between the registry and the file,
/// a hand edit of the port). A missing registry is an empty one. One that does not parse is
/// rebuilt from its copy (`registry.backup.json`), the directories its broken text still names
/// and `known_dirs` (PM2's app directories). Nothing is written here: the broken file stays until
/// a [`save`] keeps it aside, so a command that fails loses nothing.
pub fn load(state: &Path, known_dirs: &[PathBuf]) -> Result<Loaded> {
    let path = state.join(REGISTRY_FILE);
    let (recorded, dirs, keep_broken_as) = match read_one(&path)? {
        // Missing, with a copy beside it: a kill between keeping a broken registry aside and
        // writing the new one. The copy names every project.
        None => match read_one(&state.join(BACKUP_FILE)) {
            Ok(Some(Ok(copy))) => {
                let dirs = copy.projects.keys().cloned().collect();
                (copy, dirs, None)
            }
            _ => (Registry::default(), Vec::new(), None),
        },
        Some(Ok(registry)) => {
            let dirs = registry.projects.keys().cloned().collect();
            (registry, dirs, None)
        }
        Some(Err(text)) => {
            let aside = state.join(format!(
                "{REGISTRY_FILE}.corrupt-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            ));
            let copy = match read_one(&state.join(BACKUP_FILE)) {
                Ok(Some(Ok(copy))) => copy,
                _ => Registry::default(),
            };
            let mut dirs: Vec<PathBuf> = copy.projects.keys().cloned().collect();
            dirs.extend(paths_in(&text));
            dirs.extend(known_dirs.iter().cloned());
            (copy, dirs, Some(aside))
        }
    };
    let mut registry = Registry {
        version: VERSION,
        ..Registry::default()
    };
    let mut files = HashMap::new();
    for dir in dirs {
        if registry.projects.contains_key(&dir) || files.contains_key(&dir) {
            continue;
        }
        let file = dir.join(FILE_NAME);
        let existing = match files::read_text(&file) {
            Ok(Some(text)) => eco_read::classify(text),
            // The file is gone: so is the project.
            Ok(None) => continue,
            Err(err) => {
                // Unreadable now (permissions, a FIFO): keep what was recorded.
                verbose!("{err:#}");
                if let Some(entry) = recorded.projects.get(&dir) {
                    registry.projects.insert(dir, entry.clone());
                }
                continue;
            }
        };
        let from_file = entry_of(&dir, &existing);
        files.insert(dir.clone(), existing);
        match from_file.or_else(|| recorded.projects.get(&dir).cloned()) {
            Some(entry) => {
                registry.projects.insert(dir, entry);
            }
            None => continue,
        }
    }
    let stale = keep_broken_as.is_some() || registry.projects != recorded.projects;
    Ok(Loaded {
        registry,
        keep_broken_as,
        stale,
        files,
    })
}

/// The registry entry that an ecosystem file of pm2-port or BuildFlowz in `dir` describes: its
/// apps whose directory is `dir` or inside it (symlinks resolved). A file copied from another
/// project (its apps' `cwd` elsewhere) describes nothing of this one.
pub fn entry_of(dir: &Path, existing: &Existing) -> Option<Entry> {
    if existing.owner == eco_read::Owner::Hand {
        return None;
    }
    let apps: Vec<RegApp> = existing
        .apps
        .iter()
        .filter_map(|a| {
            let cwd = a
                .cwd
                .as_deref()
                .map_or_else(|| dir.to_path_buf(), files::canonical);
            cwd.starts_with(dir).then(|| {
                Some(RegApp {
                    name: a.name.clone()?,
                    port: a.port?,
                    cwd: (cwd != dir).then_some(cwd),
                })
            })?
        })
        .collect();
    (!apps.is_empty()).then_some(Entry { apps })
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
/// The copy (`registry.backup.json`) is written first, then the registry itself, each atomically:
/// whatever happens to one, the other names every project.
pub fn save(state: &Path, registry: &Registry, keep_broken_as: Option<&Path>) -> Result<()> {
    let path = state.join(REGISTRY_FILE);
    let write = || -> Result<()> {
        fs::create_dir_all(state)
            .with_context(|| format!("cannot create the state directory `{}`", state.display()))?;
        let mut registry = registry.clone();
        registry.version = VERSION;
        let mut text = serde_json::to_string_pretty(&registry)?;
        text.push('\n');
        files::atomic_write(&state.join(BACKUP_FILE), &text)?;
        if let Some(aside) = keep_broken_as
            && path.exists()
        {
            fs::rename(&path, aside)
                .with_context(|| format!("cannot move the broken `{}` aside", path.display()))?;
            note!("kept the broken registry as `{}`", aside.display());
        }
        files::atomic_write(&path, &text)
    };
    write().with_context(|| {
        format!(
            "cannot save pm2-port's registry `{}` (nothing else was written; free space or fix permissions in `{}`, then run the command again)",
            path.display(),
            state.display()
        )
    })
}

/// Remove what a killed pm2-port left half-written: temporary files of the registry and of the
/// ecosystem files of `dirs`. The caller holds the lock.
pub fn remove_leftovers(state: &Path, dirs: &[PathBuf]) {
    let mut gone = files::remove_leftovers(&state.join(REGISTRY_FILE));
    gone.extend(files::remove_leftovers(&state.join(BACKUP_FILE)));
    for dir in dirs {
        gone.extend(files::remove_leftovers(&dir.join(FILE_NAME)));
    }
    for path in gone {
        verbose!(
            "removed `{}`, left by an interrupted pm2-port",
            path.display()
        );
    }
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
