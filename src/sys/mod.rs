//! The rooms that touch the world: files (safe reads, atomic writes, crash leftovers) and child
//! processes (bounded by a deadline). More of the effects (PM2, sockets, ssh) are to move here
//! (issue 12).

pub mod files;
pub mod proc;
