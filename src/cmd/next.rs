//! `pm2-port next`: the first free port of the range (BuildFlowz's `find_available_port`).

use crate::cli::RangeArgs;
use anyhow::Result;
use clap::Args;

use crate::ports::{self, Wish};
use crate::sys::world::{self, Context};

#[derive(Debug, Args)]
pub struct NextArgs {
    #[command(flatten)]
    pub range: RangeArgs,

    /// Print `{"port": N}` instead of the bare number
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: &NextArgs) -> Result<()> {
    let range = crate::configure::resolve_range(args.range.range, None)?;
    let (world, _) = world::gather(ctx, &[])?;
    let choice = ports::choose(&world, &[], &Wish::default(), range, &[])?;
    if args.json {
        outln!("{}", serde_json::json!({ "port": choice.port }))?;
    } else {
        outln!("{}", choice.port)?;
    }
    Ok(())
}
