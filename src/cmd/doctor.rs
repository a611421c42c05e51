//! `pm2-port doctor`: find conflicts and drift on the whole server; `--fix` repairs what is safe.

use std::process::ExitCode;

use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::apply;
use crate::buildflowz_toml::ProjectConfig;
use crate::configure::{self, Request};
use crate::doctor::{self, Finding, Fix, Hosts};
use crate::ecosystem::read::Existing;
use crate::inventory;
use crate::model::Processes;
use crate::model::World;
use crate::ops::{self, Op, Pm2Plan, Target};
use crate::sys::project::Project;
use crate::sys::world::{self, Context};
use crate::text::escape;

#[derive(Serialize)]
struct FixReport {
    #[serde(flatten)]
    fix: Fix,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Report {
    healthy: bool,
    findings: Vec<Finding>,
    /// `--fix --dry-run`: `fixes` are what would be done, and nothing was.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixes: Option<Vec<FixReport>>,
    #[serde(rename = "fixes", skip_serializing_if = "Option::is_none")]
    planned: Option<Vec<PlannedFix>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<Vec<Finding>>,
    /// What `--fix` would do (plain `doctor`), or could not do (after `--fix`): the human report
    /// offers these instead of advice, so that it never tells the user to do by hand what `--fix`
    /// does.
    #[serde(skip)]
    fixable: Vec<Fix>,
}

/// The `host` that the buildflowz.toml of every online pm2-port app sets, and a warning for each
/// of those files that cannot be read: doctor looks at the whole server, so one project's broken
/// file does not stop it; that project's apps are examined as if the file set no `host`.
fn read_hosts(world: &World, files: &HashMap<PathBuf, Existing>) -> (Hosts, Vec<String>) {
    let mut hosts = Hosts::new();
    let mut warnings = Vec::new();
    let mut configs: HashMap<PathBuf, Option<ProjectConfig>> = HashMap::new();
    for app in world
        .apps
        .iter()
        .filter(|a| a.status == crate::model::Status::Online)
    {
        let Some(cwd) = &app.cwd else { continue };
        let dir = inventory::project_of(world, &app.name, cwd);
        if !doctor::managed(files, Some(&dir), &app.name) {
            continue;
        }
        let config = configs.entry(dir.clone()).or_insert_with(|| {
            match Project::open(&dir).and_then(|p| p.config()) {
                Ok(config) => config,
                Err(err) => {
                    warnings.push(format!(
                        "{err:#} (doctor examines the apps of `{}` as if it set no `host`)",
                        dir.display()
                    ));
                    None
                }
            }
        });
        let Some(config) = config else { continue };
        let entry = config.app_for(&app.name, cwd, |d| {
            crate::sys::files::resolved(&dir.join(d))
        });
        if let Some(host) = config.host_for(entry) {
            hosts.insert((app.name.clone(), cwd.clone()), host);
        }
    }
    (hosts, warnings)
}

/// Gather everything and diagnose; also the warnings about files that could not be read.
fn examine(ctx: &Context) -> Result<(Vec<Finding>, Vec<Fix>, Vec<String>)> {
    let (world, _) = world::gather(ctx, &[])?;
    let files = crate::sys::world::read_files(&world);
    let rows = inventory::rows(&world, &files);
    let procs = Processes::read(&world.listeners, &ctx.pm2_home).with_commands();
    let (hosts, warnings) = read_hosts(&world, &files);
    let findings = doctor::diagnose(&world, &rows, &files, &procs, &hosts);
    let fixes = doctor::plan_fixes(&findings, &world, &rows, &files, &procs);
    Ok((findings, fixes, warnings))
}

/// What a fix does: the project configured anew (`bump`, `adopt`: written unless `dry_run`) and
/// the operations that apply it to PM2.
fn plan_fix(
    ctx: &Context,
    fix: &Fix,
    timeout: u64,
    dry_run: bool,
) -> Result<(Option<configure::Plan>, Pm2Plan)> {
    match fix {
        Fix::Bump { dir, app, .. } | Fix::Adopt { dir, app, .. } => {
            let req = Request {
                dir: dir.clone(),
                bump: matches!(fix, Fix::Bump { .. }),
                port: match fix {
                    Fix::Adopt { to, .. } => Some(*to),
                    _ => None,
                },
                only: Some(app.clone()),
                dry_run,
                ..Request::default()
            };
            let plan = configure::configure(ctx, &req)?;
            let pm2 = match plan.report.apps.iter().find(|a| &a.name == app) {
                Some(moved) => ops::reapply_moved(
                    &ctx.pm2_apps()?,
                    &plan.file,
                    &Target {
                        name: moved.name.clone(),
                        cwd: moved.cwd.clone(),
                        port: moved.port,
                        previous_port: moved.previous_port,
                    },
                    timeout,
                ),
                None => Pm2Plan::default(),
            };
            Ok((Some(plan), pm2))
        }
        Fix::Reapply {
            app, file, online, ..
        } => Ok((
            None,
            Pm2Plan {
                ops: ops::reapply(app, file, *online),
                messages: Vec::new(),
            },
        )),
    }
}

fn apply_fix(ctx: &Context, fix: &Fix, timeout: u64) -> Result<()> {
    let (_, pm2) = plan_fix(ctx, fix, timeout, false)?;
    apply::tell(&pm2);
    let result = apply::execute(ctx, &pm2.ops, false, false);
    // A re-application deletes the app before starting it from the file: when the start failed,
    // say that PM2 no longer has it, and how to bring it back.
    let (Fix::Bump { app, dir, .. } | Fix::Adopt { app, dir, .. } | Fix::Reapply { app, dir, .. }) =
        fix;
    match result {
        Err(err)
            if apply::live_apps(ctx)
                .is_ok_and(|apps| apps.is_some_and(|apps| !apps.iter().any(|a| &a.name == app))) =>
        {
            Err(err.context(format!(
            "`{app}` is no longer in PM2's list: once its file is right, `pm2-port start {}` starts it again",
            dir.display()
            )))
        }
        other => other,
    }
}

/// A fix of `doctor --fix --dry-run`: what it would write and run.
#[derive(Serialize)]
struct PlannedFix {
    #[serde(flatten)]
    fix: Fix,
    /// For `bump` and `adopt`: `init --json`'s object for the project, as it would be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    configure: Option<configure::Report>,
    operations: Vec<Op>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip)]
    diff: String,
}

fn plan_fixes_dry(ctx: &Context, fixes: Vec<Fix>, timeout: u64) -> Vec<PlannedFix> {
    fixes
        .into_iter()
        .map(|fix| match plan_fix(ctx, &fix, timeout, true) {
            Ok((plan, pm2)) => {
                apply::tell(&pm2);
                PlannedFix {
                    diff: plan
                        .as_ref()
                        .map(configure::unified_diff)
                        .unwrap_or_default(),
                    configure: plan.map(|p| p.report),
                    operations: pm2.ops,
                    error: None,
                    fix,
                }
            }
            Err(err) => PlannedFix {
                fix,
                configure: None,
                operations: Vec::new(),
                error: Some(format!("{err:#}")),
                diff: String::new(),
            },
        })
        .collect()
}

/// What a fix of a dry run would do, for a person.
fn describe_planned(f: &PlannedFix) -> String {
    let to = match &f.fix {
        Fix::Bump { app, .. } => f
            .configure
            .as_ref()
            .and_then(|r| r.apps.iter().find(|a| &a.name == app))
            .map(|a| a.port),
        _ => None,
    };
    match (&f.fix, to) {
        (Fix::Bump { app, port, .. }, Some(to)) => format!("move `{app}` off port {port} to {to}"),
        _ => offer(&f.fix),
    }
}

/// What a fix would do, for a person.
fn offer(fix: &Fix) -> String {
    match fix {
        Fix::Bump { app, port, .. } => format!("move `{app}` off port {port}"),
        Fix::Adopt { app, from, to, .. } => {
            format!("record port {to} for `{app}`, which listens there (was {from})")
        }
        Fix::Reapply { app, file, .. } => {
            format!("re-apply `{}` to PM2 for `{app}`", file.display())
        }
    }
}

fn describe_fix(fix: &Fix) -> String {
    match fix {
        Fix::Bump { app, port, .. } => format!("moved `{app}` off port {port}"),
        Fix::Adopt { app, from, to, .. } => {
            format!("recorded port {to} for `{app}`, which listens there (was {from})")
        }
        Fix::Reapply { app, file, .. } => {
            format!("re-applied `{}` to PM2 for `{app}`", file.display())
        }
    }
}

#[derive(Debug, Args, Clone, Copy)]
pub struct DoctorArgs {
    /// Print the findings (and fixes) as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Repair what is safe: move pm2-port's side of a conflict, record a drifted port, re-apply files
    #[arg(long)]
    pub fix: bool,

    /// Seconds to wait for a moved app to listen again
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,

    /// With --fix: show each fix's diff and PM2 operations, change nothing
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
}

pub fn run(ctx: &Context, args: &DoctorArgs) -> Result<ExitCode> {
    let DoctorArgs {
        json,
        fix,
        timeout,
        dry_run,
    } = *args;
    let ctx = &if fix && !dry_run {
        ctx.driving_pm2()
    } else {
        ctx.clone()
    };
    let (findings, fixes, warnings) = examine(ctx)?;
    for w in &warnings {
        warn!("{w}");
    }
    let mut report = Report {
        healthy: findings.is_empty(),
        findings,
        dry_run,
        fixes: None,
        planned: None,
        remaining: None,
        fixable: Vec::new(),
    };
    if dry_run && !report.findings.is_empty() {
        report.planned = Some(plan_fixes_dry(ctx, fixes, timeout));
    } else if !fix {
        report.fixable = fixes;
    } else if fix && !report.findings.is_empty() {
        let done: Vec<FixReport> = fixes
            .into_iter()
            .map(|f| match apply_fix(ctx, &f, timeout) {
                Ok(()) => FixReport {
                    fix: f,
                    ok: true,
                    error: None,
                },
                Err(err) => FixReport {
                    fix: f,
                    ok: false,
                    error: Some(format!("{err:#}")),
                },
            })
            .collect();
        let (remaining, still, _) = examine(ctx)?;
        report.healthy = remaining.is_empty();
        report.fixable = still;
        report.fixes = Some(done);
        report.remaining = Some(remaining);
    }

    if json {
        outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        print_human(&report)?;
    }
    // Findings are not errors: everything has been said, only the status is left.
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_human(report: &Report) -> Result<()> {
    // Names, paths and PM2's words come from files and the server: no escape sequence of theirs
    // reaches the terminal.
    let line = |text: String| outln!("{}", escape(&text));
    if report.findings.is_empty() {
        line("healthy: no conflicts, drift, orphans, mismatches or exposed apps".into())?;
        return Ok(());
    }
    line(format!("found {} problem(s):", report.findings.len()))?;
    for f in &report.findings {
        line(format!("  {}", f.describe()))?;
    }
    if let Some(planned) = &report.planned {
        for f in planned {
            match &f.error {
                None => line(format!("would fix: {}", describe_planned(f)))?,
                Some(err) => line(format!("could not plan ({}): {err}", describe_planned(f)))?,
            }
            out!("{}", f.diff)?;
            if f.error.is_none() {
                super::show::print_ops(&f.operations)?;
            }
        }
        line("dry run: nothing was changed".into())?;
        return Ok(());
    }
    if let Some(fixes) = &report.fixes {
        for f in fixes {
            match &f.error {
                None => line(format!("fixed: {}", describe_fix(&f.fix)))?,
                Some(err) => line(format!("could not {}: {err}", offer(&f.fix)))?,
            }
        }
    }
    let left = report.remaining.as_ref().unwrap_or(&report.findings);
    if left.is_empty() {
        line("healthy now".into())?;
        return Ok(());
    }
    let offered: Vec<&Fix> = report
        .fixable
        .iter()
        .filter(|x| left.iter().any(|f| x.covers(f)))
        .collect();
    let by_hand: Vec<Finding> = left
        .iter()
        .filter_map(|f| doctor::left_after(f, &report.fixable))
        .collect();
    if !offered.is_empty() {
        if report.fixes.is_some() {
            line(
                "still to fix (see the errors above, then run `pm2-port doctor --fix` again):"
                    .into(),
            )?;
        } else {
            line("`pm2-port doctor --fix` would:".into())?;
        }
        for x in offered {
            line(format!("  {}", offer(x)))?;
        }
    }
    if !by_hand.is_empty() {
        line("left for you:".into())?;
        for f in by_hand {
            line(format!("  {}", f.advice()))?;
        }
    }
    Ok(())
}
