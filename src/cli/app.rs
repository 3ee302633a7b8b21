//! `oneport proxy app`.

use std::net::IpAddr;
use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::cli::Global;
use crate::client::context::Context;
use crate::client::dial::Dialer;
use crate::client::local;
use crate::client::session::Session;
use crate::client::webapi;
use crate::net::meter::Meter;
use crate::net::tasks::Tasks;
use crate::proto::naming::{AppKind, Kind, Protocol, ResourceRef};

/// Arguments of `proxy app`.
#[derive(Debug, Clone, Args)]
pub struct ProxyAppArgs {
    /// The app's name, as `oneport ls` shows it.
    pub name: String,
    /// Local port (default: a free one, printed).
    #[arg(long, short)]
    pub port: Option<u16>,
    /// Local address to listen on. Anything but loopback exposes the app to the
    /// network with your identity.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_addr: IpAddr,
    /// Display and shutdown.
    #[command(flatten)]
    pub run: crate::cli::live::RunArgs,
}

/// What kind of app, from the server's answer.
pub fn protocol_for(server_protocol: Option<&str>) -> Protocol {
    server_protocol.and_then(|p| p.parse::<AppKind>().ok()).unwrap_or(AppKind::Http).protocol()
}

/// Runs `proxy app`.
///
/// # Errors
/// When the app is unknown or denied, or the port cannot be bound.
pub async fn run(g: &Global, a: ProxyAppArgs) -> anyhow::Result<u8> {
    let ctx = Context::resolve(&g.overrides())?;
    let dialer = Arc::new(Dialer::new(ctx));
    let info = webapi::require(&dialer, &ResourceRef::new(Kind::App, a.name.clone())).await?;
    let protocol = protocol_for(info.protocol.as_deref());
    let shutdown = CancellationToken::new();
    let (meter, tasks) = (Meter::new(false), Tasks::quiet());
    let live = crate::cli::live::start(&a.run, dialer.clone(), meter.clone(), tasks.clone(), shutdown.clone());
    let listener = local::bind(Some(a.bind_addr), a.port).await?;
    let local = listener.local_addr()?;
    if !a.bind_addr.is_loopback() {
        crate::cli::tell!("WARNING: listening on {local}: anyone who can reach it uses app {} as you.", a.name);
    }
    // On every address (0.0.0.0, ::): this machine reaches it on loopback.
    let reach = if local.ip().is_unspecified() {
        let lo: std::net::IpAddr =
            if local.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
        std::net::SocketAddr::new(lo, local.port())
    } else {
        local
    };
    if protocol == Protocol::Http1 {
        crate::cli::say!(
            "Listening on http://{local}/ for HTTP app {:?} (through proxy {})",
            a.name,
            dialer.context().proxy
        );
        crate::cli::say!("  try: curl http://{reach}/");
    } else {
        crate::cli::say!("Listening on {local} for TCP app {:?} (through proxy {})", a.name, dialer.context().proxy);
        crate::cli::say!("  connect your client to {reach}");
    }
    crate::cli::say!("Press Ctrl-C to stop.");
    crate::cli::login::spawn_renewal(&dialer, shutdown.clone());
    // TCP and HTTP apps keep a multiplexed session warm (docs/protocol.md §13):
    // each local connection is a stream on it (`teleport-tcp-mux`, `teleport-http-mux`).
    let session = Session::new(dialer, Kind::App, &a.name, protocol);
    session.warm_in_background();
    crate::cli::live::watch_session(&session);
    let handler = if protocol == Protocol::Http1 {
        // Refuses requests that name a domain: DNS rebinding from a browser page.
        local::http_tunnel_handler(session, local.port())
    } else {
        local::tunnel_handler(session)
    };
    local::serve_in(listener, handler, &tasks, &meter, shutdown, a.run.drain_timeout).await?;
    live.finish();
    Ok(0)
}
