//! Listening sockets, their owners and the process table where there is no `/proc` (macOS, the
//! BSDs): `lsof` and `ps`, run under a deadline, their output parsed by [`crate::ports::lsof`]
//! and [`crate::ports::ps`]. Compiled everywhere, so that Linux's tests run it too (with
//! Linux's `lsof`), but used on Linux by nothing else.

#![cfg_attr(target_os = "linux", allow(dead_code))]

use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::ports::{lsof, ps};
use crate::sys::proc;

/// How long `lsof` or `ps` may take: lsof walks every process's descriptors.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The fields asked of lsof: PID, command name, parent PID, descriptor, type, device (the
/// socket's kernel address), protocol, address; `T` (TCP state) comes with `-F` by default.
pub const LSOF_FIELDS: &str = "-FpcRftdPnT";

/// Every listening TCP socket that lsof can see, with its first owner.
pub fn sockets() -> Result<Vec<lsof::Socket>> {
    warn_unprivileged_once();
    let out = proc::run(
        Command::new("lsof").args(["-nP", "-iTCP", "-sTCP:LISTEN", LSOF_FIELDS]),
        TIMEOUT,
        None,
    )
    .context("cannot run `lsof`, which pm2-port needs to list listening sockets on this system")?;
    // lsof exits 1 when it found nothing to list (no listening socket at all).
    let nothing = out.status.code() == Some(1) && out.stdout.is_empty();
    if !out.status.success() && !nothing {
        bail!(
            "`lsof -nP -iTCP -sTCP:LISTEN` failed ({}): {}",
            out.status,
            crate::text::escape(String::from_utf8_lossy(&out.stderr).trim())
        );
    }
    Ok(lsof::parse(&String::from_utf8_lossy(&out.stdout)))
}

/// Every process, its parent and command line, from `ps -Ao pid=,ppid=,command=` (all users').
pub fn processes() -> Result<Vec<ps::Process>> {
    let out = proc::run(
        Command::new("ps").args(["-Ao", "pid=,ppid=,command="]),
        TIMEOUT,
        None,
    )
    .context("cannot run `ps`")?;
    if !out.status.success() {
        bail!(
            "`ps -Ao pid=,ppid=,command=` failed ({}): {}",
            out.status,
            crate::text::escape(String::from_utf8_lossy(&out.stderr).trim())
        );
    }
    Ok(ps::parse(&String::from_utf8_lossy(&out.stdout)))
}

/// lsof shows only the caller's own processes unless it runs as root: another user's listening
/// socket is invisible, so a port it holds may look free. Said once per run, instead of guessing.
fn warn_unprivileged_once() {
    static ONCE: Once = Once::new();
    // SAFETY: geteuid has no preconditions.
    if cfg!(target_os = "linux") || unsafe { libc::geteuid() } == 0 {
        return;
    }
    ONCE.call_once(|| {
        warn!(
            "without /proc, listening sockets come from `lsof`, which shows only your own processes' sockets (not root): a port another user's process listens on looks free, and its owner is unknown"
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have(program: &str) -> bool {
        Command::new(program).arg("-v").output().is_ok()
    }

    /// The macOS path, run on this machine: our own listener and its owner, from the real lsof.
    #[test]
    fn lsof_finds_our_own_listener() {
        if !have("lsof") {
            eprintln!("skipped: no lsof here");
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let found: Vec<lsof::Socket> = sockets()
            .unwrap()
            .into_iter()
            .filter(|s| s.listener.port == port)
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pid, std::process::id());
        assert_eq!(found[0].listener.addr.to_string(), "127.0.0.1");
        // Linux's lsof prints the socket's inode as its device: the same key as sock_diag's.
        #[cfg(target_os = "linux")]
        {
            let diag = crate::sys::sockdiag::listeners().unwrap();
            let same = diag.iter().find(|x| x.port == port).unwrap();
            assert_eq!(found[0].listener, *same);
        }
    }

    /// The process table from the real ps: this test's process and its parent.
    #[test]
    fn ps_knows_our_parent() {
        let table = processes().unwrap();
        let me = table
            .iter()
            .find(|p| p.pid == std::process::id())
            .expect("ps lists this process");
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(!me.command.is_empty());
    }
}
