//! Applying a configured project to PM2 and watching it come up: the side-effect layer shared by
//! `start`, `bump` and `doctor --fix`.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::configure::AppReport;
use crate::model::App;
use crate::model::Processes;
use crate::sys::pm2_rpc as rpc;
use crate::sys::procs;
use crate::sys::world::{self, Context};

/// The apps PM2's live daemon knows (not `dump.pm2`), or `None` when no daemon runs.
pub fn live_apps(ctx: &Context) -> Result<Option<Vec<App>>> {
    Ok(match rpc::process_list(&ctx.pm2_home) {
        rpc::Answer::List(mut apps) => {
            crate::sys::pm2_cli::resolve_cwds(&mut apps);
            Some(apps)
        }
        rpc::Answer::NoSocket | rpc::Answer::Stale => None,
        rpc::Answer::Failed(why) => anyhow::bail!(
            "cannot ask PM2's daemon for its apps through `{}`: {why}",
            ctx.pm2_home.join("rpc.sock").display()
        ),
        rpc::Answer::Unexpected(_) => Some(
            ctx.pm2_apps()?
                .into_iter()
                .filter(|a| !a.only_saved())
                .collect(),
        ),
    })
}

/// The app `name` of directory `cwd` among `apps`.
pub fn find<'a>(apps: &'a [App], name: &str, cwd: &Path) -> Option<&'a App> {
    apps.iter().find(|a| a.name == name && a.belongs_to(cwd))
}

/// The app `name` of directory `cwd` as PM2's live daemon knows it (not `dump.pm2`).
pub fn live_app(ctx: &Context, name: &str, cwd: &Path) -> Result<Option<App>> {
    Ok(live_apps(ctx)?.and_then(|apps| find(&apps, name, cwd).cloned()))
}

/// After `bump` or a fix: re-apply the file when PM2 knows the app, wait for the new port when it
/// runs, and warn about an orphan still holding the old one.
pub fn reapply_known(ctx: &Context, file: &Path, app: &AppReport, timeout: Duration) -> Result<()> {
    let apps = ctx.pm2_apps()?;
    let Some(known) = apps
        .iter()
        .find(|a| a.name == app.name && a.belongs_to(&app.cwd))
    else {
        return Ok(());
    };
    if known.only_saved() {
        note!(
            "PM2's dump.pm2 still has `{}` on its old port (no daemon runs); start it with `pm2-port start {}` rather than `pm2 resurrect`",
            app.name,
            app.cwd.display()
        );
        return Ok(());
    }
    let online = known.status == crate::model::Status::Online;
    crate::sys::pm2_cli::reapply(file, &app.name, !online)?;
    if !online {
        // Re-applying starts it for a moment: return once it is down again.
        let (closed, _) = world::wait_port(app.port, Duration::from_secs(10), |l| l.is_empty())?;
        if !closed {
            warn!(
                "`{}` is stopped in PM2, but port {} still listens; `pm2-port doctor` shows by whom",
                app.name, app.port
            );
        }
        return Ok(());
    }
    wait_listening(ctx, app, timeout, false)?;
    if let Some(old) = app.previous_port {
        warn_orphans(ctx, old, &app.name)?;
    }
    Ok(())
}

/// Warn, with PIDs, about what still listens on `port` a few seconds after its app moved: a
/// process outside PM2 (another PM2 app on that port is `doctor`'s business, not an orphan).
pub fn warn_orphans(ctx: &Context, port: u16, name: &str) -> Result<()> {
    let (released, left) = world::wait_port(port, Duration::from_secs(5), |now| now.is_empty())?;
    if released {
        return Ok(());
    }
    let pm2_pids: HashSet<u32> = ctx.pm2_apps()?.iter().filter_map(|a| a.pid).collect();
    let procs = Processes::read(&left, &ctx.pm2_home);
    for l in &left {
        if procs.held_by(l, &pm2_pids) || procs.held_by_daemon(l) {
            continue;
        }
        match procs.owner(l) {
            Some(pid) => warn!(
                "old port {port} is still held on {l} by PID {pid} (`{}`), an orphan of `{name}`; stop it with `kill {pid}`",
                procs::command_of(pid).unwrap_or_default()
            ),
            None => warn!("old port {port} is still held on {l} by a process pm2-port cannot see"),
        }
    }
    Ok(())
}

/// The last lines of the app's PM2 logs, for an error message.
fn log_tail(app: Option<&App>) -> String {
    let Some(app) = app else {
        return String::new();
    };
    let mut out = String::new();
    for path in &app.logs {
        // The end only: a log may be gigabytes.
        let Ok(text) = crate::sys::files::tail(path, 64 * 1024) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            continue;
        }
        out.push_str(&format!("\n--- last lines of {} ---\n", path.display()));
        for line in &lines[lines.len().saturating_sub(15)..] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Wait until something listens on the app's port. Fails early when PM2 reports the app errored
/// or stopped, or when the app's processes listen on another port for a few seconds (drift); on
/// timeout, fails with the last lines of its logs. Shows a spinner when stderr is a terminal.
pub fn wait_listening(
    ctx: &Context,
    app: &AppReport,
    timeout: Duration,
    chatty: bool,
) -> Result<()> {
    let start = Instant::now();
    let chatty = chatty && crate::output::level() >= crate::output::NORMAL;
    let tty = chatty && std::io::stderr().is_terminal();
    if chatty && !tty {
        eprintln!(
            "waiting for `{}` to listen on port {} (timeout {}s)",
            app.name,
            app.port,
            timeout.as_secs()
        );
    }
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut last_check = Instant::now() - Duration::from_secs(1);
    // Since when, and by which process, the app has listened elsewhere; a restart (a new PID)
    // starts the count again, so a PID reused by another program is not taken for drift.
    let mut drift_since: Option<(Instant, u32, Vec<u16>)> = None;
    let mut pm2_app: Option<App> = None;
    let result = loop {
        let listeners = world::listeners()?;
        if listeners.iter().any(|l| l.port == app.port) {
            break Ok(());
        }
        if last_check.elapsed() >= Duration::from_millis(500) {
            last_check = Instant::now();
            pm2_app = live_app(ctx, &app.name, &app.cwd)?;
            match pm2_app.as_ref().map(|a| &a.status) {
                Some(crate::model::Status::Errored | crate::model::Status::Stopped) | None => {
                    let status = pm2_app.as_ref().map_or("gone", |a| a.status.as_str());
                    break Err(format!(
                        "`{}` is {status} in PM2 instead of listening on port {}",
                        app.name, app.port
                    ));
                }
                _ => {}
            }
            let other: Vec<u16> = pm2_app
                .as_ref()
                .and_then(|a| a.pid)
                .map(|pid| {
                    Processes::read(&listeners, &ctx.pm2_home).ports_of(&listeners, &[pid].into())
                })
                .unwrap_or_default();
            let pid = pm2_app.as_ref().and_then(|a| a.pid).unwrap_or(0);
            drift_since = match drift_since {
                _ if other.is_empty() => None,
                Some((since, p, _)) if p == pid => Some((since, pid, other)),
                _ => Some((Instant::now(), pid, other)),
            };
            if let Some((since, _, ports)) = &drift_since
                && since.elapsed() >= Duration::from_secs(3)
            {
                let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
                break Err(format!(
                    "`{}` listens on port {} instead of its assigned {} (drift): make its dev server fail on a busy port instead of moving (Vite's --strictPort), or fix the command in buildflowz.toml",
                    app.name,
                    ports.join(", "),
                    app.port
                ));
            }
        }
        if start.elapsed() >= timeout {
            break Err(format!(
                "`{}` did not listen on port {} within {}s",
                app.name,
                app.port,
                timeout.as_secs()
            ));
        }
        if tty {
            let frame = frames[(start.elapsed().as_millis() / 100) as usize % frames.len()];
            eprint!(
                "\r{frame} starting {} on port {} ({:.1}s)",
                app.name,
                app.port,
                start.elapsed().as_secs_f32()
            );
            let _ = std::io::stderr().flush();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if tty {
        eprint!("\r\x1b[2K");
    }
    match result {
        Ok(()) => Ok(()),
        Err(why) => {
            let app = pm2_app.or_else(|| live_app(ctx, &app.name, &app.cwd).ok().flatten());
            bail!("{why}{}", log_tail(app.as_ref()))
        }
    }
}
