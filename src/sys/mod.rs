//! The effects layer: the only modules that touch the world. Files (safe reads, atomic writes,
//! crash leftovers, the registry and its lock, a project's files), child processes (bounded by a
//! deadline), PM2 (its daemon's socket and its CLI), listening sockets (netlink sock_diag, `/proc`),
//! the process table, `ssh`, and the terminal's prompts. [`world`] gathers the server into the
//! model the pure code takes. `tests/layers.rs` keeps everything else from touching the world.

pub mod files;
pub mod pm2_bus;
pub mod pm2_cli;
pub mod pm2_rpc;
pub mod proc;
pub mod procs;
pub mod project;
pub mod prompt;
pub mod registry;
pub mod sockdiag;
pub mod ssh;
pub mod watch;
pub mod world;
