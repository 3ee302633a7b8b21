//! Round trips per new connection (docs/benchmarks.md, "Round trips"): a delay
//! relay between the local proxy and the server adds a fixed one-way delay to every
//! chunk and one round trip to every accept (standing in for the TCP handshake).
//! For each path it prints the time from a local connect to the backend's answer
//! to the client's first byte, divided by the round-trip time, for the first
//! connection and for the Nth.
//!
//! Paths: plain TCP to the backend through the relay (the floor a user compares
//! with), `proxy app` per connection (server with `mux.enabled: false`), and
//! `proxy app` on a multiplexed session. In-process (library calls), direct only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use oneport::client::context::{Context, Overrides};
use oneport::client::dial::{Dialer, PathOptions};
use oneport::client::local;
use oneport::client::session::{Mode, Session};
use oneport::proto::naming::{Kind, Protocol};
use oneport::server::config::{Allow, App, AppKind, Config};
use oneport::server::{self, setup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("rtt bench: run it with `cargo bench --bench rtt` (see docs/benchmarks.md)");
        return std::process::ExitCode::SUCCESS;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    match rt.map_err(anyhow::Error::from).and_then(|rt| rt.block_on(run())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn env_u64(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// A backend that answers each chunk it reads with one byte.
async fn backend() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(b"!").await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// The delay relay in front of `to`: accept, wait one RTT, then every chunk each
/// way is delivered `one_way` after it was read.
async fn delay_relay(to: SocketAddr, one_way: Duration) -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((a, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = a.set_nodelay(true);
                tokio::time::sleep(one_way * 2).await; // the TCP handshake
                let Ok(b) = TcpStream::connect(to).await else { return };
                let _ = b.set_nodelay(true);
                let (ar, aw) = a.into_split();
                let (br, bw) = b.into_split();
                tokio::spawn(delayed(ar, bw, one_way));
                tokio::spawn(delayed(br, aw, one_way));
            });
        }
    });
    Ok(addr)
}

async fn delayed(mut r: tokio::net::tcp::OwnedReadHalf, mut w: tokio::net::tcp::OwnedWriteHalf, d: Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until((at + d).into()).await;
            if w.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Connect to `addr`, send one byte, time the answer's first byte.
async fn first_byte(addr: SocketAddr) -> Result<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(b"?").await?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    Ok(t.elapsed())
}

struct Router {
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

async fn router(backend: SocketAddr, mux: bool) -> Result<Router> {
    let dir = tempfile::tempdir()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let o = setup::InitOptions {
        public_addr: oneport::util::addr::HostPort::parse(&addr.to_string()).map_err(anyhow::Error::msg)?,
        cluster_name: Some("bench".into()),
        listen: addr.to_string(),
        extra_names: vec![],
        force: false,
    };
    let path = setup::init(dir.path(), &o)?;
    let mut cfg = Config::load(&path)?;
    cfg.apps.push(App {
        name: "echo".into(),
        kind: AppKind::Tcp,
        addr: backend.to_string(),
        allow: Allow { users: vec!["bench".into()], groups: vec![] },
    });
    cfg.mux.enabled = mux;
    let srv = server::Server::new(cfg)?;
    tokio::spawn(server::run(listener, srv, CancellationToken::new()));
    Ok(Router { dir, addr })
}

/// `proxy app echo` in-process against `router` reached through a delay relay;
/// returns the local address once the session (if any) is open.
async fn proxy_app(r: &Router, one_way: Duration) -> Result<(SocketAddr, Arc<Session>)> {
    let id = r.dir.path().join("bench.pem");
    setup::issue(r.dir.path(), "bench", &[], Duration::from_secs(3600), &id)?;
    let relay = delay_relay(r.addr, one_way).await?;
    let over = Overrides { proxy: Some(relay.to_string()), identity: Some(id), ca: None, insecure: false };
    let ctx = Context::build(&over, None)?;
    let dialer =
        Arc::new(Dialer::with_options(ctx, PathOptions { upgrade_override: Some(false), ..Default::default() }));
    let session = Session::new(dialer, Kind::App, "echo", Protocol::Tcp);
    session.warm().await;
    let listener = local::bind(None, None).await?;
    let addr = listener.local_addr()?;
    let handler = local::tunnel_handler(session.clone());
    tokio::spawn(local::serve(listener, handler, CancellationToken::new(), Duration::from_secs(1)));
    Ok((addr, session))
}

async fn series(addr: SocketAddr, n: u64, rtt: Duration) -> Result<(f64, f64)> {
    let first = first_byte(addr).await?;
    let mut rest = Vec::new();
    for _ in 1..n {
        rest.push(first_byte(addr).await?);
    }
    rest.sort();
    let median = rest.get(rest.len() / 2).copied().unwrap_or(first);
    Ok((first.as_secs_f64() / rtt.as_secs_f64(), median.as_secs_f64() / rtt.as_secs_f64()))
}

async fn run() -> Result<()> {
    let one_way = Duration::from_millis(env_u64("BENCH_ONE_WAY_MS", 25)?);
    let n = env_u64("BENCH_RTT_CONNS", 20)?.max(2);
    let rtt = one_way * 2;
    let be = backend().await?;
    println!(
        "round trips to the backend's first answer (RTT {} ms; connection 1, and median of 2..{n})",
        rtt.as_millis()
    );
    println!("{:<38} {:>8} {:>8}", "path", "first", "Nth");
    let plain = delay_relay(be, one_way).await?;
    let (f, m) = series(plain, n, rtt).await?;
    println!("{:<38} {f:>8.2} {m:>8.2}", "plain TCP to the backend");
    for mux in [false, true] {
        let r = router(be, mux).await?;
        let (addr, session) = proxy_app(&r, one_way).await?;
        let expect_mux = matches!(session.mode(), Mode::Multiplexed(_));
        anyhow::ensure!(expect_mux == mux, "session mode {} with mux {mux}", session.mode());
        let (f, m) = series(addr, n, rtt).await?;
        let name = if mux { "oneport proxy app, multiplexed" } else { "oneport proxy app, per connection" };
        println!("{name:<38} {f:>8.2} {m:>8.2}");
    }
    let secs = env_u64("BENCH_SECONDS", 2)?;
    println!("\nnew connections per second through proxy app, 8 at once, no added delay ({secs} s each)");
    let direct = rate(be, secs).await?;
    println!("{:<38} {direct:>8.0}", "plain TCP to the backend");
    for mux in [false, true] {
        let r = router(be, mux).await?;
        let (addr, _session) = proxy_app(&r, Duration::ZERO).await?;
        let name = if mux { "oneport proxy app, multiplexed" } else { "oneport proxy app, per connection" };
        println!("{name:<38} {:>8.0}", rate(addr, secs).await?);
    }
    Ok(())
}

/// Connections per second: 8 tasks each connecting, exchanging one byte, closing.
async fn rate(addr: SocketAddr, secs: u64) -> Result<f64> {
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                first_byte(addr).await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
