//! The server end of a multiplexed session (docs/protocol.md §13): HTTP/2 on the
//! authenticated routing TLS of a `-mux` route, one CONNECT stream per client
//! connection (a byte tunnel's connection, or one HTTP/1.1 connection to an HTTP
//! app or a kube cluster on `teleport-http-mux`). Every stream open is judged again
//! (the certificate's expiry and revocation, the resource's allow-list in the
//! configuration in force: [`judge`]; kube callers are judged per request by the kube
//! backend, as on a per-connection route) and takes the route in force
//! ([`current_route`]); an accepted stream is handed to `backend::serve` exactly like
//! a per-connection tunnel (the backend is dialled then, and half-close travels both
//! ways through the relay); a refused one gets a 403 whose body is the sentence a
//! refused connection gets from `/webapi/resolve`. Limits:
//! `mux.max_streams_per_session` (HTTP/2's own SETTINGS_MAX_CONCURRENT_STREAMS) and
//! `mux.max_sessions_per_user`. When the server drains, each session gets a GOAWAY
//! and ends with its last open stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use http::StatusCode;
use tracing::{debug, info, Instrument};

use std::net::SocketAddr;

use crate::identity::Caller;
use crate::net::io::{BoxIo, Counted, Counters};
use crate::net::mux::{self, H2Stream};
use crate::net::relay::Link;
use crate::proto::naming::{Alpn, Kind, ResourceRef};
use crate::proto::webapi::Outcome;
use crate::server::audit::{self, Via};
use crate::server::routes::{ResourceRoute, Route};
use crate::server::{backend, web, Server};

/// How long the streams of a session h2 closed may take to finish relaying.
const STREAMS_FINISH: Duration = Duration::from_secs(10);

/// Open sessions per user, for `mux.max_sessions_per_user`.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, usize>>,
}

/// One counted session; uncounted when dropped.
struct Slot<'a> {
    sessions: &'a Sessions,
    user: String,
}

impl Sessions {
    fn enter(&self, user: &str, limit: usize) -> Option<Slot<'_>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(user.to_string()).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Slot { sessions: self, user: user.to_string() })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut open = self.sessions.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// Why a stream may not open, in the words a refused connection gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 403 for the caller, 400 for a malformed request, 503 for a limit.
    pub status: StatusCode,
    /// The sentence.
    pub sentence: String,
}

/// Judges one stream open of `caller` on the session routed to `route` (named by
/// `sni`), at `now`, against the configuration and the revocation list in force.
/// This is the one place a stream is authorized.
pub fn judge(
    srv: &Server,
    route: &ResourceRoute,
    sni: &str,
    caller: &Caller,
    req: &http::Request<h2::RecvStream>,
    now: SystemTime,
) -> Result<(), Refusal> {
    let bad = |sentence: String| Err(Refusal { status: StatusCode::BAD_REQUEST, sentence });
    if req.method() != http::Method::CONNECT {
        return bad(format!("a multiplexed stream opens with CONNECT, not {}", req.method()));
    }
    match req.uri().authority() {
        Some(a) if a.as_str().eq_ignore_ascii_case(sni) => {}
        other => {
            return bad(format!(
                "a stream on the session of {sni} must name it, not {:?}",
                other.map(|a| a.as_str()).unwrap_or("")
            ))
        }
    }
    if caller.expired_at(now) {
        let secs = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let sentence = caller.expired_sentence(secs);
        return Err(Refusal { status: StatusCode::FORBIDDEN, sentence });
    }
    // Revocations reach every server within `state_refresh` (server::auth).
    if let Some(rev) = srv.auth.revocation(caller) {
        return Err(Refusal { status: StatusCode::FORBIDDEN, sentence: rev.sentence() });
    }
    // The allow-list in force now (srv.table is the configuration currently served),
    // with the same sentence `/webapi/resolve` gives a refused connection. A kube
    // stream outside the allow-list is let through, as a per-connection kube TLS
    // connection is: the kube backend answers each of its requests with a `Status`
    // 403 kubectl prints (judged per request against the configuration in force).
    let answer = web::explain(srv, caller, &ResourceRef::new(route.kind, route.name.clone()));
    let configured = srv.table.allow_of(route.kind, &route.name).is_some();
    if answer.outcome != Outcome::Allowed && !(route.kind == Kind::Kube && configured) {
        return Err(Refusal { status: StatusCode::FORBIDDEN, sentence: answer.message });
    }
    Ok(())
}

/// The route of a stream accepted on the session of `session` (named by `sni`): the
/// resource as the configuration in force describes it now (a reload may have moved
/// an app's address or a kube cluster's API server), under the session's ALPN.
///
/// # Errors
/// The 403 for a resource no longer configured as the session's.
pub fn current_route(srv: &Server, session: &ResourceRoute, sni: &str) -> Result<ResourceRoute, Refusal> {
    let plain = Alpn { mux: false, ..session.alpn }.to_bytes();
    match srv.table.decide(Some(sni), [plain.as_slice()]) {
        Route::Resource(r) if r.kind == session.kind && r.name == session.name => {
            Ok(ResourceRoute { alpn: session.alpn, ..*r })
        }
        _ => Err(Refusal {
            status: StatusCode::FORBIDDEN,
            sentence: format!(
                "{} {} is no longer configured on proxy {}",
                session.kind.noun(),
                session.name,
                srv.cfg.public_addr
            ),
        }),
    }
}

/// Serves a multiplexed session of `caller` on `tls`, routed to `route`.
///
/// Each stream gets its own audit record (as a per-connection tunnel does), and is
/// judged against the state in force when it opens ([`Server::latest`]: a config
/// reload that removed the caller refuses new streams on an open session).
pub async fn serve(
    srv: Arc<Server>,
    tls: BoxIo,
    route: ResourceRoute,
    sni: String,
    caller: Caller,
    peer: SocketAddr,
    via: Via,
) {
    let limits = srv.cfg.mux.clone();
    let slot = srv.mux_sessions.enter(&caller.user, limits.max_sessions_per_user);
    let handshake = mux::server_builder(limits.max_streams_per_session).handshake::<_, Bytes>(mux::Paced::new(tls));
    let mut conn = match tokio::time::timeout(srv.cfg.handshake_timeout, handshake).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return info!(error = %e, "multiplexed session: HTTP/2 handshake failed"),
        Err(_) => return info!("multiplexed session: no HTTP/2 preface before the handshake deadline; closed"),
    };
    info!(resource = %route.name, kind = %route.kind, user = %caller.user, "multiplexed session open");
    // Pings as often as on `-ping` protocols: load balancers cut idle connections,
    // and a session is idle between streams. A pong may take longer on a busy path.
    let pings = conn.ping_pong().filter(|_| !srv.cfg.ping_interval.is_zero());
    let interval = srv.cfg.ping_interval;
    let patience = (interval * 2).max(Duration::from_secs(10));
    let keepalive = async move {
        match pings {
            Some(p) => mux::keepalive(p, interval, patience).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(keepalive);
    // The streams run inside this task, beside the HTTP/2 connection they read and
    // write through: a stream's DATA and the connection's TLS I/O then wake each
    // other within one task instead of across worker threads. A session is then
    // one task (one core at a time), as a per-connection tunnel is.
    let mut streams = FuturesUnordered::new();
    let mut next: u64 = 0;
    // On shutdown: GOAWAY, so the client opens no new streams and sends them
    // elsewhere; the session ends when its open streams have (drain waits for them).
    let stop = srv.tasks.stopping().clone();
    let mut closing = false;
    loop {
        let accepted = tokio::select! {
            a = conn.accept() => a,
            why = &mut keepalive => { info!(reason = %why, "multiplexed session closed"); break }
            Some(()) = streams.next(), if !streams.is_empty() => continue,
            () = stop.cancelled(), if !closing => {
                debug!(streams = streams.len(), "shutting down: the multiplexed session takes no new streams");
                conn.graceful_shutdown();
                closing = true;
                continue;
            }
        };
        let (req, mut respond) = match accepted {
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                debug!(error = %e, "multiplexed session ended with an error");
                break;
            }
            None => {
                // h2 ends the connection once its streams are closed at the protocol
                // level, which can be before their relays have handed the last bytes
                // and the half-close to the backends: let them finish (bounded).
                let finish = async { while streams.next().await.is_some() {} };
                if tokio::time::timeout(STREAMS_FINISH, finish).await.is_err() {
                    debug!(streams = streams.len(), "streams still relaying after the session closed; dropped");
                }
                break;
            }
        };
        next += 1;
        let verdict = if slot.is_none() {
            Err(Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                sentence: format!(
                    "user {} has {} multiplexed sessions open on proxy {} already (mux.max_sessions_per_user)",
                    caller.user, limits.max_sessions_per_user, srv.cfg.public_addr
                ),
            })
        } else {
            let now = srv.latest();
            judge(&now, &route, &sni, &caller, &req, SystemTime::now())
                .and_then(|()| current_route(&now, &route, &sni))
                .map(|r| (now, r))
        };
        let (now, current) = match verdict {
            Ok(x) => x,
            Err(r) => {
                debug!(stream = next, status = r.status.as_u16(), "refused stream: nothing dialled");
                audit::refused(&srv.audit, Some(&caller), peer, route.kind, &route.name, &r.sentence);
                if let Ok(mut send) = respond.send_response(mux::refused(r.status), false) {
                    let _ = send.send_data(Bytes::from(r.sentence), true);
                }
                continue;
            }
        };
        let send = match respond.send_response(mux::accepted(), false) {
            Ok(s) => s,
            Err(e) => {
                debug!(error = %e, "stream reset before it was answered");
                continue;
            }
        };
        let counters = Arc::new(Counters::default());
        let stream = Link::Chunks(Box::new(Counted::new(H2Stream::server(send, req.into_body()), counters.clone())));
        let record = audit::Session::start(
            srv.audit.clone(),
            caller.clone(),
            peer,
            route.kind,
            &route.name,
            format!("{} (stream {next})", route.alpn),
            via,
            counters,
        );
        // The stream is served by the state in force when it opened (its backend, its
        // kube upstream); kube requests are judged again, each against the newest.
        let caller = caller.clone();
        streams.push(
            async move { record.end(backend::serve(now, stream, current, caller, peer).await) }
                .instrument(tracing::debug_span!("stream", n = next)),
        );
    }
    // Streams cannot outlive their session's connection.
    drop(streams);
    drop(slot);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_per_user_are_counted_and_released() {
        let s = Sessions::default();
        let a = s.enter("alice", 2).unwrap();
        let b = s.enter("alice", 2).unwrap();
        assert!(s.enter("alice", 2).is_none());
        assert!(s.enter("bob", 2).is_some());
        drop(a);
        assert!(s.enter("alice", 2).is_some());
        drop(b);
        assert!(s.open.lock().unwrap().get("alice").is_none());
    }
}
