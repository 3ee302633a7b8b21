//! The web API on the web route (`http/1.1`, `h2`, no ALPN) and on plain HTTP from a
//! load balancer that terminated TLS: `GET /webapi/ping` (who the server is and what
//! the caller may use; no secrets), `GET /webapi/resolve` (why a resource cannot be
//! reached, for client error messages), `GET /webapi/reach` (whether the server
//! reaches a resource's backend now, for `doctor`), and the connection-upgrade
//! endpoint.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tracing::{debug, info};

use crate::identity::Caller;
use crate::net::io::BoxIo;
use crate::net::tasks::Executor;
use crate::proto::naming::{Kind, ResourceRef};
use crate::proto::upgrade;
use crate::proto::webapi::{parse_resolve_query, Outcome, PingResponse, ReachResponse, ResolveResponse, ResourceInfo};
use crate::server::Server;

/// What the web handler knows about the connection.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The verified client certificate's identity, if one was presented.
    pub caller: Option<Caller>,
    /// HTTP/2 negotiated.
    pub h2: bool,
    /// Plain HTTP (a load balancer terminated TLS).
    pub plain: bool,
    /// Already inside an upgraded connection (no second upgrade).
    pub upgraded: bool,
}

impl Ctx {
    /// A context for a connection from `peer`.
    pub fn new(peer: SocketAddr, caller: Option<Caller>, h2: bool, plain: bool, upgraded: bool) -> Ctx {
        Ctx { peer, caller, h2, plain, upgraded }
    }
}

type Slot = Arc<std::sync::Mutex<Option<crate::server::upgrade::Pending>>>;

/// The largest HTTP/1 request head read (hyper's buffer, at its minimum of 8 KiB
/// plus room for a load balancer's headers); a larger one gets 431.
pub const MAX_HEAD: usize = 16 * 1024;

/// Serves HTTP on `io` until the client closes; `pre` is the connection's place in
/// the budget for connections without an identity (kept while it serves, handed on
/// to an upgrade).
pub async fn serve(srv: Arc<Server>, io: BoxIo, ctx: Ctx, pre: crate::server::conn::PreAuth) {
    let io = TokioIo::new(io);
    let h2 = ctx.h2;
    let header_timeout = srv.cfg.handshake_timeout;
    let ctx = Arc::new(ctx);
    let slot: Slot = Arc::default();
    let activity = Arc::new(Activity::default());
    let svc = {
        let (srv, slot, activity) = (srv.clone(), slot.clone(), activity.clone());
        hyper::service::service_fn(move |req| {
            let (srv, ctx, slot, activity) = (srv.clone(), ctx.clone(), slot.clone(), activity.clone());
            async move {
                let _busy = activity.begin();
                Ok::<_, Infallible>(route(srv, ctx, slot, req).await)
            }
        })
    };
    let res = if h2 {
        // Small windows and header lists: no request here has a body, and a client
        // without an identity may not make us hold more than a few KiB.
        let conn = hyper::server::conn::http2::Builder::new(Executor(srv.tasks.clone()))
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(header_timeout))
            .keep_alive_timeout(header_timeout)
            .max_header_list_size(MAX_HEAD as u32)
            .max_concurrent_streams(16)
            .max_pending_accept_reset_streams(Some(16))
            .max_local_error_reset_streams(Some(64))
            .initial_stream_window_size(16 * 1024)
            .max_send_buf_size(64 * 1024)
            .serve_connection(io, svc);
        idle_limited(conn, &activity, header_timeout, srv.tasks.stopping()).await
    } else {
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(MAX_HEAD)
            .serve_connection(io, svc)
            .with_upgrades();
        tokio::pin!(conn);
        // On shutdown, finish the request in flight and close (no more keep-alive).
        tokio::select! {
            r = conn.as_mut() => r,
            _ = srv.tasks.stopping().cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    };
    if let Err(e) = res {
        debug!(error = %e, "web connection ended with an error");
    }
    // An upgrade hands the connection over only once hyper has finished with it.
    let pending = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(p) = pending {
        // Boxed: the upgraded stream goes back through the router, which got us here.
        Box::pin(crate::server::upgrade::run(srv, p, pre)).await;
    }
}

/// Requests in flight and the time the last one ended, for the HTTP/2 idle limit
/// (HTTP/1's `header_read_timeout` already covers idle keep-alive connections).
#[derive(Debug, Default)]
struct Activity {
    busy: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<Option<tokio::time::Instant>>,
}

struct Busy<'a>(&'a Activity);

impl Activity {
    fn begin(&self) -> Busy<'_> {
        self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(self)
    }
    fn idle_since(&self) -> Option<tokio::time::Instant> {
        if self.busy.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return None;
        }
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now());
        self.0.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Serves an HTTP/2 connection, closing it gracefully when no request has been in
/// flight for `idle` (including before the first one), so that silent connections
/// cannot hold the server's connection slots, and when `stop` (shutdown) fires.
async fn idle_limited<I, S>(
    conn: hyper::server::conn::http2::Connection<I, S, Executor>,
    activity: &Activity,
    idle: std::time::Duration,
    stop: &tokio_util::sync::CancellationToken,
) -> hyper::Result<()>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = Full<Bytes>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
{
    let started = tokio::time::Instant::now();
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let since = activity.idle_since();
        let check = tokio::time::sleep(idle.min(std::time::Duration::from_secs(1)));
        tokio::select! {
            r = conn.as_mut() => return r,
            // A connection still waiting for the client's preface ignores the graceful
            // close: drop it (closing the socket) when it has not ended in time.
            _ = tokio::time::sleep(idle), if closing => return Ok(()),
            _ = stop.cancelled(), if !closing => {
                debug!("shutting down: HTTP/2 connection closed gracefully");
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = check, if !closing => {
                let quiet_from = since.unwrap_or(started);
                let in_flight = activity.busy.load(std::sync::atomic::Ordering::SeqCst) > 0;
                if !in_flight && quiet_from.elapsed() >= idle {
                    debug!("idle HTTP/2 connection closed");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

type Resp = Response<Full<Bytes>>;

/// Builds a JSON response.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Resp {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}

/// A JSON error body: `{"error": "..."}`.
pub fn error(status: StatusCode, msg: &str) -> Resp {
    json(status, &serde_json::json!({ "error": msg }))
}

async fn route(srv: Arc<Server>, ctx: Arc<Ctx>, slot: Slot, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let client = match client_addr(&srv, &ctx, req.headers()) {
        Ok(a) => a,
        Err(msg) => {
            info!(peer = %ctx.peer, reason = %msg, "request rejected");
            return error(StatusCode::BAD_REQUEST, &msg);
        }
    };
    debug!(method = %req.method(), path = %path, plain = ctx.plain, client = %client, "web request");
    // A resumed TLS session skips certificate verification, so expiry is checked on
    // every request: an expired identity is no identity.
    let caller = ctx.caller.as_ref().filter(|c| !c.expired_at(std::time::SystemTime::now()));
    if let (Some(c), None) = (&ctx.caller, caller) {
        info!(user = %c.user, path = %path, "the caller's certificate has expired; answering as to an anonymous client");
    }
    match (req.method(), path.as_str()) {
        (&Method::GET, upgrade::PATH) if ctx.upgraded => {
            error(StatusCode::BAD_REQUEST, "this connection is already upgraded; upgrades do not nest")
        }
        (&Method::GET, upgrade::PATH) => {
            let (resp, pending) = crate::server::upgrade::respond(req, client);
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = pending;
            resp
        }
        (&Method::GET, "/webapi/ping") => json(StatusCode::OK, &ping(&srv, caller)),
        (&Method::GET, "/webapi/resolve") => match (&ctx.caller, caller) {
            (Some(c), None) => error(StatusCode::UNAUTHORIZED, &c.expired_sentence(crate::server::auth::now())),
            _ => resolve(&srv, caller, req.uri().query().unwrap_or("")),
        },
        (&Method::GET, "/webapi/reach") => match (&ctx.caller, caller) {
            (Some(c), None) => error(StatusCode::UNAUTHORIZED, &c.expired_sentence(crate::server::auth::now())),
            _ => reach(&srv, caller, req.uri().query().unwrap_or("")).await,
        },
        _ => error(StatusCode::NOT_FOUND, &format!("no such endpoint: {} {path}", req.method())),
    }
}

/// The client's address: the TCP peer, or, when the peer is one of the
/// `trusted_proxies`, what its `X-Forwarded-For` says (see [`forwarded_client`]).
fn client_addr(srv: &Server, ctx: &Ctx, h: &hyper::HeaderMap) -> Result<SocketAddr, String> {
    let values: Vec<&str> = h.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("\u{fffd}")).collect();
    if values.is_empty() {
        return Ok(ctx.peer);
    }
    let ip = forwarded_client(ctx.peer.ip(), &values, &srv.trusted_proxies)?;
    if ip == ctx.peer.ip() && !crate::util::cidr::any_contains(&srv.trusted_proxies, ip) {
        debug!(peer = %ctx.peer, "X-Forwarded-For ignored: the peer is not in trusted_proxies");
    } else if ip != ctx.peer.ip() {
        info!(peer = %ctx.peer, client = %ip, "client address from X-Forwarded-For");
    }
    Ok(SocketAddr::new(ip, ctx.peer.port()))
}

/// The client address for a request from `peer` carrying `X-Forwarded-For`
/// `values` (every header, in order). A peer outside `trusted` is the client, whatever
/// it sent. From a trusted peer the entries are read right to left (each proxy
/// appends the address it saw) and the first one that is not itself a trusted proxy
/// is the client; when all are trusted, the leftmost. Entries may be `IP`, `[IPv6]`
/// or `IP:port`.
///
/// # Errors
/// A sentence when the entry that decides is not an IP address.
pub fn forwarded_client(peer: IpAddr, values: &[&str], trusted: &[crate::util::cidr::Cidr]) -> Result<IpAddr, String> {
    use crate::util::cidr::any_contains;
    if !any_contains(trusted, peer) {
        return Ok(peer);
    }
    let entries: Vec<&str> =
        values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|e| !e.is_empty()).collect();
    let mut client = peer;
    for e in entries.iter().rev() {
        let ip = parse_forwarded_ip(e).ok_or_else(|| format!("X-Forwarded-For entry {e:?} is not an IP address"))?;
        client = ip;
        if !any_contains(trusted, ip) {
            break;
        }
    }
    Ok(client)
}

fn parse_forwarded_ip(e: &str) -> Option<IpAddr> {
    if let Ok(ip) = e.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    e.parse::<SocketAddr>().ok().map(|sa| sa.ip().to_canonical())
}

/// The ping answer for `caller`.
pub fn ping(srv: &Server, caller: Option<&Caller>) -> PingResponse {
    let refused = caller.and_then(|c| srv.auth.revocation(c)).map(|r| r.sentence());
    let resources = match caller {
        None => Vec::new(),
        Some(_) if refused.is_some() => Vec::new(),
        Some(c) => srv
            .table
            .all()
            .into_iter()
            .filter(|(_, _, _, allow)| allow.permits(c))
            .map(|(kind, name, protocol, _)| ResourceInfo { kind, name, protocol })
            .collect(),
    };
    PingResponse {
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        cluster_name: srv.cfg.cluster_name.clone(),
        public_addr: srv.cfg.public_addr.clone(),
        routing_domain: srv.cfg.routing_domains()[0].clone(),
        ping_interval_secs: srv.cfg.ping_interval.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX),
        ping_interval_ms: srv.cfg.ping_interval.as_millis().try_into().unwrap_or(u64::MAX),
        caller: caller.cloned(),
        resources,
        refused,
    }
}

fn resolve(srv: &Server, caller: Option<&Caller>, query: &str) -> Resp {
    let Some(caller) = caller else {
        return error(StatusCode::UNAUTHORIZED, crate::proto::webapi::CERT_REQUIRED);
    };
    match parse_resolve_query(query) {
        Ok(r) => {
            let via = crate::proto::webapi::parse_via(query);
            json(StatusCode::OK, &explain_via(srv, caller, &r, via.as_deref().unwrap_or(&srv.cfg.public_addr)))
        }
        Err(msg) => error(StatusCode::BAD_REQUEST, &msg),
    }
}

/// `/webapi/reach`: authorized as resolve; for an allowed resource the server
/// dials its backend ([`crate::server::backend::reach`]), else the refusal.
async fn reach(srv: &Server, caller: Option<&Caller>, query: &str) -> Resp {
    let Some(caller) = caller else {
        return error(StatusCode::UNAUTHORIZED, crate::proto::webapi::CERT_REQUIRED);
    };
    let r = match parse_resolve_query(query) {
        Ok(r) => r,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    let verdict = explain(srv, caller, &r);
    if verdict.outcome != Outcome::Allowed {
        return json(StatusCode::OK, &ReachResponse { ok: false, message: verdict.message });
    }
    json(StatusCode::OK, &crate::server::backend::reach(srv, &r).await)
}

/// Why `caller` can or cannot use resource `r`, in a sentence. A node's port is
/// judged only for callers the node allows, so others learn nothing about it.
pub fn explain(srv: &Server, caller: &Caller, r: &ResourceRef) -> ResolveResponse {
    explain_via(srv, caller, r, &srv.cfg.public_addr)
}

/// As [`explain`], naming the proxy `proxy` (the address the client dialled).
pub fn explain_via(srv: &Server, caller: &Caller, r: &ResourceRef, proxy: &str) -> ResolveResponse {
    let (kind, name, port) = (r.kind, r.name.as_str(), r.port);
    if let Some(rev) = srv.auth.revocation(caller) {
        return ResolveResponse { outcome: Outcome::Denied, message: rev.sentence(), protocol: None };
    }
    let refusal = match srv.table.node(name).map(|n| n.dial_addr(port)) {
        Some(Err(r)) if kind == Kind::Node => Some(r.sentence(proxy)),
        Some(Ok(addr)) if kind == Kind::Node && srv.table.is_own_listener(&addr) => {
            Some(crate::server::config::own_listener_sentence(
                name,
                port.unwrap_or(crate::proto::naming::SSH_DEFAULT_PORT),
                proxy,
            ))
        }
        _ => None,
    };
    match srv.table.allow_of(kind, name) {
        Some(allow) if allow.permits(caller) && refusal.is_some() => {
            ResolveResponse { outcome: Outcome::Denied, message: refusal.unwrap_or_default(), protocol: None }
        }
        Some(allow) if allow.permits(caller) => ResolveResponse {
            outcome: Outcome::Allowed,
            message: format!("{} {name} is reachable through proxy {proxy} for user {}", kind.noun(), caller.user),
            protocol: srv.table.all().into_iter().find(|(k, n, _, _)| *k == kind && n == name).map(|(_, _, p, _)| p),
        },
        Some(_) => ResolveResponse {
            outcome: Outcome::Denied,
            message: format!("access to {} {name} denied for user {}", kind.noun(), caller.user),
            protocol: None,
        },
        None => {
            // The same name as another kind the caller may use: say which, and how.
            let others: Vec<Kind> = Kind::ALL
                .into_iter()
                .filter(|k| *k != kind && srv.table.allow_of(*k, name).is_some_and(|a| a.permits(caller)))
                .collect();
            if let Some(hint) = crate::proto::webapi::other_kind_hint(name, &others) {
                return ResolveResponse { outcome: Outcome::Unknown, message: hint, protocol: None };
            }
            let known: Vec<String> = srv
                .table
                .names(kind)
                .into_iter()
                .filter(|n| srv.table.allow_of(kind, n).is_some_and(|a| a.permits(caller)))
                .collect();
            let known = if known.is_empty() { "none for this user".to_string() } else { known.join(", ") };
            ResolveResponse {
                outcome: Outcome::Unknown,
                message: format!("{} {name} is not known to proxy {proxy}; known: {known}", kind.noun()),
                protocol: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        use crate::util::cidr::Cidr;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap(), Cidr::parse("fd00::/8").unwrap()];
        let lb = ip("10.1.1.1");
        // A direct client picks nothing, whatever it sends.
        assert_eq!(forwarded_client(ip("198.51.100.9"), &["203.0.113.7"], &trusted), Ok(ip("198.51.100.9")));
        assert_eq!(forwarded_client(ip("198.51.100.9"), &["junk"], &trusted), Ok(ip("198.51.100.9")));
        assert_eq!(forwarded_client(ip("198.51.100.9"), &["1.1.1.1"], &[]), Ok(ip("198.51.100.9")));
        // Through the load balancer: the address it saw.
        assert_eq!(forwarded_client(lb, &[" 203.0.113.7 "], &trusted), Ok(ip("203.0.113.7")));
        // A client that sends its own header: the load balancer appends the real one.
        assert_eq!(forwarded_client(lb, &["6.6.6.6, 203.0.113.7"], &trusted), Ok(ip("203.0.113.7")));
        assert_eq!(forwarded_client(lb, &["junk, 203.0.113.7"], &trusted), Ok(ip("203.0.113.7")));
        // Two proxies in a row, both trusted; several headers read as one list.
        assert_eq!(forwarded_client(lb, &["203.0.113.7, 10.2.2.2"], &trusted), Ok(ip("203.0.113.7")));
        assert_eq!(forwarded_client(lb, &["203.0.113.7", "10.2.2.2"], &trusted), Ok(ip("203.0.113.7")));
        assert_eq!(forwarded_client(lb, &["10.3.3.3, 10.2.2.2"], &trusted), Ok(ip("10.3.3.3")), "all trusted");
        // IPv6 and ports.
        assert_eq!(forwarded_client(ip("fd00::1"), &["[2001:db8::5]"], &trusted), Ok(ip("2001:db8::5")));
        assert_eq!(forwarded_client(ip("fd00::1"), &["[2001:db8::5]:4711"], &trusted), Ok(ip("2001:db8::5")));
        assert_eq!(forwarded_client(lb, &["203.0.113.7:5000"], &trusted), Ok(ip("203.0.113.7")));
        assert_eq!(forwarded_client(ip("::ffff:10.1.1.1"), &["203.0.113.7"], &trusted), Ok(ip("203.0.113.7")));
        // The deciding entry must be an address.
        assert_eq!(
            forwarded_client(lb, &["203.0.113.7, evil"], &trusted),
            Err("X-Forwarded-For entry \"evil\" is not an IP address".into())
        );
        assert_eq!(forwarded_client(lb, &[""], &trusted), Ok(lb), "an empty header names nobody");
    }
}
