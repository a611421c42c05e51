//! Node projects: package.json, its package manager, and the frameworks of docs/frameworks.md
//! ([`table`]); the workspace around a package ([`workspace`]); what its scripts say
//! ([`script`]).

mod script;
pub mod table;
pub mod workspace;

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use super::shell;
use super::{Detection, Files, Launch, Sub};
use crate::error::InputError;
use script::{PortSyntax, Segment};
use table::{FRAMEWORKS, Framework, LAUNCHERS, SCRIPTS};
use workspace::WorkspaceRoot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Npm,
    Pnpm,
    Yarn,
    Bun,
}

impl PackageManager {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Npm => "npm",
            PackageManager::Pnpm => "pnpm",
            PackageManager::Yarn => "yarn",
            PackageManager::Bun => "bun",
        }
    }

    /// The words that run a package.json script.
    fn run(self, script: &str) -> Vec<String> {
        let words: &[&str] = match self {
            PackageManager::Npm => &["npm", "run"],
            PackageManager::Pnpm => &["pnpm", "run"],
            PackageManager::Yarn => &["yarn"],
            PackageManager::Bun => &["bun", "run"],
        };
        let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        out.push(script.to_string());
        out
    }

    /// The words that run a binary from `node_modules/.bin`.
    fn exec(self) -> &'static [&'static str] {
        match self {
            PackageManager::Npm => &["npx"],
            PackageManager::Pnpm => &["pnpm", "exec"],
            PackageManager::Yarn => &["yarn"],
            PackageManager::Bun => &["bunx"],
        }
    }

    /// Only npm needs `--` before flags meant for the script.
    fn needs_separator(self) -> bool {
        self == PackageManager::Npm
    }

    fn from_field(field: &str) -> Option<PackageManager> {
        match field.split('@').next()?.trim() {
            "npm" => Some(PackageManager::Npm),
            "pnpm" => Some(PackageManager::Pnpm),
            "yarn" => Some(PackageManager::Yarn),
            "bun" => Some(PackageManager::Bun),
            _ => None,
        }
    }
}

struct PackageJson {
    scripts: Vec<(String, String)>,
    /// Dependencies and devDependencies: name and version range.
    deps: BTreeMap<String, String>,
    package_manager: Option<String>,
}

fn parse_package_json(files: &dyn Files, text: &str) -> Result<PackageJson, InputError> {
    let value: Value = serde_json::from_str(text).map_err(|err| InputError::Manifest {
        path: files.dir().join("package.json"),
        line: err.line(),
        column: err.column(),
        message: format!("package.json is not valid JSON: {err}")
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    })?;
    let not_object = |what: &str| InputError::Manifest {
        path: files.dir().join("package.json"),
        line: 1,
        column: 1,
        message: format!("{what} must be a JSON object"),
    };
    if !value.is_object() {
        return Err(not_object("package.json"));
    }
    let mut scripts = Vec::new();
    if let Some(s) = value.get("scripts") {
        let obj = s.as_object().ok_or_else(|| not_object("`scripts`"))?;
        for (name, cmd) in obj {
            if let Some(cmd) = cmd.as_str() {
                scripts.push((name.clone(), cmd.to_string()));
            }
        }
    }
    let mut deps = BTreeMap::new();
    for key in ["dependencies", "devDependencies"] {
        if let Some(obj) = value.get(key).and_then(Value::as_object) {
            for (name, range) in obj {
                deps.insert(name.clone(), range.as_str().unwrap_or_default().to_string());
            }
        }
    }
    Ok(PackageJson {
        scripts,
        deps,
        package_manager: value
            .get("packageManager")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The lockfiles, strongest first.
const LOCKFILES: &[(&str, PackageManager)] = &[
    ("pnpm-lock.yaml", PackageManager::Pnpm),
    ("bun.lock", PackageManager::Bun),
    ("bun.lockb", PackageManager::Bun),
    ("yarn.lock", PackageManager::Yarn),
    ("package-lock.json", PackageManager::Npm),
];

/// A package and what surrounds it: everything detection asks about it.
struct Package<'a> {
    files: &'a dyn Files,
    json: PackageJson,
    /// The package manager: the `packageManager` field, then lockfiles, then the workspace
    /// root's (for a package inside a pnpm, yarn, bun or npm workspace), then npm.
    pm: PackageManager,
    root: Option<WorkspaceRoot>,
    berry: bool,
}

impl<'a> Package<'a> {
    fn load(files: &'a dyn Files) -> Result<Option<Package<'a>>> {
        let json = match files.read("package.json")? {
            Some(text) => parse_package_json(files, &text)?,
            // An Nx project may have no package.json: it is a package with no scripts.
            None if files.exists("project.json") => PackageJson {
                scripts: Vec::new(),
                deps: BTreeMap::new(),
                package_manager: None,
            },
            None => return Ok(None),
        };
        let root = workspace::workspace_root(files);
        let pm = workspace::own_package_manager(files, "", json.package_manager.as_deref())
            .or_else(|| root.as_ref().map(|r| r.package_manager(files)))
            .unwrap_or(PackageManager::Npm);
        let berry = pm == PackageManager::Yarn
            && workspace::yarn_berry(files, json.package_manager.as_deref(), root.as_ref());
        Ok(Some(Package {
            files,
            json,
            pm,
            root,
            berry,
        }))
    }

    fn own_dependency(&self, fw: &Framework) -> Option<&str> {
        fw.deps
            .iter()
            .find_map(|d| self.json.deps.get(*d).map(String::as_str))
    }

    /// A dependency of the framework hoisted to the workspace root.
    fn root_dependency(&self, fw: &Framework) -> Option<&str> {
        let root = self.root.as_ref()?;
        fw.deps.iter().find_map(|d| root.dependency(d))
    }

    /// The framework's major version, when its dependency says.
    fn major(&self, fw: &Framework) -> Option<u64> {
        self.own_dependency(fw)
            .or_else(|| self.root_dependency(fw))
            .and_then(table::major)
    }

    fn has_config(&self, fw: &Framework) -> bool {
        fw.configs.iter().any(|c| {
            table::CONFIG_EXTENSIONS
                .iter()
                .any(|ext| self.files.exists(&format!("{c}.{ext}")))
        })
    }

    /// Whether some script runs the framework's dev server.
    fn any_script_invokes(&self, fw: &Framework) -> bool {
        self.json.scripts.iter().any(|(_, cmd)| invokes(cmd, fw))
    }

    fn is_present(&self, fw: &Framework) -> bool {
        let (low, high) = fw.majors;
        if !(low..=high).contains(&self.major(fw).unwrap_or(u64::MAX)) {
            return false;
        }
        let own = self.own_dependency(fw).is_some();
        let hoisted = self.has_config(fw) && self.root_dependency(fw).is_some();
        match fw.id {
            "hugo" => {
                own || (super::hugo_config(self.files).unwrap_or(false)
                    && self.any_script_invokes(fw))
            }
            "remix-vite" => {
                own && table::CONFIG_EXTENSIONS
                    .iter()
                    .any(|ext| self.files.exists(&format!("vite.config.{ext}")))
            }
            "wrangler" => {
                ["wrangler.toml", "wrangler.jsonc", "wrangler.json"]
                    .iter()
                    .any(|f| self.files.exists(f))
                    || (own && self.any_script_invokes(fw))
            }
            "angular" => own || self.files.exists("angular.json"),
            _ if fw.needs_use => {
                (own && (self.has_config(fw) || self.any_script_invokes(fw))) || hoisted
            }
            _ => own || hoisted,
        }
    }

    /// The words that run binary `bin` of the project: the package manager's exec for a binary
    /// of `node_modules/.bin`; nothing for a launcher on `PATH` (`npx npx x` or `npx node` would
    /// go to the registry for a package of that name) or a program installed on its own (Hugo,
    /// unless an npm package ships it). `yarn X` runs a script named X before a binary X: then
    /// the binary is run explicitly.
    fn exec_words(&self, bin: &str, fw: Option<&Framework>) -> Vec<String> {
        if LAUNCHERS.contains(&bin) || !self.is_node_binary(bin) {
            return Vec::new();
        }
        if let Some(fw) = fw
            && fw.system
            && fw.bin == bin
            && self.own_dependency(fw).is_none()
            && self.root_dependency(fw).is_none()
        {
            return Vec::new();
        }
        // A script of the binary's name that runs just the binary (`"docusaurus": "docusaurus"`)
        // does no harm.
        let clash = self.json.scripts.iter().any(|(n, cmd)| {
            n == bin && shell::simple_words(cmd).is_none_or(|w| w != [bin.to_string()])
        });
        let words: &[&str] = if self.pm == PackageManager::Yarn && clash {
            if self.berry {
                &["yarn", "run", "-B"]
            } else {
                &["npx"]
            }
        } else {
            self.pm.exec()
        };
        words.iter().map(|w| w.to_string()).collect()
    }

    /// Whether `bin` is (most likely) a binary of `node_modules/.bin`: a framework's binary, a
    /// dependency of that name (`http-server`, `serve`), or a file in `node_modules/.bin` here or
    /// at the workspace root. Anything else (`uvicorn`, `bash`, `./bin/dev`) is a program on
    /// `PATH` or a path: the package manager's exec would fetch a registry package of that name.
    fn is_node_binary(&self, bin: &str) -> bool {
        if bin.contains('/') {
            return false;
        }
        let root_up = self.root.as_ref().map(|r| r.up.as_str());
        FRAMEWORKS
            .iter()
            .any(|f| f.bin == bin || f.bin_aliases.contains(&bin))
            || self.json.deps.contains_key(bin)
            || self
                .root
                .as_ref()
                .is_some_and(|r| r.dependency(bin).is_some())
            || [Some(""), root_up]
                .into_iter()
                .flatten()
                .any(|up| self.files.exists(&format!("{up}node_modules/.bin/{bin}")))
    }

    /// The framework present whose dev server `cmd` runs, else the first present.
    fn framework_for(&self, cmd: &str) -> Option<&'static Framework> {
        let present: Vec<&'static Framework> =
            FRAMEWORKS.iter().filter(|fw| self.is_present(fw)).collect();
        present
            .iter()
            .find(|fw| invokes(cmd, fw))
            .or(present.first())
            .copied()
    }

    /// The framework's port arguments and the flags that go with them, for its version; then the
    /// host arguments, unless `words` (the command that runs the server) sets the host itself.
    fn port_args(&self, fw: &Framework, words: &[String]) -> Vec<String> {
        let major = self.major(fw);
        let sets_host = words.iter().any(|w| {
            ["-H", "--host", "--hostname"]
                .iter()
                .any(|f| w == f || w.starts_with(&format!("{f}=")))
        });
        let host: &[&str] = if sets_host { &[] } else { fw.host_args };
        fw.port_args
            .iter()
            .copied()
            .chain(host.iter().copied())
            .chain(
                fw.flags
                    .iter()
                    .filter(|(_, since)| major.is_none_or(|m| m >= *since))
                    .map(|(flag, _)| *flag),
            )
            .map(str::to_string)
            .collect()
    }

    /// The script a named script stands for (`start` = `npm run docs-serve`), followed a few
    /// steps.
    fn resolve<'s>(&'s self, mut script: &'s (String, String)) -> &'s (String, String) {
        for _ in 0..4 {
            match script::alias(&script.1, &self.json.scripts) {
                Some(next) if next.0 != script.0 => script = next,
                _ => break,
            }
        }
        script
    }

    /// The script that starts the dev server: among `SCRIPTS` (after the script each stands
    /// for), one that runs the framework's dev server; else any script that does (`docs:dev`,
    /// `storybook`); else the first of `SCRIPTS` that does not run a prebuilt server; else one
    /// that does (`Choice::Prebuilt`).
    fn choose(&self, fw: Option<&Framework>) -> Choice<'_> {
        let mut named: Vec<&(String, String)> = Vec::new();
        for name in SCRIPTS {
            if let Some(s) = self.json.scripts.iter().find(|(n, _)| n == name) {
                let s = self.resolve(s);
                if !named.contains(&s) {
                    named.push(s);
                }
            }
        }
        if let Some(fw) = fw {
            if let Some(s) = named.iter().find(|(_, cmd)| invokes(cmd, fw)) {
                return Choice::Script(s);
            }
            if let Some(s) = self.json.scripts.iter().find(|(_, cmd)| invokes(cmd, fw)) {
                return Choice::Script(self.resolve(s));
            }
        }
        if let Some(s) = named.iter().find(|(_, cmd)| !script::runs_prebuilt(cmd)) {
            return Choice::Script(s);
        }
        match named.first() {
            Some(s) => Choice::Prebuilt(s),
            None => Choice::None,
        }
    }
}

enum Choice<'a> {
    Script(&'a (String, String)),
    /// Only a script that runs a prebuilt server (`node dist/main`).
    Prebuilt(&'a (String, String)),
    None,
}

/// Whether a script's text runs the framework's dev server in one of its commands.
fn invokes(cmd: &str, fw: &Framework) -> bool {
    script::segments(cmd)
        .unwrap_or_default()
        .iter()
        .any(|seg| table::invokes_dev(&seg.words, fw))
}

/// A package.json's scripts: (name, text) in file order.
pub type Scripts = Vec<(String, String)>;

/// A package.json's scripts and the package manager that runs them, for the prompt that asks when
/// detection found nothing.
pub fn scripts(files: &dyn Files) -> Result<Option<(PackageManager, Scripts)>> {
    if files.read("package.json")?.is_none() {
        return Ok(None);
    }
    let Some(pkg) = Package::load(files)? else {
        return Ok(None);
    };
    Ok(Some((pkg.pm, pkg.json.scripts)))
}

/// The command line that runs script `name` with `pm`.
pub fn run_script_line(pm: PackageManager, name: &str) -> String {
    pm.run(name)
        .iter()
        .map(|w| shell::quote_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// At the root of a workspace whose packages have dev servers of their own, a script that fans
/// out to them (or no script at all, or only a production start) starts no server on the port
/// pm2-port would give: say so, naming the apps and the ways out, instead of guessing.
fn fan_out(files: &dyn Files, script: Option<&(String, String)>) -> Result<()> {
    let apps = workspace::apps(files)?;
    if apps.is_empty() {
        return Ok(());
    }
    let how = match script {
        Some((name, cmd)) if script::runs_prebuilt(cmd) => {
            format!(" whose `{name}` script (`{cmd}`) runs a production build")
        }
        Some((name, cmd)) => format!(" whose `{name}` script (`{cmd}`) starts its apps"),
        None => " with no dev script of its own".to_string(),
    };
    Err(crate::error::RuntimeError::FanOut {
        dir: files.dir().to_path_buf(),
        how: format!("{how} ({}), each on a port of its own", apps.join(", ")),
        example: apps
            .iter()
            .take(2)
            .map(|a| format!("`[[apps]]` `dir = {}`", toml_edit::Value::from(a.as_str())))
            .collect::<Vec<_>>()
            .join(", "),
    }
    .into())
}

pub fn detect(files: &dyn Files) -> Result<Option<Detection>> {
    detect_within(files, 0)
}

/// How many hand-offs (`yarn --cwd DIR start`) are followed.
const MAX_HAND_OFFS: usize = 3;

fn detect_within(files: &dyn Files, hand_offs: usize) -> Result<Option<Detection>> {
    let Some(pkg) = Package::load(files)? else {
        return Ok(None);
    };
    let framework = FRAMEWORKS.iter().find(|fw| pkg.is_present(fw));
    let mut detection = match pkg.choose(framework) {
        Choice::Script(s) => match script::hand_off(&s.1) {
            Some(to)
                if hand_offs < MAX_HAND_OFFS
                    && files.exists(&format!("{}/package.json", to.dir)) =>
            {
                return hand_off(&pkg, s, &to, hand_offs + 1);
            }
            _ => {
                if script::fans_out(&s.1) {
                    fan_out(files, Some(s))?;
                }
                // `"start": "nx serve"` in an Nx project: its project.json says how.
                if runs_nx_target(&s.1)
                    && let Some(d) = nx(&pkg)?
                    && d.framework.is_some()
                {
                    return Ok(Some(d));
                }
                from_script(&pkg, framework, s)
            }
        },
        Choice::Prebuilt(s) => {
            fan_out(files, Some(s))?;
            let mut d = from_script(&pkg, framework, s);
            d.notes.push(format!(
                "script `{}` (`{}`) runs a prebuilt server: build the project first, or set `command` in buildflowz.toml to its dev command{}",
                s.0,
                s.1,
                pkg.json
                    .scripts
                    .iter()
                    .find(|(n, _)| n.contains("watch"))
                    .map_or(String::new(), |(n, _)| format!(" (script `{n}`?)")),
            ));
            d
        }
        Choice::None => {
            fan_out(files, None)?;
            if let Some(d) = nx(&pkg)? {
                return Ok(Some(d));
            }
            match framework {
                Some(fw) if !fw.bin.is_empty() => {
                    let mut words = pkg.exec_words(fw.bin, Some(fw));
                    words.push(fw.bin.to_string());
                    words.extend(fw.dev_args.iter().map(|w| w.to_string()));
                    Detection {
                        framework: Some(fw.id),
                        package_manager: Some(pkg.pm),
                        launch: Launch::Words {
                            words,
                            port_args: pkg.port_args(fw, &[]),
                            separator: false,
                        },
                        env: Vec::new(),
                        notes: Vec::new(),
                    }
                }
                _ => return Ok(None),
            }
        }
    };
    if let Some(fw) = detection
        .framework
        .and_then(|id| FRAMEWORKS.iter().find(|f| f.id == id))
    {
        detection.env.extend_from_slice(fw.env);
    }
    Ok(Some(detection))
}

/// Whether a script runs an Nx target of this project (`nx serve`, `nx dev`, `nx run X:serve`).
fn runs_nx_target(cmd: &str) -> bool {
    let Some(words) = shell::simple_words(cmd) else {
        return false;
    };
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    matches!(words.iter().position(|w| *w == "nx"), Some(i)
        if matches!(words.get(i + 1), Some(&"serve" | &"dev"))
            || words.get(i + 1) == Some(&"run")
                && words.get(i + 2).is_some_and(|t| t.ends_with(":serve") || t.ends_with(":dev")))
}

/// A root script that runs a script in one subdirectory (`yarn --cwd website start`, `cd web &&
/// pnpm dev`): that script's framework decides how the port is given; flags appended to the
/// root's script reach it through yarn, pnpm and bun (npm takes them as its own options).
fn hand_off(
    pkg: &Package,
    script: &(String, String),
    to: &script::HandOff,
    hand_offs: usize,
) -> Result<Option<Detection>> {
    let (name, cmd) = script;
    let dir = &to.dir;
    let sub = Sub::new(pkg.files, dir);
    let inner = match &to.script {
        // The script it names there, not the one detection would choose.
        Some(s) => match Package::load(&sub)? {
            Some(inner_pkg) => match inner_pkg.json.scripts.iter().find(|(n, _)| n == s) {
                Some(found) => {
                    let found = inner_pkg.resolve(found);
                    let fw = inner_pkg.framework_for(&found.1);
                    let mut d = from_script(&inner_pkg, fw, found);
                    if let Some(fw) = fw {
                        d.env.extend_from_slice(fw.env);
                    }
                    Some(d)
                }
                None => detect_within(&sub, hand_offs)?,
            },
            None => None,
        },
        None => detect_within(&sub, hand_offs)?,
    };
    let mut detection = Detection {
        framework: None,
        package_manager: Some(pkg.pm),
        launch: Launch::Words {
            words: pkg.pm.run(name),
            port_args: Vec::new(),
            separator: pkg.pm.needs_separator(),
        },
        env: Vec::new(),
        notes: Vec::new(),
    };
    let Some(inner) = inner else {
        return Ok(Some(detection));
    };
    detection.framework = inner.framework;
    detection.env = inner.env;
    detection.notes = inner.notes;
    if let Launch::Words {
        words, port_args, ..
    } = &inner.launch
        && !port_args.is_empty()
    {
        let plain = inner
            .package_manager
            .is_some_and(|pm| words.len() <= 3 && *words == pm.run(words.last().unwrap()));
        if plain && pkg.pm != PackageManager::Npm && !to.npm {
            if let Launch::Words { port_args: p, .. } = &mut detection.launch {
                *p = port_args.clone();
            }
        } else {
            // The app cannot get the allocated port through the root: at a root with other
            // apps, offer them instead.
            fan_out(pkg.files, Some(script))?;
            detection.notes.push(format!(
                "script `{name}` (`{cmd}`) runs the app in `{dir}`, which takes its port as `{}`; pm2-port cannot pass that through the script: set `command` in buildflowz.toml (or init `{dir}` itself)",
                port_args.join(" ").replace("{port}", "N").replace("{host}", crate::detect::LOOPBACK)
            ));
        }
    }
    Ok(Some(detection))
}

/// An Nx project whose `project.json` has a `serve` (or `dev`) target: `nx serve NAME`, with the
/// port flag of the executor's dev server.
fn nx(pkg: &Package) -> Result<Option<Detection>> {
    let Some(target) = workspace::nx_target(pkg.files, "")? else {
        return Ok(None);
    };
    let mut words = pkg.exec_words("nx", None);
    words.extend([
        "nx".to_string(),
        target.target.clone(),
        target.project.clone(),
    ]);
    let known = target.executor.as_deref().and_then(workspace::nx_executor);
    let mut detection = Detection {
        framework: known.map(|(id, _)| id),
        package_manager: Some(pkg.pm),
        launch: Launch::Words {
            words,
            port_args: known
                .map(|(_, args)| args.iter().map(|a| a.to_string()).collect())
                .unwrap_or_default(),
            separator: false,
        },
        env: Vec::new(),
        notes: Vec::new(),
    };
    if known.is_none() {
        detection.notes.push(format!(
            "the Nx target `{}` of project `{}` uses {}; pm2-port does not know how it takes a port: the app gets only PORT; set `command` in buildflowz.toml if it ignores it",
            target.target,
            target.project,
            target
                .executor
                .map_or("an inferred executor".to_string(), |e| format!("executor `{e}`")),
        ));
    }
    Ok(Some(detection))
}

/// Run `script` through the package manager, giving it the port the way `fw` takes one.
fn from_script(
    pkg: &Package,
    framework: Option<&Framework>,
    script: &(String, String),
) -> Detection {
    let (name, cmd) = script;
    let pm = pkg.pm;
    let mut detection = Detection {
        framework: framework.map(|fw| fw.id),
        package_manager: Some(pm),
        launch: Launch::Words {
            words: pm.run(name),
            port_args: Vec::new(),
            separator: pm.needs_separator(),
        },
        env: Vec::new(),
        notes: Vec::new(),
    };
    let simple = shell::simple_words(cmd);
    let segments = script::segments(cmd).unwrap_or_default();
    // The command that runs the framework's dev server, among the script's commands (quoted
    // arguments included: `concurrently "next dev --port 8888" "tsc -w"`).
    let dev_at = framework.and_then(|fw| {
        segments
            .iter()
            .position(|seg| table::invokes_dev(&seg.words, fw))
    });
    // The command that runs the server: the whole script when it is one simple command that is
    // the server (or pins the port itself), else that command.
    let whole = simple.as_ref().filter(|words| {
        script::port_in_words(words).is_some()
            || dev_at.is_none_or(|at| segments[at].words == **words)
    });
    let target: Option<Segment> = match whole {
        Some(words) => Some(Segment {
            words: words.clone(),
            takes_appended: true,
        }),
        None => dev_at.map(|at| segments[at].clone()),
    };
    let is_whole = whole.is_some();
    // A command that redirects, expands variables or follows a `cd` only works inside its script.
    let runnable_alone =
        is_whole || dev_at.is_some_and(|at| !script::needs_its_script(&segments, at));
    let invokes = |fw: &Framework| {
        target
            .as_ref()
            .is_some_and(|t| table::invokes_dev(&t.words, fw))
    };

    // The command pins a port: run it directly with the port replaced.
    if let Some(target) = &target
        && runnable_alone
        && let Some((at, syntax)) = script::port_in_words(&target.words)
    {
        let mut words = target.words.clone();
        words[at] = match syntax {
            PortSyntax::Separate => "{port}".to_string(),
            PortSyntax::Joined(prefix) => format!("{prefix}{{port}}"),
        };
        // Keep leading `NAME=value` assignments (`PORT=` among them) in front of the exec words.
        let assignments = script::assignments(&words);
        let mut out: Vec<String> = words[..assignments].to_vec();
        if let Some(bin) = words.get(assignments) {
            let fw = framework.filter(|fw| invokes(fw));
            out.extend(pkg.exec_words(bin, fw));
        }
        out.extend(words[assignments..].iter().cloned());
        // The strict-port flag and its companions, when the framework has them and the command
        // lacks them.
        let strict: Vec<String> = framework
            .filter(|fw| invokes(fw))
            .map(|fw| {
                pkg.port_args(fw, &words)
                    .into_iter()
                    .filter(|a| !a.contains("{port}") && a != "--port" && a != "-p")
                    .filter(|a| !out.contains(a))
                    .collect()
            })
            .unwrap_or_default();
        if !is_whole {
            detection.notes.push(format!(
                "script `{name}` (`{cmd}`) pins a port in one of its commands, so pm2-port runs only that command; the script's other commands do not run: make the script use $PORT to run all of it"
            ));
        }
        detection.launch = Launch::Words {
            words: out,
            port_args: strict,
            separator: false,
        };
        return detection;
    }

    let target_words = target.as_ref().map_or(&[][..], |t| &t.words[..]);
    match framework.map(|fw| (fw, pkg.port_args(fw, target_words))) {
        Some((fw, args))
            if !args.is_empty()
                && invokes(fw)
                && target
                    .as_ref()
                    .is_some_and(|t| t.takes_appended && script::port_in_words(&t.words).is_none()) =>
        {
            if let Launch::Words { port_args, .. } = &mut detection.launch {
                *port_args = args;
            }
        }
        Some((fw, _)) if !fw.port_args.is_empty() => detection.notes.push(format!(
            "script `{name}` (`{cmd}`) does not run `{}` as its last command, so pm2-port cannot pass it the port flag {}: the app gets only PORT; set `command` in buildflowz.toml if it ignores it",
            [fw.bin].iter().chain(fw.dev_args).copied().collect::<Vec<_>>().join(" "),
            fw.port_args.join(" ").replace("{port}", "N"),
        )),
        Some((fw, args)) if !args.is_empty() => detection.notes.push(format!(
            "script `{name}` (`{cmd}`) does not run `{}` as its last command, so pm2-port cannot pass it {}: it may listen on every interface; `pm2-port doctor` reports it if so",
            [fw.bin].iter().chain(fw.dev_args).copied().collect::<Vec<_>>().join(" "),
            args.join(" ").replace("{host}", crate::detect::LOOPBACK),
        )),
        _ => {}
    }
    if !is_whole && script::port_pinned_in_text(cmd) {
        detection.notes.push(format!(
            "script `{name}` (`{cmd}`) seems to pin a port that pm2-port cannot replace; make it use $PORT, or set `command` in buildflowz.toml"
        ));
    }
    detection
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::memory::MemFiles;

    /// (framework, package manager, command on port 4000) detected in `dir` among `files`.
    fn detected(dir: &str, files: &[(&str, &str)]) -> (Option<&'static str>, String, String) {
        let files = MemFiles::new(dir, files);
        let d = detect(&files).unwrap().expect("detected");
        (
            d.framework,
            d.package_manager.unwrap().as_str().to_string(),
            d.launch.command_line(4000),
        )
    }

    fn fails(dir: &str, files: &[(&str, &str)]) -> String {
        let files = MemFiles::new(dir, files);
        detect(&files).unwrap_err().to_string()
    }

    #[test]
    fn a_workspace_package_inherits_the_roots_package_manager() {
        let d = detected(
            "/r/apps/web",
            &[
                ("/r/.git/HEAD", ""),
                ("/r/package.json", r#"{"packageManager":"pnpm@9.1.0"}"#),
                ("/r/pnpm-workspace.yaml", "packages:\n  - apps/*\n"),
                (
                    "/r/apps/web/package.json",
                    r#"{"scripts":{"dev":"next dev"},"dependencies":{"next":"16"}}"#,
                ),
            ],
        );
        assert_eq!(
            d,
            (
                Some("next"),
                "pnpm".into(),
                "pnpm run dev -H 127.0.0.1".into()
            )
        );
    }

    #[test]
    fn a_config_file_confirms_a_dependency_hoisted_to_the_root() {
        let d = detected(
            "/r/app",
            &[
                (
                    "/r/package.json",
                    r#"{"workspaces":["app"],"devDependencies":{"vite":"7"}}"#,
                ),
                ("/r/yarn.lock", ""),
                (
                    "/r/app/package.json",
                    r#"{"scripts":{"start":"yarn && vite","serve":"npx http-server build -p 5001"}}"#,
                ),
                ("/r/app/vite.config.mts", ""),
            ],
        );
        assert_eq!(
            d,
            (
                Some("vite"),
                "yarn".into(),
                "yarn start --port 4000 --strictPort".into()
            )
        );
    }

    #[test]
    fn vite_as_a_peer_of_storybook_is_not_the_app() {
        let d = detected(
            "/r",
            &[
                ("/r/package-lock.json", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"storybook":"storybook dev -p 6006","build-storybook":"storybook build"},"devDependencies":{"storybook":"^10.0.0","@storybook/react-vite":"^10.0.0","vite":"^7.0.0"}}"#,
                ),
            ],
        );
        assert_eq!(
            d,
            (
                Some("storybook"),
                "npm".into(),
                "npx storybook dev -p 4000 --ci --exact-port".into()
            )
        );
    }

    #[test]
    fn storybook_7_has_no_exact_port_and_yarn_runs_the_binary_not_the_script() {
        let d = detected(
            "/r",
            &[
                ("/r/yarn.lock", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"storybook":"yarn patch-package && storybook dev -p 6006"},"devDependencies":{"storybook":"^7.6.17"}}"#,
                ),
            ],
        );
        assert_eq!(
            d,
            (
                Some("storybook"),
                "yarn".into(),
                "npx storybook dev -p 4000 --ci".into()
            )
        );
        let d = detected(
            "/r",
            &[
                ("/r/yarn.lock", ""),
                ("/r/.yarnrc.yml", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"storybook":"yarn patch-package && storybook dev -p 6006"},"devDependencies":{"storybook":"^8"}}"#,
                ),
            ],
        );
        assert_eq!(d.2, "yarn run -B storybook dev -p 4000 --ci --exact-port");
    }

    #[test]
    fn vitepress_docs_dev_keeps_its_root() {
        let d = detected(
            "/r",
            &[
                ("/r/package-lock.json", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"docs:dev":"vitepress dev docs","docs:build":"vitepress build docs"},"devDependencies":{"vitepress":"^1.6.0"}}"#,
                ),
            ],
        );
        assert_eq!(
            d,
            (
                Some("vitepress"),
                "npm".into(),
                "npm run docs:dev -- --port 4000 --strictPort".into()
            )
        );
    }

    #[test]
    fn hugo_through_npm() {
        // The npm package that ships Hugo, a script one alias deep that pins the port.
        let d = detected(
            "/r",
            &[
                ("/r/package-lock.json", ""),
                ("/r/hugo.yml", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"start":"npm run docs-serve","docs-serve":"hugo server --port 4000 --disableFastRender"},"devDependencies":{"hugo-bin":"^0.140"}}"#,
                ),
            ],
        );
        assert_eq!(
            d,
            (
                Some("hugo"),
                "npm".into(),
                "npx hugo server --port 4000 --disableFastRender".into()
            )
        );
        // Hugo from PATH, config under config/_default, a vite devDependency that is not the app.
        let d = detected(
            "/r",
            &[
                ("/r/package-lock.json", ""),
                ("/r/config/_default/hugo.toml", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"dev":"hugo server --disableFastRender"},"devDependencies":{"vite":"^7"}}"#,
                ),
            ],
        );
        assert_eq!(
            d,
            (Some("hugo"), "npm".into(), "npm run dev -- -p 4000".into())
        );
    }

    #[test]
    fn a_wrangler_dev_script_is_wrangler_before_its_config_exists() {
        let pkg = r#"{"scripts":{"dev":"wrangler dev src/index.ts"},"devDependencies":{"wrangler":"^4"}}"#;
        let d = detected(
            "/r",
            &[("/r/package-lock.json", ""), ("/r/package.json", pkg)],
        );
        assert_eq!(
            d,
            (
                Some("wrangler"),
                "npm".into(),
                "npm run dev -- --port 4000".into()
            )
        );
    }

    #[test]
    fn solid_start_2_runs_vite() {
        let files = |version: &str| {
            format!(
                r#"{{"scripts":{{"dev":"vite dev"}},"dependencies":{{"@solidjs/start":"{version}","vite":"7"}}}}"#
            )
        };
        let v2 = files("^2.0.0-alpha.1");
        let d = detected(
            "/r",
            &[("/r/package-lock.json", ""), ("/r/package.json", &v2)],
        );
        assert_eq!(
            d,
            (
                Some("solid-start"),
                "npm".into(),
                "npm run dev -- --port 4000 --strictPort".into()
            )
        );
        let v1 = r#"{"scripts":{"dev":"vinxi dev"},"dependencies":{"@solidjs/start":"^1.1.0"}}"#;
        let d = detected(
            "/r",
            &[("/r/package-lock.json", ""), ("/r/package.json", v1)],
        );
        assert_eq!(d.2, "npm run dev -- --port 4000");
    }

    #[test]
    fn a_hand_off_to_one_app_is_that_app() {
        let d = detected(
            "/r",
            &[
                ("/r/yarn.lock", ""),
                (
                    "/r/package.json",
                    r#"{"workspaces":["website","packages/*"],"scripts":{"start":"yarn --cwd website start"}}"#,
                ),
                (
                    "/r/website/package.json",
                    r#"{"scripts":{"start":"docusaurus start"},"dependencies":{"@docusaurus/core":"3"}}"#,
                ),
            ],
        );
        assert_eq!(d, (Some("docusaurus"), "yarn".into(), "yarn start".into()));
    }

    #[test]
    fn hand_offs_stay_below_the_package_and_end() {
        for script in [
            "yarn --cwd . start",
            "yarn --cwd .. start",
            "yarn --cwd ../r start",
            "yarn --cwd /r start",
            "yarn --cwd a/../.. start",
        ] {
            let json = format!(r#"{{"scripts":{{"start":"{script}"}}}}"#);
            let d = detected("/r", &[("/r/yarn.lock", ""), ("/r/package.json", &json)]);
            assert_eq!(d, (None, "yarn".into(), "yarn start".into()), "{script}");
        }
        // A chain of hand-offs is followed a few steps, then run as it is.
        let json = r#"{"scripts":{"start":"yarn --cwd a start"}}"#;
        let files: Vec<(String, &str)> = (0..6)
            .map(|i| (format!("/r/{}package.json", "a/".repeat(i)), json))
            .chain([("/r/yarn.lock".to_string(), "")])
            .collect();
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        assert_eq!(detected("/r", &files).2, "yarn start");
    }

    #[test]
    fn a_hand_off_to_an_app_with_a_pinned_port_offers_the_apps() {
        let err = fails(
            "/r",
            &[
                ("/r/pnpm-lock.yaml", ""),
                ("/r/pnpm-workspace.yaml", "packages:\n  - packages/*\n"),
                (
                    "/r/package.json",
                    r#"{"scripts":{"dev":"pnpm -C packages/play run dev"}}"#,
                ),
                (
                    "/r/packages/play/package.json",
                    r#"{"scripts":{"dev":"vite --port 3000"},"devDependencies":{"vite":"7"}}"#,
                ),
                (
                    "/r/packages/site/package.json",
                    r#"{"scripts":{"start":"docusaurus start"}}"#,
                ),
            ],
        );
        assert!(err.contains("packages/play, packages/site"), "{err}");
        assert!(err.contains("[[apps]]"), "{err}");
    }

    #[test]
    fn nx_projects() {
        let files: &[(&str, &str)] = &[
            ("/r/nx.json", "{}"),
            (
                "/r/package.json",
                r#"{"packageManager":"yarn@4.5.0","workspaces":["apps/*"],"scripts":{"start":"nx serve"},"devDependencies":{"nx":"20","@angular/cli":"19"}}"#,
            ),
            ("/r/yarn.lock", ""),
            ("/r/apps/products/package.json", r#"{"name":"products"}"#),
            (
                "/r/apps/products/project.json",
                r#"{"name":"products","targets":{"serve":{"executor":"@angular/build:dev-server"}}}"#,
            ),
            (
                "/r/apps/api/project.json",
                r#"{"targets":{"serve":{"executor":"@nx/js:node"}}}"#,
            ),
        ];
        assert_eq!(
            detected("/r/apps/products", files),
            (
                Some("angular"),
                "yarn".into(),
                "yarn nx serve products --port 4000".into()
            )
        );
        assert_eq!(
            detected("/r/apps/api", files),
            (None, "yarn".into(), "yarn nx serve api".into())
        );
        let err = fails("/r", files);
        assert!(err.contains("apps/api, apps/products"), "{err}");
    }

    #[test]
    fn a_production_start_is_not_the_dev_server() {
        let err = fails(
            "/r",
            &[
                ("/r/nx.json", "{}"),
                ("/r/package-lock.json", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"start":"node dist/apps/api/main"},"devDependencies":{"@angular/cli":"19"}}"#,
                ),
                ("/r/apps/client/project.json", r#"{"targets":{"serve":{}}}"#),
            ],
        );
        assert!(err.contains("runs a production build"), "{err}");
        // `dev` runs a prebuilt build, `dev:watch` is the watcher.
        let d = detected(
            "/r",
            &[
                ("/r/package-lock.json", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"dev":"node build/index.js","dev:watch":"nodemon src/index.js"},"dependencies":{"express":"5"}}"#,
                ),
            ],
        );
        assert_eq!(d.2, "npm run dev:watch");
    }

    #[test]
    fn independent_projects_under_a_bare_root_are_offered() {
        let err = fails(
            "/r",
            &[
                (
                    "/r/package.json",
                    r#"{"scripts":{"prepare":"cd apps/a && yarn"}}"#,
                ),
                ("/r/apps/a/package.json", r#"{"scripts":{"dev":"vite"}}"#),
                ("/r/apps/a/yarn.lock", ""),
                (
                    "/r/apps/b/package.json",
                    r#"{"scripts":{"dev":"next dev"}}"#,
                ),
                ("/r/apps/b/yarn.lock", ""),
                ("/r/docs/package.json", r#"{"scripts":{"dev":"x"}}"#),
            ],
        );
        assert!(err.contains("(apps/a, apps/b)"), "{err}");
    }

    #[test]
    fn a_port_pinned_inside_a_compound_script_runs_the_server_command() {
        let files = MemFiles::new(
            "/r",
            &[
                ("/r/pnpm-lock.yaml", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"dev":"pnpm prisma:generate && concurrently --kill-others \"next dev --turbopack --port 8888\""},"dependencies":{"next":"15"}}"#,
                ),
            ],
        );
        let d = detect(&files).unwrap().unwrap();
        assert_eq!(
            d.launch.command_line(4000),
            "pnpm exec next dev --turbopack --port 4000 -H 127.0.0.1"
        );
        assert!(
            d.notes[0].contains("other commands do not run"),
            "{:?}",
            d.notes
        );
    }

    /// Findings of a hostile review of this detection, each a reproduction.
    #[test]
    fn a_port_pinned_in_a_quoted_command_is_moved() {
        let pkg = r#"{"scripts":{"dev":"concurrently \"next dev --port 8888\" \"tsc -w\""},"dependencies":{"next":"15"}}"#;
        let files = MemFiles::new("/r", &[("/r/pnpm-lock.yaml", ""), ("/r/package.json", pkg)]);
        let d = detect(&files).unwrap().unwrap();
        assert_eq!(
            d.launch.command_line(4000),
            "pnpm exec next dev --port 4000 -H 127.0.0.1"
        );
        assert!(
            d.notes[0].contains("other commands do not run"),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn programs_that_are_not_node_binaries_run_as_written() {
        for (script, want) in [
            (
                "uvicorn main:app --reload --port 8000",
                "uvicorn main:app --reload --port 4000",
            ),
            (
                "bash scripts/dev.sh --port 8000",
                "bash scripts/dev.sh --port 4000",
            ),
            (
                "./node_modules/.bin/vite --port 4000",
                "./node_modules/.bin/vite --port 4000 --strictPort",
            ),
            ("http-server -p 8080", "npx http-server -p 4000"),
        ] {
            let pkg = format!(
                r#"{{"scripts":{{"dev":"{script}"}},"devDependencies":{{"vite":"7","http-server":"14"}}}}"#
            );
            let d = detected(
                "/r",
                &[("/r/package-lock.json", ""), ("/r/package.json", &pkg)],
            );
            assert_eq!(d.2, want, "{script}");
        }
    }

    #[test]
    fn a_pinned_port_in_a_command_that_needs_its_script_is_left_with_a_note() {
        for script in [
            "vite --port 4000 2>&1 | tee dev.log",
            "cd frontend && vite --port 4000",
            "tsc && vite --port=4000 --host ${HOST:-localhost}",
        ] {
            let pkg =
                format!(r#"{{"scripts":{{"dev":"{script}"}},"devDependencies":{{"vite":"7"}}}}"#);
            let files = MemFiles::new(
                "/r",
                &[("/r/package-lock.json", ""), ("/r/package.json", &pkg)],
            );
            let d = detect(&files).unwrap().unwrap();
            assert_eq!(d.launch.command_line(4000), "npm run dev", "{script}");
            assert!(
                d.notes.iter().any(|n| n.contains("pin a port")),
                "{script}: {:?}",
                d.notes
            );
        }
    }

    #[test]
    fn node_dash_r_is_not_a_recursive_run() {
        let d = detected(
            "/r",
            &[
                ("/r/package-lock.json", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"dev":"nodemon -r dotenv/config server.js"},"dependencies":{"express":"5"}}"#,
                ),
                (
                    "/r/client/package.json",
                    r#"{"scripts":{"start":"react-scripts start"}}"#,
                ),
                ("/r/client/package-lock.json", ""),
            ],
        );
        assert_eq!(d, (Some("express"), "npm".into(), "npm run dev".into()));
    }

    #[test]
    fn an_nx_standalone_app_started_by_nx_serve_uses_its_project_json() {
        let d = detected(
            "/r",
            &[
                ("/r/nx.json", "{}"),
                ("/r/package-lock.json", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"start":"nx serve"},"devDependencies":{"nx":"20","@angular/cli":"19"}}"#,
                ),
                (
                    "/r/project.json",
                    r#"{"name":"myapp","targets":{"serve":{"executor":"@angular-devkit/build-angular:dev-server"}}}"#,
                ),
            ],
        );
        assert_eq!(
            d,
            (
                Some("angular"),
                "npm".into(),
                "npx nx serve myapp --port 4000".into()
            )
        );
    }

    #[test]
    fn a_bare_next_is_next_dev() {
        let d = detected(
            "/r",
            &[
                ("/r/package-lock.json", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"dev":"next"},"dependencies":{"next":"12"}}"#,
                ),
            ],
        );
        assert_eq!(d.2, "npm run dev -- -H 127.0.0.1");
    }

    #[test]
    fn cd_into_a_package_is_a_hand_off_to_it() {
        let d = detected(
            "/r",
            &[
                ("/r/pnpm-lock.yaml", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"dev":"cd frontend && pnpm dev"}}"#,
                ),
                (
                    "/r/frontend/package.json",
                    r#"{"scripts":{"dev":"vite"},"devDependencies":{"vite":"7"}}"#,
                ),
            ],
        );
        assert_eq!(
            d,
            (
                Some("vite"),
                "pnpm".into(),
                "pnpm run dev --port 4000 --strictPort".into()
            )
        );
    }

    #[test]
    fn a_hand_off_runs_the_script_it_names() {
        let files = [
            ("/r/yarn.lock", ""),
            (
                "/r/package.json",
                r#"{"scripts":{"dev":"yarn --cwd web storybook"}}"#,
            ),
            (
                "/r/web/package.json",
                r#"{"scripts":{"dev":"vite","storybook":"storybook dev"},"devDependencies":{"vite":"7","storybook":"8"}}"#,
            ),
        ];
        assert_eq!(
            detected("/r", &files),
            (
                Some("storybook"),
                "yarn".into(),
                "yarn dev -p 4000 --ci --exact-port".into()
            )
        );
    }

    #[test]
    fn storybook_6_runs_start_storybook() {
        let d = detected(
            "/r",
            &[
                ("/r/package-lock.json", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"storybook":"start-storybook -p 6006"},"devDependencies":{"@storybook/react":"^6.5.16"}}"#,
                ),
            ],
        );
        assert_eq!(
            d,
            (
                Some("storybook"),
                "npm".into(),
                "npx start-storybook -p 4000 --ci".into()
            )
        );
    }

    #[test]
    fn a_yarn_1_package_manager_field_beats_a_yarnrc_yml() {
        let d = detected(
            "/r",
            &[
                ("/r/yarn.lock", ""),
                ("/r/.yarnrc.yml", ""),
                (
                    "/r/package.json",
                    r#"{"packageManager":"yarn@1.22.22","scripts":{"storybook":"yarn x && storybook dev -p 6006"},"devDependencies":{"storybook":"^8"}}"#,
                ),
            ],
        );
        assert_eq!(d.2, "npx storybook dev -p 4000 --ci --exact-port");
    }

    #[test]
    fn a_production_start_says_so() {
        let files = MemFiles::new(
            "/r",
            &[
                ("/r/package-lock.json", ""),
                (
                    "/r/package.json",
                    r#"{"scripts":{"start":"node dist/index.js","watch":"tsx watch src/index.ts"},"dependencies":{"express":"5"}}"#,
                ),
            ],
        );
        let d = detect(&files).unwrap().unwrap();
        assert_eq!(d.launch.command_line(4000), "npm run start");
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("prebuilt") && n.contains("`watch`")),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn package_manager_field_and_lockfiles() {
        assert_eq!(
            PackageManager::from_field("pnpm@9.1.0"),
            Some(PackageManager::Pnpm)
        );
        assert_eq!(
            PackageManager::from_field("yarn@4.1.0+sha"),
            Some(PackageManager::Yarn)
        );
        assert_eq!(PackageManager::from_field("deno@1"), None);
    }
}
