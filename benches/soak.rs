//! The soak of docs/benchmarks.md ("Soak"): 9,000 concurrent connections, all held
//! open at once, through `oneport proxy app` (TCP app) + `oneport server start`
//! (the release binary, two processes) to an echo backend, each moving a random
//! payload both ways with every byte checked by SHA-256. Prints connections
//! completed, bytes lost, peak RSS of both processes and the descriptor limits.
//! Run on demand, never in CI (tests/soak.rs runs 1,000 connections there):
//!
//!     cargo bench --bench soak
//!     SOAK_CONNS=2000 SOAK_IN_FLIGHT=100 cargo bench --bench soak
//!
//! Settings (environment), all optional:
//! - SOAK_CONNS: connections (default 9000; each takes two descriptors in every
//!   process, so the limit is (RLIMIT_NOFILE - 200) / 2: 9,900 at 20,000).
//! - SOAK_IN_FLIGHT: connects (with their first round trip) at once (default 200).
//! - SOAK_MAX_KIB: largest payload, KiB; sizes are uniform in 1 B..=max (default 64).
//! - SOAK_SEED: seed of sizes and contents (default 1).
//! - SOAK_STEP_SECS: deadline of each connection's open and of its transfer (default 120).
//! - BENCH_ONEPORT_BIN=PATH: run another build.

#[allow(dead_code)]
#[path = "throughput/backend.rs"]
mod backend;
#[path = "../tests/common/fixture.rs"]
mod fixture;
#[allow(dead_code)]
#[path = "throughput/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "throughput/peers.rs"]
mod peers;
#[path = "../tests/common/ports.rs"]
mod ports;
#[path = "soak/run.rs"]
mod soak;
#[allow(dead_code)]
#[path = "throughput/wan.rs"]
mod wan;

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().map_err(|_| anyhow!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

fn main() -> std::process::ExitCode {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("soak bench: run it with `cargo bench --bench soak` (see docs/benchmarks.md)");
        return std::process::ExitCode::SUCCESS;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let result = rt.map_err(anyhow::Error::from).and_then(|rt| rt.block_on(run()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let plan = soak::Plan {
        conns: env_num("SOAK_CONNS", 9000)?,
        in_flight: env_num("SOAK_IN_FLIGHT", 200)?,
        max_payload: env_num::<usize>("SOAK_MAX_KIB", 64)? * 1024,
        seed: env_num("SOAK_SEED", 1)?,
        step: Duration::from_secs(env_num("SOAK_STEP_SECS", 120)?),
    };
    if plan.conns == 0 || plan.max_payload == 0 {
        bail!("SOAK_CONNS and SOAK_MAX_KIB must be at least 1");
    }
    // Before anything starts: the oneport processes inherit the raised limit.
    measure::raise_nofile(soak::fds_needed(plan.conns), "SOAK_CONNS")?;
    let backend = backend::spawn().await.context("starting the echo backend")?;
    let pki = peers::make_pki(backend).await.context("making certificates with `oneport server init`")?;
    let peer = peers::oneport_pair(&pki).await.context("starting `oneport server start` and `oneport proxy app`")?;
    let procs: Vec<(&'static str, u32)> = peer.procs.iter().filter_map(|p| Some((p.role, p.pid()?))).collect();
    eprintln!("soak: {} connections to {} (binary {})", plan.conns, peer.addr, peers::oneport_bin());
    let report = soak::run(peer.addr, &plan, &procs).await;
    let keep = std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1");
    peer.stop().await;
    let report = report?;
    print!("{}", report.print(&plan));
    if keep {
        let dir = pki.dir.keep();
        println!("  logs kept in {}", dir.display());
    }
    if report.bytes_lost > 0 || report.completed != plan.conns {
        bail!(
            "{} of {} connections failed; {} bytes lost",
            plan.conns - report.completed,
            plan.conns,
            report.bytes_lost
        );
    }
    Ok(())
}
