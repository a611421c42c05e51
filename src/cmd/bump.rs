//! `pm2-port bump`: move a project to another free port, rewrite its file and the registry, and
//! apply the change to PM2 when PM2 knows the app.

use crate::cli::RangeArgs;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::apply;
use crate::configure::{self, Request};
use crate::ops::{self, Op, Target};
use crate::sys::world::Context;

#[derive(Debug, Args)]
pub struct BumpArgs {
    /// The project directory
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// Move to this port instead of the lowest free one
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// In a project of several [[apps]], move only this one
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,

    #[command(flatten)]
    pub range: RangeArgs,

    /// Rewrite the file and the registry, but leave PM2 alone
    #[arg(long)]
    pub no_restart: bool,

    /// Seconds to wait for the app to listen on its new port
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,

    /// Show what would change (a diff) and the PM2 operations; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: &BumpArgs) -> Result<()> {
    let ctx = &if args.no_restart || args.dry_run {
        ctx.clone()
    } else {
        ctx.driving_pm2()
    };
    let req = Request {
        dir: args.dir.clone(),
        port: args.port,
        range: args.range.range,
        dry_run: args.dry_run,
        bump: true,
        only: args.app.clone(),
        ..Request::default()
    };
    let plan = configure::configure(ctx, &req)?;
    let moved: Vec<Target> = plan
        .report
        .apps
        .iter()
        .filter(|a| a.previous_port.is_some())
        .map(|a| Target {
            name: a.name.clone(),
            cwd: a.cwd.clone(),
            port: a.port,
            previous_port: a.previous_port,
        })
        .collect();
    let mut operations: Vec<Op> = Vec::new();
    if args.no_restart {
        if !args.dry_run {
            for t in &moved {
                note!(
                    "PM2 was left alone; `pm2-port start {}` applies the new port of `{}`",
                    plan.file.parent().unwrap_or(&t.cwd).display(),
                    t.name
                );
            }
        }
    } else if !moved.is_empty() {
        // Read once the file is written: what PM2 runs now.
        let apps = ctx.pm2_apps()?;
        for t in &moved {
            let pm2 = ops::reapply_moved(&apps, &plan.file, t, args.timeout);
            apply::tell(&pm2);
            if !args.dry_run {
                apply::execute(ctx, &pm2.ops, false, false)?;
            }
            operations.extend(pm2.ops);
        }
    }
    if args.dry_run {
        return super::show::plan_with_ops(&plan, args.json, Some(&operations));
    }
    super::show::plan(&plan, args.json)
}
