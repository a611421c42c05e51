//! Following one server for the tunnel: its control master, the `list --json --watch` stream over
//! it (one login shell per connection), or a `list --json` every interval from a server whose
//! pm2-port cannot stream, and a new master with backoff when the link breaks. Each host has a
//! thread running [`follow`]; what it learns reaches the tunnel as [`Event`]s on one channel,
//! tagged with the host's index. The forwards themselves are the tunnel's: it adds and cancels
//! them through the host's master.
//!
//! Texts in events are ready for a terminal: what the server said is escaped here.

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use crate::sys::proc::{self, RunError};
use crate::sys::ssh::{Master, Ssh, capture};
use crate::text::escape;
use crate::tunnel::plan::{self, Apps, StreamLine};

/// How often the thread looks at the master, the stream and the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to reach a host.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A stream that ran this long before it ended is started again after 1 s; one that ended sooner
/// waits twice as long as the last time.
const STREAM_SETTLED: Duration = Duration::from_secs(30);
/// The longest line the stream may send (a list of thousands of apps is far smaller): a longer
/// one ends the stream, so that a hostile server cannot fill the laptop's memory.
const MAX_LINE: usize = 8 << 20;
/// Lines read ahead of the follower: the server waits (TCP, SSH) when the laptop is behind.
const LINES_AHEAD: usize = 4;

/// What the tunnel wants from a host.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Follow its apps: the stream, else a listing every `interval`.
    Live { interval: Duration },
    /// List its apps once; afterwards only keep the link up.
    Once,
}

/// What a host's thread tells the tunnel.
#[derive(Debug)]
pub enum Event {
    /// The host's apps now.
    Apps(Apps),
    /// A master is up (the first, or a new one after a break): the host's forwards can be (put
    /// back) in place.
    Up,
    /// The apps are followed live, by the stream.
    Live,
    /// The host cannot stream its apps (why); they are listed every interval instead.
    Polling(String),
    /// The first attempt to reach the host or list its apps failed. The thread tries again.
    Failed(anyhow::Error),
    /// The link broke or the host cannot be reached or read (why): its forwards are gone; the
    /// next attempt is in `retry`.
    Down { reason: String, retry: Duration },
    /// Something to tell the user; the host is followed on.
    Warning(String),
    /// Something the server said about itself (PM2's daemon went or came back).
    Note(String),
}

/// An event of the host at `host` in the tunnel's list.
#[derive(Debug)]
pub struct Tagged {
    pub host: usize,
    pub event: Event,
}

/// How a session (one master) ended.
enum End {
    /// The stop flag was raised.
    Stopped,
    /// The master died.
    Broke,
    /// The apps could not be listed.
    Failed(anyhow::Error),
}

struct Follower<'a> {
    ssh: &'a Ssh,
    host: usize,
    tx: SyncSender<Tagged>,
    /// Whether the host's apps were listed once: failures before are [`Event::Failed`].
    answered: bool,
    /// Whether [`Event::Failed`] was sent.
    failed: bool,
}

/// Follow the host `ssh` reaches until the stop flag is raised or the tunnel goes away. Closes
/// its master before returning.
pub fn follow(ssh: &Ssh, host: usize, mode: Mode, tx: SyncSender<Tagged>) {
    let mut f = Follower {
        ssh,
        host,
        tx,
        answered: false,
        failed: false,
    };
    let mut delay = Duration::from_secs(1);
    let mut first = true;
    while !ssh.stopping() {
        let why = match ssh.connect(Duration::from_secs(if first { 120 } else { 30 })) {
            Ok(mut master) => {
                if !f.send(Event::Up) {
                    ssh.close(&mut master);
                    return;
                }
                let end = f.session(&mut master, mode);
                let said = master.said();
                ssh.close(&mut master);
                match end {
                    End::Stopped => return,
                    End::Broke => {
                        delay = Duration::from_secs(1);
                        anyhow!(
                            "the connection to `{}` broke{}",
                            ssh.host_shown(),
                            said.lines()
                                .last()
                                .map_or(String::new(), |l| format!(" ({})", escape(l)))
                        )
                    }
                    End::Failed(err) => err,
                }
            }
            Err(err) if proc::is_stopped(&err) => return,
            Err(err) => err,
        };
        first = false;
        if !f.answered && !f.failed {
            f.failed = true;
            if !f.send(Event::Failed(why)) {
                return;
            }
        } else if !f.send(Event::Down {
            reason: format!("{why:#}"),
            retry: delay,
        }) {
            return;
        }
        if !pause(ssh, delay) {
            return;
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

/// Sleep `d` in ticks; false when the stop flag was raised meanwhile.
fn pause(ssh: &Ssh, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if ssh.stopping() {
            return false;
        }
        std::thread::sleep(TICK.min(until - Instant::now()));
    }
    !ssh.stopping()
}

/// How one run of the stream ended.
enum Stream {
    End(End),
    /// It ended (or spoke other than the stream) before its first event: no stream from this
    /// server (why).
    Unavailable(String),
    /// It ended after events, the master still up (why): start it again.
    Ended(String),
}

impl Follower<'_> {
    /// Send an event; false when the tunnel is gone.
    fn send(&self, event: Event) -> bool {
        self.tx
            .send(Tagged {
                host: self.host,
                event,
            })
            .is_ok()
    }

    fn apps(&mut self, apps: Apps) -> bool {
        self.answered = true;
        self.send(Event::Apps(apps))
    }

    /// Wait while the master lives: the end of a session that has nothing else to do.
    fn hold(&self, master: &mut Master) -> End {
        loop {
            if let Some(end) = self.watch(master, TICK) {
                return end;
            }
        }
    }

    /// Wait `d` while the master lives: how the session ended, if it did meanwhile.
    fn watch(&self, master: &mut Master, d: Duration) -> Option<End> {
        let until = Instant::now() + d;
        loop {
            if self.ssh.stopping() {
                return Some(End::Stopped);
            }
            if !master.alive() {
                return Some(End::Broke);
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            std::thread::sleep(TICK.min(until - now));
        }
    }

    fn session(&mut self, master: &mut Master, mode: Mode) -> End {
        let interval = match mode {
            Mode::Once if self.answered => return self.hold(master),
            Mode::Once => {
                return match list(self.ssh) {
                    Ok(apps) => {
                        if self.apps(apps) {
                            self.hold(master)
                        } else {
                            End::Stopped
                        }
                    }
                    Err(err) if proc::is_stopped(&err) => End::Stopped,
                    Err(err) => End::Failed(err),
                };
            }
            Mode::Live { interval } => interval,
        };
        // A stream that keeps ending soon after it starts is started again less and less often.
        let mut delay = Duration::from_secs(1);
        loop {
            let started = Instant::now();
            match self.stream(master) {
                Stream::End(end) => return end,
                Stream::Unavailable(why) => {
                    if !self.send(Event::Polling(why)) {
                        return End::Stopped;
                    }
                    return self.poll(master, interval);
                }
                Stream::Ended(why) => {
                    if started.elapsed() >= STREAM_SETTLED {
                        delay = Duration::from_secs(1);
                    }
                    let warned = self.send(Event::Warning(format!(
                        "the app stream of `{}` ended ({why}); starting it again in {}s",
                        self.ssh.host_shown(),
                        delay.as_secs()
                    )));
                    if !warned || !pause(self.ssh, delay) {
                        return End::Stopped;
                    }
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// List the apps every `interval` while the master lives.
    fn poll(&mut self, master: &mut Master, interval: Duration) -> End {
        loop {
            match list(self.ssh) {
                Ok(apps) => {
                    if !self.apps(apps) {
                        return End::Stopped;
                    }
                }
                Err(err) if proc::is_stopped(&err) => return End::Stopped,
                // A listing cut by the link's end is that end, said once.
                Err(_) if !master.alive() => return End::Broke,
                Err(err) if !self.answered => return End::Failed(err),
                Err(err) => {
                    if !self.send(Event::Warning(format!("{err:#}"))) {
                        return End::Stopped;
                    }
                }
            }
            if let Some(end) = self.watch(master, interval) {
                return end;
            }
        }
    }

    /// Run the stream once, passing its events on, until it ends, the master dies or the stop
    /// flag is raised.
    fn stream(&mut self, master: &mut Master) -> Stream {
        let mut child = match self.ssh.stream() {
            Ok(child) => child,
            Err(err) => return Stream::End(End::Failed(err)),
        };
        let said = capture(child.stderr.take());
        let (ltx, lines) = mpsc::sync_channel(LINES_AHEAD);
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || read_lines(stdout, &ltx));
        }
        let started = Instant::now();
        let mut events = 0usize;
        // What the other end printed before its first event (a login shell's greeting).
        let mut before: Option<String> = None;
        let shown = self.ssh.host_shown().into_owned();
        let end = loop {
            match lines.recv_timeout(TICK) {
                Ok(Line::TooLong) => {
                    break Stream::Ended(format!("a line longer than {} MiB", MAX_LINE >> 20));
                }
                Ok(Line::Text(line)) => match plan::parse_line(&line) {
                    Ok(line) => {
                        events += 1;
                        if events == 1 && !self.send(Event::Live) {
                            break Stream::End(End::Stopped);
                        }
                        let sent = match line {
                            StreamLine::Apps(apps) => self.apps(apps),
                            StreamLine::DaemonDown => self.send(Event::Note(format!(
                                "PM2's daemon on `{shown}` stopped; its apps are gone"
                            ))),
                            StreamLine::DaemonUp => self.send(Event::Note(format!(
                                "PM2's daemon on `{shown}` runs (again)"
                            ))),
                            // An answer too: the first one makes the host count as answered
                            // (with no app known yet), so the tunnel does not wait on it.
                            StreamLine::Error(message) => {
                                self.send(Event::Warning(format!(
                                    "`{shown}` cannot read its apps: {}",
                                    escape(&message)
                                ))) && (self.answered || self.apps(Apps::default()))
                            }
                            StreamLine::Other => true,
                        };
                        if !sent {
                            break Stream::End(End::Stopped);
                        }
                    }
                    // Not an event before the first one: skipped (the list timeout still runs).
                    Err(_) if events == 0 => {
                        if !line.trim().is_empty() {
                            before = Some(line);
                        }
                    }
                    Err(err) => {
                        break Stream::Ended(format!(
                            "a line that is not an event: {}",
                            escape(&format!("{err:#}"))
                        ));
                    }
                },
                // The end of its output: the remote command ended, or the link.
                Err(RecvTimeoutError::Disconnected) => {
                    let status = wait_briefly(&mut child);
                    // A link that breaks ends the stream's client first: give the master a
                    // moment to end too, so that the break is told as one.
                    let until = Instant::now() + Duration::from_secs(1);
                    while master.alive() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    if !master.alive() {
                        break Stream::End(End::Broke);
                    }
                    let why = match (last_line(&said), &before) {
                        (_, Some(printed)) if events == 0 => format!(
                            "its `pm2-port list --json --watch` printed `{}`",
                            escape(&clip(printed, 60))
                        ),
                        (Some(l), _) => escape(&l).into_owned(),
                        (None, _) => status.map_or("no exit status".into(), |s| s.to_string()),
                    };
                    break if events == 0 {
                        Stream::Unavailable(why)
                    } else {
                        Stream::Ended(why)
                    };
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.ssh.stopping() {
                break Stream::End(End::Stopped);
            }
            if !master.alive() {
                break Stream::End(End::Broke);
            }
            if events == 0 && started.elapsed() >= self.ssh.list_timeout {
                break Stream::End(End::Failed(no_answer(self.ssh)));
            }
        };
        end_stream(child, self.ssh.stopping());
        end
    }
}

/// What the reader thread passes on.
enum Line {
    Text(String),
    /// A line over [`MAX_LINE`]: the reader stopped.
    TooLong,
}

/// Read the stream's lines (invalid UTF-8 replaced, line ends trimmed) into `tx` until the end of
/// the output, a line over [`MAX_LINE`], or the follower is gone.
fn read_lines(stdout: impl Read, tx: &mpsc::SyncSender<Line>) {
    let mut r = BufReader::new(stdout);
    loop {
        let mut buf = Vec::new();
        match (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) | Err(_) => return,
            Ok(_) if buf.len() > MAX_LINE => {
                let _ = tx.send(Line::TooLong);
                return;
            }
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end_matches(['\n', '\r']).to_string();
                if tx.send(Line::Text(text)).is_err() {
                    return;
                }
            }
        }
    }
}

/// The apps of the server, from one `list --json` (or `pm2 jlist`) through the master.
pub fn list(ssh: &Ssh) -> Result<Apps> {
    let out = ssh.list().map_err(|err| {
        if matches!(err.downcast_ref(), Some(RunError::TimedOut { .. })) {
            no_answer(ssh)
        } else {
            err.context(format!("asking `{}` for its apps", ssh.host_shown()))
        }
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = escape(stderr.trim());
    if !out.status.success() {
        bail!(
            "asking `{}` for its apps failed ({}): {stderr}",
            ssh.host_shown(),
            out.status,
        );
    }
    // serde's messages may quote the server's text too.
    plan::parse_apps(&String::from_utf8_lossy(&out.stdout))
        .map_err(|err| anyhow!("{}", escape(&format!("{err:#}"))))
        .map_err(|err| err.context(format!("`{}` answered: {stderr}", ssh.host_shown())))
}

fn no_answer(ssh: &Ssh) -> anyhow::Error {
    anyhow!(
        "asking `{}` for its apps: no answer within {}s (a stuck `pm2-port list` or `pm2 jlist` \
         there? PM2_PORT_TUNNEL_LIST_TIMEOUT=SECS waits longer)",
        ssh.host_shown(),
        ssh.list_timeout.as_secs()
    )
}

fn last_line(said: &Arc<Mutex<String>>) -> Option<String> {
    // The stderr reader may still be taking the last words.
    std::thread::sleep(Duration::from_millis(20));
    let s = said.lock().ok()?;
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_string)
}

/// The first `max` characters of `s`.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The exit status of a child whose output ended, waiting for it a little.
fn wait_briefly(child: &mut Child) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// End the stream's ssh: its stdin closed (the remote `list --watch` ends on that), then killed
/// if it is still there a moment later (at once when stopping: the master's end ends the rest),
/// and reaped.
fn end_stream(mut child: Child, at_once: bool) {
    drop(child.stdin.take());
    if at_once || wait_briefly(&mut child).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
