//! Which ports are taken, and the choice of a port for a project: pure functions of the world.

pub mod lsof;
pub mod procnet;
pub mod ps;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::RuntimeError;
use crate::model::{Holder, World};

/// An inclusive range of ports that may be allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub const DEFAULT: PortRange = PortRange {
        start: 3000,
        end: 3100,
    };

    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "`{s}` is not a port range; write it as A-B with 1 <= A <= B <= 65535, like 3000-3100"
            )
        };
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let start: u16 = a.trim().parse().map_err(|_| bad())?;
        let end: u16 = b.trim().parse().map_err(|_| bad())?;
        if start == 0 || start > end {
            return Err(bad());
        }
        Ok(PortRange { start, end })
    }
}

/// Ports browsers refuse to load ("unsafe ports"); never handed out by allocation.
const BROWSER_BLOCKED: &[u16] = &[
    3659, 4045, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6697, 10080,
];

/// Whether browsers refuse to load pages from `port` (Chromium's and Firefox's unsafe ports).
pub fn browser_blocked(port: u16) -> bool {
    BROWSER_BLOCKED.contains(&port)
}

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) written as the IPv4 address it
/// stands for: an IPv6 socket bound there takes exactly that IPv4 address's connections.
pub fn unmapped(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether a socket bound to `addr` takes connections from this machine only: `127.0.0.0/8`,
/// `::1`, and IPv4-mapped loopback (`::ffff:127.0.0.1`, which only loopback traffic reaches).
/// Everything else is reachable from other machines, firewall aside: the unspecified addresses
/// (`0.0.0.0`, `::`, every interface), private and link-local addresses, and the IPv4-compatible
/// `::127.0.0.1`, which the kernel does not route to loopback.
pub fn is_loopback(addr: IpAddr) -> bool {
    unmapped(addr).is_loopback()
}

/// Why a port was chosen; shown to the user when the port moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Requested,
    Kept,
    Preferred,
    Lowest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub port: u16,
    pub reason: Reason,
    /// Ports the project had or preferred that were passed over, with who holds them.
    pub passed_over: Vec<(u16, Holder)>,
}

/// What a project asks for, strongest first (docs/product.md section 5).
#[derive(Debug, Clone, Default)]
pub struct Wish {
    /// `--port`: used as given, or an error.
    pub requested: Option<u16>,
    /// The port already in the project's ecosystem file.
    pub current: Option<u16>,
    /// `port` from buildflowz.toml.
    pub preferred: Option<u16>,
}

/// What a project's wishes came to, before the range is searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wished {
    Got(Choice),
    /// No wished port was free: these were passed over, with their holders.
    PassedOver(Vec<(u16, Holder)>),
}

/// The holder of `port` for the project whose directories are `own`, counting `reserved` (other
/// apps of the same run, the port `bump` leaves) as taken by the holder given.
fn holder_of(
    world: &World,
    own: &[PathBuf],
    reserved: &[(u16, Holder)],
    port: u16,
) -> Option<Holder> {
    if let Some((_, h)) = reserved.iter().find(|(p, _)| *p == port) {
        return Some(h.clone());
    }
    world.holder(own, port)
}

/// The wished ports, strongest first: `--port` (an error when taken: an explicit choice is never
/// changed silently), the port the project already has, its preferred port.
pub fn wished(
    world: &World,
    own: &[PathBuf],
    wish: &Wish,
    reserved: &[(u16, Holder)],
) -> Result<Wished, RuntimeError> {
    if let Some(port) = wish.requested {
        return match holder_of(world, own, reserved, port) {
            Some(h) => Err(RuntimeError::PortTaken {
                port,
                holder: h.to_string(),
            }),
            None => Ok(Wished::Got(Choice {
                port,
                reason: Reason::Requested,
                passed_over: vec![],
            })),
        };
    }
    let mut passed_over: Vec<(u16, Holder)> = Vec::new();
    for (wanted, reason) in [
        (wish.current, Reason::Kept),
        (wish.preferred, Reason::Preferred),
    ] {
        let Some(port) = wanted else { continue };
        if passed_over.iter().any(|(p, _)| *p == port) {
            continue;
        }
        match holder_of(world, own, reserved, port) {
            None => {
                return Ok(Wished::Got(Choice {
                    port,
                    reason,
                    passed_over,
                }));
            }
            Some(h) => passed_over.push((port, h)),
        }
    }
    Ok(Wished::PassedOver(passed_over))
}

/// The lowest free port of `range` (never one browsers refuse).
pub fn lowest(
    world: &World,
    own: &[PathBuf],
    range: PortRange,
    reserved: &[(u16, Holder)],
    passed_over: Vec<(u16, Holder)>,
) -> Result<Choice, RuntimeError> {
    let mut taken = 0;
    for port in range.start..=range.end {
        if BROWSER_BLOCKED.contains(&port) || holder_of(world, own, reserved, port).is_some() {
            taken += 1;
            continue;
        }
        return Ok(Choice {
            port,
            reason: Reason::Lowest,
            passed_over,
        });
    }
    Err(RuntimeError::RangeFull {
        range: range.to_string(),
        taken,
    })
}

/// Choose the port for the project whose directories are `own` (empty for nobody, as `next`
/// asks): a wished port when one is free, else the lowest free port of the range.
pub fn choose(
    world: &World,
    own: &[PathBuf],
    wish: &Wish,
    range: PortRange,
    reserved: &[(u16, Holder)],
) -> Result<Choice, RuntimeError> {
    match wished(world, own, wish, reserved)? {
        Wished::Got(choice) => Ok(choice),
        Wished::PassedOver(passed) => lowest(world, own, range, reserved, passed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{App, Listener, Reservation};

    fn app(name: &str, cwd: &str, port: u16, status: &str) -> App {
        App::fake(name, cwd, port, status)
    }

    fn listen(port: u16) -> Listener {
        Listener {
            addr: "::1".parse().unwrap(),
            port,
            inode: 0,
        }
    }

    fn x() -> Vec<PathBuf> {
        vec![PathBuf::from("/x")]
    }

    const R: PortRange = PortRange {
        start: 3000,
        end: 3003,
    };

    #[test]
    fn loopback_is_127_slash_8_and_colon_colon_1_mapped_or_not() {
        let loopback = |a: &str| is_loopback(a.parse().unwrap());
        for a in [
            "127.0.0.1",
            "127.0.0.2",
            "127.255.255.254",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:127.1.2.3",
        ] {
            assert!(loopback(a), "{a}");
        }
        for a in [
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
            "10.0.0.5",
            "192.168.1.20",
            "203.0.113.7",
            "128.0.0.1",
            "126.255.255.255",
            "169.254.1.1",
            "fe80::1",
            "fd00::1",
            "2001:db8::1",
            "::ffff:10.0.0.5",
            "::127.0.0.1",
            "::2",
        ] {
            assert!(!loopback(a), "{a}");
        }
        assert_eq!(
            unmapped("::ffff:10.0.0.5".parse().unwrap()),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            unmapped("::1".parse().unwrap()),
            "::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn range_parses_and_rejects() {
        assert_eq!(
            "3000-3100".parse::<PortRange>().unwrap(),
            PortRange::DEFAULT
        );
        assert!("5000-4000".parse::<PortRange>().is_err());
        assert!("0-10".parse::<PortRange>().is_err());
        assert!("3000-70000".parse::<PortRange>().is_err());
        assert!("3000".parse::<PortRange>().is_err());
    }

    #[test]
    fn lowest_free_skips_apps_of_any_status_and_listeners() {
        let world = World {
            apps: vec![
                app("a", "/a", 3000, "online"),
                app("b", "/b", 3001, "stopped"),
            ],
            listeners: vec![listen(3002)],
            ..World::default()
        };
        let c = choose(&world, &x(), &Wish::default(), R, &[]).unwrap();
        assert_eq!((c.port, c.reason), (3003, Reason::Lowest));
    }

    #[test]
    fn own_running_app_keeps_its_port() {
        // The listener's owner is known to descend from the app's process...
        let mut world = World {
            apps: vec![app("x", "/x", 3001, "online")],
            listeners: vec![listen(3001)],
            own_inodes: [0].into(),
            ..World::default()
        };
        let wish = Wish {
            current: Some(3001),
            ..Wish::default()
        };
        let c = choose(&world, &x(), &wish, R, &[]).unwrap();
        assert_eq!((c.port, c.reason), (3001, Reason::Kept));
        // ...or cannot be read, and the online app is assigned that port.
        world.own_inodes.clear();
        world.unknown_inodes = [0].into();
        let c = choose(&world, &x(), &wish, R, &[]).unwrap();
        assert_eq!((c.port, c.reason), (3001, Reason::Kept));
        // A known foreign owner is not excused.
        world.unknown_inodes.clear();
        let c = choose(&world, &x(), &wish, R, &[]).unwrap();
        assert_eq!(c.port, 3000);
    }

    #[test]
    fn stopped_own_app_does_not_excuse_a_foreign_listener() {
        let world = World {
            apps: vec![app("x", "/x", 3001, "stopped")],
            listeners: vec![listen(3001)],
            ..World::default()
        };
        let wish = Wish {
            current: Some(3001),
            ..Wish::default()
        };
        let c = choose(&world, &x(), &wish, R, &[]).unwrap();
        assert_eq!(c.port, 3000);
        assert_eq!(c.passed_over.len(), 1);
    }

    #[test]
    fn requested_port_taken_names_the_holder() {
        let world = World {
            apps: vec![app("shop", "/shop", 3002, "stopped")],
            listeners: vec![],
            ..World::default()
        };
        let wish = Wish {
            requested: Some(3002),
            ..Wish::default()
        };
        let err = choose(&world, &x(), &wish, R, &[]).unwrap_err();
        assert!(err.to_string().contains("PM2 app `shop` (stopped"), "{err}");
    }

    #[test]
    fn reservations_of_other_projects_are_taken() {
        let world = World {
            reservations: vec![
                Reservation {
                    dir: "/a".into(),
                    cwd: "/a".into(),
                    name: "a".into(),
                    port: 3000,
                },
                Reservation {
                    dir: "/x".into(),
                    cwd: "/x".into(),
                    name: "x".into(),
                    port: 3001,
                },
            ],
            ..World::default()
        };
        let wish = Wish {
            current: Some(3001),
            ..Wish::default()
        };
        let c = choose(&world, &x(), &wish, R, &[]).unwrap();
        assert_eq!(c.port, 3001);
        let c = choose(&world, &[], &Wish::default(), R, &[]).unwrap();
        assert_eq!(c.port, 3002);
    }

    #[test]
    fn a_foreign_listener_beside_the_own_app_moves_the_project() {
        let mut world = World {
            apps: vec![app("x", "/x", 3001, "online")],
            listeners: vec![
                Listener {
                    addr: "127.0.0.1".parse().unwrap(),
                    port: 3001,
                    inode: 1,
                },
                Listener {
                    addr: "::1".parse().unwrap(),
                    port: 3001,
                    inode: 2,
                },
            ],
            own_inodes: [1].into(),
            ..World::default()
        };
        let wish = Wish {
            current: Some(3001),
            ..Wish::default()
        };
        let c = choose(&world, &x(), &wish, R, &[]).unwrap();
        assert_eq!(c.port, 3000);
        world.own_inodes = [1, 2].into();
        let c = choose(&world, &x(), &wish, R, &[]).unwrap();
        assert_eq!(c.port, 3001);
    }

    #[test]
    fn full_range_names_the_range() {
        let world = World {
            apps: vec![],
            listeners: (3000..=3003).map(listen).collect(),
            ..World::default()
        };
        let err = choose(&world, &x(), &Wish::default(), R, &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no free port in 3000-3003 (4 taken)"),
            "{err}"
        );
    }

    #[test]
    fn reserved_ports_are_skipped_and_blocked_ports_never_allocated() {
        let r = PortRange {
            start: 6665,
            end: 6670,
        };
        let sibling = Holder::Sibling { name: "b".into() };
        let c = choose(
            &World::default(),
            &[],
            &Wish::default(),
            r,
            &[(6670, sibling)],
        );
        assert!(matches!(c, Err(RuntimeError::RangeFull { taken: 6, .. })));
    }
}
