//! A project directory on disk: the [`Files`] that detection reads, and its settings file.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::buildflowz_toml::{self, ProjectConfig};
use crate::detect::Files;
use crate::error::InputError;
use crate::sys::files;

#[derive(Debug, Clone)]
pub struct Project {
    /// Absolute, symlinks resolved: PM2 records `pm_cwd` that way.
    pub dir: PathBuf,
}

impl Project {
    /// Open the project in `dir`, which must be an existing directory.
    pub fn open(dir: &Path) -> Result<Project> {
        let abs = fs::canonicalize(dir).map_err(|err| {
            InputError::Usage(format!(
                "cannot open project directory `{}`: {err}",
                dir.display()
            ))
        })?;
        if abs.to_str().is_none() {
            return Err(InputError::Usage(format!(
                "the path `{}` is not UTF-8: PM2 and ecosystem.config.cjs need UTF-8 paths; rename the directory",
                abs.display()
            ))
            .into());
        }
        if !abs.is_dir() {
            return Err(
                InputError::Usage(format!("`{}` is not a directory", dir.display())).into(),
            );
        }
        Ok(Project { dir: abs })
    }

    /// The directory's name, the default app name.
    pub fn dir_name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app".to_string())
    }

    /// `buildflowz.toml`, when present.
    pub fn config(&self) -> Result<Option<ProjectConfig>> {
        let path = self.dir.join(buildflowz_toml::FILE_NAME);
        match self.read(buildflowz_toml::FILE_NAME)? {
            Some(text) => Ok(Some(buildflowz_toml::parse(&path, &text)?)),
            None => Ok(None),
        }
    }
}

impl Files for Project {
    fn read(&self, rel: &str) -> Result<Option<String>> {
        let path = self.dir.join(rel);
        match files::read_regular(&path) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => String::from_utf8(bytes)
                .map(|text| Some(files::strip_bom(text)))
                .map_err(|_| {
                    InputError::Usage(format!("`{}` is not UTF-8 text", path.display())).into()
                }),
            Err(err) if err.kind() == ErrorKind::IsADirectory => Ok(None),
            Err(err) if err.kind() == ErrorKind::InvalidInput => Err(InputError::Usage(format!(
                "`{}`: {err}; replace it with the file itself",
                path.display()
            ))
            .into()),
            Err(err) => Err(err).with_context(|| format!("cannot read `{}`", path.display())),
        }
    }

    fn exists(&self, rel: &str) -> bool {
        self.dir.join(rel).exists()
    }

    fn list(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.join(rel))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn cargo_metadata(&self) -> Result<cargo_metadata::Metadata> {
        let manifest = self.dir.join("Cargo.toml");
        cargo_metadata::MetadataCommand::new()
            .manifest_path(&manifest)
            .no_deps()
            .exec()
            .map_err(|err| match err {
                cargo_metadata::Error::CargoMetadata { stderr } => InputError::Usage(format!(
                    "`{}`: `cargo metadata` failed: {}",
                    manifest.display(),
                    stderr.trim()
                ))
                .into(),
                other => anyhow::Error::new(other).context(format!(
                    "cannot run `cargo metadata` for `{}` (is cargo installed?)",
                    manifest.display()
                )),
            })
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}
