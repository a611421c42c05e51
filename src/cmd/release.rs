//! `pm2-port release`: give a project's ports back. Its registry entry goes, its apps leave PM2's
//! daemon (`pm2 delete`) and PM2's saved list (`dump.pm2`, edited in place so that no other app's
//! saved entry is touched), so `pm2 resurrect` does not bring them back. Its ecosystem file stays:
//! it is the user's to keep or delete, and `pm2-port init` configures it again.

use clap::Args;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::ecosystem::FILE_NAME;
use crate::model::App;
use crate::model::Entry;
use crate::pm2;
use crate::sys::files;
use crate::sys::registry;
use crate::sys::world::{self, Context};

#[derive(Debug, Serialize)]
struct Report {
    dir: PathBuf,
    dry_run: bool,
    /// The apps whose ports were given back.
    released: Vec<Released>,
    /// The apps deleted from PM2 (its daemon, its saved list, or both).
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
    match crate::sys::files::resolved(dir) {
        Some(abs) => Ok(abs),
        None => Ok(std::path::absolute(dir)?),
    }
}

/// The project's entry: the registry's, else what its own file says (apps whose directory is the
/// project's or inside it: a copied file naming another project's app is not this project's),
/// else, for a directory already gone, the PM2 apps that ran there.
fn entry_of(dir: &Path, registered: Option<&Entry>, apps: &[App]) -> Option<Entry> {
    if let Some(entry) = registered {
        return Some(entry.clone());
    }
    if let Ok(Some(text)) = files::read_text(&dir.join(FILE_NAME)) {
        return registry::entry_of(dir, &crate::ecosystem::read::classify(text));
    }
    if dir.exists() {
        return None;
    }
    let apps: Vec<crate::model::RegApp> = apps
        .iter()
        .filter(|a| a.belongs_to(dir))
        .filter_map(|a| {
            Some(crate::model::RegApp {
                name: a.name.clone(),
                port: a.port?,
                cwd: None,
            })
        })
        .collect();
    (!apps.is_empty()).then_some(Entry { apps })
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The project directory (it may be gone already)
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// Say what would be released, change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: &ReleaseArgs) -> Result<()> {
    let ctx = &if args.dry_run {
        ctx.clone()
    } else {
        ctx.driving_pm2()
    };
    let dir = project_dir(&args.dir)?;
    let _lock = if args.dry_run {
        None
    } else {
        Some(registry::lock(&ctx.state)?)
    };
    // PM2 under the lock: a `start` of this project must not slip in between.
    let server = world::server(ctx)?;
    let (_, loaded) = world::assemble(ctx, server.clone(), &[])?;
    let Some(entry) = entry_of(&dir, loaded.registry.projects.get(&dir), &server.apps)
        .filter(|e| !e.apps.is_empty())
    else {
        bail!(
            "`{}` is not a project pm2-port knows (no registry entry, no ecosystem file of pm2-port's); `pm2-port list` shows the projects",
            dir.display()
        );
    };
    let mut dirs = vec![dir.clone()];
    dirs.extend(entry.apps.iter().filter_map(|a| a.cwd.clone()));
    let ours = |name: &str, cwd: Option<&Path>| {
        entry.apps.iter().any(|a| a.name == name)
            && cwd.is_some_and(|c| dirs.iter().any(|d| files::canonical(c) == *d))
    };
    let in_pm2: Vec<&App> = server
        .apps
        .iter()
        .filter(|a| ours(&a.name, a.cwd.as_deref()))
        .collect();
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
        pm2_deleted: in_pm2.iter().map(|a| a.name.clone()).collect(),
    };
    if !args.dry_run {
        let mut registry = loaded.registry.clone();
        if registry.projects.remove(&dir).is_some() || loaded.stale {
            registry::save(&ctx.state, &registry, loaded.keep_broken_as.as_deref())?;
        }
        for app in in_pm2.iter().filter(|a| !a.only_saved()) {
            crate::sys::pm2_cli::delete(&app.name)?;
        }
        // The saved list, edited in place: `pm2 save` would also drop the saved apps of a daemon
        // started afresh and never resurrected.
        let dump = ctx.pm2_home.join("dump.pm2");
        if let Some(text) = files::read_text(&dump)?
            && let Some(new) = pm2::dump_without(&text, ours)?
        {
            files::atomic_write(&dump, &new)?;
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
