//! `tunnel`'s proxy at the HTTP level: a laptop and a server in their own network namespaces
//! (tests/integration/netns.rs), apps from `fixtures/proxy-app`, and requests written by hand on
//! the laptop, so that every header and byte is the test's to check.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::netns::{Laptop, Server};
use crate::support::*;
use crate::tunnel::*;

/// The proxy's port when `tunnel` is not told (free in the laptop's own namespace).
const PROXY: u16 = 8800;

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// The header lines, lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Read a response head from `r`: the status and the headers.
fn head(r: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            return (status, headers);
        }
        let (n, v) = l.split_once(':').unwrap();
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
}

/// A body, chunked or not, to its end (the connection is closed after it).
fn body(r: &mut impl BufRead, headers: &[(String, String)]) -> Vec<u8> {
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let mut out = Vec::new();
    if !chunked {
        r.read_to_end(&mut out).unwrap();
        return out;
    }
    loop {
        let mut size = String::new();
        r.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// `GET path` on the laptop's 127.0.0.1:`port` with `Host: host` and `extra` header lines.
pub fn get(laptop: &Laptop, port: u16, host: &str, path: &str, extra: &[&str]) -> Reply {
    laptop.ns.enter(|| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for h in extra {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let (status, headers) = head(&mut r);
        let body = body(&mut r, &headers);
        Reply {
            status,
            headers,
            body,
        }
    })
}

/// A server with the proxy-app as `shop` and `blog`, and a tunnel to it (JSON events, stderr
/// to `tunnel.log`), its events up to `ready`.
struct Setup<'a> {
    sb: &'a Sandbox,
    laptop: Laptop,
    server: Server<'a>,
    tunnel: Tunnel,
    events: Vec<Value>,
}

fn setup<'a>(sb: &'a Sandbox, apps: &[&str]) -> Setup<'a> {
    let laptop = Laptop::new();
    let server = Server::start(sb);
    for (i, name) in apps.iter().enumerate() {
        server.start_fixture("proxy-app", name, sb.port(i as u16));
    }
    let tunnel = Tunnel::start(
        tunnel_cmd(sb, &laptop, &server, &["--json"]),
        log_file(&sb.root.path().join("tunnel.log")),
    );
    let events = tunnel.until_ready();
    Setup {
        sb,
        laptop,
        server,
        tunnel,
        events,
    }
}

#[test]
fn apps_are_served_by_name_with_their_own_host_and_the_rest_is_refused() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop", "blog"]);
    let (shop, blog) = (sb.port(0), sb.port(1));
    // (`until_ready` checked the `proxy` event that comes first.)
    let f = forward_of(&s.events, "shop");
    assert_eq!(f["url"], "http://shop.localhost:8800");
    assert_eq!(
        forward_of(&s.events, "blog")["url"],
        "http://blog.localhost:8800"
    );

    // By name, each its own app, each its cookie.
    let r = get(&s.laptop, PROXY, "shop.localhost:8800", "/", &[]);
    assert_eq!(
        (r.status, r.text()),
        (200, format!("hello from shop on {shop}\n"))
    );
    assert_eq!(r.header("set-cookie"), Some("seen=shop; Path=/"));
    let r = get(&s.laptop, PROXY, "BLOG.localhost:8800", "/", &[]);
    assert_eq!(
        (r.status, r.text()),
        (200, format!("hello from blog on {blog}\n"))
    );
    // The long name works too.
    let r = get(&s.laptop, PROXY, "blog.testhost.localhost:8800", "/", &[]);
    assert_eq!(r.text(), format!("hello from blog on {blog}\n"));

    // What the app sees: its own host and origin, and where the request came from.
    let r = get(
        &s.laptop,
        PROXY,
        "shop.localhost:8800",
        "/headers?x=1",
        &["Origin: http://shop.localhost:8800", "Cookie: seen=shop"],
    );
    let seen: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(seen["host"], format!("localhost:{shop}"));
    assert_eq!(seen["origin"], format!("http://localhost:{shop}"));
    assert_eq!(seen["x-forwarded-host"], "shop.localhost:8800");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["cookie"], "seen=shop");
    // Another origin is left as it is: the app decides.
    let r = get(
        &s.laptop,
        PROXY,
        "shop.localhost:8800",
        "/headers",
        &["Origin: http://blog.localhost:8800"],
    );
    let seen: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(seen["origin"], "http://blog.localhost:8800");

    // An unknown name: 404 and the known apps.
    let r = get(&s.laptop, PROXY, "nope.localhost:8800", "/", &[]);
    assert_eq!(r.status, 404);
    let page = r.text();
    assert!(page.contains("No app is called `nope`"), "{page}");
    assert!(
        page.contains("<a href=\"http://shop.localhost:8800\">http://shop.localhost:8800</a>"),
        "{page}"
    );
    assert!(page.contains("http://blog.localhost:8800"), "{page}");

    // A foreign Host (DNS rebinding): refused, the app never asked.
    for host in ["evil.example:8800", "shop.localhost.evil.example", ""] {
        let r = get(&s.laptop, PROXY, host, "/", &[]);
        assert_eq!(r.status, 403, "{host}");
        assert!(
            r.text()
                .starts_with("pm2-port's proxy answers for localhost")
        );
    }

    // The index.
    let r = get(&s.laptop, PROXY, "localhost:8800", "/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    for name in ["shop", "blog"] {
        assert!(
            page.contains(&format!("<td>{name}</td><td class=\"online\">online</td>")),
            "{page}"
        );
    }
    let r = get(
        &s.laptop,
        PROXY,
        "127.0.0.1:8800",
        "/.pm2-port/apps.json",
        &[],
    );
    let model: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        model["apps"],
        json!([
            {"host": "testhost", "name": "shop", "status": "online", "url": "http://shop.localhost:8800", "remote_port": shop, "local_port": shop},
            {"host": "testhost", "name": "blog", "status": "online", "url": "http://blog.localhost:8800", "remote_port": blog, "local_port": blog}
        ])
    );

    // An app that stops: 502, naming it and its PM2 status.
    s.server.pm2(["stop", "blog"]);
    assert_eq!(
        s.tunnel.next(10),
        json!({"event": "cancel", "host": "testhost", "name": "blog", "local_port": blog})
    );
    // (PM2 says `stopping` first; the page follows the stream.)
    let page = wait_for(10, "PM2's status `stopped` on the 502 page", || {
        let r = get(&s.laptop, PROXY, "blog.localhost:8800", "/", &[]);
        assert_eq!(r.status, 502);
        let page = r.text();
        page.contains("(PM2 status: stopped)").then_some(page)
    });
    assert!(
        page.contains(
            "<p>`blog` on `testhost` does not answer: it has no forward (not online, or \
                       no port) (PM2 status: stopped).</p>"
        ),
        "{page}"
    );
    assert_eq!(s.tunnel.terminate(&s.server), 0);
    // The proxy went with the tunnel.
    assert!(s.laptop.refused(PROXY));
    let _ = s.sb;
}

#[test]
fn bodies_and_events_stream_through_and_upgrades_join() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop"]);

    // 20 MiB through, read as it comes; the tunnel's peak memory stays small.
    let (total, took) = s.laptop.ns.enter(|| {
        let mut c = TcpStream::connect(("127.0.0.1", PROXY)).unwrap();
        c.write_all(
            b"GET /big?mb=20 HTTP/1.1\r\nHost: shop.localhost:8800\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut r = BufReader::new(c);
        let (status, headers) = head(&mut r);
        assert_eq!(status, 200);
        assert_eq!(
            headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.as_str()),
            Some("20971520")
        );
        let started = Instant::now();
        let mut buf = vec![0; 64 * 1024];
        let mut total = 0usize;
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == b'x'));
            total += n;
        }
        (total, started.elapsed())
    });
    assert_eq!(total, 20 * 1024 * 1024);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.tunnel.child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    eprintln!("20 MiB through the proxy in {took:?}; the tunnel's peak RSS: {peak_kib} KiB");
    assert!(
        peak_kib < 30 * 1024,
        "the tunnel's peak RSS is {peak_kib} KiB"
    );

    // Server-sent events arrive as they are sent (300 ms apart), not at the end.
    let arrivals = s.laptop.ns.enter(|| {
        let mut c = TcpStream::connect(("127.0.0.1", PROXY)).unwrap();
        c.write_all(b"GET /sse HTTP/1.1\r\nHost: shop.localhost:8800\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut r = BufReader::new(c);
        let (status, headers) = head(&mut r);
        assert_eq!(status, 200);
        assert!(headers.contains(&("content-type".into(), "text/event-stream".into())));
        let mut arrivals = Vec::new();
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 0 {
            if line.contains("data: ") {
                arrivals.push((line.clone(), Instant::now()));
            }
            line.clear();
        }
        arrivals
    });
    assert_eq!(arrivals.len(), 5, "{arrivals:?}");
    for (i, (line, _)) in arrivals.iter().enumerate() {
        assert!(line.contains(&format!("data: {} ", i + 1)), "{line:?}");
    }
    let spread = arrivals[4].1 - arrivals[0].1;
    assert!(
        spread >= Duration::from_millis(900),
        "all events came within {spread:?}"
    );

    // An upgrade (as a WebSocket's) is joined end to end.
    let echoed = s.laptop.ns.enter(|| {
        let mut c = TcpStream::connect(("127.0.0.1", PROXY)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(
            b"GET /ws HTTP/1.1\r\nHost: shop.localhost:8800\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let (status, headers) = head(&mut r);
        assert_eq!(status, 101);
        assert!(headers.contains(&("upgrade".into(), "echo".into())), "{headers:?}");
        let mut got = Vec::new();
        for word in ["ping\n", "pong\n"] {
            c.write_all(word.as_bytes()).unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            got.push(line);
        }
        got
    });
    assert_eq!(echoed, ["ping\n", "pong\n"]);
    assert_eq!(s.tunnel.terminate(&s.server), 0);
}

/// A fake `pm2-port` on the server: its list names an app with markup; the app behind it is a
/// real one.
#[test]
fn a_hostile_app_name_is_text_on_every_page() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let port = sb.port(0);
    server.start_fixture("proxy-app", "web", port);
    let name = "<img src=x onerror=alert(1)>";
    server.fake_pm2_port(&format!(
        "#!/bin/sh\necho '{}'\n",
        json!([{"name": name, "port": port, "status": "online"}])
    ));
    let mut tunnel = Tunnel::start(
        tunnel_cmd(&sb, &laptop, &server, &["--json"]),
        log_file(&sb.root.path().join("tunnel.log")),
    );
    let events = tunnel.until_ready();
    let url = "http://img-src-x-onerror-alert-1.localhost:8800";
    assert_eq!(forward_of(&events, name)["url"], url);
    let r = get(
        &laptop,
        PROXY,
        "img-src-x-onerror-alert-1.localhost:8800",
        "/",
        &[],
    );
    assert_eq!(r.text(), format!("hello from web on {port}\n"));
    for (host, status) in [("localhost:8800", 200), ("nope.localhost:8800", 404)] {
        let r = get(&laptop, PROXY, host, "/", &[]);
        assert_eq!(r.status, status);
        let page = r.text();
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );
        assert!(page.contains(&format!("<a href=\"{url}\">")), "{page}");
    }
    assert_eq!(tunnel.terminate(&server), 0);
}

/// One keep-alive connection to the proxy: the app restarts between two of its requests (its
/// connection from the proxy is closed under it), and the second request is answered all the same.
#[test]
fn a_kept_connection_the_app_closed_is_replaced() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop"]);
    let port = sb.port(0);
    let (c, mut r) = s.laptop.ns.enter(|| {
        let c = TcpStream::connect(("127.0.0.1", PROXY)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(c.try_clone().unwrap());
        (c, r)
    });
    let mut c = c;
    let ask = |c: &mut TcpStream, r: &mut BufReader<TcpStream>| {
        c.write_all(b"GET / HTTP/1.1\r\nHost: shop.localhost:8800\r\n\r\n")
            .unwrap();
        let (status, headers) = head(r);
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap();
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    };
    let hello = format!("hello from shop on {port}\n");
    assert_eq!(ask(&mut c, &mut r), (200, hello.clone()));
    s.server.pm2(["restart", "shop", "--wait-ready"]);
    // PM2 says `stopping` (the forward is cancelled), then `online` (forwarded again).
    assert_eq!(s.tunnel.next(10)["event"], "cancel");
    assert_eq!(s.tunnel.next(10)["event"], "forward");
    assert_eq!(ask(&mut c, &mut r), (200, hello.clone()));
    assert_eq!(ask(&mut c, &mut r), (200, hello));
    assert_eq!(s.tunnel.terminate(&s.server), 0);
}
