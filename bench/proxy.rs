//! Proxy benchmark: requests through `tunnel`'s proxy (`http://shop.localhost:8800/`) against the
//! same SSH forward without it (`http://127.0.0.1:PORT/`), side by side in one run
//! (`bash bench/proxy.sh`, or `cargo test --release --test proxy-bench -- [FLAGS]` as root).
//!
//! A laptop and a server in network namespaces of their own (the test suite's helpers), the
//! server's app `fixtures/proxy-app` (a small page: 30 bytes and a cookie), one tunnel. For each
//! concurrency (1 and 8 keep-alive connections), rounds alternate between the two targets; each
//! round sends requests back to back on every connection for `--secs` seconds (after a warm-up)
//! and records each request's latency. It prints requests per second, p50 and p99 of both, and
//! what the proxy adds: p50 (acceptance: at most 1 ms more) and throughput (at least 80% of the
//! direct one).
//!
//! Two more rows, in the same rounds, say what any proxy at that place costs on this machine: a
//! plain TCP relay (tokio, bytes copied both ways: one more hop, no HTTP) and a bare hyper proxy
//! (hyper's server and client on tokio with nothing else: no routing, no header work beyond
//! `Host`). Both run in this process, on the laptop's side, to the same forward.
//!
//! Flags: `--secs N` (5 per round), `--rounds N` (3 per target and concurrency), `--delay MS`
//! (a link delay each way between laptop and server, added in the SSH connection's `ProxyCommand`
//! by this program: fractions allowed; 0 by default, a link as fast as a pipe), `--strict` (exit 1
//! when an acceptance line fails).

#![allow(dead_code)]

#[path = "../tests/integration/netns.rs"]
mod netns;
#[path = "../tests/integration/sshd.rs"]
mod sshd;
#[path = "../tests/integration/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::{Laptop, Server};
use crate::support::*;

struct Opts {
    secs: u64,
    rounds: usize,
    /// Each way, between laptop and server.
    delay: Duration,
    strict: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        secs: 5,
        rounds: 3,
        delay: Duration::ZERO,
        strict: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} takes a whole number"))
        };
        match a.as_str() {
            "--secs" => o.secs = num("--secs").max(1),
            "--rounds" => o.rounds = num("--rounds").max(1) as usize,
            "--delay" => {
                o.delay = args
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|ms| (0.0..=1000.0).contains(ms))
                    .map(|ms| Duration::from_secs_f64(ms / 1000.0))
                    .expect("--delay takes milliseconds, 0 to 1000")
            }
            "--strict" => o.strict = true,
            // cargo's harness flags, when run through `cargo test`.
            "--nocapture" | "--quiet" | "-q" => {}
            other => panic!("unknown flag {other}: --secs N, --rounds N, --delay MS, --strict"),
        }
    }
    o
}

/// One request's answer read off a keep-alive connection: the body's length.
fn answer(r: &mut BufReader<TcpStream>, line: &mut String) -> usize {
    let mut length = 0usize;
    line.clear();
    r.read_line(line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
    loop {
        line.clear();
        r.read_line(line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':')
            && n.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(r, &mut body).unwrap();
    length
}

/// `conns` keep-alive connections to 127.0.0.1:`port` with `Host: host`, each sending GET / back
/// to back until `until`; every request's latency. Runs on the calling thread's network
/// namespace (the threads it starts share it).
fn load(port: u16, host: &str, conns: usize, warm: Duration, secs: Duration) -> Vec<Duration> {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let start = Instant::now() + warm;
    let until = start + secs;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..conns)
            .map(|_| {
                let request = request.as_bytes();
                s.spawn(move || {
                    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_nodelay(true).unwrap();
                    let mut w = c.try_clone().unwrap();
                    let mut r = BufReader::new(c);
                    let mut line = String::new();
                    let mut lat = Vec::new();
                    loop {
                        let t = Instant::now();
                        if t >= until {
                            return lat;
                        }
                        w.write_all(request).unwrap();
                        answer(&mut r, &mut line);
                        if t >= start {
                            lat.push(t.elapsed());
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Figures {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn figures(mut lat: Vec<Duration>, secs: f64) -> Figures {
    lat.sort();
    Figures {
        rps: lat.len() as f64 / secs,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
    }
}

/// `pm2-port tunnel --json testhost` on the laptop, up to its `ready` event; the app's forward's
/// local port.
fn tunnel(sb: &Sandbox, laptop: &Laptop, config: &std::path::Path) -> (Child, u16) {
    let mut child = laptop
        .cmd(
            sb,
            [
                "tunnel",
                "-F",
                config.to_str().unwrap(),
                "--json",
                "testhost",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut local = None;
    for line in lines.by_ref() {
        let e: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if e["event"] == "forward" {
            local = e["local_port"].as_u64().map(|p| p as u16);
        }
        if e["event"] == "ready" {
            break;
        }
    }
    // Keep reading, so the tunnel never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, local.expect("the tunnel forwarded no app"))
}

/// `--delay-relay MICROS COMMAND...`, as a `ProxyCommand`: run COMMAND (the server's `sshd -i`)
/// and pass the bytes between it and ssh both ways, each chunk held MICROS microseconds: a link
/// with that delay each way (this kernel may have no `netem`). Order is kept, and each chunk is
/// written whole, as it was read.
fn delay_relay(micros: &str, command: &[String]) -> ! {
    use std::io::Read;
    use std::sync::mpsc;
    let delay = Duration::from_micros(micros.parse().expect("--delay-relay MICROS COMMAND..."));
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the relayed command");
    let pass = |mut from: Box<dyn Read + Send>, mut to: Box<dyn Write + Send>| {
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        std::thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx
                            .send((Instant::now() + delay, buf[..n].to_vec()))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        std::thread::spawn(move || {
            // Wake on time: the default timer slack (50 µs) would lengthen every delay.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1) };
            for (due, bytes) in rx {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if to.write_all(&bytes).and_then(|()| to.flush()).is_err() {
                    return;
                }
            }
        })
    };
    let up = pass(
        Box::new(std::io::stdin()),
        Box::new(child.stdin.take().unwrap()),
    );
    let down = pass(
        Box::new(child.stdout.take().unwrap()),
        Box::new(std::io::stdout()),
    );
    let _ = down.join();
    drop(up);
    let _ = child.kill();
    let _ = child.wait();
    std::process::exit(0)
}

/// The server's ssh config with its `ProxyCommand` behind `delay_relay`.
fn delayed_config(server: &Server, delay: Duration, dir: &std::path::Path) -> std::path::PathBuf {
    let me = std::env::current_exe().unwrap();
    let text = std::fs::read_to_string(server.config()).unwrap();
    let text = text.replace(
        "ProxyCommand ",
        &format!(
            "ProxyCommand {} --delay-relay {} ",
            me.display(),
            delay.as_micros()
        ),
    );
    assert!(text.contains("--delay-relay"), "no ProxyCommand in {text}");
    let path = dir.join("ssh_config_delayed");
    std::fs::write(&path, text).unwrap();
    path
}

/// A plain TCP relay on the laptop's loopback to its `127.0.0.1:to`: tokio on one thread, each
/// connection copied both ways, Nagle off. One more hop and no HTTP: the floor under any proxy.
/// Its port.
fn relay(laptop: &Laptop, to: u16) -> u16 {
    serve_on_laptop(laptop, move |a| async move {
        let mut a = a;
        let mut b = tokio::net::TcpStream::connect(("127.0.0.1", to)).await?;
        b.set_nodelay(true)?;
        tokio::io::copy_bidirectional(&mut a, &mut b).await?;
        Ok(())
    })
}

/// A bare hyper proxy on the laptop's loopback to its `127.0.0.1:to`: hyper's HTTP/1.1 server and
/// client on tokio (one thread), one upstream connection per connection, `Host` set and nothing
/// else. What the HTTP stack alone costs. Its port.
fn bare_hyper(laptop: &Laptop, to: u16) -> u16 {
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    serve_on_laptop(laptop, move |a| async move {
        let b = tokio::net::TcpStream::connect(("127.0.0.1", to)).await?;
        b.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake::<_, Incoming>(TokioIo::new(b)).await?;
        tokio::spawn(conn);
        let host = hyper::header::HeaderValue::from_str(&format!("localhost:{to}"))?;
        let sender = std::sync::Arc::new(tokio::sync::Mutex::new(sender));
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let (sender, host) = (sender.clone(), host.clone());
            async move {
                req.headers_mut().insert(hyper::header::HOST, host);
                let mut sender = sender.lock().await;
                sender.ready().await?;
                sender.send_request(req).await
            }
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(a), service)
            .await?;
        Ok(())
    })
}

/// Listen on the laptop's loopback and run `serve` for each connection (Nagle off) on a tokio
/// runtime of one thread, in the laptop's namespace. The port.
fn serve_on_laptop<F, Fut>(laptop: &Laptop, serve: F) -> u16
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static,
{
    laptop.ns.enter(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        // A thread started here stays in the laptop's namespace, as its connections must.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((a, _)) = listener.accept().await {
                    let _ = a.set_nodelay(true);
                    tokio::spawn(async move {
                        if let Err(e) = serve(a).await {
                            eprintln!("bench/proxy.rs: a reference connection failed: {e}");
                        }
                    });
                }
            })
        });
        port
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--delay-relay") && args.len() > 3 {
        delay_relay(&args[2], &args[3..]);
    }
    let o = opts();
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let port = sb.port(0);
    server.start_fixture("proxy-app", "shop", port);
    let config = if o.delay.is_zero() {
        server.config().to_path_buf()
    } else {
        delayed_config(&server, o.delay, sb.root.path())
    };
    let (mut child, local) = tunnel(&sb, &laptop, &config);
    let references = [
        ("relay", relay(&laptop, local)),
        ("hyper", bare_hyper(&laptop, local)),
    ];

    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    println!(
        "machine: Linux {}, {} cores, {cpu}",
        kernel.trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "one app (fixtures/proxy-app, GET / = 30 bytes and a cookie) behind one SSH forward; {} rounds of {} s per target and concurrency, alternating, keep-alive",
        o.rounds, o.secs
    );
    println!(
        "link between laptop and server: {}",
        if o.delay.is_zero() {
            "no delay added (ssh and sshd joined by a pipe)".to_string()
        } else {
            format!("{} ms each way (--delay)", o.delay.as_secs_f64() * 1000.0)
        }
    );
    println!(
        "  direct: http://127.0.0.1:{local}/ (the forward)   proxy: http://shop.localhost:8800/ (the proxy, then the forward)"
    );
    println!(
        "  for reference, to the same forward: relay (a plain TCP relay: one more hop, no HTTP), hyper (a bare hyper proxy: no routing, no header work)\n"
    );
    println!(
        "  {:<6} {:<7} {:>9} {:>9} {:>9}  {:>5}",
        "conns", "target", "req/s", "p50", "p99", "kept"
    );
    let mut ok = true;
    let secs = Duration::from_secs(o.secs);
    let warm = Duration::from_millis(500);
    let own = format!("localhost:{local}");
    let targets: Vec<(&str, u16, &str)> = [
        ("direct", local, own.as_str()),
        ("proxy", 8800, "shop.localhost:8800"),
    ]
    .into_iter()
    .chain(
        references
            .iter()
            .map(|&(name, port)| (name, port, own.as_str())),
    )
    .collect();
    for conns in [1usize, 8] {
        let mut lat = vec![Vec::new(); targets.len()];
        for _ in 0..o.rounds {
            for (i, &(_, port, host)) in targets.iter().enumerate() {
                lat[i].extend(laptop.ns.enter(|| load(port, host, conns, warm, secs)));
            }
        }
        let total = (o.secs as usize * o.rounds) as f64;
        let figs: Vec<Figures> = lat.into_iter().map(|l| figures(l, total)).collect();
        for (&(name, _, _), f) in targets.iter().zip(&figs) {
            println!(
                "  {conns:<6} {name:<7} {:>9.0} {:>7.2}ms {:>7.2}ms  {:>4.0}%",
                f.rps,
                ms(f.p50),
                ms(f.p99),
                f.rps / figs[0].rps * 100.0
            );
        }
        let (d, p) = (&figs[0], &figs[1]);
        let added = ms(p.p50) - ms(d.p50);
        let kept = p.rps / d.rps;
        let pass = added <= 1.0 && kept >= 0.8;
        ok &= pass;
        println!(
            "  {conns:<6} proxy adds {added:+.2} ms at p50, {:+.2} ms at p99, keeps {:.0}% of the requests per second: {}\n",
            ms(p.p99) - ms(d.p99),
            kept * 100.0,
            if pass { "ok" } else { "FAIL" }
        );
    }
    println!(
        "acceptance (p50 at most 1 ms more, at least 80% of the throughput): {}",
        if ok { "ok" } else { "FAIL" }
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    if o.strict && !ok {
        std::process::exit(1);
    }
}
