//! `pm2-port bump`: move a project to another free port, rewrite its file and the registry, and
//! apply the change to PM2 when PM2 knows the app.

use std::time::Duration;

use anyhow::Result;

use crate::apply;
use crate::cli::BumpArgs;
use crate::configure::{self, Request};
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
    if !args.dry_run {
        for app in plan
            .report
            .apps
            .iter()
            .filter(|a| a.previous_port.is_some())
        {
            if args.no_restart {
                note!(
                    "PM2 was left alone; `pm2-port start {}` applies the new port of `{}`",
                    plan.file.parent().unwrap_or(&app.cwd).display(),
                    app.name
                );
            } else {
                apply::reapply_known(ctx, &plan.file, app, Duration::from_secs(args.timeout))?;
            }
        }
    }
    configure::print(&plan, args.json)
}
