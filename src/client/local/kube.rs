//! `proxy kube`: a local HTTPS endpoint for kubectl, for when kubectl cannot reach the
//! routing server itself (an L7 load balancer in front) or should not be configured
//! for it.
//!
//! At start-up it makes a throwaway CA with [`crate::identity::pki`] (kept in memory), a
//! server certificate for the local address and a client certificate for kubectl,
//! and writes a throwaway kubeconfig (mode 0600 in a private temporary directory,
//! removed when the proxy stops) with one context per cluster. Only a client holding
//! that kubeconfig's certificate gets in, so other local users cannot borrow the
//! identity through the port.
//!
//! Clusters are told apart by SNI, as on the routing server: each context's
//! `tls-server-name` is the cluster's routing SNI (`<name>.kube-teleport-proxy-alpn.
//! <domain>`), so request paths pass through untouched (no prefix to add or strip).
//! Each request goes upstream over HTTP/1.1 on a small pool of connections per
//! cluster ([`http_forward::forward`]); each connection is a stream on the cluster's
//! kept-warm [`Session`] (`teleport-http-mux`, docs/protocol.md §13), or a routing
//! connection of its own through [`Dialer::dial`] (which does any load-balancer
//! upgrade) when the proxy does not multiplex. Long-lived `watch` and `exec`
//! (upgraded) connections are streams like any other. Once the identity has expired, requests are answered
//! with a 403 `Status` that says so and what to do (kubectl prints a 403's message;
//! a 401's it replaces with its own "You must be logged in").

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use serde_yaml_ng::{Mapping, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use crate::client::dial::{Dialer, Target};
use crate::client::local;
use crate::client::session::Session;
use crate::error::{Error, Result};
use crate::identity::pki;
use crate::identity::Caller;
use crate::net::http_forward::{self, Body, DialFn, Pool};
use crate::net::meter::Meter;
use crate::net::tasks::Tasks;
use crate::net::tls::{ClientAuth, ServerTls};
use crate::proto::kube_status;
use crate::proto::naming::{self, Kind, Protocol};
use crate::tools::kube::entry_name;

/// Deadline for kubectl's TLS handshake with the local proxy.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline for kubectl to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Validity of the throwaway certificates (they die with the process anyway).
const LOCAL_VALIDITY: Duration = Duration::from_secs(366 * 86400);
/// The kubeconfig user that holds the local client certificate.
const LOCAL_USER: &str = "oneport-local-proxy";

/// One served cluster.
struct Cluster {
    name: String,
    pool: Arc<Pool>,
    /// The kept-warm routing session the pool's connections are streams of.
    session: Arc<Session>,
}

/// What every local connection shares.
struct State {
    tls: TlsAcceptor,
    /// By SNI.
    clusters: HashMap<String, Cluster>,
    served: String,
    /// Cancelled when the proxy starts draining: keep-alive connections close.
    stopping: CancellationToken,
    /// Whose identity goes upstream (refused in a `Status` once expired).
    dialer: Arc<Dialer>,
    /// The local connections' counters.
    meter: Arc<Meter>,
}

/// A bound local kube proxy with its throwaway kubeconfig.
pub struct KubeProxy {
    listener: TcpListener,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    contexts: Vec<String>,
    state: Arc<State>,
    tasks: Tasks,
}

impl std::fmt::Debug for KubeProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeProxy").field("addr", &self.addr).field("kubeconfig", &self.kubeconfig).finish()
    }
}

impl KubeProxy {
    /// Binds `bind:port` (port 0 or `None`: a free one), makes the certificates and
    /// writes the kubeconfig for `names` (kube clusters behind `dialer`'s proxy; the
    /// caller has checked they exist). `cluster` names the proxy's cluster in context
    /// names (`<cluster>-<name>`).
    ///
    /// # Errors
    /// When the port cannot be bound or a file cannot be written.
    pub async fn start(
        dialer: Arc<Dialer>,
        cluster: &str,
        names: &[String],
        bind: IpAddr,
        port: Option<u16>,
    ) -> Result<KubeProxy> {
        let listener = local::bind(Some(bind), port).await?;
        let addr = listener.local_addr()?;
        let domain = dialer.context().domain.clone();
        let snis: Vec<String> = names.iter().map(|n| naming::resource_sni(Kind::Kube, n, &domain)).collect();
        let ca = pki::make_ca("oneport local kube proxy")?;
        let server = pki::make_server_cert(&ca, &snis, &[addr.ip()], LOCAL_VALIDITY)?;
        let client = pki::make_client_cert(&ca, LOCAL_USER, &[], time::OffsetDateTime::now_utc(), LOCAL_VALIDITY)?;
        let tls = local_tls(&ca, &server)?;
        let tasks = Tasks::quiet();
        let mut clusters = HashMap::new();
        for (name, sni) in names.iter().zip(&snis) {
            let session = Session::new(dialer.clone(), Kind::Kube, name, Protocol::Http1);
            let pool = upstream_pool(session.clone(), &tasks);
            clusters.insert(sni.clone(), Cluster { name: name.clone(), pool, session });
        }
        let contexts: Vec<String> = names.iter().map(|n| entry_name(cluster, n)).collect();
        let doc = kubeconfig(addr, &ca, &client, &contexts, &snis);
        let dir = crate::util::fsutil::private_temp_dir("oneport-kube-")?;
        let kubeconfig = dir.path().join("kubeconfig");
        let text = serde_yaml_ng::to_string(&doc).map_err(|e| Error::config(format!("kubeconfig: {e}")))?;
        crate::util::fsutil::write_private(&kubeconfig, text.as_bytes())?;
        let stopping = tasks.stopping().clone();
        let meter = Meter::new(false);
        let state = Arc::new(State { tls, clusters, served: names.join(", "), stopping, dialer, meter });
        Ok(KubeProxy { listener, addr, dir, kubeconfig, contexts, state, tasks })
    }

    /// The local address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The throwaway kubeconfig (removed when the proxy stops).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The context names, in the order asked for; the first is current.
    pub fn contexts(&self) -> &[String] {
        &self.contexts
    }

    /// The local connections' counters (for a status line).
    pub fn meter(&self) -> &Arc<Meter> {
        &self.state.meter
    }

    /// The kept-warm session of each cluster, in no particular order (for the
    /// status line and to open them ahead of kubectl's first request).
    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.state.clusters.values().map(|c| c.session.clone()).collect()
    }

    /// The connections' tasks (to force-close them on a second Ctrl-C).
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// Serves until `shutdown`, drains for up to `grace`, then removes the kubeconfig.
    ///
    /// # Errors
    /// Only when the listener's address cannot be read.
    pub async fn serve(self, shutdown: CancellationToken, grace: Duration) -> Result<()> {
        let state = self.state.clone();
        let handler: local::Handler = Arc::new(move |tcp| {
            let state = state.clone();
            Box::pin(async move { handle(state, tcp).await })
        });
        let meter = self.state.meter.clone();
        let res = local::serve_in(self.listener, handler, &self.tasks, &meter, shutdown, grace).await;
        drop(self.dir); // removes the kubeconfig and its directory
        res
    }
}

fn local_tls(ca: &pki::CertAndKey, server: &pki::CertAndKey) -> Result<TlsAcceptor> {
    let chain = pem_certs(&server.cert_pem)?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes())
        .map_err(|e| Error::config(format!("local key: {e}")))?;
    let tls = ServerTls::new(chain, key, &pem_certs(&ca.cert_pem)?)?;
    // HTTP/1.1 only: kubectl offers h2 first, and upgrades break over HTTP/2.
    let cfg = tls.config(vec![b"http/1.1".to_vec()], ClientAuth::Required(Arc::new(|_: &Caller| true)));
    Ok(TlsAcceptor::from(cfg))
}

fn pem_certs(pem: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config(format!("local certificate: {e}")))
}

/// A pool of HTTP/1.1 connections to the session's kube cluster, each a stream on
/// its kept-warm session (or a dialled routing connection when the proxy does not
/// multiplex); a refusal is explained in the proxy's words.
fn upstream_pool(session: Arc<Session>, tasks: &Tasks) -> Arc<Pool> {
    let res = session.resource().clone();
    let label = format!("{res} through proxy {}", session.dialer().context().proxy);
    let dial: DialFn = Arc::new(move || {
        let (session, res) = (session.clone(), res.clone());
        Box::pin(async move {
            // Answered before use: a refused stream becomes the proxy's sentence in
            // a `Status` 403 (kubectl prints it), not a broken connection.
            match session.open_answered().await {
                Ok(stream) => Ok(stream),
                Err(e) => Err(local::explain(session.dialer(), &res, e).await),
            }
        })
    });
    Pool::new(label, dial, tasks.clone())
}

/// The throwaway kubeconfig: one cluster and context per kube cluster, one user with
/// the local client certificate, the first context current.
fn kubeconfig(
    addr: SocketAddr,
    ca: &pki::CertAndKey,
    client: &pki::CertAndKey,
    contexts: &[String],
    snis: &[String],
) -> Value {
    let b64 = |s: &str| Value::String(base64::engine::general_purpose::STANDARD.encode(s));
    let named = |name: &str, key: &str, body: Mapping| {
        let mut m = Mapping::new();
        m.insert("name".into(), name.into());
        m.insert(key.into(), Value::Mapping(body));
        Value::Mapping(m)
    };
    let (mut clusters, mut ctxs) = (Vec::new(), Vec::new());
    for (ctx, sni) in contexts.iter().zip(snis) {
        let mut c = Mapping::new();
        c.insert("server".into(), format!("https://{addr}").into());
        c.insert("certificate-authority-data".into(), b64(&ca.cert_pem));
        c.insert("tls-server-name".into(), sni.as_str().into());
        clusters.push(named(ctx, "cluster", c));
        let mut x = Mapping::new();
        x.insert("cluster".into(), ctx.as_str().into());
        x.insert("user".into(), LOCAL_USER.into());
        ctxs.push(named(ctx, "context", x));
    }
    let mut u = Mapping::new();
    u.insert("client-certificate-data".into(), b64(&client.cert_pem));
    u.insert("client-key-data".into(), b64(&client.key_pem));
    let mut doc = Mapping::new();
    doc.insert("apiVersion".into(), "v1".into());
    doc.insert("kind".into(), "Config".into());
    doc.insert("clusters".into(), Value::Sequence(clusters));
    doc.insert("users".into(), Value::Sequence(vec![named(LOCAL_USER, "user", u)]));
    doc.insert("contexts".into(), Value::Sequence(ctxs));
    doc.insert("current-context".into(), contexts.first().map(String::as_str).unwrap_or_default().into());
    Value::Mapping(doc)
}

/// One local connection: TLS (kubectl's certificate required), pick the cluster by
/// SNI, then serve HTTP/1.1 with upgrades, forwarding each request.
async fn handle(state: Arc<State>, tcp: local::LocalConn) {
    let peer = tcp.peer();
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, state.tls.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return debug!(%peer, error = %e, "local TLS handshake failed"),
        Err(_) => return debug!(%peer, "local TLS handshake timed out"),
    };
    let sni = tls.get_ref().1.server_name().unwrap_or_default().to_ascii_lowercase();
    let svc = {
        let state = state.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let (state, sni) = (state.clone(), sni.clone());
            async move { Ok::<_, Infallible>(route(&state, &sni, req).await) }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(tls), svc)
        .with_upgrades();
    tokio::pin!(conn);
    // On Ctrl-C, finish the request in flight and close (no more keep-alive).
    let res = tokio::select! {
        r = conn.as_mut() => r,
        _ = state.stopping.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = res {
        debug!(%peer, error = %e, "local kube connection ended with an error");
    }
}

async fn route(state: &State, sni: &str, req: Request<Incoming>) -> Response<Body> {
    let Some(cluster) = state.clusters.get(sni) else {
        let msg = format!(
            "this local proxy serves kube cluster(s) {}; the kubeconfig's tls-server-name {sni:?} names none of them",
            state.served
        );
        return kube_status::for_path(req.uri().path(), StatusCode::NOT_FOUND, &msg);
    };
    if let Some(sentence) = local::expired(&state.dialer) {
        error!(kube = %cluster.name, "{sentence}");
        state.meter.error(sentence.clone());
        return kube_status::for_path(req.uri().path(), StatusCode::FORBIDDEN, &sentence);
    }
    debug!(kube = %cluster.name, method = %req.method(), path = %req.uri().path(), "local kube request");
    let resp = http_forward::forward(&cluster.pool, req).await;
    if resp.status() == StatusCode::BAD_GATEWAY || resp.status() == StatusCode::GATEWAY_TIMEOUT {
        state.meter.error(format!("kube cluster {}: {}", cluster.name, resp.status()));
    }
    resp
}

/// How long `kube login`'s one check of the cluster may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// One `GET /version` through kube cluster `name`'s route, as kubectl's first
/// request would go (for `kube login`): `Ok` when the API server answers, else the
/// proxy's sentence (a `Status` message or a plain-text body).
///
/// # Errors
/// The sentence, in one line.
pub async fn check_cluster(dialer: &Dialer, name: &str) -> std::result::Result<(), String> {
    use http_body_util::{BodyExt, Empty, Limited};
    let target = Target::resource(dialer.context(), Kind::Kube, name, Protocol::Http1);
    let check = async {
        let d = dialer.dial(&target).await.map_err(|e| e.to_string())?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(d.stream))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        // Bare spawn: one request's connection; it ends with the request.
        tokio::spawn(conn);
        let req = Request::get("/version")
            .header(hyper::header::HOST, target.sni.as_str())
            .body(Empty::<hyper::body::Bytes>::new())
            .map_err(|e| format!("bad request: {e}"))?;
        let resp = send.send_request(req).await.map_err(|e| format!("no answer to GET /version: {e}"))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = Limited::new(resp.into_body(), 64 * 1024).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        Err(format!("GET /version answered {status}: {}", status_message(&body)))
    };
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .map_err(|_| format!("GET /version gave no answer within {}s", CHECK_TIMEOUT.as_secs()))?
}

/// The sentence of an error answer (pure): a Kubernetes `Status`'s `message`, else
/// the text, on one line (control characters become spaces), at most 500 characters.
pub fn status_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let picked = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| text.trim().to_string());
    picked.chars().take(500).map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages_are_one_line() {
        let status = br#"{"kind":"Status","message":"kube cluster dev: the API server\nis down","code":502}"#;
        assert_eq!(status_message(status), "kube cluster dev: the API server is down");
        assert_eq!(status_message(b"  plain reason\n"), "plain reason");
        assert_eq!(status_message(&[b'x'; 900]).len(), 500);
    }

    #[test]
    fn throwaway_kubeconfig_has_a_context_per_cluster() {
        let ca = pki::make_ca("t").unwrap();
        let cl = pki::make_client_cert(&ca, "k", &[], time::OffsetDateTime::now_utc(), LOCAL_VALIDITY).unwrap();
        let addr: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let doc = kubeconfig(addr, &ca, &cl, &["t-dev".into(), "t-prod".into()], &["a.sni".into(), "b.sni".into()]);
        assert_eq!(doc["current-context"], "t-dev");
        assert_eq!(doc["clusters"][1]["cluster"]["server"], "https://127.0.0.1:4321");
        assert_eq!(doc["clusters"][1]["cluster"]["tls-server-name"], "b.sni");
        assert_eq!(doc["contexts"][1]["context"]["user"], LOCAL_USER);
        // The text parses as a kubeconfig.
        let text = serde_yaml_ng::to_string(&doc).unwrap();
        crate::tools::kube::kubeconfig::parse(Path::new("x"), text.as_bytes()).unwrap();
    }
}
