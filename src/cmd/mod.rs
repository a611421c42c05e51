//! One module per subcommand, each a `run` over its parsed arguments.

pub mod bump;
pub mod doctor;
pub mod init;
pub mod list;
pub mod next;
pub mod release;
pub mod show;
pub mod start;
pub mod tunnel;

/// Configure the project; when detection finds no dev command (or a root of several apps) and a
/// terminal is there, ask, then configure again with the answer. The prompt is the command's to
/// put, never the engine's while it gathers.
pub fn configure_asking(
    ctx: &crate::sys::world::Context,
    req: &crate::configure::Request,
) -> anyhow::Result<crate::configure::Plan> {
    use crate::error::RuntimeError;
    match crate::configure::configure(ctx, req) {
        Err(err)
            if interactive(req)
                && matches!(
                    err.downcast_ref::<RuntimeError>(),
                    Some(RuntimeError::NoDevCommand { dir } | RuntimeError::FanOut { dir, .. })
                        if crate::sys::files::resolved(&req.dir).as_deref() == Some(dir.as_path())
                ) =>
        {
            let project = crate::sys::project::Project::open(&req.dir)?;
            let answer = crate::sys::prompt::ask(&project, !req.dry_run)?;
            let req = crate::configure::Request {
                answer: Some(answer),
                ..req.clone()
            };
            crate::configure::configure(ctx, &req)
        }
        other => other,
    }
}

/// Whether a missing dev command may be asked for: a terminal, and no `--yes`.
fn interactive(req: &crate::configure::Request) -> bool {
    use std::io::IsTerminal;
    !req.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}
