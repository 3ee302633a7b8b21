//! Live counters of a listener: connections open and in total, bytes each way, the
//! last error. Each accepted stream is wrapped in a [`Metered`], which adds what
//! every read and write moved to its connection's and the listener's atomics (no
//! locks on the data path); when the last handle of a connection goes, it leaves
//! the open count and, if asked, logs one line: peer, duration, bytes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The counters of one listener.
#[derive(Debug, Default)]
pub struct Meter {
    open: AtomicU64,
    total: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
    each: AtomicBool,
    last_error: Mutex<Option<(SystemTime, String)>>,
}

/// What the counters say now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Connections open.
    pub open: u64,
    /// Connections accepted since start.
    pub total: u64,
    /// Bytes read from the clients (towards the resource).
    pub up: u64,
    /// Bytes written to the clients.
    pub down: u64,
    /// The last error reported, and when.
    pub last_error: Option<(SystemTime, String)>,
}

impl Meter {
    /// Fresh counters; `each`: log one INFO line per closed connection (else DEBUG).
    pub fn new(each: bool) -> Arc<Meter> {
        let m = Meter::default();
        m.each.store(each, Relaxed);
        Arc::new(m)
    }

    /// Whether to log one INFO line per closed connection (else DEBUG).
    pub fn log_each(&self, each: bool) {
        self.each.store(each, Relaxed);
    }

    /// Counts a new connection from `peer` and wraps its stream.
    pub fn wrap<S>(self: &Arc<Self>, stream: S, peer: SocketAddr) -> Metered<S> {
        self.open.fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
        let conn = Arc::new(Conn {
            meter: self.clone(),
            peer,
            started: Instant::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
        });
        Metered { inner: stream, conn }
    }

    /// Records `message` as the last error.
    pub fn error(&self, message: impl Into<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some((SystemTime::now(), message.into()));
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Relaxed)
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            open: self.open.load(Relaxed),
            total: self.total.load(Relaxed),
            up: self.up.load(Relaxed),
            down: self.down.load(Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// One connection's counts, shared by the halves of its stream.
#[derive(Debug)]
struct Conn {
    meter: Arc<Meter>,
    peer: SocketAddr,
    started: Instant,
    up: AtomicU64,
    down: AtomicU64,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.meter.open.fetch_sub(1, Relaxed);
        let line = closed_line(self.peer, self.started.elapsed(), self.up.load(Relaxed), self.down.load(Relaxed));
        if self.meter.each.load(Relaxed) {
            tracing::info!("{line}");
        } else {
            tracing::debug!("{line}");
        }
    }
}

/// The line logged when a connection ends.
pub fn closed_line(peer: SocketAddr, took: std::time::Duration, up: u64, down: u64) -> String {
    format!("connection from {peer} closed after {:.1}s: {up} bytes up, {down} bytes down", took.as_secs_f64())
}

/// A stream whose reads count as up and writes as down.
#[derive(Debug)]
pub struct Metered<S> {
    inner: S,
    conn: Arc<Conn>,
}

impl<S> Metered<S> {
    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.conn.peer
    }

    /// The listener's counters.
    pub fn meter(&self) -> &Arc<Meter> {
        &self.conn.meter
    }

    /// Wraps another stream of the same connection (a half of this one), counting
    /// into the same connection.
    pub fn also<T>(&self, stream: T) -> Metered<T> {
        Metered { inner: stream, conn: self.conn.clone() }
    }

    /// Splits into counted halves (for a `TcpStream`).
    pub fn split_with<'a, R, W>(&'a mut self, split: impl FnOnce(&'a mut S) -> (R, W)) -> (Metered<R>, Metered<W>) {
        let conn = self.conn.clone();
        let (r, w) = split(&mut self.inner);
        (Metered { inner: r, conn: conn.clone() }, Metered { inner: w, conn })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            self.conn.up.fetch_add(n, Relaxed);
            self.conn.meter.up.fetch_add(n, Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            self.conn.down.fetch_add(n as u64, Relaxed);
            self.conn.meter.down.fetch_add(n as u64, Relaxed);
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.conn.down.fetch_add(n as u64, Relaxed);
            self.conn.meter.down.fetch_add(n as u64, Relaxed);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Bytes as people read them: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_bytes_each_way_and_open_connections() {
        let meter = Meter::new(false);
        let (mut client, proxy) = tokio::io::duplex(1024);
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut m = meter.wrap(proxy, peer);
        client.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        m.read_exact(&mut got).await.unwrap();
        m.write_all(b"abc").await.unwrap();
        let s = meter.snapshot();
        assert_eq!((s.open, s.total, s.up, s.down), (1, 1, 5, 3));
        let half = m.also(());
        drop(m);
        assert_eq!(meter.open(), 1, "a half still holds the connection");
        drop(half);
        assert_eq!(meter.snapshot().open, 0);
        assert_eq!(meter.snapshot().total, 1);
    }

    #[test]
    fn closed_line_names_peer_duration_and_bytes() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            closed_line(peer, std::time::Duration::from_millis(1200), 77, 1234),
            "connection from 127.0.0.1:5000 closed after 1.2s: 77 bytes up, 1234 bytes down"
        );
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
