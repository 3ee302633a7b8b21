//! The command line: clap definitions (this file) and one module per command group
//! that turns arguments into library calls. clap types live only here.

/// Prints a line on stdout (above a running proxy's status line, if one is shown).
/// A closed or full-and-gone stdout (a pipe whose reader exited) is not fatal: the
/// error is ignored, never a panic like `println!`.
macro_rules! say {
    ($($arg:tt)*) => {{
        crate::cli::live::say(&format!($($arg)*));
    }};
}

/// As [`say!`], on stderr (above a running proxy's status line, if one is shown).
macro_rules! tell {
    ($($arg:tt)*) => {{
        crate::cli::live::tell(&format!($($arg)*));
    }};
}

pub(crate) use {say, tell};

pub mod app;
pub mod complete;
pub mod db;
pub mod demo;
pub mod docs;
pub mod doctor;
pub mod kube;
pub mod live;
pub mod login;
pub mod ls;
pub mod server;
pub mod ssh;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::context::Overrides;

/// SSH, databases, Kubernetes and internal apps through one TLS port.
#[derive(Debug, Parser)]
#[command(name = "oneport", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Start with `oneport demo` to see the whole path on loopback, or read `oneport help login`.")]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether logging shows warnings and errors only (unless `-v`): a proxy asked
    /// for `--quiet`, or one whose child owns the terminal (`db connect`,
    /// `proxy kube --exec`), where a normal run prints nothing of its own.
    pub fn quiet(&self) -> bool {
        match &self.command {
            Command::Proxy(ProxyCommand::App(a)) => a.run.quiet,
            Command::Proxy(ProxyCommand::Db(a)) => a.run.quiet,
            Command::Proxy(ProxyCommand::Kube(a)) => a.run.quiet || a.exec.is_some(),
            // A child owns the terminal: only warnings and errors of our own.
            Command::Db(db::DbCommand::Connect(_)) | Command::Kubectl(_) | Command::Ssh(_) => true,
            _ => false,
        }
    }
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The proxy, HOST:PORT (default port 3080). Uses that proxy's stored login
    /// profile, without making it the active one.
    #[arg(long, global = true, env = "ONEPORT_PROXY", value_name = "HOST:PORT")]
    pub proxy: Option<String>,
    /// Identity file from `oneport server issue`. Overrides the login profile.
    #[arg(long, global = true, env = "ONEPORT_IDENTITY", value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// An extra CA to trust for a load balancer in front of the proxy (a corporate
    /// CA, say), beside the system roots and the cluster CA. The proxy's own TLS
    /// trusts only the CA in the identity file (this CA when the file has none).
    #[arg(long, global = true, env = "ONEPORT_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Do not verify the proxy's certificate. Anyone on the path can then read and
    /// change the traffic; for throwaway test setups only.
    #[arg(long, global = true, env = "ONEPORT_INSECURE")]
    pub insecure: bool,
    /// More logging on stderr (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    /// The overrides for [`crate::client::context::Context::resolve`].
    pub fn overrides(&self) -> Overrides {
        Overrides {
            proxy: self.proxy.clone(),
            identity: self.identity.clone(),
            ca: self.ca.clone(),
            insecure: self.insecure,
        }
    }
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in: with an invite token (a key pair is made here and never leaves this
    /// machine), with an identity file, or renew the current identity.
    ///
    /// Examples: oneport login --proxy proxy.example.com:3080 --token op1.…;
    /// oneport login --proxy proxy.example.com:3080 --identity alice.pem;
    /// oneport login --renew
    Login(login::LoginArgs),
    /// Forget a login profile and its stored identity.
    ///
    /// Removes --proxy's profile, else the active one (--all: every one), and offers
    /// to remove the kubeconfig entries `kube login` wrote for it: asks on a
    /// terminal, removes them with --yes, else prints the kubectl commands that do.
    ///
    /// Example: oneport logout; oneport logout --all --yes
    Logout(login::LogoutArgs),
    /// Show what the next command will use, and the stored profiles.
    ///
    /// Proxy, user, groups, expiry and the upgrade decision, as the next command
    /// resolves them (--proxy and --identity count); then every stored profile,
    /// the active one marked *. Exit 1 when not logged in or expired.
    ///
    /// Example: oneport status; oneport status --format json
    Status(login::StatusArgs),
    /// List the resources the proxy offers to you, optionally of one kind.
    ///
    /// Examples: oneport ls; oneport ls db; oneport ls --format json
    Ls(ls::LsArgs),
    /// Local proxies for client tools.
    #[command(subcommand)]
    Proxy(ProxyCommand),
    /// Databases: run psql or mysql through the proxy.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Run the system ssh to a node through the proxy; ssh's exit code is ours.
    ///
    /// Examples: oneport ssh root@web1 'uptime'; oneport ssh -p 2222 -L 8080:localhost:80 root@web1.example;
    /// oneport ssh -- -v root@web1
    Ssh(ssh::SshArgs),
    /// Print configuration snippets for client tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Kubernetes: kubeconfig entries for kubectl, and its credentials.
    #[command(subcommand)]
    Kube(kube::KubeCommand),
    /// Run the system kubectl against a kube cluster through the proxy, with a
    /// throwaway kubeconfig (your own is not touched); kubectl's exit code is ours.
    ///
    /// Straight to the proxy when it can be reached directly, else through a local
    /// `proxy kube` for the run (load balancers). Example: oneport kubectl get pods -o json
    Kubectl(kube::KubectlArgs),
    /// Resource names for the shell completion scripts: `oneport __complete KIND`,
    /// parsed by [`parse`] and left out of help, man pages and completions.
    #[command(skip)]
    Complete(complete::CompleteArgs),
    /// Run and administer the routing server.
    #[command(subcommand)]
    Server(server::ServerCommand),
    /// Start a throwaway server, backend and local proxy on loopback and prove a
    /// round trip through them.
    Demo(demo::DemoArgs),
    /// Walk the path to the proxy layer by layer and say where it breaks.
    ///
    /// Example: oneport doctor --resource db/pg1
    Doctor(doctor::DoctorArgs),
}

/// `oneport proxy ...`
#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Serve an app on a loopback port: HTTP apps over http/1.1, TCP apps over
    /// teleport-tcp.
    ///
    /// Example: oneport proxy app grafana --port 8080, then open http://127.0.0.1:8080/
    App(app::ProxyAppArgs),
    /// Serve kube clusters to kubectl on a loopback HTTPS port, with a throwaway CA
    /// and kubeconfig; works through layer 7 load balancers, where `kube login`
    /// alone cannot.
    ///
    /// Example: oneport proxy kube dev --exec='kubectl get pods', or run
    /// `oneport proxy kube dev` and paste its `export KUBECONFIG=...` line
    Kube(kube::ProxyKubeArgs),
    /// Serve a database on a loopback port for GUI and CLI clients.
    ///
    /// Clients connect to 127.0.0.1 in plaintext; oneport carries their traffic to
    /// the proxy in mutual TLS (teleport-postgres, teleport-mysql, ...). Prints the
    /// connection settings to paste and a command line for the usual client.
    ///
    /// Example: oneport proxy db pg1 --port 15432 --db-user postgres, then point the
    /// client at 127.0.0.1:15432
    Db(db::ProxyDbArgs),
    /// Relay stdin/stdout to an SSH node: an OpenSSH ProxyCommand. Logs go to stderr;
    /// stdout carries nothing but SSH.
    ///
    /// Example: ssh -o "ProxyCommand oneport proxy ssh %r@%h:%p" root@web1
    ///
    /// or, with a port the node's targets allow: ssh -p 2222 -o "ProxyCommand ..." root@web1
    Ssh(ssh::ProxySshArgs),
}

/// `oneport config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print an ssh_config block that sends `ssh USER@NODE.<cluster>` through the
    /// proxy (for the login profile, or the --proxy/--identity given here).
    ///
    /// Example: oneport config ssh >> ~/.ssh/config, then: ssh root@web1.example
    Ssh(ssh::ConfigSshArgs),
}

/// The command line as documented: [`Cli`], with the client-only options refused
/// (and hidden) under `server` and `demo`.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
        .mut_subcommand("server", server::refuse_client_options)
        .mut_subcommand("demo", server::refuse_client_options)
}

/// [`command`] plus the hidden `__complete` the completion scripts run.
fn command_with_complete() -> clap::Command {
    use clap::Args as _;
    command().subcommand(complete::CompleteArgs::augment_args(clap::Command::new("__complete")).hide(true))
}

/// Parses the process's arguments with [`command`]; exits with clap's message (and
/// code 2) on bad ones.
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let mut matches = command_with_complete().get_matches();
    if let Some(("__complete", sub)) = matches.subcommand() {
        let args = complete::CompleteArgs::from_arg_matches(sub).unwrap_or_else(|e| e.exit());
        let global = Global::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        return Cli { global, command: Command::Complete(args) };
    }
    if let Some(sub @ ("server" | "demo")) = matches.subcommand_name() {
        for flag in ["proxy", "identity", "ca", "insecure"] {
            if matches.value_source(flag) == Some(clap::parser::ValueSource::CommandLine) {
                let msg = format!("--{flag} is a client option; `oneport {sub}` does not use it: remove it");
                command().error(clap::error::ErrorKind::ArgumentConflict, msg).exit();
            }
        }
    }
    Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit())
}

/// Runs a parsed command line; returns the process exit code.
///
/// # Errors
/// Any failure, to be printed once by `main`.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = cli.global;
    let server_side = matches!(cli.command, Command::Server(_) | Command::Demo(_));
    let completing = matches!(cli.command, Command::Complete(_));
    if g.insecure && !server_side && !completing {
        warn_insecure();
    }
    let uses_identity = !server_side
        && !completing
        && !matches!(cli.command, Command::Login(_) | Command::Logout(_) | Command::Status(_));
    if uses_identity {
        login::renew_if_due(&g).await;
    }
    match cli.command {
        Command::Login(a) => login::login(&g, a).await,
        Command::Logout(a) => login::logout(&g, a),
        Command::Status(a) => login::status(&g, a),
        Command::Ls(a) => ls::run(&g, a).await,
        Command::Proxy(ProxyCommand::App(a)) => app::run(&g, a).await,
        Command::Proxy(ProxyCommand::Db(a)) => db::proxy(&g, a).await,
        Command::Db(db::DbCommand::Connect(a)) => db::connect(&g, a).await,
        Command::Proxy(ProxyCommand::Ssh(a)) => ssh::proxy(&g, a).await,
        Command::Config(ConfigCommand::Ssh(a)) => ssh::config(&g, a).await,
        Command::Ssh(a) => ssh::ssh(&g, a).await,
        Command::Kubectl(a) => kube::kubectl(&g, a).await,
        Command::Complete(a) => complete::run(&g, a).await,
        Command::Proxy(ProxyCommand::Kube(a)) => kube::proxy(&g, a).await,
        Command::Kube(k) => kube::run(&g, k).await,
        Command::Server(s) => server::run(s).await,
        Command::Demo(d) => demo::run(d).await,
        Command::Doctor(d) => doctor::run(&g, d).await,
    }
}

/// Says loudly that verification is off.
pub fn warn_insecure() {
    tell!(
        "WARNING: --insecure: the proxy's certificate is NOT verified. Anyone on the network path can read and change this traffic."
    );
}

/// Waits for Ctrl-C / SIGTERM and cancels `token`.
pub fn cancel_on_signal(token: tokio_util::sync::CancellationToken) {
    // Registered before returning, so a signal right after start-up is not lost.
    let signalled = crate::util::shutdown::listen();
    // Bare spawn: waits for the signal for the life of the process.
    tokio::spawn(async move {
        signalled.await;
        token.cancel();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        super::command().debug_assert();
    }
}
