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
    setup_with(sb, apps, None)
}

/// [`setup`], the tunnel started under `prlimit LIMIT` when given.
fn setup_with<'a>(sb: &'a Sandbox, apps: &[&str], limit: Option<&str>) -> Setup<'a> {
    let laptop = Laptop::new();
    let server = Server::start(sb);
    for (i, name) in apps.iter().enumerate() {
        server.start_fixture("proxy-app", name, sb.port(i as u16));
    }
    let mut cmd = tunnel_cmd(sb, &laptop, &server, &["--json"]);
    if let Some(limit) = limit {
        let mut limited = std::process::Command::new("prlimit");
        limited
            .arg(limit)
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => limited.env(k, v),
                None => limited.env_remove(k),
            };
        }
        cmd = limited;
    }
    let tunnel = Tunnel::start(cmd, log_file(&sb.root.path().join("tunnel.log")));
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
    // From its own origin: one origin throughout (Host, Origin, X-Forwarded-Host).
    assert_eq!(seen["host"], format!("localhost:{shop}"));
    assert_eq!(seen["origin"], format!("http://localhost:{shop}"));
    assert_eq!(seen["x-forwarded-host"], format!("localhost:{shop}"));
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["cookie"], "seen=shop");
    assert_eq!(r.header("x-request-target"), Some("/headers?x=1"));
    // A navigation (no Origin): the name the browser used, for links the app builds.
    let r = get(&s.laptop, PROXY, "shop.localhost:8800", "/headers", &[]);
    let seen: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(seen["host"], format!("localhost:{shop}"));
    assert_eq!(seen["x-forwarded-host"], "shop.localhost:8800");
    // A request in absolute form reaches the app in origin form, and the headers its
    // `Connection` names stay on the browser's side.
    let r = get(
        &s.laptop,
        PROXY,
        "shop.localhost:8800",
        "http://shop.localhost:8800/headers?x=2",
        &[
            "Connection: X-Secret",
            "X-Secret: 1",
            "Keep-Alive: timeout=9",
        ],
    );
    assert_eq!(r.header("x-request-target"), Some("/headers?x=2"));
    let seen: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(seen["host"], format!("localhost:{shop}"));
    assert_eq!(seen.get("x-secret"), None, "{seen}");
    assert_eq!(seen.get("keep-alive"), None, "{seen}");
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

// ---------------------------------------------------------------------------------------------
// Attacks on the proxy: each test below failed on the proxy as first written. Its comment tells
// what went wrong then (in the present tense of the report); the test asserts what happens now.
// ---------------------------------------------------------------------------------------------

/// The host of an `Origin` (`http://a:1` → `a:1`).
fn origin_host(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, rest)| rest)
}

/// What the app is told about where the request came from must agree with itself. Frameworks
/// check `Origin` against the request's own host: Django, SvelteKit, Astro against `Host`; Next.js
/// Server Actions (`action-handler.ts`: `x-forwarded-host`, else `host`) and Rails
/// (`valid_request_origin?`: `request.base_url`, built from `X-Forwarded-Host`) against
/// `X-Forwarded-Host`. The proxy rewrites `Origin` to `http://localhost:PORT` but says
/// `X-Forwarded-Host: shop.localhost:8800`: every same-origin POST through the proxy is refused
/// as CSRF by Next.js ("Invalid Server Actions request.") and by Rails
/// (`InvalidAuthenticityToken`, "HTTP Origin header (http://localhost:PORT) didn't match
/// request.base_url (http://shop.localhost:8800)"). And on the long name
/// (`shop.HOST.localhost`), which the README gives as the same app, `Origin` is not rewritten at
/// all: there the `Host`-checking frameworks refuse it.
#[test]
fn attack_origin_host_and_forwarded_host_agree_on_both_names() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop"]);
    let mut wrong = Vec::new();
    for name in ["shop.localhost:8800", "shop.testhost.localhost:8800"] {
        let origin = format!("http://{name}");
        let r = get(
            &s.laptop,
            PROXY,
            name,
            "/headers",
            &[&format!("Origin: {origin}")],
        );
        let seen: Value = serde_json::from_slice(&r.body).unwrap();
        let host = seen["host"].as_str().unwrap();
        let seen_origin = origin_host(seen["origin"].as_str().unwrap());
        if seen_origin != host {
            wrong.push(format!(
                "{name}: Origin host `{seen_origin}` but Host `{host}` (Django, SvelteKit)"
            ));
        }
        if let Some(forwarded) = seen["x-forwarded-host"].as_str()
            && forwarded != seen_origin
        {
            wrong.push(format!(
                "{name}: Origin host `{seen_origin}` but X-Forwarded-Host `{forwarded}` \
                 (Next.js Server Actions, Rails)"
            ));
        }
    }
    assert_eq!(s.tunnel.terminate(&s.server), 0);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The proxy tells the app `Host: localhost:PORT`, so every absolute URL the app builds from it
/// points off the proxy: Starlette's trailing-slash redirect, `url_for`, Django's
/// `build_absolute_uri()` (OAuth callback URLs), an Express `req.get("host")`. The proxy passes
/// `Location: http://localhost:PORT/...` on unchanged, and the browser leaves
/// `shop.localhost:8800` for `localhost:PORT`: another cookie jar (the session set on the name is
/// not sent: a login loop), and, when the forward's local port is not the remote one (taken on the
/// laptop), another app or nothing. A reverse proxy rewrites such a `Location` back to the name it
/// serves (nginx's `proxy_redirect default`).
#[test]
fn attack_a_redirect_to_the_host_the_app_was_given_stays_on_the_name() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let port = sb.port(0);
    server.start_fixture("host-redirect-app", "shop", port);
    let mut tunnel = Tunnel::start(
        tunnel_cmd(&sb, &laptop, &server, &["--json"]),
        log_file(&sb.root.path().join("tunnel.log")),
    );
    tunnel.until_ready();
    let r = get(&laptop, PROXY, "shop.localhost:8800", "/login", &[]);
    assert_eq!(tunnel.terminate(&server), 0);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("http://shop.localhost:8800/dashboard"),
        "the browser is sent off the proxy's name"
    );
}

/// A server's list (hostile, or just large) of apps whose names all make the same label (`app`
/// for any name without ASCII letters or digits): `unique_labels` tries `app`, `app-2`, ...,
/// `app-k` for the k-th, each with a linear `taken.contains`: cubic. The table is rebuilt at every
/// event of every host (`Session::handle`), and again for each forward's URL (`url_of`). Release
/// build, one table: 2000 such apps 2.5 s, 4000 apps 20 s; the 8 MiB list a server may send holds
/// about 200,000. The tunnel's one thread spins: no forward, no event of any other host, no
/// answer to Ctrl-C's cleanup until it is done.
#[test]
fn attack_thousands_of_apps_with_one_label_do_not_stall_the_tunnel() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let port = sb.port(0);
    server.start_fixture("proxy-app", "web", port);
    server.fake_pm2_port("#!/bin/sh\ncat \"$HOME/list.out\"\n");
    let mut list = vec![json!({"name": "web", "port": port, "status": "online"})];
    list.extend((0..2000).map(|_| json!({"name": "日本", "status": "stopped"})));
    std::fs::write(
        server.home().join("list.out"),
        Value::Array(list).to_string(),
    )
    .unwrap();
    let started = Instant::now();
    let mut tunnel = Tunnel::start(
        tunnel_cmd(&sb, &laptop, &server, &["--json"]),
        log_file(&sb.root.path().join("tunnel.log")),
    );
    let served = (|| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if laptop.refused(PROXY) {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let r = get(&laptop, PROXY, "web.localhost:8800", "/", &[]);
            if r.status == 200 {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    })();
    let _ = tunnel.child.kill();
    let served = served.expect("`web` not served by name within 30 s");
    assert!(
        served < Duration::from_secs(10),
        "`web` was served by name only after {served:?}"
    );
}

/// Every connection to the proxy costs the tunnel one descriptor, and one more for its kept
/// connection to the forward; the proxy has no idle or header timeout (hyper's
/// `header_read_timeout` needs a timer, none is set), no cap on connections, and the tunnel does
/// not raise its soft `RLIMIT_NOFILE` (256 in a macOS terminal, 1024 on Linux). With the limit at
/// 256 (the hard one as it was), 300 idle keep-alive connections (a browser keeps up to 256 sockets; any local
/// program can open more): the proxy stops answering new connections (they wait in the backlog:
/// `accept` fails with EMFILE and is retried every 20 ms), and the tunnel itself can no longer run
/// `ssh -O forward` for an app that starts. Expected: the tunnel raises its soft limit to the hard
/// one and the proxy keeps a margin (caps its connections, closes idle ones first), so that the
/// tunnel's own work never fails for want of descriptors.
#[test]
fn attack_idle_connections_do_not_starve_the_tunnel_of_descriptors() {
    let sb = Sandbox::new();
    // The tunnel started with the soft limit of a macOS terminal (256), the hard one left as it
    // is: it raises its own.
    let mut s = setup_with(&sb, &["shop"], Some("--nofile=256:"));
    let pid = s.tunnel.child.id().to_string();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft: usize = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(soft > 256, "{limits}");
    let idle: Vec<TcpStream> = s.laptop.ns.enter(|| {
        (0..300)
            .map(|_| {
                let mut c = TcpStream::connect(("127.0.0.1", PROXY)).unwrap();
                c.write_all(b"GET / HTTP/1.1\r\nHost: shop.localhost:8800\r\n\r\n")
                    .unwrap();
                c
            })
            .collect()
    });
    std::thread::sleep(Duration::from_secs(2));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    eprintln!("the tunnel holds {fds} descriptors");
    // A new visitor.
    let answered = s.laptop.ns.enter(|| {
        let mut c = TcpStream::connect(("127.0.0.1", PROXY)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: shop.localhost:8800\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    // A new app on the server: the tunnel must forward it.
    s.server.start_fixture("proxy-app", "blog", s.sb.port(1));
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(line) = s.tunnel.try_next_line(1) {
            events.push(line);
        }
        if events
            .iter()
            .any(|e| e.contains("\"forward\"") && e.contains("blog"))
        {
            break;
        }
    }
    drop(idle);
    let log = read(&s.sb.root.path().join("tunnel.log"));
    let _ = s.tunnel.child.kill();
    let mut wrong = Vec::new();
    if !answered.starts_with("HTTP/1.1 200") {
        let status = answered.lines().next().unwrap_or("nothing (timed out)");
        let why = answered
            .split_once("<p>")
            .map_or("", |(_, p)| p.split("</p>").next().unwrap_or(""));
        wrong.push(format!("a new visitor got {status:?} {why}"));
    }
    if !events
        .iter()
        .any(|e| e.contains("\"forward\"") && e.contains("blog"))
    {
        wrong.push(format!(
            "no forward for a new app; events {events:?}; log:\n{log}"
        ));
    }
    assert!(wrong.is_empty(), "{fds} descriptors held: {wrong:#?}");
}

/// The index page holds its event stream (`/.pm2-port/events`) open for as long as it is open,
/// over HTTP/1.1: one of the six connections Chromium allows per host for good. Six index tabs
/// (or five and one app page at `localhost:8800`) and nothing more from `localhost:8800` loads in
/// that browser: not a seventh index, not `apps.json`, not the 404 page; they wait until a tab is
/// closed. (Live updates over a WebSocket do not count against the six.)
#[test]
fn attack_six_index_tabs_leave_the_index_reachable() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop"]);
    let b = crate::browser::Browser::start(&s.laptop);
    for i in 0..6 {
        assert_eq!(b.goto(&format!("index{i}"), "http://localhost:8800/"), 200);
    }
    let got = b.eval(
        "index0",
        "fetch('/.pm2-port/apps.json', {signal: AbortSignal.timeout(8000)})\
         .then(r => 'HTTP ' + r.status, e => e.name)",
    );
    drop(b);
    assert_eq!(s.tunnel.terminate(&s.server), 0);
    assert_eq!(got, json!("HTTP 200"), "with six index tabs open");
}

/// `raw`, a whole request that ends with `Connection: close`, sent to the proxy on the laptop; its
/// answer (no body for a `HEAD`, read to the connection's end otherwise).
fn ask(laptop: &Laptop, raw: &[u8]) -> Reply {
    laptop.ns.enter(|| {
        let mut s = TcpStream::connect(("127.0.0.1", PROXY)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(raw).unwrap();
        let mut r = BufReader::new(s);
        let (status, headers) = head(&mut r);
        let body = if raw.starts_with(b"HEAD ") {
            Vec::new()
        } else {
            body(&mut r, &headers)
        };
        Reply {
            status,
            headers,
            body,
        }
    })
}

/// The proxy-app's `/raw` path: `answer` written by the app as it is.
fn raw_path(answer: &[u8]) -> String {
    let hex: String = answer.iter().map(|b| format!("{b:02x}")).collect();
    format!("/raw?r={hex}")
}

/// A `Connection` header with a token that is not ASCII (`café`) fails `to_str`, and the whole
/// header is skipped: the headers its other tokens name go through, both ways.
#[test]
fn attack_a_connection_header_with_a_non_ascii_token_still_names_its_headers() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop"]);
    let answer = b"HTTP/1.1 200 OK\r\nConnection: x-secret, caf\xe9\r\nX-Secret: 1\r\nContent-Length: 2\r\n\r\nok";
    let r = get(
        &s.laptop,
        PROXY,
        "shop.localhost:8800",
        &raw_path(answer),
        &[],
    );
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(r.header("x-secret"), None, "{r:?}");
    let r = ask(
        &s.laptop,
        b"GET /headers HTTP/1.1\r\nHost: shop.localhost:8800\r\nConnection: close\r\nConnection: x-secret, caf\xe9\r\nX-Secret: 1\r\n\r\n",
    );
    let seen: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(seen.get("x-secret"), None, "{seen}");
    assert_eq!(s.tunnel.terminate(&s.server), 0);
}

/// A request in absolute form is routed by its `Host` header, not by its target (RFC 9112 3.2.2:
/// the target's host wins): `GET http://blog.localhost:8800/` with `Host: shop...` reaches shop,
/// `GET http://other.example/` reaches shop too instead of being refused, and without `Host` the
/// app is not told the name (no `X-Forwarded-Host`).
#[test]
fn attack_a_request_in_absolute_form_goes_to_the_host_its_target_names() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop", "blog"]);
    let blog = sb.port(1);
    let r = get(
        &s.laptop,
        PROXY,
        "shop.localhost:8800",
        "http://blog.localhost:8800/",
        &[],
    );
    assert_eq!(r.text(), format!("hello from blog on {blog}\n"));
    let r = get(
        &s.laptop,
        PROXY,
        "shop.localhost:8800",
        "http://other.example/headers",
        &[],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = ask(
        &s.laptop,
        b"GET http://shop.localhost:8800/headers HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let seen: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(seen["x-forwarded-host"], "shop.localhost:8800", "{seen}");
    assert_eq!(s.tunnel.terminate(&s.server), 0);
}

/// `GET http://shop.localhost:8800?x=1` (a query, no path: a valid absolute form) is answered 400
/// "a request target this proxy cannot pass on": `?x=1` alone does not parse as a target.
#[test]
fn attack_an_absolute_target_with_a_query_and_no_path_is_passed_on() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop"]);
    let r = get(
        &s.laptop,
        PROXY,
        "shop.localhost:8800",
        "http://shop.localhost:8800?x=1",
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), format!("hello from shop on {}\n", sb.port(0)));
    assert_eq!(s.tunnel.terminate(&s.server), 0);
}

/// A request with an `Upgrade` header is passed on with none of its hop-by-hop headers removed:
/// the headers its `Connection` names, `Keep-Alive`, reach the app.
#[test]
fn attack_a_request_with_upgrade_keeps_its_connection_headers_on_its_side() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop"]);
    let r = get(
        &s.laptop,
        PROXY,
        "shop.localhost:8800",
        "/headers",
        &[
            "Upgrade: foo",
            "Connection: x-secret",
            "X-Secret: 1",
            "Keep-Alive: timeout=9",
        ],
    );
    let seen: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(seen.get("x-secret"), None, "{seen}");
    assert_eq!(seen.get("keep-alive"), None, "{seen}");
    assert_eq!(s.tunnel.terminate(&s.server), 0);
}

/// The app answers a `HEAD` with `Content-Length` twice, the same value (which a recipient may
/// take as one): hyper refuses to write that head, and the browser's connection is closed with
/// no answer at all.
#[test]
fn attack_a_head_answer_with_its_length_twice_reaches_the_browser() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop"]);
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n";
    let path = raw_path(answer);
    let r = s.laptop.ns.enter(|| {
        let mut c = TcpStream::connect(("127.0.0.1", PROXY)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.write_all(
            format!(
                "HEAD {path} HTTP/1.1\r\nHost: shop.localhost:8800\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let mut all = Vec::new();
        let _ = c.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    assert!(r.starts_with("HTTP/1.1 200 "), "{r:?}");
    assert!(
        r.to_ascii_lowercase().contains("content-length: 2\r\n"),
        "{r:?}"
    );
    assert_eq!(s.tunnel.terminate(&s.server), 0);
}

/// A `GET` with a chunked body and `Connection: Transfer-Encoding`: the proxy removes
/// `Transfer-Encoding`, hyper then sends a `GET` of unknown length with no body at all, and the
/// body is lost (`Content-Length` named the same way is harmless: the body knows its length).
#[test]
fn attack_a_body_survives_a_connection_header_naming_its_framing() {
    let sb = Sandbox::new();
    let mut s = setup(&sb, &["shop"]);
    let r = ask(
        &s.laptop,
        b"GET /echo HTTP/1.1\r\nHost: shop.localhost:8800\r\nConnection: close, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "GET hello"));
    assert_eq!(s.tunnel.terminate(&s.server), 0);
}
