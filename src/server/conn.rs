//! One server connection: tell TLS from plain HTTP, read the ClientHello (however it
//! is split across segments) under the handshake deadline, choose the route, finish
//! mutual TLS with the route's config, authorize, and hand the stream to the
//! backend. A refused connection never reaches a backend. Kube routes are the one
//! exception to refusing in the handshake: any valid certificate gets through, and
//! the kube backend answers callers outside the allow-list with an HTTP 403.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::LazyConfigAcceptor;
use tracing::{debug, info, warn, Span};

use crate::identity::Caller;
use crate::net::budget::{Budget, Lift};
use crate::net::io::{BoxIo, Counted, Counters};
use crate::net::ping::PingStream;
use crate::net::relay::Link;
use crate::net::tls::ClientAuth;
use crate::proto::naming::{Kind, Protocol};
use crate::server::audit::{self, Session};
use crate::server::routes::Route;
use crate::server::{backend, web, Server};

pub use crate::server::audit::Via;

/// How long sending the alert of a failed handshake may take.
const ALERT_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Bytes a connection may send before its TLS handshake completes (direct, or inside
/// a WebSocket upgrade): a ClientHello and the client's certificate flight fit in
/// 16 KiB; with the buffers around them this keeps a peer that has not authenticated
/// under 64 KiB of server memory, whatever it sends.
pub const PRE_AUTH_READ_LIMIT: usize = 32 * 1024;

/// What a connection holds until it authenticates (a verified client certificate):
/// a place in the `max_unauthenticated` budget, and the read budgets of its streams
/// until the TLS handshake is done.
#[derive(Debug, Default)]
pub struct PreAuth {
    permit: Option<OwnedSemaphorePermit>,
    lifts: Vec<Lift>,
}

impl PreAuth {
    /// Wraps `io` in a read budget of [`PRE_AUTH_READ_LIMIT`] lifted by
    /// [`PreAuth::handshake_done`]; `last_word` goes to a peer that overspends.
    pub fn budget<S>(&mut self, io: S, last_word: Option<&'static [u8]>) -> Budget<S> {
        let lift = Lift::default();
        self.lifts.push(lift.clone());
        Budget::new(io, PRE_AUTH_READ_LIMIT, lift, last_word)
    }

    /// The TLS handshake is done: later reads are bounded by the protocol served.
    pub fn handshake_done(&self) {
        self.lifts.iter().for_each(Lift::lift);
    }

    /// A verified identity: the connection leaves the `max_unauthenticated` budget.
    pub fn authenticated(&mut self) {
        self.handshake_done();
        self.permit = None;
    }
}

/// Handles a freshly accepted TCP connection.
pub async fn handle_tcp(srv: Arc<Server>, tcp: TcpStream, peer: SocketAddr) {
    // Over the budget, a connection waits unread (its bytes stay in the kernel) for a
    // place, as in an accept queue: a burst of real clients is served in turn, while
    // silent peers cost no memory of ours.
    let permit = match srv.pre_auth.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            warn_full(srv.cfg.max_unauthenticated);
            let wait = srv.pre_auth.clone().acquire_owned();
            match tokio::time::timeout(srv.cfg.handshake_timeout, wait).await {
                Ok(Ok(p)) => p,
                _ => {
                    return debug!(
                        "no place for a connection without an identity before the handshake deadline; closed"
                    )
                }
            }
        }
    };
    let pre = PreAuth { permit: Some(permit), lifts: Vec::new() };
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(srv.cfg.handshake_timeout, tcp.peek(&mut first)).await;
    match peeked {
        Err(_) => debug!("no data before the handshake deadline; closed"),
        Ok(Err(e)) => debug!(error = %e, "read failed before the handshake"),
        Ok(Ok(0)) => debug!("closed before sending anything"),
        Ok(Ok(_)) if first[0] == TLS_HANDSHAKE => handle_tls(srv, tcp, peer, Via::Direct, pre).await,
        // Not TLS: plain HTTP from a load balancer that terminated TLS itself.
        Ok(Ok(_)) => web::serve(srv, Box::new(tcp), web::Ctx::new(peer, None, false, true, false), pre).await,
    }
}

/// Logs that the `max_unauthenticated` budget is full, at most once a second.
fn warn_full(max: usize) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if LAST.swap(now, Ordering::Relaxed) != now {
        warn!(
            max_unauthenticated = max,
            "connections without an identity yet are at max_unauthenticated; new ones wait unread for a place \
             (up to handshake_timeout)"
        );
    } else {
        debug!("max_unauthenticated reached; waiting for a place");
    }
}

/// Runs the TLS-routing handshake on `io` and serves the chosen route.
pub async fn handle_tls<S>(srv: Arc<Server>, io: S, peer: SocketAddr, via: Via, mut pre: PreAuth)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + srv.cfg.handshake_timeout;
    let io = pre.budget(crate::net::io::NoHalfClose(io), None);
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
    log_route(&route, &offered);
    // Who the allow-list turned away, for the refusal's audit line.
    let turned_away = TurnedAway::default();
    let (alpn, auth) = handshake_params(&route, &turned_away);
    let config = match &route {
        Route::Auth => srv.tls.auth_config(srv.table.auth_alpn.clone()),
        _ => srv.tls.config(alpn, with_revocation(auth, srv.auth.clone())),
    };
    let mut tls = match tokio::time::timeout_at(deadline, start.into_stream(config).into_fallible()).await {
        Ok(Ok(tls)) => tls,
        Ok(Err((e, mut io))) => {
            // rustls wrote its alert (access_denied for a refusal) but nothing flushed
            // it: on a buffered transport, the WebSocket of an upgrade, the client
            // would see the connection drop instead of the reason.
            let _ = tokio::time::timeout(ALERT_FLUSH_TIMEOUT, io.shutdown()).await;
            let who = turned_away.lock().unwrap_or_else(|p| p.into_inner()).take();
            return log_handshake_error(&srv, peer, &route, &e, who.as_ref());
        }
        Err(_) => return info!("TLS handshake not complete before the deadline; closed"),
    };
    let caller = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| Caller::from_der(c)) {
        None => None,
        Some(Ok(c)) => Some(c),
        // The web route verifies the chain only: a blank or padded name ends here.
        Some(Err(e)) => return info!(reason = %e, "refused: the client certificate names no usable identity; closed"),
    };
    pre.handshake_done();
    tls.get_mut().1.set_buffer_limit(Some(crate::net::tls::SEND_BUFFER_LIMIT));
    // An expired certificate (a resumed session skips verification) is no identity.
    if caller.as_ref().is_some_and(|c| !c.expired_at(SystemTime::now())) {
        pre.authenticated();
    }
    if let Some(c) = &caller {
        span.record("user", c.user.as_str());
    }
    dispatch(srv, Box::new(tls), route, caller, peer, via, sni.unwrap_or_default(), pre).await;
}

/// An ALPN name no client offers: agreeing only to it makes rustls answer
/// `no_application_protocol`.
const NO_ROUTE_ALPN: &[u8] = b"oneport-no-route";

/// How the handshake of `route` is finished: the one ALPN the server agrees to, and
/// how client certificates are treated (the route's allow-list, checked in the
/// handshake). Refused routes require a certificate that never passes, so they look
/// like a denied one. A caller a resource's allow-list (or a refused route) turns
/// away is kept in `turned_away`, so the refusal can be logged with its name.
pub fn handshake_params(route: &Route, turned_away: &TurnedAway) -> (Vec<Vec<u8>>, ClientAuth) {
    let remember = |c: &Caller, slot: &TurnedAway| *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
    match route {
        Route::Web { h2: true } => (vec![b"h2".to_vec()], ClientAuth::Optional),
        Route::Web { h2: false } => (vec![b"http/1.1".to_vec()], ClientAuth::Optional),
        Route::Probe => (vec![Protocol::ReverseTunnel.alpn().as_bytes().to_vec()], ClientAuth::Optional),
        // Kubernetes authorizes per request (server::kube): a caller outside the
        // allow-list completes the handshake and gets a `Status` 403 kubectl can print.
        Route::Resource(r) if r.kind == Kind::Kube => {
            (vec![r.alpn.to_bytes()], ClientAuth::Required(Arc::new(|_: &Caller| true)))
        }
        Route::Resource(r) => {
            let (allow, slot) = (r.allow.clone(), turned_away.clone());
            let check = move |c: &Caller| {
                let ok = allow.permits(c);
                if !ok {
                    remember(c, &slot);
                }
                ok
            };
            (vec![r.alpn.to_bytes()], ClientAuth::Required(Arc::new(check)))
        }
        Route::Refuse { alpn, .. } => {
            let slot = turned_away.clone();
            let check = move |c: &Caller| {
                remember(c, &slot);
                false
            };
            (vec![alpn.to_bytes()], ClientAuth::Required(Arc::new(check)))
        }
        Route::NoProtocol => (vec![NO_ROUTE_ALPN.to_vec()], ClientAuth::Optional),
        // Served with `ServerTls::auth_config` (the cluster's auth ALPN, the CA sent
        // after the chain); a certificate is optional and checked by server::auth.
        Route::Auth => (Vec::new(), ClientAuth::Optional),
    }
}

/// Who a handshake turned away (see [`handshake_params`]).
pub type TurnedAway = Arc<Mutex<Option<Caller>>>;

/// Logs the refusals decided from the ClientHello alone (a refused route is logged
/// once the handshake has read the caller's certificate).
fn log_route(route: &Route, offered: &[Vec<u8>]) {
    if let Route::NoProtocol = route {
        let names = offered.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>();
        info!(offered = ?names, "refused: no routable ALPN (alert no_application_protocol)");
    }
}

/// Adds the revocation check to a route's certificate check: a revoked identity is
/// refused at every handshake (server::auth), like a caller outside the allow-list.
fn with_revocation(auth: ClientAuth, authority: Arc<crate::server::auth::Authority>) -> ClientAuth {
    match auth {
        ClientAuth::Required(check) => {
            ClientAuth::Required(Arc::new(move |c: &Caller| not_revoked(&authority, c) && check(c)))
        }
        other => other,
    }
}

/// The handshake's revocation check, logged when it refuses.
fn not_revoked(auth: &crate::server::auth::Authority, c: &Caller) -> bool {
    match auth.revocation(c) {
        None => true,
        Some(r) => {
            info!(user = %c.user, serial = %r.serial, "refused: identity revoked; nothing dialled");
            false
        }
    }
}

fn log_handshake_error(srv: &Server, peer: SocketAddr, route: &Route, e: &std::io::Error, who: Option<&Caller>) {
    let denied = e.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>()).is_some_and(|x| {
        matches!(x, rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
    });
    match route {
        Route::Resource(r) if denied => {
            audit::refused(&srv.audit, who, peer, r.kind, &r.name, "caller not in the allow-list")
        }
        Route::Refuse { reason, .. } => {
            let user = who.map(|c| c.user.as_str()).unwrap_or("-");
            let groups = who.map(|c| c.groups.join(",")).unwrap_or_default();
            info!(target: "oneport::audit", user, groups = %groups, source = %peer, reason = %reason,
                "refused: no such route; nothing dialled");
            debug!(error = %e, "refused handshake ended");
        }
        Route::NoProtocol => debug!(error = %e, "refused handshake ended"),
        _ => info!(error = %e, "TLS handshake failed"),
    }
}

#[allow(clippy::too_many_arguments)] // one connection's facts, each used by one route
async fn dispatch(
    srv: Arc<Server>,
    mut tls: BoxIo,
    route: Route,
    caller: Option<Caller>,
    peer: SocketAddr,
    via: Via,
    sni: String,
    pre: PreAuth,
) {
    match route {
        Route::Web { h2 } => {
            if caller.is_some() {
                crate::net::tasks::authenticated();
            }
            web::serve(srv, tls, web::Ctx::new(peer, caller, h2, false, via == Via::Upgrade), pre).await
        }
        Route::Probe => {
            debug!("upgrade probe answered");
            let _ = tls.shutdown().await;
        }
        Route::Resource(r) => {
            Span::current().record("alpn", r.alpn.to_string().as_str());
            // Checked again here: a resumed TLS session skips certificate verification.
            // Kube callers are authorized per request by the kube backend.
            let permitted = |c: &Caller| r.kind == Kind::Kube || r.allow.permits(c);
            if let Some(rev) = caller.as_ref().and_then(|c| srv.auth.revocation(c)) {
                let reason = format!("identity revoked (serial {})", rev.serial);
                return audit::refused(&srv.audit, caller.as_ref(), peer, r.kind, &r.name, &reason);
            }
            let caller = match caller {
                Some(c) if !permitted(&c) => {
                    return audit::refused(&srv.audit, Some(&c), peer, r.kind, &r.name, "caller not authorized")
                }
                Some(c) if c.expired_at(SystemTime::now()) => {
                    return audit::refused(&srv.audit, Some(&c), peer, r.kind, &r.name, "the identity has expired")
                }
                Some(c) => c,
                None => return audit::refused(&srv.audit, None, peer, r.kind, &r.name, "no client certificate"),
            };
            crate::net::tasks::authenticated();
            if r.alpn.mux {
                debug!(resource = %r.name, kind = %r.kind, user = %caller.user, via = ?via, "multiplexed session");
                return crate::server::mux::serve(srv, tls, *r, sni, caller, peer, via).await;
            }
            let stream: BoxIo =
                if r.alpn.ping { Box::new(PingStream::new(tls, Some(srv.cfg.ping_interval))) } else { tls };
            debug!(resource = %r.name, kind = %r.kind, user = %caller.user, via = ?via, "routing");
            let counters = Arc::new(Counters::default());
            let stream: BoxIo = Box::new(Counted::new(stream, counters.clone()));
            let session = Arc::new(Session::start(
                srv.audit.clone(),
                caller.clone(),
                peer,
                r.kind,
                &r.name,
                r.alpn.to_string(),
                via,
                counters,
            ));
            // Written when the connection and whatever it spawned (an upgraded kube
            // stream) have all ended.
            crate::net::tasks::hold(session.clone());
            let end = backend::serve(srv, Link::Bytes(stream), *r, caller, peer).await;
            session.end(end);
        }
        Route::Refuse { reason, .. } => {
            warn!(reason = %reason, "refused route completed a handshake (resumed session); closed")
        }
        Route::Auth => crate::server::auth::route::serve(srv, tls, caller).await,
        Route::NoProtocol => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::naming;
    use crate::server::config::Config;
    use crate::server::routes::Table;

    fn table() -> Table {
        let cfg: Config = serde_yaml_ng::from_str(
            r#"
listen: 127.0.0.1:3080
public_addr: 127.0.0.1:3080
cluster_name: t
tls: { cert: a, key: b, client_ca: c }
databases: [ { name: pg1, protocol: postgres, addr: "127.0.0.1:5432", allow: { users: [alice] } } ]
kube: [ { name: dev, api_server: "https://127.0.0.1:6443", allow: { groups: [ops] } } ]
"#,
        )
        .unwrap();
        Table::new(&cfg)
    }

    fn caller(user: &str) -> Caller {
        Caller { user: user.into(), groups: vec![], not_after: i64::MAX, ..Default::default() }
    }

    /// The ALPN agreed to and, when a certificate is required, whether alice and bob pass.
    fn params(route: &Route) -> (String, Option<(bool, bool)>) {
        let (alpn, auth) = handshake_params(route, &TurnedAway::default());
        assert_eq!(alpn.len(), 1, "one ALPN per route");
        let alpn = String::from_utf8(alpn[0].clone()).unwrap();
        match auth {
            ClientAuth::Optional => (alpn, None),
            ClientAuth::Required(check) => (alpn, Some((check(&caller("alice")), check(&caller("bob"))))),
        }
    }

    #[tokio::test]
    async fn revoked_identities_fail_the_handshake_check() {
        use crate::server::store::{self, Selector, Store};
        let dir = tempfile::tempdir().unwrap();
        let st: Arc<dyn Store> = Arc::new(store::file::FileStore::new(dir.path().join("state")));
        let rec = |serial: &str| store::IssuedRecord {
            serial: serial.into(),
            user: "alice".into(),
            groups: vec![],
            issued: 0,
            expires: i64::MAX,
            renewable_until: 0,
        };
        st.migrate().await.unwrap();
        st.record_issued(rec("aa")).await.unwrap();
        st.revoke(Selector::Serial("aa".into()), "gone".into(), 1).await.unwrap();
        let authority = Arc::new(crate::server::auth::Authority::new(None, st, std::time::Duration::from_secs(1), "p"));
        authority.refresh_once().await.unwrap();
        let t = table();
        let pg = naming::resource_sni(Kind::Db, "pg1", naming::INTERNAL_DOMAIN);
        let (_, auth) = handshake_params(&t.decide(Some(&pg), [&b"teleport-postgres"[..]]), &TurnedAway::default());
        let ClientAuth::Required(check) = with_revocation(auth, authority) else { panic!("a required certificate") };
        let revoked = Caller { serial: "aa".into(), ..caller("alice") };
        let other = Caller { serial: "bb".into(), ..caller("alice") };
        assert!(!check(&revoked));
        assert!(check(&other));
    }

    #[test]
    fn web_and_probe_take_an_optional_certificate() {
        assert_eq!(params(&Route::Web { h2: true }), ("h2".into(), None));
        assert_eq!(params(&Route::Web { h2: false }), ("http/1.1".into(), None));
        assert_eq!(params(&Route::Probe), ("teleport-reversetunnel".into(), None));
        assert_eq!(params(&Route::NoProtocol), ("oneport-no-route".into(), None));
    }

    #[test]
    fn resources_check_their_allow_list_in_the_handshake_except_kube() {
        let t = table();
        let pg = naming::resource_sni(Kind::Db, "pg1", naming::INTERNAL_DOMAIN);
        let r = t.decide(Some(&pg), [&b"teleport-postgres-ping"[..]]);
        assert_eq!(params(&r), ("teleport-postgres-ping".into(), Some((true, false))));
        let kube = naming::resource_sni(Kind::Kube, "dev", naming::INTERNAL_DOMAIN);
        let r = t.decide(Some(&kube), [&b"http/1.1"[..]]);
        assert_eq!(params(&r), ("http/1.1".into(), Some((true, true))), "kube authorizes per request");
    }

    #[test]
    fn refused_routes_require_a_certificate_nobody_has() {
        let t = table();
        let unknown = naming::resource_sni(Kind::Db, "nope", naming::INTERNAL_DOMAIN);
        let r = t.decide(Some(&unknown), [&b"teleport-postgres"[..]]);
        assert!(matches!(r, Route::Refuse { .. }), "{r:?}");
        assert_eq!(params(&r), ("teleport-postgres".into(), Some((false, false))));
    }

    #[test]
    fn the_turned_away_caller_is_kept_for_the_refusal_line() {
        let t = table();
        let pg = naming::resource_sni(Kind::Db, "pg1", naming::INTERNAL_DOMAIN);
        let r = t.decide(Some(&pg), [&b"teleport-postgres"[..]]);
        let seen = TurnedAway::default();
        let (_, ClientAuth::Required(check)) = handshake_params(&r, &seen) else { panic!("a certificate is required") };
        assert!(check(&caller("alice")));
        assert!(seen.lock().unwrap().is_none(), "an allowed caller is not kept");
        assert!(!check(&caller("bob")));
        assert_eq!(seen.lock().unwrap().as_ref().map(|c| c.user.as_str()), Some("bob"));
    }
}
