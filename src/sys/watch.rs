//! What `list --json --watch` waits on and reads: PM2's bus ([`crate::sys::pm2_bus`]), the end of
//! stdin, SIGINT, SIGTERM and SIGHUP, each on a thread of its own feeding one channel; and the
//! reading of the server ([`read`]), from the daemon's socket, `dump.pm2` and the registry, never
//! starting a daemon. What to do with them is decided in [`crate::watch`].

use std::io::Read;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::sys::pm2_bus::{self, Note};
use crate::sys::world::Context;
use crate::watch::{Daemon, Reading};

/// What woke the watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Bus(Note),
    /// Stdin closed, or a signal: the end asked for.
    Stop,
}

pub struct Wakeups {
    rx: Receiver<Wake>,
}

/// How long the main thread gets to finish after a stop before the process ends anyway (a reading
/// of a stopped daemon may take `PM2_PORT_DAEMON_TIMEOUT`).
const GRACE: Duration = Duration::from_secs(1);

impl Wakeups {
    /// Start the threads: the bus of the daemon of `ctx` (connection retried every `retry`),
    /// stdin, and the signals.
    pub fn start(ctx: &Context, retry: Duration) -> Result<Wakeups> {
        let (tx, rx) = mpsc::channel();
        let bus = tx.clone();
        pm2_bus::follow(&ctx.pm2_home, retry, move |note| {
            bus.send(Wake::Bus(note)).is_ok()
        })
        .context("cannot start a thread")?;
        let stdin = tx.clone();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                let mut input = std::io::stdin();
                loop {
                    match input.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                stop(&stdin);
            })
            .context("cannot start a thread")?;
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ])
        .context("cannot handle SIGINT, SIGTERM and SIGHUP")?;
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    stop(&tx);
                }
            })
            .context("cannot start a thread")?;
        Ok(Wakeups { rx })
    }

    /// The next wake-up before `until`, or `None` when `until` came first.
    pub fn next(&self, until: Instant) -> Option<Wake> {
        let wait = until.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(wait) {
            Ok(wake) => Some(wake),
            Err(RecvTimeoutError::Timeout) => None,
            // Every sender gone cannot happen while the signal thread lives; end all the same.
            Err(RecvTimeoutError::Disconnected) => Some(Wake::Stop),
        }
    }
}

/// Ask the main thread to stop, and end the process after [`GRACE`] if it is still busy.
fn stop(tx: &Sender<Wake>) {
    let _ = tx.send(Wake::Stop);
    std::thread::sleep(GRACE);
    std::process::exit(0);
}

/// Read the server now: the rows of `list --json` and whether a daemon answered.
pub fn read(ctx: &Context) -> Reading {
    match rows(ctx) {
        Ok((rows, daemon)) => Reading::Apps { rows, daemon },
        Err(err) => Reading::Failed(format!("{err:#}")),
    }
}

fn rows(ctx: &Context) -> Result<(Vec<crate::inventory::Row>, Daemon)> {
    let (apps, runs) = crate::sys::pm2_cli::apps_and_daemon(&ctx.pm2_home, false)?;
    let daemon = if runs {
        let pid = crate::sys::files::read_text(&ctx.pm2_home.join("pm2.pid"))
            .ok()
            .flatten()
            .and_then(|p| p.trim().parse().ok());
        Daemon::Up(pid)
    } else {
        Daemon::Down
    };
    // The listening sockets play no part in the rows: not read.
    let server = crate::sys::world::Server {
        apps,
        listeners: Vec::new(),
    };
    let (world, _) = crate::sys::world::assemble(ctx, server, &[])?;
    let files = crate::sys::world::read_files(&world);
    Ok((crate::inventory::rows(&world, &files), daemon))
}
