//! Local listeners for client tools: the accept loop of [`crate::net::accept`] on
//! loopback, each connection counted by a [`Meter`] and handed to a handler (by
//! default: dial the target and relay), and draining on shutdown. Listeners bind
//! 127.0.0.1 unless told otherwise. Once the identity has expired, handlers refuse
//! new connections with [`expired`]'s sentence instead of dialling; an HTTP request
//! that cannot be carried (proxy down, identity revoked: see [`explain`]) is
//! answered with [`unreachable_page`] instead of an empty reply. The
//! per-protocol handlers live beside it: [`db`] (Postgres and MySQL clients),
//! [`kube`] (the HTTPS endpoint for kubectl), [`hostcheck`] (DNS-rebinding and
//! cross-site protection for HTTP apps, on every request of a connection).

pub mod db;
pub mod hostcheck;
pub mod kube;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::client::dial::{Dialer, Target};
use crate::client::local::hostcheck::{Framer, Refusal};
use crate::client::session::Session;
use crate::client::webapi;
use crate::error::{Error, Result};
use crate::net::accept;
use crate::net::io::{IoStream, Noted};
use crate::net::meter::{Meter, Metered};
use crate::net::mux::StreamRefused;
use crate::net::relay::{relay, relay_link, Counts};
use crate::net::tasks::Tasks;
use crate::proto::naming::ResourceRef;
use crate::proto::webapi::Outcome;

/// An accepted local connection, counted by the listener's [`Meter`].
pub type LocalConn = Metered<TcpStream>;

/// Handles one accepted local connection.
pub type Handler = Arc<dyn Fn(LocalConn) -> BoxFuture<'static, ()> + Send + Sync>;

/// The sentence that refuses a new connection once the identity new connections
/// would present has expired (renewal failed, or the identity is not renewable).
pub fn expired(dialer: &Dialer) -> Option<String> {
    dialer.identity().caller.expired_now()
}

/// Binds `addr:port` (port 0 picks a free one) with the larger backlog of
/// [`crate::net::accept::bind`], so a burst of connects is not reset.
///
/// # Errors
/// [`Error::Bind`], with a hint when the port is taken.
pub async fn bind(addr: Option<IpAddr>, port: Option<u16>) -> Result<TcpListener> {
    let sa = SocketAddr::new(addr.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)), port.unwrap_or(0));
    accept::bind(sa).map_err(|source| {
        let hint = if source.kind() == std::io::ErrorKind::AddrInUse {
            " (the port is taken: pick another with --port)"
        } else {
            ""
        };
        Error::Bind { addr: format!("{sa}{hint}"), cause: source }
    })
}

/// Accepts until `shutdown`, then waits up to `grace` for open connections,
/// silently (the caller says what it waits for, if anything).
///
/// # Errors
/// Only when the listener's address cannot be read.
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<()> {
    serve_in(listener, handler, &Tasks::quiet(), &Meter::new(false), shutdown, grace).await
}

/// As [`serve`], with the connections' tasks in `tasks` (shared with a pool, and
/// with whoever force-closes them) and their counts in `meter`.
///
/// # Errors
/// Only when the listener's address cannot be read.
pub async fn serve_in(
    listener: TcpListener,
    handler: Handler,
    tasks: &Tasks,
    meter: &Arc<Meter>,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<()> {
    let local = listener.local_addr()?;
    let limits = accept::Limits {
        // Bounded by the open-files limit only: each connection holds two descriptors.
        max_connections: crate::util::fdlimit::raise()
            .map_or(10_000, |l| crate::util::fdlimit::connections_for(l.soft)),
        max_unauthenticated_per_source: 0,
        keepalive: Some(crate::net::connect::DEFAULT_KEEPALIVE),
        grace,
        // A local proxy runs on the command's one thread (see main.rs).
        shards: None,
    };
    let what = format!("local proxy on {local}");
    let span = |_id: u64, peer: SocketAddr| tracing::debug_span!("local", peer = %peer);
    let meter = meter.clone();
    accept::serve(listener, limits, tasks, shutdown, &what, span, move |tcp, peer| handler(meter.wrap(tcp, peer)))
        .await;
    Ok(())
}

/// Dials `target` and relays `local` through it. On failure, asks the proxy why (so
/// the message names the resource, and for a node the port, and the reason), and
/// returns that.
///
/// # Errors
/// The dial or relay error, explained.
pub async fn tunnel<L: IoStream + ?Sized>(
    dialer: &Dialer,
    target: &Target,
    res: &ResourceRef,
    local: &mut L,
) -> Result<Counts> {
    let mut local = Noted::new(local);
    let result = async {
        let mut dialed = dialer.dial(target).await?;
        let proxy = dialer.context().proxy.to_string();
        relay(&mut local, &mut dialed.stream)
            .await
            .map_err(|e| local_or(&local, e, |e| after_handshake(&e, res, &proxy)))
    }
    .await;
    closed(dialer, res, result).await
}

/// Relays `local` through a stream of `session` (or a connection of its own when
/// the proxy does not multiplex). Errors are explained as [`tunnel`]'s are; a
/// refused stream is [`Error::Refused`] with the proxy's sentence.
///
/// # Errors
/// The open or relay error, explained.
pub async fn tunnel_on<L: IoStream + ?Sized>(session: &Arc<Session>, local: &mut L) -> Result<Counts> {
    let (dialer, res) = (session.dialer(), session.resource());
    let mut local = Noted::new(local);
    let result = async {
        let mut remote = session.open().await?;
        let proxy = dialer.context().proxy.to_string();
        relay_link(&mut local, &mut remote).await.map_err(|e| {
            local_or(&local, e, |e| match StreamRefused::of(&e) {
                Some(r) => Error::Refused(r.sentence.clone()),
                None => after_handshake(&e, res, &proxy),
            })
        })
    }
    .await;
    closed(dialer, res, result).await
}

/// A relay error from the local side (the local client reset or vanished) is the
/// client's doing, not the tunnel's: it is said as such, and nobody asks the proxy
/// why (which would cost a routing connection for nothing). Any other error goes
/// to `tunnel`.
fn local_or<L>(local: &Noted<L>, e: std::io::Error, tunnel: impl FnOnce(std::io::Error) -> Error) -> Error {
    if local.failed() {
        Error::LocalClient(e)
    } else {
        tunnel(e)
    }
}

/// How a tunnel ended: its counts, logged, or its error, explained. A local client
/// that cut its connection ends the tunnel without an error.
async fn closed(dialer: &Dialer, res: &ResourceRef, result: Result<Counts>) -> Result<Counts> {
    match result {
        Ok(c) => {
            debug!(sent = c.a_to_b, received = c.b_to_a, "tunnel closed");
            Ok(c)
        }
        Err(Error::LocalClient(e)) => {
            debug!(error = %e, "the local client cut its connection; tunnel closed");
            Ok(Counts::default())
        }
        Err(e) => Err(explain(dialer, res, e).await),
    }
}

/// An error on an established tunnel: a refusal (TLS 1.3 reports `access_denied`
/// after the client's side of the handshake), or the tunnel ending abnormally.
fn after_handshake(e: &std::io::Error, res: &ResourceRef, proxy: &str) -> Error {
    if crate::net::tls::alert_of(e) == Some(rustls::AlertDescription::AccessDenied) {
        return Error::AccessDenied { proxy: proxy.to_string() };
    }
    let mut reason = crate::net::tls::explain_client_error(e, proxy);
    if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) {
        reason.push_str("; if it keeps happening, the proxy may not reach it: see the proxy's log");
    }
    Error::Tunnel { what: ResourceRef::new(res.kind, res.name.clone()).to_string(), proxy: proxy.to_string(), reason }
}

/// How long asking the web API why a tunnel was cut may take.
const WHY_TIMEOUT: Duration = Duration::from_secs(10);

/// Replaces a refusal (`access denied` alert) with the proxy's own sentence, and a
/// tunnel cut after the handshake with the sentence refusing the identity (revoked,
/// say), when `/webapi/ping` has one (asked once, bounded by `WHY_TIMEOUT`).
pub async fn explain(dialer: &Dialer, res: &ResourceRef, err: Error) -> Error {
    match err {
        Error::AccessDenied { .. } => match webapi::resolve(dialer, res).await {
            Ok(r) if r.outcome != Outcome::Allowed => Error::Refused(r.message),
            _ => err,
        },
        Error::Tunnel { .. } => match tokio::time::timeout(WHY_TIMEOUT, webapi::ping(dialer)).await {
            Ok(Ok(ping)) => ping.refused.map_or(err, Error::Refused),
            _ => err,
        },
        _ => err,
    }
}

/// The page a local HTTP client gets when its request could not be carried: 403
/// with the proxy's sentence for a refusal, else 502 saying the proxy could not be
/// reached (or the tunnel to it ended) and what to do.
pub fn unreachable_page(what: &str, err: &Error) -> Refusal {
    match err {
        Error::Refused(sentence) => Refusal { status: 403, why: sentence.clone() },
        Error::Tunnel { .. } => Refusal { status: 502, why: err.to_string() },
        _ => Refusal {
            status: 502,
            why: format!(
                "{what}: cannot reach the proxy: {err} (is the server running? `oneport doctor` walks the path)"
            ),
        },
    }
}

/// How long a local HTTP client may take to send its first request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the app may take to finish its answers to the requests before a
/// refused one, before the connection is cut without the refusal.
const REFUSAL_DRAIN: Duration = Duration::from_secs(10);

/// A handler for HTTP apps: every request on the connection is judged (see
/// [`crate::client::local::hostcheck`]). A refused first request is answered (421,
/// 403 or 400) without dialling; a refused later one is never sent: the tunnel's
/// write side closes, the app finishes the answers before it, and the refusal
/// follows them on the client connection, which then closes.
pub fn http_tunnel_handler(session: Arc<Session>, port: u16) -> Handler {
    Arc::new(move |mut tcp| {
        let session = session.clone();
        Box::pin(async move {
            let (res, peer) = (session.resource(), tcp.peer());
            let what = format!("{} {}", res.kind.noun(), res.name);
            let mut framer = Framer::new(port);
            let head = match tokio::time::timeout(HEAD_TIMEOUT, read_first(&mut tcp, &mut framer)).await {
                Ok(Ok(head)) => head,
                Ok(Err(Some(r))) => {
                    warn!(peer = %peer, "{what}: request refused: {}", r.why);
                    tcp.meter().error(format!("{what}: request refused: {}", r.why));
                    let _ = tcp.write_all(&hostcheck::refusal(&r)).await;
                    let _ = tcp.shutdown().await;
                    return;
                }
                Ok(Err(None)) => return debug!("the client closed before sending a request"),
                Err(_) => return debug!("no request head within {}s; closed", HEAD_TIMEOUT.as_secs()),
            };
            if let Some(sentence) = expired(session.dialer()) {
                error!(peer = %peer, "{what}: {sentence}");
                tcp.meter().error(sentence.clone());
                let _ = tcp.write_all(&hostcheck::refusal(&Refusal { status: 401, why: sentence })).await;
                let _ = tcp.shutdown().await;
                return;
            }
            let meter = tcp.meter().clone();
            let gate = Arc::new(Gate::default());
            let (r, w) = tcp.split_with(|t| t.split());
            let reader = Checked { inner: r, framer, gate: gate.clone(), buf: std::io::Cursor::new(head) };
            let writer = Announcing { inner: w, gate: gate.clone(), at: 0 };
            let mut local = tokio::io::join(reader, writer);
            let drained = async {
                gate.refused.notified().await;
                tokio::time::sleep(REFUSAL_DRAIN).await;
            };
            tokio::select! {
                r = tunnel_on(&session, &mut local) => {
                    if let Err(e) = r {
                        error!("{what}: {e}");
                        meter.error(format!("{what}: {e}"));
                        // Nothing from the app reached the client: answer in its place.
                        if !gate.wrote.load(Ordering::Relaxed) && gate.refusal().is_none() {
                            // Expired while this request was set up (the proxy judged it
                            // a moment after the check above): the same 401 that check gives.
                            let page = match expired(session.dialer()) {
                                Some(why) => Refusal { status: 401, why },
                                None => unreachable_page(&what, &e),
                            };
                            let page = hostcheck::refusal(&page);
                            let _ = tokio::time::timeout(WHY_TIMEOUT, async {
                                local.write_all(&page).await?;
                                local.shutdown().await
                            })
                            .await;
                        }
                    }
                }
                _ = drained => debug!("the app did not finish within {}s of a refused request; closed",
                    REFUSAL_DRAIN.as_secs()),
            }
            if let Some(r) = gate.refusal() {
                warn!(peer = %peer, "{what}: request refused: {}", r.why);
                meter.error(format!("{what}: request refused: {}", r.why));
            }
        })
    })
}

/// Reads until the first request head is judged; returns the bytes to forward.
/// `Err(None)`: the client closed first.
async fn read_first(tcp: &mut LocalConn, framer: &mut Framer) -> std::result::Result<Vec<u8>, Option<Refusal>> {
    let mut out = Vec::new();
    while framer.allowed() == 0 {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.map_err(|_| None)?;
        if n == 0 {
            return Err(None);
        }
        let fed = framer.feed(&chunk[..n]);
        if let Some(r) = fed.refused {
            return Err(Some(r));
        }
        out.extend(fed.forward);
    }
    Ok(out)
}

/// Shared by the two halves of a checked HTTP connection: the refusal, if a later
/// request was refused.
#[derive(Default)]
struct Gate {
    refusal: std::sync::Mutex<Option<Vec<u8>>>,
    why: std::sync::Mutex<Option<Refusal>>,
    refused: tokio::sync::Notify,
    /// Whether any of the app's bytes were written to the client.
    wrote: AtomicBool,
}

impl Gate {
    fn refuse(&self, r: Refusal) {
        *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(hostcheck::refusal(&r));
        *self.why.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        self.refused.notify_one();
    }
    fn refusal(&self) -> Option<Refusal> {
        self.why.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn answer(&self) -> Option<Vec<u8>> {
        self.refusal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The client's bytes, judged request by request; a refused request ends the stream.
struct Checked<R> {
    inner: R,
    framer: Framer,
    gate: Arc<Gate>,
    buf: std::io::Cursor<Vec<u8>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Checked<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        loop {
            let pos = this.buf.position() as usize;
            let pending = &this.buf.get_ref()[pos..];
            if !pending.is_empty() {
                let n = pending.len().min(out.remaining());
                out.put_slice(&pending[..n]);
                this.buf.set_position((pos + n) as u64);
                return Poll::Ready(Ok(()));
            }
            if this.gate.answer().is_some() {
                return Poll::Ready(Ok(())); // EOF: nothing after a refused request
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut rb = tokio::io::ReadBuf::new(&mut chunk);
            std::task::ready!(std::pin::Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            let fed = this.framer.feed(rb.filled());
            this.buf = std::io::Cursor::new(fed.forward);
            if let Some(r) = fed.refused {
                this.gate.refuse(r);
            }
        }
    }
}

/// The app's bytes to the client; after a refused request, the refusal is written
/// when the app's side ends.
struct Announcing<W> {
    inner: W,
    gate: Arc<Gate>,
    at: usize,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Announcing<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.gate.wrote.store(true, Ordering::Relaxed);
        }
        r
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.gate.wrote.store(true, Ordering::Relaxed);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(answer) = this.gate.answer() {
            while this.at < answer.len() {
                let n = std::task::ready!(std::pin::Pin::new(&mut this.inner).poll_write(cx, &answer[this.at..]))?;
                if n == 0 {
                    break;
                }
                this.at += n;
            }
        }
        std::pin::Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// A handler that tunnels every connection to `target`.
pub fn tunnel_handler(session: Arc<Session>) -> Handler {
    Arc::new(move |mut tcp| {
        let session = session.clone();
        Box::pin(async move {
            let res = session.resource();
            let what = format!("{} {}", res.kind.noun(), res.name);
            if let Some(sentence) = expired(session.dialer()) {
                error!(peer = %tcp.peer(), "{what}: {sentence}; connection closed");
                return tcp.meter().error(sentence);
            }
            if let Err(e) = tunnel_on(&session, &mut tcp).await {
                error!("{what}: {e}");
                tcp.meter().error(format!("{what}: {e}"));
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_pages_say_which_layer_failed() {
        let refused = Error::Refused("identity ab for alice was revoked: laptop lost".into());
        assert_eq!(
            unreachable_page("app web", &refused),
            Refusal { status: 403, why: "identity ab for alice was revoked: laptop lost".into() }
        );
        let down = Error::Connect {
            target: "localhost:3080".into(),
            cause: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let page = unreachable_page("app web", &down);
        assert_eq!(page.status, 502);
        assert_eq!(
            page.why,
            "app web: cannot reach the proxy: cannot connect to localhost:3080: connection refused (is the server \
             running? `oneport doctor` walks the path)"
        );
        let cut = Error::Tunnel { what: "app web".into(), proxy: "p:3080".into(), reason: "cut".into() };
        assert_eq!(unreachable_page("app web", &cut).why, "connection to app web through p:3080 ended: cut");
        let body = String::from_utf8(hostcheck::refusal(&page)).unwrap();
        assert!(body.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{body}");
    }
}
