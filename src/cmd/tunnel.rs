//! `pm2-port tunnel HOST...`: follow each server's apps (a thread per host, `sys::follow`: its
//! control master and the `list --json --watch` stream over it), forward each online app's port
//! through that host's master, on a local port no other forward has, and close everything on
//! Ctrl-C or SIGTERM. What a server sends (app names, stderr) reaches the terminal escaped; JSON
//! events carry names and hosts as they are, and their `message` fields as the terminal shows
//! them (escaped).

use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;

use crate::error::InputError;
use crate::sys::follow::{self, Event, Mode, Tagged};
use crate::sys::proc;
use crate::sys::proxy::Proxy;
use crate::sys::ssh::{self, Ssh};
use crate::text::escape;
use crate::tunnel::names::{self, AppIn, HostIn, Routes};
use crate::tunnel::plan::{self, Apps, Forward, Listed, RemoteApp};

#[derive(Debug, Args)]
pub struct TunnelArgs {
    /// The servers, as ssh knows them (names from ~/.ssh/config, user@host, ...)
    #[arg(required = true, value_name = "HOST")]
    pub hosts: Vec<String>,

    /// An ssh configuration file (ssh's -F)
    #[arg(short = 'F', value_name = "SSH_CONFIG")]
    pub config: Option<PathBuf>,

    /// An ssh option (ssh's -o), repeatable
    #[arg(short = 'o', value_name = "SSH_OPTION")]
    pub options: Vec<String>,

    /// Forward the apps online now and keep those forwards, without following the servers (by
    /// default the tunnel follows them: apps that come online are forwarded, those that go away
    /// cancelled)
    #[arg(long)]
    pub once: bool,

    /// Follow the servers: the default (the flag is kept for scripts written for 0.1)
    #[arg(long, hide = true, conflicts_with = "once")]
    pub watch: bool,

    /// Seconds between two listings of a server that cannot stream its apps (its pm2-port has no
    /// `list --watch`, or only PM2 is installed there)
    #[arg(long, value_name = "SECS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub interval: u64,

    /// One JSON object per line on stdout (proxy, forward, cancel, host and ready events)
    #[arg(long)]
    pub json: bool,

    /// The proxy's port: every app by name at http://NAME.localhost:PORT, and an index of them all
    /// at http://localhost:PORT/ (the proxy is on by default, on port 8800 when it is free)
    #[arg(long, value_name = "PORT")]
    pub proxy: Option<u16>,

    /// No proxy: only the port forwards
    #[arg(long, conflicts_with = "proxy")]
    pub no_proxy: bool,
}

/// Refuse two hosts that are one server under two names (two `Host` aliases, or a name and its
/// address): the tunnel would hold two connections to it and show its apps twice.
fn same_servers(hosts: &[Ssh]) -> Result<()> {
    if hosts.len() < 2 {
        return Ok(());
    }
    // At once: a configuration's `Match exec` may make each `ssh -G` slow.
    let seen: Vec<Option<String>> = std::thread::scope(|scope| {
        let each: Vec<_> = hosts
            .iter()
            .map(|h| scope.spawn(move || h.destination()))
            .collect();
        each.into_iter().map(|t| t.join().ok().flatten()).collect()
    });
    for (i, to) in seen.iter().enumerate() {
        let Some(to) = to else { continue };
        if let Some(j) = seen[..i].iter().position(|o| o.as_ref() == Some(to)) {
            return Err(InputError::Usage(format!(
                "`{}` and `{}` are the same server ({}, by `ssh -G`): give it once",
                escape(&hosts[j].host),
                escape(&hosts[i].host),
                escape(to)
            ))
            .into());
        }
    }
    Ok(())
}

/// The proxy's port unless told otherwise.
pub const PROXY_PORT: u16 = 8800;

pub fn run(args: &TunnelArgs) -> Result<()> {
    for (i, host) in args.hosts.iter().enumerate() {
        if host.is_empty() || host.starts_with('-') {
            return Err(InputError::Usage(format!(
                "`{}` is not a host: a HOST starting with `-` would be read by ssh as an option",
                escape(host)
            ))
            .into());
        }
        if args.hosts[..i].contains(host) {
            return Err(InputError::Usage(format!("`{}` is given twice", escape(host))).into());
        }
    }
    let list_timeout = list_timeout()?;
    proc::raise_open_files();
    let proxy = start_proxy(args)?;
    // A short path: control sockets are limited to about 100 bytes.
    let dir = tempfile::Builder::new()
        .prefix("pm2-port-tunnel-")
        .tempdir_in("/tmp")
        .context("cannot create a directory for the ssh control sockets")?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot handle Ctrl-C and SIGTERM")?;
    }
    let batch = !std::io::stdin().is_terminal();
    let prompts = Arc::new(std::sync::Mutex::new(()));
    let hosts: Vec<Ssh> = args
        .hosts
        .iter()
        .enumerate()
        .map(|(i, host)| Ssh {
            host: host.clone(),
            config: args.config.clone(),
            options: args.options.clone(),
            control: dir.path().join(format!("ctl{i}")),
            batch,
            list_timeout,
            stop: Arc::clone(&stop),
            prompts: Arc::clone(&prompts),
        })
        .collect();
    same_servers(&hosts)?;
    let mode = if args.once {
        Mode::Once
    } else {
        Mode::Live {
            interval: Duration::from_secs(args.interval),
        }
    };

    // Bounded: a host that floods its events waits for the tunnel (and its server for it).
    let (tx, rx) = mpsc::sync_channel(64);
    let result = std::thread::scope(|scope| {
        for (i, ssh) in hosts.iter().enumerate() {
            let tx = tx.clone();
            scope.spawn(move || follow::follow(ssh, i, mode, tx));
        }
        drop(tx);
        let mut tunnel = Tunnel {
            hosts: hosts.iter().map(Host::new).collect(),
            json: args.json,
            once: args.once,
            interval: args.interval,
            forwards: Vec::new(),
            ready: false,
            hello: false,
            proxy: proxy.as_ref(),
        };
        let result = tunnel.serve(&rx, &stop);
        // The threads end on this: each closes its master, and its forwards with it.
        stop.store(true, Ordering::Relaxed);
        result
    });
    match result {
        // Ctrl-C or SIGTERM cut a wait short: the end asked for.
        Err(err) if proc::is_stopped(&err) => Ok(()),
        other => other,
    }
}

/// The proxy as asked: `--proxy PORT` must start (port 0: any free port); by default it starts on
/// [`PROXY_PORT`] when that is free, else the tunnel goes on without it and says so.
fn start_proxy(args: &TunnelArgs) -> Result<Option<Proxy>> {
    if args.no_proxy {
        return Ok(None);
    }
    match (Proxy::start(args.proxy.unwrap_or(PROXY_PORT)), args.proxy) {
        (Ok(proxy), _) => Ok(Some(proxy)),
        (Err(err), Some(_)) => Err(anyhow!("cannot start the proxy: {err}")),
        (Err(err), None) => {
            warn!(
                "no proxy: {err} (`--proxy PORT` picks another port, `--no-proxy` says you do \
                 not want it)"
            );
            Ok(None)
        }
    }
}

/// `PM2_PORT_TUNNEL_LIST_TIMEOUT` (whole seconds, at least 1), else 30 s.
fn list_timeout() -> Result<Duration> {
    const VAR: &str = "PM2_PORT_TUNNEL_LIST_TIMEOUT";
    match std::env::var(VAR) {
        Ok(s) if !s.trim().is_empty() => match s.trim().parse::<u64>() {
            Ok(secs) if (1..=86400).contains(&secs) => Ok(Duration::from_secs(secs)),
            _ => Err(InputError::Usage(format!(
                "{VAR}: `{}` is not a number of seconds (1 to 86400)",
                escape(&s)
            ))
            .into()),
        },
        _ => Ok(ssh::LIST_TIMEOUT),
    }
}

/// The tunnel's view of one host.
struct Host<'a> {
    ssh: &'a Ssh,
    /// Its apps were listed once.
    answered: bool,
    /// Its first attempt failed (the error, until it is returned or shown).
    failed: bool,
    /// A master came up once: the next one is a reconnection.
    connected: bool,
    /// Its apps as last listed, whatever their status.
    apps: Vec<Listed>,
    /// Its link as the index page shows it.
    state: &'static str,
}

impl<'a> Host<'a> {
    fn new(ssh: &'a Ssh) -> Host<'a> {
        Host {
            ssh,
            answered: false,
            failed: false,
            connected: false,
            apps: Vec::new(),
            state: "connecting",
        }
    }

    fn name(&self) -> &str {
        &self.ssh.host
    }
}

struct Tunnel<'a> {
    hosts: Vec<Host<'a>>,
    json: bool,
    once: bool,
    /// Seconds between two listings of a host that cannot stream.
    interval: u64,
    /// Every host's forwards in place (or to put back when its link comes back).
    forwards: Vec<Forward>,
    /// `ready` was said: every host answered or failed once.
    ready: bool,
    /// `tunnel to ...` was said.
    hello: bool,
    proxy: Option<&'a Proxy>,
}

impl Tunnel<'_> {
    fn serve(&mut self, rx: &Receiver<Tagged>, stop: &AtomicBool) -> Result<()> {
        if let (true, Some(proxy)) = (self.json, self.proxy) {
            let url = format!("http://localhost{}/", names::port_suffix(proxy.port));
            outln!(
                "{}",
                json!({"event": "proxy", "port": proxy.port, "url": url})
            )?;
        }
        let mut failures: Vec<anyhow::Error> = Vec::new();
        let mut pending: std::collections::VecDeque<Tagged> = std::collections::VecDeque::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let Tagged { host, event } = match pending.pop_front() {
                Some(tagged) => tagged,
                None => match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(tagged) => {
                        // What else is there already: an app list that a later one of the same
                        // host replaces is skipped (a flapping app costs no forward each time).
                        pending.push_back(tagged);
                        pending.extend(rx.try_iter().take(256));
                        coalesce(&mut pending);
                        continue;
                    }
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                },
            };
            match event {
                Event::Failed(err) => {
                    self.hosts[host].failed = true;
                    self.hosts[host].state = "down";
                    self.sync_proxy();
                    // With several hosts the tunnel goes on without this one for now: say so.
                    if self.json && self.hosts.len() > 1 {
                        let message = format!("{err:#}");
                        outln!(
                            "{}",
                            json!({"event": "host", "host": self.hosts[host].name(), "state": "down", "message": message, "retry_in": 1})
                        )?;
                    }
                    failures.push(err);
                }
                event => self.on(host, event)?,
            }
            if !self.ready && self.hosts.iter().all(|h| h.answered || h.failed) {
                if self.hosts.iter().all(|h| h.failed) {
                    let last = failures
                        .pop()
                        .unwrap_or_else(|| anyhow!("no host answered"));
                    for err in failures {
                        eprintln!("error: {err:#}");
                    }
                    return Err(last);
                }
                for err in failures.drain(..) {
                    warn!("{err:#}; trying again");
                }
                self.ready()?;
            }
        }
    }

    /// `tunnel to ...`, said before the first line about a forward or a host: a tunnel that ends
    /// on its first error says only that.
    fn hello(&mut self) {
        if !self.hello && !self.json {
            say!("tunnel to {}; Ctrl-C to close it", self.names().join(", "));
            if let Some(proxy) = self.proxy {
                say!(
                    "every app at http://NAME.localhost{p}; the list at http://localhost{p}/",
                    p = names::port_suffix(proxy.port)
                );
            }
        }
        self.hello = true;
    }

    /// The hosts, quoted for the terminal.
    fn names(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|h| format!("`{}`", h.ssh.host_shown()))
            .collect()
    }

    /// Every host answered or failed once.
    fn ready(&mut self) -> Result<()> {
        self.ready = true;
        if self.once && self.forwards.is_empty() {
            let names = self.names();
            bail!(
                "{} {} no online PM2 app with a port (leave out `--once` to wait for some)",
                names.join(", "),
                if names.len() == 1 { "has" } else { "have" }
            );
        }
        self.hello();
        if self.json {
            outln!("{}", json!({"event": "ready"}))?;
        } else if self.forwards.is_empty() {
            say!("no apps yet; watching");
        }
        Ok(())
    }

    fn on(&mut self, host: usize, event: Event) -> Result<()> {
        let name = self.hosts[host].name().to_string();
        let shown = escape(&name).into_owned();
        match event {
            Event::Apps(Apps { online, all }) => {
                self.hosts[host].answered = true;
                self.hosts[host].apps = all;
                self.apply(host, &online)?;
            }
            Event::Up => {
                self.hosts[host].state = "connected";
                let again = std::mem::replace(&mut self.hosts[host].connected, true);
                if again {
                    if self.json {
                        outln!("{}", json!({"event": "host", "host": name, "state": "up"}))?;
                    }
                    say!("reconnected to `{shown}`");
                    self.restore(host)?;
                }
            }
            Event::Live => {
                self.hosts[host].state = "live";
                if self.json {
                    outln!(
                        "{}",
                        json!({"event": "host", "host": name, "state": "live"})
                    )?;
                } else if self.hosts.len() > 1 {
                    // With one host, the forwards that follow say as much.
                    self.hello();
                    say!("`{shown}`: following its apps live");
                }
            }
            Event::Polling(why) => {
                self.hosts[host].state = "polling";
                self.hello();
                if self.json {
                    outln!(
                        "{}",
                        json!({"event": "host", "host": name, "state": "polling", "message": why})
                    )?;
                }
                // `why` is escaped already (note! would escape it twice).
                say!(
                    "note: `{shown}` cannot stream its apps ({why}); listing them every {}s \
                     instead (a pm2-port with `list --watch` there follows them live)",
                    self.interval
                );
            }
            Event::Down { reason, retry } => {
                self.hosts[host].state = "down";
                self.hello();
                if self.json {
                    outln!(
                        "{}",
                        json!({"event": "host", "host": name, "state": "down", "message": reason, "retry_in": retry.as_secs()})
                    )?;
                }
                warn!("{reason}; reconnecting in {}s", retry.as_secs());
            }
            Event::Warning(text) => warn!("{text}"),
            Event::Note(text) => say!("{text}"),
            Event::Failed(_) => unreachable!("handled by serve"),
        }
        self.sync_proxy();
        Ok(())
    }

    /// The proxy serves what the tunnel knows now: called before an event about a forward is
    /// printed, so that whoever acts on the event finds the proxy ready.
    fn sync_proxy(&self) {
        if let Some(proxy) = self.proxy {
            proxy.update(self.routes());
        }
    }

    /// The proxy's table: every app of every host, with its forward's local port.
    fn routes(&self) -> Routes {
        let hosts: Vec<HostIn> = self
            .hosts
            .iter()
            .map(|h| HostIn {
                host: h.name().to_string(),
                state: h.state.to_string(),
                apps: h
                    .apps
                    .iter()
                    .map(|a| AppIn {
                        name: a.name.clone(),
                        status: a.status.clone(),
                        remote_port: a.port,
                        local_port: self
                            .forwards
                            .iter()
                            .find(|f| {
                                f.host == h.name()
                                    && f.name == a.name
                                    && Some(f.remote_port) == a.port
                            })
                            .map(|f| f.local_port),
                    })
                    .collect(),
            })
            .collect();
        names::routes(&hosts)
    }

    /// The named URL of a forward, with the proxy.
    fn url_of(&self, f: &Forward) -> Option<String> {
        let proxy = self.proxy?;
        let routes = self.routes();
        let site = routes
            .sites
            .iter()
            .find(|s| s.host == f.host && s.name == f.name)?;
        Some(routes.url(site, proxy.port))
    }

    /// Put a host's forwards back after a reconnection, on the same local ports where they are
    /// still free.
    fn restore(&mut self, host: usize) -> Result<()> {
        let name = self.hosts[host].name().to_string();
        let (previous, others): (Vec<Forward>, Vec<Forward>) = std::mem::take(&mut self.forwards)
            .into_iter()
            .partition(|f| f.host == name);
        self.forwards = others;
        for f in previous {
            if self.hosts[host]
                .ssh
                .forward(f.local_port, f.remote_port)
                .is_ok()
            {
                self.forwards.push(f);
            } else {
                // Its old local port is gone (taken meanwhile): said as for any cancel, then
                // forwarded anew on another.
                self.said_cancelled(&f)?;
                self.add(
                    host,
                    &RemoteApp {
                        name: f.name,
                        port: f.remote_port,
                    },
                )?;
            }
        }
        Ok(())
    }

    fn said_cancelled(&self, f: &Forward) -> Result<()> {
        if self.json {
            outln!(
                "{}",
                json!({"event": "cancel", "host": f.host, "name": f.name, "local_port": f.local_port})
            )?;
        } else {
            outln!(
                "- {}{} (was http://localhost:{})",
                escape(&f.name),
                self.on_host(&f.host),
                f.local_port
            )?;
        }
        Ok(())
    }

    /// Cancel the forwards of a host's apps that went away, forward its new ones.
    fn apply(&mut self, host: usize, apps: &[RemoteApp]) -> Result<()> {
        let name = self.hosts[host].name().to_string();
        let (cancel, add) = plan::diff(&self.forwards, &name, apps);
        for f in cancel {
            if let Err(err) = self.hosts[host].ssh.cancel(f.local_port, f.remote_port)
                && !proc::is_stopped(&err)
            {
                warning(&err);
            }
            self.forwards.retain(|x| x != &f);
            self.sync_proxy();
            self.said_cancelled(&f)?;
        }
        for app in add {
            self.add(host, &app)?;
        }
        Ok(())
    }

    /// ` on `HOST`` when there are several hosts.
    fn on_host(&self, host: &str) -> String {
        if self.hosts.len() > 1 {
            format!(" on `{}`", escape(host))
        } else {
            String::new()
        }
    }

    fn add(&mut self, host: usize, app: &RemoteApp) -> Result<()> {
        let mut used: Vec<u16> = self.forwards.iter().map(|f| f.local_port).collect();
        let name = self.hosts[host].name().to_string();
        // A port found free may be taken before ssh binds it: the next one is tried, a few times.
        let mut tries = 0;
        let local = loop {
            let Some(local) = plan::local_port(app.port, &used, ssh::local_free) else {
                warn!(
                    "no free local port for `{}`{} ({})",
                    escape(&app.name),
                    self.on_host(&name),
                    app.port
                );
                return Ok(());
            };
            match self.hosts[host].ssh.forward(local, app.port) {
                Ok(()) => break local,
                Err(err) if proc::is_stopped(&err) => return Ok(()),
                Err(err) if tries < 3 && !ssh::local_free(local) => {
                    verbose!("{}; trying another port", escape(&format!("{err:#}")));
                    used.push(local);
                    tries += 1;
                }
                Err(err) => {
                    warning(&err);
                    return Ok(());
                }
            }
        };
        let f = Forward {
            host: name,
            name: app.name.clone(),
            remote_port: app.port,
            local_port: local,
        };
        let on = self.on_host(&f.host);
        self.hello();
        self.forwards.push(f);
        self.sync_proxy();
        let f = &self.forwards[self.forwards.len() - 1];
        let url = self.url_of(f);
        if self.json {
            let mut event = json!({"event": "forward", "host": f.host, "name": f.name, "remote_port": f.remote_port, "local_port": f.local_port});
            if let Some(url) = url {
                event["url"] = url.into();
            }
            outln!("{event}")?;
        } else {
            let named = url.map_or(String::new(), |u| format!("{u}  "));
            if local == app.port {
                outln!("  {named}http://localhost:{local}  {}{on}", escape(&f.name))?;
            } else {
                outln!(
                    "  {named}http://localhost:{local} → {}{on} ({})",
                    escape(&f.name),
                    f.remote_port
                )?;
            }
        }
        Ok(())
    }
}

/// Drop each host's app lists that a later one of the same host replaces with nothing of that host
/// in between.
fn coalesce(events: &mut std::collections::VecDeque<Tagged>) {
    let mut keep = vec![true; events.len()];
    for i in 0..events.len() {
        if !matches!(events[i].event, Event::Apps(_)) {
            continue;
        }
        let host = events[i].host;
        if let Some(next) = events.iter().skip(i + 1).find(|t| t.host == host) {
            keep[i] = !matches!(next.event, Event::Apps(_));
        }
    }
    let mut i = 0;
    events.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

/// A warning about an error that may quote the server, shown escaped.
fn warning(err: &anyhow::Error) {
    warn!("{}", escape(&format!("{err:#}")));
}
