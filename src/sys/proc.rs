//! Running a program to its end without trusting it to end: its output read by threads while it
//! runs (so a full pipe never blocks it), a deadline, and a stop flag (Ctrl-C, SIGTERM) noticed
//! while waiting. On either, the child is killed and reaped before returning.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// After the child ends, how long its pipes may stay open (held by a grandchild) before the
/// output read so far is taken as all of it.
const PIPE_GRACE: Duration = Duration::from_secs(1);
/// The longest pause between two looks at the child and the stop flag.
const MAX_POLL: Duration = Duration::from_millis(50);

/// Why [`run`] gave no output.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started (or waited for).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The deadline passed; the child was killed. `stderr` is what it had said.
    #[error("no answer within {after:?}")]
    TimedOut { after: Duration, stderr: Vec<u8> },
    /// The stop flag was raised; the child was killed.
    #[error("stopped")]
    Stopped,
}

/// Run `cmd` with no standard input and its stdout and stderr captured, until it exits, `timeout`
/// passes or `stop` is raised, whichever comes first. Only the child itself is killed: a caller
/// whose program starts others should put it in a process group of its own and end the group.
pub fn run(
    cmd: &mut Command,
    timeout: Duration,
    stop: Option<&AtomicBool>,
) -> Result<Output, RunError> {
    let deadline = Instant::now() + timeout;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Ok(Output {
                    status,
                    stdout: collect(&stdout),
                    stderr: collect(&stderr),
                });
            }
            Ok(None) => {}
            Err(err) => {
                end(&mut child);
                return Err(err.into());
            }
        }
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            end(&mut child);
            return Err(RunError::Stopped);
        }
        let now = Instant::now();
        if now >= deadline {
            end(&mut child);
            return Err(RunError::TimedOut {
                after: timeout,
                stderr: collect(&stderr),
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// Raise this process's soft limit of open files to its hard limit (at most 65536): the tunnel's
/// proxy holds two descriptors a browser connection. Best effort.
pub fn raise_open_files() {
    // SAFETY: getrlimit/setrlimit on a zeroed, owned struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            // macOS refuses more than its per-process maximum (often 10240 or 24576) even when
            // the hard limit says unlimited: smaller steps then.
            for want in [65536, 10240, 4096] {
                let want = lim.rlim_max.min(want);
                if lim.rlim_cur >= want {
                    return;
                }
                let raised = libc::rlimit {
                    rlim_cur: want,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    return;
                }
            }
        }
    }
}

/// This process's soft limit of open files (1024 when it cannot be read).
pub fn open_files_limit() -> usize {
    // SAFETY: getrlimit on a zeroed, owned struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            return usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX);
        }
    }
    1024
}

/// Whether an error chain says a [`run`] was stopped by its flag.
pub fn is_stopped(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| matches!(e.downcast_ref::<RunError>(), Some(RunError::Stopped)))
}

/// A pipe read to its end by a thread of its own.
fn drain(pipe: Option<impl Read + Send + 'static>) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    rx
}

fn collect(rx: &Receiver<Vec<u8>>) -> Vec<u8> {
    rx.recv_timeout(PIPE_GRACE).unwrap_or_default()
}

fn end(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // A child that leads a process group of its own (`process_group(0)`) is ended with what it
    // started (`ssh -G` running a configuration's `Match exec`).
    // SAFETY: getpgid(2) and killpg(2) on our own child, not reaped yet: its pid is still its own.
    unsafe {
        if libc::getpgid(pid) == pid {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn output_and_status_of_a_program_that_ends() {
        let out = run(
            &mut sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(10),
            None,
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn more_output_than_a_pipe_holds() {
        let out = run(
            &mut sh("head -c 1000000 /dev/zero"),
            Duration::from_secs(10),
            None,
        )
        .unwrap();
        assert_eq!(out.stdout.len(), 1_000_000);
    }

    /// A program in a process group of its own that times out goes with what it started.
    #[test]
    fn a_timed_out_group_leader_takes_its_children_along() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let mut c = sh("sleep 30 & echo $! > \"$0\"; wait");
        c.arg(&pid_file).process_group(0);
        let err = run(&mut c, Duration::from_millis(300), None).unwrap_err();
        assert!(matches!(err, RunError::TimedOut { .. }), "{err:?}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let proc_dir = format!("/proc/{}", pid.trim());
        let deadline = Instant::now() + Duration::from_secs(5);
        // Killed; reaped by init soon after.
        while std::path::Path::new(&proc_dir).exists() && Instant::now() < deadline {
            let state = std::fs::read_to_string(format!("{proc_dir}/stat")).unwrap_or_default();
            if state.contains(") Z") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let state = std::fs::read_to_string(format!("{proc_dir}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z"), "{state}");
    }

    #[test]
    fn a_hung_program_times_out_and_is_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let started = Instant::now();
        let err = run(
            sh("echo $$ > \"$0\"; echo said >&2; exec sleep 30").arg(&pid_file),
            Duration::from_millis(300),
            None,
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        match err {
            RunError::TimedOut { after, stderr } => {
                assert_eq!(after, Duration::from_millis(300));
                assert_eq!(stderr, b"said\n");
            }
            other => panic!("{other:?}"),
        }
        // Killed and reaped: not even a zombie is left.
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert!(!std::path::Path::new(&format!("/proc/{}", pid.trim())).exists());
        assert_eq!(
            RunError::TimedOut {
                after: Duration::from_secs(30),
                stderr: vec![]
            }
            .to_string(),
            "no answer within 30s"
        );
    }

    #[test]
    fn the_stop_flag_ends_the_wait() {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let raise = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            raise.store(true, Ordering::Relaxed);
        });
        let started = Instant::now();
        let err = run(
            &mut sh("exec sleep 30"),
            Duration::from_secs(60),
            Some(&stop),
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Stopped), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(is_stopped(&anyhow::Error::new(err).context("asking")));
    }

    #[test]
    fn a_missing_program_is_an_io_error() {
        let err = run(
            &mut Command::new("/nonexistent/program"),
            Duration::from_secs(1),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Io(_)), "{err:?}");
    }
}
