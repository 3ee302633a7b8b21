//! The one connect-with-deadline: TCP to `host:port` under a deadline, with the
//! socket options every oneport socket gets ([`tune`]: no Nagle delay, TCP
//! keepalive so a vanished peer is noticed, no pacing between two loopback
//! addresses), and TLS over such a stream under its
//! own deadline. Used by the client's dialer, the server's backends and kube
//! upstreams, and `doctor`.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{with_timeout, Error, Layer, Phase, Result};

/// TCP keepalive when nothing else is configured: the first probe after 60 s of
/// silence (a vanished peer is given up after about two minutes).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);

/// Probes sent before a silent peer is given up.
const KEEPALIVE_PROBES: u32 = 6;

/// Sets the options of every oneport TCP socket: `TCP_NODELAY`, a congestion
/// control that does not pace when both ends are loopback addresses
/// ([`unpaced_on_loopback`]), and TCP keepalive (first probe after `keepalive`
/// idle, then every `keepalive / 6`, at least 1 s; `None` leaves keepalive off).
/// Failures are ignored: the socket still works.
pub fn tune(tcp: &TcpStream, keepalive: Option<Duration>) {
    let _ = tcp.set_nodelay(true);
    unpaced_on_loopback(tcp);
    let Some(idle) = keepalive else { return };
    let interval = (idle / KEEPALIVE_PROBES).max(Duration::from_secs(1));
    let ka = socket2::TcpKeepalive::new().with_time(idle).with_interval(interval);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "freebsd"))]
    let ka = ka.with_retries(KEEPALIVE_PROBES);
    let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&ka);
}

/// A connection between two loopback addresses never meets a network, and the
/// pacing of BBR only costs there: without the `fq` qdisc (loopback has none) the
/// kernel paces each BBR socket with a timer of its own. On a machine whose
/// default is BBR, benches/throughput moved 30-35% less through each TLS peer, at
/// 1.3-1.5x the CPU per byte, than with cubic (docs/benchmarks.md). Such a socket
/// is moved to cubic (or reno, which every kernel has). A socket with any other
/// address at either end keeps the system's choice. Linux only (elsewhere, and on
/// any failure, nothing changes).
fn unpaced_on_loopback(tcp: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        let on_loopback =
            |a: std::io::Result<std::net::SocketAddr>| a.is_ok_and(|a| a.ip().to_canonical().is_loopback());
        if !(on_loopback(tcp.local_addr()) && on_loopback(tcp.peer_addr())) {
            return;
        }
        let sock = socket2::SockRef::from(tcp);
        if sock.tcp_congestion().is_ok_and(|name| paces(&name)) {
            let _ = sock.set_tcp_congestion(b"cubic").or_else(|_| sock.set_tcp_congestion(b"reno"));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = tcp;
}

/// Whether a congestion control named `name` (as `TCP_CONGESTION` gives it, maybe
/// padded with NULs) paces its sends: BBR, in any of its versions.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn paces(name: &[u8]) -> bool {
    name.starts_with(b"bbr")
}

/// Connects to `host:port` within `limit` and [`tune`]s the socket. `what` names
/// the peer in errors ("HTTPS proxy 10.0.0.1:3128", "127.0.0.1:5432").
///
/// # Errors
/// [`Error::Connect`], or [`Error::Timeout`] in [`Phase::Connect`].
pub async fn tcp(host: &str, port: u16, what: &str, limit: Duration, keepalive: Option<Duration>) -> Result<TcpStream> {
    let tcp = with_timeout(Phase::Connect, what, limit, async {
        TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
            .await
            .map_err(|source| Error::Connect { target: what.to_string(), cause: source })
    })
    .await?;
    tune(&tcp, keepalive);
    Ok(tcp)
}

/// As [`tcp`], for an address written `host:port` (IPv6 in brackets).
///
/// # Errors
/// As [`tcp`]; [`Error::Config`] when `addr` is not `host:port`.
pub async fn tcp_addr(addr: &str, limit: Duration, keepalive: Option<Duration>) -> Result<TcpStream> {
    let hp = crate::util::addr::HostPort::parse(addr).map_err(Error::config)?;
    tcp(&hp.host, hp.port, addr, limit, keepalive).await
}

/// How a TLS handshake failed: out of time, or refused/broken (the caller turns the
/// I/O error into words; several layers explain it differently).
#[derive(Debug)]
pub enum TlsFailure {
    /// The deadline passed.
    Timeout(Duration),
    /// The handshake failed.
    Failed(std::io::Error),
}

impl TlsFailure {
    /// The crate error for a handshake with `peer` at `layer`, explaining an I/O
    /// error with `explain`.
    pub fn into_error(self, layer: Layer, peer: &str, explain: impl FnOnce(&std::io::Error) -> String) -> Error {
        match self {
            TlsFailure::Timeout(limit) => Error::Timeout { phase: Phase::TlsHandshake, peer: peer.to_string(), limit },
            TlsFailure::Failed(e) => Error::Tls { layer, peer: peer.to_string(), reason: explain(&e) },
        }
    }
}

/// A TLS client handshake over `io` within `limit`.
///
/// # Errors
/// [`TlsFailure`].
pub async fn tls<IO>(
    io: IO,
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    limit: Duration,
) -> std::result::Result<TlsStream<IO>, TlsFailure>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(limit, TlsConnector::from(config).connect(name, io)).await {
        Ok(Ok(mut t)) => {
            t.get_mut().1.set_buffer_limit(Some(crate::net::tls::SEND_BUFFER_LIMIT));
            Ok(t)
        }
        Ok(Err(e)) => Err(TlsFailure::Failed(e)),
        Err(_) => Err(TlsFailure::Timeout(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dialled_sockets_get_nodelay_and_keepalive() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let s = tcp("127.0.0.1", port, "test", Duration::from_secs(5), Some(Duration::from_secs(45))).await.unwrap();
        assert!(s.nodelay().unwrap());
        let sock = socket2::SockRef::from(&s);
        assert!(sock.keepalive().unwrap(), "SO_KEEPALIVE set");
        #[cfg(target_os = "linux")]
        {
            assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(45));
            assert_eq!(sock.tcp_keepalive_interval().unwrap(), Duration::from_secs(7));
            assert_eq!(sock.tcp_keepalive_retries().unwrap(), KEEPALIVE_PROBES);
        }
        let off = tcp("127.0.0.1", port, "test", Duration::from_secs(5), None).await.unwrap();
        assert!(!socket2::SockRef::from(&off).keepalive().unwrap());
    }

    #[test]
    fn only_bbr_counts_as_pacing() {
        assert!(paces(b"bbr\0\0\0\0\0\0\0\0\0\0\0\0\0"));
        assert!(paces(b"bbr2"));
        assert!(!paces(b"cubic\0\0\0\0\0\0\0\0\0\0\0"));
        assert!(!paces(b"reno"));
        assert!(!paces(b""));
    }

    /// Both ends of a loopback connection leave BBR (set on them here, whatever
    /// the machine's default) for a congestion control that does not pace.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn loopback_sockets_leave_bbr() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (dialled, accepted) = tokio::join!(TcpStream::connect(l.local_addr().unwrap()), l.accept());
        let (dialled, (accepted, _)) = (dialled.unwrap(), accepted.unwrap());
        let name = |s: &TcpStream| {
            let n = socket2::SockRef::from(s).tcp_congestion().unwrap();
            String::from_utf8_lossy(&n).trim_end_matches('\0').to_string()
        };
        for s in [&dialled, &accepted] {
            if let Err(e) = socket2::SockRef::from(s).set_tcp_congestion(b"bbr") {
                let offered = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control").unwrap();
                assert!(
                    !offered.split_whitespace().any(|c| c == "bbr"),
                    "bbr is offered ({offered}) but not settable: {e}"
                );
                return;
            }
            assert_eq!(name(s), "bbr");
            tune(s, None);
            let now = name(s);
            assert!(now == "cubic" || now == "reno", "a loopback socket still uses {now}");
        }
    }

    #[tokio::test]
    async fn refused_connect_names_the_target() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = tcp_addr(&format!("127.0.0.1:{port}"), Duration::from_secs(5), None).await.unwrap_err();
        assert!(err.to_string().starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")), "{err}");
    }
}
