//! Gathering the [`World`] once per command: PM2's apps and the kernel's listening sockets.

use std::path::Path;

use anyhow::{Context, Result};

use crate::pm2;
use crate::ports::{World, procnet};

/// Every listening TCP socket, IPv4 and IPv6.
pub fn listeners() -> Result<Vec<procnet::Listener>> {
    let mut all = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(file) {
            Ok(text) => all.extend(procnet::parse(&text)),
            // No IPv6 in this kernel: nothing listens there.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && file.ends_with('6') => {}
            Err(err) => return Err(err).with_context(|| format!("cannot read `{file}`")),
        }
    }
    Ok(all)
}

pub fn gather(pm2_home: &Path) -> Result<World> {
    Ok(World {
        apps: pm2::cli::apps(pm2_home)?,
        listeners: listeners()?,
    })
}
