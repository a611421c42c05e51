//! `pm2-port doctor`: find conflicts and drift on the whole server; `--fix` repairs what is safe.

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::apply;
use crate::cli::DoctorArgs;
use crate::configure::{self, Request};
use crate::doctor::{self, Finding, Fix};
use crate::error::Exit;
use crate::inventory;
use crate::pm2;
use crate::procs::Processes;
use crate::world::{self, Context};

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
    #[serde(skip_serializing_if = "Option::is_none")]
    fixes: Option<Vec<FixReport>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<Vec<Finding>>,
}

/// Gather everything and diagnose.
fn examine(ctx: &Context) -> Result<(Vec<Finding>, Vec<Fix>)> {
    let (world, _) = world::gather(ctx, &[])?;
    let files = inventory::read_files(&world);
    let rows = inventory::rows(&world, &files);
    let procs = Processes::read(&world.listeners, &ctx.pm2_home).with_commands();
    let findings = doctor::diagnose(&world, &rows, &files, &procs);
    let fixes = doctor::plan_fixes(&findings, &world, &rows, &files, &procs);
    Ok((findings, fixes))
}

fn apply_fix(ctx: &Context, fix: &Fix, timeout: Duration) -> Result<()> {
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
                ..Request::default()
            };
            let plan = configure::configure(ctx, &req)?;
            let moved = plan.report.apps.iter().find(|a| &a.name == app);
            match moved {
                Some(moved) => apply::reapply_known(ctx, &plan.file, moved, timeout),
                None => Ok(()),
            }
        }
        Fix::Reapply {
            app, file, online, ..
        } => {
            pm2::cli::reapply(file, app, !online)?;
            Ok(())
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

pub fn run(ctx: &Context, args: &DoctorArgs) -> Result<()> {
    let DoctorArgs { json, fix, timeout } = *args;
    let ctx = &if fix { ctx.driving_pm2() } else { ctx.clone() };
    let (findings, fixes) = examine(ctx)?;
    let mut report = Report {
        healthy: findings.is_empty(),
        findings,
        fixes: None,
        remaining: None,
    };
    if fix && !report.findings.is_empty() {
        let done: Vec<FixReport> = fixes
            .into_iter()
            .map(|f| match apply_fix(ctx, &f, Duration::from_secs(timeout)) {
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
        let (remaining, _) = examine(ctx)?;
        report.healthy = remaining.is_empty();
        report.fixes = Some(done);
        report.remaining = Some(remaining);
    }

    if json {
        outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        print_human(&report)?;
    }
    if report.healthy {
        Ok(())
    } else {
        Err(Exit(1).into())
    }
}

fn print_human(report: &Report) -> Result<()> {
    if report.findings.is_empty() {
        outln!("healthy: no conflicts, drift, orphans or mismatches")?;
        return Ok(());
    }
    outln!("found {} problem(s):", report.findings.len())?;
    for f in &report.findings {
        outln!("  {}", doctor::describe(f))?;
    }
    if let Some(fixes) = &report.fixes {
        for f in fixes {
            match &f.error {
                None => outln!("fixed: {}", describe_fix(&f.fix))?,
                Some(err) => outln!("could not fix ({}): {err}", describe_fix(&f.fix))?,
            }
        }
    }
    let left = report.remaining.as_ref().unwrap_or(&report.findings);
    if left.is_empty() {
        outln!("healthy now")?;
    } else {
        outln!("left for you:")?;
        for f in left {
            outln!("  {}", doctor::advice(f))?;
        }
    }
    Ok(())
}
