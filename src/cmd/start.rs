//! `pm2-port start`: `init`, then bring the app up in PM2 and wait until it listens.

use std::time::Duration;

use anyhow::Result;

use crate::apply;
use crate::cli::StartArgs;
use crate::sys::world::{self, Context};

pub fn run(ctx: &Context, args: &StartArgs) -> Result<()> {
    // Before writing anything: without pm2 there is nothing to start.
    crate::sys::pm2_cli::ensure_installed()?;
    let ctx = &ctx.driving_pm2();
    let plan = super::configure_asking(ctx, &super::init::request(&args.init, false))?;
    for note in &plan.notes {
        note!("{note}");
    }
    // PM2's apps, read once before anything changes.
    let before = apply::live_apps(ctx)?;
    let daemon_ran = before.is_some();
    let live = before.unwrap_or_default();
    // Apps removed from the file (an [[apps]] entry deleted) leave PM2 too: those of this
    // project's directory only (a file edited to name another project's app does not make it ours).
    let project = plan.file.parent().unwrap_or(&plan.file);
    for gone in plan.old.iter().flat_map(|o| &o.apps) {
        let (Some(name), Some(cwd)) = (&gone.name, &gone.cwd) else {
            continue;
        };
        let cwd = &crate::sys::files::canonical(cwd);
        if plan.report.apps.iter().any(|a| &a.name == name) || !cwd.starts_with(project) {
            continue;
        }
        if apply::find(&live, name, cwd).is_some() {
            crate::sys::pm2_cli::delete(name)?;
            note!("deleted `{name}` from PM2: it is no longer in the project's file");
        }
    }
    // (app, whether PM2 knew it before this command)
    let mut started = Vec::new();
    for app in &plan.report.apps {
        let known = apply::find(&live, &app.name, &app.cwd);
        let up_already = known.as_ref().is_some_and(|a| {
            a.status == crate::model::Status::Online && a.port == Some(app.port) && !plan.changed()
        }) && !world::listeners_on(app.port)?.is_empty();
        if up_already {
            say!("`{}` is already online on port {}", app.name, app.port);
            continue;
        }
        // Delete first: `pm2 start` does not apply a changed script, and removed env keys linger.
        if known.is_some() {
            crate::sys::pm2_cli::delete(&app.name)?;
        }
        started.push((app, known.is_some()));
        if let Err(err) = crate::sys::pm2_cli::start_only(&plan.file, &app.name) {
            return Err(undo(&started, err));
        }
    }
    for (app, _) in &started {
        if let Err(err) =
            apply::wait_listening(ctx, app, Duration::from_secs(args.timeout), !args.json)
        {
            return Err(undo(&started, err));
        }
    }
    if !started.is_empty() {
        save(ctx, daemon_ran)?;
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
        // `apps` lists the apps only `dump.pm2` has as `saved`.
        let apps = ctx.pm2_apps()?;
        let dropped: Vec<&str> = apps
            .iter()
            .filter(|a| a.only_saved())
            .map(|a| a.name.as_str())
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
    crate::sys::pm2_cli::save()
}

/// After a failed start: take back what this command started, so that no app is left running on
/// a port other than its own. An app PM2 did not know is deleted again; one it knew (deleted and
/// started anew here) is stopped. `pm2 save` is not run, so what `pm2 resurrect` brings back is
/// unchanged. The error says which.
fn undo(started: &[(&crate::configure::AppReport, bool)], err: anyhow::Error) -> anyhow::Error {
    let mut said = Vec::new();
    for (app, known) in started {
        let (verb, result) = if *known {
            (
                "stopped",
                crate::sys::pm2_cli::run(&["stop", app.name.as_str()]).map(drop),
            )
        } else {
            ("deleted", crate::sys::pm2_cli::delete(&app.name))
        };
        match result {
            Ok(()) => said.push(format!("{verb} `{}` in PM2 again", app.name)),
            Err(e) => said.push(format!("could not take back `{}`: {e:#}", app.name)),
        }
    }
    err.context(format!(
        "start failed; {} (PM2's saved list is unchanged)",
        said.join(", ")
    ))
}
