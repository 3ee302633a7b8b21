//! `oneport kube login | credentials`, `oneport proxy kube`, and `oneport kubectl`
//! (the system kubectl with a throwaway kubeconfig, direct or through `proxy kube`).

use crate::tools::process::{self, exit_code, shell_quote, Signals};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_yaml_ng::{Mapping, Value};
use tokio_util::sync::CancellationToken;

use crate::cli::Global;
use crate::client::context::Context;
use crate::client::dial::Dialer;
use crate::client::local::kube::KubeProxy;
use crate::client::webapi;
use crate::proto::naming::{self, Kind, ResourceRef};
use crate::tools::kube::kubeconfig::{self, Chain, Files, Login, Stanza};
use crate::tools::kube::{credentials, entry_name};

/// `oneport kube ...`
#[derive(Debug, Subcommand)]
pub enum KubeCommand {
    /// Add (or update) a kube cluster in the kubeconfig kubectl uses and switch to it;
    /// kubectl then reaches the cluster through the proxy, routed by SNI.
    ///
    /// Writes a cluster, a user and a context named CLUSTER-NAME (CLUSTER is the
    /// proxy's cluster name) into the file kubectl would write (--kubeconfig, else
    /// KUBECONFIG, else ~/.kube/config), leaving every other entry alone. The user
    /// entry runs `oneport kube credentials` for kubectl, so the private key stays
    /// in the identity file.
    ///
    /// Example: oneport kube login dev, then kubectl get pods
    Login(KubeLoginArgs),
    /// Print the ExecCredential (client certificate, key, expiry) kubectl's exec
    /// plugin reads. `kube login` configures kubectl to run it; no network is used.
    ///
    /// Example: oneport kube credentials dev
    Credentials(KubeCredentialsArgs),
}

/// Arguments of `kube login`.
#[derive(Debug, Clone, Args)]
pub struct KubeLoginArgs {
    /// The kube cluster, as `oneport ls` shows it.
    pub name: String,
    /// Name the context T instead of CLUSTER-NAME.
    #[arg(long, value_name = "T")]
    pub set_context_name: Option<String>,
    /// Add the context without making it kubectl's current context.
    #[arg(long)]
    pub no_switch: bool,
    /// Write this kubeconfig instead of the one kubectl would pick.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Arguments of `kube credentials`.
#[derive(Debug, Clone, Args)]
pub struct KubeCredentialsArgs {
    /// The kube cluster the credential is for (named in messages; every cluster of
    /// a proxy takes the same identity).
    pub name: Option<String>,
}

/// Arguments of `proxy kube`.
#[derive(Debug, Clone, Args)]
pub struct ProxyKubeArgs {
    /// Kube clusters to serve, each as a context of the printed kubeconfig (default:
    /// every cluster you may use; the first is the current context).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Local port (default: a free one, printed).
    #[arg(long, short)]
    pub port: Option<u16>,
    /// Local address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_addr: IpAddr,
    /// Run CMD (default: $SHELL) with KUBECONFIG set, stop when it exits and pass
    /// its exit code on. Give CMD with `=`: --exec='kubectl get pods'.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "", value_name = "CMD")]
    pub exec: Option<String>,
    /// Display and shutdown (without --exec).
    #[command(flatten)]
    pub run: crate::cli::live::RunArgs,
}

/// Arguments of `oneport kubectl`.
#[derive(Debug, Clone, Args)]
pub struct KubectlArgs {
    /// The kube cluster (default: the one of kubectl's current context when `kube
    /// login` wrote it, else the only one the proxy offers you).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Arguments for kubectl (its own -v, -h and --cluster after `--`).
    #[arg(value_name = "KUBECTL ARGS", num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub args: Vec<String>,
}

/// `oneport kubectl`: the system kubectl with a throwaway kubeconfig for one
/// cluster, straight to the proxy when it can be reached directly, else through a
/// local `proxy kube` for the length of the run. Nothing of ours goes to stdout.
///
/// # Errors
/// When kubectl is not installed, the cluster is unknown, denied or not named when
/// there are several, or the kubeconfig cannot be written.
pub async fn kubectl(g: &Global, a: KubectlArgs) -> anyhow::Result<u8> {
    let program = process::find_program("kubectl").ok_or_else(|| {
        anyhow::anyhow!(
            "kubectl is not on PATH: install it (your distribution's kubectl package, or the Kubernetes \
             release binary), or use `oneport proxy kube` with another client"
        )
    })?;
    let ctx = Context::resolve(&g.overrides())?;
    let dialer = Arc::new(Dialer::new(ctx.clone()));
    let ping = webapi::ping(&dialer).await.with_context(|| format!("asking proxy {} about itself", ctx.proxy))?;
    let name = match a.cluster {
        Some(n) => {
            webapi::require(&dialer, &ResourceRef::new(Kind::Kube, n.clone())).await?;
            n
        }
        None => {
            let all: Vec<&str> =
                ping.resources.iter().filter(|r| r.kind == Kind::Kube).map(|r| r.name.as_str()).collect();
            // The cluster of kubectl's current context, when `kube login` named it.
            let current = Chain::locate(None)
                .and_then(|c| Files::load(&c))
                .ok()
                .and_then(|f| f.current_context())
                .and_then(|c| all.iter().find(|n| entry_name(&ping.cluster_name, n) == c).map(|n| n.to_string()));
            match (current, all.as_slice()) {
                (Some(c), _) => c,
                (None, [one]) => one.to_string(),
                (None, []) => {
                    anyhow::bail!("proxy {} offers no kube cluster to this identity (see `oneport ls`)", ctx.proxy)
                }
                (None, many) => anyhow::bail!(
                    "proxy {} offers several kube clusters ({}): say which with `oneport kubectl --cluster NAME ...`",
                    ctx.proxy,
                    many.join(", ")
                ),
            }
        }
    };
    let mut command = tokio::process::Command::new(program);
    command.args(&a.args);
    if dialer.upgrade_decision().await?.required {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let proxy =
            KubeProxy::start(dialer.clone(), &ping.cluster_name, std::slice::from_ref(&name), loopback, None).await?;
        command.env("KUBECONFIG", proxy.kubeconfig());
        let shutdown = CancellationToken::new();
        let tasks = proxy.tasks().clone();
        // Bare spawn: awaited below.
        let server = tokio::spawn(proxy.serve(shutdown.clone(), std::time::Duration::ZERO));
        let status = process::run(command, "kubectl", Signals::SecondKills).await;
        // kubectl has exited: what it kept open (keep-alive) is closed now, quietly.
        tasks.force_close();
        shutdown.cancel();
        server.await.context("the local proxy task failed")??;
        return Ok(exit_code(status?));
    }
    // Direct: the entries `kube login` would write, in a private file of their own.
    let dir = crate::util::fsutil::private_temp_dir("oneport-kubectl-")?;
    let path = dir.path().join("kubeconfig");
    let entry = entry_name(&ping.cluster_name, &name);
    let stanzas = Login {
        cluster: Stanza { name: entry.clone(), body: cluster_body(&ctx, &name), owned: kubeconfig::CLUSTER_KEYS },
        user: Stanza { name: entry.clone(), body: user_body(g, &ctx, &name)?, owned: kubeconfig::USER_KEYS },
        context: Stanza { name: entry.clone(), body: context_body(&entry), owned: kubeconfig::CONTEXT_KEYS },
    };
    let chain = Chain::resolve(Some(&path), None, None)?;
    let plan = kubeconfig::plan(&chain, &Files::load(&chain)?, &stanzas, true);
    kubeconfig::write(&plan)?;
    command.env("KUBECONFIG", &path);
    let status = process::run(command, "kubectl", Signals::SecondKills).await?;
    drop(dir);
    Ok(exit_code(status))
}

/// Runs a `kube` subcommand.
///
/// # Errors
/// As the subcommand.
pub async fn run(g: &Global, cmd: KubeCommand) -> anyhow::Result<u8> {
    match cmd {
        KubeCommand::Login(a) => login(g, a).await,
        KubeCommand::Credentials(a) => print_credentials(g, a),
    }
}

/// `kube login`.
///
/// # Errors
/// When the kubeconfig does not parse, the cluster is unknown or denied, a load
/// balancer stands in the way, or a file cannot be written.
pub async fn login(g: &Global, a: KubeLoginArgs) -> anyhow::Result<u8> {
    let over = g.overrides();
    let ctx = Context::resolve(&over)?;
    let dialer = Dialer::new(ctx.clone());
    // The login profile's cached answer, else the override variable, else a probe.
    let u = dialer.upgrade_decision().await?;
    if u.required {
        anyhow::bail!(
            "kubectl cannot reach proxy {} directly: a layer 7 load balancer is in front ({}), and kubectl cannot \
             tunnel through it.\nUse the local proxy instead:\n  oneport proxy kube {} --exec\nor run \
             `oneport proxy kube {}` and paste the `export KUBECONFIG=...` line it prints into your shell.",
            ctx.proxy,
            u.reason,
            a.name,
            a.name
        );
    }
    if a.set_context_name.as_deref().is_some_and(|t| t.trim().is_empty()) {
        anyhow::bail!("--set-context-name needs a name");
    }
    // Every kubeconfig of the chain must parse before anything else happens.
    let chain = Chain::locate(a.kubeconfig.as_deref())?;
    let files = Files::load(&chain)?;
    let ping = webapi::ping(&dialer).await.with_context(|| format!("asking proxy {} about itself", ctx.proxy))?;
    webapi::require(&dialer, &ResourceRef::new(Kind::Kube, a.name.clone())).await?;
    let entry = entry_name(&ping.cluster_name, &a.name);
    let context_name = a.set_context_name.clone().unwrap_or_else(|| entry.clone());
    let stanzas = Login {
        cluster: Stanza { name: entry.clone(), body: cluster_body(&ctx, &a.name), owned: kubeconfig::CLUSTER_KEYS },
        user: Stanza { name: entry.clone(), body: user_body(g, &ctx, &a.name)?, owned: kubeconfig::USER_KEYS },
        context: Stanza { name: context_name.clone(), body: context_body(&entry), owned: kubeconfig::CONTEXT_KEYS },
    };
    let plan = kubeconfig::plan(&chain, &files, &stanzas, !a.no_switch);
    kubeconfig::write(&plan)?;
    record_entries(&ctx, &plan.written);
    // One request through the route, as kubectl's first would be: a cluster the
    // server cannot reach is said now, with the server's sentence.
    if let Err(why) = crate::client::local::kube::check_cluster(&dialer, &a.name).await {
        crate::cli::tell!(
            "WARNING: kube cluster {} does not answer through proxy {}: {why}\nThe kubeconfig entries are \
             written; kubectl fails the same way until the server reaches the API server.",
            a.name,
            ctx.proxy
        );
    }
    let user = ping.caller.as_ref().map(|c| c.user.clone()).unwrap_or_else(|| ctx.identity.caller.user.clone());
    crate::cli::say!(
        "Logged in to kube cluster {} through proxy {} as {user}: context {context_name} in {}.",
        a.name,
        ctx.proxy,
        plan.context_file.display()
    );
    match &plan.current_file {
        Some(f) => {
            crate::cli::say!("Current context is now {context_name} (set in {}). Try: kubectl version", f.display())
        }
        None => crate::cli::say!("Switch to it with: kubectl config use-context {context_name}"),
    }
    Ok(0)
}

/// Notes in the proxy's login profile which kubeconfig entries were written, so
/// `logout` removes exactly those. Without a stored profile for the proxy there is
/// nothing to log out of, so nothing is noted; a failure to save is a warning.
fn record_entries(ctx: &Context, written: &[kubeconfig::Written]) {
    let Some(ours) = ctx.profile.as_ref() else { return };
    let saved = crate::client::profile::Dirs::locate().and_then(|dirs| {
        // Re-read: the profile may have changed since this command started.
        let Some(mut p) = crate::client::profile::Profile::load_for(&dirs, &ours.host_port()?)? else { return Ok(()) };
        for w in written {
            if !p.kube_entries.contains(w) {
                p.kube_entries.push(w.clone());
            }
        }
        p.save(&dirs)
    });
    if let Err(e) = saved {
        tracing::warn!(
            "could not note the kubeconfig entries in the login profile (`logout` will not offer to remove them): {e}"
        );
    }
}

fn cluster_body(ctx: &Context, name: &str) -> Mapping {
    let mut c = Mapping::new();
    c.insert("server".into(), format!("https://{}", ctx.proxy).into());
    if ctx.trust.insecure {
        c.insert("insecure-skip-tls-verify".into(), true.into());
    } else {
        let pem: String = ctx.trust.ca.iter().map(|der| crate::identity::pki::pem_encode("CERTIFICATE", der)).collect();
        let data = base64::engine::general_purpose::STANDARD.encode(pem);
        c.insert("certificate-authority-data".into(), data.into());
    }
    c.insert("tls-server-name".into(), naming::resource_sni(Kind::Kube, name, &ctx.domain).into());
    c
}

/// The exec plugin runs this binary with the proxy pinned (so a later login to
/// another proxy cannot hand kubectl the wrong identity), plus the identity and CA
/// files the user named, and the same `ONEPORT_HOME`.
fn user_body(g: &Global, ctx: &Context, name: &str) -> anyhow::Result<Mapping> {
    let exe = std::env::current_exe().context("finding the oneport binary for kubectl's exec plugin")?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let mut args = vec!["--proxy".to_string(), ctx.proxy.to_string()];
    for (flag, path) in [("--identity", &g.identity), ("--ca", &g.ca)] {
        if let Some(p) = path {
            let abs = std::path::absolute(p).with_context(|| format!("{flag} {}", p.display()))?;
            args.extend([flag.to_string(), abs.to_string_lossy().into_owned()]);
        }
    }
    args.extend(["kube".to_string(), "credentials".to_string(), name.to_string()]);
    let env: Vec<(String, String)> = std::env::var_os("ONEPORT_HOME")
        .filter(|h| !h.is_empty())
        .map(|h| {
            let abs = std::path::absolute(Path::new(&h)).unwrap_or_else(|_| PathBuf::from(&h));
            vec![("ONEPORT_HOME".to_string(), abs.to_string_lossy().into_owned())]
        })
        .unwrap_or_default();
    Ok(credentials::exec_user(&exe, &args, &env))
}

fn context_body(entry: &str) -> Mapping {
    let mut c = Mapping::new();
    c.insert("cluster".into(), Value::String(entry.to_string()));
    c.insert("user".into(), Value::String(entry.to_string()));
    c
}

/// `kube credentials`.
///
/// # Errors
/// When there is no identity, or it has expired (kubectl shows this command's
/// stderr, so the sentence reaches the user).
pub fn print_credentials(g: &Global, a: KubeCredentialsArgs) -> anyhow::Result<u8> {
    let ctx = Context::resolve(&g.overrides()).map_err(|e| match &a.name {
        Some(n) => anyhow::Error::new(e).context(format!("credentials for kube cluster {n}")),
        None => e.into(),
    })?;
    crate::cli::say!("{}", credentials::exec_credential(&ctx.identity));
    Ok(0)
}

/// `proxy kube`.
///
/// # Errors
/// When a cluster is unknown or denied, there is none, or the port cannot be bound.
pub async fn proxy(g: &Global, a: ProxyKubeArgs) -> anyhow::Result<u8> {
    let ctx = Context::resolve(&g.overrides())?;
    let dialer = Arc::new(Dialer::new(ctx));
    let ping = webapi::ping(&dialer).await?;
    let names = if a.names.is_empty() {
        let all: Vec<String> = ping.resources.iter().filter(|r| r.kind == Kind::Kube).map(|r| r.name.clone()).collect();
        if all.is_empty() {
            anyhow::bail!(
                "proxy {} offers no kube cluster to this identity (see `oneport ls`)",
                dialer.context().proxy
            );
        }
        all
    } else {
        for n in &a.names {
            webapi::require(&dialer, &ResourceRef::new(Kind::Kube, n.clone())).await?;
        }
        a.names.clone()
    };
    let proxy = KubeProxy::start(dialer.clone(), &ping.cluster_name, &names, a.bind_addr, a.port).await?;
    // One kept-warm session per cluster (docs/protocol.md §13): kubectl's
    // connections are streams on it; the status line says which mode the proxy gave.
    let sessions = proxy.sessions();
    for s in &sessions {
        s.warm_in_background();
    }
    if let Some(first) = sessions.first() {
        crate::cli::live::watch_session(first);
    }
    let (addr, kubeconfig) = (proxy.addr(), proxy.kubeconfig().to_path_buf());
    if !a.bind_addr.is_loopback() {
        crate::cli::tell!(
            "WARNING: listening on {addr}: it still requires the throwaway kubeconfig's certificate, but the port is \
             reachable from the network."
        );
    }
    let contexts = proxy.contexts().join(", ");
    let banner = [
        format!(
            "# Kubernetes proxy on https://{addr} for kube cluster(s) {} (through proxy {})",
            names.join(", "),
            dialer.context().proxy
        ),
        format!("export KUBECONFIG={}", shell_quote(&kubeconfig.to_string_lossy())),
        format!("# Contexts: {contexts} (current: {}).", proxy.contexts()[0]),
    ];
    let shutdown = CancellationToken::new();
    crate::cli::login::spawn_renewal(&dialer, shutdown.clone());
    let Some(cmd) = a.exec else {
        for line in &banner {
            crate::cli::say!("{line}");
        }
        crate::cli::say!(
            "# Paste the export line into another shell. Ctrl-C stops the proxy and removes the kubeconfig."
        );
        let (meter, tasks) = (proxy.meter().clone(), proxy.tasks().clone());
        let live = crate::cli::live::start(&a.run, dialer.clone(), meter, tasks, shutdown.clone());
        proxy.serve(shutdown, a.run.drain_timeout).await?;
        live.finish();
        return Ok(0);
    };
    for line in &banner {
        crate::cli::tell!("{line}");
    }
    // Bare spawn: awaited below; the proxy drains its own connections.
    let server = tokio::spawn(proxy.serve(shutdown.clone(), a.run.drain_timeout));
    let code = run_with_kubeconfig(&cmd, &kubeconfig).await;
    shutdown.cancel();
    server.await.context("the local proxy task failed")??;
    code
}

/// Runs `cmd` (or `$SHELL`) with `KUBECONFIG` set; returns its exit code (128+N
/// for a signal). A first SIGINT/SIGTERM is left to the command (the terminal sent
/// it there too); a second one kills it.
async fn run_with_kubeconfig(cmd: &str, kubeconfig: &Path) -> anyhow::Result<u8> {
    let mut command = if cmd.is_empty() {
        let shell = std::env::var_os("SHELL").filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".into());
        tokio::process::Command::new(shell)
    } else {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(cmd);
        c
    };
    command.env("KUBECONFIG", kubeconfig);
    let status = process::run(command, &format!("{cmd:?}"), Signals::SecondKills).await?;
    Ok(exit_code(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/tmp/oneport-kube-x/kubeconfig"), "/tmp/oneport-kube-x/kubeconfig");
        assert_eq!(shell_quote("/tmp/a b/k"), "'/tmp/a b/k'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
