//! `pm2-port init`: detect the dev command, choose the port, write `ecosystem.config.cjs`.

use anyhow::Result;

use crate::cli::InitArgs;
use crate::configure::{self, Request};
use crate::world::Context;

pub fn request(args: &InitArgs) -> Request {
    Request {
        dir: args.dir.clone(),
        name: args.name.clone(),
        port: args.port,
        command: args.command.clone(),
        range: args.range.range,
        dry_run: args.dry_run,
        force: args.force,
        yes: args.yes,
        bump: false,
    }
}

pub fn run(ctx: &Context, args: &InitArgs) -> Result<()> {
    let plan = configure::configure(ctx, &request(args))?;
    configure::print(&plan, args.json)
}
