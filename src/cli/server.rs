//! `oneport server init | issue | start | recordings`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::server::{self, recording, setup};
use crate::util::addr::HostPort;

/// The client options (`--proxy`, `--identity`, `--ca`, `--insecure`) under a
/// server-side command: hidden from its help, and an error when given, since the
/// server reads its own files and never dials a proxy. (Their environment variables
/// stay ignored, so a shell set up for the client can still start a server.)
pub fn refuse_client_options(cmd: clap::Command) -> clap::Command {
    fn refused(flag: &'static str) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
        move |_| {
            Err(format!(
                "--{flag} is a client option; server-side commands do not use it (the server's own files are \
                 named in server.yaml or by --dir): remove it"
            ))
        }
    }
    fn insecure(v: &str) -> Result<bool, String> {
        match v {
            "false" => Ok(false),
            _ => Err("--insecure is a client option; the server always verifies client certificates: remove it".into()),
        }
    }
    let mut cmd = cmd;
    for (flag, value) in [("proxy", "HOST:PORT"), ("identity", "FILE"), ("ca", "FILE")] {
        cmd = cmd
            .arg(clap::Arg::new(flag).long(flag).global(true).hide(true).value_name(value).value_parser(refused(flag)));
    }
    cmd.arg(
        clap::Arg::new("insecure")
            .long("insecure")
            .global(true)
            .hide(true)
            .action(clap::ArgAction::SetTrue)
            .value_parser(insecure),
    )
}

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
    /// List and play recorded `kubectl exec`/`attach` sessions.
    #[command(subcommand)]
    Recordings(RecordingsCommand),
}

/// `oneport server recordings ...`
#[derive(Debug, Subcommand)]
pub enum RecordingsCommand {
    /// List the recordings of every kube cluster's recording directory: session id,
    /// start (UTC), duration, size, who, where and what.
    ///
    /// Example: oneport server recordings ls --config /etc/oneport/server.yaml
    Ls(LsArgs),
    /// Play a recording in the terminal (output only, as the user saw it).
    ///
    /// Example: oneport server recordings play 3f2a --speed 4
    Play(PlayArgs),
}

/// Which recordings: the directories a config names.
#[derive(Debug, Args)]
pub struct RecordingsWhere {
    /// The server config whose kube `recording.dir` entries are read.
    #[arg(long, default_value = "server.yaml")]
    pub config: PathBuf,
    /// Only this kube cluster's directory.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

/// Arguments of `server recordings ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    #[allow(missing_docs)] // a doc comment here would become clap help text
    #[command(flatten)]
    pub at: RecordingsWhere,
}

/// Arguments of `server recordings play`.
#[derive(Debug, Args)]
pub struct PlayArgs {
    /// The session id (a unique prefix is enough) or the file name.
    pub id: String,
    /// Playback speed: 1 is as recorded, 2 twice as fast (pauses are capped at 5 s).
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Print everything at once, without pauses.
    #[arg(long, conflicts_with = "speed")]
    pub no_wait: bool,
    #[allow(missing_docs)] // a doc comment here would become clap help text
    #[command(flatten)]
    pub at: RecordingsWhere,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1000.0 => Ok(v),
        _ => Err(format!("{s:?} is not a speed between 0 and 1000 (e.g. 0.5, 1, 4)")),
    }
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
    /// Validity, e.g. 12h, 7d (above 7d you get a warning).
    #[arg(long, default_value = "12h", value_parser = crate::util::duration::parse_lifetime)]
    pub ttl: std::time::Duration,
    /// Where to write the identity file.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
}

/// Above this an issued identity gets a warning: a leaked file works that long.
const LONG_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 86400);

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
    #[arg(long, default_value = "12h", value_parser = crate::util::duration::parse_lifetime)]
    pub ttl: std::time::Duration,
    /// How long after enrollment the identity may be renewed, e.g. 30d.
    #[arg(long, default_value = "7d", value_parser = crate::util::duration::parse_lifetime)]
    pub renewable_for: std::time::Duration,
    /// How long the token may be used, e.g. 1h.
    #[arg(long, default_value = "1h", value_parser = crate::util::duration::parse_lifetime)]
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
            let warning = server::config::loopback_listen_warning(&o.listen, &o.public_addr.to_string());
            let cfg = setup::init(&a.dir, &o)?;
            if let Some(w) = warning {
                crate::cli::tell!("warning: {w}");
            }
            crate::cli::say!("Wrote CA, server certificate and {}.", cfg.display());
            crate::cli::say!("Next: add resources to it, then");
            crate::cli::say!("  oneport server start --config {}", cfg.display());
            crate::cli::say!("  oneport server invite --dir {} --user alice --group dev", a.dir.display());
            Ok(0)
        }
        ServerCommand::Issue(a) => {
            if a.out.exists() && !a.force {
                anyhow::bail!(
                    "{} exists: not overwriting it (pass --force to replace it, or choose another --out)",
                    a.out.display()
                );
            }
            if a.ttl > LONG_TTL {
                crate::cli::tell!(
                    "warning: --ttl {}: this file works for that long if it leaks, until you run `oneport server \
                     revoke`. Prefer short certificates that renew: `oneport server invite --ttl 12h --renewable-for 30d`.",
                    crate::util::duration::format(a.ttl)
                );
            }
            setup::issue(&a.dir, &a.user, &a.groups, a.ttl, &a.out)?;
            // Recorded so it can be listed and revoked; the file is already written.
            let cfg = load_dir(&a.dir)?;
            let store = server::auth::open_store(&cfg)?;
            let pem = String::from_utf8_lossy(&crate::util::fsutil::read(&a.out)?).into_owned();
            server::auth::record_cert(store.as_ref(), &pem)
                .await
                .map_err(|e| anyhow::anyhow!("{e}; {} was written but cannot be revoked by user", a.out.display()))?;
            let groups = if a.groups.is_empty() { String::new() } else { format!(" in {}", a.groups.join(", ")) };
            crate::cli::say!(
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
            if let Some(w) = server::config::loopback_listen_warning(&cfg.listen, &cfg.public_addr) {
                tracing::warn!("{}: {w}", a.config.display());
            }
            let shutdown = CancellationToken::new();
            crate::cli::cancel_on_signal(shutdown.clone());
            let srv = server::Server::new(cfg.clone())?;
            let listener = server::bind(&cfg).await?;
            server::run_with_reload(listener, srv, shutdown, Some(a.config.clone())).await?;
            Ok(0)
        }
        ServerCommand::Recordings(RecordingsCommand::Ls(a)) => {
            let mut rows = Vec::new();
            for dir in recording_dirs(&a.at)? {
                if !dir.exists() {
                    continue;
                }
                for r in recording::dir::list(&dir).map_err(anyhow::Error::msg)? {
                    match r {
                        Ok(l) => rows.push(l),
                        Err(e) => crate::cli::tell!("warning: {e}"),
                    }
                }
            }
            rows.sort_by(|a, b| a.path.file_name().cmp(&b.path.file_name()));
            if rows.is_empty() {
                crate::cli::say!("No recordings.");
                return Ok(0);
            }
            crate::cli::say!(
                "{:<36}  {:<20}  {:>9}  {:>9}  {:<10}  {:<10}  {:<24}  COMMAND",
                "SESSION",
                "START (UTC)",
                "DURATION",
                "SIZE",
                "USER",
                "CLUSTER",
                "POD"
            );
            for l in rows {
                let m = &l.header.meta;
                let start = crate::util::utc::format(l.header.timestamp, "-", " ", ":")
                    .unwrap_or_else(|| l.header.timestamp.to_string());
                let what = if m.command.is_empty() {
                    m.kind.clone()
                } else {
                    m.command.iter().map(|c| crate::tools::process::shell_quote(c)).collect::<Vec<_>>().join(" ")
                };
                crate::cli::say!(
                    "{:<36}  {:<20}  {:>9}  {:>9}  {:<10}  {:<10}  {:<24}  {what}",
                    m.session_id,
                    start,
                    format!("{:.1}s", l.duration),
                    human_size(l.size),
                    m.user,
                    m.cluster,
                    format!("{}/{}", m.namespace, m.pod),
                );
            }
            Ok(0)
        }
        ServerCommand::Recordings(RecordingsCommand::Play(a)) => {
            let mut found = Vec::new();
            let mut last_err = None;
            for dir in recording_dirs(&a.at)? {
                match recording::dir::find(&dir, &a.id) {
                    Ok(p) => found.push(p),
                    Err(e) => last_err = Some(e),
                }
            }
            let path = match (found.len(), last_err) {
                (1, _) => found.remove(0),
                (0, Some(e)) => anyhow::bail!(e),
                (0, None) => anyhow::bail!("no recording {:?}", a.id),
                (n, _) => {
                    anyhow::bail!("{:?} matches recordings in {n} directories: give more of the session id", a.id)
                }
            };
            let speed = (!a.no_wait).then_some(a.speed);
            let stdout = std::io::stdout();
            recording::play::play(&path, speed, &mut stdout.lock()).await.map_err(anyhow::Error::msg)?;
            Ok(0)
        }
    }
}

/// The distinct recording directories of the config's kube clusters.
fn recording_dirs(at: &RecordingsWhere) -> anyhow::Result<Vec<PathBuf>> {
    let cfg = server::Config::load(&at.config)?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for k in &cfg.kube {
        if at.cluster.as_ref().is_some_and(|c| *c != k.name) {
            continue;
        }
        if let Some(d) = &k.recording.dir {
            if !dirs.contains(d) {
                dirs.push(d.clone());
            }
        }
    }
    if let Some(c) = &at.cluster {
        if !cfg.kube.iter().any(|k| k.name == *c) {
            anyhow::bail!("{}: no kube cluster {c:?}", at.config.display());
        }
    }
    if dirs.is_empty() {
        anyhow::bail!("{}: no kube cluster has a recording `dir`", at.config.display());
    }
    Ok(dirs)
}

/// `1.5 MiB`.
fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
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
    crate::cli::say!(
        "Invite for {}{groups}: certificates valid {}, renewable for {}; the token works once, within {}.",
        a.user,
        fmt(a.ttl),
        fmt(a.renewable_for),
        fmt(a.expires_in)
    );
    crate::cli::say!("Run on the user's machine:");
    crate::cli::say!("  oneport login --proxy {proxy} --token {token}");
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
        crate::cli::say!("Revoked {} for {} ({}).", r.serial, r.user, r.reason);
    }
    crate::cli::say!("Running servers refuse them within {}.", crate::util::duration::format(cfg.state_refresh));
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
    crate::cli::say!("{:<32}  {:<16} {:<20} {:<20} {:<20} REVOKED", "SERIAL", "USER", "GROUPS", "ISSUED", "EXPIRES");
    for r in issued {
        let rev =
            revoked.get(&r.serial).map(|x| format!("{} ({})", when(x.at), x.reason)).unwrap_or_else(|| "-".into());
        let groups = if r.groups.is_empty() { "-".to_string() } else { r.groups.join(",") };
        crate::cli::say!(
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
