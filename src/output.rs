//! What pm2-port says, and how much: `--quiet` keeps only errors, warnings and the data asked
//! for; `--verbose` adds what was read and decided. Writes to stdout go through [`outln!`] and
//! [`out!`], which return errors instead of panicking, so a closed pipe (`pm2-port list | head
//! -1`) ends the program quietly.

use std::sync::atomic::{AtomicU8, Ordering};

pub const QUIET: u8 = 0;
pub const NORMAL: u8 = 1;
pub const VERBOSE: u8 = 2;

static LEVEL: AtomicU8 = AtomicU8::new(NORMAL);

pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// Whether an I/O error chain is a closed stdout pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `println!` to stdout that returns an `io::Result`.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` to stdout that returns an `io::Result`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// A note on stderr (`note: ...`), unless `--quiet`.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if $crate::output::level() >= $crate::output::NORMAL {
            // Names and script text come from files: no escape sequence reaches the terminal.
            eprintln!("note: {}", $crate::text::escape(&format!($($arg)*)));
        }
    };
}

/// A warning on stderr (`warning: ...`), even with `--quiet`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        eprintln!("warning: {}", format_args!($($arg)*))
    };
}

/// Human progress and summaries on stderr, unless `--quiet`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        if $crate::output::level() >= $crate::output::NORMAL {
            eprintln!($($arg)*);
        }
    };
}

/// Details with `--verbose` only.
#[macro_export]
macro_rules! verbose {
    ($($arg:tt)*) => {
        if $crate::output::level() >= $crate::output::VERBOSE {
            eprintln!("  {}", format_args!($($arg)*));
        }
    };
}
