//! Dev command detection (docs/product.md section 3): from a project's manifests to the command
//! that runs its dev server and the way that server takes a port.
//!
//! Detection reads files through [`Files`] and never writes, spawns only `cargo metadata` (through
//! [`Files::cargo_metadata`]), and is otherwise a pure function of what it reads.

#[cfg(test)]
pub mod memory;
mod native;
pub mod node;
mod python;
pub mod shell;
mod source;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

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

/// The files of a subdirectory of a project, for a script that hands off to it (`yarn --cwd
/// website start`).
pub struct Sub<'a> {
    parent: &'a dyn Files,
    prefix: String,
    dir: PathBuf,
}

impl<'a> Sub<'a> {
    pub fn new(parent: &'a dyn Files, sub: &str) -> Sub<'a> {
        Sub {
            parent,
            prefix: format!("{sub}/"),
            dir: parent.dir().join(sub),
        }
    }
}

impl Files for Sub<'_> {
    fn read(&self, rel: &str) -> Result<Option<String>> {
        self.parent.read(&format!("{}{rel}", self.prefix))
    }

    fn exists(&self, rel: &str) -> bool {
        self.parent.exists(&format!("{}{rel}", self.prefix))
    }

    fn list(&self, rel: &str) -> Vec<String> {
        self.parent.list(&format!("{}{rel}", self.prefix))
    }

    fn cargo_metadata(&self) -> Result<cargo_metadata::Metadata> {
        bail!(
            "`{}`: a Rust project in a subdirectory is not read",
            self.dir.display()
        )
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether the project is a Hugo site: `hugo.toml`/`.yaml`/`.yml`/`.json` at its root or in
/// `config/_default/`, or a `config.toml` with a `baseURL` (Hugo before 0.110).
pub fn hugo_config(files: &dyn Files) -> Result<bool> {
    for dir in ["", "config/_default/"] {
        if ["toml", "yaml", "yml", "json"]
            .iter()
            .any(|ext| files.exists(&format!("{dir}hugo.{ext}")))
        {
            return Ok(true);
        }
        if let Some(config) = files.read(&format!("{dir}config.toml"))?
            && config
                .lines()
                .any(|l| l.trim_start().to_ascii_lowercase().starts_with("baseurl"))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The address a dev server listens on unless buildflowz.toml says `host`: the tunnel reaches
/// `localhost`, and a dev server on every interface of a server publishes unfinished code.
pub const LOOPBACK: &str = "127.0.0.1";

/// How the dev server is started, before a port is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// A command line given by the user, run exactly as written; the port reaches it through `PORT`.
    Shell(String),
    /// Words of a command, then the port arguments; `{port}` in any of them stands for the port,
    /// `{host}` for the address to listen on.
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

    /// The shell command line that runs the dev server on `port`, on loopback.
    pub fn command_line(&self, port: u16) -> String {
        self.command_line_on(port, LOOPBACK)
    }

    /// The shell command line that runs the dev server on `host`:`port`.
    pub fn command_line_on(&self, port: u16, host: &str) -> String {
        match self {
            Launch::Shell(line) => line.clone(),
            Launch::Words {
                words,
                port_args,
                separator,
            } => {
                let port = port.to_string();
                // An IPv6 address before `:{port}` is written in brackets (`[::1]:3000`).
                let addr = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                let word = |w: &String| {
                    shell::quote_word(
                        &w.replace("{host}:{port}", &addr)
                            .replace("{port}", &port)
                            .replace("{host}", host),
                    )
                };
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
    /// An id of docs/frameworks.md, or `None`.
    pub framework: Option<&'static str>,
    pub package_manager: Option<PackageManager>,
    pub launch: Launch,
    /// Extra environment the framework wants (`BROWSER=none` for Create React App).
    pub env: Vec<(&'static str, &'static str)>,
    /// Things the user should know (a hard-coded port that cannot be replaced, an ambiguous pick).
    pub notes: Vec<String>,
}

impl Detection {
    /// Whether the command or the environment tells the server which address to listen on.
    pub fn takes_host(&self) -> bool {
        let launch = match &self.launch {
            Launch::Shell(_) => false,
            Launch::Words {
                words, port_args, ..
            } => words.iter().chain(port_args).any(|w| w.contains("{host}")),
        };
        launch || self.env.iter().any(|(_, v)| v.contains("{host}"))
    }

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
    let Some(mut detection) = detect_command(files)? else {
        return Ok(None);
    };
    // A server whose code fixes its port ignores PORT: say so now rather than at `start` (unless
    // the port is passed as an argument, which such code reads).
    let argued =
        matches!(&detection.launch, Launch::Words { port_args, .. } if !port_args.is_empty());
    if let Some(fw) = detection.framework
        && !argued
        && source::SERVERS.contains(&fw)
        && let Some(note) = source::literal_port_note(files, fw)?
    {
        detection.notes.push(note);
    }
    Ok(Some(detection))
}

fn detect_command(files: &dyn Files) -> Result<Option<Detection>> {
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
        // A site that runs Hugo through its package.json scripts (or the npm package that
        // ships Hugo) is started the way its scripts say.
        if let Ok(Some(node)) = node::detect(files)
            && node.framework == Some("hugo")
        {
            return Ok(Some(node));
        }
        return Ok(Some(d));
    }
    // A root that holds several apps is only an error when nothing else here is an app: a Python
    // or Go project keeps a package.json for its tooling beside a front-end of its own.
    let mut fan_out = None;
    match node::detect(files) {
        Ok(Some(d)) => return Ok(Some(d)),
        Ok(None) => {}
        Err(err)
            if matches!(
                err.downcast_ref::<crate::error::RuntimeError>(),
                Some(crate::error::RuntimeError::FanOut { .. })
            ) =>
        {
            fan_out = Some(err);
        }
        Err(err) => return Err(err),
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
    match fan_out {
        Some(err) => Err(err),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_dirs_stop_at_the_repository_root() {
        let files = memory::MemFiles::new("/srv/repo/apps/api", &[("../../.git/HEAD", "")]);
        assert_eq!(workspace_dirs(&files), ["", "../", "../../"]);
        let files = memory::MemFiles::new("/srv/repo", &[(".git/HEAD", "")]);
        assert_eq!(workspace_dirs(&files), [""]);
        // No repository: up to, not including, `/`.
        let files = memory::MemFiles::new("/srv/a/b", &[]);
        assert_eq!(workspace_dirs(&files), ["", "../", "../../"]);
    }

    /// A Python, Go or Hugo project with a package.json for its tooling and a front-end of its
    /// own in a subdirectory is that project, not a root of several apps.
    #[test]
    fn a_tooling_package_json_beside_a_front_end_does_not_hide_the_project() {
        let tooling =
            r#"{"devDependencies":{"prettier":"3","husky":"9"},"scripts":{"prepare":"husky"}}"#;
        let front: &[(&str, &str)] = &[
            ("/p/package.json", tooling),
            ("/p/package-lock.json", ""),
            ("/p/frontend/package.json", r#"{"scripts":{"dev":"vite"}}"#),
            ("/p/frontend/package-lock.json", ""),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = front.to_vec();
            all.extend_from_slice(extra);
            let files = memory::MemFiles::new("/p", &all);
            detect(&files).unwrap().map(|d| d.launch.command_line(4000))
        };
        assert_eq!(
            with(&[("/p/requirements.txt", "fastapi\n"), ("/p/main.py", "")]).as_deref(),
            Some("uvicorn main:app --reload --port 4000")
        );
        assert_eq!(
            with(&[("/p/hugo.toml", "")]).as_deref(),
            Some("hugo server -p 4000")
        );
        // Nothing else: the root's apps are offered.
        let files = memory::MemFiles::new("/p", front);
        let err = detect(&files).unwrap_err().to_string();
        assert!(err.contains("(frontend)"), "{err}");
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
    fn an_ipv6_host_before_a_port_is_bracketed() {
        let l = Launch::words(&["python3", "manage.py", "runserver"], &["{host}:{port}"]);
        assert_eq!(
            l.command_line(8000),
            "python3 manage.py runserver 127.0.0.1:8000"
        );
        assert_eq!(
            l.command_line_on(8000, "::"),
            "python3 manage.py runserver '[::]:8000'"
        );
    }

    #[test]
    fn words_are_quoted() {
        let l = Launch::words(&["python3", "my app.py"], &["--fwd=--port={port}"]);
        assert_eq!(l.command_line(80), "python3 'my app.py' --fwd=--port=80");
    }
}
