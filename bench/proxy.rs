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
//! Flags: `--secs N` (5 per round), `--rounds N` (3 per target and concurrency), `--strict` (exit 1
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
    strict: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        secs: 5,
        rounds: 3,
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
            "--strict" => o.strict = true,
            // cargo's harness flags, when run through `cargo test`.
            "--nocapture" | "--quiet" | "-q" => {}
            other => panic!("unknown flag {other}: --secs N, --rounds N, --strict"),
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
fn tunnel(sb: &Sandbox, laptop: &Laptop, server: &Server) -> (Child, u16) {
    let mut child = laptop
        .cmd(
            sb,
            [
                "tunnel",
                "-F",
                server.config().to_str().unwrap(),
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

fn main() {
    let o = opts();
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let port = sb.port(0);
    server.start_fixture("proxy-app", "shop", port);
    let (mut child, local) = tunnel(&sb, &laptop, &server);

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
        "  direct: http://127.0.0.1:{local}/ (the forward)   proxy: http://shop.localhost:8800/ (the proxy, then the forward)\n"
    );
    println!(
        "  {:<6} {:<7} {:>9} {:>9} {:>9}",
        "conns", "target", "req/s", "p50", "p99"
    );
    let mut ok = true;
    let secs = Duration::from_secs(o.secs);
    let warm = Duration::from_millis(500);
    for conns in [1usize, 8] {
        let (mut direct, mut proxied) = (Vec::new(), Vec::new());
        for _ in 0..o.rounds {
            let host = format!("localhost:{local}");
            direct.extend(laptop.ns.enter(|| load(local, &host, conns, warm, secs)));
            proxied.extend(
                laptop
                    .ns
                    .enter(|| load(8800, "shop.localhost:8800", conns, warm, secs)),
            );
        }
        let total = (o.secs as usize * o.rounds) as f64;
        let (d, p) = (figures(direct, total), figures(proxied, total));
        for (name, f) in [("direct", &d), ("proxy", &p)] {
            println!(
                "  {conns:<6} {name:<7} {:>9.0} {:>7.2}ms {:>7.2}ms",
                f.rps,
                ms(f.p50),
                ms(f.p99)
            );
        }
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
