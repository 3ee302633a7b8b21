//! `oneport proxy ssh` (an OpenSSH ProxyCommand: stdin/stdout relayed to a node over
//! `teleport-proxy-ssh`) and `oneport config ssh` (the `ssh_config` block for it).
//! What to reach and what to print is computed in [`crate::tools::ssh`].

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use tracing::debug;

use crate::cli::Global;
use crate::client::context::Context;
use crate::client::dial::{Dialer, Target};
use crate::client::local;
use crate::client::webapi;
use crate::net::stdio::Stdio;
use crate::proto::naming::{self, Kind, Protocol, ResourceRef};
use crate::tools::ssh::{self, ConfigSpec, Shell, SshTarget};

/// Arguments of `proxy ssh`.
#[derive(Debug, Clone, Args)]
pub struct ProxySshArgs {
    /// The cluster whose suffix is stripped from the host (`web1.CLUSTER` → node
    /// `web1`). Default: the cluster of the login profile.
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// `[USER@]HOST[:PORT]` as OpenSSH passes it (`%r@%h:%p`). HOST is a node name
    /// or `NODE.CLUSTER`; a PORT other than 22 asks for that port on the node, which
    /// the proxy allows only if the node's `addr` or `targets` in its config do.
    #[arg(value_name = "[USER@]HOST[:PORT]")]
    pub target: String,
}

/// Runs `proxy ssh`: exits 0 when the node closes the session.
///
/// # Errors
/// When the node is unknown or denied (the proxy's own sentence), or the
/// connection fails.
pub async fn proxy(g: &Global, a: ProxySshArgs) -> anyhow::Result<u8> {
    let target = SshTarget::parse(&a.target).map_err(anyhow::Error::msg)?;
    let ctx = Context::resolve(&g.overrides())?;
    let dialer = Dialer::new(ctx);
    let name = node_name(&dialer, &target.host, a.cluster).await?;
    let port = target.requested_port();
    debug!(node = %name, port = ?port, user = ?target.user, "proxy ssh");
    // Ask first, so an unknown node or a denied user gets the proxy's sentence
    // rather than a TLS alert; a refusal after this is explained the same way.
    let res = ResourceRef::new(Kind::Node, name.clone()).at(port);
    webapi::require(&dialer, &res).await?;
    let dial_target = Target {
        sni: naming::node_sni(&name, port, &dialer.context().domain),
        alpn: Protocol::ProxySsh.client_offer(),
    };
    let mut stdio = Stdio::process().context("starting the stdin reader")?;
    local::tunnel(&dialer, &dial_target, &res, &mut stdio).await?;
    Ok(0)
}

/// The node `host` names. The cluster suffix to strip comes from `--cluster`, else
/// the login profile; without either (not logged in), the proxy is asked for its
/// cluster name, but only when the host does not name a node as it is.
async fn node_name(dialer: &Dialer, host: &str, cluster: Option<String>) -> anyhow::Result<String> {
    let ctx = dialer.context();
    let cluster = match cluster.or_else(|| ctx.profile.as_ref().map(|p| p.cluster.clone())) {
        Some(c) => c,
        None if host.contains('.') => webapi::ping(dialer).await?.cluster_name,
        None => ctx.cluster.clone(),
    };
    ssh::node_name(host, &cluster).map_err(anyhow::Error::msg)
}

/// Runs `config ssh`: prints the block on stdout.
///
/// # Errors
/// When no proxy or identity is known, the proxy cannot be asked for its cluster
/// name (not logged in), or a path cannot be written into ssh_config.
pub async fn config(g: &Global) -> anyhow::Result<u8> {
    let over = g.overrides();
    let ctx = Context::resolve(&over)?;
    let cluster = match &ctx.profile {
        Some(p) => p.cluster.clone(),
        None => {
            let dialer = Dialer::new(ctx.clone());
            webapi::ping(&dialer)
                .await
                .with_context(|| format!("asking {} for its cluster name", ctx.proxy))?
                .cluster_name
        }
    };
    let program = std::env::current_exe().context("finding the path of this oneport binary")?;
    let identity = over.identity.as_deref().map(absolute).transpose()?;
    let ca = over.ca.as_deref().map(absolute).transpose()?;
    // Only worth saying when the block relies on the login stored there.
    let home = std::env::var_os("ONEPORT_HOME").filter(|h| !h.is_empty() && ctx.profile.is_some()).map(PathBuf::from);
    let home = home.as_deref().map(absolute).transpose()?;
    let proxy = ctx.proxy.to_string();
    let spec = ConfigSpec {
        cluster: &cluster,
        proxy: &proxy,
        proxy_host: &ctx.proxy.host,
        program: &program,
        identity: identity.as_deref(),
        ca: ca.as_deref(),
        insecure: over.insecure,
        home: home.as_deref(),
    };
    print!("{}", ssh::render_config(&spec, Shell::native()).map_err(anyhow::Error::msg)?);
    Ok(0)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("making {} absolute", p.display()))
}
