//! The client of the proxy's web API (`/webapi/ping`, `/webapi/resolve`,
//! `/webapi/reach`), spoken over a dialled stream so it carries the identity and
//! works through upgrades.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::client::dial::{Dialed, Dialer, Target};
use crate::error::{with_timeout, Error, Phase, Result};
use crate::proto::naming::{Kind, ResourceRef};
use crate::proto::webapi::{
    reach_path, resolve_path_via, Outcome, PingResponse, ReachResponse, ResolveResponse, CERT_REQUIRED,
};

/// Deadline for one web API request, handshake included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_BODY: usize = 1 << 20;
/// How long a failed request waits for its connection's own error.
const CONN_ERROR_WAIT: Duration = Duration::from_secs(2);

/// GETs `path` and decodes the JSON answer.
///
/// # Errors
/// Dial errors, [`Error::WebApiStatus`] for a non-200 answer, [`Error::WebApi`] for a
/// failed exchange or a bad body, [`Error::Timeout`].
pub async fn get_json<T: DeserializeOwned>(dialer: &Dialer, path: &str) -> Result<T> {
    get_checked(dialer, path, |_: &T| None).await
}

/// As [`get_json`]; on a direct dial, an answer that proves something in front of
/// the router terminated TLS (401 [`CERT_REQUIRED`] although the identity was
/// presented, or what `terminated` says of a decoded answer) makes it ask again
/// through the upgrade, which becomes the path in use when its answer is right.
async fn get_checked<T: DeserializeOwned>(
    dialer: &Dialer,
    path: &str,
    terminated: impl Fn(&T) -> Option<String>,
) -> Result<T> {
    let proxy = dialer.context().proxy.to_string();
    let target = Target::web(dialer.context());
    with_timeout(Phase::Request, &proxy, REQUEST_TIMEOUT, async {
        let dialed = dialer.dial(&target).await?;
        let upgraded = dialed.upgraded;
        let first = fetch::<T>(dialer, dialed, path).await;
        let why = match &first {
            _ if upgraded => None,
            Err(Error::WebApiStatus { status: StatusCode::UNAUTHORIZED, message, .. }) if message == CERT_REQUIRED => {
                // Without the `via` the client adds for the server's sentences.
                let shown = path.split("&via=").next().unwrap_or(path);
                Some(format!("{proxy}{shown} answered 401 ({CERT_REQUIRED}) to a connection that presented one"))
            }
            Ok(v) => terminated(v),
            Err(_) => None,
        };
        let Some(why) = why else { return first };
        let Ok(Some(again)) = dialer.redial_upgraded(&target).await else { return first };
        match fetch::<T>(dialer, again, path).await {
            Ok(v) if terminated(&v).is_none() => {
                dialer.adopt_upgrade(&why).await?;
                Ok(v)
            }
            _ => first,
        }
    })
    .await
}

/// One GET over a dialled stream.
async fn fetch<T: DeserializeOwned>(dialer: &Dialer, dialed: Dialed, path: &str) -> Result<T> {
    let proxy = dialer.context().proxy.to_string();
    let endpoint = format!("{proxy}{path}");
    let failed = |reason: String| Error::WebApi { endpoint: endpoint.clone(), reason };
    let req = Request::get(path)
        .header(hyper::header::HOST, dialer.context().web_sni())
        .body(Empty::<Bytes>::new())
        .map_err(|e| Error::config(format!("bad web API request path {path:?}: {e}")))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(dialed.stream))
        .await
        .map_err(|e| Error::WebApi { endpoint: proxy.clone(), reason: format!("HTTP handshake failed: {e}") })?;
    // A one-request client connection; it ends with the request. Awaited only
    // when the request fails: its error may be the one that says why.
    let conn = tokio::spawn(conn);
    let resp = match send.send_request(req).await {
        Ok(r) => r,
        Err(e) => {
            // The request can be cancelled before the connection's error reaches it.
            let conn_err = match tokio::time::timeout(CONN_ERROR_WAIT, conn).await {
                Ok(Ok(Err(ce))) => Some(ce),
                _ => None,
            };
            let reason = io_cause(&e, &proxy)
                .or_else(|| conn_err.as_ref().and_then(|ce| io_cause(ce, &proxy)))
                .unwrap_or_else(|| exchange_failed(&e, &proxy));
            return Err(failed(reason));
        }
    };
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| failed(format!("reading the answer: {e}")))?
        .to_bytes();
    if status != StatusCode::OK {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(Error::WebApiStatus { endpoint: endpoint.clone(), status, message });
    }
    serde_json::from_slice(&body).map_err(|e| failed(format!("unexpected answer: {e}")))
}

/// A failed request in plain words: hyper's own text is a bare "connection error";
/// the cause under it (a TLS alert sent after the handshake, when the proxy judges
/// the client certificate) says what happened.
fn exchange_failed(e: &hyper::Error, proxy: &str) -> String {
    if let Some(reason) = io_cause(e, proxy) {
        return reason;
    }
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return format!("{proxy} closed the connection before answering (run `oneport doctor` to see where it breaks)");
    }
    e.to_string()
}

/// The I/O error under `e` (a TLS alert, a reset), in plain words.
fn io_cause(e: &hyper::Error, proxy: &str) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(crate::net::tls::explain_client_error(io, proxy));
        }
        source = s.source();
    }
    None
}

/// `/webapi/ping`.
///
/// # Errors
/// As [`get_json`].
pub async fn ping(dialer: &Dialer) -> Result<PingResponse> {
    // The identity is always presented: a direct answer that saw none came from
    // something that terminated TLS in front of the router.
    get_checked(dialer, "/webapi/ping", |p: &PingResponse| {
        p.caller.is_none().then(|| "/webapi/ping saw no client certificate on a connection that presented one".into())
    })
    .await
}

/// Rejects names that cannot name a resource, with a sentence saying so.
///
/// # Errors
/// [`Error::Config`] with the sentence.
pub fn check_name(kind: Kind, name: &str) -> Result<()> {
    if crate::proto::naming::valid_name(name) {
        return Ok(());
    }
    Err(Error::config(format!(
        "{name:?} is not a {} name (lowercase letters, digits and '-'): `oneport ls` lists them",
        kind.noun()
    )))
}

/// `/webapi/resolve` for resource `r` (a node's port included when asked for).
///
/// # Errors
/// As [`get_json`].
pub async fn resolve(dialer: &Dialer, r: &ResourceRef) -> Result<ResolveResponse> {
    check_name(r.kind, &r.name)?;
    get_json(dialer, &resolve_path_via(r, &dialer.context().proxy.to_string())).await
}

/// `/webapi/reach` for resource `r`: the server dials its backend and says whether
/// it answered.
///
/// # Errors
/// As [`get_json`].
pub async fn reach(dialer: &Dialer, r: &ResourceRef) -> Result<ReachResponse> {
    check_name(r.kind, &r.name)?;
    get_json(dialer, &reach_path(r)).await
}

/// Checks that `r` can be used, returning the server's answer when it can and
/// [`Error::Refused`] with the server's sentence when it cannot.
///
/// # Errors
/// [`Error::Refused`] or the request's own errors.
pub async fn require(dialer: &Dialer, r: &ResourceRef) -> Result<ResolveResponse> {
    let answer = resolve(dialer, r).await?;
    match answer.outcome {
        Outcome::Allowed => Ok(answer),
        Outcome::Denied | Outcome::Unknown => Err(Error::Refused(answer.message)),
    }
}
