//! Reaching a routed resource: dial the backend the config names (never anything
//! else), optionally wrap it in TLS (databases with `tls`), then relay. When a
//! database cannot be reached, its client is told so in its own protocol; an HTTP
//! app's client gets a 502 page saying so.
//! Protocol-specific backends (the Kubernetes impersonation proxy) plug in here.
//!
//! TLS towards a database: PostgreSQL first gets an `SSLRequest` and must answer
//! `S`; MongoDB and Redis speak TLS from the first byte. MySQL switches to TLS in
//! the middle of its handshake, which a byte relay cannot do, so the config
//! rejects `tls` for it (see `Config::validate`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info};

use crate::error::{with_timeout, Error, Layer, Phase};
use crate::identity::Caller;
use crate::net::io::BoxIo;
use crate::net::relay::{relay_link, Counts, Link};
use crate::net::tls::{self, Trust};
use crate::proto::db::{handshake, postgres, DbProtocol};
use crate::proto::http;
use crate::proto::naming::AppKind;
use crate::proto::webapi::ReachResponse;
use crate::server::config::{Config, Database};
use crate::server::routes::{ResourceRoute, Target};
use crate::server::Server;

/// Serves one authorized connection to its resource; says how it ended (for the
/// session's audit line).
pub async fn serve(
    srv: Arc<Server>,
    mut client: Link,
    route: ResourceRoute,
    caller: Caller,
    source: SocketAddr,
) -> String {
    let addr = match &route.target {
        // Chosen by the routing table from the node's `addr`/`targets` only.
        Target::Node { addr, .. } => addr.clone(),
        Target::Database(d) => d.addr.clone(),
        Target::App(a) => a.addr.clone(),
        Target::Kube(_) => return crate::server::kube::serve(srv, client.into_io(), route, caller, source).await,
    };
    if let Target::Node { node, .. } = &route.target {
        if let Some(sentence) = own_listener(&srv, &node.name, &addr).await {
            info!(resource = %route.name, "refused: {sentence}; nothing dialled");
            return format!("refused: {sentence}");
        }
    }
    let tcp = match dial(&srv, &addr).await {
        Ok(s) => s,
        Err(e) => {
            info!(error = %e, resource = %route.name, "backend unreachable");
            tell_unreachable(&srv, &route.target, &mut client, &e).await;
            return format!("backend unreachable: {e}");
        }
    };
    let mut backend: BoxIo = match &route.target {
        Target::Database(d) if d.tls.is_some() => match db_tls(&srv, d, tcp).await {
            Ok(s) => s,
            Err(e) => {
                info!(error = %e, resource = %route.name, "TLS to the database failed");
                tell_unreachable(&srv, &route.target, &mut client, &e).await;
                return format!("TLS to the database failed: {e}");
            }
        },
        _ => Box::new(tcp),
    };
    match relay_link(&mut backend, &mut client).await.map(Counts::swapped) {
        Ok(c) => {
            debug!(to_backend = c.a_to_b, to_client = c.b_to_a, "connection closed");
            "closed".to_string()
        }
        Err(e) => {
            debug!(error = %e, "connection ended with an error");
            format!("ended with an error: {e}")
        }
    }
}

/// Whether the server reaches the backend of `r` now (`/webapi/reach`, asked by
/// `doctor`, for a caller the resource allows): the dial a connection makes (and
/// the TLS, for databases with `tls` and kube clusters) under the same deadlines,
/// then it hangs up without a byte of the protocol. A node on the server's own
/// listener is refused as a connection would be. The address stays in the log.
pub async fn reach(srv: &Server, r: &crate::proto::naming::ResourceRef) -> ReachResponse {
    use crate::proto::naming::Kind;
    let proxy = &srv.cfg.public_addr;
    let what = format!("{} {}", r.kind.noun(), r.name);
    let result = match r.kind {
        Kind::Node => match srv.table.node(&r.name).map(|n| n.dial_addr(r.port)) {
            None => Err(Error::config("no such node")),
            Some(Err(refusal)) => return ReachResponse { ok: false, message: refusal.sentence(proxy) },
            Some(Ok(addr)) => match own_listener(srv, &r.name, &addr).await {
                Some(sentence) => return ReachResponse { ok: false, message: sentence },
                None => dial(srv, &addr).await.map(drop),
            },
        },
        Kind::App => match srv.table.app(&r.name) {
            None => Err(Error::config("no such app")),
            Some(a) => dial(srv, &a.addr).await.map(drop),
        },
        Kind::Db => match srv.table.database(&r.name) {
            None => Err(Error::config("no such database")),
            Some(d) => match dial(srv, &d.addr).await {
                Ok(tcp) if d.tls.is_some() => db_tls(srv, d, tcp).await.map(drop),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
        },
        Kind::Kube => match srv.kube.get(&r.name) {
            None => Err(Error::config("no such kube cluster")),
            Some(up) => up.reach().await,
        },
    };
    match result {
        Ok(()) => ReachResponse { ok: true, message: format!("proxy {proxy} reaches the backend of {what}") },
        Err(e) => {
            info!(resource = %what, error = %e, "reach: backend unreachable");
            ReachResponse {
                ok: false,
                message: format!(
                    "{what} is unreachable from proxy {proxy} ({}); the proxy's log has the details",
                    short_reason(&e)
                ),
            }
        }
    }
}

/// A backend failure without the backend's address (which stays in the log).
fn short_reason(err: &Error) -> String {
    match err {
        Error::Connect { cause, .. } => cause.to_string(),
        Error::Timeout { phase, limit, .. } => format!("{phase} timed out after {limit:?}"),
        Error::Tls { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// For a database, tells the client in its own protocol that the database cannot be
/// reached (so psql and mysql print it); an HTTP app's client gets a 502 with the
/// sentence as a plain-text body; other resources just close. The reason is kept
/// short: the database's address stays in the server's log.
async fn tell_unreachable(srv: &Server, target: &Target, client: &mut Link, err: &Error) {
    if let Target::App(a) = target {
        if a.kind == AppKind::Http {
            let sentence = format!("app {}: the proxy cannot reach {}: {}", a.name, a.addr, dial_reason(err));
            http_bad_gateway(client, &sentence, srv.cfg.handshake_timeout).await;
        }
        return;
    }
    let Target::Database(d) = target else { return };
    let reason = short_reason(err);
    let msg = format!(
        "database {} is unreachable from proxy {} ({reason}); the proxy's log has the details",
        d.name, srv.cfg.public_addr
    );
    handshake::unreachable(client, d.protocol, &msg, srv.cfg.handshake_timeout).await;
}

/// Why a dial failed, in a few words ("connection refused").
fn dial_reason(err: &Error) -> String {
    match err {
        Error::Connect { cause, .. } => match cause.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
            std::io::ErrorKind::TimedOut => "timed out".to_string(),
            _ => cause.to_string(),
        },
        Error::Timeout { phase, limit, .. } => format!("{phase} timed out after {limit:?}"),
        other => other.to_string(),
    }
}

/// The longest request head read before answering 502.
const BAD_GATEWAY_HEAD: usize = 16 * 1024;

/// Reads the client's request head (so closing does not reset the connection under
/// the answer), then answers 502 with `sentence` and closes; all within `limit`.
async fn http_bad_gateway(client: &mut Link, sentence: &str, limit: std::time::Duration) {
    let _ = tokio::time::timeout(limit, async {
        let mut head = Vec::new();
        let mut chunk = [0u8; 4096];
        while !http::head_complete(&head) && head.len() < BAD_GATEWAY_HEAD {
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        client.write_all(&http::plain_response(502, "Bad Gateway", &format!("{sentence}\n"))).await?;
        client.shutdown().await
    })
    .await;
}

/// The refusal sentence when a node target resolves to the server's own listener
/// (a wildcard `host:*` on the proxy's host), judged after DNS. A name that does not
/// resolve is left to the dial, which explains it.
async fn own_listener(srv: &Server, node: &str, addr: &str) -> Option<String> {
    let listen = srv.table.listen()?;
    let resolved = tokio::time::timeout(srv.cfg.connect_timeout, tokio::net::lookup_host(addr)).await.ok()?.ok()?;
    let is_local = crate::server::config::is_local_address;
    resolved
        .into_iter()
        .find(|sa| crate::server::config::is_own_listener(listen, *sa, is_local))
        .map(|sa| crate::server::config::own_listener_sentence(node, sa.port(), &srv.cfg.public_addr))
}

/// Dials a backend address under the connect deadline.
///
/// # Errors
/// [`Error::Connect`] or [`Error::Timeout`].
pub async fn dial(srv: &Server, addr: &str) -> crate::Result<TcpStream> {
    crate::net::connect::tcp_addr(addr, srv.cfg.connect_timeout, srv.cfg.keepalive()).await
}

// === TLS towards databases ===

/// Client TLS configs for the databases that want TLS, built once at start-up so a
/// missing or bad CA file stops the server instead of failing every connection.
#[derive(Debug, Default)]
pub struct DbTls(HashMap<String, DbTlsTarget>);

#[derive(Debug)]
struct DbTlsTarget {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl DbTls {
    /// Loads the CA of every database with `tls`.
    ///
    /// # Errors
    /// When a CA file does not load or a server name is not valid.
    pub fn new(cfg: &Config) -> crate::Result<DbTls> {
        let mut map = HashMap::new();
        for d in &cfg.databases {
            let Some(t) = &d.tls else { continue };
            let ca = crate::identity::load_certs(&t.ca)
                .map_err(|e| Error::config(format!("database {:?}: tls.ca: {e}", d.name)))?;
            let config =
                tls::client_config(&Trust { ca, lb_ca: vec![], system: false, insecure: false }, None, Vec::new())?;
            let host = match &t.server_name {
                Some(n) => n.clone(),
                None => crate::util::addr::HostPort::parse(&d.addr).map_err(Error::config)?.host,
            };
            let name = tls::server_name(&host).map_err(|_| {
                Error::config(format!("database {:?}: {host:?} is not a valid TLS server name", d.name))
            })?;
            map.insert(d.name.clone(), DbTlsTarget { config, name });
        }
        Ok(DbTls(map))
    }
}

/// Wraps the connection to database `d` in TLS, the way its protocol starts TLS.
async fn db_tls(srv: &Server, d: &Database, mut tcp: TcpStream) -> crate::Result<BoxIo> {
    let t = srv.db_tls.0.get(&d.name).ok_or_else(|| Error::config(format!("no TLS config for {}", d.name)))?;
    let peer = format!("database {} at {}", d.name, d.addr);
    with_timeout(Phase::TlsHandshake, &peer, srv.cfg.handshake_timeout, async {
        match d.protocol {
            DbProtocol::Postgres => postgres_ssl_request(&mut tcp, &peer).await?,
            DbProtocol::Mongodb | DbProtocol::Redis => {} // TLS from the first byte
            DbProtocol::Mysql => {
                return Err(Error::config(format!(
                    "{peer}: TLS towards MySQL is not supported (config check missed it)"
                )))
            }
        }
        let tls = crate::net::connect::tls(tcp, t.config.clone(), t.name.clone(), srv.cfg.handshake_timeout)
            .await
            .map_err(|f| f.into_error(Layer::Backend, &peer, |e| tls::explain_backend_error(e, "the database")))?;
        debug!(database = %d.name, "TLS to the database established");
        Ok(Box::new(tls) as BoxIo)
    })
    .await
}

/// Asks PostgreSQL for TLS: `SSLRequest`, then exactly one byte, `S`.
async fn postgres_ssl_request(tcp: &mut TcpStream, peer: &str) -> crate::Result<()> {
    tcp.write_all(&postgres::ssl_request()).await?;
    // Read exactly one byte: anything after `S` must be TLS (CVE-2021-23214).
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    match answer[0] {
        postgres::ACCEPT_SSL => Ok(()),
        postgres::REFUSE_ENCRYPTION => Err(Error::Tls {
            layer: Layer::Backend,
            peer: peer.to_string(),
            reason: "the database does not accept TLS (it answered N to SSLRequest): set ssl=on in its \
                     postgresql.conf, or remove `tls` from its entry"
                .into(),
        }),
        b => Err(Error::Tls {
            layer: Layer::Backend,
            peer: peer.to_string(),
            reason: format!("unexpected answer {b:#04x} to SSLRequest: is it PostgreSQL?"),
        }),
    }
}
