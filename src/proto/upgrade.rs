//! The connection upgrade's names (docs/protocol.md §7): the endpoint path, the legacy header,
//! the `alpn`/`alpn-ping` sub-protocols and the WebSocket or legacy mode. After the
//! upgrade the inner stream carries an ordinary TLS-routing handshake. The client's
//! side is [`crate::client::upgrade`], the server's [`crate::server::upgrade`].

/// The path of the upgrade endpoint.
pub const PATH: &str = "/webapi/connectionupgrade";
/// The legacy header some middleboxes leave alone when they drop `Upgrade`.
pub const LEGACY_HEADER: &str = "x-teleport-upgrade";

/// The upgrade's sub-protocol: whether the upgraded stream is kept alive by pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// Plain: the inner protocol has its own keepalive (ALPN ping variants).
    Alpn,
    /// Server pings on the upgraded stream: for SSH and reverse tunnels.
    AlpnPing,
}

impl Sub {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Sub::Alpn => "alpn",
            Sub::AlpnPing => "alpn-ping",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Sub> {
        match s.trim() {
            "alpn" => Some(Sub::Alpn),
            "alpn-ping" => Some(Sub::AlpnPing),
            _ => None,
        }
    }

    /// The sub-protocol for a target offering `alpn` (docs/protocol.md §7.5): `alpn-ping`
    /// whenever the inner protocol has no keepalive of its own, i.e. no ALPN ping
    /// variant is offered: SSH and reverse tunnels as the reference does, and also
    /// HTTP/1.1 to kube clusters and HTTP apps, whose watches and `logs -f` streams
    /// idle for minutes and would otherwise be cut by the load balancer's idle timeout.
    pub fn for_alpn(alpn: &[Vec<u8>]) -> Sub {
        let pinged = alpn.iter().filter_map(|a| crate::proto::naming::Alpn::parse(a)).any(|a| a.ping);
        if pinged {
            Sub::Alpn
        } else {
            Sub::AlpnPing
        }
    }
}

/// Which kind of upgrade a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// WebSocket, falling back to legacy when the server answers 400/404.
    #[default]
    WebSocket,
    /// Legacy `alpn`/`alpn-ping` only.
    Legacy,
}

impl Mode {
    /// Parses `websocket` or `legacy` (the value of
    /// `ONEPORT_TLS_ROUTING_CONN_UPGRADE_MODE`).
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "websocket" | "ws" => Ok(Mode::WebSocket),
            "legacy" => Ok(Mode::Legacy),
            other => Err(format!("upgrade mode {other:?}: use websocket or legacy")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::naming::Protocol;

    #[test]
    fn sub_protocol_choice() {
        assert_eq!(Sub::for_alpn(&Protocol::ProxySsh.client_offer()), Sub::AlpnPing);
        assert_eq!(Sub::for_alpn(&Protocol::Postgres.client_offer()), Sub::Alpn);
        assert_eq!(Sub::for_alpn(&Protocol::Tcp.client_offer()), Sub::Alpn);
        assert_eq!(Sub::for_alpn(&Protocol::Http1.client_offer()), Sub::AlpnPing, "kube watches idle");
        assert_eq!(Sub::for_alpn(&Protocol::ReverseTunnel.client_offer()), Sub::AlpnPing);
        assert_eq!(Sub::parse(" alpn-ping"), Some(Sub::AlpnPing));
        assert_eq!(Sub::parse("websocket"), None);
        assert_eq!(Mode::parse("Legacy"), Ok(Mode::Legacy));
        assert!(Mode::parse("h2").is_err());
    }
}
