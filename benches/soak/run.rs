//! The soak: N connections through `oneport proxy app` (a TCP app) and `oneport
//! server start` to the echo backend, all held open at once, then each moves its
//! own random payload both ways and checks every byte by SHA-256. Shared by the
//! bench (`cargo bench --bench soak`, 9,000 connections) and the CI test
//! (`tests/soak.rs`, 1,000).
//!
//! Per connection: connect (at most `in_flight` connects and first round trips at
//! once), send the echo request byte and one byte, read that byte back (the whole
//! path is up: both TLS hops and the backend dial), then wait until every
//! connection got that far. With all of them open the descriptors and memory of
//! both processes are read; then every connection sends its payload while reading
//! the echo, half-closes, reads to EOF, and compares length and hash.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};

use crate::backend::ECHO;
use crate::measure::{raise_nofile, vm_rss_kib};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Connections, all held open at once.
    pub conns: usize,
    /// Connects (with their first round trip) in flight at once.
    pub in_flight: usize,
    /// Largest payload of one connection; each is uniform in 1..=max.
    pub max_payload: usize,
    /// Seed of the payload sizes and contents.
    pub seed: u64,
    /// Deadline of the open phase of one connection, and of its transfer.
    pub step: Duration,
}

/// One process of the path, as measured.
#[derive(Debug, Clone)]
pub struct ProcFigures {
    /// "client" (`proxy app`) or "server".
    pub role: &'static str,
    /// Open descriptors with every connection held open.
    pub fds_held: usize,
    /// VmRSS with every connection held open, KiB.
    pub rss_held_kib: u64,
    /// VmHWM (peak resident set over the whole run), KiB.
    pub rss_peak_kib: u64,
    /// Its soft and hard `RLIMIT_NOFILE`.
    pub nofile: (u64, u64),
}

/// The outcome.
#[derive(Debug, Clone)]
pub struct Report {
    /// Connections attempted.
    pub conns: usize,
    /// Connections that were open end to end at the same moment.
    pub held_at_once: usize,
    /// Connections whose echo came back complete and hash-equal.
    pub completed: usize,
    /// Payload bytes sent (each also expected back).
    pub bytes_each_way: u64,
    /// Bytes not returned intact: a failed connection loses its whole payload,
    /// counted both ways.
    pub bytes_lost: u64,
    /// Failures by reason.
    pub failures: BTreeMap<String, usize>,
    /// Time to open every connection, and to move every payload.
    pub open_time: Duration,
    /// See `open_time`.
    pub transfer_time: Duration,
    /// The path's processes.
    pub procs: Vec<ProcFigures>,
    /// This process's soft and hard `RLIMIT_NOFILE` (inherited by both).
    pub nofile: (u64, u64),
}

impl Report {
    /// The figures as the bench prints them.
    pub fn print(&self, plan: &Plan) -> String {
        let mut o = String::new();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        o.push_str(&format!(
            "soak: {} connections through `oneport proxy app` (TCP app) + `oneport server start`, \
             connects paced at {} in flight, payloads 1..={} bytes each way (seed {})\n",
            self.conns, plan.in_flight, plan.max_payload, plan.seed
        ));
        o.push_str(&format!("  held open at once:     {}\n", self.held_at_once));
        o.push_str(&format!("  completed:             {} of {}\n", self.completed, self.conns));
        o.push_str(&format!(
            "  bytes each way:        {} ({:.1} MiB), lost: {}\n",
            self.bytes_each_way,
            mib(self.bytes_each_way),
            self.bytes_lost
        ));
        o.push_str(&format!(
            "  open phase:            {:.1} s; transfer phase: {:.1} s\n",
            self.open_time.as_secs_f64(),
            self.transfer_time.as_secs_f64()
        ));
        o.push_str(&format!(
            "  descriptor limit:      soft {} / hard {} (this process; inherited)\n",
            self.nofile.0, self.nofile.1
        ));
        for p in &self.procs {
            o.push_str(&format!(
                "  {:<7} fds held {:>6} (limit {}), RSS held {:.1} MiB, peak RSS (VmHWM) {:.1} MiB\n",
                p.role,
                p.fds_held,
                p.nofile.0,
                p.rss_held_kib as f64 / 1024.0,
                p.rss_peak_kib as f64 / 1024.0
            ));
        }
        for (why, n) in &self.failures {
            o.push_str(&format!("  failed: {n} x {why}\n"));
        }
        o
    }
}

/// Descriptors each process of the path needs for `conns` (two per connection:
/// the accepted one and the one dialled onward; the bench process holds the
/// client end and the backend end) plus room for its own files.
pub fn fds_needed(conns: usize) -> u64 {
    2 * conns as u64 + 200
}

/// Deterministic pseudo-random bytes (xorshift64).
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn nofile_of(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default();
    let nums: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (nums.first().copied().unwrap_or(0), nums.get(1).copied().unwrap_or(0))
}

fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

enum Outcome {
    Ok,
    Failed(String),
}

async fn open(addr: SocketAddr, step: Duration) -> Result<TcpStream> {
    let mut s = tokio::time::timeout(step, TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("connect timed out"))?
        .map_err(|e| anyhow!("connect: {}", e.kind()))?;
    s.set_nodelay(true)?;
    let mut back = [0u8; 1];
    tokio::time::timeout(step, async {
        s.write_all(&[ECHO, b'!']).await?;
        s.read_exact(&mut back).await
    })
    .await
    .map_err(|_| anyhow!("first round trip timed out"))?
    .map_err(|e| anyhow!("first round trip: {}", e.kind()))?;
    if back != [b'!'] {
        bail!("first round trip echoed {back:?}");
    }
    Ok(s)
}

async fn transfer(s: TcpStream, data: Arc<Vec<u8>>, step: Duration) -> Outcome {
    let want = Sha256::digest(data.as_slice());
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await?;
        w.shutdown().await
    });
    let read = tokio::time::timeout(step, async {
        let mut h = Sha256::new();
        let mut n = 0usize;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let k = r.read(&mut buf).await?;
            if k == 0 {
                return Ok::<_, std::io::Error>((n, h.finalize()));
            }
            h.update(&buf[..k]);
            n += k;
        }
    })
    .await;
    let wrote = writer.await;
    match (read, wrote) {
        (Err(_), _) => Outcome::Failed("echo not complete before the deadline".into()),
        (Ok(Err(e)), _) => Outcome::Failed(format!("reading the echo: {}", e.kind())),
        (_, Ok(Err(e))) => Outcome::Failed(format!("sending the payload: {}", e.kind())),
        (_, Err(e)) => Outcome::Failed(format!("writer task: {e}")),
        (Ok(Ok((n, got))), Ok(Ok(()))) if got == want => {
            let _ = n;
            Outcome::Ok
        }
        (Ok(Ok((n, _))), _) => Outcome::Failed(format!("echo differs (got {n} bytes)")),
    }
}

/// Runs the soak against `addr` (the `proxy app` listener); `procs` are the
/// path's processes (role, pid).
///
/// # Errors
/// When the descriptor limit is too small for the plan.
pub async fn run(addr: SocketAddr, plan: &Plan, procs: &[(&'static str, u32)]) -> Result<Report> {
    // Normally raised by the caller before the processes start (they inherit it).
    raise_nofile(fds_needed(plan.conns), "SOAK_CONNS")?;
    let nofile = nofile_of(std::process::id());
    let n = plan.conns;
    let pace = Arc::new(Semaphore::new(plan.in_flight.max(1)));
    let opened = Arc::new(Barrier::new(n + 1));
    let go = Arc::new(Barrier::new(n + 1));
    let mut sizes = Vec::with_capacity(n);
    let mut rng = plan.seed | 1;
    for _ in 0..n {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        sizes.push(1 + (rng % plan.max_payload.max(1) as u64) as usize);
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (i, &len) in sizes.iter().enumerate() {
        let (pace, opened, go, step) = (pace.clone(), opened.clone(), go.clone(), plan.step);
        let seed = plan.seed ^ (i as u64 + 1);
        tasks.push(tokio::spawn(async move {
            let conn = match pace.acquire().await {
                Ok(_permit) => open(addr, step).await,
                Err(_) => Err(anyhow!("pacing closed")),
            };
            let held = conn.is_ok();
            opened.wait().await;
            go.wait().await;
            let outcome = match conn {
                Ok(s) => transfer(s, Arc::new(payload(len, seed)), step).await,
                Err(e) => Outcome::Failed(format!("opening: {e}")),
            };
            (held, outcome)
        }));
    }
    opened.wait().await;
    let open_time = start.elapsed();
    let mut figures: Vec<ProcFigures> = procs
        .iter()
        .map(|&(role, pid)| ProcFigures {
            role,
            fds_held: fds_of(pid),
            rss_held_kib: vm_rss_kib(pid).unwrap_or(0),
            rss_peak_kib: 0,
            nofile: nofile_of(pid),
        })
        .collect();
    let transfer_start = Instant::now();
    go.wait().await;
    let mut report = Report {
        conns: n,
        held_at_once: 0,
        completed: 0,
        bytes_each_way: sizes.iter().map(|&s| s as u64).sum(),
        bytes_lost: 0,
        failures: BTreeMap::new(),
        open_time,
        transfer_time: Duration::ZERO,
        procs: Vec::new(),
        nofile,
    };
    for (task, &len) in tasks.into_iter().zip(&sizes) {
        let (held, outcome) = match task.await {
            Ok(r) => r,
            Err(e) => (false, Outcome::Failed(format!("task: {e}"))),
        };
        report.held_at_once += usize::from(held);
        match outcome {
            Outcome::Ok => report.completed += 1,
            Outcome::Failed(why) => {
                report.bytes_lost += 2 * len as u64;
                *report.failures.entry(why).or_default() += 1;
            }
        }
    }
    report.transfer_time = transfer_start.elapsed();
    for (f, &(_, pid)) in figures.iter_mut().zip(procs) {
        f.rss_peak_kib = vm_hwm_kib(pid);
    }
    report.procs = figures;
    Ok(report)
}
