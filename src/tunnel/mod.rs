//! `tunnel`: from the laptop, every app of every server over one SSH connection each, and a
//! proxy that serves them by name.

pub mod names;
pub mod pages;
pub mod plan;
