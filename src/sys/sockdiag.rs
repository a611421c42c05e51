//! Listening TCP sockets from the kernel's socket-diagnostics netlink interface (what `ss` uses).
//!
//! Reading `/proc/net/tcp*` makes the kernel walk its whole established-connections hash table,
//! about a millisecond per read on a machine with much memory. A sock_diag dump asking for the
//! LISTEN state walks only the listening sockets. When the interface is not there (no `inet_diag`
//! in the kernel, a sandbox without netlink), the caller falls back to `/proc`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Listener;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const TCP_LISTEN: u32 = 10;
const NLMSG_HDR: usize = 16;
/// `struct inet_diag_msg`: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue,
/// uid, inode.
const DIAG_MSG: usize = 72;

/// The request: `nlmsghdr` + `inet_diag_req_v2` for TCP sockets of `family` in state LISTEN.
pub fn request(family: u8, seq: u32) -> Vec<u8> {
    let len = (NLMSG_HDR + 56) as u32;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.push(family);
    out.push(libc::IPPROTO_TCP as u8);
    out.push(0); // no extensions
    out.push(0);
    out.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    out.extend_from_slice(&[0u8; 48]); // any socket id
    out
}

/// What one buffer of replies held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub listeners: Vec<Listener>,
    pub done: bool,
}

/// Parse a buffer of netlink messages replying to [`request`].
pub fn parse(buf: &[u8]) -> io::Result<Batch> {
    let mut batch = Batch::default();
    let mut at = 0;
    while at + NLMSG_HDR <= buf.len() {
        let u32_at = |i: usize| u32::from_ne_bytes(buf[i..i + 4].try_into().unwrap());
        let len = u32_at(at) as usize;
        let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
        if len < NLMSG_HDR || at + len > buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink message",
            ));
        }
        let body = &buf[at + NLMSG_HDR..at + len];
        match kind {
            NLMSG_DONE => {
                batch.done = true;
                return Ok(batch);
            }
            NLMSG_ERROR => {
                let errno = body
                    .get(..4)
                    .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap()));
                return Err(io::Error::from_raw_os_error(-errno));
            }
            SOCK_DIAG_BY_FAMILY if body.len() >= DIAG_MSG => {
                let family = body[0];
                let port = u16::from_be_bytes([body[4], body[5]]);
                let src = &body[8..24];
                let addr = if i32::from(family) == libc::AF_INET6 {
                    IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(src).unwrap()))
                } else {
                    IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3]))
                };
                let inode = u32::from_ne_bytes(body[68..72].try_into().unwrap());
                batch.listeners.push(Listener {
                    addr,
                    port,
                    inode: u64::from(inode),
                });
            }
            _ => {}
        }
        // Messages are aligned to 4 bytes.
        at += (len + 3) & !3;
    }
    Ok(batch)
}

/// A netlink socket, closed on drop.
struct Socket(libc::c_int);

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

fn dump(sock: &Socket, family: u8, seq: u32) -> io::Result<Vec<Listener>> {
    let req = request(family, seq);
    // SAFETY: an all-zero sockaddr_nl is valid; the kernel is address 0.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `req` and `kernel` outlive the call, and the lengths are theirs.
    let sent = unsafe {
        libc::sendto(
            sock.0,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&raw const kernel).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(sock.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "netlink closed",
            ));
        }
        let batch = parse(&buf[..n as usize])?;
        all.extend(batch.listeners);
        if batch.done {
            return Ok(all);
        }
    }
}

/// Every listening TCP socket, IPv4 and IPv6, from the kernel's socket diagnostics.
pub fn listeners() -> io::Result<Vec<Listener>> {
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let sock = Socket(fd);
    let tv = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: `tv` is a valid timeval for SO_RCVTIMEO.
    unsafe {
        libc::setsockopt(
            sock.0,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let mut all = dump(&sock, libc::AF_INET as u8, 1)?;
    all.extend(dump(&sock, libc::AF_INET6 as u8, 2)?);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn parses_listeners_and_done() {
        let mut v6 = vec![0u8; DIAG_MSG];
        v6[0] = libc::AF_INET6 as u8;
        v6[1] = TCP_LISTEN as u8;
        v6[4..6].copy_from_slice(&3000u16.to_be_bytes());
        v6[23] = 1; // ::1
        v6[68..72].copy_from_slice(&777u32.to_ne_bytes());
        let mut v4 = vec![0u8; DIAG_MSG];
        v4[0] = libc::AF_INET as u8;
        v4[4..6].copy_from_slice(&3001u16.to_be_bytes());
        v4[8..12].copy_from_slice(&[127, 0, 0, 2]);
        let mut buf = message(SOCK_DIAG_BY_FAMILY, &v6);
        buf.extend(message(SOCK_DIAG_BY_FAMILY, &v4));
        buf.extend(message(NLMSG_DONE, &[0, 0, 0, 0]));
        let batch = parse(&buf).unwrap();
        assert!(batch.done);
        let got: Vec<(String, u64)> = batch
            .listeners
            .iter()
            .map(|l| (l.to_string(), l.inode))
            .collect();
        assert_eq!(
            got,
            [
                ("[::1]:3000".to_string(), 777),
                ("127.0.0.2:3001".to_string(), 0)
            ]
        );
    }

    #[test]
    fn an_error_message_is_an_error() {
        let buf = message(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes());
        assert_eq!(parse(&buf).unwrap_err().raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn agrees_with_proc_on_a_live_socket() {
        let l = std::net::TcpListener::bind("[::1]:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let diag = listeners().expect("sock_diag is available here");
        let proc6 = std::fs::read_to_string("/proc/net/tcp6").unwrap();
        let from_proc: Vec<Listener> = crate::ports::procnet::parse(&proc6)
            .into_iter()
            .filter(|x| x.port == port)
            .collect();
        let from_diag: Vec<Listener> = diag.into_iter().filter(|x| x.port == port).collect();
        assert_eq!(from_diag, from_proc);
        assert_eq!(from_diag.len(), 1);
    }
}
