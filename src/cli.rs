//! The command line: one `clap` struct per subcommand; the `///` docs are the help users read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::ports::PortRange;

/// Stable, unique ports for every PM2 project on a dev server.
///
/// pm2-port reads a project's manifests, picks a port nothing else uses, and writes it down in a
/// persistent `ecosystem.config.cjs` that PM2 and your tunnel scripts can read.
#[derive(Debug, Parser)]
#[command(name = "pm2-port", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect the dev command, choose a port, write or update ecosystem.config.cjs.
    #[command(
        after_help = "Examples:\n  pm2-port init\n  pm2-port init ~/shop --dry-run\n  pm2-port init --command 'uvicorn main:app --port $PORT' --json"
    )]
    Init(InitArgs),
}

/// Flags shared by every command that allocates ports.
#[derive(Debug, Args, Clone, Default)]
pub struct RangeArgs {
    /// Ports that may be allocated, inclusive [env: PM2_PORT_RANGE] [default: 3000-3100]
    #[arg(long, value_name = "A-B", value_parser = parse_range)]
    pub range: Option<PortRange>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The project directory
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// PM2 app name [default: `name` in buildflowz.toml, else the directory's name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Use this port; fail (naming the holder) if something else holds it
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// The dev command, a shell command line run exactly as written (it gets $PORT)
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,

    #[command(flatten)]
    pub range: RangeArgs,

    /// Show what would change (a diff) and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Never prompt; fail where a prompt would be needed
    #[arg(long)]
    pub yes: bool,

    /// Replace a hand-written ecosystem.config.cjs (the old one is kept as .bak)
    #[arg(long)]
    pub force: bool,
}

fn parse_range(s: &str) -> Result<PortRange, String> {
    s.parse()
}
