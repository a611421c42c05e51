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
        after_help = "Examples:\n  pm2-port list\n  pm2-port list --json | jq '.[] | select(.conflicts != [])'"
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
pub struct TunnelArgs {
    /// The server, as ssh knows it (a name from ~/.ssh/config, user@host, ...)
    pub host: String,

    /// An ssh configuration file (ssh's -F)
    #[arg(short = 'F', value_name = "SSH_CONFIG")]
    pub config: Option<PathBuf>,

    /// An ssh option (ssh's -o), repeatable
    #[arg(short = 'o', value_name = "SSH_OPTION")]
    pub options: Vec<String>,

    /// Keep polling the server: forward apps that come online, cancel those that go away
    #[arg(long)]
    pub watch: bool,

    /// Seconds between polls with --watch
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub interval: u64,

    /// One JSON object per line on stdout (forward, cancel, ready events)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The project directory (it may be gone already)
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// Say what would be released, change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
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

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub init: InitOptions,

    /// Seconds to wait for the app to listen on its port
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,

    /// Show what would change (a diff) and the PM2 operations; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the `init` result as JSON on stdout once the port listens
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BumpArgs {
    /// The project directory
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// Move to this port instead of the lowest free one
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// In a project of several [[apps]], move only this one
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,

    #[command(flatten)]
    pub range: RangeArgs,

    /// Rewrite the file and the registry, but leave PM2 alone
    #[arg(long)]
    pub no_restart: bool,

    /// Seconds to wait for the app to listen on its new port
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,

    /// Show what would change (a diff) and the PM2 operations; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NextArgs {
    #[command(flatten)]
    pub range: RangeArgs,

    /// Print `{"port": N}` instead of the bare number
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct DoctorArgs {
    /// Print the findings (and fixes) as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Repair what is safe: move pm2-port's side of a conflict, record a drifted port, re-apply files
    #[arg(long)]
    pub fix: bool,

    /// Seconds to wait for a moved app to listen again
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,

    /// With --fix: show each fix's diff and PM2 operations, change nothing
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
}

fn parse_range(s: &str) -> Result<PortRange, String> {
    s.parse()
}

/// A command line with something to run in it.
fn non_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err(
            "the command is empty; give the line that starts the dev server, like 'npm run dev'"
                .into(),
        )
    } else {
        Ok(s.to_string())
    }
}
