//! `pm2-port next`: the first free port of the range (BuildFlowz's `find_available_port`).

use anyhow::Result;

use crate::cli::NextArgs;
use crate::ports::{self, Wish};
use crate::sys::world::{self, Context};

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
