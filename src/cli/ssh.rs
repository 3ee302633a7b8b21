//! `oneport proxy ssh` (an OpenSSH ProxyCommand: stdin/stdout relayed to a node over
//! `teleport-proxy-ssh`), `oneport config ssh` (the `ssh_config` block for it) and
//! `oneport ssh` (the system ssh with that ProxyCommand).
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

/// Arguments of `config ssh`.
#[derive(Debug, Clone, Args)]
pub struct ConfigSshArgs {
    /// Also share one connection per node between ssh, scp and sftp runs
    /// (ControlMaster auto, a ControlPath in a private directory, ControlPersist 10m):
    /// one TLS connection through the proxy and one login, instead of one each run.
    #[arg(long)]
    pub control_master: bool,
}

/// Arguments of `oneport ssh`.
#[derive(Debug, Clone, Args)]
pub struct SshArgs {
    /// The cluster whose suffix `NODE.CLUSTER` may carry. Default: the cluster of
    /// the login profile.
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// What to pass to ssh: its options (-p, -l, -L, -t, -o ...; ssh's own -v and -V
    /// after `--`), then [USER@]NODE[.CLUSTER], then the command to run.
    #[arg(value_name = "SSH ARGS", required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub args: Vec<String>,
}

/// Runs the system `ssh` with `ARGS`, through the proxy (`-o ProxyCommand=...`, as
/// `config ssh` writes it); returns ssh's exit code (255 when ssh itself failed).
///
/// # Errors
/// When ssh is not installed or cannot be started, or the ProxyCommand cannot be
/// written (as for `config ssh`).
pub async fn ssh(g: &Global, a: SshArgs) -> anyhow::Result<u8> {
    let program = crate::tools::process::find_program("ssh").ok_or_else(|| {
        anyhow::anyhow!(
            "ssh (the OpenSSH client) is not on PATH: install it (apt install openssh-client), or give \
             another SSH client `oneport proxy ssh %r@%h:%p` as its ProxyCommand"
        )
    })?;
    let over = g.overrides();
    let ctx = Context::resolve(&over)?;
    let cluster = match a.cluster {
        Some(c) => c,
        None => cluster_of(&ctx).await?,
    };
    let me = std::env::current_exe().context("finding the path of this oneport binary")?;
    let identity = over.identity.as_deref().map(absolute).transpose()?;
    let ca = over.ca.as_deref().map(absolute).transpose()?;
    let proxy = ctx.proxy.to_string();
    let spec = ConfigSpec {
        cluster: &cluster,
        proxy: &proxy,
        proxy_host: &ctx.proxy.host,
        program: &me,
        identity: identity.as_deref(),
        ca: ca.as_deref(),
        insecure: over.insecure,
        home: None,
    };
    let command = ssh::proxy_command(&spec, Shell::native()).map_err(anyhow::Error::msg)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("-o").arg(format!("ProxyCommand={command}")).args(&a.args);
    debug!(?cmd, "oneport ssh");
    let status = crate::tools::process::run(cmd, "ssh", crate::tools::process::Signals::ChildTakesInterrupt).await?;
    Ok(crate::tools::process::exit_code(status))
}

/// The cluster of the login profile, else the proxy's answer.
async fn cluster_of(ctx: &Context) -> anyhow::Result<String> {
    Ok(match &ctx.profile {
        Some(p) => p.cluster.clone(),
        None => {
            let dialer = Dialer::new(ctx.clone());
            webapi::ping(&dialer)
                .await
                .with_context(|| format!("asking {} for its cluster name", ctx.proxy))?
                .cluster_name
        }
    })
}

/// Runs `config ssh`: prints the block on stdout.
///
/// # Errors
/// When no proxy or identity is known, the proxy cannot be asked for its cluster
/// name (not logged in), or a path cannot be written into ssh_config.
pub async fn config(g: &Global, a: ConfigSshArgs) -> anyhow::Result<u8> {
    let over = g.overrides();
    let ctx = Context::resolve(&over)?;
    let cluster = cluster_of(&ctx).await?;
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
    let control_path = match a.control_master {
        false => None,
        true => {
            let dir = crate::client::profile::Dirs::locate()?.data.join("ssh");
            crate::util::fsutil::create_private_dir(&dir)?;
            let dir = absolute(&dir)?;
            Some(ssh::control_path(&dir).map_err(anyhow::Error::msg)?)
        }
    };
    let block = ssh::render_config(&spec, Shell::native(), control_path.as_deref()).map_err(anyhow::Error::msg)?;
    crate::cli::say!("{}", block.trim_end());
    Ok(0)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("making {} absolute", p.display()))
}
