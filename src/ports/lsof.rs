//! Listening TCP sockets and their owners from `lsof -nP -iTCP -sTCP:LISTEN -F pcRftdPn`, where
//! there is no `/proc` (macOS, the BSDs).
//!
//! `-F` writes one field a line, its first character naming it: a process set (`p` PID, `c`
//! command name, `R` parent PID) followed by its open files (`f` descriptor, `t` type, `d` the
//! device, which for a socket is the kernel's address of it, `P` protocol, `n` the address, `T`
//! TCP details such as `TST=LISTEN`). The socket's address takes the place of Linux's inode: it
//! names one socket, however many processes share it (a forked child inherits it).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Listener;

/// One listening socket and the process that has it open (the first one, in PID order, when
/// several share it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub listener: Listener,
    pub pid: u32,
    /// lsof's command name (truncated by the system: 16 characters on macOS).
    pub command: String,
}

/// A key for a socket lsof gave no address for: its owner's PID and descriptor, marked by the
/// top bit, which no kernel address as lsof prints it (a 64-bit hexadecimal) collides with in
/// practice.
fn fallback_key(pid: u32, fd: u32) -> u64 {
    (1 << 63) | (u64::from(pid) << 24) | u64::from(fd & 0xff_ffff)
}

/// What one file set of the output holds so far.
#[derive(Default)]
struct File {
    fd: Option<u32>,
    ty: Option<String>,
    device: Option<u64>,
    protocol: Option<String>,
    name: Option<String>,
    state: Option<String>,
}

/// Parse `lsof -F` output, keeping listening TCP sockets (the state, the protocol and the type are
/// checked when lsof gives them). Fields and lines it does not know are skipped; so is a socket
/// whose address does not parse. Each socket comes once, with the first process holding it.
pub fn parse(text: &str) -> Vec<Socket> {
    let mut out: Vec<Socket> = Vec::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut pid: Option<u32> = None;
    let mut command = String::new();
    let mut file: Option<File> = None;
    let mut flush = |pid: Option<u32>, command: &str, file: Option<File>| {
        let (Some(pid), Some(f)) = (pid, file) else {
            return;
        };
        if let Some(socket) = socket(pid, command, f)
            && seen.insert(socket.listener.inode)
        {
            out.push(socket);
        }
    };
    for line in text.lines() {
        let Some(tag) = line.chars().next() else {
            continue;
        };
        let value = &line[tag.len_utf8()..];
        match tag {
            'p' => {
                flush(pid, &command, file.take());
                pid = value.parse().ok();
                command.clear();
            }
            'c' => command = value.to_string(),
            'f' => {
                flush(pid, &command, file.take());
                file = Some(File {
                    fd: value.parse().ok(),
                    ..File::default()
                });
            }
            _ => {
                let Some(f) = file.as_mut() else { continue };
                match tag {
                    't' => f.ty = Some(value.to_string()),
                    'd' => f.device = parse_device(value),
                    'P' => f.protocol = Some(value.to_string()),
                    'n' => f.name = Some(value.to_string()),
                    'T' => {
                        if let Some(state) = value.strip_prefix("ST=") {
                            f.state = Some(state.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    flush(pid, &command, file.take());
    out
}

/// `0x5e1f3c2a9b7d4e01` (macOS, the BSDs) or a decimal number (Linux's lsof prints the socket's
/// inode there).
fn parse_device(value: &str) -> Option<u64> {
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

fn socket(pid: u32, command: &str, f: File) -> Option<Socket> {
    let v6 = match f.ty.as_deref() {
        Some("IPv4") => false,
        Some("IPv6") => true,
        _ => return None,
    };
    if f.protocol.as_deref().is_some_and(|p| p != "TCP")
        || f.state.as_deref().is_some_and(|s| s != "LISTEN")
    {
        return None;
    }
    let name = f.name?;
    // A connection reads `local->remote`: not a listener.
    if name.contains("->") {
        return None;
    }
    let (addr, port) = name.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let addr = match addr {
        "*" if v6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        "*" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        _ => match addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
            // A zone (`fe80::1%lo0`) is not part of the address.
            Some(v6addr) => IpAddr::V6(v6addr.split('%').next()?.parse().ok()?),
            None => IpAddr::V4(addr.parse().ok()?),
        },
    };
    let inode = f.device.or_else(|| Some(fallback_key(pid, f.fd?)))?;
    Some(Socket {
        listener: Listener { addr, port, inode },
        pid,
        command: command.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Constructed, not recorded on a Mac: what `lsof -nP -iTCP -sTCP:LISTEN -F pcRftdPn` prints
    /// there according to lsof's manual page (its OUTPUT FOR OTHER PROGRAMS section) and the
    /// `DEVICE` column macOS shows for sockets: a Node app on `127.0.0.1` and `::1`, a forked
    /// worker sharing the parent's socket, a dual-stack `*` listener, an IPv4-mapped address, a
    /// link-local one with its zone, and PM2's daemon with its Unix socket (`tunix`, skipped).
    const SAMPLE: &str = "p412
cnode
R398
f23
tIPv4
d0x5e1f3c2a9b7d4e01
PTCP
n127.0.0.1:3000
TST=LISTEN
TQR=0
TQS=0
f24
tIPv6
d0x5e1f3c2a9b7d5c81
PTCP
n[::1]:3000
TST=LISTEN
p398
cPM2 v6.0.14: God
R1
f12
tunix
d0x5e1f3c2a8e110a09
n/Users/ana/.pm2/rpc.sock
p415
cnode
R412
f23
tIPv4
d0x5e1f3c2a9b7d4e01
PTCP
n127.0.0.1:3000
TST=LISTEN
p517
cpython3.12
R1
f5
tIPv6
d0x5e1f3c2a9c0a7f41
PTCP
n*:8000
TST=LISTEN
f6
tIPv4
d0x5e1f3c2a9c0a8001
PTCP
n*:8001
TST=LISTEN
f7
tIPv6
d0x5e1f3c2a9c0a8a01
PTCP
n[::ffff:127.0.0.1]:8002
TST=LISTEN
f8
tIPv6
d0x5e1f3c2a9c0a9b01
PTCP
n[fe80::1%lo0]:8003
TST=LISTEN
";

    fn shown(sockets: &[Socket]) -> Vec<String> {
        sockets
            .iter()
            .map(|s| format!("{} {} {}", s.listener, s.pid, s.command))
            .collect()
    }

    #[test]
    fn parses_listeners_and_their_first_owner() {
        let sockets = parse(SAMPLE);
        assert_eq!(
            shown(&sockets),
            [
                "127.0.0.1:3000 412 node",
                "[::1]:3000 412 node",
                "[::]:8000 517 python3.12",
                "0.0.0.0:8001 517 python3.12",
                "[::ffff:127.0.0.1]:8002 517 python3.12",
                "[fe80::1]:8003 517 python3.12",
            ]
        );
        assert_eq!(sockets[0].listener.inode, 0x5e1f3c2a9b7d4e01);
    }

    #[test]
    fn connections_other_states_and_protocols_are_skipped() {
        let text = "p10\ncsshd\nf3\ntIPv4\nPTCP\nn127.0.0.1:22->127.0.0.1:50000\nTST=ESTABLISHED\n\
                    f4\ntIPv4\nPTCP\nn127.0.0.1:4000\nTST=CLOSE_WAIT\n\
                    f5\ntIPv4\nPUDP\nn*:5353\n\
                    f6\ntIPv4\nPTCP\nnnot-an-address\n";
        assert!(parse(text).is_empty());
    }

    #[test]
    fn without_the_device_a_socket_is_named_by_its_owner_and_descriptor() {
        // The fields asked for only: no `d`, `P` or `T` (lsof run with fewer fields).
        let text = "p20\ncruby\nf9\ntIPv4\nn127.0.0.1:4567\nf10\ntIPv4\nn127.0.0.1:4568\n";
        let sockets = parse(text);
        assert_eq!(
            shown(&sockets),
            ["127.0.0.1:4567 20 ruby", "127.0.0.1:4568 20 ruby"]
        );
        assert_ne!(sockets[0].listener.inode, sockets[1].listener.inode);
        assert_eq!(sockets[0].listener.inode, fallback_key(20, 9));
    }

    #[test]
    fn nothing_listening_is_no_output() {
        assert!(parse("").is_empty());
    }
}
