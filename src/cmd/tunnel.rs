//! `pm2-port tunnel HOST`: ask HOST for its apps over ssh, forward each one's port through one
//! control master, keep the forwards up to date with `--watch`, reconnect when the link breaks,
//! and close everything on Ctrl-C or SIGTERM. What the server sends (app names, stderr) reaches
//! the terminal through [`escape`]; JSON events carry it as it is.

use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;

use crate::error::InputError;
use crate::sys::proc::{self, RunError};
use crate::sys::ssh::{self, Master, Ssh};
use crate::text::escape;
use crate::tunnel::plan::{self, Forward, RemoteApp};

#[derive(Debug, Args)]
pub struct TunnelArgs {
    /// The server, as ssh knows it (a name from ~/.ssh/config, user@host, ...)
    pub host: String,

    /// An ssh configuration file (ssh's -F)
    #[arg(short = 'F', value_name = "SSH_CONFIG")]
    pub config: Option<PathBuf>,

    /// An ssh option (ssh's -o), repeatable
    #[arg(short = 'o', value_name = "SSH_OPTION")]
    pub options: Vec<String>,

    /// Keep polling the server: forward apps that come online, cancel those that go away
    #[arg(long)]
    pub watch: bool,

    /// Seconds between polls with --watch
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub interval: u64,

    /// One JSON object per line on stdout (forward, cancel, ready events)
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &TunnelArgs) -> Result<()> {
    if args.host.is_empty() || args.host.starts_with('-') {
        return Err(InputError::Usage(format!(
            "`{}` is not a host: a HOST starting with `-` would be read by ssh as an option",
            escape(&args.host)
        ))
        .into());
    }
    if args.interval == 0 {
        return Err(InputError::Usage("`--interval` must be at least 1 second".into()).into());
    }
    let list_timeout = list_timeout()?;
    // A short path: control sockets are limited to about 100 bytes.
    let dir = tempfile::Builder::new()
        .prefix("pm2-port-tunnel-")
        .tempdir_in("/tmp")
        .context("cannot create a directory for the ssh control socket")?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot handle Ctrl-C and SIGTERM")?;
    }
    let ssh = Ssh {
        host: args.host.clone(),
        config: args.config.clone(),
        options: args.options.clone(),
        control: dir.path().join("ctl"),
        batch: !std::io::stdin().is_terminal(),
        list_timeout,
        stop,
    };
    let result = ssh
        .connect(Duration::from_secs(120))
        .and_then(|mut master| {
            let mut tunnel = Tunnel {
                ssh: &ssh,
                json: args.json,
                forwards: Vec::new(),
            };
            let result = tunnel.serve(&mut master, args);
            ssh.close(&mut master);
            result
        });
    match result {
        // Ctrl-C or SIGTERM cut a wait short: the end asked for.
        Err(err) if proc::is_stopped(&err) => Ok(()),
        other => other,
    }
}

/// `PM2_PORT_TUNNEL_LIST_TIMEOUT` (whole seconds, at least 1), else 30 s.
fn list_timeout() -> Result<Duration> {
    const VAR: &str = "PM2_PORT_TUNNEL_LIST_TIMEOUT";
    match std::env::var(VAR) {
        Ok(s) if !s.trim().is_empty() => match s.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
            _ => Err(InputError::Usage(format!(
                "{VAR}: `{}` is not a number of seconds (at least 1)",
                escape(&s)
            ))
            .into()),
        },
        _ => Ok(ssh::LIST_TIMEOUT),
    }
}

struct Tunnel<'a> {
    ssh: &'a Ssh,
    json: bool,
    forwards: Vec<Forward>,
}

impl Tunnel<'_> {
    fn serve(&mut self, master: &mut Master, args: &TunnelArgs) -> Result<()> {
        let apps = self.query()?;
        if apps.is_empty() && !args.watch {
            bail!(
                "`{}` has no online PM2 app with a port (use `--watch` to wait for some)",
                self.ssh.host_shown()
            );
        }
        if !self.json {
            say!("tunnel to `{}`; Ctrl-C to close it", self.ssh.host_shown());
        }
        self.apply(&apps)?;
        if self.json {
            outln!("{}", json!({"event": "ready"}))?;
        } else if apps.is_empty() {
            say!("no apps yet; watching");
        }
        let interval = Duration::from_secs(args.interval);
        let mut polled = Instant::now();
        while !self.ssh.stopping() {
            if !master.alive() {
                *master = self.reconnect(master)?;
                continue;
            }
            if args.watch && polled.elapsed() >= interval {
                polled = Instant::now();
                match self.query() {
                    Ok(apps) => self.apply(&apps)?,
                    Err(err) if proc::is_stopped(&err) => break,
                    Err(err) if master.alive() => warning(&err),
                    Err(_) => continue,
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn query(&self) -> Result<Vec<RemoteApp>> {
        let out = self.ssh.list().map_err(|err| {
            let asking = format!("asking `{}` for its apps", self.ssh.host_shown());
            if matches!(err.downcast_ref(), Some(RunError::TimedOut { .. })) {
                anyhow!(
                    "{asking}: no answer within {}s (a stuck `pm2-port list` or `pm2 jlist` \
                     there? PM2_PORT_TUNNEL_LIST_TIMEOUT=SECS waits longer)",
                    self.ssh.list_timeout.as_secs()
                )
            } else {
                err.context(asking)
            }
        })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = escape(stderr.trim());
        if !out.status.success() {
            bail!(
                "asking `{}` for its apps failed ({}): {stderr}",
                self.ssh.host_shown(),
                out.status,
            );
        }
        // serde's messages may quote the server's text too.
        plan::parse_apps(&String::from_utf8_lossy(&out.stdout))
            .map_err(|err| anyhow!("{}", escape(&format!("{err:#}"))))
            .with_context(|| format!("`{}` answered: {stderr}", self.ssh.host_shown()))
    }

    /// Cancel the forwards of apps that went away, forward the new ones.
    fn apply(&mut self, apps: &[RemoteApp]) -> Result<()> {
        let (cancel, add) = plan::diff(&self.forwards, apps);
        for f in cancel {
            if let Err(err) = self.ssh.cancel(f.local_port, f.remote_port)
                && !proc::is_stopped(&err)
            {
                warning(&err);
            }
            self.forwards.retain(|x| x != &f);
            if self.json {
                outln!(
                    "{}",
                    json!({"event": "cancel", "name": f.name, "local_port": f.local_port})
                )?;
            } else {
                outln!(
                    "- {} (was http://localhost:{})",
                    escape(&f.name),
                    f.local_port
                )?;
            }
        }
        for app in add {
            self.add(&app)?;
        }
        Ok(())
    }

    fn add(&mut self, app: &RemoteApp) -> Result<()> {
        let used: Vec<u16> = self.forwards.iter().map(|f| f.local_port).collect();
        let Some(local) = plan::local_port(app.port, &used, ssh::local_free) else {
            warn!(
                "no free local port for `{}` ({})",
                escape(&app.name),
                app.port
            );
            return Ok(());
        };
        if let Err(err) = self.ssh.forward(local, app.port) {
            if !proc::is_stopped(&err) {
                warning(&err);
            }
            return Ok(());
        }
        let f = Forward {
            name: app.name.clone(),
            remote_port: app.port,
            local_port: local,
        };
        if self.json {
            outln!(
                "{}",
                json!({"event": "forward", "name": f.name, "remote_port": f.remote_port, "local_port": f.local_port})
            )?;
        } else if local == app.port {
            outln!("  http://localhost:{local}  {}", escape(&f.name))?;
        } else {
            outln!(
                "  http://localhost:{local} → {} ({})",
                escape(&f.name),
                f.remote_port
            )?;
        }
        self.forwards.push(f);
        Ok(())
    }

    /// Reconnect with backoff, then put the forwards back on the same local ports.
    fn reconnect(&mut self, old: &mut Master) -> Result<Master> {
        self.ssh.close(old);
        let mut delay = Duration::from_secs(1);
        let said = old.said();
        loop {
            warn!(
                "the connection to `{}` broke{}; reconnecting in {}s",
                self.ssh.host_shown(),
                said.lines()
                    .last()
                    .map_or(String::new(), |l| format!(" ({})", escape(l))),
                delay.as_secs()
            );
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if self.ssh.stopping() {
                    return Err(RunError::Stopped.into());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            match self.ssh.connect(Duration::from_secs(30)) {
                Ok(master) => {
                    say!("reconnected to `{}`", self.ssh.host_shown());
                    let previous = std::mem::take(&mut self.forwards);
                    for f in previous {
                        if self.ssh.forward(f.local_port, f.remote_port).is_ok() {
                            self.forwards.push(f);
                        } else {
                            self.add(&RemoteApp {
                                name: f.name,
                                port: f.remote_port,
                            })?;
                        }
                    }
                    return Ok(master);
                }
                Err(err) if proc::is_stopped(&err) => return Err(err),
                Err(err) => {
                    warning(&err);
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// A warning about an error that may quote the server, shown escaped.
fn warning(err: &anyhow::Error) {
    warn!("{}", escape(&format!("{err:#}")));
}
