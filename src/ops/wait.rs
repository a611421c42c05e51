//! The policy of waiting for an app to listen on its port, as a step function: the executor
//! observes (the listening sockets every 100 ms, PM2's view of the app when [`Waiter::check_due`]
//! says so) and feeds each observation to [`Waiter::step`], which says whether to keep waiting.

use std::time::Duration;

use crate::model::Status;

/// How often PM2 is asked about the app.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long the app's process must listen elsewhere, and not on its port, to be drift.
pub const DRIFT_CONFIRMED: Duration = Duration::from_secs(3);

/// What PM2 says about the app, and where its processes listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pm2View {
    /// The app's status; `None` when PM2 does not have it (any more).
    pub status: Option<Status>,
    /// Its process, when it runs.
    pub pid: Option<u32>,
    /// The ports its processes listen on (never its own: that would have ended the wait).
    pub elsewhere: Vec<u16>,
}

/// What to do after an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Waiting,
    /// Something listens on the port.
    Listening,
    /// PM2 says the app errored or stopped, or no longer has it (`gone`).
    Down {
        status: String,
    },
    /// The app's processes have listened on other ports, and not on its own, for
    /// [`DRIFT_CONFIRMED`] (the same process all along: a restart starts the count again).
    Drift {
        ports: Vec<u16>,
    },
    TimedOut,
}

impl Verdict {
    /// The error for a verdict that ends the wait without the port listening.
    pub fn failure(&self, name: &str, port: u16, timeout: Duration) -> Option<String> {
        match self {
            Verdict::Waiting | Verdict::Listening => None,
            Verdict::Down { status } => Some(format!(
                "`{name}` is {status} in PM2 instead of listening on port {port}"
            )),
            Verdict::Drift { ports } => {
                let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
                Some(format!(
                    "`{name}` listens on port {} instead of its assigned {port} (drift): make its dev server fail on a busy port instead of moving (Vite's --strictPort), or fix the command in buildflowz.toml",
                    ports.join(", ")
                ))
            }
            Verdict::TimedOut => Some(format!(
                "`{name}` did not listen on port {port} within {}s",
                timeout.as_secs()
            )),
        }
    }
}

/// The state of one wait; times count from its start.
#[derive(Debug, Clone)]
pub struct Waiter {
    timeout: Duration,
    last_check: Option<Duration>,
    /// Since when, by which process (0: none), and on which ports the app has listened elsewhere.
    drift: Option<(Duration, u32, Vec<u16>)>,
}

impl Waiter {
    pub fn new(timeout: Duration) -> Waiter {
        Waiter {
            timeout,
            last_check: None,
            drift: None,
        }
    }

    /// Whether PM2 should be asked about the app at `at`: at once, then every [`CHECK_EVERY`].
    pub fn check_due(&self, at: Duration) -> bool {
        self.last_check
            .is_none_or(|last| at.saturating_sub(last) >= CHECK_EVERY)
    }

    /// One observation at `at`: whether the port listens, and PM2's view when it was asked.
    pub fn step(&mut self, at: Duration, listening: bool, pm2: Option<&Pm2View>) -> Verdict {
        if listening {
            return Verdict::Listening;
        }
        if let Some(view) = pm2 {
            self.last_check = Some(at);
            match &view.status {
                Some(Status::Errored | Status::Stopped) | None => {
                    return Verdict::Down {
                        status: view
                            .status
                            .as_ref()
                            .map_or("gone", Status::as_str)
                            .to_string(),
                    };
                }
                Some(_) => {}
            }
            let pid = view.pid.unwrap_or(0);
            let other = view.elsewhere.clone();
            self.drift = match self.drift.take() {
                _ if other.is_empty() => None,
                Some((since, p, _)) if p == pid => Some((since, pid, other)),
                _ => Some((at, pid, other)),
            };
            if let Some((since, _, ports)) = &self.drift
                && at.saturating_sub(*since) >= DRIFT_CONFIRMED
            {
                return Verdict::Drift {
                    ports: ports.clone(),
                };
            }
        }
        if at >= self.timeout {
            return Verdict::TimedOut;
        }
        Verdict::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn online(pid: u32, elsewhere: &[u16]) -> Pm2View {
        Pm2View {
            status: Some(Status::Online),
            pid: Some(pid),
            elsewhere: elsewhere.to_vec(),
        }
    }

    /// Run a wait observing every 100 ms: `listening(at)` and `pm2(at)`, PM2 asked when due.
    fn run(
        timeout: u64,
        listening: impl Fn(u64) -> bool,
        pm2: impl Fn(u64) -> Pm2View,
    ) -> (u64, Verdict) {
        let mut w = Waiter::new(Duration::from_secs(timeout));
        let mut at = 0;
        loop {
            let view = (!listening(at) && w.check_due(ms(at))).then(|| pm2(at));
            match w.step(ms(at), listening(at), view.as_ref()) {
                Verdict::Waiting => at += 100,
                v => return (at, v),
            }
        }
    }

    #[test]
    fn listening_ends_the_wait_whatever_pm2_says() {
        let mut w = Waiter::new(Duration::from_secs(60));
        let gone = Pm2View {
            status: None,
            pid: None,
            elsewhere: vec![],
        };
        assert_eq!(w.step(ms(0), true, Some(&gone)), Verdict::Listening);
        assert_eq!(
            run(60, |at| at >= 1200, |_| online(7, &[])),
            (1200, Verdict::Listening)
        );
    }

    #[test]
    fn errored_stopped_or_gone_in_pm2_fails_at_the_next_check() {
        for (status, said) in [
            (Some(Status::Errored), "errored"),
            (Some(Status::Stopped), "stopped"),
            (None, "gone"),
        ] {
            let view = |at| {
                if at < 1000 {
                    online(7, &[])
                } else {
                    Pm2View {
                        status: status.clone(),
                        pid: None,
                        elsewhere: vec![],
                    }
                }
            };
            let (at, verdict) = run(60, |_| false, view);
            assert_eq!(at, 1000);
            assert_eq!(
                verdict,
                Verdict::Down {
                    status: said.into()
                }
            );
            assert_eq!(
                verdict
                    .failure("shop", 3000, Duration::from_secs(60))
                    .unwrap(),
                format!("`shop` is {said} in PM2 instead of listening on port 3000")
            );
        }
    }

    #[test]
    fn launching_and_restarting_keep_waiting() {
        for status in [Status::Launching, Status::WaitingRestart, Status::OneLaunch] {
            let view = |_| Pm2View {
                status: Some(status.clone()),
                pid: None,
                elsewhere: vec![],
            };
            assert_eq!(run(2, |_| false, view), (2000, Verdict::TimedOut));
        }
    }

    #[test]
    fn pm2_is_asked_at_once_then_every_half_second() {
        let mut w = Waiter::new(Duration::from_secs(60));
        assert!(w.check_due(ms(0)));
        w.step(ms(0), false, Some(&online(7, &[])));
        assert!(!w.check_due(ms(400)));
        assert!(w.check_due(ms(500)));
        // An observation without PM2's view does not count as a check.
        w.step(ms(500), false, None);
        assert!(w.check_due(ms(600)));
    }

    #[test]
    fn listening_elsewhere_for_three_seconds_is_drift() {
        let (at, verdict) = run(
            60,
            |_| false,
            |at| online(7, if at >= 1000 { &[4000] } else { &[] }),
        );
        assert_eq!(at, 4000);
        assert_eq!(verdict, Verdict::Drift { ports: vec![4000] });
        assert_eq!(
            verdict
                .failure("shop", 3000, Duration::from_secs(60))
                .unwrap(),
            "`shop` listens on port 4000 instead of its assigned 3000 (drift): make its dev server fail on a busy port instead of moving (Vite's --strictPort), or fix the command in buildflowz.toml"
        );
    }

    #[test]
    fn drift_reports_the_ports_of_the_last_check() {
        let view = |at| online(7, if at >= 2000 { &[4000, 4001] } else { &[4000] });
        assert_eq!(
            run(60, |_| false, view),
            (
                3000,
                Verdict::Drift {
                    ports: vec![4000, 4001]
                }
            )
        );
    }

    #[test]
    fn drift_that_stops_or_a_restart_starts_the_count_again() {
        // Elsewhere for 2.5 s, then not for one check, then elsewhere again.
        let view = |at| online(7, if at == 2500 { &[] } else { &[4000] });
        assert_eq!(
            run(60, |_| false, view),
            (6000, Verdict::Drift { ports: vec![4000] })
        );
        // A new process at 2 s (PM2 restarted it): three seconds from then.
        let view = |at| online(if at < 2000 { 7 } else { 8 }, &[4000]);
        assert_eq!(
            run(60, |_| false, view),
            (5000, Verdict::Drift { ports: vec![4000] })
        );
    }

    #[test]
    fn without_drift_or_failure_the_timeout_ends_it() {
        let (at, verdict) = run(5, |_| false, |_| online(7, &[]));
        assert_eq!((at, &verdict), (5000, &Verdict::TimedOut));
        assert_eq!(
            verdict
                .failure("shop", 3000, Duration::from_secs(5))
                .unwrap(),
            "`shop` did not listen on port 3000 within 5s"
        );
        // Drift shorter than the timeout allows is not reported as drift.
        assert_eq!(
            run(2, |_| false, |_| online(7, &[4000])),
            (2000, Verdict::TimedOut)
        );
    }
}
