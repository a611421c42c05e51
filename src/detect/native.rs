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
/// When `Procfile.dev`'s `web:` line pins a port (`-p 3000`), `bin/dev` would serve there whatever
/// `PORT` says: then `bin/rails server -p PORT`, with a note on the watchers left out.
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
    let procfile = files
        .read("Procfile.dev")
        .ok()
        .flatten()
        .unwrap_or_default();
    let processes: Vec<(&str, &str)> = procfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(name, command)| (name.trim(), command.trim()))
        .collect();
    let pinned = processes
        .iter()
        .find(|(name, _)| *name == "web")
        .and_then(|(_, command)| pinned_port(command));
    let Some(port) = pinned else {
        return Some(Detection::new("rails", Launch::words(&["bin/dev"], &[])));
    };
    let mut detection = Detection::new(
        "rails",
        Launch::words(&["bin/rails", "server"], &["-p", "{port}"]),
    );
    let others: Vec<&str> = processes
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| *name != "web")
        .collect();
    let left_out = if others.is_empty() {
        String::new()
    } else {
        format!(
            ": the other processes of Procfile.dev ({}) do not run",
            others.join(", ")
        )
    };
    detection.notes.push(format!(
        "Procfile.dev runs the web server on port {port} whatever PORT says, so pm2-port runs `bin/rails server` on the allocated port instead of `bin/dev`{left_out}; to get `bin/dev` back, write `-p $PORT` in Procfile.dev's web line (or drop `-p {port}`: Rails reads PORT) and run `pm2-port init` again"
    ));
    Some(detection)
}

/// The port a command line pins: `-p 3000`, `-p3000`, `--port 3000`, `--port=3000`.
fn pinned_port(command: &str) -> Option<u16> {
    let words: Vec<&str> = command.split_whitespace().collect();
    words.iter().enumerate().find_map(|(i, w)| {
        let value = match *w {
            "-p" | "--port" => words.get(i + 1).copied(),
            w => w
                .strip_prefix("--port=")
                .or_else(|| w.strip_prefix("-p").filter(|v| !v.is_empty())),
        };
        value.and_then(|v| v.parse().ok())
    })
}

pub fn hugo(files: &dyn Files) -> Result<Option<Detection>> {
    let found = super::hugo_config(files)?;
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
    // Whether a Go source file of `dir` (tests aside) has a line that `line` accepts.
    let any_go_line = |dir: &str, line: &dyn Fn(&str) -> bool| -> Result<bool> {
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
                && text.lines().any(line)
            {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let main_in = |dir: &str| any_go_line(dir, &|l| l.trim() == "package main");
    // The port flag the main package defines (`flag.Int("port", ...)`, cobra's
    // `Flags().IntP("port", ...)`): such an app reads it, not `PORT`.
    let port_args = |dir: &str| -> Result<&'static [&'static str]> {
        Ok(if any_go_line(dir, &defines_port_flag)? {
            &["--port", "{port}"]
        } else {
            &[]
        })
    };
    if main_in("")? {
        return Ok(Some(Detection::new(
            "go",
            Launch::words(&["go", "run", "."], port_args("")?),
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
    let mut detection = Detection::new(
        "go",
        Launch::words(&["go", "run", &target], port_args(&pick)?),
    );
    if mains.len() > 1 {
        detection.notes.push(format!(
            "chose `{target}` among {} commands {place}; set `command` in buildflowz.toml to run another",
            mains.len()
        ));
    }
    Ok(Some(detection))
}

/// Whether a line of Go defines a flag named `port` with the `flag` package or pflag (cobra):
/// `flag.Int("port", ...)`, `fs.IntVar(&p, "port", ...)`, `cmd.Flags().StringVarP(&p, "port",
/// "p", ...)`. Go's `flag` takes `--port N` as pflag does.
fn defines_port_flag(line: &str) -> bool {
    let Some(at) = line.find("\"port\"") else {
        return false;
    };
    let before = line[..at].trim_end();
    let Some(open) = before.rfind('(') else {
        return false;
    };
    let method = before[..open]
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    let inside = before[open + 1..].trim();
    let kind = method.strip_suffix('P').unwrap_or(method);
    let (kind, var) = match kind.strip_suffix("Var") {
        Some(k) => (k, true),
        None => (kind, false),
    };
    let typed = [
        "Int", "Int64", "Uint", "Uint16", "Uint32", "Uint64", "String",
    ]
    .contains(&kind);
    // `Var` forms take the variable first (`&p,`), the others the name first.
    let placed = if var {
        inside.starts_with('&')
            && inside.ends_with(',')
            && !inside[..inside.len() - 1].contains(',')
    } else {
        inside.is_empty()
    };
    typed && placed && before[..open].contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::memory::MemFiles;

    #[test]
    fn a_go_port_flag_is_passed_the_port() {
        for line in [
            "var port = flag.Int(\"port\", 8080, \"port to listen on\")",
            "\tflag.IntVar(&port, \"port\", 8080, \"\")",
            "\trootCmd.PersistentFlags().Int(\"port\", 8081, \"port of server\")",
            "\tcmd.Flags().IntP(\"port\", \"p\", 8081, \"\")",
            "\tcmd.Flags().StringVarP(&cfg.Port, \"port\", \"p\", \"8080\", \"\")",
            "\tfs.Uint(\"port\", 80, \"\")",
        ] {
            assert!(defines_port_flag(line), "{line}");
            assert_eq!(
                go_line(
                    "/srv/app",
                    &[
                        ("go.mod", "module x\n"),
                        ("main.go", &format!("{MAIN}{line}\n"))
                    ]
                )
                .as_deref(),
                Some("go run . --port 3003"),
                "{line}"
            );
        }
        for line in [
            "port := os.Getenv(\"port\")",
            "flag.Int(\"http-port\", 8080, \"\")",
            "flag.String(\"portal\", \"\", \"\")",
            "flag.Bool(\"port\", false, \"\")",
            "log.Printf(\"listening\", \"port\", port)",
            "viper.GetInt(\"port\")",
            "flag.Lookup(\"port\")",
            "x := Int(\"port\")",
        ] {
            assert!(!defines_port_flag(line), "{line}");
        }
        // Under cmd/, in the package chosen; a test file does not count.
        let files = [
            ("go.mod", "module x\n"),
            (
                "cmd/memos/main.go",
                "package main\n\nfunc init() {\n\trootCmd.PersistentFlags().Int(\"port\", 8081, \"\")\n}\n",
            ),
            ("cmd/tool/main.go", MAIN),
        ];
        assert_eq!(
            go_line("/srv/memos", &files).as_deref(),
            Some("go run ./cmd/memos --port 3003")
        );
        assert_eq!(
            go_line(
                "/srv/app",
                &[
                    ("go.mod", "module x\n"),
                    ("main.go", MAIN),
                    (
                        "main_test.go",
                        "package main\nvar p = flag.Int(\"port\", 1, \"\")\n"
                    )
                ]
            )
            .as_deref(),
            Some("go run .")
        );
    }

    fn go_line(dir: &str, files: &[(&str, &str)]) -> Option<String> {
        go(&MemFiles::new(dir, files))
            .unwrap()
            .map(|d| d.launch.command_line(3003))
    }

    const MAIN: &str = "package main\n\nfunc main() {}\n";
    const LIB: &str = "package domain\n";

    fn rails_line(files: &[(&str, &str)]) -> (String, Vec<String>) {
        let mut all = vec![
            ("Gemfile", "gem \"rails\"\n"),
            ("bin/rails", ""),
            ("bin/dev", ""),
        ];
        all.extend_from_slice(files);
        let d = rails(&MemFiles::new("/srv/casa", &all)).unwrap();
        (d.launch.command_line(3003), d.notes)
    }

    #[test]
    fn rails_with_a_pinned_procfile_port_runs_rails_server() {
        let procfile = "web: bin/rails server -p 3000 -b 0.0.0.0\njs: npm run build -- --watch\ntw: bin/rails tailwindcss:watch\n";
        let (line, notes) = rails_line(&[("Procfile.dev", procfile)]);
        assert_eq!(line, "bin/rails server -p 3003");
        assert!(
            notes[0].contains("(js, tw) do not run") && notes[0].contains("`-p $PORT`"),
            "{notes:?}"
        );
        for web in [
            "web: bin/rails s --port=4000",
            "web: bundle exec puma -p4000",
        ] {
            assert_eq!(
                rails_line(&[("Procfile.dev", web)]).0,
                "bin/rails server -p 3003",
                "{web}"
            );
        }
        // PORT reaches the server: bin/dev, which also runs the watchers.
        for web in [
            "web: bin/rails server -p $PORT",
            "web: bin/rails server",
            "# web: x -p 3000\nweb: bin/rails s",
        ] {
            let (line, notes) = rails_line(&[("Procfile.dev", web)]);
            assert_eq!((line.as_str(), notes.len()), ("bin/dev", 0), "{web}");
        }
        assert_eq!(rails_line(&[]).0, "bin/dev");
    }

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
