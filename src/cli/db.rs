//! `oneport proxy db` (a long-running local proxy for GUI and CLI clients) and
//! `oneport db connect` (a local proxy for exactly one run of psql or mysql).

use crate::tools::process::{self, exit_code, find_program, Signals};
use std::net::IpAddr;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::cli::Global;
use crate::client::context::Context;
use crate::client::dial::Dialer;
use crate::client::local;
use crate::client::webapi;
use crate::net::meter::Meter;
use crate::net::tasks::Tasks;
use crate::proto::naming::{Kind, ResourceRef};
use crate::tools::db::{self, ClientCommand, DbProtocol, Settings};

/// How long the proxy of `db connect` waits for open connections (a cancel request
/// in flight) once the client has exited.
const CONNECT_GRACE: Duration = Duration::from_secs(2);

/// Arguments of `proxy db`.
#[derive(Debug, Clone, Args)]
pub struct ProxyDbArgs {
    /// The database's name, as `oneport ls` shows it.
    pub name: String,
    /// Local port (default: a free one, printed). Give one to keep the same
    /// settings in a GUI client across restarts.
    #[arg(long, short)]
    pub port: Option<u16>,
    /// The database user to show in the connection settings (default: your
    /// oneport user).
    #[arg(long, value_name = "USER")]
    pub db_user: Option<String>,
    /// The database (schema) name to show in the connection settings.
    #[arg(long, value_name = "NAME")]
    pub db_name: Option<String>,
    /// The database's protocol: postgres, mysql, mongodb or redis. Normally the
    /// proxy says; with this flag the local proxy also starts when the proxy
    /// refuses the database for now (clients then see the refusal).
    #[arg(long, value_parser = parse_protocol)]
    pub protocol: Option<DbProtocol>,
    /// Local address to listen on. Anything but loopback lets others use the
    /// database as you.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_addr: IpAddr,
    /// Display and shutdown.
    #[command(flatten)]
    pub run: crate::cli::live::RunArgs,
}

/// `oneport db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Run psql or mysql against a database through a local proxy.
    ///
    /// The proxy listens on a free loopback port and stops when the client exits;
    /// the exit code is the client's. postgres databases get psql, mysql ones
    /// mariadb (or mysql). Arguments after `--` go to the client. Ctrl-C belongs
    /// to the client (psql cancels the running query).
    ///
    /// Example: oneport db connect pg1 --db-user postgres --db-name app -- -c 'select 1'
    Connect(ConnectArgs),
}

/// Arguments of `db connect`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// The database's name, as `oneport ls` shows it.
    pub name: String,
    /// The database user (default: your oneport user).
    #[arg(long, value_name = "USER")]
    pub db_user: Option<String>,
    /// The database (schema) name (default: the client's default).
    #[arg(long, value_name = "NAME")]
    pub db_name: Option<String>,
    /// Have the client ask for the database password (mariadb/mysql need this for
    /// an account with one; psql asks by itself when the server wants one).
    #[arg(short = 'p', long)]
    pub password: bool,
    /// Extra arguments for the client, after `--`.
    #[arg(last = true, value_name = "CLIENT ARGS")]
    pub client_args: Vec<String>,
}

fn parse_protocol(s: &str) -> Result<DbProtocol, String> {
    s.parse::<DbProtocol>().map_err(|e| e.to_string())
}

/// Runs `proxy db`.
///
/// # Errors
/// When the database is unknown or denied (without `--protocol`), or the port
/// cannot be bound.
pub async fn proxy(g: &Global, a: ProxyDbArgs) -> anyhow::Result<u8> {
    let ctx = Context::resolve(&g.overrides())?;
    let dialer = Arc::new(Dialer::new(ctx));
    let protocol = decide_protocol(&dialer, &a.name, a.protocol).await?;
    let shutdown = CancellationToken::new();
    let (meter, tasks) = (Meter::new(false), Tasks::quiet());
    let live = crate::cli::live::start(&a.run, dialer.clone(), meter.clone(), tasks.clone(), shutdown.clone());
    let listener = local::bind(Some(a.bind_addr), a.port).await?;
    let settings = Settings {
        protocol,
        addr: listener.local_addr()?,
        user: a.db_user.unwrap_or_else(|| dialer.context().identity.caller.user.clone()),
        database: a.db_name,
    };
    if !a.bind_addr.is_loopback() {
        crate::cli::tell!(
            "WARNING: listening on {}: anyone who can reach it uses database {} as you.",
            settings.addr,
            a.name
        );
    }
    print_settings(&settings, &a.name, &dialer, a.port.is_none());
    crate::cli::login::spawn_renewal(&dialer, shutdown.clone());
    let session = crate::client::session::Session::new(dialer, Kind::Db, &a.name, protocol.protocol());
    session.warm_in_background();
    crate::cli::live::watch_session(&session);
    let handler = crate::client::local::db::session_handler(session, protocol);
    local::serve_in(listener, handler, &tasks, &meter, shutdown, a.run.drain_timeout).await?;
    live.finish();
    Ok(0)
}

/// The protocol to speak: the server's answer; `--protocol` when the server cannot
/// be asked or refuses for now.
async fn decide_protocol(dialer: &Dialer, name: &str, flag: Option<DbProtocol>) -> anyhow::Result<DbProtocol> {
    match (webapi::require(dialer, &ResourceRef::new(Kind::Db, name)).await, flag) {
        (Ok(info), flag) => {
            let server = server_protocol(name, info.protocol.as_deref())?;
            if let Some(f) = flag.filter(|f| *f != server) {
                anyhow::bail!("database {name} speaks {}, not {} (drop --protocol)", server.as_str(), f.as_str());
            }
            Ok(server)
        }
        (Err(e), Some(p)) => {
            crate::cli::tell!("WARNING: {e}");
            crate::cli::tell!("Starting anyway (--protocol {}): clients get this error until it is fixed.", p.as_str());
            Ok(p)
        }
        (Err(e), None) => Err(e.into()),
    }
}

fn server_protocol(name: &str, p: Option<&str>) -> anyhow::Result<DbProtocol> {
    let p = p.with_context(|| format!("the proxy did not say which protocol database {name} speaks"))?;
    Ok(p.parse::<DbProtocol>()?)
}

fn print_settings(s: &Settings, name: &str, dialer: &Dialer, port_was_picked: bool) {
    // The first line carries the address: scripts and tests read it from there.
    crate::cli::say!(
        "Listening on {} for {} database {name:?} (through proxy {})",
        s.addr,
        s.protocol.as_str(),
        dialer.context().proxy
    );
    crate::cli::say!("Connection settings (plaintext on loopback; oneport encrypts the rest):");
    for line in s.lines() {
        crate::cli::say!("  {line}");
    }
    let cmd = db::suggested_command(s, &|p| find_program(p).is_some());
    crate::cli::say!("Or run:");
    crate::cli::say!("  {cmd}");
    if port_was_picked {
        crate::cli::say!("The port changes on every start; give --port to keep it.");
    }
    crate::cli::say!("Press Ctrl-C to stop.");
}

/// Runs `db connect`.
///
/// # Errors
/// When the database is unknown or denied (before the client starts), no client is
/// installed, or the client cannot be started.
pub async fn connect(g: &Global, a: ConnectArgs) -> anyhow::Result<u8> {
    let ctx = Context::resolve(&g.overrides())?;
    let dialer = Arc::new(Dialer::new(ctx));
    let info = webapi::require(&dialer, &ResourceRef::new(Kind::Db, a.name.clone())).await?;
    let protocol = server_protocol(&a.name, info.protocol.as_deref())?;
    let listener = local::bind(None, None).await?;
    let settings = Settings {
        protocol,
        addr: listener.local_addr()?,
        user: a.db_user.unwrap_or_else(|| dialer.context().identity.caller.user.clone()),
        database: a.db_name,
    };
    let mut client_args = a.client_args;
    if a.password {
        client_args.insert(0, db::PASSWORD_PROMPT.to_string());
    }
    let cmd = db::connect_command(&settings, &client_args, &|p| find_program(p).is_some())?;
    let shutdown = CancellationToken::new();
    let handler = crate::client::local::db::handler(dialer, protocol, &a.name);
    // Bare spawn: awaited below; the proxy drains its own connections.
    let proxy = tokio::spawn(local::serve(listener, handler, shutdown.clone(), CONNECT_GRACE));
    debug!(command = %cmd, "starting the client");
    let status = run_client(&cmd).await;
    shutdown.cancel();
    let _ = proxy.await;
    Ok(exit_code(status?))
}

/// Runs the client with the terminal passed through and waits for it; Ctrl-C is
/// the client's (psql cancels the running query through this proxy), SIGTERM ends
/// the client and then this process.
async fn run_client(cmd: &ClientCommand) -> anyhow::Result<ExitStatus> {
    let mut command = tokio::process::Command::new(&cmd.program);
    command.args(&cmd.args);
    Ok(process::run(command, &cmd.program, Signals::ChildTakesInterrupt).await?)
}
