//! The soak's CI variant: 1,000 connections held open at once through the real
//! `oneport proxy app` + `oneport server start` binaries, each moving a random
//! payload both ways, checked by SHA-256: every one completes and no byte is lost.
//! Figures (memory, timing) are the bench's business (`cargo bench --bench soak`,
//! docs/benchmarks.md); this only asserts correctness.

#[allow(dead_code)]
#[path = "../benches/throughput/backend.rs"]
mod backend;
#[path = "common/fixture.rs"]
mod fixture;
#[allow(dead_code)]
#[path = "../benches/throughput/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "../benches/throughput/peers.rs"]
mod peers;
#[path = "common/ports.rs"]
mod ports;
#[allow(dead_code)]
#[path = "../benches/soak/run.rs"]
mod soak;
#[allow(dead_code)]
#[path = "../benches/throughput/wan.rs"]
mod wan;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_held_at_once_lose_no_byte() {
    let plan =
        soak::Plan { conns: 1000, in_flight: 100, max_payload: 32 * 1024, seed: 7, step: Duration::from_secs(120) };
    measure::raise_nofile(soak::fds_needed(plan.conns), "the soak test").unwrap();
    let backend = backend::spawn().await.unwrap();
    let pki = peers::make_pki(backend).await.unwrap();
    let peer = peers::oneport_pair(&pki).await.unwrap();
    let procs: Vec<(&'static str, u32)> = peer.procs.iter().filter_map(|p| Some((p.role, p.pid()?))).collect();
    assert_eq!(procs.len(), 2, "both processes run");
    let report = tokio::time::timeout(Duration::from_secs(300), soak::run(peer.addr, &plan, &procs)).await;
    peer.stop().await;
    let report = report.expect("the soak did not finish in 300 s").unwrap();
    eprint!("{}", report.print(&plan));
    assert_eq!(report.held_at_once, plan.conns, "not every connection was open at once: {:?}", report.failures);
    assert_eq!(report.completed, plan.conns, "failures: {:?}", report.failures);
    assert_eq!(report.bytes_lost, 0);
    assert!(report.bytes_each_way > 1000, "payloads were sent");
    // All held at once really means all: each process held at least one descriptor per
    // connection (the local socket in the client, the backend's in the server; with
    // multiplexing up to `mux.max_streams_per_session` of them share one routing
    // connection, the rest have their own).
    for p in &report.procs {
        assert!(p.fds_held >= plan.conns, "{} held {} descriptors for {} connections", p.role, p.fds_held, plan.conns);
    }
}
