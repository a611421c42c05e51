//! `pm2-port start`: `init`, then bring the app up in PM2 and wait until it listens.

use std::time::Duration;

use anyhow::Result;

use crate::apply;
use crate::cli::StartArgs;
use crate::configure;
use crate::pm2::{self, rpc};
use crate::world::{self, Context};

pub fn run(ctx: &Context, args: &StartArgs) -> Result<()> {
    // Before writing anything: without pm2 there is nothing to start.
    pm2::cli::ensure_installed()?;
    let plan = configure::configure(ctx, &super::init::request(&args.init, false))?;
    for note in &plan.notes {
        note!("{note}");
    }
    let daemon_ran = !matches!(
        rpc::process_list(&ctx.pm2_home),
        rpc::Answer::NoSocket | rpc::Answer::Stale
    );
    // Apps removed from the file (an [[apps]] entry deleted) leave PM2 too.
    for gone in plan.old.iter().flat_map(|o| &o.apps) {
        let (Some(name), Some(cwd)) = (&gone.name, &gone.cwd) else {
            continue;
        };
        if plan.report.apps.iter().any(|a| &a.name == name) {
            continue;
        }
        if apply::live_app(ctx, name, cwd)?.is_some() {
            pm2::cli::delete(name)?;
            note!("deleted `{name}` from PM2: it is no longer in the project's file");
        }
    }
    let mut started = Vec::new();
    for app in &plan.report.apps {
        let live = apply::live_app(ctx, &app.name, &app.cwd)?;
        let up_already = live
            .as_ref()
            .is_some_and(|a| a.status == "online" && a.port == Some(app.port) && !plan.changed())
            && !world::listeners_on(app.port)?.is_empty();
        if up_already {
            say!("`{}` is already online on port {}", app.name, app.port);
            continue;
        }
        // Delete first: `pm2 start` does not apply a changed script, and removed env keys linger.
        if live.is_some() {
            pm2::cli::delete(&app.name)?;
        }
        pm2::cli::start_only(&plan.file, &app.name)?;
        started.push(app);
    }
    if !started.is_empty() {
        save(ctx, daemon_ran)?;
    }
    for app in started {
        apply::wait_listening(ctx, app, Duration::from_secs(args.timeout), !args.json)?;
    }
    if args.json {
        outln!("{}", serde_json::to_string(&plan.report)?)?;
    } else {
        for app in &plan.report.apps {
            outln!("{}  http://localhost:{}", app.name, app.port)?;
        }
    }
    Ok(())
}

/// `pm2 save`, unless this start had to spawn the daemon while `dump.pm2` holds other apps: saving
/// then would drop them from what `pm2 resurrect` brings back.
fn save(ctx: &Context, daemon_ran: bool) -> Result<()> {
    if !daemon_ran {
        let dump = ctx.pm2_home.join("dump.pm2");
        let saved = std::fs::read_to_string(&dump)
            .ok()
            .and_then(|t| pm2::parse_dump(&t).ok())
            .unwrap_or_default();
        let live = pm2::cli::apps(&ctx.pm2_home)?;
        let dropped: Vec<&str> = saved
            .iter()
            .filter(|s| !live.iter().any(|l| l.name == s.name && l.status != "saved"))
            .map(|s| s.name.as_str())
            .collect();
        if !dropped.is_empty() {
            warn!(
                "not running `pm2 save`: PM2's daemon was not running and `{}` holds {} other apps ({}); run `pm2 resurrect`, then `pm2 save`",
                dump.display(),
                dropped.len(),
                dropped.join(", ")
            );
            return Ok(());
        }
    }
    pm2::cli::save()
}
