//! Listening TCP sockets from the kernel's tables (`/proc/net/tcp`, `/proc/net/tcp6`).
//!
//! A bind test misses a listener on `::1` when it binds `127.0.0.1` (docs/ports.md, "A test bind
//! is not enough"), so the tables are read instead: every LISTEN row of both files, whatever the
//! address.

use crate::model::Listener;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const LISTEN: &str = "0A";

/// Parse the text of `/proc/net/tcp` or `/proc/net/tcp6`, keeping LISTEN rows. Malformed rows are
/// skipped: the kernel's format is stable, and a partial answer beats none.
pub fn parse(text: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != LISTEN {
                return None;
            }
            let (addr, port) = cols[1].split_once(':')?;
            Some(Listener {
                addr: decode_addr(addr)?,
                port: u16::from_str_radix(port, 16).ok()?,
                inode: cols[9].parse().ok()?,
            })
        })
        .collect()
}

/// The address is stored as 32-bit words in host byte order, each printed as 8 hex digits.
fn decode_addr(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 00000000:0BB9 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 100 0 0 10 0
   2: 0100007F:0BBA 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 12347 1 0000000000000000 100 0 0 10 0
   3: 0200007F:0BBB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12348 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0BBC 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:0BBD 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 223 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0BBE 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 224 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn ipv4_rows() {
        let l = parse(TCP);
        let got: Vec<String> = l.iter().map(|l| l.to_string()).collect();
        assert_eq!(got, ["127.0.0.1:3000", "0.0.0.0:3001", "127.0.0.2:3003"]);
        assert_eq!(l[0].inode, 12345);
    }

    #[test]
    fn ipv6_rows() {
        let got: Vec<String> = parse(TCP6).iter().map(|l| l.to_string()).collect();
        assert_eq!(got, ["[::1]:3004", "[::]:3005", "[::ffff:127.0.0.1]:3006"]);
    }
}
