//! The cost of recording an exec session (docs/recording.md): 50 MiB of stdout, in
//! WebSocket messages of 32 KiB as the API server sends them, relayed to a client
//! through loopback TCP three ways, and the rate of each printed:
//!
//! - `plain relay`: `net::relay`, what an unrecorded upgrade uses;
//! - `session relay, off`: the session relay without a recorder (audit only);
//! - `session relay, recorded`: the session relay parsing both directions and
//!   writing the asciicast file (into a temporary directory).
//!
//! Run:
//!
//!     cargo bench --bench recording
//!     BENCH_MIB=200 BENCH_ROUNDS=5 cargo bench --bench recording
//!
//! Settings: BENCH_MIB (default 50), BENCH_ROUNDS (default 5; each round runs the
//! three ways in turn, and the median and the best of each are printed, with the
//! median of the per-round ratios to the plain relay: on a shared machine the
//! ratio within a round is the figure to quote), BENCH_DIR (where recordings are
//! written; default a temporary directory), BENCH_ONLY (`plain`, `off` or
//! `recorded`: run one way only, e.g. under `perf record`). Beside the wall time it
//! prints the CPU time of the process per run of each way (user + system, from
//! /proc/self/stat, so 10 ms ticks averaged over the rounds): on a machine without
//! an idle core the recorder's thread competes with the relay, and wall time
//! follows CPU time. Last, the recorder alone (the same 50 MiB through
//! `Recorder::write` into the directory, no relay) and the peak resident memory of
//! the process (VmHWM).

use std::time::{Duration, Instant, SystemTime};

use oneport::proto::k8s_channel::server_frame;
use oneport::server::recording::dir::DirSink;
use oneport::server::recording::session::Handler;
use oneport::server::recording::{Event, Meta, Mode, Sink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MESSAGE: usize = 32 * 1024;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A connected loopback pair.
async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (b, _) = l.accept().await.unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    (a, b)
}

#[derive(Clone, Copy, PartialEq)]
enum Way {
    Plain,
    Off,
    Recorded,
}

/// One run: the "API server" writes `total` bytes of frames, the client reads them.
async fn run(way: Way, frames: &[u8], dir: &std::path::Path) -> Duration {
    let (client, relay_client) = pair().await;
    let (relay_up, server) = pair().await;
    let meta = Meta {
        session_id: oneport::server::recording::session::new_id(),
        kind: "exec".into(),
        user: "bench".into(),
        cluster: "bench".into(),
        namespace: "default".into(),
        pod: "web-1".into(),
        command: vec!["cat".into()],
        protocol: "v5.channel.k8s.io".into(),
        ..Default::default()
    };
    let relay = match way {
        Way::Plain => tokio::spawn(async move {
            let (mut a, mut b) = (relay_client, relay_up);
            let _ = oneport::net::relay::relay(&mut a, &mut b).await;
        }),
        Way::Off | Way::Recorded => {
            let rec = (way == Way::Recorded).then(|| DirSink::new(dir.to_path_buf()).create(&meta, 0).unwrap());
            let h = Handler::new(meta, Mode::Required, rec, None, SystemTime::now());
            tokio::spawn(h.run(relay_client, relay_up))
        }
    };
    let data = frames.to_vec();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let mut server = server;
        server.write_all(&data).await.unwrap();
        server.shutdown().await.unwrap();
        // Hold the socket until the client is done (its EOF comes back).
        let mut sink = Vec::new();
        let _ = server.read_to_end(&mut sink).await;
    });
    let mut client = client;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0usize;
    loop {
        let n = client.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    let took = start.elapsed();
    assert_eq!(got, frames.len(), "bytes lost");
    client.shutdown().await.unwrap();
    drop(client);
    writer.await.unwrap();
    relay.await.unwrap();
    took
}

/// User + system CPU time of this process so far, in seconds.
fn cpu_secs() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the command name (which is in parentheses): utime is the 14th
    // field of the line, stime the 15th.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let mib = env("BENCH_MIB", 50);
    let rounds = env("BENCH_ROUNDS", 5).max(1);
    let only = std::env::var("BENCH_ONLY").ok();
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());
    // Printable output, as `cat` of a text file would send.
    let line: Vec<u8> = (0..MESSAGE).map(|i| if i % 80 == 79 { b'\n' } else { b'a' + (i % 26) as u8 }).collect();
    let mut frames = Vec::with_capacity(mib << 20);
    while frames.len() < mib << 20 {
        frames.extend_from_slice(&server_frame(1, &line));
    }
    frames.extend_from_slice(&server_frame(3, br#"{"metadata":{},"status":"Success"}"#));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ways =
        [(Way::Plain, "plain relay"), (Way::Off, "session relay, off"), (Way::Recorded, "session relay, recorded")];
    let names = ["plain", "off", "recorded"];
    let run_it = |i: usize| only.as_deref().is_none_or(|o| o == names[i]);
    let mut times: [Vec<f64>; 3] = Default::default();
    let mut cpu = [0f64; 3];
    rt.block_on(async {
        for _ in 0..rounds {
            for (i, (way, _)) in ways.iter().enumerate() {
                if run_it(i) {
                    let before = cpu_secs();
                    times[i].push(run(*way, &frames, &dir).await.as_secs_f64());
                    cpu[i] += cpu_secs() - before;
                }
            }
        }
    });
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            f64::NAN
        } else if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        }
    };
    let mb = frames.len() as f64 / (1 << 20) as f64;
    println!("recording benchmark: {mb:.0} MiB of stdout in {}-KiB messages, {rounds} rounds", MESSAGE / 1024);
    println!(
        "  {:<26} {:>10} {:>10} {:>12} {:>18} {:>12}",
        "", "median ms", "best ms", "median MiB/s", "vs plain (median)", "CPU ms/run"
    );
    for (i, (_, name)) in ways.iter().enumerate() {
        if times[i].is_empty() {
            continue;
        }
        let med = median(&times[i]);
        let best = times[i].iter().copied().fold(f64::MAX, f64::min);
        let ratios: Vec<f64> = times[i].iter().zip(&times[0]).map(|(t, p)| (t / p - 1.0) * 100.0).collect();
        let vs = if times[0].is_empty() { String::new() } else { format!("{:+.1}%", median(&ratios)) };
        let cpu_ms = cpu[i] / times[i].len() as f64 * 1e3;
        println!("  {name:<26} {:>10.1} {:>10.1} {:>12.1} {vs:>18} {cpu_ms:>12.0}", med * 1e3, best * 1e3, mb / med);
    }
    if only.is_none() {
        // The recorder alone: the same output, as the relay hands it over (one event
        // per 64 KiB read), written into the directory.
        let meta = Meta { session_id: oneport::server::recording::session::new_id(), ..Default::default() };
        let mut rec = DirSink::new(dir.clone()).create(&meta, 0).unwrap();
        let payload = &line[..];
        let events = (mib << 20) / (2 * payload.len());
        let start = Instant::now();
        for i in 0..events {
            let ev = Event::Output([payload, payload].concat());
            rec.write(Duration::from_micros(i as u64), &ev).unwrap();
            if i % 8 == 0 {
                rec.flush().unwrap();
            }
        }
        rec.flush().unwrap();
        let took = start.elapsed().as_secs_f64();
        println!(
            "  recorder alone (no relay)  {:>10.1} ms {:>23.1} MiB/s",
            took * 1e3,
            (events * 2 * payload.len()) as f64 / (1 << 20) as f64 / took
        );
    }
    let size: u64 = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    println!("  recordings written: {:.1} MiB in {}", size as f64 / (1 << 20) as f64, dir.display());
    if let Some(kib) = peak_rss_kib() {
        println!(
            "  peak resident memory of the benchmark (includes the {mb:.0} MiB of frames, twice): {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
}
