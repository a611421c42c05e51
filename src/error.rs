//! The errors people act on, with the exit status each one maps to.
//!
//! Everything else travels as `anyhow::Error` with context and exits 1. Exit status 2 is kept for
//! bad input: a manifest that does not parse, a flag value out of bounds, a usage error.

use std::path::PathBuf;

use thiserror::Error;

/// A failure caused by what the user gave us (files, flags): exit status 2.
#[derive(Debug, Error)]
pub enum InputError {
    #[error("`{path}`:{line}:{column}: {message}")]
    Manifest {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Usage(String),
}

/// A failure of the world as it is (ports, PM2, files on disk): exit status 1.
#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error(
        "no free port in {range} ({taken} taken); widen it with `--range A-B` or `PM2_PORT_RANGE`, or free a port (`pm2-port list` shows who holds them)"
    )]
    RangeFull { range: String, taken: usize },
    #[error(
        "port {port} is taken by {holder}; choose another with `--port`, or leave it out to get a free one"
    )]
    PortTaken { port: u16, holder: String },
    #[error(
        "no dev command found in `{dir}`; give one with `--command 'CMD'`, add a `dev` script to package.json, or set `command = \"CMD\"` in `{dir}/buildflowz.toml`"
    )]
    NoDevCommand { dir: PathBuf },
    #[error(
        "`{dir}` is a workspace root{how}, so nothing would listen on the one port pm2-port gives it. Configure its apps instead: add a table per app to `{dir}/buildflowz.toml` ({example}), or give one command with `--command 'CMD'`"
    )]
    FanOut {
        dir: PathBuf,
        /// How the root starts its apps, for the message.
        how: String,
        example: String,
    },
    #[error(
        "the app name `{name}` is already used by `{other}`; PM2 names must be unique on the server: choose another with `--name` or `name` in buildflowz.toml"
    )]
    NameTaken { name: String, other: String },
    #[error("`{dir}` has no ecosystem.config.cjs yet; run `pm2-port init` there first")]
    NotConfigured { dir: PathBuf },
    /// Anything else the world says no to, in a sentence that says what to do.
    #[error("{0}")]
    Other(String),
    #[error(
        "`{path}` was written by hand{port_note}; pm2-port will not overwrite it silently. Re-run with `--force` to replace it (the old file is kept as `{path}.bak`{carry_note})"
    )]
    HandWrittenFile {
        path: PathBuf,
        port_note: String,
        carry_note: String,
    },
}

/// The exit status for an error chain: 2 for bad input, 1 for everything else.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|e| e.downcast_ref::<InputError>().is_some())
    {
        2
    } else {
        1
    }
}
