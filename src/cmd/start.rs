//! `pm2-port start`: `init`, then bring the app up in PM2 and wait until it listens.

use crate::cli::InitOptions;
use anyhow::Result;
use clap::Args;

use crate::apply;
use crate::ops::{self, Target};
use crate::sys::world::{self, Context};

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub init: InitOptions,

    /// Seconds to wait for the app to listen on its port
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,

    /// Show what would change (a diff) and the PM2 operations; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the `init` result as JSON on stdout once the port listens
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: &StartArgs) -> Result<()> {
    // Before writing anything: without pm2 there is nothing to start.
    crate::sys::pm2_cli::ensure_installed()?;
    // A dry run only reads: it never runs `pm2`, which could start a daemon.
    let ctx = &if args.dry_run {
        ctx.clone()
    } else {
        ctx.driving_pm2()
    };
    let plan = super::configure_asking(ctx, &super::init::request(&args.init, args.dry_run))?;
    if !args.dry_run {
        for note in &plan.notes {
            note!("{note}");
        }
    }
    // PM2's apps, read once before anything changes.
    let live = apply::live_apps(ctx)?;
    // With no daemon, what `dump.pm2` holds: a daemon spawned now would leave it out of `pm2 save`.
    let saved = if live.is_none() {
        ctx.pm2_apps()?
    } else {
        Vec::new()
    };
    let targets: Vec<Target> = plan
        .report
        .apps
        .iter()
        .map(|a| Target {
            name: a.name.clone(),
            cwd: a.cwd.clone(),
            port: a.port,
            previous_port: a.previous_port,
        })
        .collect();
    // The apps the file had: those removed from it (an [[apps]] entry deleted) leave PM2.
    let before: Vec<(String, std::path::PathBuf)> = plan
        .old
        .iter()
        .flat_map(|o| &o.apps)
        .filter_map(|a| {
            Some((
                a.name.clone()?,
                crate::sys::files::canonical(a.cwd.as_ref()?),
            ))
        })
        .collect();
    let listeners = world::listeners()?;
    let pm2 = ops::start(&ops::StartInput {
        file: &plan.file,
        project: plan.file.parent().unwrap_or(&plan.file),
        targets: &targets,
        before: &before,
        live: live.as_deref(),
        saved: &saved,
        dump: &ctx.pm2_home.join("dump.pm2"),
        listeners: &listeners,
        changed: plan.changed(),
        timeout: args.timeout,
    });
    apply::tell(&pm2);
    if args.dry_run {
        return super::show::plan_with_ops(&plan, args.json, Some(&pm2.ops));
    }
    apply::execute(ctx, &pm2.ops, true, !args.json)?;
    if args.json {
        outln!("{}", serde_json::to_string(&plan.report)?)?;
    } else {
        for app in &plan.report.apps {
            outln!("{}  http://localhost:{}", app.name, app.port)?;
        }
    }
    Ok(())
}
