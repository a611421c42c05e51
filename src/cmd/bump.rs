//! `pm2-port bump`: move a project to another free port, rewrite its file and the registry, and
//! apply the change to PM2 when PM2 knows the app.

use anyhow::Result;

use crate::apply;
use crate::cli::BumpArgs;
use crate::configure::{self, Request};
use crate::ops::{self, Op, Target};
use crate::sys::world::Context;

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
        return configure::print_with_ops(&plan, args.json, Some(&operations));
    }
    configure::print(&plan, args.json)
}
