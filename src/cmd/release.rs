//! `pm2-port release`: give a project's ports back. Its registry entry goes, and its apps leave
//! PM2 (deleted, then `pm2 save` so that `pm2 resurrect` does not bring them back). Its ecosystem
//! file stays: it is the user's to keep or delete, and `pm2-port init` configures it again.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::cli::ReleaseArgs;
use crate::ecosystem::FILE_NAME;
use crate::pm2::{self, App};
use crate::registry::{self, Entry};
use crate::world::{self, Context};

#[derive(Debug, Serialize)]
struct Report {
    dir: PathBuf,
    dry_run: bool,
    /// The apps whose ports were given back.
    released: Vec<Released>,
    /// The apps deleted from PM2.
    pm2_deleted: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Released {
    name: String,
    port: Option<u16>,
}

/// The project's directory as the registry and PM2 know it: resolved when it exists, else made
/// absolute as written (a directory already deleted).
fn project_dir(dir: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(dir) {
        Ok(abs) => Ok(abs),
        Err(_) => Ok(std::path::absolute(dir)?),
    }
}

/// The project's PM2 apps: those named in its entry (or file) whose directory is one of its own.
fn apps_of<'a>(apps: &'a [App], names: &[String], dirs: &[PathBuf]) -> Vec<&'a App> {
    apps.iter()
        .filter(|a| names.contains(&a.name) && dirs.iter().any(|d| a.belongs_to(d)))
        .collect()
}

pub fn run(ctx: &Context, args: &ReleaseArgs) -> Result<()> {
    let ctx = &if args.dry_run {
        ctx.clone()
    } else {
        ctx.driving_pm2()
    };
    let dir = project_dir(&args.dir)?;
    let server = world::server(ctx)?;
    let _lock = if args.dry_run {
        None
    } else {
        Some(registry::lock(&ctx.state)?)
    };
    let (_, loaded) = world::assemble(ctx, server.clone(), &[])?;
    let entry: Option<Entry> = loaded.registry.projects.get(&dir).cloned().or_else(|| {
        // Not registered: the apps of its file, when pm2-port or BuildFlowz wrote it.
        let text = crate::sys::files::read_text(&dir.join(FILE_NAME)).ok()??;
        let existing = crate::ecosystem::read::classify(text);
        (existing.owner != crate::ecosystem::read::Owner::Hand).then(|| Entry {
            apps: existing
                .apps
                .iter()
                .filter_map(|a| {
                    Some(registry::RegApp {
                        name: a.name.clone()?,
                        port: a.port?,
                        cwd: a.cwd.clone().filter(|c| *c != dir),
                    })
                })
                .collect(),
        })
    });
    // A directory already deleted: the PM2 apps that still run there.
    let entry = entry.or_else(|| {
        (!dir.exists()).then(|| Entry {
            apps: server
                .apps
                .iter()
                .filter(|a| a.belongs_to(&dir))
                .filter_map(|a| {
                    Some(registry::RegApp {
                        name: a.name.clone(),
                        port: a.port?,
                        cwd: None,
                    })
                })
                .collect(),
        })
    });
    let Some(entry) = entry.filter(|e| !e.apps.is_empty()) else {
        bail!(
            "`{}` is not a project pm2-port knows (no registry entry, no ecosystem file of pm2-port's); `pm2-port list` shows the projects",
            dir.display()
        );
    };
    let names: Vec<String> = entry.apps.iter().map(|a| a.name.clone()).collect();
    let mut dirs = vec![dir.clone()];
    dirs.extend(entry.apps.iter().filter_map(|a| a.cwd.clone()));
    let in_pm2 = apps_of(&server.apps, &names, &dirs);
    let report = Report {
        dir: dir.clone(),
        dry_run: args.dry_run,
        released: entry
            .apps
            .iter()
            .map(|a| Released {
                name: a.name.clone(),
                port: Some(a.port),
            })
            .collect(),
        pm2_deleted: in_pm2
            .iter()
            .filter(|a| a.status != "saved")
            .map(|a| a.name.clone())
            .collect(),
    };
    if !args.dry_run {
        let mut registry = loaded.registry.clone();
        if registry.projects.remove(&dir).is_some() || loaded.stale {
            registry::save(&ctx.state, &registry, loaded.keep_broken_as.as_deref())?;
        }
        for name in &report.pm2_deleted {
            // An app only in dump.pm2 (deleted from the daemon, never saved since) needs no delete.
            if in_pm2
                .iter()
                .any(|a| &a.name == name && a.status != "deleted")
            {
                pm2::cli::delete(name)?;
            }
        }
        if !report.pm2_deleted.is_empty() {
            // `--force`: PM2 skips saving an empty list, which would leave these apps in the dump.
            pm2::cli::run(&["save", "--force"])?;
        }
        for app in in_pm2.iter().filter(|a| a.status == "saved") {
            warn!(
                "`{}` is still in PM2's `{}` (no daemon runs, so it cannot be deleted now): `pm2 resurrect` would bring it back; run `pm2 resurrect && pm2 delete {} && pm2 save` to forget it",
                app.name,
                ctx.pm2_home.join("dump.pm2").display(),
                app.name
            );
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string(&report)?)?;
        return Ok(());
    }
    let verb = if args.dry_run {
        "would release"
    } else {
        "released"
    };
    for app in &entry.apps {
        let pm2 = if report.pm2_deleted.contains(&app.name) {
            if args.dry_run {
                "; would delete it from PM2"
            } else {
                "; deleted it from PM2"
            }
        } else {
            ""
        };
        outln!("{verb} `{}` (port {}){pm2}", app.name, app.port)?;
    }
    if !args.dry_run && dir.join(FILE_NAME).exists() {
        say!(
            "`{}` still names those ports; `pm2-port init {}` configures the project again",
            dir.join(FILE_NAME).display(),
            dir.display()
        );
    }
    Ok(())
}
