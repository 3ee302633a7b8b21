//! The ping framing of negotiated `-ping` protocols (docs/protocol.md §6), and of the legacy
//! `alpn-ping` upgrade: every chunk is sent as `u32 BE length ‖ bytes`, a zero
//! length is a ping that the reader drops, and the stream seen by the caller has no
//! frame boundaries.
//!
//! [`PingStream`] wraps a byte stream both ways. On the server it also sends the
//! pings: its ping timer is polled from `poll_read`, which the relay and rustls keep
//! pending on for the whole life of a connection, so an idle connection still emits
//! four zero bytes every interval without a task of its own.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// The largest data frame a writer emits. Larger writes are split.
pub const MAX_WRITE_FRAME: usize = 64 * 1024;
const PING: [u8; 4] = [0; 4];
/// The largest write buffer kept once written out.
const KEEP_PENDING: usize = 64;

/// A byte stream carried in ping frames. See the module docs.
#[derive(Debug)]
pub struct PingStream<S> {
    inner: S,
    header: [u8; 4],
    header_len: usize,
    remaining: usize,
    pending: Vec<u8>,
    pending_pos: usize,
    needs_flush: bool,
    pinger: Option<Interval>,
    shut: bool,
}

impl<S> PingStream<S> {
    /// Frames `inner`. With `ping_every`, the stream also sends a ping each period
    /// (the server's side); without it, it only frames and deframes (the client's).
    pub fn new(inner: S, ping_every: Option<Duration>) -> Self {
        let pinger = ping_every.filter(|d| !d.is_zero()).map(|period| {
            let mut iv = tokio::time::interval_at(Instant::now() + period, period);
            iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
            iv
        });
        PingStream {
            inner,
            header: [0; 4],
            header_len: 0,
            remaining: 0,
            pending: Vec::new(),
            pending_pos: 0,
            needs_flush: false,
            pinger,
            shut: false,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> PingStream<S> {
    /// Writes out the pending frame bytes.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_pos < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.pending_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_pos += n;
            self.needs_flush = true;
        }
        // Written out: give a large buffer back (it held a frame the stream did not
        // take at once) so an idle connection does not keep it; pings reuse a small one.
        if self.pending.capacity() > KEEP_PENDING {
            self.pending = Vec::new();
        } else {
            self.pending.clear();
        }
        self.pending_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Queues a ping when the timer is due and pushes queued bytes out as far as the
    /// socket allows. Never returns `Pending`: the wakers it registers bring the task
    /// back here.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(pinger) = self.pinger.as_mut().filter(|_| !self.shut) else {
            return Ok(());
        };
        while pinger.poll_tick(cx).is_ready() {
            // Appending is safe: `pending` always ends at a frame boundary (it holds
            // whole frames or the tail of one).
            self.pending.extend_from_slice(&PING);
        }
        if let Poll::Ready(r) = self.poll_drain(cx) {
            r?;
            if self.needs_flush {
                if let Poll::Ready(r) = Pin::new(&mut self.inner).poll_flush(cx) {
                    r?;
                    self.needs_flush = false;
                }
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PingStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.poll_keepalive(cx)?;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.remaining > 0 {
                // Through `Take`, so that a buffer the caller has not zeroed is
                // not zeroed here either.
                let before = buf.filled().len();
                let mut body = tokio::io::AsyncReadExt::take(&mut this.inner, this.remaining as u64);
                ready!(Pin::new(&mut body).poll_read(cx, buf))?;
                let n = buf.filled().len() - before;
                if n == 0 {
                    return Poll::Ready(Err(truncated("in a frame's body")));
                }
                this.remaining -= n;
                return Poll::Ready(Ok(()));
            }
            let mut sub = ReadBuf::new(&mut this.header[this.header_len..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut sub))?;
            let n = sub.filled().len();
            if n == 0 {
                if this.header_len == 0 {
                    return Poll::Ready(Ok(())); // clean EOF between frames
                }
                return Poll::Ready(Err(truncated("in a frame header")));
            }
            this.header_len += n;
            if this.header_len == 4 {
                this.header_len = 0;
                // A zero length is a ping: drop it and read on.
                this.remaining = u32::from_be_bytes(this.header) as usize;
            }
        }
    }
}

fn truncated(where_: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("ping framing: stream ended {where_}"))
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PingStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0)); // a writer never emits an empty data frame
        }
        let n = buf.len().min(MAX_WRITE_FRAME);
        let header = (n as u32).to_be_bytes();
        if this.inner.is_write_vectored() {
            // Header and payload in one call: TLS encrypts them straight into its
            // records, and the payload is not copied into `pending` first.
            let frame = [IoSlice::new(&header), IoSlice::new(&buf[..n])];
            let w = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &frame))?;
            if w == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.needs_flush = true;
            // The frame is ours now: keep what the stream did not take of it (the
            // drain above left `pending` empty), flush finishes it.
            if w < 4 {
                this.pending.extend_from_slice(&header[w..]);
            }
            this.pending.extend_from_slice(&buf[w.saturating_sub(4).min(n)..n]);
            return Poll::Ready(Ok(n));
        }
        this.pending.reserve(4 + n);
        this.pending.extend_from_slice(&header);
        this.pending.extend_from_slice(&buf[..n]);
        // The frame is ours now; push what the socket takes, flush finishes the rest.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        this.needs_flush = false;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.shut = true; // nothing may follow the close (TLS close_notify inside)
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads `wire` through a PingStream, fed in pieces cut at `cuts`.
    async fn deframe(wire: &[u8], cuts: &[usize]) -> io::Result<Vec<u8>> {
        let (mut feed, sink) = tokio::io::duplex(1 << 16);
        let mut ps = PingStream::new(sink, None);
        let mut start = 0;
        for &c in cuts.iter().chain(std::iter::once(&wire.len())) {
            feed.write_all(&wire[start..c]).await?;
            start = c;
        }
        drop(feed);
        let mut out = Vec::new();
        ps.read_to_end(&mut out).await?;
        Ok(out)
    }

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(data);
        v
    }

    #[tokio::test]
    async fn reader_handles_every_split_point() {
        let mut wire = frame(b"hello");
        wire.extend_from_slice(&PING);
        wire.extend(frame(b" world"));
        wire.extend_from_slice(&PING);
        for a in 0..=wire.len() {
            for b in a..=wire.len() {
                let got = deframe(&wire, &[a, b]).await.unwrap();
                assert_eq!(got, b"hello world", "cuts at {a},{b}");
            }
        }
    }

    #[tokio::test]
    async fn truncated_frames_are_errors() {
        let wire = frame(b"hello");
        for cut in 1..wire.len() {
            let err = deframe(&wire[..cut], &[]).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
            assert!(err.to_string().contains("ping framing"), "{err}");
        }
        assert_eq!(deframe(&PING, &[]).await.unwrap(), b"");
    }

    #[tokio::test]
    async fn writer_frames_and_splits() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut ps = PingStream::new(a, None);
        let big = vec![7u8; MAX_WRITE_FRAME + 10];
        ps.write_all(b"abc").await.unwrap();
        ps.write_all(&big).await.unwrap();
        ps.write_all(b"").await.unwrap();
        ps.shutdown().await.unwrap();
        let mut raw = Vec::new();
        b.read_to_end(&mut raw).await.unwrap();
        let mut want = frame(b"abc");
        want.extend(frame(&big[..MAX_WRITE_FRAME]));
        want.extend(frame(&big[MAX_WRITE_FRAME..]));
        assert_eq!(raw, want);
    }

    /// A vectored sink that takes at most `limit` bytes per call.
    struct Trickle {
        limit: usize,
        got: Vec<u8>,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let limit = self.limit;
            let taken: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).take(limit).collect();
            self.got.extend_from_slice(&taken);
            Poll::Ready(Ok(taken.len()))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncRead for Trickle {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn vectored_writer_frames_whatever_the_stream_takes_per_call() {
        let big: Vec<u8> = (0..MAX_WRITE_FRAME + 10).map(|i| (i % 251) as u8).collect();
        let mut want = frame(b"abc");
        want.extend(frame(&big[..MAX_WRITE_FRAME]));
        want.extend(frame(&big[MAX_WRITE_FRAME..]));
        for limit in [1, 3, 4, 5, 7, 1000, 1 << 20] {
            let mut ps = PingStream::new(Trickle { limit, got: Vec::new() }, None);
            ps.write_all(b"abc").await.unwrap();
            ps.write_all(&big).await.unwrap();
            ps.flush().await.unwrap();
            assert!(ps.get_ref().got == want, "limit {limit}");
        }
    }

    #[tokio::test]
    async fn written_frames_leave_no_buffer_behind() {
        // A stream that takes 1000 bytes per call leaves most of a 64 KiB frame to
        // `pending`; once flushed, the buffer must be gone.
        let mut ps = PingStream::new(Trickle { limit: 1000, got: Vec::new() }, None);
        ps.write_all(&vec![1u8; MAX_WRITE_FRAME]).await.unwrap();
        ps.flush().await.unwrap();
        assert_eq!(ps.pending.capacity(), 0);
        assert_eq!(ps.get_ref().got.len(), 4 + MAX_WRITE_FRAME);
    }

    #[tokio::test(start_paused = true)]
    async fn server_side_sends_pings_while_idle() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut ps = PingStream::new(a, Some(Duration::from_secs(3)));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            ps.read(&mut buf).await.map(|n| buf[..n].to_vec())
        });
        let mut got = [0u8; 8];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0u8; 8], "two pings after two intervals");
        b.write_all(&frame(b"x")).await.unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), b"x");
    }
}
