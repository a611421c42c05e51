//! An in-memory [`Files`] for unit tests of detection: a map from absolute paths to contents.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Result, bail};

use super::Files;

/// A project directory and the files around it (ancestors' files reachable through `../`).
pub struct MemFiles {
    dir: PathBuf,
    files: BTreeMap<PathBuf, String>,
}

impl MemFiles {
    /// `dir` is the project's directory (absolute); `files` are `(path, contents)`, each path
    /// absolute or relative to `dir` (`../uv.lock`).
    pub fn new(dir: &str, files: &[(&str, &str)]) -> MemFiles {
        let dir = PathBuf::from(dir);
        MemFiles {
            files: files
                .iter()
                .map(|(p, c)| (normalize(&dir.join(p)), c.to_string()))
                .collect(),
            dir,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        normalize(&self.dir.join(rel))
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl Files for MemFiles {
    fn read(&self, rel: &str) -> Result<Option<String>> {
        Ok(self.files.get(&self.path(rel)).cloned())
    }

    fn exists(&self, rel: &str) -> bool {
        let path = self.path(rel);
        self.files.keys().any(|p| p.starts_with(&path))
    }

    fn list(&self, rel: &str) -> Vec<String> {
        let path = self.path(rel);
        let mut names: Vec<String> = self
            .files
            .keys()
            .filter_map(|p| p.strip_prefix(&path).ok())
            .filter_map(|rest| rest.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn cargo_metadata(&self) -> Result<cargo_metadata::Metadata> {
        bail!("no cargo in memory")
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}
