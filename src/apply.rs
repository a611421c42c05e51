//! Running a plan's operations on PM2 ([`crate::ops`]) and watching the apps come up: the one
//! executor of `start`, `bump` and `doctor --fix`, and how their `--dry-run` shows the plan.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::model::App;
use crate::model::Processes;
use crate::ops::wait::{Pm2View, Verdict, Waiter};
use crate::ops::{self, Level, Op, Pm2Plan};
use crate::sys::files;
use crate::sys::pm2_cli;
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

/// The app `name` of directory `cwd` as PM2's live daemon knows it (not `dump.pm2`).
pub fn live_app(ctx: &Context, name: &str, cwd: &Path) -> Result<Option<App>> {
    Ok(live_apps(ctx)?.and_then(|apps| ops::find(&apps, name, cwd).cloned()))
}

/// Run the operations of a plan in order, stopping at the first that fails. With `undo` (a
/// `start`), a failure takes back what was started ([`ops::undo`]) and the error says which.
/// `chatty`: say what is awaited (a spinner on a terminal, a plain line otherwise).
pub fn execute(ctx: &Context, ops: &[Op], undo: bool, chatty: bool) -> Result<()> {
    let mut marks = LogMarks::new();
    for (i, op) in ops.iter().enumerate() {
        if let Err(err) = run_op(ctx, op, chatty, &mut marks) {
            if !undo {
                return Err(err);
            }
            return Err(take_back(ctx, &ops[..=i], err));
        }
    }
    Ok(())
}

/// Where each log file of an app ended before it was started: a failed start shows only the
/// lines written after, not an earlier run's.
type LogMarks = HashMap<PathBuf, files::Mark>;

/// Mark the log files PM2 will write for app `name` of the file `file`: those the file names
/// (`out_file`, `error_file` and their aliases), its default ones in `$PM2_HOME/logs`, and those
/// the live daemon already has for it.
fn mark_logs(ctx: &Context, name: &str, file: &Path, marks: &mut LogMarks) {
    let cwd = file.parent().unwrap_or(Path::new("."));
    let app = files::read_text(file)
        .ok()
        .flatten()
        .and_then(|text| crate::ecosystem::jslit::module_exports(&text))
        .and_then(|exports| {
            exports
                .get("apps")?
                .as_array()?
                .iter()
                .find(|a| a.get("name").and_then(|n| n.as_str()) == Some(name))
                .cloned()
        });
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut paths = ops::log_paths(&ctx.pm2_home, name, app.as_ref(), cwd, home.as_deref());
    if let Ok(Some(app)) = live_app(ctx, name, cwd) {
        paths.extend(app.logs);
    }
    for path in paths {
        let mark = files::mark(&path);
        marks.insert(path, mark);
    }
}

fn run_op(ctx: &Context, op: &Op, chatty: bool, marks: &mut LogMarks) -> Result<()> {
    match op {
        Op::Delete { name, removed } => {
            pm2_cli::delete(name)?;
            if *removed {
                note!("deleted `{name}` from PM2: it is no longer in the project's file");
            }
            Ok(())
        }
        Op::Start { name, file } => {
            mark_logs(ctx, name, file, marks);
            pm2_cli::start_only(file, name)
        }
        Op::Stop { name } => pm2_cli::run(&["stop", name.as_str()]).map(drop),
        Op::Save => pm2_cli::save(),
        Op::WaitListening {
            name,
            cwd,
            port,
            timeout,
        } => wait_listening(
            ctx,
            name,
            cwd,
            *port,
            Duration::from_secs(*timeout),
            chatty,
            marks,
        ),
        Op::WaitClosed { name, port, within } => {
            let (closed, _) =
                world::wait_port(*port, Duration::from_secs(*within), |l| l.is_empty())?;
            if !closed {
                warn!(
                    "`{name}` is stopped in PM2, but port {port} still listens; `pm2-port doctor` shows by whom"
                );
            }
            Ok(())
        }
        Op::CheckOrphans { name, port, within } => {
            warn_orphans(ctx, *port, name, Duration::from_secs(*within))
        }
    }
}

/// After a failed start: run [`ops::undo`] of what was done, so that no app is left running on a
/// port other than its own; `pm2 save` is not run, so what `pm2 resurrect` brings back is
/// unchanged. The error says which.
fn take_back(ctx: &Context, done: &[Op], err: anyhow::Error) -> anyhow::Error {
    let mut said = Vec::new();
    for op in ops::undo(done) {
        let (verb, name) = match &op {
            Op::Stop { name } => ("stopped", name),
            Op::Delete { name, .. } => ("deleted", name),
            _ => continue,
        };
        // A start PM2 refused outright left nothing to take back.
        if matches!(op, Op::Delete { .. })
            && matches!(live_apps(ctx), Ok(Some(apps)) if !apps.iter().any(|a| &a.name == name))
        {
            said.push(format!("PM2 did not start `{name}`"));
            continue;
        }
        match run_op(ctx, &op, false, &mut LogMarks::new()) {
            Ok(()) => said.push(format!("{verb} `{name}` in PM2 again")),
            Err(e) => said.push(format!("could not take back `{name}`: {e:#}")),
        }
    }
    err.context(format!(
        "start failed; {} (PM2's saved list is unchanged)",
        said.join(", ")
    ))
}

/// Print a plan's messages (before running it, or instead of it for `--dry-run`).
pub fn tell(plan: &Pm2Plan) {
    for (level, text) in &plan.messages {
        match level {
            Level::Say => say!("{}", crate::text::escape(text)),
            Level::Note => note!("{text}"),
            Level::Warn => warn!("{}", crate::text::escape(text)),
        }
    }
}

/// Warn, with PIDs, about what still listens on `port` a few seconds after its app moved: a
/// process outside PM2 (another PM2 app on that port is `doctor`'s business, not an orphan).
pub fn warn_orphans(ctx: &Context, port: u16, name: &str, within: Duration) -> Result<()> {
    let (released, left) = world::wait_port(port, within, |now| now.is_empty())?;
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

/// The last lines of the app's PM2 logs, after a failed start: of each log, only what was
/// written since its mark (this start's lines, not an earlier run's). Returns the block to print
/// before the error, each line escaped (an app's output may hold escape sequences), and what the
/// error adds about it.
fn log_tail(app: Option<&App>, marks: &LogMarks) -> (String, String) {
    let Some(app) = app else {
        return (String::new(), String::new());
    };
    let mut block = String::new();
    let mut quiet = Vec::new();
    for path in &app.logs {
        // The end only: a log may be gigabytes.
        let Ok(text) = files::tail_after(path, marks.get(path).copied(), 64 * 1024) else {
            continue;
        };
        if text.trim().is_empty() {
            quiet.push(format!("`{}`", path.display()));
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        block.push_str(&format!(
            "--- last lines of {} ---\n",
            crate::text::escape(&path.display().to_string())
        ));
        for line in &lines[lines.len().saturating_sub(15)..] {
            block.push_str(&crate::text::escape(line));
            block.push('\n');
        }
    }
    let said = if !block.is_empty() {
        " (the last lines of its logs are above)".to_string()
    } else if !quiet.is_empty() {
        format!("; this start wrote nothing to {}", quiet.join(" or "))
    } else {
        String::new()
    };
    (block, said)
}

/// Wait until something listens on the app's port, by the policy of [`Waiter`]: fails early
/// when PM2 reports the app errored or stopped, or when the app's processes listen on another port
/// for a few seconds (drift); on timeout, fails with the last lines of its logs. Shows a spinner
/// when stderr is a terminal.
pub fn wait_listening(
    ctx: &Context,
    name: &str,
    cwd: &Path,
    port: u16,
    timeout: Duration,
    chatty: bool,
    marks: &LogMarks,
) -> Result<()> {
    let start = Instant::now();
    let chatty = chatty && crate::output::level() >= crate::output::NORMAL;
    let tty = chatty && std::io::stderr().is_terminal();
    if chatty && !tty {
        eprintln!(
            "waiting for `{}` to listen on port {port} (timeout {}s)",
            crate::text::escape(name),
            timeout.as_secs()
        );
    }
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut waiter = Waiter::new(timeout);
    let mut pm2_app: Option<App> = None;
    let result = loop {
        let listeners = world::listeners()?;
        let listening = listeners.iter().any(|l| l.port == port);
        let at = start.elapsed();
        let view = if !listening && waiter.check_due(at) {
            pm2_app = live_app(ctx, name, cwd)?;
            let pid = pm2_app.as_ref().and_then(|a| a.pid);
            Some(Pm2View {
                status: pm2_app.as_ref().map(|a| a.status.clone()),
                pid,
                elsewhere: pid
                    .map(|pid| {
                        Processes::read(&listeners, &ctx.pm2_home)
                            .ports_of(&listeners, &[pid].into())
                    })
                    .unwrap_or_default(),
            })
        } else {
            None
        };
        let verdict = waiter.step(at, listening, view.as_ref());
        if verdict != Verdict::Waiting {
            break verdict;
        }
        if tty {
            let frame = frames[(start.elapsed().as_millis() / 100) as usize % frames.len()];
            eprint!(
                "\r{frame} starting {} on port {port} ({:.1}s)",
                crate::text::escape(name),
                start.elapsed().as_secs_f32()
            );
            let _ = std::io::stderr().flush();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if tty {
        eprint!("\r\x1b[2K");
    }
    match result.failure(name, port, timeout) {
        None => Ok(()),
        Some(why) => {
            let app = pm2_app.or_else(|| live_app(ctx, name, cwd).ok().flatten());
            let (block, said) = log_tail(app.as_ref(), marks);
            eprint!("{block}");
            bail!("{why}{said}")
        }
    }
}
