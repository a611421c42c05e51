//! `pm2-port init`: detect the dev command, choose the port, write `ecosystem.config.cjs`.

use anyhow::Result;
use clap::Args;

use crate::cli::InitOptions;
use crate::configure::Request;
use crate::sys::world::Context;

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub options: InitOptions,

    /// Show what would change (a diff) and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn request(o: &InitOptions, dry_run: bool) -> Request {
    Request {
        dir: o.dir.clone(),
        name: o.name.clone(),
        port: o.port,
        command: o.command.clone(),
        range: o.range.range,
        dry_run,
        force: o.force,
        yes: o.yes,
        bump: false,
        only: None,
        answer: None,
    }
}

pub fn run(ctx: &Context, args: &InitArgs) -> Result<()> {
    let plan = super::configure_asking(ctx, &request(&args.options, args.dry_run))?;
    super::show::plan(&plan, args.json)
}
