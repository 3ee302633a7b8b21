//! Local listeners for client tools: an accept loop on loopback that hands each
//! connection to a handler (by default: dial the target and relay), and drains on
//! shutdown. Listeners bind 127.0.0.1 unless told otherwise. The per-protocol
//! handlers live beside it: [`db`] (Postgres and MySQL clients), [`kube`] (the HTTPS
//! endpoint for kubectl), [`hostcheck`] (DNS-rebinding protection for HTTP apps).

pub mod db;
pub mod hostcheck;
pub mod kube;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn, Instrument};

use crate::client::dial::{Dialer, Target};
use crate::client::session::Session;
use crate::client::webapi;
use crate::error::{Error, Result};
use crate::net::io::IoStream;
use crate::net::mux::StreamRefused;
use crate::net::relay::{relay, Counts};
use crate::proto::naming::ResourceRef;
use crate::proto::webapi::Outcome;

/// How long open connections may finish after Ctrl-C.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Handles one accepted local connection.
pub type Handler = Arc<dyn Fn(TcpStream, SocketAddr) -> BoxFuture<'static, ()> + Send + Sync>;

/// Binds `addr:port` (port 0 picks a free one).
///
/// # Errors
/// [`Error::Bind`], with a hint when the port is taken.
pub async fn bind(addr: Option<IpAddr>, port: Option<u16>) -> Result<TcpListener> {
    let sa = SocketAddr::new(addr.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)), port.unwrap_or(0));
    TcpListener::bind(sa).await.map_err(|source| {
        let hint = if source.kind() == std::io::ErrorKind::AddrInUse {
            " (the port is taken: pick another with --port)"
        } else {
            ""
        };
        Error::Bind { addr: format!("{sa}{hint}"), cause: source }
    })
}

/// Accepts until `shutdown`, then waits up to `grace` for open connections.
///
/// # Errors
/// Only when the listener's address cannot be read.
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<()> {
    let local = listener.local_addr()?;
    let tracker = TaskTracker::new();
    let force = CancellationToken::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => { backoff = Duration::from_millis(5); x }
                Err(e) => {
                    warn!(error = %e, "accept failed; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let fut = handler(tcp, peer);
        let force = force.clone();
        tracker.spawn(
            async move {
                tokio::select! {
                    _ = fut => {}
                    _ = force.cancelled() => {}
                }
            }
            .instrument(tracing::debug_span!("local", peer = %peer)),
        );
    }
    drop(listener);
    tracker.close();
    if !tracker.is_empty() {
        info!(open = tracker.len(), listen = %local, "stopped accepting; waiting for open connections");
    }
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        warn!(open = tracker.len(), "grace period over; closing open connections");
        force.cancel();
        tracker.wait().await;
    }
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
    let result = async {
        let mut dialed = dialer.dial(target).await?;
        let proxy = dialer.context().proxy.to_string();
        relay(local, &mut dialed.stream).await.map_err(|e| after_handshake(&e, res, &proxy))
    }
    .await;
    match result {
        Ok(c) => {
            debug!(sent = c.a_to_b, received = c.b_to_a, "tunnel closed");
            Ok(c)
        }
        Err(e) => Err(explain(dialer, res, e).await),
    }
}

/// Relays `local` through a stream of `session` (or a connection of its own when
/// the proxy does not multiplex). Errors are explained as [`tunnel`]'s are; a
/// refused stream is [`Error::Refused`] with the proxy's sentence.
///
/// # Errors
/// The open or relay error, explained.
pub async fn tunnel_on<L: IoStream + ?Sized>(session: &Arc<Session>, local: &mut L) -> Result<Counts> {
    let (dialer, res) = (session.dialer(), session.resource());
    let result = async {
        let mut remote = session.open().await?;
        let proxy = dialer.context().proxy.to_string();
        relay(local, &mut remote).await.map_err(|e| match StreamRefused::of(&e) {
            Some(r) => Error::Refused(r.sentence.clone()),
            None => after_handshake(&e, res, &proxy),
        })
    }
    .await;
    match result {
        Ok(c) => {
            debug!(sent = c.a_to_b, received = c.b_to_a, "tunnel closed");
            Ok(c)
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

/// Replaces a refusal (`access denied` alert) with the proxy's own sentence.
pub async fn explain(dialer: &Dialer, res: &ResourceRef, err: Error) -> Error {
    if !matches!(err, Error::AccessDenied { .. }) {
        return err;
    }
    match webapi::resolve(dialer, res).await {
        Ok(r) if r.outcome != Outcome::Allowed => Error::Refused(r.message),
        _ => err,
    }
}

/// How long a local HTTP client may take to send its first request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A handler for HTTP apps: checks the first request's `Host` (see
/// [`crate::client::local::hostcheck`]) before dialling, answers 421 to a refused one, and replays
/// the bytes it read into the tunnel.
pub fn http_tunnel_handler(session: Arc<Session>, port: u16) -> Handler {
    Arc::new(move |mut tcp, peer| {
        let session = session.clone();
        Box::pin(async move {
            let res = session.resource();
            let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut tcp, port)).await {
                Ok(Ok(head)) => head,
                Ok(Err(why)) => {
                    warn!(peer = %peer, "{} {}: request refused: {why}", res.kind.noun(), res.name);
                    let _ = tcp.write_all(&crate::client::local::hostcheck::refusal(&why)).await;
                    let _ = tcp.shutdown().await;
                    return;
                }
                Err(_) => return debug!("no request head within {}s; closed", HEAD_TIMEOUT.as_secs()),
            };
            let (r, w) = tcp.split();
            let mut local = tokio::io::join(std::io::Cursor::new(head).chain(r), w);
            if let Err(e) = tunnel_on(&session, &mut local).await {
                error!("{} {}: {e}", res.kind.noun(), res.name);
            }
        })
    })
}

/// Reads until the first request head is complete and judged.
async fn read_head(tcp: &mut TcpStream, port: u16) -> std::result::Result<Vec<u8>, String> {
    use crate::client::local::hostcheck::{check, Verdict};
    let mut buf = Vec::with_capacity(2048);
    loop {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the client closed before sending a request".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        match check(&buf, port) {
            Verdict::Partial => continue,
            Verdict::Allowed(_) => return Ok(buf),
            Verdict::Refused(why) => return Err(why),
        }
    }
}

/// A handler that tunnels every connection to `target`.
pub fn tunnel_handler(session: Arc<Session>) -> Handler {
    Arc::new(move |mut tcp, _peer| {
        let session = session.clone();
        Box::pin(async move {
            let res = session.resource();
            if let Err(e) = tunnel_on(&session, &mut tcp).await {
                error!("{} {}: {e}", res.kind.noun(), res.name);
            }
        })
    })
}
