//! Rooms that touch the world and are not tied to one command.

pub mod proc;
