//! Entry point: parse the command line, run it, print the error chain, map it to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    pm2_port::main_with_args(std::env::args_os())
}
