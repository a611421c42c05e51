//! `list --json --watch` as a step function: when to read the server again, and which lines a
//! reading gives. The effects layer (`sys::watch`) turns PM2's bus into events, reads the server
//! when [`Watch::due`] says, and hands the reading to [`Watch::observed`]; this module only
//! decides, so its timing is tested without a clock.
//!
//! The stream, one JSON object per line:
//! - `{"event":"apps","daemon":true,"apps":[ROW...]}`: the rows of `list --json`, first at once,
//!   then each time a row or the daemon's presence changes;
//! - `{"event":"daemon-down"}`, `{"event":"daemon-up"}`: PM2's daemon went away, or came
//!   (back); an `apps` line follows each;
//! - `{"event":"error","message":M}`: the server could not be read (a wedged daemon, an unreadable
//!   registry); once per message, and the stream goes on.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::inventory::Row;

/// How the watch paces its readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// After an event of PM2's bus, wait until the bus has been quiet this long (PM2 sends
    /// `start` and `online` together, and a `pm2 start` of several apps one event after another).
    pub settle: Duration,
    /// But never longer than this after the first event of a burst.
    pub max_delay: Duration,
    /// After a line that reported a change, the next reading an event asks for waits at least
    /// this long: a long burst gives a line every `min_gap`, not one per event.
    pub min_gap: Duration,
    /// Read anyway this often while the bus is connected: PM2 says nothing on the bus when a
    /// stopped app is deleted, nor does the registry.
    pub check: Duration,
    /// Read this often while the bus is not connected (no daemon, or a bus that does not answer).
    pub poll: Duration,
}

pub const TIMING: Timing = Timing {
    settle: Duration::from_millis(50),
    max_delay: Duration::from_millis(300),
    min_gap: Duration::from_millis(250),
    check: Duration::from_secs(1),
    poll: Duration::from_millis(250),
};

/// PM2's daemon as one reading saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    /// No daemon answers (no socket, or a stale one).
    Down,
    /// A daemon answered; its PID (`pm2.pid`) when readable: another PID is another daemon, so a
    /// restart between two readings (`pm2 update`) is seen even when no reading fell between.
    Up(Option<u32>),
}

/// One reading of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    Apps { rows: Vec<Row>, daemon: Daemon },
    Failed(String),
}

/// One line of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Line {
    Apps { daemon: bool, apps: Vec<Row> },
    DaemonDown,
    DaemonUp,
    Error { message: String },
}

#[derive(Debug, Clone)]
pub struct Watch {
    timing: Timing,
    /// The last rows and daemon reported; `None` before the first line.
    shown: Option<(Vec<Row>, Daemon)>,
    /// The last error reported, until a reading succeeds.
    error: Option<String>,
    /// The first and the last event of a burst not read yet.
    burst: Option<(Instant, Instant)>,
    /// When the last reading was taken; `None`: none yet, one is due at `start`.
    last_read: Option<Instant>,
    /// When the last line reporting a change was printed.
    last_change: Option<Instant>,
    start: Instant,
    bus: bool,
}

impl Watch {
    pub fn new(timing: Timing, now: Instant) -> Watch {
        Watch {
            timing,
            shown: None,
            error: None,
            burst: None,
            last_read: None,
            last_change: None,
            start: now,
            bus: false,
        }
    }

    /// PM2's bus said something happened.
    pub fn on_event(&mut self, now: Instant) {
        self.burst = Some(match self.burst {
            Some((first, _)) => (first, now),
            None => (now, now),
        });
    }

    /// The bus was connected, or lost (the daemon went away, or is restarting): read soon either
    /// way, and pace the periodic readings on it.
    pub fn on_bus(&mut self, connected: bool, now: Instant) {
        self.bus = connected;
        self.on_event(now);
    }

    /// When the next reading is due.
    pub fn due(&self) -> Instant {
        let t = &self.timing;
        let Some(last_read) = self.last_read else {
            return self.start;
        };
        match self.burst {
            Some((first, last)) => {
                let settled = (last + t.settle).min(first + t.max_delay);
                match self.last_change {
                    Some(change) => settled.max(change + t.min_gap),
                    None => settled,
                }
            }
            None => last_read + if self.bus { t.check } else { t.poll },
        }
    }

    /// A reading taken at `now` (which the caller takes when [`Watch::due`] has come): the lines
    /// to print, in order.
    pub fn observed(&mut self, now: Instant, reading: Reading) -> Vec<Line> {
        self.last_read = Some(now);
        self.burst = None;
        let (rows, daemon) = match reading {
            Reading::Failed(message) => {
                if self.error.as_ref() == Some(&message) {
                    return Vec::new();
                }
                self.error = Some(message.clone());
                return vec![Line::Error { message }];
            }
            Reading::Apps { rows, daemon } => (rows, daemon),
        };
        self.error = None;
        let mut lines = Vec::new();
        if let Some((old_rows, old_daemon)) = &self.shown {
            match (*old_daemon, daemon) {
                (Daemon::Up(_), Daemon::Down) => lines.push(Line::DaemonDown),
                (Daemon::Down, Daemon::Up(_)) => lines.push(Line::DaemonUp),
                (Daemon::Up(Some(a)), Daemon::Up(Some(b))) if a != b => {
                    lines.extend([Line::DaemonDown, Line::DaemonUp]);
                }
                _ => {}
            }
            if lines.is_empty() && *old_rows == rows {
                // A daemon whose PID was unreadable and now is: the same daemon.
                self.shown = Some((rows, daemon));
                return lines;
            }
        }
        lines.push(Line::Apps {
            daemon: daemon != Daemon::Down,
            apps: rows.clone(),
        });
        if self.shown.is_some() {
            self.last_change = Some(now);
        }
        self.shown = Some((rows, daemon));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn row(name: &str, port: u16, status: Status) -> Row {
        Row {
            name: name.into(),
            port: Some(port),
            status,
            cwd: Some(format!("/srv/{name}").into()),
            sources: vec!["pm2"],
            conflicts: Vec::new(),
            project: None,
        }
    }

    fn apps(rows: &[Row], daemon: Daemon) -> Reading {
        Reading::Apps {
            rows: rows.to_vec(),
            daemon,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const UP: Daemon = Daemon::Up(Some(100));

    #[test]
    fn the_first_reading_is_due_at_once_and_always_printed() {
        let t0 = Instant::now();
        let mut w = Watch::new(TIMING, t0);
        assert_eq!(w.due(), t0);
        assert_eq!(
            w.observed(t0, apps(&[], Daemon::Down)),
            vec![Line::Apps {
                daemon: false,
                apps: vec![]
            }]
        );
        // No bus: polled.
        assert_eq!(w.due(), t0 + TIMING.poll);
        assert_eq!(w.observed(t0 + TIMING.poll, apps(&[], Daemon::Down)), []);
    }

    #[test]
    fn lines_only_for_changes() {
        let t0 = Instant::now();
        let mut w = Watch::new(TIMING, t0);
        let a = row("a", 3000, Status::Online);
        w.observed(t0, apps(std::slice::from_ref(&a), UP));
        assert_eq!(
            w.observed(t0 + ms(250), apps(std::slice::from_ref(&a), UP)),
            []
        );
        let stopped = row("a", 3000, Status::Stopped);
        assert_eq!(
            w.observed(t0 + ms(500), apps(std::slice::from_ref(&stopped), UP)),
            vec![Line::Apps {
                daemon: true,
                apps: vec![stopped.clone()]
            }]
        );
        let moved = row("a", 3001, Status::Stopped);
        assert_eq!(w.observed(t0 + ms(750), apps(&[moved], UP)).len(), 1);
        assert_eq!(w.observed(t0 + ms(1000), apps(&[], UP)).len(), 1);
        // A PID that becomes readable is the same daemon.
        assert_eq!(w.observed(t0 + ms(1250), apps(&[], Daemon::Up(None))), []);
        assert_eq!(w.observed(t0 + ms(1500), apps(&[], UP)), []);
    }

    #[test]
    fn the_daemon_going_and_coming_back_is_said() {
        let t0 = Instant::now();
        let mut w = Watch::new(TIMING, t0);
        let a = row("a", 3000, Status::Online);
        let saved = row("a", 3000, Status::Saved);
        w.observed(t0, apps(std::slice::from_ref(&a), UP));
        assert_eq!(
            w.observed(
                t0 + ms(100),
                apps(std::slice::from_ref(&saved), Daemon::Down)
            ),
            vec![
                Line::DaemonDown,
                Line::Apps {
                    daemon: false,
                    apps: vec![saved.clone()]
                }
            ]
        );
        assert_eq!(
            w.observed(
                t0 + ms(200),
                apps(std::slice::from_ref(&a), Daemon::Up(None))
            ),
            vec![
                Line::DaemonUp,
                Line::Apps {
                    daemon: true,
                    apps: vec![a.clone()]
                }
            ]
        );
        // Another PID with nothing seen between (`pm2 update`): down and up, then the same apps.
        w.observed(
            t0 + ms(300),
            apps(std::slice::from_ref(&a), Daemon::Up(Some(1))),
        );
        assert_eq!(
            w.observed(
                t0 + ms(400),
                apps(std::slice::from_ref(&a), Daemon::Up(Some(2)))
            ),
            vec![
                Line::DaemonDown,
                Line::DaemonUp,
                Line::Apps {
                    daemon: true,
                    apps: vec![a]
                }
            ]
        );
    }

    #[test]
    fn errors_once_each_and_the_stream_goes_on() {
        let t0 = Instant::now();
        let mut w = Watch::new(TIMING, t0);
        w.observed(t0, apps(&[], UP));
        let slow = || Reading::Failed("too slow".into());
        assert_eq!(
            w.observed(t0 + ms(1), slow()),
            vec![Line::Error {
                message: "too slow".into()
            }]
        );
        assert_eq!(w.observed(t0 + ms(2), slow()), []);
        assert_eq!(w.observed(t0 + ms(3), apps(&[], UP)), []);
        assert_eq!(w.observed(t0 + ms(4), slow()).len(), 1);
    }

    #[test]
    fn an_event_is_read_once_the_bus_settles() {
        let t0 = Instant::now();
        let mut w = Watch::new(TIMING, t0);
        w.on_bus(true, t0);
        w.observed(t0, apps(&[], UP));
        // Bus connected: the periodic check.
        assert_eq!(w.due(), t0 + TIMING.check);
        let t1 = t0 + ms(600);
        w.on_event(t1);
        w.on_event(t1 + ms(1));
        assert_eq!(w.due(), t1 + ms(1) + TIMING.settle);
        // A burst that never settles is read after `max_delay`.
        for i in 0..8 {
            w.on_event(t1 + ms(40 * i));
        }
        assert_eq!(w.due(), t1 + TIMING.max_delay);
        let a = row("a", 3000, Status::Online);
        assert_eq!(w.observed(w.due(), apps(&[a], UP)).len(), 1);
        assert_eq!(w.due(), t1 + TIMING.max_delay + TIMING.check);
    }

    #[test]
    fn a_burst_gives_a_few_lines_not_one_per_event() {
        // Ten apps started one after another, an event every 40 ms to 120 ms for about a second,
        // each reading seeing one more app: at most one line per `min_gap` after the first.
        let t0 = Instant::now();
        let mut w = Watch::new(TIMING, t0);
        w.on_bus(true, t0);
        w.observed(t0, apps(&[], UP));
        let start = t0 + ms(5000);
        let events: Vec<Instant> = (0..10u64)
            .map(|i| start + ms(i * 40 + (i % 3) * 40))
            .collect();
        let mut lines = Vec::new();
        let mut now = start;
        let mut next = 0;
        let end = start + ms(3000);
        while now < end {
            if next < events.len() && events[next] <= now {
                w.on_event(now);
                next += 1;
            }
            if w.due() <= now {
                let seen = events.iter().filter(|e| **e <= now).count();
                let rows: Vec<Row> = (0..seen)
                    .map(|i| row(&format!("app{i}"), 3000 + i as u16, Status::Online))
                    .collect();
                lines.extend(w.observed(now, apps(&rows, UP)));
            }
            now += ms(1);
        }
        assert!(lines.len() <= 4, "{} lines: {lines:?}", lines.len());
        let Some(Line::Apps { apps, .. }) = lines.last() else {
            panic!("{lines:?}")
        };
        assert_eq!(apps.len(), 10);
    }

    #[test]
    fn the_first_change_after_a_quiet_spell_is_not_held_back() {
        let t0 = Instant::now();
        let mut w = Watch::new(TIMING, t0);
        w.on_bus(true, t0);
        w.observed(t0, apps(&[], UP));
        let a = row("a", 3000, Status::Online);
        w.observed(t0 + ms(100), apps(std::slice::from_ref(&a), UP));
        // An event long after the last change: read after `settle`, not `min_gap`.
        let t1 = t0 + ms(2000);
        w.on_event(t1);
        assert_eq!(w.due(), t1 + TIMING.settle);
        // One right after a change waits for `min_gap`.
        w.observed(t1 + TIMING.settle, apps(&[], UP));
        w.on_event(t1 + ms(60));
        assert_eq!(w.due(), t1 + TIMING.settle + TIMING.min_gap);
    }

    #[test]
    fn lines_as_json() {
        let to = |l: Line| serde_json::to_string(&l).unwrap();
        assert_eq!(to(Line::DaemonDown), r#"{"event":"daemon-down"}"#);
        assert_eq!(to(Line::DaemonUp), r#"{"event":"daemon-up"}"#);
        assert_eq!(
            to(Line::Error {
                message: "m".into()
            }),
            r#"{"event":"error","message":"m"}"#
        );
        assert_eq!(
            to(Line::Apps {
                daemon: true,
                apps: vec![row("a", 3000, Status::Online)]
            }),
            r#"{"event":"apps","daemon":true,"apps":[{"name":"a","port":3000,"status":"online","cwd":"/srv/a","sources":["pm2"],"conflicts":[]}]}"#
        );
    }
}
