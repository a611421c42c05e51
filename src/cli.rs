//! The command line: the subcommands, and the flags several of them share; each subcommand's own
//! `clap` struct lives beside its `run` in `cmd/`. The `///` docs are the help users read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cmd::{
    bump::BumpArgs, doctor::DoctorArgs, init::InitArgs, list::ListArgs, next::NextArgs,
    release::ReleaseArgs, start::StartArgs, tunnel::TunnelArgs,
};
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

    /// Print only errors, warnings and the data asked for
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Also print what was read and decided
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect the dev command, choose a port, write or update ecosystem.config.cjs.
    #[command(
        after_help = "Examples:\n  pm2-port init\n  pm2-port init ~/shop --dry-run\n  pm2-port init --command 'uvicorn main:app --port $PORT' --json"
    )]
    Init(InitArgs),
    /// `init`, then start or restart the app in PM2, `pm2 save`, and wait until it listens.
    #[command(
        after_help = "Examples:\n  pm2-port start\n  pm2-port start ~/shop --timeout 120 --json"
    )]
    Start(StartArgs),
    /// Move a project to another free port, rewrite its file, and apply it to PM2.
    #[command(
        after_help = "Examples:\n  pm2-port bump\n  pm2-port bump ~/shop --no-restart --json"
    )]
    Bump(BumpArgs),
    /// Print the first free port of the range.
    #[command(after_help = "Examples:\n  pm2-port next\n  PORT=$(pm2-port next --range 4000-4100)")]
    Next(NextArgs),
    /// Every known app: name, port, status, directory, where the port is recorded, conflicts.
    #[command(
        after_help = "Examples:\n  pm2-port list\n  pm2-port list --json | jq '.[] | select(.conflicts != [])'\n  pm2-port list --json --watch"
    )]
    List(ListArgs),
    /// Find conflicts, drift, orphans, files that disagree with PM2 and apps open beyond loopback; `--fix` repairs what is safe.
    #[command(
        after_help = "An app listening beyond loopback (0.0.0.0, ::, a LAN or public address) is `exposed`, unless `host` in its buildflowz.toml asks for that address (`host = \"0.0.0.0\"`: any).\n\nExit status: 0 when healthy (after --fix: when nothing is left), 1 otherwise.\n\nExamples:\n  pm2-port doctor\n  pm2-port doctor --fix --json"
    )]
    Doctor(DoctorArgs),
    /// Give a project's ports back: forget it in the registry and delete its apps from PM2.
    #[command(
        after_help = "The ecosystem file stays (its header says how to configure it again); a directory that no longer exists can be released too.\n\nExamples:\n  pm2-port release\n  pm2-port release ~/old-test-app --dry-run --json"
    )]
    Release(ReleaseArgs),
    /// On the laptop: forward every online app of HOST over one SSH connection.
    #[command(
        after_help = "Examples:\n  pm2-port tunnel devbox\n  pm2-port tunnel devbox --watch\n  pm2-port tunnel -F ~/.ssh/work_config -o Port=2222 devbox --json"
    )]
    Tunnel(TunnelArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  pm2-port completions bash > ~/.local/share/bash-completion/completions/pm2-port\n  pm2-port completions zsh > ~/.zfunc/_pm2-port\n  pm2-port completions fish > ~/.config/fish/completions/pm2-port.fish"
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Flags shared by every command that allocates ports.
#[derive(Debug, Args, Clone, Default)]
pub struct RangeArgs {
    /// Ports that may be allocated, inclusive [env: PM2_PORT_RANGE] [default: 3000-3100]
    #[arg(long, value_name = "A-B", value_parser = parse_range)]
    pub range: Option<PortRange>,
}

/// What `init` and `start` share.
#[derive(Debug, Args)]
pub struct InitOptions {
    /// The project directory
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// PM2 app name [default: `name` in buildflowz.toml, else the directory's name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Use this port; fail (naming the holder) if something else holds it
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// The dev command, a shell command line run exactly as written (it gets $PORT); saved as
    /// `command` in buildflowz.toml, so that later runs keep it
    #[arg(long, value_name = "CMD", value_parser = non_blank)]
    pub command: Option<String>,

    #[command(flatten)]
    pub range: RangeArgs,

    /// Never prompt; fail where a prompt would be needed
    #[arg(long)]
    pub yes: bool,

    /// Replace a hand-written ecosystem.config.cjs (the old one is kept as .bak)
    #[arg(long)]
    pub force: bool,
}

pub fn parse_range(s: &str) -> Result<PortRange, String> {
    s.parse()
}

/// A command line with something to run in it.
pub fn non_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err(
            "the command is empty; give the line that starts the dev server, like 'npm run dev'"
                .into(),
        )
    } else {
        Ok(s.to_string())
    }
}
