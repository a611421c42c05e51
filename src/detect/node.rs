//! Node projects: package.json, its package manager, and the frameworks of frameworks.md.

use std::collections::BTreeSet;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use super::shell::{self, is_name};
use super::{Detection, Files, Launch};
use crate::error::InputError;

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

/// How a framework's dev server is recognised in a script, and how it takes a port.
struct Framework {
    id: &'static str,
    /// Any of these dependencies selects the framework.
    deps: &'static [&'static str],
    /// The binary in `node_modules/.bin`.
    bin: &'static str,
    /// Other names of the binary (`nuxi` for `nuxt`).
    bin_aliases: &'static [&'static str],
    /// The arguments that make `bin` start the dev server; in a script, the first one must follow
    /// the binary (`next dev`). Empty: the bare binary is the dev server (`vite`).
    dev_args: &'static [&'static str],
    /// The port arguments (`{port}` is the port); empty when the framework reads `PORT`.
    port_args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// The binary run with no subcommand starts the dev server (`vitepress` is `vitepress dev`).
    bare_is_dev: bool,
}

const VITE_PORT: &[&str] = &["--port", "{port}", "--strictPort"];
const PORT_FLAG: &[&str] = &["--port", "{port}"];

const fn fw(
    id: &'static str,
    deps: &'static [&'static str],
    bin: &'static str,
    dev_args: &'static [&'static str],
    port_args: &'static [&'static str],
) -> Framework {
    Framework {
        id,
        deps,
        bin,
        bin_aliases: &[],
        dev_args,
        port_args,
        env: &[],
        bare_is_dev: false,
    }
}

/// Most specific first: a framework built on another one supersedes it.
static FRAMEWORKS: &[Framework] = &[
    fw(
        "analog",
        &["@analogjs/platform"],
        "ng",
        &["serve"],
        PORT_FLAG,
    ),
    fw("sveltekit", &["@sveltejs/kit"], "vite", &["dev"], VITE_PORT),
    fw(
        "qwik",
        &["@builder.io/qwik"],
        "vite",
        &["--mode", "ssr"],
        VITE_PORT,
    ),
    fw(
        "solid-start",
        &["@solidjs/start"],
        "vinxi",
        &["dev"],
        PORT_FLAG,
    ),
    fw(
        "tanstack-start",
        &["@tanstack/react-start", "@tanstack/solid-start"],
        "vite",
        &["dev"],
        VITE_PORT,
    ),
    // remix-vite and remix share the dependency; `remix_id` picks one by `vite.config.*`.
    fw(
        "remix-vite",
        &["@remix-run/dev"],
        "remix",
        &["vite:dev"],
        VITE_PORT,
    ),
    fw("remix", &["@remix-run/dev"], "remix", &["dev"], &[]),
    fw(
        "react-router",
        &["@react-router/dev"],
        "react-router",
        &["dev"],
        VITE_PORT,
    ),
    Framework {
        bin_aliases: &["redwood"],
        ..fw(
            "redwood",
            &["@redwoodjs/core"],
            "rw",
            &["dev"],
            &["--fwd=--port={port}"],
        )
    },
    Framework {
        bin_aliases: &["nuxi"],
        ..fw(
            "nuxt",
            &["nuxt", "nuxt3", "nuxt-nightly"],
            "nuxt",
            &["dev"],
            &[],
        )
    },
    fw("next", &["next"], "next", &["dev"], &[]),
    fw("astro", &["astro"], "astro", &["dev"], PORT_FLAG),
    fw("gatsby", &["gatsby"], "gatsby", &["develop"], &[]),
    fw(
        "docusaurus",
        &["@docusaurus/core"],
        "docusaurus",
        &["start"],
        &[],
    ),
    // VitePress passes Vite's server flags on; bare `vitepress` is `vitepress dev`.
    Framework {
        bare_is_dev: true,
        ..fw(
            "vitepress",
            &["vitepress"],
            "vitepress",
            &["dev"],
            VITE_PORT,
        )
    },
    fw("angular", &["@angular/cli"], "ng", &["serve"], PORT_FLAG),
    fw("ember", &["ember-cli"], "ember", &["serve"], PORT_FLAG),
    fw(
        "eleventy",
        &["@11ty/eleventy"],
        "eleventy",
        &["--serve"],
        &["--port={port}"],
    ),
    fw("expo", &["expo"], "expo", &["start"], PORT_FLAG),
    fw(
        "vue-cli",
        &["@vue/cli-service"],
        "vue-cli-service",
        &["serve"],
        &[],
    ),
    Framework {
        env: &[("BROWSER", "none")],
        ..fw("cra", &["react-scripts"], "react-scripts", &["start"], &[])
    },
    fw("parcel", &["parcel"], "parcel", &[], PORT_FLAG),
    fw("vite", &["vite"], "vite", &[], VITE_PORT),
    // Cloudflare Workers: chosen by `wrangler.toml`/`wrangler.json(c)`, see `is_present`.
    fw("wrangler", &["wrangler"], "wrangler", &["dev"], PORT_FLAG),
    // Servers that read PORT by convention: run their script, PORT does the rest.
    fw(
        "nestjs",
        &["@nestjs/core"],
        "nest",
        &["start", "--watch"],
        &[],
    ),
    fw("hono", &["hono"], "", &[], &[]),
    fw("express", &["express"], "", &[], &[]),
    fw("fastify", &["fastify"], "", &[], &[]),
    fw("koa", &["koa"], "", &[], &[]),
    // Usually a second app beside the main one: only when nothing else matches.
    fw(
        "storybook",
        &["storybook"],
        "storybook",
        &["dev"],
        &["-p", "{port}"],
    ),
];

/// The scripts that may start the dev server, in order. `serve` comes last: it usually serves a
/// production build (`docusaurus serve`, `gatsby serve`, `http-server build`), unless it runs the
/// framework's dev command (`vue-cli-service serve`), which wins whatever the order.
const SCRIPTS: &[&str] = &["dev", "develop", "start:dev", "start", "serve"];

/// Subcommands after a bare-binary dev server that mean something else (`vite build`).
const NOT_DEV: &[&str] = &[
    "build", "preview", "optimize", "test", "lint", "check", "generate",
];

struct PackageJson {
    scripts: Vec<(String, String)>,
    deps: BTreeSet<String>,
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
    let mut deps = BTreeSet::new();
    for key in ["dependencies", "devDependencies"] {
        if let Some(obj) = value.get(key).and_then(Value::as_object) {
            deps.extend(obj.keys().cloned());
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

/// Programs a script may start that are not binaries of `node_modules/.bin`: they run as written.
const LAUNCHERS: &[&str] = &[
    "node",
    "npx",
    "npm",
    "pnpm",
    "pnpx",
    "yarn",
    "bun",
    "bunx",
    "deno",
    "tsx",
    "ts-node",
    "cross-env",
    "dotenv",
    "env",
    "nodemon",
];

/// The lockfiles, strongest first.
const LOCKFILES: &[(&str, PackageManager)] = &[
    ("pnpm-lock.yaml", PackageManager::Pnpm),
    ("bun.lock", PackageManager::Bun),
    ("bun.lockb", PackageManager::Bun),
    ("yarn.lock", PackageManager::Yarn),
    ("package-lock.json", PackageManager::Npm),
];

/// How many directories up a workspace root is looked for.
const MAX_WORKSPACE_DEPTH: usize = 6;

/// The package manager: the `packageManager` field, then lockfiles, then the workspace root's
/// (for a package inside a pnpm, yarn, bun or npm workspace), then npm.
fn package_manager(files: &dyn Files, pkg: &PackageJson) -> PackageManager {
    own_package_manager(files, "", pkg.package_manager.as_deref())
        .or_else(|| workspace_package_manager(files))
        .unwrap_or(PackageManager::Npm)
}

/// The `packageManager` field, else the lockfile, of the directory `up` (`""`, `"../"`, ...).
fn own_package_manager(files: &dyn Files, up: &str, field: Option<&str>) -> Option<PackageManager> {
    field.and_then(PackageManager::from_field).or_else(|| {
        LOCKFILES
            .iter()
            .find(|(file, _)| files.exists(&format!("{up}{file}")))
            .map(|(_, pm)| *pm)
    })
}

/// The package manager of the workspace this directory belongs to: the nearest ancestor with a
/// `pnpm-workspace.yaml` or a package.json with `workspaces`, looked for up to the repository's
/// root (the directory with `.git`) or the home directory.
fn workspace_package_manager(files: &dyn Files) -> Option<PackageManager> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let mut ancestors = files.dir().ancestors().skip(1);
    for depth in 1..=MAX_WORKSPACE_DEPTH {
        let dir = ancestors.next()?;
        if home.as_deref() == Some(dir) || dir.parent().is_none() {
            return None;
        }
        let up = "../".repeat(depth);
        let pnpm = files.exists(&format!("{up}pnpm-workspace.yaml"));
        let root: Option<Value> = files
            .read(&format!("{up}package.json"))
            .ok()
            .flatten()
            .and_then(|t| serde_json::from_str(&t).ok());
        let workspaces = root.as_ref().is_some_and(|v| v.get("workspaces").is_some());
        if pnpm || workspaces {
            let field = root
                .as_ref()
                .and_then(|v| v.get("packageManager"))
                .and_then(Value::as_str);
            return own_package_manager(files, &up, field)
                .or(pnpm.then_some(PackageManager::Pnpm))
                .or(Some(PackageManager::Npm));
        }
        if files.exists(&format!("{up}.git")) {
            return None;
        }
    }
    None
}

fn has_vite_config(files: &dyn Files) -> bool {
    ["ts", "js", "mjs", "mts", "cjs", "cts"]
        .iter()
        .any(|ext| files.exists(&format!("vite.config.{ext}")))
}

fn is_present(files: &dyn Files, pkg: &PackageJson, fw: &Framework) -> bool {
    let dep = fw.deps.iter().any(|d| pkg.deps.contains(*d));
    match fw.id {
        "remix-vite" => dep && has_vite_config(files),
        "wrangler" => ["wrangler.toml", "wrangler.jsonc", "wrangler.json"]
            .iter()
            .any(|f| files.exists(f)),
        "angular" => dep || files.exists("angular.json"),
        _ => dep,
    }
}

/// Whether a script's words start `fw`'s dev server: its binary followed by its first dev
/// argument, or for a bare-binary server, by anything but another subcommand.
fn invokes_dev(words: &[String], fw: &Framework) -> bool {
    if fw.bin.is_empty() {
        return false;
    }
    words.iter().enumerate().any(|(i, w)| {
        let name = w.rsplit('/').next().unwrap_or(w);
        if name != fw.bin && !fw.bin_aliases.contains(&name) {
            return false;
        }
        let rest = &words[i + 1..];
        match fw.dev_args.first() {
            Some(flag) if flag.starts_with('-') => rest.iter().any(|w| w == flag),
            Some(sub) => {
                rest.first().is_some_and(|w| w == sub)
                    || (fw.bare_is_dev && rest.first().is_none_or(|w| w.starts_with('-')))
            }
            None => rest.first().is_none_or(|w| !NOT_DEV.contains(&w.as_str())),
        }
    })
}

/// A port flag already in a script's words: the index of the value to replace.
fn port_in_words(words: &[String]) -> Option<(usize, PortSyntax)> {
    for (i, w) in words.iter().enumerate() {
        if (w == "--port" || w == "-p") && words.get(i + 1).is_some_and(|v| is_port(v)) {
            return Some((i + 1, PortSyntax::Separate));
        }
        for prefix in ["--port=", "-p=", "PORT="] {
            if w.strip_prefix(prefix).is_some_and(is_port) {
                return Some((i, PortSyntax::Joined(prefix)));
            }
        }
    }
    None
}

#[derive(Debug, Clone, Copy)]
enum PortSyntax {
    Separate,
    Joined(&'static str),
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A package.json's scripts: (name, text) in file order.
pub type Scripts = Vec<(String, String)>;

/// A package.json's scripts and the package manager that runs them, for the prompt that asks when
/// detection found nothing.
pub fn scripts(files: &dyn Files) -> Result<Option<(PackageManager, Scripts)>> {
    let Some(text) = files.read("package.json")? else {
        return Ok(None);
    };
    let pkg = parse_package_json(files, &text)?;
    Ok(Some((package_manager(files, &pkg), pkg.scripts)))
}

/// The command line that runs script `name` with `pm`.
pub fn run_script_line(pm: PackageManager, name: &str) -> String {
    pm.run(name)
        .iter()
        .map(|w| shell::quote_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Programs and flags by which a script starts the apps of a workspace rather than one server:
/// task runners, recursive and filtered runs, and runs in another directory.
const FAN_OUT: &[&str] = &[
    "turbo",
    "nx",
    "lerna",
    "-r",
    "--recursive",
    "--filter",
    "-F",
    "--workspace",
    "--workspaces",
    "-ws",
    "-C",
    "--cwd",
    "--dir",
    "--prefix",
];

/// Whether the script `cmd` fans out to the workspace's apps (inside quoted arguments too, as in
/// `concurrently "pnpm -C app run dev"`).
fn fans_out(cmd: &str) -> bool {
    shlex::split(cmd)
        .unwrap_or_default()
        .iter()
        .flat_map(|w| w.split_whitespace())
        .any(|w| FAN_OUT.contains(&w))
}

/// At the root of a workspace whose packages have dev servers of their own, a script that fans
/// out to them (or no script at all) starts no server on the port pm2-port would give: say so,
/// naming the apps and the ways out, instead of guessing.
fn fan_out(files: &dyn Files, script: Option<&(String, String)>) -> Result<()> {
    if script.is_some_and(|(_, cmd)| !fans_out(cmd)) {
        return Ok(());
    }
    let apps = workspace_dev_packages(files)?;
    if apps.is_empty() {
        return Ok(());
    }
    let how = match script {
        Some((name, cmd)) => format!(" whose `{name}` script (`{cmd}`) starts its apps"),
        None => " with no dev script of its own".to_string(),
    };
    Err(crate::error::RuntimeError::FanOut {
        dir: files.dir().to_path_buf(),
        how: format!("{how} ({}), each on a port of its own", apps.join(", ")),
        example: apps
            .iter()
            .take(2)
            .map(|a| format!("`[[apps]]` `dir = \"{a}\"`"))
            .collect::<Vec<_>>()
            .join(", "),
    }
    .into())
}

/// The directories (relative) of the workspace's packages that have a `dev` script: npm, yarn and
/// bun `workspaces` in package.json, pnpm's `pnpm-workspace.yaml`. Patterns are literal
/// directories or `DIR/*`.
pub fn workspace_dev_packages(files: &dyn Files) -> Result<Vec<String>> {
    let mut patterns: Vec<String> = Vec::new();
    if let Some(text) = files.read("package.json")?
        && let Ok(value) = serde_json::from_str::<Value>(&text)
    {
        let ws = value.get("workspaces");
        let list = ws
            .and_then(Value::as_array)
            .or_else(|| ws.and_then(|w| w.get("packages")).and_then(Value::as_array));
        patterns.extend(
            list.into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
    }
    if let Some(yaml) = files.read("pnpm-workspace.yaml")? {
        let mut in_packages = false;
        for line in yaml.lines() {
            let trimmed = line.trim();
            if !line.starts_with([' ', '-', '\t']) {
                in_packages = trimmed == "packages:";
                continue;
            }
            if in_packages && let Some(item) = trimmed.strip_prefix('-') {
                patterns.push(item.trim().trim_matches(['\'', '"']).to_string());
            }
        }
    }
    let mut dirs = Vec::new();
    for pattern in patterns {
        let pattern = pattern.trim_end_matches('/');
        let candidates: Vec<String> = match pattern.strip_suffix("/*") {
            Some(parent) => files
                .list(parent)
                .into_iter()
                .map(|d| format!("{parent}/{d}"))
                .collect(),
            None if !pattern.contains('*') && !pattern.starts_with('!') => {
                vec![pattern.to_string()]
            }
            None => Vec::new(),
        };
        for dir in candidates {
            let Some(text) = files.read(&format!("{dir}/package.json"))? else {
                continue;
            };
            let has_dev = serde_json::from_str::<Value>(&text)
                .ok()
                .is_some_and(|v| v.get("scripts").and_then(|s| s.get("dev")).is_some());
            if has_dev && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    Ok(dirs)
}

pub fn detect(files: &dyn Files) -> Result<Option<Detection>> {
    let Some(text) = files.read("package.json")? else {
        return Ok(None);
    };
    let pkg = parse_package_json(files, &text)?;
    let pm = package_manager(files, &pkg);
    let framework = FRAMEWORKS.iter().find(|fw| is_present(files, &pkg, fw));

    let candidates: Vec<&(String, String)> = SCRIPTS
        .iter()
        .filter_map(|s| pkg.scripts.iter().find(|(name, _)| name == s))
        .collect();
    // A script that starts the framework's dev server wins over one that does not.
    let script = framework
        .and_then(|fw| {
            candidates.iter().find(|(_, cmd)| {
                shell::simple_words(cmd).is_some_and(|w| invokes_dev(&w, fw))
                    || shlex::split(cmd).is_some_and(|w| invokes_dev(&w, fw))
            })
        })
        .or(candidates.first())
        .copied();

    fan_out(files, script)?;
    let mut detection = match (script, framework) {
        (Some((name, cmd)), _) => from_script(pm, framework, name, cmd),
        (None, Some(fw)) if !fw.bin.is_empty() => {
            let mut words: Vec<String> = pm.exec().iter().map(|w| w.to_string()).collect();
            words.push(fw.bin.to_string());
            words.extend(fw.dev_args.iter().map(|w| w.to_string()));
            Detection {
                framework: Some(fw.id),
                package_manager: Some(pm),
                launch: Launch::Words {
                    words,
                    port_args: fw.port_args.iter().map(|w| w.to_string()).collect(),
                    separator: false,
                },
                env: Vec::new(),
                notes: Vec::new(),
            }
        }
        (None, _) => return Ok(None),
    };
    if let Some(fw) = framework {
        detection.env.extend_from_slice(fw.env);
    }
    Ok(Some(detection))
}

/// Run script `name` (text `cmd`) through `pm`, giving it the port the way `fw` takes one.
fn from_script(
    pm: PackageManager,
    framework: Option<&Framework>,
    name: &str,
    cmd: &str,
) -> Detection {
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
    let invokes = |fw: &Framework| simple.as_deref().is_some_and(|w| invokes_dev(w, fw));

    // The script pins a port: run its command directly with the port replaced.
    if let Some(words) = &simple
        && let Some((at, syntax)) = port_in_words(words)
    {
        let mut words = words.clone();
        words[at] = match syntax {
            PortSyntax::Separate => "{port}".to_string(),
            PortSyntax::Joined(prefix) => format!("{prefix}{{port}}"),
        };
        // Keep leading `NAME=value` assignments (`PORT=` among them) in front of the exec words.
        let assignments = words
            .iter()
            .take_while(|w| w.split_once('=').is_some_and(|(n, _)| is_name(n)))
            .count();
        let mut out: Vec<String> = words[..assignments].to_vec();
        // A binary of node_modules/.bin needs the package manager's exec; a launcher on PATH
        // (`node`, `npx`, `pnpm`, ...) runs as it is: `npx npx x` or `npx node` would go to the
        // registry for a package of that name.
        if !words
            .get(assignments)
            .is_some_and(|w| LAUNCHERS.contains(&w.as_str()))
        {
            out.extend(pm.exec().iter().map(|w| w.to_string()));
        }
        out.extend(words[assignments..].iter().cloned());
        // The strict-port flag, when the framework has one and the script lacks it.
        let strict: Vec<String> = framework
            .filter(|fw| invokes(fw))
            .map(|fw| {
                fw.port_args
                    .iter()
                    .filter(|a| !a.contains("{port}") && *a != &"--port" && *a != &"-p")
                    .filter(|a| !out.iter().any(|w| w == *a))
                    .map(|a| a.to_string())
                    .collect()
            })
            .unwrap_or_default();
        detection.launch = Launch::Words {
            words: out,
            port_args: strict,
            separator: false,
        };
        return detection;
    }

    match framework {
        Some(fw) if !fw.port_args.is_empty() && invokes(fw) => {
            if let Launch::Words { port_args, .. } = &mut detection.launch {
                *port_args = fw.port_args.iter().map(|a| a.to_string()).collect();
            }
        }
        Some(fw) if !fw.port_args.is_empty() => detection.notes.push(format!(
            "script `{name}` (`{cmd}`) does not run `{}` directly, so pm2-port cannot pass it the port flag {}: the app gets only PORT; set `command` in buildflowz.toml if it ignores it",
            [fw.bin].iter().chain(fw.dev_args).copied().collect::<Vec<_>>().join(" "),
            fw.port_args.join(" ").replace("{port}", "N"),
        )),
        _ => {}
    }
    if simple.is_none() && port_pinned_in_text(cmd) {
        detection.notes.push(format!(
            "script `{name}` (`{cmd}`) seems to pin a port that pm2-port cannot replace; make it use $PORT, or set `command` in buildflowz.toml"
        ));
    }
    detection
}

fn port_pinned_in_text(cmd: &str) -> bool {
    let words: Vec<String> = cmd
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .map(str::to_string)
        .collect();
    port_in_words(&words).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        shlex::split(s).unwrap()
    }

    fn by_id(id: &str) -> &'static Framework {
        FRAMEWORKS.iter().find(|f| f.id == id).unwrap()
    }

    #[test]
    fn dev_invocations() {
        assert!(invokes_dev(&words("next dev --turbo"), by_id("next")));
        assert!(!invokes_dev(&words("next start"), by_id("next")));
        assert!(invokes_dev(&words("vite"), by_id("vite")));
        assert!(invokes_dev(&words("vite --host"), by_id("vite")));
        assert!(!invokes_dev(&words("vite build"), by_id("vite")));
        assert!(invokes_dev(&words("nuxi dev"), by_id("nuxt")));
        assert!(invokes_dev(
            &words("npx @11ty/eleventy --serve"),
            by_id("eleventy")
        ));
        assert!(invokes_dev(
            &words("eleventy --serve --quiet"),
            by_id("eleventy")
        ));
        assert!(!invokes_dev(&words("eleventy"), by_id("eleventy")));
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

    #[test]
    fn ports_in_scripts() {
        assert!(matches!(
            port_in_words(&words("vite --port 4000")),
            Some((2, PortSyntax::Separate))
        ));
        assert!(matches!(
            port_in_words(&words("next dev -p 4000")),
            Some((3, _))
        ));
        assert!(port_in_words(&words("eleventy --serve --port=8081")).is_some());
        assert!(port_in_words(&words("vite --port")).is_none());
    }
}
