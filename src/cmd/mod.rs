//! One module per subcommand, each a `run` over its parsed arguments.

pub mod bump;
pub mod doctor;
pub mod init;
pub mod list;
pub mod next;
pub mod release;
pub mod start;
pub mod tunnel;

use crate::config::ProjectConfig;
use crate::error::InputError;
use crate::ports::PortRange;

/// The allocation range: `--range`, else `range` in buildflowz.toml, else `PM2_PORT_RANGE`, else
/// 3000-3100.
pub fn resolve_range(
    flag: Option<PortRange>,
    config: Option<&ProjectConfig>,
) -> Result<PortRange, InputError> {
    if let Some(r) = flag.or_else(|| config.and_then(|c| c.range)) {
        return Ok(r);
    }
    match std::env::var("PM2_PORT_RANGE") {
        Ok(s) if !s.trim().is_empty() => s
            .parse()
            .map_err(|e| InputError::Usage(format!("PM2_PORT_RANGE: {e}"))),
        _ => Ok(PortRange::DEFAULT),
    }
}
