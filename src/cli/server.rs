//! `oneport server init | issue | start`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::server::{self, setup};
use crate::util::addr::HostPort;

/// `oneport server ...`
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Make a CA, a server certificate for every routed name, and a commented
    /// server.yaml in DIR.
    ///
    /// Example: oneport server init --dir /etc/oneport --public-addr proxy.example.com:443
    Init(InitArgs),
    /// Issue an identity file (client certificate CN=user, O=groups, key and CA),
    /// written with mode 0600.
    ///
    /// Example: oneport server issue --dir /etc/oneport --user alice --group dev --ttl 12h --out alice.pem
    Issue(IssueArgs),
    /// Run the routing server until SIGINT/SIGTERM, then drain.
    ///
    /// Example: oneport server start --config /etc/oneport/server.yaml
    Start(StartArgs),
}

/// Arguments of `server init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory for the CA, certificates and config.
    #[arg(long)]
    pub dir: PathBuf,
    /// The address clients use, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub public_addr: HostPort,
    /// The address to listen on (default: 127.0.0.1 and the public port).
    #[arg(long)]
    pub listen: Option<String>,
    /// The cluster name (default: the public host).
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// Another DNS name or IP for the server certificate (repeatable).
    #[arg(long = "san", value_name = "NAME")]
    pub sans: Vec<String>,
    /// Replace an existing CA (invalidates every identity it issued).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `server issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The server directory holding the CA.
    #[arg(long)]
    pub dir: PathBuf,
    /// The user (certificate CN).
    #[arg(long)]
    pub user: String,
    /// A group (certificate O), repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Validity, e.g. 12h, 7d.
    #[arg(long, default_value = "12h", value_parser = crate::util::duration::parse)]
    pub ttl: std::time::Duration,
    /// Where to write the identity file.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `server start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The config file.
    #[arg(long, default_value = "server.yaml")]
    pub config: PathBuf,
}

/// Runs a server command.
///
/// # Errors
/// Setup or start-up failures.
pub async fn run(cmd: ServerCommand) -> anyhow::Result<u8> {
    match cmd {
        ServerCommand::Init(a) => {
            let listen = a.listen.unwrap_or_else(|| format!("127.0.0.1:{}", a.public_addr.port));
            let o = setup::InitOptions {
                public_addr: a.public_addr.clone(),
                cluster_name: a.cluster_name,
                listen,
                extra_names: a.sans,
                force: a.force,
            };
            let cfg = setup::init(&a.dir, &o)?;
            println!("Wrote CA, server certificate and {}.", cfg.display());
            println!("Next: add resources to it, then");
            println!("  oneport server issue --dir {} --user alice --group dev --out alice.pem", a.dir.display());
            println!("  oneport server start --config {}", cfg.display());
            Ok(0)
        }
        ServerCommand::Issue(a) => {
            setup::issue(&a.dir, &a.user, &a.groups, a.ttl, &a.out)?;
            let groups = if a.groups.is_empty() { String::new() } else { format!(" in {}", a.groups.join(", ")) };
            println!(
                "Wrote {} for {}{groups}, valid for {}.",
                a.out.display(),
                a.user,
                crate::util::duration::format(a.ttl)
            );
            Ok(0)
        }
        ServerCommand::Start(a) => {
            let cfg = server::Config::load(&a.config)?;
            let shutdown = CancellationToken::new();
            crate::cli::cancel_on_signal(shutdown.clone());
            let srv = server::Server::new(cfg.clone())?;
            let listener = server::bind(&cfg).await?;
            server::run(listener, srv, shutdown).await?;
            Ok(0)
        }
    }
}
