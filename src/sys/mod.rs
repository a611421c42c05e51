//! The rooms that touch the world. For now: files (safe reads, atomic writes, crash leftovers).
//! More of the effects (PM2, sockets, ssh) are to move here (issue 12).

pub mod files;
