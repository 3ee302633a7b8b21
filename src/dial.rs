//! The one dialer. Given a target (SNI, ALPN list) it returns a byte stream to the
//! resource: TCP to the proxy, mutual TLS with the target's SNI and ALPN (ping
//! variants first), and the ping framing when a `-ping` protocol was negotiated.
//! Client configs are built once per ALPN list and share one session cache, so every
//! connection after the first resumes its TLS session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::debug;

use crate::client::context::Context;
use crate::error::{with_timeout, Error, Phase, Result};
use crate::io::BoxIo;
use crate::naming::{self, Alpn, Kind, Protocol};
use crate::ping::PingStream;
use crate::tls;

/// Deadline for the TCP connect to the proxy.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline for the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// What to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The SNI naming the resource.
    pub sni: String,
    /// The ALPN list, in preference order.
    pub alpn: Vec<Vec<u8>>,
}

impl Target {
    /// A resource of `kind` named `name`, spoken with `protocol`.
    pub fn resource(ctx: &Context, kind: Kind, name: &str, protocol: Protocol) -> Target {
        Target { sni: naming::resource_sni(kind, name, &ctx.domain), alpn: protocol.client_offer() }
    }

    /// The proxy's web API.
    pub fn web(ctx: &Context) -> Target {
        Target { sni: ctx.web_sni(), alpn: vec![b"http/1.1".to_vec()] }
    }
}

/// A dialled stream.
pub struct Dialed {
    /// The application byte stream (TLS, deframed when pinging).
    pub stream: BoxIo,
    /// The negotiated ALPN.
    pub alpn: Option<Alpn>,
}

impl std::fmt::Debug for Dialed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialed").field("alpn", &self.alpn).finish_non_exhaustive()
    }
}

/// The dialer. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Dialer {
    ctx: Context,
    configs: Mutex<HashMap<Vec<Vec<u8>>, Arc<rustls::ClientConfig>>>,
}

impl Dialer {
    /// A dialer for `ctx`.
    pub fn new(ctx: Context) -> Dialer {
        Dialer { ctx, configs: Mutex::new(HashMap::new()) }
    }

    /// The context.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    fn config(&self, alpn: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>> {
        let mut map = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(alpn) {
            return Ok(c.clone());
        }
        let c = tls::client_config(&self.ctx.trust, Some(&self.ctx.identity), alpn.to_vec())?;
        map.insert(alpn.to_vec(), c.clone());
        Ok(c)
    }

    /// Dials `target`.
    ///
    /// # Errors
    /// [`Error::Connect`], [`Error::Tls`] (with the cause in words) or
    /// [`Error::Timeout`], naming the phase.
    pub async fn dial(&self, target: &Target) -> Result<Dialed> {
        let transport = self.transport().await?;
        self.handshake(transport, target).await
    }

    /// The byte stream to the router that the TLS-routing handshake runs over.
    async fn transport(&self) -> Result<BoxIo> {
        let addr = self.ctx.proxy.to_string();
        let tcp = with_timeout(Phase::Connect, &addr, CONNECT_TIMEOUT, async {
            TcpStream::connect((self.ctx.proxy.host.as_str(), self.ctx.proxy.port))
                .await
                .map_err(|source| Error::Connect { target: addr.clone(), source })
        })
        .await?;
        let _ = tcp.set_nodelay(true);
        Ok(Box::new(tcp))
    }

    /// Runs the TLS-routing handshake over `io`.
    async fn handshake(&self, io: BoxIo, target: &Target) -> Result<Dialed> {
        let proxy = self.ctx.proxy.to_string();
        let name = ServerName::try_from(target.sni.clone())
            .map_err(|_| Error::config(format!("{:?} is not a valid TLS server name", target.sni)))?;
        let connector = TlsConnector::from(self.config(&target.alpn)?);
        let peer = format!("{proxy} (SNI {})", target.sni);
        let tls = with_timeout(Phase::TlsHandshake, &peer, HANDSHAKE_TIMEOUT, async {
            connector
                .connect(name, io)
                .await
                .map_err(|e| Error::Tls { peer: peer.clone(), reason: tls::explain_client_error(&e, &proxy) })
        })
        .await?;
        let conn = tls.get_ref().1;
        let alpn = conn.alpn_protocol().and_then(Alpn::parse);
        debug!(sni = %target.sni, alpn = ?alpn.map(|a| a.to_string()), resumed = ?conn.handshake_kind(), "dialled");
        let stream: BoxIo = match alpn {
            Some(a) if a.ping => Box::new(PingStream::new(tls, None)),
            _ => Box::new(tls),
        };
        Ok(Dialed { stream, alpn })
    }
}
