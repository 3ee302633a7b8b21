//! One server connection: tell TLS from plain HTTP, read the ClientHello (however it
//! is split across segments) under the handshake deadline, choose the route, finish
//! mutual TLS with the route's config, authorize, and hand the stream to the
//! backend. A refused connection never reaches a backend. Kube routes are the one
//! exception to refusing in the handshake: any valid certificate gets through, and
//! the kube backend answers callers outside the allow-list with an HTTP 403.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tracing::{debug, info, warn, Span};

use crate::identity::Caller;
use crate::net::io::BoxIo;
use crate::net::ping::PingStream;
use crate::net::tls::ClientAuth;
use crate::proto::naming::{Kind, Protocol};
use crate::server::routes::Route;
use crate::server::{backend, web, Server};

/// How long sending the alert of a failed handshake may take.
const ALERT_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Handles a freshly accepted TCP connection.
pub async fn handle_tcp(srv: Arc<Server>, tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(srv.cfg.handshake_timeout, tcp.peek(&mut first)).await;
    match peeked {
        Err(_) => debug!("no data before the handshake deadline; closed"),
        Ok(Err(e)) => debug!(error = %e, "read failed before the handshake"),
        Ok(Ok(0)) => debug!("closed before sending anything"),
        Ok(Ok(_)) if first[0] == TLS_HANDSHAKE => handle_tls(srv, tcp, peer, Via::Direct).await,
        // Not TLS: plain HTTP from a load balancer that terminated TLS itself.
        Ok(Ok(_)) => web::serve(srv, Box::new(tcp), web::Ctx::new(peer, None, false, true, false)).await,
    }
}

/// How a TLS-routing connection reached the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Straight over TCP.
    Direct,
    /// Through `/webapi/connectionupgrade` (a load balancer in front).
    Upgrade,
}

/// Runs the TLS-routing handshake on `io` and serves the chosen route.
pub async fn handle_tls<S>(srv: Arc<Server>, io: S, peer: SocketAddr, via: Via)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + srv.cfg.handshake_timeout;
    let io = crate::net::io::NoHalfClose(io);
    let start = match tokio::time::timeout_at(deadline, LazyConfigAcceptor::new(Acceptor::default(), io)).await {
        Ok(Ok(start)) => start,
        Ok(Err(e)) => return info!(error = %e, "bad ClientHello; closed"),
        Err(_) => return info!("ClientHello not complete before the handshake deadline; closed"),
    };
    let hello = start.client_hello();
    let sni = hello.server_name().map(str::to_string);
    let offered: Vec<Vec<u8>> = hello.alpn().map(|it| it.map(<[u8]>::to_vec).collect()).unwrap_or_default();
    let route = srv.table.decide(sni.as_deref(), offered.iter().map(Vec::as_slice));
    let span = Span::current();
    span.record("sni", sni.as_deref().unwrap_or("-"));
    let (alpn, auth) = match &route {
        Route::Web { h2: true } => (vec![b"h2".to_vec()], ClientAuth::Optional),
        Route::Web { h2: false } => (vec![b"http/1.1".to_vec()], ClientAuth::Optional),
        Route::Probe => (vec![Protocol::ReverseTunnel.alpn().as_bytes().to_vec()], ClientAuth::Optional),
        // Kubernetes authorizes per request (server::kube): a caller outside the
        // allow-list completes the handshake and gets a `Status` 403 kubectl can print.
        Route::Resource(r) if r.kind == Kind::Kube => {
            (vec![r.alpn.to_bytes()], ClientAuth::Required(Arc::new(|_: &Caller| true)))
        }
        Route::Resource(r) => {
            let allow = r.allow.clone();
            (vec![r.alpn.to_bytes()], ClientAuth::Required(Arc::new(move |c: &Caller| allow.permits(c))))
        }
        Route::Refuse { alpn, reason } => {
            info!(reason = %reason, "refused: no such route; nothing dialled");
            (vec![alpn.to_bytes()], ClientAuth::Required(Arc::new(|_: &Caller| false)))
        }
        Route::NoProtocol => {
            let names = offered.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>();
            info!(offered = ?names, "refused: no routable ALPN (alert no_application_protocol)");
            // A name no client offers: rustls answers `no_application_protocol`.
            (vec![b"oneport-no-route".to_vec()], ClientAuth::Optional)
        }
    };
    let config = srv.tls.config(alpn, auth);
    let tls = match tokio::time::timeout_at(deadline, start.into_stream(config).into_fallible()).await {
        Ok(Ok(tls)) => tls,
        Ok(Err((e, mut io))) => {
            // rustls wrote its alert (access_denied for a refusal) but nothing flushed
            // it: on a buffered transport, the WebSocket of an upgrade, the client
            // would see the connection drop instead of the reason.
            let _ = tokio::time::timeout(ALERT_FLUSH_TIMEOUT, io.shutdown()).await;
            return log_handshake_error(&route, &e);
        }
        Err(_) => return info!("TLS handshake not complete before the deadline; closed"),
    };
    let caller = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(|c| Caller::from_der(c).ok());
    if let Some(c) = &caller {
        span.record("user", c.user.as_str());
    }
    dispatch(srv, Box::new(tls), route, caller, peer, via).await;
}

fn log_handshake_error(route: &Route, e: &std::io::Error) {
    let denied = e.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>()).is_some_and(|x| {
        matches!(x, rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
    });
    match route {
        Route::Resource(r) if denied => {
            info!(resource = %r.name, kind = %r.kind, "refused: caller not in the allow-list; nothing dialled")
        }
        Route::Refuse { .. } | Route::NoProtocol => debug!(error = %e, "refused handshake ended"),
        _ => info!(error = %e, "TLS handshake failed"),
    }
}

async fn dispatch(srv: Arc<Server>, mut tls: BoxIo, route: Route, caller: Option<Caller>, peer: SocketAddr, via: Via) {
    match route {
        Route::Web { h2 } => web::serve(srv, tls, web::Ctx::new(peer, caller, h2, false, via == Via::Upgrade)).await,
        Route::Probe => {
            debug!("upgrade probe answered");
            let _ = tls.shutdown().await;
        }
        Route::Resource(r) => {
            Span::current().record("alpn", r.alpn.to_string().as_str());
            // Checked again here: a resumed TLS session skips certificate verification.
            // Kube callers are authorized per request by the kube backend.
            let permitted = |c: &Caller| r.kind == Kind::Kube || r.allow.permits(c);
            let Some(caller) = caller.filter(|c| permitted(c) && !c.expired_at(SystemTime::now())) else {
                return info!(resource = %r.name, "refused: caller not authorized; nothing dialled");
            };
            let stream: BoxIo =
                if r.alpn.ping { Box::new(PingStream::new(tls, Some(srv.cfg.ping_interval))) } else { tls };
            debug!(resource = %r.name, kind = %r.kind, user = %caller.user, via = ?via, "routing");
            backend::serve(srv, stream, *r, caller).await;
        }
        Route::Refuse { reason, .. } => {
            warn!(reason = %reason, "refused route completed a handshake (resumed session); closed")
        }
        Route::NoProtocol => {}
    }
}
