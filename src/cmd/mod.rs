//! One module per subcommand, each a `run` over its parsed arguments.

pub mod bump;
pub mod doctor;
pub mod init;
pub mod list;
pub mod next;
pub mod release;
pub mod start;
pub mod tunnel;
