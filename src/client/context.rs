//! The client context: proxy, identity, trust and routing domain, resolved from
//! flags, `ONEPORT_*` environment variables (clap maps them onto the flags) and the
//! stored profile of that proxy (`--proxy`'s, else the active one), in that order.

use std::path::PathBuf;

use crate::client::profile::{Dirs, Profile};
use crate::error::{Error, Result};
use crate::identity::{self, Identity};
use crate::net::tls::Trust;
use crate::proto::naming;
use crate::util::addr::HostPort;

/// What the user gave on the command line or in the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--proxy` / `ONEPORT_PROXY`.
    pub proxy: Option<String>,
    /// `--identity` / `ONEPORT_IDENTITY`.
    pub identity: Option<PathBuf>,
    /// `--ca` / `ONEPORT_CA`.
    pub ca: Option<PathBuf>,
    /// `--insecure` / `ONEPORT_INSECURE`.
    pub insecure: bool,
}

/// Everything a client command needs to reach the proxy.
#[derive(Debug, Clone)]
pub struct Context {
    /// The proxy's address.
    pub proxy: HostPort,
    /// The identity presented.
    pub identity: Identity,
    /// Who the proxy's certificate must chain to.
    pub trust: Trust,
    /// The domain resource SNIs live under.
    pub domain: String,
    /// The cluster name (from the profile; the proxy host otherwise).
    pub cluster: String,
    /// The profile this came from, when it matches the proxy in use.
    pub profile: Option<Profile>,
    /// The identity's file, re-read by the dialer when it changes on disk.
    pub identity_path: Option<PathBuf>,
}

impl Context {
    /// Resolves the context (see the module docs) for a command about to dial: an
    /// expired identity is refused here, with [`identity::Caller::expired_sentence`],
    /// rather than by the proxy with a less helpful error.
    ///
    /// # Errors
    /// When no proxy or identity is known, a file does not load, or the identity
    /// has expired.
    pub fn resolve(over: &Overrides) -> Result<Context> {
        let ctx = Context::resolve_even_expired(over)?;
        ctx.identity.caller.check_current()?;
        Ok(ctx)
    }

    /// As [`Context::resolve`], but an expired identity is returned too (for
    /// `doctor`, which reports it as one of its layers).
    ///
    /// # Errors
    /// When no proxy or identity is known, or a file does not load.
    pub fn resolve_even_expired(over: &Overrides) -> Result<Context> {
        let dirs = Dirs::locate()?;
        let profile = Profile::select(&dirs, over.proxy.as_deref())?;
        Context::build(over, profile)
    }

    /// Resolves against a given profile (for tests and `login`).
    ///
    /// # Errors
    /// As [`Context::resolve`].
    pub fn build(over: &Overrides, profile: Option<Profile>) -> Result<Context> {
        let proxy_text = over.proxy.clone().or_else(|| profile.as_ref().map(|p| p.proxy.clone())).ok_or_else(|| {
            Error::config("no proxy: run `oneport login --proxy HOST:PORT --identity FILE`, or give --proxy")
        })?;
        let proxy =
            HostPort::parse_with_default(&proxy_text, 3080).map_err(|e| Error::config(format!("--proxy {e}")))?;
        // A profile for another proxy says nothing about this one.
        let profile = profile.filter(|p| HostPort::parse(&p.proxy).ok().as_ref() == Some(&proxy));
        let id_path =
            over.identity.clone().or_else(|| profile.as_ref().map(|p| p.identity.clone())).ok_or_else(|| {
                Error::config("no identity: give --identity FILE (made by `oneport server issue`), or `oneport login`")
            })?;
        let identity = Identity::load(&id_path)?;
        // `--ca` adds trust anchors for the load balancer hop; the routing TLS trusts
        // the identity's CA only (the `--ca` too when the identity file has no CA).
        let ca_path = over.ca.clone().or_else(|| profile.as_ref().and_then(|p| p.ca.clone()));
        let lb_ca = match ca_path {
            Some(p) => identity::load_certs(&p)?,
            None => Vec::new(),
        };
        let ca = if identity.ca.is_empty() { lb_ca.clone() } else { identity.ca.clone() };
        let insecure = over.insecure || profile.as_ref().is_some_and(|p| p.insecure);
        if insecure && !over.insecure {
            // The flag itself is announced by the CLI; a stored one must be too.
            tracing::warn!(
                "the login profile says --insecure: the proxy's certificate is NOT verified; log in again without it"
            );
        }
        let domain =
            profile.as_ref().map(|p| p.routing_domain.clone()).unwrap_or_else(|| naming::routing_domain(&proxy.host));
        let cluster = profile.as_ref().map(|p| p.cluster.clone()).unwrap_or_else(|| proxy.host.clone());
        let identity_path = Some(id_path);
        Ok(Context {
            proxy,
            identity,
            trust: Trust { ca, lb_ca, system: false, insecure },
            domain,
            cluster,
            profile,
            identity_path,
        })
    }

    /// The SNI of the proxy itself (the web API).
    pub fn web_sni(&self) -> String {
        self.domain.clone()
    }
}
