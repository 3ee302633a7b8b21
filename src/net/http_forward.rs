//! HTTP/1.1 forwarding for Kubernetes traffic, used by both ends: the server's
//! impersonating backend (towards the API server) and the local `proxy kube` (towards
//! the routing server).
//!
//! - [`Pool`]: a few idle HTTP/1.1 connections per upstream. A connection goes back
//!   to the pool once its response body has been read to the end, so a `watch` keeps
//!   its connection to itself while short requests share the others. A request that
//!   an idle connection could not even start (the peer had closed it) is retried once
//!   on a fresh connection.
//! - [`forward`]: sends one request through a pool, streaming bodies both ways (no
//!   buffering, so `watch` and `logs -f` flow), dropping hop-by-hop headers, and on
//!   `101 Switching Protocols` (exec, attach, port-forward: WebSocket or SPDY)
//!   upgrading both sides and relaying them with [`crate::net::relay::relay`].
//!
//! HTTP/1.1 only, on every hop: the upgrades break over HTTP/2 (docs/protocol.md §10).
//!
//! Every task here is in the listener's books ([`Tasks`]): an upgraded relay holds
//! the permit of the connection it came from; a pooled upstream connection is
//! shared, so it holds none, and once draining starts no connection goes back to
//! the pool (so idle ones end instead of waiting for the grace period).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tracing::debug;

use crate::error::Error;
use crate::net::io::BoxIo;
use crate::net::relay::relay;
use crate::net::tasks::Tasks;
use crate::proto::kube_status;

pub use crate::proto::http::Body;

/// Opens a new byte stream to the upstream (TCP+TLS, or the dialer).
pub type DialFn = Arc<dyn Fn() -> BoxFuture<'static, crate::Result<BoxIo>> + Send + Sync>;

/// How long an upstream may take to send response headers. Long-running requests
/// (watch, logs -f, exec) answer their headers at once and then stream.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
/// Idle connections older than this are not reused. Kept below the routing server's
/// default header deadline (10 s, which also ends idle keep-alive connections), so
/// the pool does not pick a connection the server is about to close.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per upstream.
pub const MAX_IDLE: usize = 8;

/// Headers that belong to one hop (RFC 9110 §7.6.1) and are never forwarded as is.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A small pool of HTTP/1.1 connections to one upstream.
pub struct Pool {
    name: String,
    dial: DialFn,
    tasks: Tasks,
    idle: Mutex<Vec<(SendRequest<Incoming>, Instant)>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool for the upstream `name` (used in messages), opening streams with `dial`,
    /// running its connections and upgraded relays in `tasks`.
    pub fn new(name: impl Into<String>, dial: DialFn, tasks: Tasks) -> Arc<Pool> {
        Arc::new(Pool { name: name.into(), dial, tasks, idle: Mutex::new(Vec::new()) })
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Idle connections right now (for tests and logs).
    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    async fn connect(&self) -> crate::Result<SendRequest<Incoming>> {
        let io = (self.dial)().await?;
        let (send, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| Error::Backend { name: self.name.clone(), reason: format!("HTTP handshake failed: {e}") })?;
        let name = self.name.clone();
        self.tasks.spawn_shared(async move {
            if let Err(e) = conn.with_upgrades().await {
                debug!(upstream = %name, error = %e, "upstream connection ended with an error");
            }
        });
        Ok(send)
    }

    fn take_idle(&self) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((send, since)) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT && send.is_ready() {
                return Some(send);
            }
        }
        None
    }

    /// Returns `send` to the pool once its current response has been read to the end.
    fn put_back(self: &Arc<Self>, mut send: SendRequest<Incoming>) {
        let pool: Weak<Pool> = Arc::downgrade(self);
        let stop = self.tasks.stopping().clone();
        self.tasks.spawn_shared(async move {
            if send.ready().await.is_err() {
                return; // closed (or taken over by an upgrade)
            }
            if stop.is_cancelled() {
                return; // draining: let the connection end
            }
            let Some(pool) = pool.upgrade() else { return };
            let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|(s, since)| since.elapsed() < IDLE_TIMEOUT && !s.is_closed());
            if idle.len() < MAX_IDLE {
                idle.push((send, Instant::now()));
            }
        });
    }

    /// Sends `req` on an idle connection or a new one.
    ///
    /// # Errors
    /// The dial error, or [`Error::Backend`] when the exchange fails.
    pub async fn send(self: &Arc<Self>, req: Request<Incoming>) -> crate::Result<Response<Incoming>> {
        let http = |e: hyper::Error| Error::Backend { name: self.name.clone(), reason: e.to_string() };
        let (mut send, resp) = match self.take_idle() {
            Some(mut send) => match send.try_send_request(req).await {
                Ok(resp) => (send, resp),
                Err(mut e) => match e.take_message() {
                    // The idle connection was closed before the request went out:
                    // nothing reached the upstream, so a fresh connection is safe.
                    Some(req) => {
                        debug!(upstream = %self.name, "idle connection was closed; retrying on a new one");
                        let mut fresh = self.connect().await?;
                        let resp = fresh.send_request(req).await.map_err(http)?;
                        (fresh, resp)
                    }
                    None => return Err(http(e.into_error())),
                },
            },
            None => {
                let mut fresh = self.connect().await?;
                let resp = fresh.send_request(req).await.map_err(http)?;
                (fresh, resp)
            }
        };
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            // The connection now belongs to the upgrade: hold the sender until the
            // connection task has handed its stream over (then `ready` fails).
            self.tasks.spawn_shared(async move {
                let _ = send.ready().await;
            });
        } else {
            self.put_back(send);
        }
        Ok(resp)
    }
}

/// Whether the headers ask for a protocol upgrade (`Connection: upgrade` + `Upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE) && connection_tokens(headers).iter().any(|t| t == "upgrade")
}

/// The lower-cased tokens of every `Connection` header.
pub fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Drops hop-by-hop headers (and those `Connection` names). When `upgrade` is true the
/// `Upgrade` header and `Connection: Upgrade` are kept: the upgrade is end to end.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let kept_upgrade: Vec<HeaderValue> =
        if upgrade { headers.get_all(UPGRADE).iter().cloned().collect() } else { vec![] };
    for token in connection_tokens(headers) {
        if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade && !kept_upgrade.is_empty() {
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        for v in kept_upgrade {
            headers.append(UPGRADE, v);
        }
    }
}

/// Takes over an upgraded exchange instead of the plain relay (the server's kube
/// backend records exec sessions through it).
pub trait UpgradeHandler: Send {
    /// Sees the upstream's `101` headers before the client does. An `Err` is
    /// answered to the client instead, and the upgraded upstream is dropped.
    ///
    /// # Errors
    /// The response to give instead of the `101`.
    fn accept(&mut self, response: &HeaderMap) -> Result<(), Box<Response<Body>>>;
    /// Relays the upgraded client and upstream streams until the session ends.
    fn relay(self: Box<Self>, client: BoxIo, upstream: BoxIo) -> BoxFuture<'static, ()>;
}

/// Forwards `req` through `pool` and returns the response to give the client: the
/// upstream's (body streamed through), or a `Status` error naming the upstream.
/// A `101` upgrades both connections and relays them in a new task.
pub async fn forward(pool: &Arc<Pool>, req: Request<Incoming>) -> Response<Body> {
    forward_with(pool, req, None).await
}

/// As [`forward`]; a `101` goes to `handler` (when given) instead of the plain relay.
pub async fn forward_with(
    pool: &Arc<Pool>,
    mut req: Request<Incoming>,
    mut handler: Option<Box<dyn UpgradeHandler>>,
) -> Response<Body> {
    let upgrade = is_upgrade(req.headers());
    let downstream = upgrade.then(|| hyper::upgrade::on(&mut req));
    strip_hop_by_hop(req.headers_mut(), upgrade);
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut resp = match tokio::time::timeout(RESPONSE_TIMEOUT, pool.send(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return error_response(&path, pool.name(), &e),
        Err(_) => {
            return kube_status::for_path(
                &path,
                StatusCode::GATEWAY_TIMEOUT,
                &format!("{} sent no response within {}s", pool.name(), RESPONSE_TIMEOUT.as_secs()),
            )
        }
    };
    debug!(upstream = %pool.name(), %method, %path, status = resp.status().as_u16(), "forwarded");
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(downstream) = downstream else {
            return kube_status::for_path(
                &path,
                StatusCode::BAD_GATEWAY,
                &format!("{} switched protocols without being asked to", pool.name()),
            );
        };
        if let Some(h) = handler.as_mut() {
            if let Err(refusal) = h.accept(resp.headers()) {
                return *refusal;
            }
        }
        let upstream = hyper::upgrade::on(&mut resp);
        let name = pool.name().to_string();
        // Part of the client's connection: holds its permit, drained with it.
        pool.tasks.spawn(async move {
            match tokio::try_join!(downstream, upstream) {
                Ok((d, u)) if handler.is_some() => {
                    if let Some(h) = handler {
                        h.relay(Box::new(TokioIo::new(d)), Box::new(TokioIo::new(u))).await;
                    }
                }
                Ok((d, u)) => match relay(&mut TokioIo::new(d), &mut TokioIo::new(u)).await {
                    Ok(c) => debug!(upstream = %name, sent = c.a_to_b, received = c.b_to_a, "upgraded stream closed"),
                    Err(e) => debug!(upstream = %name, error = %e, "upgraded stream ended with an error"),
                },
                Err(e) => debug!(upstream = %name, error = %e, "upgrade did not complete"),
            }
        });
        let (parts, _) = resp.into_parts();
        return Response::from_parts(parts, Empty::new().map_err(|never| match never {}).boxed_unsync());
    }
    strip_hop_by_hop(resp.headers_mut(), false);
    resp.map(|b| b.boxed_unsync())
}

/// The error answer for a request to `path` that failed with upstream `name`
/// (logged: the caller's tool may show only part of it). An upstream that cannot
/// be reached is a 502: client-go replaces the text of a 503 on discovery paths
/// with "the server is currently unable to handle the request", but shows it for
/// a 502 (and a `Status` 502 elsewhere is printed with its message).
pub fn error_response(path: &str, name: &str, e: &Error) -> Response<Body> {
    tracing::info!(upstream = %name, %path, error = %e, "upstream request failed");
    let (code, msg) = match e {
        Error::Refused(msg) => (StatusCode::FORBIDDEN, msg.clone()),
        Error::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, e.to_string()),
        Error::Backend { .. }
        | Error::WebApi { .. }
        | Error::WebApiStatus { .. }
        | Error::ProxyConnect { .. }
        | Error::Upgrade { .. } => (StatusCode::BAD_GATEWAY, e.to_string()),
        other => (StatusCode::BAD_GATEWAY, format!("{name} is unreachable: {other}")),
    };
    kube_status::for_path(path, code, &msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Bytes;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn upgrade_detection() {
        assert!(is_upgrade(&headers(&[("connection", "Upgrade"), ("upgrade", "websocket")])));
        assert!(is_upgrade(&headers(&[("connection", "keep-alive, upgrade"), ("upgrade", "SPDY/3.1")])));
        assert!(!is_upgrade(&headers(&[("upgrade", "websocket")])));
        assert!(!is_upgrade(&headers(&[("connection", "upgrade")])));
        assert!(!is_upgrade(&headers(&[("connection", "close")])));
    }

    #[test]
    fn strips_hop_by_hop_but_keeps_upgrades() {
        let mut h = headers(&[
            ("connection", "Upgrade, X-Secret-Hop"),
            ("upgrade", "websocket"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic abc"),
            ("sec-websocket-protocol", "v5.channel.k8s.io"),
            ("content-length", "0"),
        ]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("connection").unwrap(), "Upgrade");
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        for gone in ["x-secret-hop", "keep-alive", "transfer-encoding", "proxy-authorization"] {
            assert!(!h.contains_key(gone), "{gone} should be dropped");
        }
        assert_eq!(h.get("sec-websocket-protocol").unwrap(), "v5.channel.k8s.io");
        assert_eq!(h.get("content-length").unwrap(), "0");

        let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("accept", "*/*")]);
        strip_hop_by_hop(&mut h, false);
        assert!(!h.contains_key("connection") && !h.contains_key("upgrade"));
        assert!(h.contains_key("accept"));
    }

    /// A pool in front of a counting HTTP server: sequential requests through
    /// `forward` share one upstream connection.
    #[tokio::test]
    async fn sequential_requests_reuse_one_connection() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::net::{TcpListener, TcpStream};

        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_addr = backend.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = backend.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        let body = http_body_util::Full::new(Bytes::from(req.uri().path().to_string()));
                        Ok::<_, std::convert::Infallible>(Response::new(body))
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        });
        let dials = Arc::new(AtomicUsize::new(0));
        let d = dials.clone();
        let dial: DialFn = Arc::new(move || {
            d.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { Ok(Box::new(TcpStream::connect(backend_addr).await?) as BoxIo) })
        });
        let pool = Pool::new("test upstream", dial, Tasks::new());
        let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_addr = front.local_addr().unwrap();
        let p = pool.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = front.accept().await {
                let p = p.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let p = p.clone();
                        async move { Ok::<_, std::convert::Infallible>(forward(&p, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        });
        for i in 0..5 {
            // A new client connection each time, as separate kubectl runs would.
            let tcp = TcpStream::connect(front_addr).await.unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
            tokio::spawn(conn);
            let req = Request::get(format!("/r{i}")).body(Empty::<Bytes>::new()).unwrap();
            let resp = send.send_request(req).await.unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("/r{i}").as_bytes());
            // Let the pool take the connection back before the next request.
            for _ in 0..100 {
                if pool.idle_count() == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        assert_eq!(dials.load(Ordering::SeqCst), 1, "one upstream connection for five requests");
    }

    #[test]
    fn errors_become_statuses() {
        let r = error_response("/api/v1/pods", "kube cluster dev", &Error::Refused("access denied".into()));
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = error_response("/api", "dev", &Error::Io(std::io::ErrorKind::ConnectionRefused.into()));
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    }
}
