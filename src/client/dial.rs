//! The one dialer. Given a target (SNI, ALPN list) it returns a byte stream to the
//! resource: TCP to the proxy (through `HTTPS_PROXY` when set), then either straight
//! into the TLS-routing handshake, or first through the load balancer's TLS and a
//! connection upgrade (docs/protocol.md §7) when one is needed; then mutual TLS with the
//! target's SNI and ALPN (ping variants first), and the ping framing when a `-ping`
//! protocol was negotiated. Client configs are built once per ALPN list and share one
//! session cache, so every connection after the first resumes its TLS session.
//!
//! Whether to upgrade: `ONEPORT_TLS_ROUTING_CONN_UPGRADE` if set (fixed), else the
//! login profile's cached answer, else the probe, once per process. When the answer
//! in use fails on a real dial in a way the other path could fix, the other path is
//! tried once and, if it works, becomes the answer (and the profile's cache).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::debug;

use crate::client::context::Context;
use crate::client::profile::{Dirs, Profile, UpgradeCache};
use crate::client::upgrade::proxy_env::{self, HttpProxy};
use crate::client::upgrade::{self, detect};
use crate::error::{EnvError, Error, Layer, Refusal, Result};
use crate::net::connect;
use crate::net::io::BoxIo;
use crate::net::ping::PingStream;
use crate::net::tls;
use crate::proto::naming::{self, Alpn, Kind, Protocol};
use crate::proto::upgrade::{Mode, Sub};

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
    /// Through a load balancer's connection upgrade (else straight to the router).
    pub upgraded: bool,
}

impl std::fmt::Debug for Dialed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialed").field("alpn", &self.alpn).field("upgraded", &self.upgraded).finish_non_exhaustive()
    }
}

/// How the dialer reaches the router, from the environment.
#[derive(Debug, Clone, Default)]
pub struct PathOptions {
    /// `ONEPORT_TLS_ROUTING_CONN_UPGRADE` for this proxy, if set.
    pub upgrade_override: Option<bool>,
    /// `ONEPORT_TLS_ROUTING_CONN_UPGRADE_MODE`.
    pub mode: Mode,
    /// `HTTPS_PROXY` unless `NO_PROXY` exempts the proxy.
    pub http_proxy: Option<HttpProxy>,
}

impl PathOptions {
    /// Reads the environment for `ctx.proxy`.
    ///
    /// # Errors
    /// When a variable is set to something that does not parse.
    pub fn from_env(ctx: &Context) -> std::result::Result<PathOptions, EnvError> {
        let var = |k: &str| std::env::var(k).ok();
        let upgrade_override = match var(detect::OVERRIDE_VAR) {
            Some(v) => detect::parse_override(&v, &ctx.proxy)
                .map_err(|reason| EnvError { var: detect::OVERRIDE_VAR, reason })?,
            None => None,
        };
        let mode = match var(detect::MODE_VAR) {
            Some(v) => Mode::parse(&v)
                .map_err(|e| EnvError { var: detect::MODE_VAR, reason: format!("{}: {e}", detect::MODE_VAR) })?,
            None => Mode::WebSocket,
        };
        let http_proxy =
            proxy_env::proxy_for(&ctx.proxy, var).map_err(|reason| EnvError { var: "HTTPS_PROXY", reason })?;
        Ok(PathOptions { upgrade_override, mode, http_proxy })
    }
}

/// The upgrade decision in force, and whether it may change.
#[derive(Debug, Clone)]
struct Decision {
    cache: UpgradeCache,
    fixed: bool,
    from_profile: bool,
}

/// A failed dial, and whether the other path might do better.
enum Failure {
    /// Something between us and the router is not what this path expects.
    Path(Error),
    /// Anything else (refusals, TCP errors): the other path would not help.
    Final(Error),
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Failure::Path(e) | Failure::Final(e) => e,
        }
    }
}

/// The dialer. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Dialer {
    ctx: Context,
    options: std::result::Result<PathOptions, EnvError>,
    configs: Mutex<HashMap<Vec<Vec<u8>>, Arc<rustls::ClientConfig>>>,
    outer: Mutex<Option<Arc<rustls::ClientConfig>>>,
    decision: tokio::sync::Mutex<Option<Decision>>,
    /// The identity in use when the context's file changed on disk since start
    /// (renewed in the background or by another program), and that file's stamp.
    fresh: Mutex<Fresh>,
    /// Configs given by the caller (enrollment), never rebuilt.
    fixed: bool,
}

/// The identity file as last read.
#[derive(Debug, Default)]
struct Fresh {
    stamp: Option<(std::time::SystemTime, u64)>,
    identity: Option<crate::identity::Identity>,
}

fn stamp_of(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Dialer {
    /// A dialer for `ctx`, with path options from the environment.
    pub fn new(ctx: Context) -> Dialer {
        let options = PathOptions::from_env(&ctx);
        Dialer::with_options_inner(ctx, options)
    }

    /// A dialer with explicit path options (tests, embedding).
    pub fn with_options(ctx: Context, options: PathOptions) -> Dialer {
        Dialer::with_options_inner(ctx, Ok(options))
    }

    fn with_options_inner(ctx: Context, options: std::result::Result<PathOptions, EnvError>) -> Dialer {
        let stamp = ctx.identity_path.as_deref().and_then(stamp_of);
        Dialer {
            ctx,
            options,
            configs: Mutex::new(HashMap::new()),
            outer: Mutex::new(None),
            decision: tokio::sync::Mutex::new(None),
            fresh: Mutex::new(Fresh { stamp, identity: None }),
            fixed: false,
        }
    }

    /// A dialer whose TLS configs are given, one per ALPN list, plus the outer one
    /// for load balancers (enrollment, which has no identity yet and verifies the
    /// proxy by the invite's pin). Only the given ALPN lists can be dialled.
    pub fn with_configs(
        ctx: Context,
        inner: Vec<(Vec<Vec<u8>>, Arc<rustls::ClientConfig>)>,
        outer: Arc<rustls::ClientConfig>,
    ) -> Dialer {
        let mut d = Dialer::new(ctx);
        d.configs = Mutex::new(inner.into_iter().collect());
        d.outer = Mutex::new(Some(outer));
        d.fixed = true;
        d
    }

    /// The identity new connections present: the context's, or the file's newer
    /// contents when it changed on disk since (checked before each dial; a file
    /// that does not load is ignored and the last good identity kept).
    pub fn identity(&self) -> crate::identity::Identity {
        self.refresh_identity();
        let fresh = self.fresh.lock().unwrap_or_else(|p| p.into_inner());
        fresh.identity.clone().unwrap_or_else(|| self.ctx.identity.clone())
    }

    /// Re-reads the identity file if its stamp changed; drops the cached configs
    /// (and with them the TLS sessions of the old certificate) when it did.
    fn refresh_identity(&self) {
        let Some(path) = self.ctx.identity_path.as_deref().filter(|_| !self.fixed) else { return };
        let now = stamp_of(path);
        let mut fresh = self.fresh.lock().unwrap_or_else(|p| p.into_inner());
        if now.is_none() || now == fresh.stamp {
            return;
        }
        match crate::identity::Identity::load(path) {
            Ok(id) => {
                debug!(path = %path.display(), serial = %id.caller.serial, "identity file changed; new connections use it");
                fresh.stamp = now;
                fresh.identity = Some(id);
                self.configs.lock().unwrap_or_else(|p| p.into_inner()).clear();
            }
            Err(e) => debug!(error = %e, "identity file changed but does not load (yet); keeping the current one"),
        }
    }

    /// The context.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The path options in force (from the environment unless given).
    ///
    /// # Errors
    /// When an environment variable did not parse.
    pub fn path_options(&self) -> Result<&PathOptions> {
        self.options()
    }

    fn options(&self) -> Result<&PathOptions> {
        self.options.as_ref().map_err(|e| Error::Env(e.clone()))
    }

    fn config(&self, alpn: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>> {
        self.refresh_identity();
        let fresh = self.fresh.lock().unwrap_or_else(|p| p.into_inner()).identity.clone();
        let mut map = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(alpn) {
            return Ok(c.clone());
        }
        if self.fixed {
            return Err(Error::config("this dialer cannot reach that protocol (internal: no TLS config for it)"));
        }
        // A config has its own ticket store, so a renewed identity's config never
        // resumes a session made with the old certificate.
        let id = fresh.as_ref().unwrap_or(&self.ctx.identity);
        let c = tls::client_config(&self.ctx.trust, Some(id), alpn.to_vec())?;
        map.insert(alpn.to_vec(), c.clone());
        Ok(c)
    }

    /// The outer TLS config for the load balancer: system roots, the `--ca` anchors
    /// and the proxy CA, no client certificate, and no ALPN (an LB that picked h2 would break the
    /// HTTP/1.1 upgrade).
    fn outer_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let mut slot = self.outer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let trust = tls::Trust { system: true, ..self.ctx.trust.clone() };
        let c = tls::client_config(&trust, None, vec![])?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// The upgrade decision in force, probing once if nothing else says.
    ///
    /// # Errors
    /// When the environment is invalid.
    pub async fn upgrade_decision(&self) -> Result<UpgradeCache> {
        Ok(self.decision().await?.cache)
    }

    async fn decision(&self) -> Result<Decision> {
        let opts = self.options()?.clone();
        let mut slot = self.decision.lock().await;
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let d = if let Some(required) = opts.upgrade_override {
            let reason = format!("{} says {required}", detect::OVERRIDE_VAR);
            Decision { cache: UpgradeCache { required, reason }, fixed: true, from_profile: false }
        } else if let Some(cached) = self.ctx.profile.as_ref().and_then(|p| p.upgrade.clone()) {
            Decision { cache: cached, fixed: false, from_profile: true }
        } else {
            Decision { cache: self.probe().await, fixed: false, from_profile: false }
        };
        debug!(required = d.cache.required, reason = %d.cache.reason, "upgrade decision");
        *slot = Some(d.clone());
        Ok(d)
    }

    /// Whether connections go upgraded through a load balancer (`Some(true)`) or
    /// direct (`Some(false)`); `None` while undecided or being decided. Never waits.
    pub fn upgraded_now(&self) -> Option<bool> {
        self.decision.try_lock().ok()?.as_ref().map(|d| d.cache.required)
    }

    /// Runs the upgrade probe now (for `login` and `status`).
    pub async fn probe(&self) -> UpgradeCache {
        match self.tcp().await {
            Ok(io) => detect::probe(io, &self.ctx.proxy).await,
            Err(e) => UpgradeCache { required: false, reason: format!("probe: could not connect ({e})") },
        }
    }

    /// Dials `target`.
    ///
    /// # Errors
    /// [`Error::Connect`], [`Error::ProxyConnect`] (the HTTPS proxy refused),
    /// [`Error::Tls`] (its `layer` says whose), [`Error::Upgrade`] (the load balancer
    /// refused) or [`Error::Timeout`] (which phase, how long).
    pub async fn dial(&self, target: &Target) -> Result<Dialed> {
        let d = self.decision().await?;
        let first = match self.dial_path(d.cache.required, target).await {
            Ok(x) => return Ok(x),
            Err(Failure::Path(e)) if !d.fixed => e,
            Err(f) => return Err(f.into_error()),
        };
        let other = !d.cache.required;
        debug!(error = %first, upgrade = other, "dial failed on the path in use; trying the other path once");
        match self.dial_path(other, target).await {
            Ok(x) => {
                let what = if other { "required" } else { "not required" };
                let reason = format!("switched to upgrade {what} after: {first}");
                self.switch(Decision { cache: UpgradeCache { required: other, reason }, ..d }).await;
                Ok(x)
            }
            Err(_) => Err(first),
        }
    }

    async fn switch(&self, d: Decision) {
        if d.from_profile {
            // Keep the login profile's cache in step; a failure to save is not fatal.
            if let (Ok(dirs), Some(ours)) = (Dirs::locate(), self.ctx.profile.as_ref()) {
                // Re-read: a newer `login` may have replaced the profile since we started.
                let hp = ours.host_port();
                if let Ok(Some(mut current)) = hp.and_then(|hp| Profile::load_for(&dirs, &hp)) {
                    current.upgrade = Some(d.cache.clone());
                    let _ = current.save(&dirs);
                }
            }
        }
        *self.decision.lock().await = Some(d);
    }

    async fn dial_path(&self, upgrade: bool, target: &Target) -> std::result::Result<Dialed, Failure> {
        let (transport, no_tunnel) = if upgrade {
            let (io, no_tunnel) = self.upgraded(Sub::for_alpn(&target.alpn)).await?;
            (io, Some(no_tunnel))
        } else {
            (self.tcp().await.map_err(Failure::Final)?, None)
        };
        let mut d = self.handshake(Box::new(crate::net::io::NoHalfClose(transport)), target, no_tunnel).await?;
        d.upgraded = upgrade;
        Ok(d)
    }

    /// Dials `target` again through the upgrade after a direct dial reached
    /// something that terminates TLS in front of the router (the web API's "client
    /// certificate is required" on a connection that presented one). `None` when
    /// the environment fixes the decision. The caller adopts the upgrade with
    /// [`Dialer::adopt_upgrade`] once the answer through it proves right.
    ///
    /// # Errors
    /// The upgraded dial's own error.
    pub async fn redial_upgraded(&self, target: &Target) -> Result<Option<Dialed>> {
        if self.decision().await?.fixed {
            return Ok(None);
        }
        self.dial_path(true, target).await.map(Some).map_err(Failure::into_error)
    }

    /// Makes the upgrade the answer (and the profile's cache), `why` saying what
    /// proved the direct path wrong.
    ///
    /// # Errors
    /// When the environment is invalid.
    pub async fn adopt_upgrade(&self, why: &str) -> Result<()> {
        let d = self.decision().await?;
        if d.fixed || d.cache.required {
            return Ok(());
        }
        debug!(reason = why, "the direct path reached something that terminates TLS; using the upgrade");
        let reason = format!("switched to upgrade required after: {why}");
        self.switch(Decision { cache: UpgradeCache { required: true, reason }, ..d }).await;
        Ok(())
    }

    /// TCP to the proxy, through `HTTPS_PROXY` when set (for `doctor`).
    ///
    /// # Errors
    /// Connect errors and CONNECT refusals.
    pub async fn transport(&self) -> Result<BoxIo> {
        self.tcp().await
    }

    /// Dials `target` through the upgrade, whatever the decision (for `doctor`:
    /// a 101 that opens no tunnel shows here).
    ///
    /// # Errors
    /// The layer-specific upgrade error, or the TLS-routing one inside.
    pub async fn dial_upgraded(&self, target: &Target) -> Result<Dialed> {
        self.dial_path(true, target).await.map_err(Failure::into_error)
    }

    /// TCP to the proxy, through `HTTPS_PROXY` when set.
    async fn tcp(&self) -> Result<BoxIo> {
        let opts = self.options()?;
        let (host, port) = match &opts.http_proxy {
            Some(p) => (p.addr.host.clone(), p.addr.port),
            None => (self.ctx.proxy.host.clone(), self.ctx.proxy.port),
        };
        let addr = format!("{host}:{port}");
        let what = if opts.http_proxy.is_some() { format!("HTTPS proxy {addr}") } else { addr.clone() };
        let tcp = connect::tcp(&host, port, &what, CONNECT_TIMEOUT, Some(connect::DEFAULT_KEEPALIVE)).await?;
        let Some(p) = &opts.http_proxy else {
            return Ok(Box::new(tcp));
        };
        let target = self.ctx.proxy.to_string();
        upgrade::http::connect_via(Box::new(tcp), p, &target).await.map_err(|refusal| Error::ProxyConnect {
            proxy: p.addr.to_string(),
            target: target.clone(),
            refusal,
        })
    }

    /// The outer hop through a load balancer: TLS to it, then the upgrade; with the
    /// error to report if the TLS inside is then cut (the 101 opened no tunnel).
    async fn upgraded(&self, sub: Sub) -> std::result::Result<(BoxIo, Error), Failure> {
        let mode = self.options().map_err(Failure::Final)?.mode;
        let lb = self.ctx.proxy.to_string();
        let error = |websocket, legacy| Error::Upgrade {
            lb: lb.clone(),
            path: crate::proto::upgrade::PATH,
            sub: sub.name(),
            websocket,
            legacy,
        };
        let ws_refusal = match mode {
            Mode::Legacy => None,
            Mode::WebSocket => match upgrade::http::websocket(self.outer_tls().await?, &lb, sub).await {
                Ok(io) => return Ok((io, error(Some(Refusal::NoTunnel), None))),
                // 400/404: the load balancer may pass only the legacy upgrade.
                Err(r) if matches!(r.status().map(|s| s.as_u16()), Some(400 | 404)) => Some(r),
                Err(r) => return Err(Failure::Path(error(Some(r), None))),
            },
        };
        match upgrade::http::legacy(self.outer_tls().await?, &lb, sub).await {
            Ok(io) => Ok((io, error(ws_refusal, Some(Refusal::NoTunnel)))),
            Err(r) => Err(Failure::Path(error(ws_refusal, Some(r)))),
        }
    }

    async fn outer_tls(&self) -> std::result::Result<BoxIo, Failure> {
        let tcp = self.tcp().await.map_err(Failure::Final)?;
        let cfg = self.outer_config().map_err(Failure::Final)?;
        let lb = self.ctx.proxy.to_string();
        let name = tls::server_name(&self.ctx.proxy.host).map_err(|e| Failure::Final(Error::config(e)))?;
        let peer = format!("load balancer at {lb}");
        let tls = connect::tls(tcp, cfg, name, HANDSHAKE_TIMEOUT)
            .await
            .map_err(|f| Failure::Path(f.into_error(Layer::LoadBalancer, &peer, |e| tls::explain_lb_error(e, &lb))))?;
        Ok(Box::new(tls))
    }

    /// Runs the TLS-routing handshake over `io`; `no_tunnel` is the error to report
    /// when `io` came through an upgrade and the handshake is cut or stalls.
    async fn handshake(
        &self,
        io: BoxIo,
        target: &Target,
        no_tunnel: Option<Error>,
    ) -> std::result::Result<Dialed, Failure> {
        let proxy = self.ctx.proxy.to_string();
        let name = tls::server_name(&target.sni)
            .map_err(|_| Failure::Final(Error::config(format!("{:?} is not a valid TLS server name", target.sni))))?;
        let config = self.config(&target.alpn).map_err(Failure::Final)?;
        let peer = format!("{proxy} (SNI {})", target.sni);
        // A timeout is a path failure (something in the way swallowed the hello); a
        // TLS error is one when `is_path_error` says so.
        let tls = match connect::tls(io, config, name, HANDSHAKE_TIMEOUT).await {
            Ok(t) => t,
            Err(f @ connect::TlsFailure::Timeout(_)) => {
                return Err(Failure::Path(match no_tunnel {
                    Some(e) => e,
                    None => f.into_error(Layer::Routing, &peer, |_| String::new()),
                }))
            }
            Err(connect::TlsFailure::Failed(e)) => {
                if let (Some(no_tunnel), true) = (no_tunnel, tls::is_cut(&e)) {
                    return Err(Failure::Path(no_tunnel));
                }
                let err = tls::client_error(&e, &proxy, &peer);
                return Err(if tls::is_path_error(&e) { Failure::Path(err) } else { Failure::Final(err) });
            }
        };
        let conn = tls.get_ref().1;
        let negotiated = conn.alpn_protocol().is_some();
        let alpn = conn.alpn_protocol().and_then(Alpn::parse);
        let wants_alpn = target.alpn.iter().any(|a| a.as_slice() != b"http/1.1");
        if !negotiated && wants_alpn {
            // Something answered TLS without routing ALPN: a load balancer in the way.
            let reason = format!("{proxy} negotiated no ALPN: something in front of the proxy terminates TLS");
            return Err(Failure::Path(Error::Tls { layer: Layer::Routing, peer, reason }));
        }
        debug!(sni = %target.sni, alpn = ?alpn.map(|a| a.to_string()), resumed = ?conn.handshake_kind(), "dialled");
        let stream: BoxIo = match alpn {
            Some(a) if a.ping => Box::new(PingStream::new(tls, None)),
            _ => Box::new(tls),
        };
        Ok(Dialed { stream, alpn, upgraded: false })
    }
}
