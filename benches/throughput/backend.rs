//! The backend behind every peer: one loopback listener in the bench process. The
//! first byte a connection sends picks what it does:
//! - [`UPLOAD`]: a sink. It checks every byte against the [`Pattern`] and, each
//!   time the count reaches a multiple of [`REPORT`] and once more at EOF, answers
//!   with the byte count (u64 BE) and a verdict byte (1 = intact). The reports let
//!   the client end an upload without a half-close, which wstunnel does not carry
//!   (it closes the whole tunnel at the first EOF).
//! - [`DOWNLOAD`]: a source. It writes the pattern until the client goes away.
//! - [`PING`]: answers one byte (`p`), then holds the connection open until EOF.
//! - [`ECHO`]: sends back everything it receives, until EOF.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Request byte: upload (client → backend).
pub const UPLOAD: u8 = b'U';
/// Request byte: download (backend → client).
pub const DOWNLOAD: u8 = b'D';
/// Request byte: one-byte round trip, then idle until EOF.
pub const PING: u8 = b'P';
/// Request byte: echo until EOF.
pub const ECHO: u8 = b'E';
/// The answer to [`PING`].
pub const PONG: u8 = b'p';

/// Read and write chunk size of the bench's own sockets.
pub const CHUNK: usize = 64 * 1024;
/// The sink reports its count each time it reaches a multiple of this.
pub const REPORT: u64 = 1 << 20;
/// The pattern's period: a prime, so chunk boundaries never line up with it.
const PERIOD: usize = 251;

/// The byte stream every transfer carries: byte `k` is `k mod 251`. Checking a
/// chunk is one `memcmp` against a slice of a precomputed buffer, cheap enough to
/// check every byte at several GiB/s without disturbing the measurement much.
#[derive(Debug)]
pub struct Pattern {
    buf: Vec<u8>,
}

impl Pattern {
    /// Builds the buffer (one chunk plus one period).
    pub fn new() -> Pattern {
        Pattern { buf: (0..CHUNK + PERIOD).map(|i| (i % PERIOD) as u8).collect() }
    }

    /// The `len` (≤ [`CHUNK`]) bytes of the stream starting at stream offset `at`.
    pub fn at(&self, at: u64, len: usize) -> &[u8] {
        let start = (at % PERIOD as u64) as usize;
        &self.buf[start..start + len.min(CHUNK)]
    }

    /// Proves the checker can fail: a shifted stream must not match. (Benches run
    /// without the test harness, so this runs at start-up instead of as a #[test].)
    pub fn self_check(&self) -> bool {
        let whole: Vec<u8> = (0..3 * CHUNK).map(|i| (i % PERIOD) as u8).collect();
        [0usize, 1, 250, 251, 70_000].iter().all(|&at| self.matches(at as u64, &whole[at..at + CHUNK + 7]))
            && !self.matches(1, &whole[..100])
    }

    /// Whether `data` is what the stream holds at offset `at`.
    pub fn matches(&self, at: u64, data: &[u8]) -> bool {
        data.chunks(CHUNK).enumerate().all(|(i, c)| c == self.at(at + (i * CHUNK) as u64, c.len()))
    }
}

/// Starts the backend on 127.0.0.1:0 and returns its address.
///
/// # Errors
/// When the listener cannot be bound.
pub async fn spawn() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let pattern = Arc::new(Pattern::new());
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((s, _)) => {
                    let pattern = pattern.clone();
                    tokio::spawn(async move {
                        // A peer probing the port, or a client the bench gave up on:
                        // nothing to report here, the client side reports failures.
                        let _ = serve(s, &pattern).await;
                    });
                }
                // EMFILE and the like: the client side will time out and say so.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    });
    Ok(addr)
}

async fn serve(mut s: TcpStream, pattern: &Pattern) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut mode = [0u8; 1];
    if s.read(&mut mode).await? == 0 {
        return Ok(()); // a readiness probe
    }
    match mode[0] {
        UPLOAD => sink(s, pattern).await,
        DOWNLOAD => source(s, pattern).await,
        PING => {
            s.write_all(&[PONG]).await?;
            let mut rest = [0u8; 64];
            while s.read(&mut rest).await? > 0 {}
            Ok(())
        }
        ECHO => {
            let (mut r, mut w) = s.split();
            tokio::io::copy(&mut r, &mut w).await?;
            w.shutdown().await
        }
        other => Err(io::Error::new(io::ErrorKind::InvalidData, format!("unknown request byte {other}"))),
    }
}

async fn sink(mut s: TcpStream, pattern: &Pattern) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    let mut intact = true;
    let answer = |total: u64, intact: bool| {
        let mut a = total.to_be_bytes().to_vec();
        a.push(u8::from(intact));
        a
    };
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        intact &= pattern.matches(total, &buf[..n]);
        let before = total;
        total += n as u64;
        // The read that reaches or passes a multiple: a client that stops on one
        // gets its exact count in this report.
        if total / REPORT > before / REPORT {
            s.write_all(&answer(total, intact)).await?;
        }
    }
    s.write_all(&answer(total, intact)).await?;
    s.shutdown().await
}

async fn source(mut s: TcpStream, pattern: &Pattern) -> io::Result<()> {
    let mut sent = 0u64;
    loop {
        // Ends with an error (reset, broken pipe) when the client closes: expected.
        let n = s.write(pattern.at(sent, CHUNK)).await?;
        if n == 0 {
            return Ok(());
        }
        sent += n as u64;
    }
}
