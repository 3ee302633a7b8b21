//! The benchmark of docs/benchmarks.md: throughput, new connections per second and
//! memory per idle connection of `oneport proxy app` + `oneport server start` (the
//! release binary, two processes), against plain loopback TCP, the no-crypto ceiling
//! (two socat relays), an stunnel pair and a wstunnel pair (direct and through
//! nginx) measured in the same run. Run on demand, never in CI:
//!
//!     cargo bench --bench throughput
//!     BENCH_SECONDS=1 BENCH_CONNS=200 BENCH_ROUNDS=1 cargo bench --bench throughput
//!
//! Settings (environment), all optional:
//! - BENCH_SECONDS: length of each figure (default 2).
//! - BENCH_ROUNDS: the peers are measured in turn this many times, in alternating
//!   order, and the best figure is kept (default 3).
//! - BENCH_CONNS: idle connections (default 1000).
//! - BENCH_IDLE_BULK_KIB: the second idle-memory case, connections that first moved
//!   this much each way (default 256; 0 skips it).
//! - BENCH_CONCURRENCY: connections opened at once in the second rate (default 8).
//! - BENCH_PEERS: a subset of `plain,ceiling,stunnel,wstunnel,oneport,percon,baseline,upgraded,percon-upgraded,wstunnel-nginx`
//!   (`percon-upgraded`: through nginx to a server without multiplexed sessions).
//! - BENCH_WSTUNNEL_BIN=PATH: a wstunnel binary (10.6.2 or later); unset, the two
//!   wstunnel peers are left out with a note.
//! - BENCH_STAGES: a subset of `throughput,connect,rtt,contend,idle` (all by default).
//! - BENCH_ONE_WAY_MS: the one-way delay of the `rtt` stage (default 25).
//! - BENCH_RTT_CONNS: connections per path in the `rtt` stage (default 10).
//! - BENCH_UPGRADE=off: leaves out the load-balancer peer (`proxy app` upgraded
//!   through nginx, see `peers::upgraded`), measured by default when nginx is
//!   installed; `nginx` adds it to a BENCH_PEERS list.
//! - BENCH_BASELINE_BIN=PATH: another `oneport` build, measured beside this one as
//!   "oneport baseline" (before/after figures from one run).
//! - BENCH_ONEPORT_BIN=PATH: run every oneport peer from another build.
//! - BENCH_KEEP=1: keep the configs and logs, and say where.
//! - TOKIO_WORKER_THREADS: passed on to the `oneport` processes (their runtime).

#[path = "throughput/backend.rs"]
mod backend;
// Shared with the tests: the fixtures/ renderer and the free-port ledger.
#[path = "../tests/common/fixture.rs"]
mod fixture;
#[path = "throughput/measure.rs"]
mod measure;
#[path = "throughput/peers.rs"]
mod peers;
#[path = "../tests/common/ports.rs"]
mod ports;
#[path = "throughput/report.rs"]
mod report;
#[path = "throughput/wan.rs"]
mod wan;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

use measure::{ConnRate, Rss};
use peers::{Peer, Pki};
use report::Results;

/// What to run, from the environment.
#[derive(Debug, Clone)]
struct Settings {
    secs: Duration,
    rounds: usize,
    conns: usize,
    idle_bulk_kib: usize,
    concurrency: usize,
    one_way: Duration,
    rtt_conns: usize,
    peers: Vec<Kind>,
    stages: Vec<String>,
}

/// The stages, in the order they run.
const STAGES: [&str; 5] = ["throughput", "connect", "rtt", "contend", "idle"];

/// The peers the bench knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Ceiling,
    Stunnel,
    Wstunnel,
    Oneport,
    Percon,
    Baseline,
    Upgraded,
    UpgradedPercon,
    WstunnelNginx,
}

impl Kind {
    fn parse(s: &str) -> Result<Kind> {
        Ok(match s.trim() {
            "plain" => Kind::Plain,
            "ceiling" => Kind::Ceiling,
            "stunnel" => Kind::Stunnel,
            "wstunnel" => Kind::Wstunnel,
            "wstunnel-nginx" => Kind::WstunnelNginx,
            "oneport" => Kind::Oneport,
            "percon" => Kind::Percon,
            "upgraded" => Kind::Upgraded,
            "percon-upgraded" => Kind::UpgradedPercon,
            "baseline" => Kind::Baseline,
            other => bail!(
                "BENCH_PEERS: unknown peer {other:?} (plain, ceiling, stunnel, wstunnel, oneport, percon, baseline, upgraded, percon-upgraded, wstunnel-nginx)"
            ),
        })
    }

    async fn start(self, pki: &Pki, backend: SocketAddr) -> Result<Peer> {
        match self {
            Kind::Plain => Ok(peers::plain(backend)),
            Kind::Ceiling => peers::ceiling(pki, backend).await,
            Kind::Stunnel => peers::stunnel_pair(pki, backend).await,
            Kind::Wstunnel => peers::wstunnel_pair(pki).await,
            Kind::WstunnelNginx => peers::wstunnel_via_nginx(pki).await,
            Kind::Oneport => peers::oneport_pair(pki).await,
            Kind::Percon => peers::percon_pair(pki).await,
            Kind::Baseline => {
                let bin = std::env::var_os(peers::BASELINE_ENV)
                    .ok_or_else(|| anyhow!("{} is not set", peers::BASELINE_ENV))?;
                peers::baseline_pair(pki, std::path::Path::new(&bin)).await
            }
            Kind::Upgraded => peers::upgraded_via_nginx(pki).await,
            Kind::UpgradedPercon => peers::upgraded_percon_via_nginx(pki).await,
        }
    }
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().map_err(|_| anyhow!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let secs: f64 = env_num("BENCH_SECONDS", 2.0)?;
        if !(secs > 0.0 && secs <= 600.0) {
            bail!("BENCH_SECONDS must be in (0, 600]");
        }
        let mut peers = match std::env::var("BENCH_PEERS") {
            Ok(v) => v.split(',').filter(|s| !s.trim().is_empty()).map(Kind::parse).collect::<Result<Vec<_>>>()?,
            Err(_) => vec![
                Kind::Plain,
                Kind::Ceiling,
                Kind::Stunnel,
                Kind::Wstunnel,
                Kind::Oneport,
                Kind::Percon,
                Kind::Upgraded,
                Kind::UpgradedPercon,
                Kind::WstunnelNginx,
            ],
        };
        let lb = |k: &Kind| matches!(k, Kind::Upgraded | Kind::UpgradedPercon | Kind::WstunnelNginx);
        match std::env::var(peers::UPGRADE_ENV).as_deref() {
            Ok("nginx") if !peers.contains(&Kind::Upgraded) => peers.push(Kind::Upgraded),
            Ok("off") => peers.retain(|k| !lb(k)),
            Ok("nginx") | Err(_) => {}
            Ok(other) => bail!("{}={other:?}: nginx or off", peers::UPGRADE_ENV),
        }
        if peers.iter().any(lb) && peers::nginx_bin().is_none() {
            eprintln!(
                "note: nginx is not installed (apt-get install nginx); measuring without the load-balancer paths"
            );
            peers.retain(|k| !lb(k));
        }
        if peers.iter().any(|k| matches!(k, Kind::Wstunnel | Kind::WstunnelNginx)) && peers::wstunnel_bin().is_none() {
            eprintln!(
                "note: {} is not set (a wstunnel binary, 10.6.2 or later, see docs/benchmarks.md); measuring without the wstunnel peers",
                peers::WSTUNNEL_ENV
            );
            peers.retain(|k| !matches!(k, Kind::Wstunnel | Kind::WstunnelNginx));
        }
        if peers.contains(&Kind::Ceiling) && peers::socat_bin().is_none() {
            eprintln!("note: socat is not installed (apt-get install socat); measuring without the no-crypto ceiling");
            peers.retain(|k| *k != Kind::Ceiling);
        }
        if std::env::var_os(peers::BASELINE_ENV).is_some() && !peers.contains(&Kind::Baseline) {
            peers.push(Kind::Baseline);
        }
        if peers.contains(&Kind::Stunnel) && peers::stunnel_bin().is_none() {
            eprintln!("note: stunnel is not installed (apt-get install stunnel4); measuring without it");
            peers.retain(|k| *k != Kind::Stunnel);
        }
        let stages: Vec<String> = match std::env::var("BENCH_STAGES") {
            Ok(v) => v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            Err(_) => STAGES.iter().map(|s| s.to_string()).collect(),
        };
        if let Some(bad) = stages.iter().find(|s| !STAGES.contains(&s.as_str())) {
            bail!("BENCH_STAGES: unknown stage {bad:?} ({})", STAGES.join(", "));
        }
        Ok(Settings {
            secs: Duration::from_secs_f64(secs),
            rounds: env_num("BENCH_ROUNDS", 3usize)?.max(1),
            conns: env_num("BENCH_CONNS", 1000usize)?.max(1),
            idle_bulk_kib: env_num("BENCH_IDLE_BULK_KIB", 256usize)?,
            concurrency: env_num("BENCH_CONCURRENCY", 8usize)?.max(1),
            one_way: Duration::from_millis(env_num("BENCH_ONE_WAY_MS", 25u64)?.max(1)),
            rtt_conns: env_num("BENCH_RTT_CONNS", 10usize)?.max(2),
            peers,
            stages,
        })
    }

    fn stage(&self, name: &str) -> bool {
        self.stages.iter().any(|s| s == name)
    }
}

fn main() -> std::process::ExitCode {
    // `cargo bench` passes --bench; anything else (`cargo test --all-targets`) is
    // not a request to run a minute-long benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput bench: run it with `cargo bench --bench throughput` (see docs/benchmarks.md)");
        return std::process::ExitCode::SUCCESS;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let result = rt.map_err(anyhow::Error::from).and_then(|rt| rt.block_on(run()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let s = Settings::from_env()?;
    // Each idle connection costs the client process two descriptors; the bench
    // process holds both ends of the backend side too.
    measure::raise_nofile((2 * s.conns + 512) as u64, "BENCH_CONNS")?;
    let pattern = backend::Pattern::new();
    if !pattern.self_check() {
        bail!("the pattern checker is broken: it would not catch corrupted bytes");
    }
    if !measure::self_check() {
        bail!("the /proc/stat reader is broken: it would misstate how busy the machine was");
    }
    let backend = backend::spawn().await.context("starting the backend")?;
    let pki = peers::make_pki(backend).await.context("making certificates with `oneport server init`")?;
    let mut results = Results::new(report::machine(&s.peers, s.secs, s.rounds));
    let mut started = Vec::new();
    for &k in &s.peers {
        match k.start(&pki, backend).await {
            Ok(p) => started.push((k, p)),
            Err(e) => results.failed(&peer_name(k), format!("{e:#}")),
        }
    }
    let names: Vec<String> = started.iter().map(|(_, p)| p.name.clone()).collect();
    eprintln!("measuring {} ({} s per figure, {} rounds)", names.join(", "), s.secs.as_secs_f64(), s.rounds);
    if s.stage("throughput") {
        throughput(&s, &started, &pattern, &mut results).await;
    }
    if s.stage("connect") {
        connect(&s, &started, &mut results).await;
        results.resumption("stunnel", peers::stunnel_resumption(&pki));
        for (peer, log) in peers::CLIENT_LOGS {
            results.resumption(peer, peers::oneport_resumption(&pki, log));
        }
    }
    if s.stage("contend") {
        contend(&s, &started, &mut results).await;
    }
    for (_, p) in started {
        p.stop().await;
    }
    if s.stage("rtt") {
        rtt(&s, &pki, backend, &mut results).await;
    }
    if s.stage("idle") {
        idle(&s, &pki, backend, &mut results).await;
    }
    results.print(&s.peers.iter().map(|&k| peer_name(k)).collect::<Vec<_>>(), s.conns, s.concurrency);
    if std::env::var_os("BENCH_KEEP").is_some() {
        eprintln!("configs and logs kept in {}", pki.dir.keep().display());
    }
    Ok(())
}

fn peer_name(k: Kind) -> String {
    match k {
        Kind::Plain => "plain TCP",
        Kind::Ceiling => "no-crypto ceiling (socat)",
        Kind::Stunnel => "stunnel",
        Kind::Wstunnel => "wstunnel",
        Kind::WstunnelNginx => "wstunnel via nginx (WS)",
        Kind::Oneport => "oneport",
        Kind::Percon => "oneport per connection",
        Kind::Baseline => "oneport baseline",
        Kind::Upgraded => "oneport via nginx (WS)",
        Kind::UpgradedPercon => "oneport per connection via nginx (WS)",
    }
    .into()
}

/// The order peers are measured in round `r`: alternating, so that a peer is not
/// always the one measured right after another's heavy run.
fn order<T>(v: &[T], r: usize) -> Vec<&T> {
    let mut o: Vec<&T> = v.iter().collect();
    if r % 2 == 1 {
        o.reverse();
    }
    o
}

async fn throughput(s: &Settings, peers: &[(Kind, Peer)], pattern: &backend::Pattern, res: &mut Results) {
    for r in 0..s.rounds {
        for (_, p) in order(peers, r) {
            eprintln!("  round {}: throughput {}", r + 1, p.name);
            let up = with_split(p, measure::upload(p.addr, s.secs, pattern)).await;
            let down = with_split(p, measure::download(p.addr, s.secs, pattern)).await;
            res.throughput_split(&p.name, Dir::Up, up.map_err(|e| format!("{e:#}")));
            res.throughput_split(&p.name, Dir::Down, down.map_err(|e| format!("{e:#}")));
        }
    }
}

/// Runs a throughput measurement and says where the CPU went meanwhile: each of
/// the peer's processes (with the children it started), this benchmark's own load
/// and sink, and how busy the whole machine was.
async fn with_split(
    p: &Peer,
    run: impl std::future::Future<Output = Result<measure::Rate>>,
) -> Result<(measure::Rate, report::Split)> {
    let procs: Vec<(&'static str, u32)> = p.procs.iter().filter_map(|x| Some((x.role, x.pid()?))).collect();
    let each = |procs: &[(&'static str, u32)]| -> Result<Vec<f64>> {
        procs.iter().map(|&(_, pid)| measure::cpu_secs(&[pid])).collect()
    };
    let own = measure::own_cpu_secs;
    let (procs0, own0, machine0) = (each(&procs)?, own()?, measure::machine_ticks()?);
    let mut rate = run.await?;
    let (procs1, own1, machine1) = (each(&procs)?, own()?, measure::machine_ticks()?);
    let roles: Vec<(&'static str, f64)> =
        procs.iter().zip(procs0.iter().zip(&procs1)).map(|(&(r, _), (a, b))| (r, b - a)).collect();
    if !procs.is_empty() {
        rate.cpu_secs = Some(roles.iter().map(|r| r.1).sum());
    }
    let total = (machine1.1 - machine0.1).max(1) as f64;
    let gib = rate.bytes as f64 / (1u64 << 30) as f64;
    let split = report::Split { roles, own: own1 - own0, busy: (machine1.0 - machine0.0) as f64 / total, gib };
    Ok((rate, split))
}

/// A direction of transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to backend.
    Up,
    /// Backend to client.
    Down,
}

/// The no-crypto ceiling is a throughput figure only: its relays fork a process per
/// connection, which says nothing about connection set-up or idle memory.
fn bulk_only(k: Kind) -> bool {
    k == Kind::Ceiling
}

async fn connect(s: &Settings, peers: &[(Kind, Peer)], res: &mut Results) {
    for r in 0..s.rounds {
        for (_, p) in order(peers, r).into_iter().filter(|(k, _)| !bulk_only(*k)) {
            for c in [1, s.concurrency] {
                eprintln!("  round {}: new connections {} (concurrency {c})", r + 1, p.name);
                let got: Result<ConnRate> = async {
                    let pids: Vec<u32> = p.procs.iter().filter_map(|x| x.pid()).collect();
                    let before = measure::cpu_secs(&pids)?;
                    let mut r = measure::conn_rate(p.addr, s.secs, c).await?;
                    if !pids.is_empty() {
                        r.cpu_secs = Some(measure::cpu_secs(&pids)? - before);
                    }
                    Ok(r)
                }
                .await;
                res.conn_rate(&p.name, c, got.map_err(|e| format!("{e:#}")));
            }
        }
    }
}

/// Round trips to the first answer, on peers started afresh behind a delay relay.
async fn rtt(s: &Settings, pki: &Pki, backend: SocketAddr, res: &mut Results) {
    wan::set_delay(Some(s.one_way));
    for &k in s.peers.iter().filter(|&&k| !bulk_only(k)) {
        eprintln!("  round trips {} (one-way delay {} ms)", peer_name(k), s.one_way.as_millis());
        let got: Result<wan::Rtts> = async {
            let p = match k {
                Kind::Plain => peers::plain(wan::front(backend).await?),
                _ => k.start(pki, backend).await?,
            };
            let r = wan::rtts(p.addr, s.one_way, s.rtt_conns).await;
            p.stop().await;
            r
        }
        .await;
        res.rtts(&peer_name(k), got.map_err(|e| format!("{e:#}")));
    }
    wan::set_delay(None);
}

/// Echo latency alone and during a download on the same path.
async fn contend(s: &Settings, peers: &[(Kind, Peer)], res: &mut Results) {
    for (_, p) in peers.iter().filter(|(k, _)| !bulk_only(*k)) {
        eprintln!("  echo latency {} (alone, then beside a download)", p.name);
        res.contention(&p.name, wan::contention(p.addr, s.secs).await.map_err(|e| format!("{e:#}")));
    }
}

/// Idle memory, on freshly started peers (so allocator state left by the bulk
/// transfers does not hide what connections cost).
async fn idle(s: &Settings, pki: &Pki, backend: SocketAddr, res: &mut Results) {
    let bulks: Vec<usize> =
        [0, s.idle_bulk_kib * 1024].into_iter().filter(|&b| b == 0 || s.idle_bulk_kib > 0).collect();
    for &k in s.peers.iter().filter(|&&k| k != Kind::Plain && !bulk_only(k)) {
        for &bulk in &bulks {
            eprintln!("  idle memory {} ({} connections, {} KiB each way first)", peer_name(k), s.conns, bulk / 1024);
            let got: Result<Vec<Rss>> = async {
                let p = k.start(pki, backend).await?;
                let procs: Vec<(&'static str, u32)> = p.procs.iter().filter_map(|x| Some((x.role, x.pid()?))).collect();
                let r = measure::idle(p.addr, s.conns, bulk, &procs).await;
                p.stop().await;
                r
            }
            .await;
            res.idle(&peer_name(k), bulk, got.map_err(|e| format!("{e:#}")));
        }
    }
}
