//! `tunnel`: from the laptop, every online app of a server over one SSH connection.

pub mod plan;
