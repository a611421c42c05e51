//! `pm2-port bump`: move a project to another free port, rewrite its file and the registry, and
//! apply the change to PM2 when PM2 knows the app.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::cli::BumpArgs;
use crate::configure::{self, Request};
use crate::pm2;
use crate::world::{self, Context};

pub fn run(ctx: &Context, args: &BumpArgs) -> Result<()> {
    let req = Request {
        dir: args.dir.clone(),
        port: args.port,
        range: args.range.range,
        dry_run: args.dry_run,
        bump: true,
        ..Request::default()
    };
    let plan = configure::configure(ctx, &req)?;
    let app = &plan.report.apps[0];
    if !args.dry_run && !args.no_restart {
        apply(ctx, &plan.file, app, Duration::from_secs(args.timeout))?;
    } else if args.no_restart && !args.dry_run {
        eprintln!(
            "note: PM2 was left alone; `pm2-port start {}` applies the new port",
            app.cwd.display()
        );
    }
    configure::print(&plan, args.json)
}

/// Re-apply the file to PM2 when it knows the app, then check the move really happened.
fn apply(
    ctx: &Context,
    file: &std::path::Path,
    app: &configure::AppReport,
    timeout: Duration,
) -> Result<()> {
    let apps = pm2::cli::apps(&ctx.pm2_home)?;
    let Some(known) = apps
        .iter()
        .find(|a| a.name == app.name && a.belongs_to(&app.cwd))
    else {
        return Ok(());
    };
    if known.status == "saved" {
        eprintln!(
            "note: PM2's dump.pm2 still has `{}` on its old port (no daemon runs); start it with `pm2-port start {}` rather than `pm2 resurrect`",
            app.name,
            app.cwd.display()
        );
        return Ok(());
    }
    let online = known.status == "online";
    pm2::cli::reapply(file, &app.name, !online)?;
    if !online {
        return Ok(());
    }
    let (up, _) = world::wait_port(app.port, timeout, |now| !now.is_empty())?;
    if !up {
        bail!(
            "`{}` did not listen on port {} within {}s; see `pm2 logs {}`",
            app.name,
            app.port,
            timeout.as_secs(),
            app.name
        );
    }
    if let Some(old) = app.previous_port {
        let (released, left) = world::wait_port(old, Duration::from_secs(5), |now| now.is_empty())?;
        if !released {
            let inodes: HashSet<u64> = left.iter().map(|l| l.inode).collect();
            let owners = world::socket_owners(&inodes);
            for l in &left {
                match owners.get(&l.inode) {
                    Some(pid) => eprintln!(
                        "warning: old port {old} is still held on {l} by PID {pid} (`{}`), an orphan of `{}`; stop it with `kill {pid}`",
                        world::command_of(*pid).unwrap_or_default(),
                        app.name
                    ),
                    None => eprintln!(
                        "warning: old port {old} is still held on {l} by a process pm2-port cannot see"
                    ),
                }
            }
        }
    }
    Ok(())
}
