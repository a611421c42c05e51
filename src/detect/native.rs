//! Projects with their own toolchain: Rust (through `cargo_metadata`), Go, Rails, Laravel, Hugo.

use anyhow::Result;
use cargo_metadata::{Metadata, TargetKind};

use super::{Detection, Files, Launch};

pub fn laravel(files: &dyn Files) -> Option<Detection> {
    files.exists("artisan").then(|| {
        Detection::new(
            "laravel",
            Launch::words(&["php", "artisan", "serve"], &["--port={port}"]),
        )
    })
}

/// Rails: `bin/dev` when the app has one (Rails 7+ with jsbundling, cssbundling or
/// tailwindcss-rails: it runs the CSS and JS watchers beside the server, and foreman gives the
/// first process of `Procfile.dev` the port in `PORT`), else `bin/rails server`, which reads `PORT`.
pub fn rails(files: &dyn Files) -> Option<Detection> {
    if !(files.exists("Gemfile") && files.exists("bin/rails")) {
        return None;
    }
    if !files.exists("bin/dev") {
        return Some(Detection::new(
            "rails",
            Launch::words(&["bin/rails", "server"], &[]),
        ));
    }
    let mut detection = Detection::new("rails", Launch::words(&["bin/dev"], &[]));
    let procfile = files
        .read("Procfile.dev")
        .ok()
        .flatten()
        .unwrap_or_default();
    if let Some(web) = procfile
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("web:"))
    {
        let words: Vec<&str> = web.split_whitespace().collect();
        if let Some(port) = words
            .windows(2)
            .find(|w| matches!(w[0], "-p" | "--port") && w[1].parse::<u16>().is_ok())
            .map(|w| w[1])
        {
            detection.notes.push(format!(
                "Procfile.dev runs the web server on port {port} whatever PORT says: write `-p $PORT` there (or drop `-p {port}`) so that `bin/dev` uses the allocated port"
            ));
        }
    }
    Some(detection)
}

pub fn hugo(files: &dyn Files) -> Result<Option<Detection>> {
    let mut found = ["hugo.toml", "hugo.yaml", "hugo.json"]
        .iter()
        .any(|f| files.exists(f));
    if !found && let Some(config) = files.read("config.toml")? {
        found = config
            .lines()
            .any(|l| l.trim_start().to_ascii_lowercase().starts_with("baseurl"));
    }
    Ok(found.then(|| {
        Detection::new(
            "hugo",
            Launch::words(&["hugo", "server"], &["-p", "{port}"]),
        )
    }))
}

/// The web frameworks whose presence marks a binary as the server among several.
const RUST_WEB: &[&str] = &[
    "axum",
    "actix-web",
    "rocket",
    "warp",
    "poem",
    "hyper",
    "tide",
    "salvo",
    "loco-rs",
];

pub fn rust(files: &dyn Files) -> Result<Option<Detection>> {
    // Read it first: a FIFO or device there is refused here, where cargo would block on it.
    if files.read("Cargo.toml")?.is_none() {
        return Ok(None);
    }
    let metadata = files.cargo_metadata()?;
    let dir_name = files
        .dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(rust_from_metadata(&metadata, &dir_name))
}

/// Pick the package and binary to `cargo run` from the workspace's metadata.
pub fn rust_from_metadata(metadata: &Metadata, dir_name: &str) -> Option<Detection> {
    let members = metadata.workspace_packages();
    // (package, binary, package has default-run, package depends on a web framework)
    let mut bins = Vec::new();
    for pkg in &members {
        let web = pkg
            .dependencies
            .iter()
            .any(|d| RUST_WEB.contains(&d.name.as_str()));
        for target in &pkg.targets {
            if !target.kind.contains(&TargetKind::Bin) {
                continue;
            }
            if pkg.default_run.as_deref().is_some_and(|d| d != target.name) {
                continue;
            }
            bins.push((pkg, target.name.as_str(), pkg.default_run.is_some(), web));
        }
    }
    if bins.is_empty() {
        return None;
    }
    let root = metadata.root_package();
    // Stable preference: named like the directory, then default-run, then a web server.
    bins.sort_by_key(|(pkg, bin, default_run, web)| {
        (
            *bin != dir_name && pkg.name.as_str() != dir_name,
            !default_run,
            !web,
            pkg.name.to_string(),
            bin.to_string(),
        )
    });
    let (pkg, bin, _, _) = bins[0];
    let mut words = vec!["cargo", "run"];
    let single_in_root = root.is_some_and(|r| r.id == pkg.id)
        && bins.iter().filter(|(p, ..)| p.id == pkg.id).count() == 1;
    let pkg_name = pkg.name.to_string();
    if root.is_none_or(|r| r.id != pkg.id) {
        words.extend(["-p", pkg_name.as_str()]);
    }
    if !single_in_root {
        words.extend(["--bin", bin]);
    }
    let mut detection = Detection::new("rust", Launch::words(&words, &[]));
    if bins.len() > 1 {
        let others: Vec<String> = bins[1..]
            .iter()
            .map(|(p, b, ..)| format!("{}/{b}", p.name))
            .collect();
        detection.notes.push(format!(
            "chose binary `{bin}` of package `{pkg_name}` among {}; set `command` in buildflowz.toml to run another",
            others.join(", ")
        ));
    }
    Some(detection)
}

/// Directories of a Go module that hold no command of the project: the go tool ignores `vendor`,
/// `testdata` and names starting with `.` or `_`; `examples` show how to use a library and often
/// need arguments of their own.
const GO_NOT_APPS: &[&str] = &["vendor", "testdata", "cmd", "examples", "example"];

/// Go: `go run .` when the module root is a main package; else a main package under `cmd/`; else
/// one in another direct subdirectory (`app/`). Among several: the one named like the directory,
/// else `server`, `web`, `api`, `app`, else the first by name.
pub fn go(files: &dyn Files) -> Result<Option<Detection>> {
    if !files.exists("go.mod") {
        return Ok(None);
    }
    let main_in = |dir: &str| -> Result<bool> {
        for name in files.list(dir) {
            if !name.ends_with(".go") || name.ends_with("_test.go") {
                continue;
            }
            let rel = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            if let Some(text) = files.read(&rel)?
                && text.lines().any(|l| l.trim() == "package main")
            {
                return Ok(true);
            }
        }
        Ok(false)
    };
    if main_in("")? {
        return Ok(Some(Detection::new(
            "go",
            Launch::words(&["go", "run", "."], &[]),
        )));
    }
    let dir_name = files
        .dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mains_under = |parent: &str| -> Result<Vec<String>> {
        let mut names = files.list(parent);
        names.sort();
        let mut mains = Vec::new();
        for name in names {
            if name.starts_with(['.', '_'])
                || (parent.is_empty() && GO_NOT_APPS.contains(&name.as_str()))
            {
                continue;
            }
            let dir = if parent.is_empty() {
                name.clone()
            } else {
                format!("{parent}/{name}")
            };
            if main_in(&dir)? {
                mains.push(dir);
            }
        }
        Ok(mains)
    };
    let mut mains = mains_under("cmd")?;
    let place = if mains.is_empty() {
        mains = mains_under("")?;
        "in the module's directories"
    } else {
        "under cmd/"
    };
    let base = |dir: &str| dir.rsplit('/').next().unwrap_or(dir).to_string();
    let preferred = ["server", "web", "api", "app"];
    let Some(pick) = mains
        .iter()
        .find(|d| base(d) == dir_name)
        .or_else(|| mains.iter().find(|d| preferred.contains(&base(d).as_str())))
        .or(mains.first())
        .cloned()
    else {
        return Ok(None);
    };
    let target = format!("./{pick}");
    let mut detection = Detection::new("go", Launch::words(&["go", "run", &target], &[]));
    if mains.len() > 1 {
        detection.notes.push(format!(
            "chose `{target}` among {} commands {place}; set `command` in buildflowz.toml to run another",
            mains.len()
        ));
    }
    Ok(Some(detection))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::mem::MemFiles;

    fn go_line(dir: &str, files: &[(&str, &str)]) -> Option<String> {
        go(&MemFiles::new(dir, files))
            .unwrap()
            .map(|d| d.launch.command_line(3003))
    }

    const MAIN: &str = "package main\n\nfunc main() {}\n";
    const LIB: &str = "package domain\n";

    #[test]
    fn go_main_packages_in_subdirectories() {
        let module = ("go.mod", "module example.com/shop\n");
        // The root first, then cmd/, then the other directories.
        assert_eq!(
            go_line(
                "/srv/shop",
                &[module, ("main.go", MAIN), ("cmd/tool/main.go", MAIN)]
            )
            .as_deref(),
            Some("go run .")
        );
        assert_eq!(
            go_line(
                "/srv/shop",
                &[module, ("cmd/tool/main.go", MAIN), ("app/main.go", MAIN)]
            )
            .as_deref(),
            Some("go run ./cmd/tool")
        );
        assert_eq!(
            go_line(
                "/srv/shop",
                &[
                    module,
                    ("app/main.go", MAIN),
                    ("domain/article.go", LIB),
                    ("internal/main_test.go", MAIN),
                ]
            )
            .as_deref(),
            Some("go run ./app")
        );
        // Named like the directory, then the usual server names.
        assert_eq!(
            go_line(
                "/srv/shop",
                &[
                    module,
                    ("api/main.go", MAIN),
                    ("seed/main.go", MAIN),
                    ("shop/main.go", MAIN)
                ]
            )
            .as_deref(),
            Some("go run ./shop")
        );
        assert_eq!(
            go_line(
                "/srv/x",
                &[module, ("seed/main.go", MAIN), ("web/main.go", MAIN)]
            )
            .as_deref(),
            Some("go run ./web")
        );
        // Not vendored, test, hidden or example code.
        assert_eq!(
            go_line(
                "/srv/lib",
                &[
                    module,
                    ("lib.go", "package lib\n"),
                    ("vendor/x/main.go", MAIN),
                    ("testdata/main.go", MAIN),
                    (".github/main.go", MAIN),
                    ("_tools/main.go", MAIN),
                    ("examples/base/main.go", MAIN),
                    ("example/main.go", MAIN),
                ]
            ),
            None
        );
    }
}
