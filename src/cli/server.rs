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
    /// Invite a user: prints a one-time token (it pins this cluster's CA) and the
    /// `oneport login` command to run on the user's machine, where the key pair is
    /// made. The server keeps only the token's hash.
    ///
    /// Example: oneport server invite --dir /etc/oneport --user alice --group dev --ttl 12h --renewable-for 30d
    Invite(InviteArgs),
    /// Revoke identities: every one issued to a user, or one serial. Running servers
    /// refuse them within seconds (`state_refresh`), at every connection and renewal.
    ///
    /// Example: oneport server revoke --dir /etc/oneport --user alice --reason "laptop stolen"
    Revoke(RevokeArgs),
    /// Identities issued by this cluster.
    #[command(subcommand)]
    Identities(IdentitiesCommand),
    /// Run the routing server until SIGINT/SIGTERM, then drain. SIGHUP reloads the
    /// config (established sessions keep going; a bad config is refused and logged).
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

/// Arguments of `server invite`.
#[derive(Debug, Args)]
pub struct InviteArgs {
    /// The server directory (its server.yaml names the state store).
    #[arg(long)]
    pub dir: PathBuf,
    /// The user (certificate CN).
    #[arg(long)]
    pub user: String,
    /// A group (certificate O), repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Validity of each certificate, e.g. 12h.
    #[arg(long, default_value = "12h", value_parser = crate::util::duration::parse)]
    pub ttl: std::time::Duration,
    /// How long after enrollment the identity may be renewed, e.g. 30d.
    #[arg(long, default_value = "7d", value_parser = crate::util::duration::parse)]
    pub renewable_for: std::time::Duration,
    /// How long the token may be used, e.g. 1h.
    #[arg(long, default_value = "1h", value_parser = crate::util::duration::parse)]
    pub expires_in: std::time::Duration,
    /// The proxy address to print in the login command (default: public_addr).
    #[arg(long, value_name = "HOST:PORT")]
    pub proxy: Option<String>,
}

/// Arguments of `server revoke`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["user", "serial"])))]
pub struct RevokeArgs {
    /// The server directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Revoke every identity issued to this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Revoke the identity with this serial (hex, as `identities ls` shows it).
    #[arg(long)]
    pub serial: Option<String>,
    /// Why; the user sees it.
    #[arg(long, default_value = "revoked by the operator")]
    pub reason: String,
}

/// `oneport server identities ...`
#[derive(Debug, Subcommand)]
pub enum IdentitiesCommand {
    /// List issued identities: serial, user, groups, issued, expires, revoked.
    ///
    /// Example: oneport server identities ls --dir /etc/oneport
    Ls(IdentitiesLsArgs),
}

/// Arguments of `server identities ls`.
#[derive(Debug, Args)]
pub struct IdentitiesLsArgs {
    /// The server directory.
    #[arg(long)]
    pub dir: PathBuf,
}

fn load_dir(dir: &std::path::Path) -> anyhow::Result<server::Config> {
    let path = dir.join(setup::files::CONFIG);
    Ok(server::Config::load(&path)?)
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
            println!("  oneport server start --config {}", cfg.display());
            println!("  oneport server invite --dir {} --user alice --group dev", a.dir.display());
            Ok(0)
        }
        ServerCommand::Issue(a) => {
            setup::issue(&a.dir, &a.user, &a.groups, a.ttl, &a.out)?;
            // Recorded so it can be listed and revoked; the file is already written.
            let cfg = load_dir(&a.dir)?;
            let store = server::auth::open_store(&cfg)?;
            let pem = String::from_utf8_lossy(&crate::util::fsutil::read(&a.out)?).into_owned();
            server::auth::record_cert(store.as_ref(), &pem)
                .await
                .map_err(|e| anyhow::anyhow!("{e}; {} was written but cannot be revoked by user", a.out.display()))?;
            let groups = if a.groups.is_empty() { String::new() } else { format!(" in {}", a.groups.join(", ")) };
            println!(
                "Wrote {} for {}{groups}, valid for {}.",
                a.out.display(),
                a.user,
                crate::util::duration::format(a.ttl)
            );
            Ok(0)
        }
        ServerCommand::Invite(a) => invite(a).await,
        ServerCommand::Revoke(a) => revoke(a).await,
        ServerCommand::Identities(IdentitiesCommand::Ls(a)) => identities_ls(a).await,
        ServerCommand::Start(a) => {
            let cfg = server::Config::load(&a.config)?;
            let shutdown = CancellationToken::new();
            crate::cli::cancel_on_signal(shutdown.clone());
            let srv = server::Server::new(cfg.clone())?;
            let listener = server::bind(&cfg).await?;
            server::run_with_reload(listener, srv, shutdown, Some(a.config.clone())).await?;
            Ok(0)
        }
    }
}

async fn invite(a: InviteArgs) -> anyhow::Result<u8> {
    let cfg = load_dir(&a.dir)?;
    let store = server::auth::open_store(&cfg)?;
    let ca = String::from_utf8_lossy(&crate::util::fsutil::read(&cfg.tls.client_ca)?).into_owned();
    let o = server::auth::InviteOptions {
        user: a.user.clone(),
        groups: a.groups.clone(),
        ttl: a.ttl,
        renewable_for: a.renewable_for,
        expires_in: a.expires_in,
    };
    let token = server::auth::invite(store.as_ref(), &ca, &o).await?;
    let proxy = a.proxy.unwrap_or_else(|| cfg.public_addr.clone());
    let groups = if a.groups.is_empty() { String::new() } else { format!(" (groups: {})", a.groups.join(", ")) };
    let fmt = crate::util::duration::format;
    println!(
        "Invite for {}{groups}: certificates valid {}, renewable for {}; the token works once, within {}.",
        a.user,
        fmt(a.ttl),
        fmt(a.renewable_for),
        fmt(a.expires_in)
    );
    println!("Run on the user's machine:");
    println!("  oneport login --proxy {proxy} --token {token}");
    Ok(0)
}

async fn revoke(a: RevokeArgs) -> anyhow::Result<u8> {
    let cfg = load_dir(&a.dir)?;
    let store = server::auth::open_store(&cfg)?;
    let sel = match (a.user, a.serial) {
        (Some(u), _) => server::store::Selector::User(u),
        (None, Some(s)) => server::store::Selector::Serial(s),
        (None, None) => anyhow::bail!("give --user NAME or --serial HEX"),
    };
    let done = server::auth::revoke(store.as_ref(), sel, &a.reason).await?;
    for r in &done {
        println!("Revoked {} for {} ({}).", r.serial, r.user, r.reason);
    }
    println!("Running servers refuse them within {}.", crate::util::duration::format(cfg.state_refresh));
    Ok(0)
}

async fn identities_ls(a: IdentitiesLsArgs) -> anyhow::Result<u8> {
    let cfg = load_dir(&a.dir)?;
    let store = server::auth::open_store(&cfg)?;
    store.migrate().await?;
    let issued = store.list_issued().await?;
    let revoked: std::collections::HashMap<String, server::store::Revocation> =
        store.revocations().await?.into_iter().map(|r| (r.serial.clone(), r)).collect();
    let when = server::auth::when;
    println!("{:<32}  {:<16} {:<20} {:<20} {:<20} REVOKED", "SERIAL", "USER", "GROUPS", "ISSUED", "EXPIRES");
    for r in issued {
        let rev =
            revoked.get(&r.serial).map(|x| format!("{} ({})", when(x.at), x.reason)).unwrap_or_else(|| "-".into());
        let groups = if r.groups.is_empty() { "-".to_string() } else { r.groups.join(",") };
        println!(
            "{:<32}  {:<16} {:<20} {:<20} {:<20} {rev}",
            r.serial,
            r.user,
            groups,
            when(r.issued),
            when(r.expires)
        );
    }
    Ok(0)
}
