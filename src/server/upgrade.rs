//! The server's `/webapi/connectionupgrade`: choose the upgrade (websocket >
//! alpn-ping > alpn; anything else 404), answer 101, and once hyper hands over the
//! connection, feed the upgraded stream back into the router as a new TLS-routing
//! connection (same routes, same authorization) with the upgrade's keepalive.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::{debug, info};

use crate::net::ping::PingStream;
use crate::net::websocket::WsStream;
use crate::proto::upgrade::{Sub, LEGACY_HEADER};
use crate::server::conn::{self, Via};
use crate::server::Server;

/// The upgrade chosen for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// WebSocket with this sub-protocol; `key` is the client's Sec-WebSocket-Key.
    WebSocket {
        /// Sub-protocol.
        sub: Sub,
        /// The client's key.
        key: String,
    },
    /// Legacy raw upgrade.
    Legacy(Sub),
}

fn tokens<'a>(h: &'a HeaderMap, name: &str) -> impl Iterator<Item = String> + 'a {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .into_iter()
}

fn best(subs: impl Iterator<Item = String>) -> Option<Sub> {
    let subs: Vec<Sub> = subs.filter_map(|s| Sub::parse(&s)).collect();
    [Sub::AlpnPing, Sub::Alpn].into_iter().find(|s| subs.contains(s))
}

/// Chooses the upgrade for a request's headers (pure).
pub fn choose(h: &HeaderMap) -> Option<Choice> {
    if tokens(h, "upgrade").any(|t| t == "websocket") {
        let key = h.get("sec-websocket-key").and_then(|v| v.to_str().ok())?.trim().to_string();
        let version_ok = h.get("sec-websocket-version").and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() == "13");
        if key.is_empty() || !version_ok {
            return None;
        }
        return best(tokens(h, "sec-websocket-protocol")).map(|sub| Choice::WebSocket { sub, key });
    }
    best(tokens(h, "upgrade").chain(tokens(h, LEGACY_HEADER))).map(Choice::Legacy)
}

/// An accepted upgrade waiting for hyper to hand over the connection.
#[derive(Debug)]
pub struct Pending {
    choice: Choice,
    on: hyper::upgrade::OnUpgrade,
    peer: SocketAddr,
}

/// Answers an upgrade request: 101 and a [`Pending`], or 404.
pub fn respond(mut req: Request<Incoming>, peer: SocketAddr) -> (Response<Full<Bytes>>, Option<Pending>) {
    let Some(choice) = choose(req.headers()) else {
        let r = crate::server::web::error(
            StatusCode::NOT_FOUND,
            "unsupported upgrade: send `Upgrade: websocket` with Sec-WebSocket-Protocol alpn or alpn-ping, or `Upgrade: alpn|alpn-ping`",
        );
        return (r, None);
    };
    let resp = answer(&choice);
    let on = hyper::upgrade::on(&mut req);
    (resp, Some(Pending { choice, on, peer }))
}

/// The 101 answer for a choice (pure): the type echoed, and for WebSocket the
/// chosen sub-protocol and the accept key of the client's key.
pub fn answer(choice: &Choice) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    match choice {
        Choice::WebSocket { sub, key } => {
            h.insert(UPGRADE, HeaderValue::from_static("websocket"));
            h.insert("sec-websocket-protocol", HeaderValue::from_static(sub.name()));
            if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
                h.insert("sec-websocket-accept", v);
            }
        }
        Choice::Legacy(sub) => {
            h.insert(UPGRADE, HeaderValue::from_static(sub.name()));
            h.insert(LEGACY_HEADER, HeaderValue::from_static(sub.name()));
        }
    }
    resp
}

/// Runs an upgraded connection through the router; `pre` is the outer connection's
/// place in the budget for connections without an identity, handed to the inner TLS.
pub async fn run(srv: Arc<Server>, p: Pending, mut pre: conn::PreAuth) {
    let name = p.choice_name();
    let io = match p.on.await {
        Ok(up) => TokioIo::new(up),
        Err(e) => return debug!(error = %e, "upgrade did not complete"),
    };
    let every = srv.cfg.ping_interval;
    info!(upgrade = %name, client = %p.peer, "connection upgraded; routing the inner TLS");
    match p.choice {
        Choice::WebSocket { sub, .. } => {
            // Bounded beneath the WebSocket layer: its frame buffer holds whatever
            // the raw stream delivers.
            let io = pre.budget(io, Some(crate::net::budget::WS_CLOSE_TOO_BIG));
            let pings = (sub == Sub::AlpnPing).then_some(every);
            conn::handle_tls(srv, WsStream::new(io, Role::Server, pings), p.peer, Via::Upgrade, pre).await
        }
        Choice::Legacy(Sub::AlpnPing) => {
            conn::handle_tls(srv, PingStream::new(io, Some(every)), p.peer, Via::Upgrade, pre).await
        }
        Choice::Legacy(Sub::Alpn) => conn::handle_tls(srv, io, p.peer, Via::Upgrade, pre).await,
    }
}

impl Pending {
    fn choice_name(&self) -> String {
        match &self.choice {
            Choice::WebSocket { sub, .. } => format!("websocket/{}", sub.name()),
            Choice::Legacy(sub) => sub.name().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn prefers_websocket_then_alpn_ping() {
        let ws = h(&[
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "alpn, alpn-ping"),
            (LEGACY_HEADER, "alpn"),
        ]);
        assert_eq!(choose(&ws), Some(Choice::WebSocket { sub: Sub::AlpnPing, key: "k".into() }));
        assert_eq!(
            choose(&h(&[("upgrade", "alpn"), (LEGACY_HEADER, "alpn-ping")])),
            Some(Choice::Legacy(Sub::AlpnPing))
        );
        assert_eq!(
            choose(&h(&[(LEGACY_HEADER, "alpn")])),
            Some(Choice::Legacy(Sub::Alpn)),
            "Upgrade dropped by a middlebox"
        );
    }

    #[test]
    fn answer_echoes_the_choice() {
        let ws = answer(&Choice::WebSocket { sub: Sub::Alpn, key: "dGhlIHNhbXBsZSBub25jZQ==".into() });
        assert_eq!(ws.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(ws.headers()["upgrade"], "websocket");
        assert_eq!(ws.headers()["sec-websocket-protocol"], "alpn");
        assert_eq!(ws.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let legacy = answer(&Choice::Legacy(Sub::AlpnPing));
        assert_eq!(legacy.headers()["upgrade"], "alpn-ping");
        assert_eq!(legacy.headers()[LEGACY_HEADER], "alpn-ping");
        assert_eq!(legacy.headers()["connection"], "Upgrade");
    }

    #[test]
    fn unknown_or_incomplete_is_none() {
        assert_eq!(choose(&h(&[("upgrade", "h2c")])), None);
        assert_eq!(choose(&h(&[])), None);
        let no_key =
            h(&[("upgrade", "websocket"), ("sec-websocket-version", "13"), ("sec-websocket-protocol", "alpn")]);
        assert_eq!(choose(&no_key), None);
        let bad_proto = h(&[
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "chat"),
        ]);
        assert_eq!(choose(&bad_proto), None);
    }
}
