//! The client's HTTP exchanges on the outer hop: `CONNECT` through an HTTPS_PROXY,
//! and `GET /webapi/connectionupgrade` (WebSocket or legacy). The checks of the
//! answers are pure functions, unit-tested below.

use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, HOST, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::client::upgrade::proxy_env::HttpProxy;
use crate::net::io::BoxIo;
use crate::net::ping::PingStream;
use crate::net::websocket::WsStream;
use crate::proto::upgrade::{Sub, LEGACY_HEADER, PATH};

/// Deadline for one upgrade or CONNECT exchange.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);

/// Why an upgrade did not happen (lives in the error module, which carries it).
pub use crate::error::Refusal;

async fn exchange(io: BoxIo, req: Request<Empty<Bytes>>) -> Result<(Response<hyper::body::Incoming>, ()), Refusal> {
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Refusal::Failed(format!("HTTP handshake failed: {e}")))?;
    // Bare spawn: drives this one exchange's connection; ends when the upgrade
    // hands the stream over or the exchange fails.
    tokio::spawn(conn.with_upgrades());
    let resp = send.send_request(req).await.map_err(|e| Refusal::Failed(format!("no HTTP answer: {e}")))?;
    Ok((resp, ()))
}

async fn body_snippet(resp: Response<hyper::body::Incoming>) -> String {
    let fut = Limited::new(resp.into_body(), 4096).collect();
    match tokio::time::timeout(Duration::from_secs(2), fut).await {
        Ok(Ok(b)) => refusal_text(&b.to_bytes()),
        _ => String::new(),
    }
}

/// What a refusal's body adds to the message (pure): our server's JSON `error`, or
/// a short plain-text body, on one line and at most 200 characters; nothing for a
/// load balancer's HTML page. The peer wrote it, so control characters (line
/// breaks, terminal escapes), raw or JSON-escaped, become spaces.
pub fn refusal_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).trim().to_string();
    let picked = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => v.get("error").and_then(|e| e.as_str()).unwrap_or_default().to_string(),
        Err(_) if text.contains('<') => String::new(),
        Err(_) => text,
    };
    picked.chars().take(200).map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

async fn finish(resp: Response<hyper::body::Incoming>) -> Result<BoxIo, Refusal> {
    let up = hyper::upgrade::on(resp).await.map_err(|e| Refusal::Failed(format!("upgrade failed: {e}")))?;
    Ok(Box::new(TokioIo::new(up)))
}

/// `CONNECT target` through an HTTP proxy.
///
/// # Errors
/// The proxy's status (407, 403, ...) or the failure.
pub async fn connect_via(io: BoxIo, proxy: &HttpProxy, target: &str) -> Result<BoxIo, Refusal> {
    let mut req = Request::builder().method(Method::CONNECT).uri(target).header(HOST, target);
    if let Some((u, p)) = &proxy.auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.header("proxy-authorization", format!("Basic {token}"));
    }
    let req = req.body(Empty::new()).map_err(|e| Refusal::Failed(format!("bad CONNECT target {target:?}: {e}")))?;
    let (resp, ()) = timed(exchange(io, req)).await?;
    if !resp.status().is_success() {
        let s = resp.status();
        return Err(Refusal::Status(s, body_snippet(resp).await));
    }
    finish(resp).await
}

/// A WebSocket upgrade to `/webapi/connectionupgrade` with sub-protocol `sub`.
///
/// # Errors
/// The status (400/404 make the caller try legacy), or an invalid answer.
pub async fn websocket(io: BoxIo, host: &str, sub: Sub) -> Result<BoxIo, Refusal> {
    let key = generate_key();
    let req = Request::get(PATH)
        .header(HOST, host)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", &key)
        .header("sec-websocket-protocol", sub.name())
        .body(Empty::new())
        .map_err(|e| Refusal::Failed(format!("bad Host {host:?}: {e}")))?;
    let resp = switch(io, req).await?;
    check_websocket_answer(resp.headers(), &key, sub).map_err(Refusal::Invalid)?;
    let raw = finish(resp).await?;
    Ok(Box::new(WsStream::new(raw, Role::Client, None).through_load_balancer()))
}

/// A legacy upgrade (`Upgrade` and `X-Teleport-Upgrade` set to `sub`).
///
/// # Errors
/// The status or an invalid answer.
pub async fn legacy(io: BoxIo, host: &str, sub: Sub) -> Result<BoxIo, Refusal> {
    let req = Request::get(PATH)
        .header(HOST, host)
        .header(UPGRADE, sub.name())
        .header(LEGACY_HEADER, sub.name())
        .header(CONNECTION, "Upgrade")
        .body(Empty::new())
        .map_err(|e| Refusal::Failed(format!("bad Host {host:?}: {e}")))?;
    let resp = switch(io, req).await?;
    check_legacy_answer(resp.headers(), sub).map_err(Refusal::Invalid)?;
    let raw = finish(resp).await?;
    Ok(match sub {
        Sub::AlpnPing => Box::new(PingStream::new(raw, None)),
        Sub::Alpn => raw,
    })
}

/// Sends an upgrade request under the exchange deadline; anything but a 101 is a
/// [`Refusal::Status`] with the body's reason.
async fn switch(io: BoxIo, req: Request<Empty<Bytes>>) -> Result<Response<hyper::body::Incoming>, Refusal> {
    let (resp, ()) = timed(exchange(io, req)).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let s = resp.status();
        return Err(Refusal::Status(s, body_snippet(resp).await));
    }
    Ok(resp)
}

async fn timed<T>(f: impl std::future::Future<Output = Result<T, Refusal>>) -> Result<T, Refusal> {
    tokio::time::timeout(EXCHANGE_TIMEOUT, f).await.map_err(|_| Refusal::TimedOut(EXCHANGE_TIMEOUT))?
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::trim)
}

/// Checks a 101 answer to a WebSocket upgrade: the accept key and the sub-protocol.
///
/// # Errors
/// What is wrong, in words.
pub fn check_websocket_answer(h: &HeaderMap, key: &str, sub: Sub) -> Result<(), String> {
    if !header(h, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return Err("the 101 answer does not say `Upgrade: websocket`".into());
    }
    let want = derive_accept_key(key.as_bytes());
    match header(h, "sec-websocket-accept") {
        Some(got) if got == want => {}
        Some(got) => return Err(format!("wrong Sec-WebSocket-Accept {got:?} (expected {want:?})")),
        None => return Err("the 101 answer has no Sec-WebSocket-Accept".into()),
    }
    match header(h, "sec-websocket-protocol") {
        Some(p) if p == sub.name() => Ok(()),
        Some(p) => Err(format!("the server chose sub-protocol {p:?}, we asked for {:?}", sub.name())),
        None => Err(format!("the 101 answer does not echo sub-protocol {:?}", sub.name())),
    }
}

/// Checks a 101 answer to a legacy upgrade: `Upgrade` (or `X-Teleport-Upgrade`)
/// echoes the type.
///
/// # Errors
/// What is wrong, in words.
pub fn check_legacy_answer(h: &HeaderMap, sub: Sub) -> Result<(), String> {
    let echoed = header(h, "upgrade").or_else(|| header(h, LEGACY_HEADER));
    match echoed {
        Some(u) if u.eq_ignore_ascii_case(sub.name()) => Ok(()),
        Some(u) => Err(format!("the server upgraded to {u:?}, we asked for {:?}", sub.name())),
        None => Err("the 101 answer names no upgrade type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn websocket_answer_checks() {
        // RFC 6455 §1.3's example key and accept value.
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            ("sec-websocket-protocol", "alpn-ping"),
        ]);
        assert_eq!(check_websocket_answer(&ok, key, Sub::AlpnPing), Ok(()));
        assert!(check_websocket_answer(&ok, key, Sub::Alpn).unwrap_err().contains("sub-protocol"));
        let bad_key =
            headers(&[("upgrade", "websocket"), ("sec-websocket-accept", "x"), ("sec-websocket-protocol", "alpn")]);
        assert!(check_websocket_answer(&bad_key, key, Sub::Alpn).unwrap_err().contains("Sec-WebSocket-Accept"));
        let no_proto = headers(&[("upgrade", "websocket"), ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")]);
        assert!(check_websocket_answer(&no_proto, key, Sub::Alpn).unwrap_err().contains("does not echo"));
        assert!(check_websocket_answer(&headers(&[]), key, Sub::Alpn).unwrap_err().contains("Upgrade: websocket"));
    }

    #[test]
    fn legacy_answer_checks() {
        assert_eq!(check_legacy_answer(&headers(&[("upgrade", "alpn-ping")]), Sub::AlpnPing), Ok(()));
        assert_eq!(check_legacy_answer(&headers(&[(LEGACY_HEADER, "alpn")]), Sub::Alpn), Ok(()));
        assert!(check_legacy_answer(&headers(&[("upgrade", "alpn")]), Sub::AlpnPing).is_err());
        assert!(check_legacy_answer(&headers(&[]), Sub::Alpn).is_err());
    }

    #[test]
    fn refusal_text_is_one_clean_line() {
        assert_eq!(refusal_text(br#"{"error":"unsupported upgrade"}"#), "unsupported upgrade");
        assert_eq!(refusal_text(b"<html><body>400</body></html>"), "");
        assert_eq!(
            refusal_text(b"  authentication required\r\nplease log in "),
            "authentication required  please log in"
        );
        // Found by the upgrade_answer fuzz target: a JSON-escaped line break (or a
        // terminal escape) came through into the user's one-line error.
        assert_eq!(refusal_text(br#"{"error":"line one\nline two\u001b[2J"}"#), "line one line two [2J");
        let long = "x".repeat(500);
        assert_eq!(refusal_text(long.as_bytes()).len(), 200);
    }

    #[test]
    fn refusal_messages() {
        assert_eq!(Refusal::Status(StatusCode::BAD_REQUEST, String::new()).to_string(), "answered 400 Bad Request");
        assert!(Refusal::Status(StatusCode::NOT_FOUND, "nope".into()).to_string().contains("(nope)"));
    }
}
