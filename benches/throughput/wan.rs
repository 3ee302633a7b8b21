//! The round-trip and responsiveness stages (issue 12). `rtt`: every path is started
//! afresh with a **delay relay** between its client and its server (or its load
//! balancer; for plain TCP, in front of the backend), which delays its accept by one
//! RTT (standing in for the TCP handshake) and delivers every chunk each way a fixed
//! one-way delay after reading it (netem is not available on these machines); then
//! the time from a local connect to the backend's answer to the first byte, in RTTs,
//! for the first connection and the median of the next ones. `contend`: the latency
//! of one-byte echoes on a path, alone and while another connection of the same
//! path downloads in bulk (for oneport: a second stream on the same session).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::backend::{CHUNK, DOWNLOAD, ECHO, PING, PONG};

/// The one-way delay new paths get in front of their server, while set.
static DELAY: Mutex<Option<Duration>> = Mutex::new(None);

/// Sets (or clears) the one-way delay of the paths started from now on.
pub fn set_delay(one_way: Option<Duration>) {
    *DELAY.lock().unwrap_or_else(|p| p.into_inner()) = one_way;
}

/// Where a client should connect to reach `to`: `to` itself, or a delay relay in
/// front of it while a delay is set.
pub async fn front(to: SocketAddr) -> Result<SocketAddr> {
    let delay = *DELAY.lock().unwrap_or_else(|p| p.into_inner());
    match delay {
        None => Ok(to),
        Some(d) => delay_relay(to, d).await,
    }
}

/// A relay in front of `to`: each accepted connection waits one RTT before it is
/// passed on, and every chunk each way is delivered `one_way` after it was read.
/// It lives as long as the bench process.
async fn delay_relay(to: SocketAddr, one_way: Duration) -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await.context("delay relay")?;
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

/// One direction: chunks are written `d` after they were read, in order.
async fn delayed(mut r: OwnedReadHalf, mut w: OwnedWriteHalf, d: Duration) {
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

/// Time from a connect to `addr` to the backend's answer to the first byte.
async fn first_answer(addr: SocketAddr) -> Result<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    s.set_nodelay(true)?;
    s.write_all(&[PING]).await.context("ping")?;
    let mut b = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut b)).await.context("no answer in 30 s")??;
    if b[0] != PONG {
        bail!("got byte {} instead of the backend's answer", b[0]);
    }
    Ok(t.elapsed())
}

/// Round trips to the first answer: the first connection and the median of
/// connections 2..=`n`.
#[derive(Debug, Clone, Copy)]
pub struct Rtts {
    /// The first connection after the path started.
    pub first: f64,
    /// The median of the later ones.
    pub nth: f64,
}

/// Measures a path started under a delay of `one_way`; `n` connections.
pub async fn rtts(addr: SocketAddr, one_way: Duration, n: usize) -> Result<Rtts> {
    let rtt = (one_way * 2).as_secs_f64();
    let first = first_answer(addr).await?.as_secs_f64() / rtt;
    let mut later = Vec::new();
    for _ in 1..n.max(2) {
        later.push(first_answer(addr).await?.as_secs_f64() / rtt);
    }
    later.sort_by(f64::total_cmp);
    Ok(Rtts { first, nth: later[later.len() / 2] })
}

/// Echo latencies, p50 and p99 in ms, alone and during a bulk download on another
/// connection of the same path, and that download's MiB/s.
#[derive(Debug, Clone, Copy)]
pub struct Contention {
    /// p50, p99 with nothing else on the path.
    pub alone: (f64, f64),
    /// p50, p99 while the download runs.
    pub loaded: (f64, f64),
    /// The download's rate meanwhile.
    pub bulk_mib_s: f64,
}

/// One-byte echoes on a fresh connection for `dur` (one at a time, 5 ms apart, as
/// keystrokes would come): p50 and p99 in ms.
async fn echoes(addr: SocketAddr, dur: Duration) -> Result<(f64, f64)> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(&[ECHO]).await?;
    let mut lat = Vec::new();
    let end = Instant::now() + dur;
    let mut b = [0u8; 1];
    while Instant::now() < end {
        let t = Instant::now();
        s.write_all(b"k").await?;
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut b))
            .await
            .context("echo: no answer in 10 s")??;
        if &b != b"k" {
            bail!("echo: got {:?}", b[0]);
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lat.sort_by(f64::total_cmp);
    let pick = |q: f64| lat.get(((lat.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    Ok((pick(0.5), pick(0.99)))
}

/// Echo latency on `addr` alone, then while a download runs on another connection.
pub async fn contention(addr: SocketAddr, dur: Duration) -> Result<Contention> {
    let alone = echoes(addr, dur).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut bulk = TcpStream::connect(addr).await?;
    bulk.set_nodelay(true)?;
    bulk.write_all(&[DOWNLOAD]).await?;
    let flag = stop.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        let (mut got, t) = (0u64, Instant::now());
        while !flag.load(Ordering::Relaxed) {
            match bulk.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        got as f64 / (1024.0 * 1024.0) / t.elapsed().as_secs_f64()
    });
    // Let the download fill every buffer on the way first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loaded = echoes(addr, dur).await;
    stop.store(true, Ordering::Relaxed);
    let bulk_mib_s = reader.await.unwrap_or(0.0);
    Ok(Contention { alone, loaded: loaded?, bulk_mib_s })
}
