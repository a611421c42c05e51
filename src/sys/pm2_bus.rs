//! PM2's event bus (`$PM2_HOME/pub.sock`): an axon publish socket with the framing of
//! `rpc.sock` ([`crate::sys::pm2_rpc`]). Each message is two arguments, the topic (`s:process:event`,
//! `s:pm2:kill`, `s:log:out`, ...) and its data (`j:{...}`); a subscriber connects and reads, with
//! no handshake. Only the topics that say a process changed (`process:event`) or the daemon is
//! going (`pm2:*`) matter here; the apps' log lines (`log:*`) also come through and are skipped.
//! PM2 says nothing on the bus when a stopped app is deleted, so the bus only says when to look,
//! never what changed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sys::pm2_rpc;

/// What the bus tells its subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// Connected (again).
    Connected,
    /// A process changed, or the daemon is being killed.
    Event,
    /// The connection ended: the daemon went away (or closed its bus).
    Disconnected,
}

/// Whether a message of `topic` says something changed.
pub fn matters(topic: &[u8]) -> bool {
    topic == b"s:process:event" || topic.starts_with(b"s:pm2:")
}

/// Follow the bus of the daemon of `home` on a thread of its own, for ever: connect (retrying
/// every `retry` while no daemon listens), read, tell `notify`, and connect again when the daemon
/// goes away. Never starts a daemon: it only connects to a socket. The thread ends when `notify`
/// returns `false` (its reader is gone).
pub fn follow(
    home: &Path,
    retry: Duration,
    notify: impl Fn(Note) -> bool + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let path: PathBuf = home.join("pub.sock");
    std::thread::Builder::new()
        .name("pm2-bus".into())
        .spawn(move || {
            loop {
                match pm2_rpc::connect(&path, Instant::now() + Duration::from_secs(1)) {
                    Ok(mut stream) => {
                        if !notify(Note::Connected) {
                            return;
                        }
                        if !read_all(&mut stream, &notify) {
                            return;
                        }
                        if !notify(Note::Disconnected) {
                            return;
                        }
                    }
                    Err(err) => verbose!("PM2's bus `{}`: {err}", path.display()),
                }
                std::thread::sleep(retry);
            }
        })
}

/// Read messages until the connection ends (`true`) or `notify` says to stop (`false`).
fn read_all(stream: &mut impl Read, notify: &impl Fn(Note) -> bool) -> bool {
    loop {
        match pm2_rpc::read_message(stream) {
            Ok(args) => {
                if args.first().is_some_and(|topic| matters(topic)) && !notify(Note::Event) {
                    return false;
                }
            }
            Err(err) => {
                verbose!("PM2's bus ended: {err}");
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert!(matters(b"s:process:event"));
        assert!(matters(b"s:pm2:kill"));
        assert!(!matters(b"s:log:out"));
        assert!(!matters(b"s:log:PM2"));
        assert!(!matters(b"s:process:msg"));
    }

    #[test]
    fn events_then_the_end() {
        let mut bytes = pm2_rpc::encode(&[b"s:log:out", br#"j:{"data":"hi\n"}"#]);
        bytes.extend(pm2_rpc::encode(&[
            b"s:process:event",
            br#"j:{"event":"online"}"#,
        ]));
        bytes.extend(pm2_rpc::encode(&[b"s:pm2:kill", br#"j:{}"#]));
        let seen = std::cell::RefCell::new(Vec::new());
        let ended = read_all(&mut bytes.as_slice(), &|n| {
            seen.borrow_mut().push(n);
            true
        });
        assert!(ended);
        assert_eq!(*seen.borrow(), [Note::Event, Note::Event]);
    }
}
