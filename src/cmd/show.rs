//! What `init`, `start` and `bump` print about a configure plan: its notes, the diff of a dry run,
//! and the report as JSON or as a summary (the engine in `configure/` prints nothing of it).

use anyhow::Result;
use serde::Serialize;

use crate::configure::{Plan, Report, unified_diff};

/// Print notes, the diff of a dry run, and the report (JSON or human).
pub fn plan(plan: &Plan, json: bool) -> Result<()> {
    plan_with_ops(plan, json, None)
}

/// `init --json`'s object with the operations of a dry run.
#[derive(Serialize)]
struct WithOps<'a> {
    #[serde(flatten)]
    report: &'a Report,
    operations: &'a [crate::ops::Op],
}

/// [`plan`], and for the `--dry-run` of `start` and `bump` the PM2 operations that would run:
/// their lines after the report, or `"operations"` in its JSON object.
pub fn plan_with_ops(plan: &Plan, json: bool, ops: Option<&[crate::ops::Op]>) -> Result<()> {
    for note in &plan.notes {
        note!("{note}");
    }
    if plan.report.dry_run && (plan.changed() || plan.config.is_some()) {
        let diff = unified_diff(plan);
        if json {
            eprint!("{diff}");
        } else {
            out!("{diff}")?;
        }
    }
    if json {
        match ops {
            Some(operations) => outln!(
                "{}",
                serde_json::to_string(&WithOps {
                    report: &plan.report,
                    operations
                })?
            )?,
            None => outln!("{}", serde_json::to_string(&plan.report)?)?,
        }
        return Ok(());
    }
    if crate::output::level() >= crate::output::NORMAL {
        print_summary(plan)?;
    }
    if let Some(ops) = ops {
        print_ops(ops)?;
    }
    Ok(())
}

fn print_summary(plan: &Plan) -> Result<()> {
    let verb = match (plan.changed(), plan.report.dry_run) {
        (false, _) => "unchanged",
        (true, true) => "would write",
        (true, false) => "wrote",
    };
    outln!("{verb} {}", plan.file.display())?;
    for app in &plan.report.apps {
        let what: Vec<&str> = [app.framework, app.package_manager]
            .into_iter()
            .flatten()
            .chain(app.flox.then_some("flox"))
            .collect();
        let moved = app
            .previous_port
            .map_or(String::new(), |p| format!(" (was {p})"));
        let what = if what.is_empty() {
            String::new()
        } else {
            format!("  [{}]", what.join(", "))
        };
        outln!(
            "  {}  http://localhost:{}{moved}  {}{what}",
            crate::text::escape(&app.name),
            app.port,
            crate::text::escape(&app.command)
        )?;
    }
    if plan.old.is_none() && !plan.report.dry_run {
        let dir = plan.file.parent().unwrap_or(&plan.file);
        say!("start it with `pm2-port start {}`", dir.display());
    }
    Ok(())
}

/// The human lines of a `--dry-run`'s operations, on stdout.
pub fn print_ops(ops: &[crate::ops::Op]) -> Result<()> {
    if ops.is_empty() {
        outln!("PM2: nothing to do")?;
        return Ok(());
    }
    outln!("PM2 operations:")?;
    for op in ops {
        outln!("  {}", crate::text::escape(&op.to_string()))?;
    }
    Ok(())
}
