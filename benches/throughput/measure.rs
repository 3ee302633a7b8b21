//! The three measurements, each against a loopback address that leads to the
//! backend: throughput one way (bytes checked against the pattern), new
//! connections per second (connect, one-byte round trip, close), and resident
//! memory per idle connection (VmRSS of the path's processes before and after
//! opening N connections that each did one round trip and then idle).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::backend::{Pattern, CHUNK, DOWNLOAD, ECHO, PING, PONG, REPORT, UPLOAD};

/// Deadline for any one network step of the bench's own client.
const STEP: Duration = Duration::from_secs(20);

async fn step<T>(what: &str, fut: impl std::future::Future<Output = std::io::Result<T>>) -> Result<T> {
    tokio::time::timeout(STEP, fut)
        .await
        .map_err(|_| anyhow!("{what}: no progress in {STEP:?}"))?
        .context(what.to_string())
}

async fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let s = step("connect", TcpStream::connect(addr)).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Bytes moved over a time.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Bytes that arrived, checked.
    pub bytes: u64,
    /// Seconds it took.
    pub secs: f64,
    /// CPU seconds the path's own processes used meanwhile (user + system), when
    /// it has processes.
    pub cpu_secs: Option<f64>,
}

impl Rate {
    /// MiB/s.
    pub fn mib_s(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.secs
    }

    /// CPU seconds of the path per GiB moved: how much work the path does, a
    /// figure that other load on the machine disturbs far less than MiB/s.
    pub fn cpu_per_gib(&self) -> Option<f64> {
        self.cpu_secs.map(|c| c / (self.bytes as f64 / (1u64 << 30) as f64))
    }
}

/// CPU time (user + system, all threads) used so far by `pids` and every process
/// they started (socat forks one per connection): each one's own time plus that of
/// its children already waited for, from /proc/PID/stat (clock ticks of 1/100 s:
/// Linux's USER_HZ). A child that exited counts once: in its parent once reaped,
/// as a zombie before.
pub fn cpu_secs(pids: &[u32]) -> Result<f64> {
    let mut all: Vec<(u32, u32, u64)> = Vec::new(); // (pid, parent, ticks)
    for e in std::fs::read_dir("/proc").context("reading /proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        // Processes come and go while we read: one that is gone is not ours.
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if let Some((ppid, ticks)) = parse_stat(&stat) {
                all.push((pid, ppid, ticks));
            }
        }
    }
    let mut tree: Vec<u32> = pids.to_vec();
    for p in pids {
        if !all.iter().any(|a| a.0 == *p) {
            bail!("process {p} of the path is gone (or its /proc/{p}/stat is unreadable)");
        }
    }
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(all.iter().filter(|a| a.1 == parent && !tree.contains(&a.0)).map(|a| a.0).collect::<Vec<_>>());
        i += 1;
    }
    let ticks: u64 = all.iter().filter(|a| tree.contains(&a.0)).map(|a| a.2).sum();
    Ok(ticks as f64 / 100.0)
}

/// CPU seconds this process has used itself (user + system, all threads; not
/// its children): the benchmark's load, sink and backend.
pub fn own_cpu_secs() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let f = after_comm(&stat);
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    match (tick(11), tick(12)) {
        (Some(u), Some(s)) => Ok((u + s) as f64 / 100.0),
        _ => bail!("/proc/self/stat: no utime and stime"),
    }
}

/// The fields of a /proc/PID/stat line after the command name, which (field 2)
/// may hold spaces: index 0 is the state, 1 the parent, 11 and 12 utime and stime.
fn after_comm(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')').map(|r| r.1).unwrap_or("").split_whitespace().collect()
}

/// Busy and total CPU ticks of the whole machine so far, from the first line of
/// /proc/stat (idle and iowait are the idle part; steal counts as busy: the time
/// was not ours to use).
pub fn machine_ticks() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_machine(&stat).ok_or_else(|| anyhow::anyhow!("/proc/stat: no aggregate cpu line"))
}

/// Proves [`parse_machine`] right on a known line and refusing a short one.
/// (Benches run without the test harness, so this runs at start-up.)
pub fn self_check() -> bool {
    let line = "cpu  100 5 50 800 20 3 7 15 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
    parse_machine(line) == Some((180, 1000)) && parse_machine("cpu  1 2 3\n").is_none()
}

/// (busy, total) ticks from /proc/stat's aggregate `cpu` line (pure).
fn parse_machine(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    // user nice system idle iowait irq softirq steal (guest times are already
    // counted in user and nice).
    let f: Vec<u64> = line.split_whitespace().skip(1).take(8).map(|v| v.parse().ok()).collect::<Option<_>>()?;
    if f.len() < 8 {
        return None;
    }
    let total: u64 = f.iter().sum();
    Some((total - f[3] - f[4], total))
}

/// (parent pid, utime + stime + cutime + cstime) from a /proc/PID/stat line.
fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    let f = after_comm(stat);
    // ppid is field 4 of the line (index 1 after ')'); utime, stime, cutime and
    // cstime are fields 14 to 17 (indices 11 to 14).
    let ppid = f.get(1)?.parse().ok()?;
    let mut ticks = 0u64;
    for i in 11..=14 {
        ticks += f.get(i)?.parse::<u64>().ok()?;
    }
    Some((ppid, ticks))
}

/// Client → backend for `dur`: write the pattern, then on up to the next multiple
/// of [`REPORT`], and wait for the backend's report of exactly that count. The time
/// runs until that answer, so bytes still in buffers along the path count only once
/// they have arrived. (No half-close: wstunnel would close the tunnel at it.)
pub async fn upload(addr: SocketAddr, dur: Duration, pattern: &Pattern) -> Result<Rate> {
    let mut s = connect(addr).await?;
    let start = Instant::now();
    step("request", s.write_all(&[UPLOAD])).await?;
    let mut sent = 0u64;
    while start.elapsed() < dur || sent % REPORT != 0 {
        let n = (REPORT - sent % REPORT).min(CHUNK as u64) as usize;
        sent += step("upload write", s.write(pattern.at(sent, n))).await? as u64;
    }
    let mut answer = [0u8; 9];
    let got = loop {
        step("backend's count", s.read_exact(&mut answer)).await?;
        let got = u64::from_be_bytes(answer[..8].try_into().expect("8 bytes"));
        if got >= sent {
            break got;
        }
    };
    let secs = start.elapsed().as_secs_f64();
    if got != sent {
        bail!("upload: sent {sent} bytes, the backend received {got}");
    }
    if answer[8] != 1 {
        bail!("upload: the bytes the backend received differ from those sent");
    }
    Ok(Rate { bytes: got, secs, cpu_secs: None })
}

/// Backend → client for `dur`, timed from the first byte (so the path's set-up is
/// not in the figure); every byte is checked.
pub async fn download(addr: SocketAddr, dur: Duration, pattern: &Pattern) -> Result<Rate> {
    let mut s = connect(addr).await?;
    step("request", s.write_all(&[DOWNLOAD])).await?;
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    let mut start = None;
    loop {
        let n = step("download read", s.read(&mut buf)).await?;
        if n == 0 {
            bail!("download: the path closed after {got} bytes");
        }
        let t0 = *start.get_or_insert_with(Instant::now);
        if !pattern.matches(got, &buf[..n]) {
            bail!("download: bytes at offset {got} differ from those the backend sent");
        }
        got += n as u64;
        if t0.elapsed() >= dur {
            return Ok(Rate { bytes: got, secs: t0.elapsed().as_secs_f64(), cpu_secs: None });
        }
    }
}

/// New connections: count and latency.
#[derive(Debug, Clone)]
pub struct ConnRate {
    /// Connections completed.
    pub conns: u64,
    /// CPU seconds the path's processes used meanwhile, when it has processes.
    pub cpu_secs: Option<f64>,
    /// Per second.
    pub per_sec: f64,
    /// Median latency of one connection (connect → round trip), ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

impl ConnRate {
    /// CPU milliseconds of the path per connection.
    pub fn cpu_ms_per_conn(&self) -> Option<f64> {
        self.cpu_secs.map(|c| c * 1000.0 / self.conns.max(1) as f64)
    }
}

/// One connection: connect, one-byte round trip, close.
async fn one_conn(addr: SocketAddr) -> Result<TcpStream> {
    let mut s = connect(addr).await?;
    step("ping", s.write_all(&[PING])).await?;
    let mut b = [0u8; 1];
    step("pong", s.read_exact(&mut b)).await?;
    if b[0] != PONG {
        bail!("round trip: got byte {} instead of {PONG}", b[0]);
    }
    Ok(s)
}

/// One connection that first moves `bulk` bytes each way (echoed, checked), so
/// that every buffer along the path has seen a burst, and is then left open.
async fn bulk_conn(addr: SocketAddr, bulk: usize, pattern: Arc<Pattern>) -> Result<TcpStream> {
    let s = connect(addr).await?;
    let (mut r, mut w) = s.into_split();
    let p = pattern.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&[ECHO]).await?;
        let mut sent = 0u64;
        while (sent as usize) < bulk {
            let n = (bulk - sent as usize).min(CHUNK);
            w.write_all(p.at(sent, n)).await?;
            sent += n as u64;
        }
        Ok::<_, std::io::Error>(w)
    });
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0usize;
    while got < bulk {
        let n = step("echo read", r.read(&mut buf[..(bulk - got).min(CHUNK)])).await?;
        if n == 0 {
            bail!("echo: the path closed after {got} of {bulk} bytes");
        }
        if !pattern.matches(got as u64, &buf[..n]) {
            bail!("echo: bytes at offset {got} differ from those sent");
        }
        got += n;
    }
    let w = step("echo write", async { writer.await.map_err(std::io::Error::other)? }).await?;
    Ok(r.reunite(w)?)
}

/// `concurrency` workers open connections one after another for `dur`.
pub async fn conn_rate(addr: SocketAddr, dur: Duration, concurrency: usize) -> Result<ConnRate> {
    let start = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let done = done.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while start.elapsed() < dur {
                let t = Instant::now();
                drop(one_conn(addr).await?);
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pick = |q: f64| lat.get(((lat.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    let conns = done.load(Ordering::Relaxed);
    Ok(ConnRate { conns, cpu_secs: None, per_sec: conns as f64 / secs, p50_ms: pick(0.5), p99_ms: pick(0.99) })
}

/// Resident memory of one process before and after the idle connections.
#[derive(Debug, Clone)]
pub struct Rss {
    /// The process's role in the path.
    pub role: &'static str,
    /// VmRSS before, KiB.
    pub before_kib: u64,
    /// VmRSS with the connections open, KiB.
    pub after_kib: u64,
}

impl Rss {
    /// KiB per connection.
    pub fn per_conn_kib(&self, n: usize) -> f64 {
        (self.after_kib as f64 - self.before_kib as f64) / n as f64
    }
}

/// VmRSS of `pid` in KiB, from /proc.
pub fn vm_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/PID/status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow!("no VmRSS for {pid}"))?;
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).ok_or_else(|| anyhow!("bad VmRSS line {line:?}"))
}

/// Reads the RSS of `pids` every 200 ms until two readings agree (the processes
/// have settled), for at most 3 s. Idling is the thing measured here, hence the
/// waits.
async fn settled_rss(pids: &[u32]) -> Result<Vec<u64>> {
    let mut last = pids.iter().map(|&p| vm_rss_kib(p)).collect::<Result<Vec<_>>>()?;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = pids.iter().map(|&p| vm_rss_kib(p)).collect::<Result<Vec<_>>>()?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(last)
}

/// Opens `n` connections (16 at a time), each does one round trip (or, with
/// `bulk` > 0, moves `bulk` bytes each way) and then idles; reads the RSS of
/// `procs` before and after. A first connection (opened and closed) warms the path
/// up before the "before" reading.
pub async fn idle(addr: SocketAddr, n: usize, bulk: usize, procs: &[(&'static str, u32)]) -> Result<Vec<Rss>> {
    drop(one_conn(addr).await.context("warm-up connection")?);
    let pattern = Arc::new(Pattern::new());
    let pids: Vec<u32> = procs.iter().map(|p| p.1).collect();
    let before = settled_rss(&pids).await?;
    let mut open = Vec::with_capacity(n);
    let mut batch = Vec::new();
    for i in 0..n {
        batch.push(if bulk == 0 {
            tokio::spawn(one_conn(addr))
        } else {
            tokio::spawn(bulk_conn(addr, bulk, pattern.clone()))
        });
        if batch.len() == 16 || i + 1 == n {
            for c in batch.drain(..) {
                open.push(c.await?.with_context(|| format!("idle connection {}", open.len() + 1))?);
            }
        }
    }
    let after = settled_rss(&pids).await?;
    // No connection may have been closed by the path while idle.
    let closed = open.iter().filter(|s| matches!(s.try_read(&mut [0u8; 1]), Ok(0))).count();
    if closed > 0 {
        bail!("{closed} of {n} idle connections were closed by the path while idle");
    }
    drop(open);
    Ok(procs
        .iter()
        .zip(before.iter().zip(after))
        .map(|(p, (&b, a))| Rss { role: p.0, before_kib: b, after_kib: a })
        .collect())
}

/// Raises the soft RLIMIT_NOFILE to `need` with util-linux `prlimit` (children
/// inherit it), or says how when the hard limit is lower; returns the soft limit
/// in force (so `raise_nofile(0, ..)` reads it).
pub fn raise_nofile(need: u64, knob: &str) -> Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").context("reading /proc/self/limits")?;
    let line =
        limits.lines().find(|l| l.starts_with("Max open files")).ok_or_else(|| anyhow!("no open-files limit"))?;
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    let parse = |v: &str| if v == "unlimited" { Some(u64::MAX) } else { v.parse().ok() };
    let (Some(soft), Some(hard)) = (nums.first().and_then(|v| parse(v)), nums.get(1).and_then(|v| parse(v))) else {
        bail!("cannot read the open-files limit from {line:?}");
    };
    if soft >= need {
        return Ok(soft);
    }
    if hard < need {
        bail!("{knob} needs {need} open files per process but the hard limit is {hard}: raise it (`ulimit -Hn {need}` as root, or LimitNOFILE) or lower {knob}");
    }
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={need}:{hard}")])
        .status()
        .context("running prlimit (util-linux) to raise the open-files limit; or run `ulimit -n` first")?;
    if !status.success() {
        bail!("prlimit could not raise the open-files limit to {need}: run `ulimit -n {need}` first");
    }
    Ok(need)
}
