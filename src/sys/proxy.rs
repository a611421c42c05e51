//! The tunnel's HTTP proxy on the laptop's loopback: `NAME.localhost:PORT` to that app's forward,
//! on hyper 1 and tokio (a runtime of its own on one thread; the rest of the program stays
//! synchronous). Which name goes where, and the pages it answers itself, are decided by the pure
//! `tunnel::names` and `tunnel::pages`; this module only moves bytes:
//!
//! - requests and responses stream through (a large body or server-sent events are never held
//!   whole), with `Host: localhost:REMOTE_PORT` (dev servers check it), `X-Forwarded-Host` and
//!   `X-Forwarded-Proto`; an `Origin` that is the app's proxied origin becomes its own origin too;
//! - WebSocket upgrades (hot reload) are joined end to end once both sides switched;
//! - each connection to the proxy has its own connection to the forward, kept alive and reused for
//!   its next requests (one SSH channel each, as without the proxy).

use std::convert::Infallible;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Either, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::tunnel::names::{Routes, Site, Target};
use crate::tunnel::pages;

/// A page the proxy answers itself (or its event stream).
type Page = BoxBody<Bytes, hyper::Error>;
/// What a browser gets: the app's answer as it comes, or a page of the proxy's.
type Body = Either<Incoming, Page>;
/// What goes to the app: the browser's request body as it comes, or none (a request sent again).
type UpBody = Either<Incoming, Empty<Bytes>>;
/// A connection to a forward, ready for a request.
type Sender = SendRequest<UpBody>;

const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// Headers about the message, which a `Connection` header cannot name away (the body's framing,
/// the host).
const MESSAGE: [HeaderName; 3] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::HOST,
];
/// Headers about one connection, not the message.
const HOP_BY_HOP: [HeaderName; 5] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::UPGRADE,
];

/// The connection to the forward that a browser's connection uses, kept between its requests: one
/// upstream connection for each connection to the proxy, as a direct connection would be.
#[derive(Default)]
struct Affinity(std::sync::Mutex<Option<(u16, Sender)>>);

struct Shared {
    routes: RwLock<Arc<Routes>>,
    /// Bumped at each change of the table: the index page's event streams wait on it.
    version: tokio::sync::watch::Sender<u64>,
    port: u16,
}

/// The running proxy. Dropping it stops it.
pub struct Proxy {
    shared: Arc<Shared>,
    /// The port it listens on (on 127.0.0.1, and on ::1 where the machine has IPv6).
    pub port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("port {port} is taken on this machine's loopback")]
    Taken { port: u16 },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(#[from] std::io::Error),
}

/// Listen on `127.0.0.1:port` and `[::1]:port` (port 0: one the system picks, the same on both).
fn bind(port: u16) -> Result<(Vec<std::net::TcpListener>, u16), StartError> {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let first = std::net::TcpListener::bind(v4).map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => StartError::Taken { port },
        _ => StartError::Bind { addr: v4, source },
    })?;
    let port = first.local_addr()?.port();
    let mut listeners = vec![first];
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    match std::net::TcpListener::bind(v6) {
        Ok(l) => listeners.push(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(StartError::Taken { port });
        }
        // No IPv6 here: 127.0.0.1 alone.
        Err(_) => {}
    }
    for l in &listeners {
        l.set_nonblocking(true)?;
    }
    Ok((listeners, port))
}

impl Proxy {
    pub fn start(port: u16) -> Result<Proxy, StartError> {
        let (listeners, port) = bind(port)?;
        let (version, _) = tokio::sync::watch::channel(0u64);
        let shared = Arc::new(Shared {
            routes: RwLock::new(Arc::new(Routes::default())),
            version,
            port,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    // Each connection costs two descriptors (the browser's, the forward's): at most
                    // half of what is left after a margin for the tunnel's own work.
                    let most = (crate::sys::proc::open_files_limit().saturating_sub(128) / 2)
                        .clamp(16, 8192);
                    let slots = Arc::new(tokio::sync::Semaphore::new(most));
                    for l in listeners {
                        match tokio::net::TcpListener::from_std(l) {
                            Ok(l) => {
                                tokio::spawn(accept(l, Arc::clone(&serving), Arc::clone(&slots)));
                            }
                            Err(e) => warn!("the proxy cannot listen: {e}"),
                        }
                    }
                    let _ = stopped.await;
                });
            })?;
        Ok(Proxy {
            shared,
            port,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Serve this table from now on (the index pages open are told when it changed).
    pub fn update(&self, routes: Routes) {
        let mut current = self
            .shared
            .routes
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if **current != routes {
            *current = Arc::new(routes);
            drop(current);
            self.shared.version.send_modify(|v| *v += 1);
        }
    }

    /// The table served now.
    pub fn routes(&self) -> Arc<Routes> {
        Arc::clone(&self.shared.routes.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long a client may take to send a request's headers (and an idle kept connection may wait
/// for its next request) before its connection is closed.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn accept(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    slots: Arc<tokio::sync::Semaphore>,
) {
    loop {
        // A connection beyond the limit waits in the listen queue until one ends.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors, a connection reset before accept: try again shortly.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _slot = slot;
            let upstream = Arc::new(Affinity::default());
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                let upstream = Arc::clone(&upstream);
                async move { Ok::<_, Infallible>(handle(req, &shared, &upstream).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn full(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut res = Response::new(Either::Right(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    ));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

const HTML: &str = "text/html; charset=utf-8";

async fn handle(
    req: Request<Incoming>,
    shared: &Arc<Shared>,
    upstream: &Affinity,
) -> Response<Body> {
    let routes = Arc::clone(&shared.routes.read().unwrap_or_else(|e| e.into_inner()));
    let port = shared.port;
    // The name the browser used: a request in absolute form names it in its target, which wins
    // over `Host` (RFC 9112, 3.2.2).
    let named = match req.uri().authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => req.headers().get(header::HOST).cloned(),
    };
    let host = named
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    match routes.resolve(host) {
        Target::Foreign => full(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            pages::refused(host),
        ),
        Target::Index => match req.uri().path() {
            "/" => full(StatusCode::OK, HTML, pages::index(&routes, port)),
            pages::APPS_PATH => full(
                StatusCode::OK,
                "application/json",
                pages::model(&routes, port).to_string(),
            ),
            pages::EVENTS_PATH => events(shared),
            _ => full(
                StatusCode::NOT_FOUND,
                HTML,
                pages::not_found(req.uri().path(), &routes, port),
            ),
        },
        Target::Unknown(name) => full(
            StatusCode::NOT_FOUND,
            HTML,
            pages::not_found(&name, &routes, port),
        ),
        Target::Site(site) => match site.local_port {
            None => full(
                StatusCode::BAD_GATEWAY,
                HTML,
                pages::bad_gateway(site, "it has no forward (not online, or no port)"),
            ),
            Some(local) => {
                let to = Upstream {
                    site,
                    local,
                    port,
                    named: named.clone(),
                };
                forward(req, &routes, to, upstream).await
            }
        },
    }
}

/// The index page's updates: the table now, then again at each change, until the client goes
/// or the proxy stops.
fn events(shared: &Arc<Shared>) -> Response<Body> {
    let rx = shared.version.subscribe();
    let shared = Arc::clone(shared);
    let stream = futures_util::stream::unfold((rx, true), move |(mut rx, first)| {
        let shared = Arc::clone(&shared);
        async move {
            if !first && rx.changed().await.is_err() {
                return None;
            }
            let routes = Arc::clone(&shared.routes.read().unwrap_or_else(|e| e.into_inner()));
            let data = format!("data: {}\n\n", pages::model(&routes, shared.port));
            Some((
                Ok::<_, hyper::Error>(Frame::data(Bytes::from(data))),
                (rx, false),
            ))
        }
    });
    let mut res = Response::new(Either::Right(BodyExt::boxed(StreamBody::new(stream))));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Where a request goes: the app, its forward's port here, the proxy's port, and the name the
/// browser used.
struct Upstream<'a> {
    site: &'a Site,
    local: u16,
    port: u16,
    named: Option<HeaderValue>,
}

/// Pass the request to the app's forward on `127.0.0.1:local` and its answer back.
async fn forward(
    mut req: Request<Incoming>,
    routes: &Routes,
    to: Upstream<'_>,
    upstream: &Affinity,
) -> Response<Body> {
    let Upstream {
        site,
        local,
        port,
        named,
    } = to;
    // An upgrade is asked for with both headers (`Connection: keep-alive, Upgrade` included); a
    // lone `Upgrade` header is a hop-by-hop header like any other.
    let upgrading =
        req.headers().contains_key(header::UPGRADE) && names_token(req.headers(), "upgrade");
    let ours = upgrading.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // The app gets the origin form (`/path?query`), also of a request in absolute form.
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        parts.uri = match origin_form(&parts.uri) {
            Some(uri) => uri,
            None => {
                return full(
                    StatusCode::BAD_REQUEST,
                    "text/plain; charset=utf-8",
                    "a request target this proxy cannot pass on\n".into(),
                );
            }
        };
    }
    let remote = site.remote_port.unwrap_or(local);
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers, upgrading);
    one_length(headers);
    // The app's own host, and whether the browser says the request comes from the app's own
    // (proxied) origin.
    let own = format!("localhost:{remote}");
    headers.remove(header::HOST);
    headers.remove(X_FORWARDED_HOST);
    let same_origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| {
            routes
                .origins(site, port)
                .iter()
                .any(|x| x.eq_ignore_ascii_case(o))
        });
    if let Ok(value) = HeaderValue::from_str(&own) {
        if same_origin {
            // One origin throughout, whatever the app compares `Origin` with (`Host` for Django,
            // SvelteKit, Astro; `X-Forwarded-Host` for Next.js Server Actions and Rails).
            if let Ok(origin) = HeaderValue::from_str(&format!("http://{own}")) {
                headers.insert(header::ORIGIN, origin);
            }
            headers.insert(X_FORWARDED_HOST, value.clone());
        } else if let Some(name) = &named {
            headers.insert(X_FORWARDED_HOST, name.clone());
        }
        headers.insert(header::HOST, value);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    // A request without a body that changes nothing can be sent again when a kept connection
    // turns out closed.
    let idempotent = matches!(
        parts.method,
        hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS
    );
    let again = (hyper::body::Body::is_end_stream(&body) && !upgrading && idempotent)
        .then(|| parts.clone());
    let sent = send(
        upstream,
        local,
        upgrading,
        Request::from_parts(parts, Either::Left(body)),
    )
    .await;
    let sent = match (sent, again) {
        (Err(Failure::Stale(_)), Some(parts)) => {
            // Boxed: a rare path, kept out of every request's future.
            Box::pin(send(
                upstream,
                local,
                false,
                Request::from_parts(parts, Either::Right(Empty::new())),
            ))
            .await
        }
        (sent, _) => sent,
    };
    let mut res = match sent {
        Ok(res) => res,
        Err(Failure::Stale(err) | Failure::Fresh(err)) => {
            return full(
                StatusCode::BAD_GATEWAY,
                HTML,
                pages::bad_gateway(site, &format!("its forward (127.0.0.1:{local}) gave {err}")),
            );
        }
    };
    if res.status() == StatusCode::SWITCHING_PROTOCOLS && ours.is_none() {
        return full(
            StatusCode::BAD_GATEWAY,
            HTML,
            pages::bad_gateway(
                site,
                "it switched protocols on a request that asked for none",
            ),
        );
    }
    // A redirect the app built from the host it was given goes back to the name the browser
    // used (its cookies are there).
    if let (Some(location), Some(named)) = (res.headers().get(header::LOCATION), &named)
        && let (Ok(location), Ok(named)) = (location.to_str(), named.to_str())
        && let Some(moved) = back_to_name(location, named, remote, local)
        && let Ok(value) = HeaderValue::from_str(&moved)
    {
        res.headers_mut().insert(header::LOCATION, value);
    }
    if res.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(ours) = ours
    {
        let theirs = hyper::upgrade::on(&mut res);
        tokio::spawn(async move {
            if let (Ok(a), Ok(b)) = (ours.await, theirs.await) {
                let _ =
                    tokio::io::copy_bidirectional(&mut TokioIo::new(a), &mut TokioIo::new(b)).await;
            }
        });
    }
    let switching = res.status() == StatusCode::SWITCHING_PROTOCOLS;
    strip_hop_by_hop(res.headers_mut(), switching);
    // (hyper read a repeated length only when all its values agree; it would not write it.)
    one_length(res.headers_mut());
    res.map(Either::Left)
}

/// `uri` (in absolute form) in origin form: its path, `/` when it has none, and its query.
fn origin_form(uri: &hyper::Uri) -> Option<hyper::Uri> {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    if target.starts_with('/') {
        target.parse().ok()
    } else {
        format!("/{target}").parse().ok()
    }
}

/// Whether a `Connection` header lists `token`.
fn names_token(headers: &hyper::HeaderMap, token: &str) -> bool {
    connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// The tokens of every `Connection` header, as bytes (a value need not be valid text: a token
/// that is not is still no reason to skip the others).
fn connection_tokens(headers: &hyper::HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// One `Content-Length` of several (which hyper accepted only as the same value).
fn one_length(headers: &mut hyper::HeaderMap) {
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    if let (Some(first), Some(_)) = (lengths.next(), lengths.next()) {
        let first = first.clone();
        headers.insert(header::CONTENT_LENGTH, first);
    }
}

/// `location` moved to `http://NAMED...` when it points at the app's own address as the app knows
/// it (`localhost` or `127.0.0.1`, its port there or its forward's here).
fn back_to_name(location: &str, named: &str, remote: u16, local: u16) -> Option<String> {
    let lower = location.to_ascii_lowercase();
    for host in ["localhost", "127.0.0.1"] {
        for port in [remote, local] {
            let prefix = format!("http://{host}:{port}");
            if let Some(rest) = lower.strip_prefix(&prefix)
                && (rest.is_empty() || rest.starts_with(['/', '?', '#']))
            {
                return Some(format!("http://{named}{}", &location[prefix.len()..]));
            }
        }
    }
    None
}

/// Why a request could not be passed on (an error chain, as text).
enum Failure {
    /// On a kept connection, which the app may have closed meanwhile: worth one more try.
    Stale(String),
    /// On a new connection.
    Fresh(String),
}

/// An error and its sources, as one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut why = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    why
}

/// Send `req` to the forward on `127.0.0.1:local`: on this connection's kept upstream connection
/// when there is one (an upgrade takes a new one of its own), and keep that connection for the
/// next request.
async fn send(
    upstream: &Affinity,
    local: u16,
    upgrading: bool,
    req: Request<UpBody>,
) -> Result<Response<Incoming>, Failure> {
    let kept = if upgrading {
        None
    } else {
        upstream
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .filter(|(port, _)| *port == local)
    };
    let kept = match kept {
        Some((_, mut sender)) => sender.ready().await.is_ok().then_some(sender),
        None => None,
    };
    let (mut sender, stale) = match kept {
        Some(sender) => (sender, true),
        // Boxed: once per connection, kept out of every request's future.
        None => (
            Box::pin(open(local, upgrading))
                .await
                .map_err(Failure::Fresh)?,
            false,
        ),
    };
    let res = sender.send_request(req).await.map_err(|e| {
        let why = chain(&e);
        if stale {
            Failure::Stale(why)
        } else {
            Failure::Fresh(why)
        }
    })?;
    if !upgrading {
        *upstream.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((local, sender));
    }
    Ok(res)
}

/// A new HTTP/1.1 connection to the forward on `127.0.0.1:local`.
async fn open(local: u16, upgrades: bool) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, local))
        .await
        .map_err(|e| format!("a connection error: {e}"))?;
    // Small requests and answers: sent at once, not held back (Nagle).
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| chain(&e))?;
    tokio::spawn(async move {
        let _ = if upgrades {
            conn.with_upgrades().await
        } else {
            conn.await
        };
    });
    Ok(sender)
}

/// Headers about one connection, not the message: each side's connection is its own (hyper frames
/// the bodies itself, so `Transfer-Encoding` stays as the body's description). An upgrade keeps
/// `Upgrade` and `Connection: upgrade`, and nothing else of that kind.
fn strip_hop_by_hop(headers: &mut hyper::HeaderMap, upgrade: bool) {
    // The headers `Connection` names, besides the ones removed anyway (`keep-alive`, mostly) and
    // the ones that describe the message itself, which no `Connection` header can take away.
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| {
            !HOP_BY_HOP
                .iter()
                .chain(&MESSAGE)
                .any(|h| t.eq_ignore_ascii_case(h.as_str().as_bytes()))
        })
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    let protocols: Vec<HeaderValue> = if upgrade {
        headers.get_all(header::UPGRADE).iter().cloned().collect()
    } else {
        Vec::new()
    };
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if !protocols.is_empty() {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        for p in protocols {
            headers.append(header::UPGRADE, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{back_to_name, one_length, origin_form, strip_hop_by_hop};
    use hyper::header::{self, HeaderName, HeaderValue};

    #[test]
    fn headers_about_the_connection_stay_on_their_side() {
        let mut h = hyper::HeaderMap::new();
        for (n, v) in [
            ("Connection", "keep-alive, X-Secret , Upgrade"),
            ("Connection", "x-other"),
            ("Keep-Alive", "timeout=5"),
            ("X-Secret", "1"),
            ("X-Other", "2"),
            ("TE", "trailers"),
            ("Upgrade", "websocket"),
            ("Proxy-Connection", "keep-alive"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "text/plain"),
        ] {
            h.append(
                hyper::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        strip_hop_by_hop(&mut h, false);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["content-type", "transfer-encoding"]);
    }

    #[test]
    fn connection_cannot_name_away_the_message_and_bad_tokens_skip_only_themselves() {
        let mut h = hyper::HeaderMap::new();
        h.append(
            header::CONNECTION,
            HeaderValue::from_bytes(b"x-secret, caf\xe9, Host, Content-Length, ,upgrade").unwrap(),
        );
        for (n, v) in [
            ("x-secret", "1"),
            ("host", "shop.localhost"),
            ("content-length", "2"),
            ("upgrade", "websocket"),
            ("upgrade", "h2c"),
            ("keep-alive", "timeout=5"),
        ] {
            h.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        let mut upgrade = h.clone();
        strip_hop_by_hop(&mut h, false);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["content-length", "host"]);
        // An upgrade keeps its protocols and `Connection: upgrade`, and nothing else of the kind.
        strip_hop_by_hop(&mut upgrade, true);
        assert_eq!(upgrade.get(header::CONNECTION).unwrap(), "upgrade");
        let protocols: Vec<_> = upgrade.get_all(header::UPGRADE).iter().collect();
        assert_eq!(protocols, ["websocket", "h2c"]);
        assert!(!upgrade.contains_key("x-secret") && !upgrade.contains_key("keep-alive"));
    }

    #[test]
    fn a_target_in_absolute_form_becomes_its_origin_form() {
        let form = |t: &str| origin_form(&t.parse().unwrap()).map(|u| u.to_string());
        assert_eq!(
            form("http://shop.localhost:8800/a/b?x=1").as_deref(),
            Some("/a/b?x=1")
        );
        assert_eq!(
            form("http://shop.localhost:8800?x=1").as_deref(),
            Some("/?x=1")
        );
        assert_eq!(form("http://shop.localhost:8800").as_deref(), Some("/"));
    }

    #[test]
    fn a_length_given_twice_is_given_once() {
        let mut h = hyper::HeaderMap::new();
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
        one_length(&mut h);
        let lengths: Vec<_> = h.get_all(header::CONTENT_LENGTH).iter().collect();
        assert_eq!(lengths, ["2"]);
    }

    #[test]
    fn redirects_to_the_apps_own_address_go_back_to_the_name() {
        let moved = |l| back_to_name(l, "shop.localhost:8800", 3000, 13000);
        assert_eq!(
            moved("http://localhost:3000/dashboard?x=1").as_deref(),
            Some("http://shop.localhost:8800/dashboard?x=1")
        );
        assert_eq!(
            moved("http://127.0.0.1:13000").as_deref(),
            Some("http://shop.localhost:8800")
        );
        assert_eq!(
            moved("HTTP://LOCALHOST:3000#top").as_deref(),
            Some("http://shop.localhost:8800#top")
        );
        // Elsewhere: left alone.
        assert_eq!(moved("http://localhost:30001/x"), None);
        assert_eq!(moved("http://localhost:4000/"), None);
        assert_eq!(moved("https://accounts.example/login"), None);
        assert_eq!(moved("/relative"), None);
    }
}
