//! Is an upgrade needed? The override variable first, then the probe (docs/protocol.md §8):
//! TLS to the proxy offering only `teleport-reversetunnel`; an upgrade is needed when
//! the handshake completes with any ALPN but the routing one, or it fails in TLS
//! (`no_application_protocol`, an ALPN we never offered, anything the peer said in
//! TLS): only the negotiated routing ALPN means "direct". A peer that never answers
//! in TLS (EOF, reset, timeout) teaches nothing: "direct" is assumed and the real
//! dial reports the real error, or falls back to the upgrade.

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsConnector;

use crate::client::profile::UpgradeCache;
use crate::net::io::BoxIo;
use crate::net::tls::{self, Trust};
use crate::proto::naming::Protocol;
use crate::util::addr::HostPort;

/// The override variable (same syntax as the reference's
/// `TELEPORT_TLS_ROUTING_CONN_UPGRADE`).
pub const OVERRIDE_VAR: &str = "ONEPORT_TLS_ROUTING_CONN_UPGRADE";
/// The variable that forces the upgrade kind (`websocket` or `legacy`).
pub const MODE_VAR: &str = "ONEPORT_TLS_ROUTING_CONN_UPGRADE_MODE";
/// How long the probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the override for `addr`: entries separated by `,` or `;`, each `true`/`false`
/// for every address or `host:port=true|false` for one; a per-address entry wins
/// over a global one, and a later entry over an earlier one.
///
/// # Errors
/// A message naming the entry that does not parse.
pub fn parse_override(value: &str, addr: &HostPort) -> Result<Option<bool>, String> {
    let mut global = None;
    let mut specific = None;
    for entry in value.split([',', ';']).map(str::trim).filter(|e| !e.is_empty()) {
        match entry.rsplit_once('=') {
            Some((target, flag)) => {
                let flag = parse_bool(flag)
                    .ok_or_else(|| format!("{OVERRIDE_VAR}: {entry:?}: expected host:port=true|false"))?;
                let hp = HostPort::parse(target.trim()).map_err(|e| format!("{OVERRIDE_VAR}: {entry:?}: {e}"))?;
                if hp.host.eq_ignore_ascii_case(&addr.host) && hp.port == addr.port {
                    specific = Some(flag);
                }
            }
            None => {
                global = Some(
                    parse_bool(entry).ok_or_else(|| format!("{OVERRIDE_VAR}: {entry:?}: expected true or false"))?,
                )
            }
        }
    }
    Ok(specific.or(global))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Runs the probe over `io` (a TCP stream to the proxy, through HTTPS_PROXY if set).
pub async fn probe(io: BoxIo, proxy: &HostPort) -> UpgradeCache {
    let verdict = |required: bool, reason: &str| UpgradeCache { required, reason: format!("probe: {reason}") };
    // Only the ALPN outcome matters and nothing is sent after the handshake, so the
    // probe does not verify the certificate (the load balancer's may be any).
    let trust = Trust { insecure: true, ..Trust::default() };
    let offered = Protocol::ReverseTunnel.alpn().as_bytes().to_vec();
    let cfg = match tls::client_config(&trust, None, vec![offered.clone()]) {
        Ok(c) => c,
        Err(e) => return verdict(false, &format!("could not build the probe: {e}")),
    };
    let name = match tls::server_name(&proxy.host) {
        Ok(n) => n,
        Err(e) => return verdict(false, &e.to_string()),
    };
    let fut = TlsConnector::from(Arc::clone(&cfg)).connect(name, io);
    match tokio::time::timeout(PROBE_TIMEOUT, fut).await {
        Err(_) => verdict(false, "timed out; assuming direct TLS routing"),
        Ok(Ok(tls)) => match tls.get_ref().1.alpn_protocol() {
            None => verdict(true, "no ALPN negotiated (a layer 7 load balancer terminates TLS)"),
            Some(p) if p == offered.as_slice() => verdict(false, "ALPN negotiated (direct TLS routing works)"),
            Some(p) => verdict(
                true,
                &format!("the server picked ALPN {:?} that was never offered", String::from_utf8_lossy(p)),
            ),
        },
        Ok(Err(e)) => match e.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>()) {
            Some(x) => {
                let (required, reason) = tls_refusal_verdict(x);
                verdict(required, &reason)
            }
            // No TLS answer at all (EOF, reset): nothing to learn; the real dial
            // reports the real error, and falls back to the upgrade if that helps.
            None => verdict(false, &format!("handshake failed ({e}); assuming direct TLS routing")),
        },
    }
}

/// The probe's verdict when the peer answered TLS but the handshake failed with
/// `err` (pure). Only a negotiated routing ALPN means "direct"; our router always
/// completes the probe's handshake, so whatever else answered in TLS is something
/// in front of it (e.g. Apache's mod_ssl picks `http/1.1`, never offered).
pub fn tls_refusal_verdict(err: &rustls::Error) -> (bool, String) {
    use rustls::{AlertDescription as A, PeerMisbehaved as P};
    match err {
        rustls::Error::AlertReceived(A::NoApplicationProtocol) => {
            (true, "TLS alert no_application_protocol (something in front does not route ALPN)".into())
        }
        rustls::Error::PeerMisbehaved(P::SelectedUnofferedApplicationProtocol) => {
            (true, "the server picked an ALPN that was never offered (a layer 7 load balancer terminates TLS)".into())
        }
        other => (true, format!("the TLS handshake failed ({other}), so the routing server does not answer directly")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(s: &str) -> HostPort {
        HostPort::parse(s).unwrap()
    }

    #[test]
    fn override_syntax() {
        let a = hp("proxy.example.com:443");
        assert_eq!(parse_override("", &a), Ok(None));
        assert_eq!(parse_override("true", &a), Ok(Some(true)));
        assert_eq!(parse_override("false", &a), Ok(Some(false)));
        assert_eq!(parse_override("proxy.example.com:443=true", &a), Ok(Some(true)));
        assert_eq!(parse_override("other:443=true", &a), Ok(None));
        assert_eq!(parse_override("true; proxy.example.com:443=false", &a), Ok(Some(false)));
        assert_eq!(parse_override("proxy.example.com:443=false,true", &a), Ok(Some(false)), "specific wins");
        assert_eq!(parse_override("PROXY.example.com:443=1", &a), Ok(Some(true)));
        assert!(parse_override("maybe", &a).unwrap_err().contains("expected true or false"));
        assert!(parse_override("proxy:443=perhaps", &a).is_err());
        assert!(parse_override("proxy=true", &a).unwrap_err().contains("host:port"));
    }

    #[test]
    fn any_tls_refusal_means_upgrade() {
        use rustls::{AlertDescription as A, PeerMisbehaved as P};
        let apache = tls_refusal_verdict(&rustls::Error::PeerMisbehaved(P::SelectedUnofferedApplicationProtocol));
        assert_eq!(
            apache,
            (true, "the server picked an ALPN that was never offered (a layer 7 load balancer terminates TLS)".into())
        );
        assert!(tls_refusal_verdict(&rustls::Error::AlertReceived(A::NoApplicationProtocol)).0);
        let (required, why) = tls_refusal_verdict(&rustls::Error::AlertReceived(A::HandshakeFailure));
        assert!(required);
        assert!(why.contains("does not answer directly"), "{why}");
    }
}
