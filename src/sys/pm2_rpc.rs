//! PM2's daemon socket (`$PM2_HOME/rpc.sock`): the process list without starting Node.
//!
//! The framing is the `amp` package's: one byte `0x10 | argc`, then each argument as a 4-byte
//! big-endian length and its bytes; arguments are `j:` + JSON or `s:` + text (`amp-message`). A
//! call is `[j:{"type":"call","method":M,"args":[...]}, s:ID]`; the reply is `[j:{"args":[...]}
//! | j:{"error":...}, s:ID]`.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What the daemon socket said.
#[derive(Debug)]
pub enum Answer {
    /// No socket file: no daemon has run in this home.
    NoSocket,
    /// The socket exists but nobody listens: a dead daemon's leftover.
    Stale,
    /// The process list.
    List(Vec<crate::model::App>),
    /// A daemon answered, but not in a way this client understands (the caller falls back to
    /// `pm2 jlist`, which cannot start a daemon since one runs).
    Unexpected(String),
    /// The socket could not be used (permissions, a daemon that does not answer in time).
    Failed(String),
}

const VERSION: u8 = 1;

/// How long one exchange with the daemon (connect, send, whole reply) may take, unless
/// `PM2_PORT_DAEMON_TIMEOUT` says otherwise. A healthy daemon answers in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The largest message pm2-port reads from the daemon, all arguments together, and the largest
/// single argument: the process list is one argument, so they are the same. PM2's list carries each
/// app's whole environment, a few KB per app: a list of 1000 apps is a few MB. 64 MiB leaves room
/// for ten times that with fat environments, while a reply that claims more (4 GiB is one length
/// field away) is refused before a byte of it is read or allocated.
pub const MAX_MESSAGE: usize = 64 << 20;
pub const MAX_ARGUMENT: usize = MAX_MESSAGE;

/// Bytes read at a time: an argument's buffer grows with what arrived, never with what it claims.
const CHUNK: usize = 64 << 10;

/// Encode arguments as one amp message.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let argc = u8::try_from(args.len()).expect("at most 15 arguments");
    assert!(argc <= 0xf);
    let mut out = vec![(VERSION << 4) | argc];
    for arg in args {
        let len = u32::try_from(arg.len()).expect("argument under 4 GiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(arg);
    }
    out
}

/// The `getMonitorData` call. It takes exactly one argument, `{}`: the daemon appends its
/// callback, so any other count shifts the callback, the call throws, and the daemon's error
/// handler runs `pm2 update`, restarting every app (docs/pm2.md, "The daemon socket protocol").
pub fn monitor_request(id: &str) -> Vec<u8> {
    let call = br#"j:{"type":"call","method":"getMonitorData","args":[{}]}"#;
    let id = format!("s:{id}");
    encode(&[call, id.as_bytes()])
}

/// Read one amp message from `r`. Lengths are the sender's word: one over [`MAX_ARGUMENT`], or
/// arguments adding up to over [`MAX_MESSAGE`], are refused before their bytes are read, and memory
/// grows with the bytes that arrived, at most doubling, never to more than the claimed length.
pub fn read_message(r: &mut impl Read) -> io::Result<Vec<Vec<u8>>> {
    let mut meta = [0u8; 1];
    r.read_exact(&mut meta)?;
    if meta[0] >> 4 != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown amp version in byte {:#04x}", meta[0]),
        ));
    }
    let argc = usize::from(meta[0] & 0xf);
    let mut args = Vec::with_capacity(argc);
    let mut total = 0;
    for _ in 0..argc {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_ARGUMENT {
            return Err(over_cap(format!(
                "an argument of {len} bytes, over pm2-port's cap of {} MiB for one argument",
                MAX_ARGUMENT >> 20
            )));
        }
        total += len;
        if total > MAX_MESSAGE {
            return Err(over_cap(format!(
                "arguments adding up to {total} bytes, over pm2-port's cap of {} MiB for one message",
                MAX_MESSAGE >> 20
            )));
        }
        args.push(read_argument(r, len)?);
    }
    Ok(args)
}

fn over_cap(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("it claims {what}"))
}

/// Read exactly `len` bytes, growing the buffer with what arrives.
fn read_argument(r: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut arg = Vec::new();
    let mut chunk = [0u8; CHUNK];
    while arg.len() < len {
        let want = (len - arg.len()).min(CHUNK);
        let n = match r.read(&mut chunk[..want]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the daemon's reply ended early",
                ));
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if arg.capacity() - arg.len() < n {
            let grown = (arg.capacity() * 2).max(arg.len() + n).min(len);
            arg.reserve_exact(grown - arg.len());
        }
        arg.extend_from_slice(&chunk[..n]);
    }
    Ok(arg)
}

/// The process list's JSON inside the reply to call `id`, as a part of the reply's first argument.
/// The reply is `{"args":[LIST]}`: the list is found in place, neither copied nor parsed twice.
pub fn parse_reply<'a>(
    args: &'a [Vec<u8>],
    id: &str,
) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    let [body, reply_id] = args else {
        return Err(format!("a reply of {} arguments", args.len()));
    };
    if reply_id.as_slice() != format!("s:{id}").as_bytes() {
        return Err("a reply to another call".to_string());
    }
    let json = body
        .strip_prefix(b"j:")
        .ok_or_else(|| "a reply that is not JSON".to_string())?;
    let head = br#"{"args":["#;
    if let Some(rest) = json.strip_prefix(head.as_slice())
        && let Some(list) = rest.strip_suffix(b"]}")
        && list.first() == Some(&b'[')
    {
        return Ok(std::borrow::Cow::Borrowed(list));
    }
    // Anything else (an error, another layout): read it properly.
    let value: Value =
        serde_json::from_slice(json).map_err(|e| format!("a reply that does not parse: {e}"))?;
    if let Some(err) = value.get("error") {
        return Err(format!("an error: {err}"));
    }
    match value
        .get("args")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        Some(list) if list.is_array() => Ok(std::borrow::Cow::Owned(
            serde_json::to_vec(list).unwrap_or_default(),
        )),
        _ => Err("a reply without a process list".to_string()),
    }
}

/// Ask the daemon of `home` for its process list. Never starts a daemon. The whole exchange
/// (connect, send, the whole reply) has one deadline, `PM2_PORT_DAEMON_TIMEOUT` seconds (default
/// 10): a stopped or wedged daemon, or one that trickles its reply, cannot hold pm2-port longer.
pub fn process_list(home: &Path) -> Answer {
    let timeout = match timeout() {
        Ok(t) => t,
        Err(why) => return Answer::Failed(why),
    };
    let end = Instant::now() + timeout;
    let stream = match connect(&home.join("rpc.sock"), end) {
        Ok(s) => s,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Answer::NoSocket,
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => return Answer::Stale,
        Err(err) if is_timeout(&err) => {
            return Answer::Failed(too_slow(home, timeout, "it accepted no connection"));
        }
        Err(err) => return Answer::Failed(format!("cannot connect: {err}")),
    };
    let mut exchange = Exchange {
        stream,
        end,
        received: 0,
    };
    let id = format!("pm2-port-{}:0", std::process::id());
    if let Err(err) = exchange.write_all(&monitor_request(&id)) {
        return Answer::Failed(if is_timeout(&err) {
            too_slow(home, timeout, "it took no request")
        } else {
            format!("cannot send: {err}")
        });
    }
    match read_message(&mut exchange) {
        Ok(args) => match parse_reply(&args, &id) {
            Ok(list) => match crate::pm2::parse_process_list(&list) {
                Ok(apps) => Answer::List(apps),
                Err(err) => Answer::Unexpected(format!("a list that does not parse: {err:#}")),
            },
            Err(why) => Answer::Unexpected(why),
        },
        Err(err) if is_timeout(&err) => {
            let phase = match exchange.received {
                0 => "no reply came".to_string(),
                n => format!("its reply stopped after {n} bytes"),
            };
            Answer::Failed(too_slow(home, timeout, &phase))
        }
        Err(err) => Answer::Failed(format!("cannot read the reply: {err}")),
    }
}

/// `PM2_PORT_DAEMON_TIMEOUT`, else the default.
fn timeout() -> Result<Duration, String> {
    parse_timeout(std::env::var_os("PM2_PORT_DAEMON_TIMEOUT").as_deref())
}

/// Seconds, a positive number (fractions allowed); unset or empty is the default. Anything else is
/// an error rather than silently the default.
fn parse_timeout(raw: Option<&std::ffi::OsStr>) -> Result<Duration, String> {
    let Some(raw) = raw.filter(|v| !v.is_empty()) else {
        return Ok(TIMEOUT);
    };
    let text = raw.to_string_lossy();
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            format!("`PM2_PORT_DAEMON_TIMEOUT={text}` is not a positive number of seconds")
        })
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The time left before `end`, or a `TimedOut` error once there is none.
fn left(end: Instant) -> io::Result<Duration> {
    let left = end.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(left)
}

/// Why the exchange was given up after `timeout`, and what to check: a stopped daemon (`kill
/// -STOP`, a debugger, a suspended job) or a wedged one.
fn too_slow(home: &Path, timeout: Duration, phase: &str) -> String {
    let pid = std::fs::read_to_string(home.join("pm2.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok());
    let (ps, pid) = match pid {
        Some(p) => (format!(" (`ps -o stat= -p {p}` shows `T`)"), p.to_string()),
        None => (String::new(), "PID".to_string()),
    };
    format!(
        "it did not answer within {} s ({phase}); a stopped daemon{ps} resumes with `kill -CONT {pid}`, a hung one ends with `pm2 kill` (PM2_PORT_DAEMON_TIMEOUT sets the wait)",
        timeout.as_secs_f64()
    )
}

/// The connection under the exchange's one deadline: each read and write may take the time left.
struct Exchange {
    stream: UnixStream,
    end: Instant,
    /// Bytes of the reply read so far, to say where a slow reply stopped.
    received: usize,
}

impl Read for Exchange {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(left(self.end)?))?;
        let n = self.stream.read(buf)?;
        self.received += n;
        Ok(n)
    }
}

impl Write for Exchange {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(left(self.end)?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A fresh, unconnected, non-blocking Unix stream socket, closed on exec.
#[cfg(not(target_vendor = "apple"))]
fn nonblocking_unix_socket() -> io::Result<UnixStream> {
    // SAFETY: plain socket(2); the descriptor is owned by the UnixStream at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket that nothing else owns.
    Ok(unsafe { UnixStream::from_raw_fd(fd) })
}

/// A fresh, unconnected, non-blocking Unix stream socket, closed on exec. macOS has no
/// `SOCK_NONBLOCK` or `SOCK_CLOEXEC`: the flags are set right after `socket(2)` (a child spawned
/// by another thread in between would inherit the descriptor; std does the same on macOS).
#[cfg(target_vendor = "apple")]
fn nonblocking_unix_socket() -> io::Result<UnixStream> {
    // SAFETY: plain socket(2); the descriptor is owned by the UnixStream at once.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket that nothing else owns.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    // SAFETY: F_SETFD on a descriptor we own.
    if unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// Connect to the Unix socket at `path` before `end`. A blocking `connect()` waits for
/// ever on a full accept queue (a stopped daemon, a listener that never accepts), so the socket is
/// non-blocking and a full queue (`EAGAIN`) is retried until the deadline. The errors that mean
/// something keep their kind: `NotFound` (no socket file) and `ConnectionRefused` (a stale one).
pub(crate) fn connect(path: &Path, end: Instant) -> io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data, valid when zeroed.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a Unix socket path has at most {} bytes",
                addr.sun_path.len() - 1
            ),
        ));
    }
    for (to, from) in addr.sun_path.iter_mut().zip(bytes) {
        *to = *from as libc::c_char;
    }
    let len =
        (std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1) as libc::socklen_t;
    let stream = nonblocking_unix_socket()?;
    loop {
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        let r = unsafe {
            libc::connect(
                stream.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                len,
            )
        };
        if r == 0 {
            break;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            // Already connected by an earlier try that returned EINPROGRESS.
            Some(libc::EISCONN) => break,
            // The accept queue is full (Linux says EAGAIN for Unix sockets); EINPROGRESS and
            // EALREADY, which Linux does not use for them, are waited out the same way.
            Some(libc::EAGAIN | libc::EINPROGRESS | libc::EALREADY) => {
                std::thread::sleep(left(end)?.min(Duration::from_millis(10)));
            }
            _ => return Err(err),
        }
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_has_exactly_one_empty_object_argument() {
        let bytes = monitor_request("7:0");
        let call = br#"j:{"type":"call","method":"getMonitorData","args":[{}]}"#;
        let mut want = vec![0x12];
        want.extend_from_slice(&(call.len() as u32).to_be_bytes());
        want.extend_from_slice(call);
        want.extend_from_slice(&5u32.to_be_bytes());
        want.extend_from_slice(b"s:7:0");
        assert_eq!(bytes, want);
        let args = read_message(&mut bytes.as_slice()).unwrap();
        let call: Value = serde_json::from_slice(&args[0][2..]).unwrap();
        assert_eq!(call["args"], serde_json::json!([{}]));
    }

    #[test]
    fn replies() {
        let ok = encode(&[br#"j:{"args":[[{"name":"a"}]]}"#, b"s:1:0"]);
        let args = read_message(&mut ok.as_slice()).unwrap();
        assert_eq!(
            parse_reply(&args, "1:0").unwrap(),
            br#"[{"name":"a"}]"#.to_vec()
        );
        assert!(parse_reply(&args, "2:0").is_err());
        let spaced = encode(&[br#"j:{ "args" : [ [ ] ] }"#, b"s:1:0"]);
        let args = read_message(&mut spaced.as_slice()).unwrap();
        assert_eq!(&*parse_reply(&args, "1:0").unwrap(), b"[]");
        let err = encode(&[br#"j:{"error":"boom","stack":""}"#, b"s:1:0"]);
        let args = read_message(&mut err.as_slice()).unwrap();
        assert!(parse_reply(&args, "1:0").unwrap_err().contains("boom"));
    }

    #[test]
    fn timeouts() {
        use std::ffi::OsStr;
        assert_eq!(parse_timeout(None), Ok(TIMEOUT));
        assert_eq!(parse_timeout(Some(OsStr::new(""))), Ok(TIMEOUT));
        assert_eq!(
            parse_timeout(Some(OsStr::new("3"))),
            Ok(Duration::from_secs(3))
        );
        assert_eq!(
            parse_timeout(Some(OsStr::new(" 0.5 "))),
            Ok(Duration::from_millis(500))
        );
        for bad in ["0", "-1", "ten", "NaN", "inf", "1e30"] {
            let err = parse_timeout(Some(OsStr::new(bad))).unwrap_err();
            assert!(err.contains("PM2_PORT_DAEMON_TIMEOUT"), "{bad}: {err}");
        }
    }

    #[test]
    fn lengths_over_the_caps_are_refused_before_reading() {
        let mut msg = vec![0x11];
        msg.extend_from_slice(&(MAX_ARGUMENT as u32 + 1).to_be_bytes());
        let err = read_message(&mut msg.as_slice()).unwrap_err();
        assert!(
            err.to_string().contains("cap of 64 MiB for one argument"),
            "{err}"
        );
        // Two arguments within the argument cap, over the message cap together.
        let half = (MAX_MESSAGE / 2 + 1) as u32;
        let mut msg = vec![0x12];
        msg.extend_from_slice(&half.to_be_bytes());
        msg.resize(msg.len() + half as usize, b'x');
        msg.extend_from_slice(&half.to_be_bytes());
        let err = read_message(&mut msg.as_slice()).unwrap_err();
        assert!(
            err.to_string().contains("cap of 64 MiB for one message"),
            "{err}"
        );
    }

    #[test]
    fn truncated_message_is_an_error() {
        let mut msg = encode(&[b"j:{}", b"s:1"]);
        msg.truncate(msg.len() - 1);
        assert!(read_message(&mut msg.as_slice()).is_err());
    }
}
