//! Dev command detection (product.md section 3): from a project's manifests to the command that
//! runs its dev server and the way that server takes a port.
//!
//! Detection reads files through [`Files`] and never writes, spawns only `cargo metadata` (through
//! [`Files::cargo_metadata`]), and is otherwise a pure function of what it reads.

mod native;
pub mod node;
mod python;
pub mod shell;

use std::path::Path;

use anyhow::Result;

pub use node::PackageManager;

/// Read-only access to a project's files, relative to its directory.
pub trait Files {
    /// The file's text, or `None` when it does not exist.
    fn read(&self, rel: &str) -> Result<Option<String>>;
    fn exists(&self, rel: &str) -> bool;
    /// Names of the entries of a directory (empty when it does not exist).
    fn list(&self, rel: &str) -> Vec<String>;
    /// `cargo metadata --no-deps` for the project's `Cargo.toml`.
    fn cargo_metadata(&self) -> Result<cargo_metadata::Metadata>;
    /// The project's absolute directory (for messages).
    fn dir(&self) -> &Path;
}

/// How the dev server is started, before a port is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// A command line given by the user, run exactly as written; the port reaches it through `PORT`.
    Shell(String),
    /// Words of a command, then the port arguments; `{port}` in any of them stands for the port.
    /// `separator` puts `--` before the port arguments (npm needs it to forward flags to a
    /// script).
    Words {
        words: Vec<String>,
        port_args: Vec<String>,
        separator: bool,
    },
}

impl Launch {
    fn words(words: &[&str], port_args: &[&str]) -> Launch {
        Launch::Words {
            words: words.iter().map(|w| w.to_string()).collect(),
            port_args: port_args.iter().map(|w| w.to_string()).collect(),
            separator: false,
        }
    }

    /// The shell command line that runs the dev server on `port`.
    pub fn command_line(&self, port: u16) -> String {
        match self {
            Launch::Shell(line) => line.clone(),
            Launch::Words {
                words,
                port_args,
                separator,
            } => {
                let port = port.to_string();
                let word = |w: &String| shell::quote_word(&w.replace("{port}", &port));
                let mut out: Vec<String> = words.iter().map(word).collect();
                if !port_args.is_empty() && *separator {
                    out.push("--".to_string());
                }
                out.extend(port_args.iter().map(word));
                out.join(" ")
            }
        }
    }
}

/// How many directories above a project its workspace root is looked for.
const MAX_WORKSPACE_DEPTH: usize = 6;

/// The project's directory and its ancestors up to the root of its repository, nearest first, as
/// prefixes of relative paths (`""`, `"../"`, `"../../"`, ...). The walk of the workspace search
/// (README "Workspaces"): at most [`MAX_WORKSPACE_DEPTH`] directories up, never the home directory
/// or `/`, and none above the directory that holds `.git` (the project's own, when it has one).
pub(crate) fn workspace_dirs(files: &dyn Files) -> Vec<String> {
    let mut out = vec![String::new()];
    if files.exists(".git") {
        return out;
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let mut ancestors = files.dir().ancestors().skip(1);
    for depth in 1..=MAX_WORKSPACE_DEPTH {
        let Some(dir) = ancestors.next() else {
            break;
        };
        if home.as_deref() == Some(dir) || dir.parent().is_none() {
            break;
        }
        let up = "../".repeat(depth);
        let root = files.exists(&format!("{up}.git"));
        out.push(up);
        if root {
            break;
        }
    }
    out
}

/// What detection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// An id of frameworks.md, or `None`.
    pub framework: Option<&'static str>,
    pub package_manager: Option<PackageManager>,
    pub launch: Launch,
    /// Extra environment the framework wants (`BROWSER=none` for Create React App).
    pub env: Vec<(&'static str, &'static str)>,
    /// Things the user should know (a hard-coded port that cannot be replaced, an ambiguous pick).
    pub notes: Vec<String>,
}

impl Detection {
    fn new(framework: &'static str, launch: Launch) -> Detection {
        Detection {
            framework: Some(framework),
            package_manager: None,
            launch,
            env: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Detect the dev command of the project behind `files`; `None` when nothing is recognised.
///
/// Backends with their own dev server (Laravel, Rails, Django) come before `package.json`, which
/// they usually also have for their assets; Hugo comes before it for the same reason.
pub fn detect(files: &dyn Files) -> Result<Option<Detection>> {
    if let Some(d) = native::laravel(files) {
        return Ok(Some(d));
    }
    if let Some(d) = native::rails(files) {
        return Ok(Some(d));
    }
    if let Some(d) = python::django(files)? {
        return Ok(Some(d));
    }
    if let Some(d) = native::hugo(files)? {
        return Ok(Some(d));
    }
    if let Some(d) = node::detect(files)? {
        return Ok(Some(d));
    }
    if let Some(d) = python::detect(files)? {
        return Ok(Some(d));
    }
    if let Some(d) = native::rust(files)? {
        return Ok(Some(d));
    }
    if let Some(d) = native::go(files)? {
        return Ok(Some(d));
    }
    Ok(None)
}

/// In-memory [`Files`] for the detectors' unit tests.
#[cfg(test)]
pub(crate) mod mem {
    use std::collections::BTreeMap;
    use std::path::{Component, Path, PathBuf};

    use anyhow::{Result, bail};

    use super::Files;

    /// A project directory and files around it, by absolute path.
    pub struct MemFiles {
        dir: PathBuf,
        files: BTreeMap<PathBuf, String>,
    }

    impl MemFiles {
        /// The project in `dir` (absolute) with `files` given relative to it (`../uv.lock`).
        pub fn new(dir: &str, files: &[(&str, &str)]) -> MemFiles {
            let dir = PathBuf::from(dir);
            let files = files
                .iter()
                .map(|(rel, text)| (normalize(&dir.join(rel)), text.to_string()))
                .collect();
            MemFiles { dir, files }
        }

        fn path(&self, rel: &str) -> PathBuf {
            normalize(&self.dir.join(rel))
        }
    }

    fn normalize(path: &Path) -> PathBuf {
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::CurDir => {}
                c => out.push(c),
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
            self.files.keys().any(|f| f.starts_with(&path))
        }

        fn list(&self, rel: &str) -> Vec<String> {
            let path = self.path(rel);
            let mut names: Vec<String> = self
                .files
                .keys()
                .filter_map(|f| f.strip_prefix(&path).ok()?.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .filter(|n| !n.is_empty())
                .collect();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_dirs_stop_at_the_repository_root() {
        let files = mem::MemFiles::new("/srv/repo/apps/api", &[("../../.git/HEAD", "")]);
        assert_eq!(workspace_dirs(&files), ["", "../", "../../"]);
        let files = mem::MemFiles::new("/srv/repo", &[(".git/HEAD", "")]);
        assert_eq!(workspace_dirs(&files), [""]);
        // No repository: up to, not including, `/`.
        let files = mem::MemFiles::new("/srv/a/b", &[]);
        assert_eq!(workspace_dirs(&files), ["", "../", "../../"]);
    }

    #[test]
    fn npm_separator_only_with_port_args() {
        let mut l = Launch::words(&["npm", "run", "dev"], &["--port", "{port}"]);
        if let Launch::Words { separator, .. } = &mut l {
            *separator = true;
        }
        assert_eq!(l.command_line(3003), "npm run dev -- --port 3003");
        let l = Launch::Words {
            words: vec!["npm".into(), "run".into(), "dev".into()],
            port_args: vec![],
            separator: true,
        };
        assert_eq!(l.command_line(3003), "npm run dev");
    }

    #[test]
    fn words_are_quoted() {
        let l = Launch::words(&["python3", "my app.py"], &["--fwd=--port={port}"]);
        assert_eq!(l.command_line(80), "python3 'my app.py' --fwd=--port=80");
    }
}
