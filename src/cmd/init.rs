//! `pm2-port init`: detect the dev command, choose the port, write `ecosystem.config.cjs`.

use anyhow::Result;

use crate::cli::{InitArgs, InitOptions};
use crate::configure::{self, Request};
use crate::sys::world::Context;

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
    configure::print(&plan, args.json)
}
