//! Gathering the [`World`] once per command: PM2's apps, the registry's reservations, the
//! kernel's listening sockets and, where it matters, which process owns a socket.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::pm2;
use crate::ports::{World, procnet};
use crate::registry::{self, Registry};

/// Where PM2 and pm2-port keep their state.
#[derive(Debug, Clone)]
pub struct Context {
    pub pm2_home: PathBuf,
    pub state: PathBuf,
}

impl Context {
    pub fn from_env() -> Context {
        let pm2_home = pm2::cli::home();
        let state = registry::state_dir(&pm2_home);
        Context { pm2_home, state }
    }
}

/// Read a `/proc/net` table in large chunks. The kernel walks its whole socket hash table again for
/// every `read` call (milliseconds on a machine with much memory), so the small first reads of
/// `read_to_string` are costly, and so is the final empty read: a read that leaves much of the
/// buffer unfilled already means the end (the kernel fills the buffer while records remain).
fn read_proc_table(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    const CHUNK: usize = 256 * 1024;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..])?;
        let space = buf.len() - len;
        len += n;
        if n == 0 || space - n > 4096 {
            break;
        }
        buf.resize(len + CHUNK, 0);
    }
    buf.truncate(len);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Every listening TCP socket, IPv4 and IPv6: from sock_diag, else from `/proc/net/tcp*`.
pub fn listeners() -> Result<Vec<procnet::Listener>> {
    match crate::ports::sockdiag::listeners() {
        Ok(all) => return Ok(all),
        Err(err) => verbose!("socket diagnostics unavailable ({err}); reading /proc/net/tcp*"),
    }
    let mut all = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match read_proc_table(file) {
            Ok(text) => all.extend(procnet::parse(&text)),
            // No IPv6 in this kernel: nothing listens there.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && file.ends_with('6') => {}
            Err(err) => return Err(err).with_context(|| format!("cannot read `{file}`")),
        }
    }
    Ok(all)
}

/// The listeners on `port`.
pub fn listeners_on(port: u16) -> Result<Vec<procnet::Listener>> {
    Ok(listeners()?
        .into_iter()
        .filter(|l| l.port == port)
        .collect())
}

/// Poll until `done` holds for the listeners on `port`, or `timeout` passes; the last listeners.
pub fn wait_port(
    port: u16,
    timeout: Duration,
    done: impl Fn(&[procnet::Listener]) -> bool,
) -> Result<(bool, Vec<procnet::Listener>)> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = listeners_on(port)?;
        if done(&now) {
            return Ok((true, now));
        }
        if Instant::now() >= deadline {
            return Ok((false, now));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The world as seen by the project whose directories are `own` (empty: by nobody), and the
/// registry it came with. With `write`, a broken registry file is moved aside (the caller holds
/// the lock).
pub fn gather(ctx: &Context, own: &[PathBuf], write: bool) -> Result<(World, Registry)> {
    let apps = pm2::cli::apps(&ctx.pm2_home)?;
    let listeners = listeners()?;
    let known: Vec<PathBuf> = apps.iter().filter_map(|a| a.cwd.clone()).collect();
    let loaded = registry::load(&ctx.state, &known, write)?;
    if let Some(aside) = &loaded.rebuilt_from {
        let kept = if write { "kept as" } else { "would be kept as" };
        warn!(
            "the registry `{}` was corrupt; {kept} `{}` and rebuilt from PM2 and the projects' ecosystem files ({} projects)",
            ctx.state.join(registry::REGISTRY_FILE).display(),
            aside.display(),
            loaded.registry.projects.len()
        );
    }
    verbose!(
        "PM2 ({}): {} apps; {} listening sockets; registry `{}`: {} projects",
        ctx.pm2_home.display(),
        apps.len(),
        listeners.len(),
        ctx.state.join(registry::REGISTRY_FILE).display(),
        loaded.registry.projects.len()
    );
    let mut world = World {
        reservations: loaded.registry.reservations(),
        apps,
        listeners,
        ..World::default()
    };
    if !own.is_empty() {
        classify_own_listeners(&mut world, own);
    }
    Ok((world, loaded.registry))
}

/// Mark the listeners that belong to the project's running apps' process trees (all of them,
/// not only those on its ports: `doctor --fix` adopts a port an app drifted to).
fn classify_own_listeners(world: &mut World, own: &[PathBuf]) {
    let own_pids: HashSet<u32> = world
        .apps
        .iter()
        .filter(|a| own.iter().any(|d| a.belongs_to(d)) && a.status == "online")
        .filter_map(|a| a.pid)
        .collect();
    if own_pids.is_empty() || world.listeners.is_empty() {
        return;
    }
    let inodes: HashSet<u64> = world.listeners.iter().map(|l| l.inode).collect();
    let owners = socket_owners(&inodes);
    let parents = parent_pids();
    for inode in inodes {
        match owners.get(&inode) {
            Some(pid) if descends_from(*pid, &own_pids, &parents) => {
                world.own_inodes.insert(inode);
            }
            Some(_) => {}
            None => {
                world.unknown_inodes.insert(inode);
            }
        }
    }
}

pub fn descends_from(mut pid: u32, ancestors: &HashSet<u32>, parents: &HashMap<u32, u32>) -> bool {
    for _ in 0..128 {
        if ancestors.contains(&pid) {
            return true;
        }
        match parents.get(&pid) {
            Some(&ppid) if ppid != 0 && ppid != pid => pid = ppid,
            _ => return false,
        }
    }
    false
}

fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// The process owning each of `inodes`, from the `socket:[INODE]` links under `/proc/PID/fd`.
/// Processes whose fds cannot be read (another user's, without root) are skipped.
pub fn socket_owners(inodes: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut owners = HashMap::new();
    for pid in pids() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            if inodes.contains(&inode) {
                owners.entry(inode).or_insert(pid);
                if owners.len() == inodes.len() {
                    return owners;
                }
            }
        }
    }
    owners
}

/// Each process's parent, from `/proc/PID/stat`.
pub fn parent_pids() -> HashMap<u32, u32> {
    pids()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// The command line of a process, for messages.
pub fn command_of(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestry() {
        let parents: HashMap<u32, u32> = [(30, 20), (20, 10), (10, 1), (1, 0)].into();
        let own: HashSet<u32> = [20].into();
        assert!(descends_from(30, &own, &parents));
        assert!(descends_from(20, &own, &parents));
        assert!(!descends_from(10, &own, &parents));
        assert!(!descends_from(99, &own, &parents));
    }

    #[test]
    fn finds_the_owner_of_our_own_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let inode = listeners()
            .unwrap()
            .into_iter()
            .find(|x| x.port == port)
            .unwrap()
            .inode;
        let owners = socket_owners(&[inode].into());
        assert_eq!(owners.get(&inode), Some(&std::process::id()));
    }
}
