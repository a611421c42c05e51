//! Which process owns which listening socket, and who descends from whom: one snapshot of
//! the system, read once per question and then asked purely.
//!
//! On Linux, from `/proc`: a socket's owner comes from the `socket:[INODE]` links under
//! `/proc/PID/fd` (readable for one's own processes, all of them as root). Elsewhere (macOS, the
//! BSDs), from `lsof` and `ps` ([`crate::sys::lsof`]): the socket's kernel address stands for the
//! inode. PM2's daemon itself owns the listening socket of an app in cluster mode (Node's primary
//! process shares it with the workers), so the daemon's PID is kept too.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::model::Listener;

/// The PID in PM2's `pm2.pid`, whether or not it still runs.
fn daemon_pid(pm2_home: &Path) -> Option<u32> {
    crate::sys::files::read_regular(&pm2_home.join("pm2.pid"))
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8_lossy(&b).trim().parse().ok())
}

#[cfg(target_os = "linux")]
impl crate::model::Processes {
    /// Read the owners of `listeners`, every process's parent, and PM2's daemon PID.
    pub fn read(listeners: &[Listener], pm2_home: &Path) -> crate::model::Processes {
        let inodes: HashSet<u64> = listeners.iter().map(|l| l.inode).collect();
        let daemon = daemon_pid(pm2_home).filter(|pid| Path::new(&format!("/proc/{pid}")).exists());
        crate::model::Processes {
            owners: socket_owners(&inodes),
            parents: parent_pids(),
            daemon,
            commands: HashMap::new(),
        }
    }

    /// Also read the command lines of the sockets' owners.
    pub fn with_commands(mut self) -> crate::model::Processes {
        let pids: HashSet<u32> = self.owners.values().copied().collect();
        self.commands = pids
            .into_iter()
            .filter_map(|pid| Some((pid, command_of(pid)?)))
            .collect();
        self
    }
}

#[cfg(not(target_os = "linux"))]
impl crate::model::Processes {
    /// Read the owners of `listeners` (from `lsof`: only one's own processes' unless root, as
    /// with `/proc`), every process's parent (from `ps`), and PM2's daemon PID.
    pub fn read(listeners: &[Listener], pm2_home: &Path) -> crate::model::Processes {
        let inodes: HashSet<u64> = listeners.iter().map(|l| l.inode).collect();
        let table = crate::sys::lsof::processes().unwrap_or_else(|err| {
            verbose!("no process table: {err:#}");
            Vec::new()
        });
        let owners = if inodes.is_empty() {
            HashMap::new()
        } else {
            crate::sys::lsof::sockets()
                .unwrap_or_else(|err| {
                    verbose!("no socket owners: {err:#}");
                    Vec::new()
                })
                .into_iter()
                .filter(|s| inodes.contains(&s.listener.inode))
                .map(|s| (s.listener.inode, s.pid))
                .collect()
        };
        let daemon = daemon_pid(pm2_home).filter(|pid| table.iter().any(|p| p.pid == *pid));
        crate::model::Processes {
            owners,
            parents: crate::ports::ps::parents(&table),
            daemon,
            commands: HashMap::new(),
        }
    }

    /// Also read the command lines of the sockets' owners.
    pub fn with_commands(mut self) -> crate::model::Processes {
        let pids: HashSet<u32> = self.owners.values().copied().collect();
        self.commands = crate::sys::lsof::processes()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| pids.contains(&p.pid) && !p.command.is_empty())
            .map(|p| (p.pid, p.command))
            .collect();
        self
    }
}

/// The command line of a process, for messages.
#[cfg(not(target_os = "linux"))]
pub fn command_of(pid: u32) -> Option<String> {
    crate::sys::lsof::processes()
        .ok()?
        .into_iter()
        .find(|p| p.pid == pid && !p.command.is_empty())
        .map(|p| p.command)
}

#[cfg(target_os = "linux")]
fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

#[cfg(target_os = "linux")]
/// The process owning each of `inodes`. crate::model::Processes whose fds cannot be read are skipped.
fn socket_owners(inodes: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut owners = HashMap::new();
    if inodes.is_empty() {
        return owners;
    }
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
#[cfg(target_os = "linux")]
fn parent_pids() -> HashMap<u32, u32> {
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
#[cfg(target_os = "linux")]
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
        let p = crate::model::Processes {
            parents: [(30, 20), (20, 10), (10, 1), (1, 0)].into(),
            ..crate::model::Processes::default()
        };
        let own: HashSet<u32> = [20].into();
        assert!(p.descends(30, &own));
        assert!(p.descends(20, &own));
        assert!(!p.descends(10, &own));
        assert!(!p.descends(99, &own));
    }

    #[test]
    fn finds_the_owner_of_our_own_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let listener = crate::sys::world::listeners()
            .unwrap()
            .into_iter()
            .find(|x| x.port == port)
            .unwrap();
        let p = crate::model::Processes::read(
            std::slice::from_ref(&listener),
            Path::new("/nonexistent"),
        );
        assert_eq!(p.owner(&listener), Some(std::process::id()));
        assert!(p.held_by(&listener, &[std::process::id()].into()));
        assert_eq!(p.daemon, None);
    }
}
