//! `oneport demo`: the whole path on loopback with nothing to set up. It makes a
//! throwaway CA and identity, starts a sample HTTP backend and the routing server,
//! checks the identity like `login` does, opens `proxy app` and proves one round
//! trip through it, then prints what to try next.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::client::context::{Context, Overrides};
use crate::client::dial::Dialer;
use crate::client::local;
use crate::client::webapi;
use crate::net::accept;
use crate::net::tasks::Tasks;
use crate::proto::naming::{Kind, Protocol};
use crate::server::{self, config, setup};
use crate::util::addr::HostPort;

/// The greeting of the sample backend.
pub const GREETING: &str = "hello from the oneport demo backend";

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Exit after the round trip instead of serving until Ctrl-C.
    #[arg(long)]
    pub once: bool,
}

/// Runs the demo.
///
/// # Errors
/// When any step fails; the message names the step.
pub async fn run(a: DemoArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("oneport-demo-").tempdir()?;
    let shutdown = CancellationToken::new();

    let loopback: std::net::SocketAddr = "127.0.0.1:0".parse()?;
    let backend = accept::bind(loopback)?;
    let backend_addr = backend.local_addr()?;
    // Bare spawns here and below: each is awaited before the demo returns.
    let backend_task = tokio::spawn(sample_backend(backend, shutdown.clone()));

    let listener = accept::bind(loopback)?;
    let public = HostPort::parse(&listener.local_addr()?.to_string()).map_err(anyhow::Error::msg)?;
    let init = setup::InitOptions {
        public_addr: public.clone(),
        cluster_name: Some("demo".into()),
        listen: public.to_string(),
        extra_names: vec![],
        force: false,
    };
    let cfg_path = setup::init(dir.path(), &init)?;
    let mut cfg = server::Config::load(&cfg_path)?;
    cfg.apps.push(config::App {
        name: "hello".into(),
        kind: config::AppKind::Http,
        addr: backend_addr.to_string(),
        allow: config::Allow { users: vec![], groups: vec!["demo".into()] },
    });
    let identity = dir.path().join("demo-identity.pem");
    setup::issue(dir.path(), "demo", &["demo".into()], Duration::from_secs(3600), &identity)?;
    let srv = server::Server::new(cfg)?;
    let server_task = tokio::spawn(server::run(listener, srv, shutdown.clone()));
    crate::cli::say!("1. Routing server on {public} (throwaway CA in {})", dir.path().display());
    crate::cli::say!("   sample HTTP backend on {backend_addr}, routed as app \"hello\"");

    let over =
        Overrides { proxy: Some(public.to_string()), identity: Some(identity.clone()), ca: None, insecure: false };
    let dialer = Arc::new(Dialer::new(Context::build(&over, None)?));
    let ping = webapi::ping(&dialer).await?;
    let who = ping.caller.as_ref().map(|c| c.user.clone()).unwrap_or_default();
    crate::cli::say!(
        "2. Identity checked like `oneport login`: user {who}, {} resource(s) offered",
        ping.resources.len()
    );

    let local = local::bind(None, None).await?;
    let local_addr = local.local_addr()?;
    let session = crate::client::session::Session::new(dialer.clone(), Kind::App, "hello", Protocol::Http1);
    let handler = local::http_tunnel_handler(session.clone(), local_addr.port());
    let proxy_task = tokio::spawn(local::serve(local, handler, shutdown.clone(), Duration::from_secs(2)));
    crate::cli::say!("3. `oneport proxy app hello` listening on http://{local_addr}/");

    let t = Instant::now();
    let body = http_get(local_addr).await?;
    if !body.contains(GREETING) {
        anyhow::bail!("round trip through the proxy returned an unexpected answer: {body:?}");
    }
    crate::cli::say!("4. Round trip OK in {:.1} ms: GET / answered {GREETING:?}", t.elapsed().as_secs_f64() * 1000.0);
    crate::cli::say!(
        "   (mutual TLS, {}, SNI hello.app.teleport.cluster.local; set up in {:.1}s)",
        session.mode(),
        started.elapsed().as_secs_f64()
    );

    if !a.once {
        crate::cli::say!("");
        crate::cli::say!("Try next, in another terminal, while this runs:");
        crate::cli::say!("  curl http://{local_addr}/");
        crate::cli::say!("  oneport --proxy {public} --identity {} ls", identity.display());
        crate::cli::say!("  oneport --proxy {public} --identity {} proxy app hello --port 8080", identity.display());
        crate::cli::say!("Press Ctrl-C to stop (the throwaway CA is deleted).");
        crate::util::shutdown::signal().await;
    }
    shutdown.cancel();
    let _ = proxy_task.await;
    let _ = server_task.await;
    let _ = backend_task.await;
    Ok(0)
}

async fn http_get(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        let req = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        anyhow::Ok(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .map_err(|_| anyhow::anyhow!("round trip timed out after 20s"))?
}

/// A minimal HTTP/1.1 backend that answers every request with [`GREETING`].
async fn sample_backend(listener: TcpListener, shutdown: CancellationToken) {
    let limits = accept::Limits {
        max_connections: 64,
        max_unauthenticated_per_source: 0,
        keepalive: None,
        grace: Duration::from_secs(1),
        shards: None,
    };
    let span = |_id: u64, _peer: std::net::SocketAddr| tracing::Span::current();
    accept::serve(listener, limits, &Tasks::new(), shutdown, "demo backend", span, |tcp, _peer| async move {
        let svc = hyper::service::service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                hyper::body::Bytes::from(format!("{GREETING}\n")),
            )))
        });
        let _ =
            hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tcp), svc).await;
    })
    .await;
}
