//! pm2-port: stable, unique ports for every PM2 project on a dev server.
//!
//! The binary is a thin shell around [`main_with_args`]; commands live in [`cmd`], pure logic in
//! [`detect`], [`ports`], [`ecosystem`], and the few functions that touch the system in
//! [`project`], [`world`] and [`pm2::cli`].

#[macro_use]
pub mod output;

pub mod apply;
pub mod buildflowz_toml;
pub mod cli;
pub mod cmd;
pub mod configure;
pub mod detect;
pub mod doctor;
pub mod ecosystem;
pub mod error;
pub mod inventory;
pub mod js;
pub mod model;
pub mod ops;
pub mod pm2;
pub mod ports;
pub mod style;
pub mod sys;
pub mod text;
pub mod tunnel;
pub mod watch;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// Parse `args`, run the command, print any error with its chain, and return the exit status.
pub fn main_with_args(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // The reader went away (`pm2-port list | head -1`): nothing left to say.
            if output::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            // Paths, names and script text come from files and the server: no escape sequence
            // or line break of theirs reaches the terminal.
            eprintln!("error: {}", text::escape(&format!("{err:#}")));
            ExitCode::from(error::exit_code(&err))
        }
    }
}

/// Run the parsed command: its exit status, or the error to print.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    output::set_level(if cli.quiet {
        output::QUIET
    } else if cli.verbose {
        output::VERBOSE
    } else {
        output::NORMAL
    });
    let ctx = sys::world::Context::from_env();
    let ok = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Init(args) => ok(cmd::init::run(&ctx, &args)),
        Command::Start(args) => ok(cmd::start::run(&ctx, &args)),
        Command::Bump(args) => ok(cmd::bump::run(&ctx, &args)),
        Command::Next(args) => ok(cmd::next::run(&ctx, &args)),
        Command::List(args) => ok(cmd::list::run(&ctx, &args)),
        Command::Doctor(args) => cmd::doctor::run(&ctx, &args),
        Command::Release(args) => ok(cmd::release::run(&ctx, &args)),
        Command::Tunnel(args) => ok(cmd::tunnel::run(&args)),
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "pm2-port", &mut out);
            std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
