//! The impersonating Kubernetes backend (docs/protocol.md §10). On an authenticated client
//! stream it serves HTTP/1.1 (with upgrades); for each request it deletes every
//! client-sent `Authorization` and `Impersonate-*` header, sets `Impersonate-User`
//! and one `Impersonate-Group` per group from the caller's certificate, adds the
//! server's own credentials for the cluster (bearer token file or client
//! certificate), and forwards to the configured API server over HTTPS verified with
//! its CA, through a pool of upstream connections shared by every caller.
//!
//! Authorization happens here, per request, not in the TLS handshake: a caller
//! outside the allow-list completes the handshake and gets a Kubernetes `Status` 403
//! that kubectl prints, and nothing reaches the API server. Each request is judged
//! against the configuration and revocation list in force ([`Server::latest`]), so a
//! kept-alive connection or a multiplexed stream that outlives a reload removing
//! the caller sends nothing more upstream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, HOST};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::error::{Error, Layer, Result};
use crate::identity::{self, Caller};
use crate::net::connect;
use crate::net::http_forward::{self, Body, DialFn, Pool};
use crate::net::io::BoxIo;
use crate::net::tasks::Tasks;
use crate::proto::kube_status;
use crate::proto::naming::{Kind, ResourceRef};
use crate::server::config::Kube;
use crate::server::recording::{self, Plan};
use crate::server::routes::ResourceRoute;
use crate::server::{web, Server};
use crate::util::percent;

/// How often the bearer token file is read again (projected service account tokens
/// rotate; client-go re-reads its token file every minute too).
const TOKEN_REFRESH: Duration = Duration::from_secs(60);

/// Headers a client may never send upstream: its own credentials and impersonation.
const STRIPPED: [&str; 4] = ["authorization", "impersonate-user", "impersonate-group", "impersonate-uid"];
/// Prefix of the `Impersonate-Extra-<key>` headers, also stripped.
const STRIPPED_PREFIX: &str = "impersonate-extra-";
/// Front-proxy identity headers (the API server's request-header authentication):
/// an aggregated API server or an authenticating proxy behind us could believe them.
const FRONT_PROXY: [&str; 2] = ["x-remote-user", "x-remote-group"];
/// Prefix of the front-proxy `X-Remote-Extra-<key>` headers, also stripped.
const FRONT_PROXY_PREFIX: &str = "x-remote-extra-";
/// The WebSocket sub-protocol that carries a bearer token (client-go and browsers
/// put `base64url.bearer.authorization.k8s.io.<token>` in Sec-WebSocket-Protocol).
const BEARER_SUBPROTOCOL: &str = "base64url.bearer.authorization.k8s.io.";

/// The upstream request target for a client's request target: the API server URL's
/// path `prefix` joined to the client's path and query, in origin form. Refused
/// (the sentence for a `Status` 400): absolute-form (`http://evil.example/api`),
/// authority-form and asterisk-form (`*`) targets, and any path with a dot segment,
/// plain or percent-encoded in any case (`..`, `%2e%2e`, `.%2E`, `..%2f`).
///
/// # Errors
/// The sentence for the 400.
pub fn origin_target(prefix: &str, target: &Uri) -> std::result::Result<String, String> {
    if target.scheme().is_some() || target.authority().is_some() {
        return Err(format!(
            "the request target must be a path, not {:?} (absolute or authority form)",
            target.to_string()
        ));
    }
    let path = target.path();
    if !path.starts_with('/') {
        return Err(format!("the request target must be a path starting with '/', not {path:?}"));
    }
    for segment in path.split('/') {
        // Decoded, a segment may hold slashes (`..%2f`): judge every piece.
        let decoded = percent::decode(segment);
        if decoded.split(['/', '\\']).any(|p| p == "." || p == "..") {
            return Err(format!(
                "the request path may not contain dot segments ('.', '..' or their percent-encodings): {path:?}"
            ));
        }
    }
    Ok(match target.query() {
        Some(q) => format!("{prefix}{path}?{q}"),
        None => format!("{prefix}{path}"),
    })
}

/// Removes the bearer-token sub-protocol from Sec-WebSocket-Protocol, keeping the
/// others (`v5.channel.k8s.io`, ...); drops the header when nothing is left.
fn strip_bearer_subprotocol(headers: &mut HeaderMap) {
    let name = hyper::header::SEC_WEBSOCKET_PROTOCOL;
    if !headers.contains_key(&name) {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(&name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.to_ascii_lowercase().starts_with(BEARER_SUBPROTOCOL))
        .map(str::to_string)
        .collect();
    headers.remove(&name);
    if let Ok(v) = HeaderValue::from_str(&kept.join(", ")) {
        if !kept.is_empty() {
            headers.insert(name, v);
        }
    }
}

/// The upstream API servers, one per configured kube cluster.
#[derive(Debug, Default)]
pub struct Upstreams(HashMap<String, Arc<Upstream>>);

impl Upstreams {
    /// Builds the upstreams: parses each `api_server`, loads its CA and client
    /// certificate, and checks the token file can be read.
    ///
    /// # Errors
    /// A message naming the cluster and the file or URL at fault.
    pub fn new(
        kube: &[Kube],
        connect_timeout: Duration,
        keepalive: Option<Duration>,
        tasks: &Tasks,
    ) -> Result<Upstreams> {
        let mut map = HashMap::new();
        for k in kube {
            let up = Upstream::new(k, connect_timeout, keepalive, tasks)
                .map_err(|e| Error::config(format!("kube {:?}: {e}", k.name)))?;
            map.insert(k.name.clone(), Arc::new(up));
        }
        Ok(Upstreams(map))
    }

    /// The upstream of cluster `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.0.get(name)
    }
}

/// One API server and how the backend authenticates to it.
#[derive(Debug)]
pub struct Upstream {
    authority: HeaderValue,
    prefix: String,
    token: Option<TokenFile>,
    pool: Arc<Pool>,
    /// The pool's dial, for [`Upstream::reach`].
    dial: Dial,
    recording: recording::Policy,
}

impl Upstream {
    fn new(k: &Kube, connect_timeout: Duration, keepalive: Option<Duration>, tasks: &Tasks) -> Result<Upstream> {
        let uri: Uri =
            k.api_server.parse().map_err(|e| Error::config(format!("api_server {:?}: {e}", k.api_server)))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(Error::config(format!("api_server {:?} must be an http(s):// URL", k.api_server))),
        };
        let host = uri.host().ok_or_else(|| Error::config(format!("api_server {:?} has no host", k.api_server)))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(&host);
        let authority = HeaderValue::from_str(authority).map_err(|e| Error::config(format!("api_server host: {e}")))?;
        let prefix = uri.path().trim_end_matches('/').to_string();
        let tls = if https { Some((Arc::new(upstream_tls(k)?), server_name(&host)?)) } else { None };
        let token = match &k.token_file {
            Some(path) => {
                let t = TokenFile { path: path.clone(), cached: Mutex::new(None) };
                t.read()?;
                Some(t)
            }
            None => None,
        };
        let name = format!("API server of kube cluster {} ({})", k.name, k.api_server);
        let dial = dial_fn(host, port, tls, connect_timeout, keepalive);
        let recording = recording::Policy::new(&k.recording);
        Ok(Upstream {
            authority,
            prefix,
            token,
            pool: Pool::new(name, dial.clone(), tasks.clone()),
            dial: Dial(dial),
            recording,
        })
    }

    /// Dials the API server as a request would (TCP and TLS, under the connect
    /// deadline) and hangs up: whether the server reaches it now.
    ///
    /// # Errors
    /// The dial's error, TLS reasons in words.
    pub async fn reach(&self) -> Result<()> {
        (self.dial.0)().await.map(drop)
    }

    /// The bearer token to send, if the cluster uses one.
    fn bearer(&self) -> Result<Option<HeaderValue>> {
        let Some(t) = &self.token else { return Ok(None) };
        let token = t.get()?;
        let mut v = HeaderValue::from_str(&format!("Bearer {}", token.0))
            .map_err(|_| Error::config(format!("{}: the token is not a valid header value", t.path.display())))?;
        v.set_sensitive(true);
        Ok(Some(v))
    }
}

/// The dial of an upstream's pool.
struct Dial(DialFn);

impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dial")
    }
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A bearer token file, read again every [`TOKEN_REFRESH`].
#[derive(Debug)]
struct TokenFile {
    path: PathBuf,
    cached: Mutex<Option<(Secret, Instant)>>,
}

impl TokenFile {
    fn read(&self) -> Result<Secret> {
        let raw = crate::util::fsutil::read(&self.path)?;
        let token = String::from_utf8(raw)
            .map_err(|_| Error::config(format!("{}: the token is not UTF-8", self.path.display())))?
            .trim()
            .to_string();
        if token.is_empty() {
            return Err(Error::config(format!("{}: the token file is empty", self.path.display())));
        }
        Ok(Secret(token))
    }

    fn get(&self) -> Result<Secret> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, at)) = &*cached {
            if at.elapsed() < TOKEN_REFRESH {
                return Ok(t.clone());
            }
        }
        let t = self.read()?;
        *cached = Some((t.clone(), Instant::now()));
        Ok(t)
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>> {
    crate::net::tls::server_name(host)
        .map_err(|_| Error::config(format!("api_server host {host:?} is not a valid TLS server name")))
}

/// TLS towards the API server: its CA (or the system roots), our client
/// certificate if configured, HTTP/1.1 only.
fn upstream_tls(k: &Kube) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match &k.ca {
        Some(path) => {
            for c in identity::load_certs(path)? {
                roots.add(c).map_err(|e| Error::config(format!("{}: unusable CA: {e}", path.display())))?;
            }
        }
        None => crate::net::tls::add_system_roots(&mut roots),
    }
    let builder = rustls::ClientConfig::builder_with_provider(crate::net::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let mut cfg = match (&k.client_cert, &k.client_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(identity::load_certs(cert)?, identity::load_key(key)?)
            .map_err(|e| Error::config(format!("{}: unusable client certificate: {e}", cert.display())))?,
        _ => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

fn dial_fn(
    host: String,
    port: u16,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    limit: Duration,
    keepalive: Option<Duration>,
) -> DialFn {
    Arc::new(move || {
        let (host, tls) = (host.clone(), tls.clone());
        Box::pin(async move {
            let addr = crate::util::addr::HostPort { host: host.clone(), port }.to_string();
            let tcp = connect::tcp(&host, port, &addr, limit, keepalive).await?;
            let Some((cfg, name)) = tls else { return Ok(Box::new(tcp) as BoxIo) };
            let tls = connect::tls(tcp, cfg, name, limit).await.map_err(|f| {
                f.into_error(Layer::Backend, &addr, |e| crate::net::tls::explain_backend_error(e, "the API server"))
            })?;
            Ok(Box::new(tls) as BoxIo)
        })
    })
}

/// Deletes every client-sent credential and impersonation header, then sets the
/// impersonation headers for `caller`.
///
/// # Errors
/// When the user or a group cannot be carried in a header (control characters).
pub fn impersonate(headers: &mut HeaderMap, caller: &Caller) -> std::result::Result<(), String> {
    // Hop-by-hop headers go first, so that a `Connection` header naming our own
    // headers cannot make the forwarding step delete them after we set them.
    let upgrade = http_forward::is_upgrade(headers);
    let named = http_forward::connection_tokens(headers);
    if let Some(bad) = named.iter().find(|t| *t == "authorization" || t.starts_with("impersonate-")) {
        return Err(format!("the Connection header may not name {bad:?}"));
    }
    http_forward::strip_hop_by_hop(headers, upgrade);
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            STRIPPED.contains(&k)
                || k.starts_with(STRIPPED_PREFIX)
                || FRONT_PROXY.contains(&k)
                || k.starts_with(FRONT_PROXY_PREFIX)
        })
        .cloned()
        .collect();
    for k in doomed {
        headers.remove(k);
    }
    strip_bearer_subprotocol(headers);
    // Kubernetes trims header values and treats an empty Impersonate-User as no
    // impersonation (the request would run as the server's own account).
    identity::check_name("user", &caller.user)?;
    for g in &caller.groups {
        identity::check_name("group", g)?;
    }
    let value = |s: &str| HeaderValue::from_str(s).map_err(|_| format!("{s:?} cannot be sent in an HTTP header"));
    headers.insert("impersonate-user", value(&caller.user)?);
    for g in &caller.groups {
        headers.append("impersonate-group", value(g)?);
    }
    Ok(())
}

/// What every request on one connection shares.
struct ConnCtx {
    /// The state the connection (or multiplexed stream) started under; each request
    /// is judged against [`Server::latest`], the configuration in force.
    srv: Arc<Server>,
    source: std::net::SocketAddr,
    caller: Caller,
    cluster: String,
}

/// Serves one authenticated connection routed to a kube cluster; says how it ended.
pub async fn serve(
    srv: Arc<Server>,
    io: BoxIo,
    route: ResourceRoute,
    caller: Caller,
    source: std::net::SocketAddr,
) -> String {
    if srv.kube.get(&route.name).is_none() {
        info!(kube = %route.name, "kube cluster has no upstream; closed");
        return "kube cluster has no upstream".to_string();
    }
    let ctx = Arc::new(ConnCtx { srv: srv.clone(), source, caller, cluster: route.name.clone() });
    let svc = hyper::service::service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(handle(&ctx, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(srv.cfg.handshake_timeout)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    // On shutdown, finish the request in flight and close (no more keep-alive).
    let res = tokio::select! {
        r = conn.as_mut() => r,
        _ = srv.tasks.stopping().cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    match res {
        Ok(()) => "closed".to_string(),
        Err(e) => {
            debug!(error = %e, "kube connection ended with an error");
            format!("ended with an error: {e}")
        }
    }
}

/// Why `caller` may not send a request to kube cluster `cluster` under the state
/// `now` (the configuration and revocation list in force): the 403's sentence,
/// the one `/webapi/resolve` gives. `None`: allowed.
pub fn denial(now: &Server, caller: &Caller, cluster: &str) -> Option<String> {
    if let Some(rev) = now.auth.revocation(caller) {
        return Some(rev.sentence());
    }
    let allowed = now.kube.get(cluster).is_some()
        && now.table.allow_of(Kind::Kube, cluster).is_some_and(|allow| allow.permits(caller));
    (!allowed).then(|| web::explain(now, caller, &ResourceRef::new(Kind::Kube, cluster.to_string())).message)
}

async fn handle(ctx: &ConnCtx, mut req: Request<Incoming>) -> Response<Body> {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    // Judged per request against the configuration in force: a keep-alive
    // connection (or a multiplexed stream) that outlives a reload removing the
    // caller sends nothing more upstream.
    let now = ctx.srv.latest();
    if let Some(msg) = denial(&now, &ctx.caller, &ctx.cluster) {
        let reason = format!("caller not in the allow-list ({method} {path})");
        crate::server::audit::refused(&now.audit, Some(&ctx.caller), ctx.source, Kind::Kube, &ctx.cluster, &reason);
        return kube_status::for_path(&path, StatusCode::FORBIDDEN, &msg);
    }
    let Some(up) = now.kube.get(&ctx.cluster).cloned() else {
        let msg = format!("kube cluster {} is no longer configured", ctx.cluster);
        return kube_status::for_path(&path, StatusCode::FORBIDDEN, &msg);
    };
    // 403, not 401: kubectl replaces a 401's text with "You must be logged in".
    if let Some(msg) = ctx.caller.expired_now() {
        return kube_status::for_path(&path, StatusCode::FORBIDDEN, &msg);
    }
    if let Err(e) = impersonate(req.headers_mut(), &ctx.caller) {
        return kube_status::for_path(&path, StatusCode::BAD_REQUEST, &format!("cannot impersonate: {e}"));
    }
    match up.bearer() {
        Ok(Some(v)) => {
            req.headers_mut().insert(AUTHORIZATION, v);
        }
        Ok(None) => {}
        Err(e) => {
            info!(kube = %ctx.cluster, error = %e, "cannot read the cluster's token");
            let msg = format!("kube cluster {}: {e}", ctx.cluster);
            return kube_status::for_path(&path, StatusCode::SERVICE_UNAVAILABLE, &msg);
        }
    }
    req.headers_mut().insert(HOST, up.authority.clone());
    let target = match origin_target(&up.prefix, req.uri()) {
        Ok(t) => t,
        Err(why) => {
            info!(kube = %ctx.cluster, user = %ctx.caller.user, %method, target = %req.uri(),
                reason = %why, "refused: bad request target; nothing sent to the API server");
            return kube_status::for_path(&path, StatusCode::BAD_REQUEST, &why);
        }
    };
    match target.parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return kube_status::for_path(&path, StatusCode::BAD_REQUEST, "request path cannot be forwarded"),
    }
    // exec/attach/port-forward: recorded, audited, or refused (fail closed).
    let uri = req.uri().clone();
    let session = match recording::plan(&up.recording, &ctx.cluster, &ctx.caller, &uri, req.headers_mut()) {
        Plan::Pass => None,
        Plan::Refuse(msg) => return kube_status::for_path(&path, StatusCode::FORBIDDEN, &msg),
        Plan::Session(h) => Some(h as Box<dyn http_forward::UpgradeHandler>),
    };
    debug!(kube = %ctx.cluster, user = %ctx.caller.user, %method, %path, "kube request");
    http_forward::forward_with(&up.pool, req, session).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_header_cannot_strip_impersonation() {
        let caller =
            Caller { user: "alice".into(), groups: vec!["dev".into()], not_after: i64::MAX, ..Default::default() };
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, Impersonate-User, Impersonate-Group"));
        let err = impersonate(&mut h, &caller).unwrap_err();
        assert!(err.contains("may not name"), "{err}");
        // A harmless Connection header is dropped before impersonation, and forwarding
        // (which strips hop-by-hop headers again) leaves ours in place.
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, x-trace"));
        h.insert("x-trace", HeaderValue::from_static("1"));
        impersonate(&mut h, &caller).unwrap();
        http_forward::strip_hop_by_hop(&mut h, false);
        assert_eq!(h.get("impersonate-user").unwrap(), "alice");
        assert_eq!(h.get("impersonate-group").unwrap(), "dev");
        assert!(h.get("x-trace").is_none());
        // An upgrade keeps Connection: Upgrade and still carries impersonation.
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        impersonate(&mut h, &caller).unwrap();
        http_forward::strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("impersonate-user").unwrap(), "alice");
    }

    #[test]
    fn impersonation_replaces_whatever_the_client_sent() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer client-token"));
        h.insert("impersonate-user", HeaderValue::from_static("admin"));
        h.append("impersonate-group", HeaderValue::from_static("system:masters"));
        h.insert("Impersonate-Uid", HeaderValue::from_static("0"));
        h.insert("impersonate-extra-scopes", HeaderValue::from_static("all"));
        h.insert("Impersonate-Extra-Reason", HeaderValue::from_static("x"));
        h.insert("accept", HeaderValue::from_static("application/json"));
        let caller = Caller {
            user: "alice".into(),
            groups: vec!["dev".into(), "ops".into()],
            not_after: i64::MAX,
            ..Default::default()
        };
        impersonate(&mut h, &caller).unwrap();
        assert!(!h.contains_key("authorization"));
        assert!(!h.contains_key("impersonate-uid"));
        assert!(!h.keys().any(|k| k.as_str().starts_with("impersonate-extra-")));
        assert_eq!(h.get_all("impersonate-user").iter().collect::<Vec<_>>(), ["alice"]);
        assert_eq!(h.get_all("impersonate-group").iter().collect::<Vec<_>>(), ["dev", "ops"]);
        assert_eq!(h.get("accept").unwrap(), "application/json");

        let bad = Caller { user: "a\nb".into(), groups: vec![], not_after: i64::MAX, ..Default::default() };
        assert!(impersonate(&mut h, &bad).is_err());
        for (user, group, want) in [
            ("", "dev", r#"user name "" is blank"#),
            (" ", "dev", r#"user name " " is blank"#),
            ("bob ", "dev", r#"user name "bob " has leading or trailing whitespace"#),
            ("bob", "system:masters ", r#"group name "system:masters " has leading or trailing whitespace"#),
        ] {
            let c = Caller { user: user.into(), groups: vec![group.into()], not_after: i64::MAX, ..Default::default() };
            let mut h = HeaderMap::new();
            assert_eq!(impersonate(&mut h, &c).unwrap_err(), want);
            assert!(!h.contains_key("impersonate-user"), "nothing is set for a refused caller");
        }
    }

    #[test]
    fn request_targets_are_rebuilt_in_origin_form() {
        let t = |prefix: &str, target: &str| origin_target(prefix, &target.parse::<Uri>().unwrap());
        assert_eq!(t("", "/api/v1/pods?watch=1").unwrap(), "/api/v1/pods?watch=1");
        assert_eq!(t("/k8s", "/api").unwrap(), "/k8s/api");
        assert_eq!(
            t("/k8s", "/api/v1/namespaces/a/pods/b/exec?command=ls&stdin=true").unwrap(),
            "/k8s/api/v1/namespaces/a/pods/b/exec?command=ls&stdin=true"
        );
        assert_eq!(
            t("", "/api/v1/namespaces/x.y/pods/a..b").unwrap(),
            "/api/v1/namespaces/x.y/pods/a..b",
            "dots inside a name are fine"
        );
        assert_eq!(
            t("", "/api/v1/pods?fieldSelector=a%3D..").unwrap(),
            "/api/v1/pods?fieldSelector=a%3D..",
            "the query is not a path"
        );
        for bad in [
            "/k8s/../api",
            "/api/%2e%2e/x",
            "/api/%2E%2e",
            "/api/.%2E/x",
            "/api/%2e./x",
            "/api/./x",
            "/api/..%2fsecrets",
            "/api/..%2F",
            "/..",
        ] {
            let err = t("/k8s", bad).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "the request path may not contain dot segments ('.', '..' or their percent-encodings): {bad:?}"
                )
            );
        }
        assert_eq!(
            t("", "http://evil.example/api").unwrap_err(),
            r#"the request target must be a path, not "http://evil.example/api" (absolute or authority form)"#
        );
        assert!(t("", "evil.example:443").unwrap_err().contains("absolute or authority form"));
        assert_eq!(t("", "*").unwrap_err(), r#"the request target must be a path starting with '/', not "*""#);
    }

    #[test]
    fn front_proxy_headers_and_bearer_subprotocols_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert("x-remote-user", HeaderValue::from_static("admin"));
        h.insert("X-Remote-Group", HeaderValue::from_static("system:masters"));
        h.insert("x-remote-extra-scopes", HeaderValue::from_static("all"));
        h.insert("x-remote-addr", HeaderValue::from_static("kept"));
        h.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.c2VjcmV0"),
        );
        h.append(
            "sec-websocket-protocol",
            HeaderValue::from_static("Base64url.Bearer.Authorization.K8s.Io.eA, v4.channel.k8s.io"),
        );
        let caller = Caller { user: "alice".into(), groups: vec![], not_after: i64::MAX, ..Default::default() };
        impersonate(&mut h, &caller).unwrap();
        assert!(!h.keys().any(|k| k.as_str().starts_with("x-remote-") && k != "x-remote-addr"), "{h:?}");
        assert_eq!(
            h.get_all("sec-websocket-protocol").iter().collect::<Vec<_>>(),
            ["v5.channel.k8s.io, v4.channel.k8s.io"]
        );
        let mut h = HeaderMap::new();
        h.insert("sec-websocket-protocol", HeaderValue::from_static("base64url.bearer.authorization.k8s.io.eA"));
        impersonate(&mut h, &caller).unwrap();
        assert!(!h.contains_key("sec-websocket-protocol"));
    }

    #[test]
    fn upstream_urls() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cr3t-token-value\n").unwrap();
        let k = |api: &str, token_file: Option<PathBuf>| Kube {
            name: "dev".into(),
            api_server: api.into(),
            ca: None,
            token_file,
            client_cert: None,
            client_key: None,
            allow: Default::default(),
            recording: Default::default(),
        };
        let up = Upstream::new(
            &k("http://127.0.0.1:8080/prefix/", Some(token.clone())),
            Duration::from_secs(1),
            None,
            &Tasks::new(),
        )
        .unwrap();
        assert_eq!(up.authority, "127.0.0.1:8080");
        assert_eq!(up.prefix, "/prefix");
        assert_eq!(up.bearer().unwrap().unwrap(), "Bearer s3cr3t-token-value");
        assert!(!format!("{up:?}").contains("s3cr3t"), "the token must not show in Debug");
        let err =
            Upstream::new(&k("ftp://x", None), Duration::from_secs(1), None, &Tasks::new()).unwrap_err().to_string();
        assert!(err.contains("http(s)://"), "{err}");
        let missing = dir.path().join("missing");
        let err = Upstream::new(&k("http://127.0.0.1:1", Some(missing)), Duration::from_secs(1), None, &Tasks::new())
            .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
