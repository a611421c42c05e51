//! The effects layer: the only modules that touch the world. Files (safe reads, atomic writes,
//! crash leftovers, the registry and its lock, a project's files), child processes (bounded by a
//! deadline), PM2 (its daemon's socket and its CLI), listening sockets and the process table
//! (netlink sock_diag and `/proc` on Linux, `lsof` and `ps` elsewhere), `ssh`, and the terminal's
//! prompts, PM2's event bus for `list --watch`. [`world`] gathers the server into the model the
//! pure code takes. `tests/layers.rs` keeps everything else from touching the world.

pub mod files;
pub mod follow;
pub mod lsof;
pub mod pm2_bus;
pub mod pm2_cli;
pub mod pm2_rpc;
pub mod proc;
pub mod procs;
pub mod project;
pub mod prompt;
pub mod proxy;
pub mod registry;
#[cfg(target_os = "linux")]
pub mod sockdiag;
pub mod ssh;
pub mod watch;
pub mod world;
