//! The proxy's names: each app of each server gets a DNS label, and the proxy a table from
//! `Host` to the app's forward. App and host names come from servers that may be hostile or
//! simply odd: a label holds only lowercase ASCII letters, digits and hyphens, and clashes are
//! resolved by a suffix (`-2`, `-3`, ...), so that every name shown is one the browser can open.
//!
//! - One server: `NAME.localhost` (and `NAME.HOST.localhost`).
//! - Several: `NAME.HOST.localhost`, plus `NAME.localhost` when NAME is unique across them.
//! - `localhost`, `127.0.0.1`, `[::1]`: the index page. Any other `Host` is refused (a DNS
//!   rebinding page's requests carry its own name).

use serde::Serialize;

/// An app as the proxy knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppIn {
    pub name: String,
    /// PM2's status (`online`, `stopped`, ...).
    pub status: String,
    /// Its port on the server, when it has one.
    pub remote_port: Option<u16>,
    /// Its forward's port here, when it is forwarded.
    pub local_port: Option<u16>,
}

/// A server as the proxy knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIn {
    pub host: String,
    /// Its link's state as the tunnel shows it (`live`, `polling`, `down`, `connecting`).
    pub state: String,
    pub apps: Vec<AppIn>,
}

/// One app in the table, with its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    pub host: String,
    pub host_label: String,
    pub name: String,
    pub label: String,
    pub status: String,
    pub remote_port: Option<u16>,
    pub local_port: Option<u16>,
    /// `NAME.localhost` routes here (unique across servers).
    pub short: bool,
}

/// A server in the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub host: String,
    pub label: String,
    pub state: String,
}

/// The proxy's table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    pub servers: Vec<Server>,
    pub sites: Vec<Site>,
}

/// What a request's `Host` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// `localhost`, `127.0.0.1` or `[::1]`: the proxy's own pages.
    Index,
    Site(&'a Site),
    /// A `*.localhost` name no app has (the name asked, lowercase, port stripped).
    Unknown(String),
    /// Not a name of this proxy.
    Foreign,
}

/// The DNS label of a name: lowercase ASCII letters and digits, every other run of characters
/// one hyphen, none at either end, at most 63 characters; `app` when nothing is left.
pub fn label(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(63);
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "app".into()
    } else {
        out.to_string()
    }
}

/// Labels for `names`, in order, made unique: a clash gets `-2`, `-3`, ... (cut to fit 63).
fn unique_labels<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    use std::collections::{HashMap, HashSet};
    let mut taken: HashSet<String> = HashSet::new();
    // For each base label, the next suffix to try: thousands of names with one label cost one
    // try each, not one per name before them.
    let mut next: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for name in names {
        let base = label(name);
        let mut candidate = base.clone();
        let n = next.entry(base.clone()).or_insert(2);
        while taken.contains(&candidate) {
            let suffix = format!("-{n}");
            let mut stem = base.clone();
            stem.truncate(63 - suffix.len());
            candidate = format!("{}{suffix}", stem.trim_end_matches('-'));
            *n += 1;
        }
        taken.insert(candidate.clone());
        out.push(candidate);
    }
    out
}

/// The table for these servers and their apps. Labels are given in the order the servers and
/// apps come, so a name keeps its label while the apps before it stay.
pub fn routes(hosts: &[HostIn]) -> Routes {
    let host_labels = unique_labels(hosts.iter().map(|h| h.host.as_str()));
    let mut sites = Vec::new();
    for (h, host_label) in hosts.iter().zip(&host_labels) {
        let labels = unique_labels(h.apps.iter().map(|a| a.name.as_str()));
        for (app, label) in h.apps.iter().zip(labels) {
            sites.push(Site {
                host: h.host.clone(),
                host_label: host_label.clone(),
                name: app.name.clone(),
                label,
                status: app.status.clone(),
                remote_port: app.remote_port,
                local_port: app.local_port,
                short: false,
            });
        }
    }
    // The short name is an app's when no app of any server shares its label.
    let mut count: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for s in &sites {
        *count.entry(s.label.clone()).or_default() += 1;
    }
    for s in &mut sites {
        s.short = count[&s.label] == 1;
    }
    let servers = hosts
        .iter()
        .zip(host_labels)
        .map(|(h, label)| Server {
            host: h.host.clone(),
            label,
            state: h.state.clone(),
        })
        .collect();
    Routes { servers, sites }
}

impl Routes {
    /// What `host` (a `Host` header: name, optional port) asks for.
    pub fn resolve(&self, host: &str) -> Target<'_> {
        let name = strip_port(host.trim()).to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        if matches!(name, "localhost" | "127.0.0.1" | "[::1]") {
            return Target::Index;
        }
        let Some(sub) = name.strip_suffix(".localhost") else {
            return Target::Foreign;
        };
        let found = match sub.split_once('.') {
            None => self.sites.iter().find(|s| s.short && s.label == sub),
            Some((app, server)) => self
                .sites
                .iter()
                .find(|s| s.label == app && s.host_label == server),
        };
        match found {
            Some(site) => Target::Site(site),
            None => Target::Unknown(sub.to_string()),
        }
    }

    /// Every origin a site is opened at through the proxy on `port` (the short name's, when it
    /// has one, and the long one's).
    pub fn origins(&self, site: &Site, port: u16) -> Vec<String> {
        let long = format!(
            "http://{}.{}.localhost{}",
            site.label,
            site.host_label,
            port_suffix(port)
        );
        if site.short {
            vec![self.url(site, port), long]
        } else {
            vec![long]
        }
    }

    /// The URL a site is opened at through the proxy on `port`.
    pub fn url(&self, site: &Site, port: u16) -> String {
        let name = if site.short {
            site.label.clone()
        } else {
            format!("{}.{}", site.label, site.host_label)
        };
        format!("http://{name}.localhost{}", port_suffix(port))
    }
}

/// `:PORT`, or nothing for 80.
pub fn port_suffix(port: u16) -> String {
    if port == 80 {
        String::new()
    } else {
        format!(":{port}")
    }
}

/// A `Host` value without its port (`[::1]:8800` → `[::1]`, `a.localhost:8800` → `a.localhost`).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, status: &str, port: Option<u16>) -> AppIn {
        AppIn {
            name: name.into(),
            status: status.into(),
            remote_port: port,
            local_port: port,
        }
    }

    fn host(name: &str, apps: Vec<AppIn>) -> HostIn {
        HostIn {
            host: name.into(),
            state: "live".into(),
            apps,
        }
    }

    #[test]
    fn labels_are_dns_labels() {
        assert_eq!(label("shop"), "shop");
        assert_eq!(label("My_Shop API"), "my-shop-api");
        assert_eq!(label("--a..b--"), "a-b");
        assert_eq!(
            label("<img src=x onerror=alert(1)>"),
            "img-src-x-onerror-alert-1"
        );
        assert_eq!(label("\x1b]0;pwned\x07"), "0-pwned");
        assert_eq!(label("ünï"), "n");
        assert_eq!(label("日本"), "app");
        assert_eq!(label(""), "app");
        assert_eq!(label("root@gpu-box.lan"), "root-gpu-box-lan");
        let long = "a".repeat(100);
        assert_eq!(label(&long), "a".repeat(63));
        assert_eq!(label(&format!("{}-b", "a".repeat(62))), "a".repeat(62));
    }

    #[test]
    fn clashes_get_a_suffix() {
        assert_eq!(
            unique_labels(["Shop", "shop", "SHOP!", "shop-2"].into_iter()),
            ["shop", "shop-2", "shop-3", "shop-2-2"]
        );
        let long = "a".repeat(70);
        let labels = unique_labels([long.as_str(), long.as_str()].into_iter());
        assert_eq!(labels[1], format!("{}-2", "a".repeat(61)));
    }

    #[test]
    fn one_server() {
        let r = routes(&[host(
            "devbox",
            vec![
                app("shop", "online", Some(3003)),
                app("blog", "stopped", Some(3004)),
            ],
        )]);
        let Target::Site(s) = r.resolve("shop.localhost:8800") else {
            panic!()
        };
        assert_eq!((s.name.as_str(), s.local_port), ("shop", Some(3003)));
        assert_eq!(r.url(s, 8800), "http://shop.localhost:8800");
        assert_eq!(r.url(s, 80), "http://shop.localhost");
        assert_eq!(r.resolve("SHOP.devbox.localhost."), Target::Site(s));
        let Target::Site(b) = r.resolve("blog.localhost") else {
            panic!()
        };
        assert_eq!(b.status, "stopped");
        assert_eq!(
            r.resolve("nope.localhost:8800"),
            Target::Unknown("nope".into())
        );
        assert_eq!(r.resolve("localhost:8800"), Target::Index);
        assert_eq!(r.resolve("127.0.0.1:8800"), Target::Index);
        assert_eq!(r.resolve("[::1]:8800"), Target::Index);
        // DNS rebinding and friends.
        assert_eq!(r.resolve("evil.example:8800"), Target::Foreign);
        assert_eq!(r.resolve("shop.localhost.evil.example"), Target::Foreign);
        assert_eq!(r.resolve("localhostx"), Target::Foreign);
        assert_eq!(r.resolve(""), Target::Foreign);
    }

    #[test]
    fn several_servers() {
        let r = routes(&[
            host(
                "devbox",
                vec![
                    app("shop", "online", Some(3000)),
                    app("api", "online", Some(3001)),
                ],
            ),
            host("gpu", vec![app("shop", "online", Some(3000))]),
        ]);
        // `shop` is on both: only the long names.
        assert_eq!(r.resolve("shop.localhost"), Target::Unknown("shop".into()));
        let Target::Site(a) = r.resolve("shop.devbox.localhost") else {
            panic!()
        };
        let Target::Site(b) = r.resolve("shop.gpu.localhost") else {
            panic!()
        };
        assert_eq!((a.host.as_str(), b.host.as_str()), ("devbox", "gpu"));
        assert_eq!(r.url(b, 8800), "http://shop.gpu.localhost:8800");
        // `api` is unique: its short name works, and is the one shown.
        let Target::Site(api) = r.resolve("api.localhost") else {
            panic!()
        };
        assert_eq!(r.url(api, 8800), "http://api.localhost:8800");
        assert_eq!(r.resolve("api.devbox.localhost"), Target::Site(api));
        assert_eq!(
            r.resolve("api.gpu.localhost"),
            Target::Unknown("api.gpu".into())
        );
    }

    #[test]
    fn thousands_of_names_with_one_label_take_one_try_each() {
        let labels = unique_labels(std::iter::repeat_n("日本", 20_000));
        assert_eq!(labels[0], "app");
        assert_eq!(labels[1], "app-2");
        assert_eq!(labels[19_999], "app-20000");
        let distinct: std::collections::HashSet<&String> = labels.iter().collect();
        assert_eq!(distinct.len(), 20_000);
    }

    #[test]
    fn both_names_are_origins() {
        let r = routes(&[host("devbox", vec![app("shop", "online", Some(3000))])]);
        assert_eq!(
            r.origins(&r.sites[0], 8800),
            [
                "http://shop.localhost:8800",
                "http://shop.devbox.localhost:8800"
            ]
        );
    }

    #[test]
    fn hosts_that_label_alike_are_told_apart() {
        let r = routes(&[
            host("Dev_Box", vec![app("a", "online", Some(1))]),
            host("dev.box", vec![app("a", "online", Some(2))]),
        ]);
        assert_eq!(r.servers[0].label, "dev-box");
        assert_eq!(r.servers[1].label, "dev-box-2");
        let Target::Site(s) = r.resolve("a.dev-box-2.localhost") else {
            panic!()
        };
        assert_eq!(s.remote_port, Some(2));
    }
}
