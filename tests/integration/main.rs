//! The one integration-test binary: every scenario against the real pm2, sockets and node.

mod browser;
mod netns;
mod sshd;
mod support;

mod adopt;
mod apps;
mod bad_input;
mod browser_harness;
mod browser_proxy;
mod bump;
mod cli;
mod command;
mod corpus;
mod crash;
mod daemon;
mod detect;
mod docs;
mod doctor;
mod dry_run;
mod guarantees;
mod hostile;
mod live;
mod pm2_options;
mod pm2_start;
mod ports;
mod prompt;
mod props;
mod proxy;
mod registry;
mod start;
mod tunnel;
mod watch;
