//! The library's error type: one variant per cause a user can act on, each with a
//! message that says what failed and what to do.

use std::io;
use std::path::PathBuf;

use hyper::StatusCode;

/// Which hop of a connection an error comes from, in the order a client meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The HTTPS proxy named by `HTTPS_PROXY` (the `CONNECT` exchange).
    HttpsProxy,
    /// The load balancer in front of the proxy (its TLS, and the upgrade through it).
    LoadBalancer,
    /// The proxy's TLS-routing handshake (mutual TLS, SNI naming the resource).
    Routing,
    /// The proxy's web API (`/webapi/...`).
    WebApi,
    /// What the server (or a local proxy) reaches behind the routing hop.
    Backend,
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layer::HttpsProxy => "HTTPS proxy",
            Layer::LoadBalancer => "load balancer",
            Layer::Routing => "TLS routing",
            Layer::WebApi => "web API",
            Layer::Backend => "backend",
        })
    }
}

/// Why an HTTP exchange on the outer hop (`CONNECT`, connection upgrade) did not
/// give us a byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The peer answered with this status instead of 101 (or 2xx for `CONNECT`),
    /// with the short reason its body gave, if any.
    Status(StatusCode, String),
    /// The peer answered 101 but the answer is wrong (accept key, sub-protocol).
    Invalid(String),
    /// The exchange itself failed (closed, malformed).
    Failed(String),
    /// No answer within the exchange's deadline.
    TimedOut(std::time::Duration),
    /// The peer answered 101, but the TLS handshake through it was cut or stalled:
    /// the 101 came from the server, yet the load balancer opened no tunnel (it did
    /// not pass `Upgrade` and `Connection`).
    NoTunnel,
}

impl Refusal {
    /// The status the peer answered, if it answered one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Refusal::Status(s, _) => Some(*s),
            _ => None,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Status(s, body) if body.is_empty() => write!(f, "answered {s}"),
            Refusal::Status(s, body) => write!(f, "answered {s} ({body})"),
            Refusal::Invalid(m) | Refusal::Failed(m) => f.write_str(m),
            Refusal::TimedOut(limit) => write!(f, "gave no answer within {limit:?}"),
            Refusal::NoTunnel => f.write_str("answered 101 but opened no tunnel"),
        }
    }
}

fn proxy_connect_message(proxy: &str, target: &str, refusal: &Refusal) -> String {
    match refusal {
        Refusal::Status(s, _) => format!("proxy CONNECT refused: {s} (HTTPS proxy {proxy}, target {target})"),
        other => format!("proxy CONNECT through {proxy} failed: {other}"),
    }
}

fn upgrade_message(lb: &str, path: &str, sub: &str, websocket: &Option<Refusal>, legacy: &Option<Refusal>) -> String {
    let tunnel_hint = "forward the Upgrade and Connection headers (nginx: proxy_http_version 1.1, proxy_set_header Upgrade $http_upgrade, proxy_set_header Connection \"upgrade\")";
    match (websocket, legacy) {
        (ws, Some(Refusal::NoTunnel)) => {
            let ws = ws.as_ref().map(|w| format!(" (it {w} to the WebSocket upgrade)")).unwrap_or_default();
            format!(
                "the load balancer at {lb} answered the legacy {sub} upgrade with 101 but opened no tunnel{ws}: it must pass WebSocket upgrades on {path}; {tunnel_hint}"
            )
        }
        (Some(Refusal::NoTunnel), None) => format!(
            "the load balancer at {lb} answered the WebSocket upgrade with 101 but opened no tunnel: it must pass WebSocket upgrades on {path}; {tunnel_hint}"
        ),
        (Some(ws), Some(r)) => format!(
            "the load balancer at {lb} {ws} to the WebSocket upgrade (and {r} to the legacy {sub} upgrade); it must pass WebSocket upgrades on {path}"
        ),
        (Some(ws), None) => format!("WebSocket upgrade through {lb} failed: {ws}"),
        (None, Some(r)) => format!("the load balancer at {lb} {r} to the legacy {sub} upgrade on {path}"),
        (None, None) => format!("the connection upgrade through the load balancer at {lb} failed"),
    }
}

/// The phase of a connection that ran out of time. (The `CONNECT` and upgrade
/// exchanges say theirs by their own variants, [`Error::ProxyConnect`] and
/// [`Error::Upgrade`], with [`Refusal::TimedOut`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect.
    Connect,
    /// TLS handshake.
    TlsHandshake,
    /// An HTTP request to the proxy's web API.
    Request,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Connect => "TCP connect",
            Phase::TlsHandshake => "TLS handshake",
            Phase::Request => "web API request",
        })
    }
}

/// Errors of the oneport library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or argument is wrong; the message says which and why.
    #[error("{0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause (part of the message, so not chained as a source).
        cause: io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause (part of the message, so not chained as a source).
        cause: io::Error,
    },
    /// A TCP connection failed.
    #[error("cannot connect to {target}: {cause}")]
    Connect {
        /// host:port.
        target: String,
        /// The cause (part of the message, so not chained as a source).
        cause: io::Error,
    },
    /// A TLS handshake failed.
    #[error("TLS handshake with {peer} failed: {reason}")]
    Tls {
        /// Whose TLS: the load balancer's, the routing handshake, or a backend's.
        layer: Layer,
        /// host:port and SNI.
        peer: String,
        /// What went wrong, in plain words.
        reason: String,
    },
    /// A phase ran out of time.
    #[error("{phase} with {peer} timed out after {limit:?}")]
    Timeout {
        /// The phase.
        phase: Phase,
        /// Who we were talking to.
        peer: String,
        /// The limit.
        limit: std::time::Duration,
    },
    /// An established tunnel ended with an error.
    #[error("connection to {what} through {proxy} ended: {reason}")]
    Tunnel {
        /// The resource ("node web1").
        what: String,
        /// The proxy.
        proxy: String,
        /// What happened.
        reason: String,
    },
    /// The local client (the program using a local proxy, or ssh on the other end
    /// of `proxy ssh`'s stdio) reset or dropped its side of a tunnel.
    #[error("the local client cut its connection: {0}")]
    LocalClient(io::Error),
    /// The proxy refused the route; the message names the resource and why.
    #[error("{0}")]
    Refused(String),
    /// The proxy ended the handshake with `access_denied` (not allowed, or no such
    /// resource); `/webapi/resolve` says which.
    #[error("{proxy} refused the connection (access denied)")]
    AccessDenied {
        /// The proxy.
        proxy: String,
    },
    /// The HTTPS proxy (`HTTPS_PROXY`) did not open the tunnel to the proxy.
    #[error("{}", proxy_connect_message(.proxy, .target, .refusal))]
    ProxyConnect {
        /// The HTTPS proxy, host:port.
        proxy: String,
        /// What we asked it to reach.
        target: String,
        /// Its answer.
        refusal: Refusal,
    },
    /// The load balancer did not pass the connection upgrade.
    #[error("{}", upgrade_message(.lb, .path, .sub, .websocket, .legacy))]
    Upgrade {
        /// The load balancer, host:port.
        lb: String,
        /// The upgrade path asked for.
        path: &'static str,
        /// The upgrade's sub-protocol name.
        sub: &'static str,
        /// Its answer to the WebSocket upgrade, when one was tried.
        websocket: Option<Refusal>,
        /// Its answer to the legacy upgrade, when one was tried.
        legacy: Option<Refusal>,
    },
    /// The proxy's web API answered with an error status.
    #[error("{endpoint} answered {status}: {message}")]
    WebApiStatus {
        /// proxy and path.
        endpoint: String,
        /// The status.
        status: StatusCode,
        /// The server's sentence (its JSON `error`, or the body).
        message: String,
    },
    /// An exchange with the proxy's web API failed before an answer could be used.
    #[error("{endpoint}: {reason}")]
    WebApi {
        /// proxy (and path, once sent).
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// An HTTP exchange with a backend (a Kubernetes API, an upstream) failed.
    #[error("{name}: {reason}")]
    Backend {
        /// The backend, as logs and users name it ("kube cluster dev").
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// A program we run (psql, kubectl, a shell) could not be started or waited for.
    #[error("{step} {what}: {cause}")]
    Child {
        /// "starting", "waiting for", "catching".
        step: &'static str,
        /// The program (or signal).
        what: String,
        /// The cause (part of the message, so not chained as a source).
        cause: io::Error,
    },
    /// An environment variable is set to something that does not parse.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// Any other I/O error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An environment variable that does not parse. Cloneable, so a value read once
/// (the dialer's path options) can report it on every use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct EnvError {
    /// The variable.
    pub var: &'static str,
    /// The sentence to show (names the variable and what it accepts).
    pub reason: String,
}

impl Error {
    /// The layer this error comes from, when it names one.
    pub fn layer(&self) -> Option<Layer> {
        match self {
            Error::Tls { layer, .. } => Some(*layer),
            Error::ProxyConnect { .. } => Some(Layer::HttpsProxy),
            Error::Upgrade { .. } => Some(Layer::LoadBalancer),
            Error::WebApi { .. } | Error::WebApiStatus { .. } => Some(Layer::WebApi),
            Error::Backend { .. } => Some(Layer::Backend),
            Error::Refused(_) | Error::AccessDenied { .. } => Some(Layer::Routing),
            _ => None,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A configuration error.
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    /// A file error.
    pub fn file(path: impl Into<PathBuf>, cause: io::Error) -> Self {
        Error::File { path: path.into(), cause }
    }
}

/// Runs `fut` with a deadline, turning expiry into [`Error::Timeout`].
///
/// # Errors
/// [`Error::Timeout`] when the deadline passes, else what `fut` returns.
pub async fn with_timeout<T, F>(phase: Phase, peer: &str, limit: std::time::Duration, fut: F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout { phase, peer: peer.to_string(), limit }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timeouts_say_the_phase_and_the_limit() {
        let e = Error::Timeout { phase: Phase::TlsHandshake, peer: "p:443".into(), limit: Duration::from_secs(15) };
        assert_eq!(e.to_string(), "TLS handshake with p:443 timed out after 15s");
        let e = Error::Timeout { phase: Phase::Connect, peer: "db".into(), limit: Duration::from_millis(500) };
        assert_eq!(e.to_string(), "TCP connect with db timed out after 500ms");
    }

    #[test]
    fn proxy_connect_names_the_https_proxy() {
        let refusal = Refusal::Status(StatusCode::PROXY_AUTHENTICATION_REQUIRED, String::new());
        let e = Error::ProxyConnect { proxy: "sq:3128".into(), target: "p:443".into(), refusal };
        assert_eq!(e.layer(), Some(Layer::HttpsProxy));
        assert_eq!(
            e.to_string(),
            "proxy CONNECT refused: 407 Proxy Authentication Required (HTTPS proxy sq:3128, target p:443)"
        );
        let e = Error::ProxyConnect {
            proxy: "sq:3128".into(),
            target: "p:443".into(),
            refusal: Refusal::TimedOut(Duration::from_secs(15)),
        };
        assert_eq!(e.to_string(), "proxy CONNECT through sq:3128 failed: gave no answer within 15s");
    }

    #[test]
    fn upgrade_says_what_each_attempt_got() {
        let ws = Some(Refusal::Status(StatusCode::BAD_REQUEST, String::new()));
        let legacy = Some(Refusal::Status(StatusCode::NOT_FOUND, String::new()));
        let e = Error::Upgrade {
            lb: "lb:443".into(),
            path: "/webapi/connectionupgrade",
            sub: "oneport-ping",
            websocket: ws.clone(),
            legacy: legacy.clone(),
        };
        assert_eq!(e.layer(), Some(Layer::LoadBalancer));
        assert!(e.to_string().starts_with("the load balancer at lb:443 answered 400 Bad Request to the WebSocket upgrade (and answered 404 Not Found to the legacy oneport-ping upgrade)"), "{e}");
        let e = Error::Upgrade {
            lb: "lb:443".into(),
            path: "/webapi/connectionupgrade",
            sub: "oneport-ping",
            websocket: None,
            legacy,
        };
        assert!(e.to_string().starts_with("the load balancer at lb:443 answered 404 Not Found to the legacy"), "{e}");
        let e = Error::Upgrade {
            lb: "lb:443".into(),
            path: "/webapi/connectionupgrade",
            sub: "alpn-ping",
            websocket: Some(Refusal::Status(StatusCode::NOT_FOUND, String::new())),
            legacy: Some(Refusal::NoTunnel),
        };
        assert_eq!(
            e.to_string(),
            "the load balancer at lb:443 answered the legacy alpn-ping upgrade with 101 but opened no tunnel (it answered 404 Not Found to the WebSocket upgrade): it must pass WebSocket upgrades on /webapi/connectionupgrade; forward the Upgrade and Connection headers (nginx: proxy_http_version 1.1, proxy_set_header Upgrade $http_upgrade, proxy_set_header Connection \"upgrade\")"
        );
        let e = Error::Upgrade {
            lb: "lb:443".into(),
            path: "/webapi/connectionupgrade",
            sub: "oneport-ping",
            websocket: ws,
            legacy: None,
        };
        assert_eq!(e.to_string(), "WebSocket upgrade through lb:443 failed: answered 400 Bad Request");
    }
}
