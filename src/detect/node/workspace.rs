//! The workspace around a package: its root (where the package manager, the lockfile and hoisted
//! dependencies live) and, at a root, the apps it holds (workspace packages, Nx projects, or
//! independent projects in subdirectories).

use anyhow::Result;
use serde_json::Value;

use super::{LOCKFILES, PackageManager};
use crate::detect::Files;

/// The root of the workspace a package belongs to.
pub struct WorkspaceRoot {
    /// The way up from the package: `"../"`, `"../../"`, ...
    pub up: String,
    /// Its package.json, when it has one that parses.
    pub json: Option<Value>,
    pub pnpm: bool,
}

impl WorkspaceRoot {
    /// The root's package manager: its `packageManager` field, its lockfile, pnpm for a
    /// `pnpm-workspace.yaml`, else npm.
    pub fn package_manager(&self, files: &dyn Files) -> PackageManager {
        let field = self
            .json
            .as_ref()
            .and_then(|v| v.get("packageManager"))
            .and_then(Value::as_str);
        own_package_manager(files, &self.up, field)
            .or(self.pnpm.then_some(PackageManager::Pnpm))
            .unwrap_or(PackageManager::Npm)
    }

    /// The version range of a dependency of the root package (hoisted there for the workspace).
    pub fn dependency(&self, name: &str) -> Option<&str> {
        let json = self.json.as_ref()?;
        ["dependencies", "devDependencies"]
            .iter()
            .find_map(|k| json.get(k)?.get(name)?.as_str())
    }
}

/// The `packageManager` field, else the lockfile, of the directory `up` (`""`, `"../"`, ...).
pub fn own_package_manager(
    files: &dyn Files,
    up: &str,
    field: Option<&str>,
) -> Option<PackageManager> {
    field.and_then(PackageManager::from_field).or_else(|| {
        LOCKFILES
            .iter()
            .find(|(file, _)| files.exists(&format!("{up}{file}")))
            .map(|(_, pm)| *pm)
    })
}

/// The nearest ancestor with a `pnpm-workspace.yaml` or a package.json with `workspaces`, along
/// the walk of [`crate::detect::workspace_dirs`] (up to the repository's root).
pub fn workspace_root(files: &dyn Files) -> Option<WorkspaceRoot> {
    crate::detect::workspace_dirs(files)
        .into_iter()
        .skip(1)
        .find_map(|up| {
            let pnpm = files.exists(&format!("{up}pnpm-workspace.yaml"));
            let json: Option<Value> = files
                .read(&format!("{up}package.json"))
                .ok()
                .flatten()
                .and_then(|t| serde_json::from_str(&t).ok());
            let workspaces = json.as_ref().is_some_and(|v| v.get("workspaces").is_some());
            (pnpm || workspaces).then_some(WorkspaceRoot { up, json, pnpm })
        })
}

/// Yarn 2 or later ("berry"): its `packageManager` field says so, or a `.yarnrc.yml` sits in the
/// package or at the workspace root.
pub fn yarn_berry(files: &dyn Files, field: Option<&str>, root: Option<&WorkspaceRoot>) -> bool {
    let version_2_up = |f: &str| {
        f.strip_prefix("yarn@")
            .and_then(super::table::major)
            .is_some_and(|m| m >= 2)
    };
    let root_field = root
        .and_then(|r| r.json.as_ref())
        .and_then(|v| v.get("packageManager"))
        .and_then(Value::as_str);
    // A `packageManager` field says which yarn; only without one does `.yarnrc.yml` tell.
    match field.or(root_field).filter(|f| f.starts_with("yarn@")) {
        Some(f) => version_2_up(f),
        None => {
            files.exists(".yarnrc.yml")
                || root.is_some_and(|r| files.exists(&format!("{}.yarnrc.yml", r.up)))
        }
    }
}

/// The scripts that make a package an app of the workspace.
const APP_SCRIPTS: &[&str] = &["dev", "develop", "start:dev", "start"];

/// The directories (relative) of the apps at a workspace root: the packages of npm, yarn and bun
/// `workspaces` and pnpm's `pnpm-workspace.yaml` with a dev or start script, and Nx projects
/// (`project.json`) with a `serve` or `dev` target. Without a workspace, independent projects in
/// `apps/*`, `packages/*` or direct subdirectories. Patterns are literal directories or `DIR/*`.
pub fn apps(files: &dyn Files) -> Result<Vec<String>> {
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
        patterns.extend(pnpm_packages(&yaml));
    }
    let nx = files.exists("nx.json");
    if nx {
        patterns.extend(["apps/*", "packages/*"].map(str::to_string));
    }
    let declared = !patterns.is_empty();
    if !declared {
        patterns.extend(["apps/*", "packages/*", "*"].map(str::to_string));
    }
    let mut dirs = Vec::new();
    for pattern in patterns {
        // `apps/**` (any depth) is looked at one level deep, like `apps/*`.
        let pattern = pattern.trim_end_matches('/').replace("/**", "/*");
        let pattern = pattern.as_str();
        let candidates: Vec<String> = match pattern.strip_suffix("/*") {
            Some(parent) => files
                .list(parent)
                .into_iter()
                .map(|d| format!("{parent}/{d}"))
                .collect(),
            None if pattern == "*" => files
                .list("")
                .into_iter()
                .filter(|d| !d.starts_with('.') && d != "node_modules")
                .collect(),
            None if !pattern.contains('*') && !pattern.starts_with('!') => {
                vec![pattern.to_string()]
            }
            None => Vec::new(),
        };
        for dir in candidates {
            if dirs.contains(&dir) {
                continue;
            }
            // Without a workspace, a subdirectory is a project of its own only with a lockfile.
            if !declared && own_package_manager(files, &format!("{dir}/"), None).is_none() {
                continue;
            }
            if has_app_script(files, &dir)?
                || (nx && nx_target(files, &dir).ok().flatten().is_some())
            {
                dirs.push(dir);
            }
        }
    }
    Ok(dirs)
}

/// Whether the package in `dir` has an app script; a package.json that cannot be read (a FIFO,
/// not UTF-8) is not an app, rather than an error about a directory the user did not name.
/// The `packages` of a `pnpm-workspace.yaml`: a block list (`- apps/*`, quoted or not, comments
/// allowed) or a flow list (`packages: ["apps/*", 'docs']`).
fn pnpm_packages(yaml: &str) -> Vec<String> {
    let unquote = |s: &str| s.trim().trim_matches(['\'', '"']).to_string();
    let mut out = Vec::new();
    let mut in_packages = false;
    for line in yaml.lines() {
        let line = match line.find(" #") {
            Some(at) => &line[..at],
            None if line.trim_start().starts_with('#') => "",
            None => line,
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if !line.starts_with([' ', '-', '\t']) {
            in_packages = false;
            if let Some(rest) = trimmed.strip_prefix("packages:") {
                let rest = rest.trim();
                match rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                    Some(items) => {
                        out.extend(items.split(',').map(unquote).filter(|i| !i.is_empty()))
                    }
                    None => in_packages = rest.is_empty(),
                }
            }
            continue;
        }
        if in_packages && let Some(item) = trimmed.strip_prefix('-') {
            out.push(unquote(item));
        }
    }
    out
}

fn has_app_script(files: &dyn Files, dir: &str) -> Result<bool> {
    let Some(text) = files.read(&format!("{dir}/package.json")).ok().flatten() else {
        return Ok(false);
    };
    Ok(serde_json::from_str::<Value>(&text).ok().is_some_and(|v| {
        APP_SCRIPTS
            .iter()
            .any(|s| v.get("scripts").and_then(|s2| s2.get(s)).is_some())
    }))
}

/// An Nx project's dev target.
pub struct NxTarget {
    /// The project's name (`project.json`'s `name`, else the directory's).
    pub project: String,
    /// `serve` or `dev`.
    pub target: String,
    /// Its executor (`@angular/build:dev-server`), when it names one.
    pub executor: Option<String>,
}

/// The `serve` (or `dev`) target of the Nx project in `dir` (`""`: the package itself).
pub fn nx_target(files: &dyn Files, dir: &str) -> Result<Option<NxTarget>> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let Some(text) = files.read(&format!("{prefix}project.json"))? else {
        return Ok(None);
    };
    let Ok(value) = serde_json::from_str::<Value>(&text) else {
        return Ok(None);
    };
    let Some(targets) = value.get("targets") else {
        return Ok(None);
    };
    let Some(target) = ["serve", "dev"]
        .into_iter()
        .find(|t| targets.get(t).is_some())
    else {
        return Ok(None);
    };
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let dir_name = if dir.is_empty() {
        files
            .dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    } else {
        dir.rsplit('/').next().map(str::to_string)
    };
    Ok(Some(NxTarget {
        project: name.or(dir_name).unwrap_or_default(),
        target: target.to_string(),
        executor: targets[target]
            .get("executor")
            .and_then(Value::as_str)
            .map(str::to_string),
    }))
}

/// The framework and port arguments of an Nx executor's dev server.
pub fn nx_executor(executor: &str) -> Option<(&'static str, &'static [&'static str])> {
    let (plugin, name) = executor.rsplit_once(':')?;
    let port: &'static [&'static str] = &["--port", "{port}"];
    match (plugin, name) {
        (
            "@angular/build"
            | "@angular-devkit/build-angular"
            | "@nx/angular"
            | "@nrwl/angular"
            | "@angular-builders/custom-webpack"
            | "@angular-builders/custom-esbuild",
            "dev-server",
        ) => Some(("angular", port)),
        ("@nx/vite" | "@nrwl/vite", "dev-server") => Some(("vite", port)),
        ("@nx/next" | "@nrwl/next", "server") => Some(("next", port)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pnpm_workspace_forms() {
        assert_eq!(
            pnpm_packages(
                "packages:\n  - apps/*\n  - \"docs\" # the site\n  # - old/*\nonlyBuiltDependencies:\n  - esbuild\n"
            ),
            ["apps/*", "docs"]
        );
        assert_eq!(
            pnpm_packages("packages: [\"apps/*\", 'packages/**']\n"),
            ["apps/*", "packages/**"]
        );
        assert!(pnpm_packages("catalog:\n  react: ^19\n").is_empty());
    }
}
