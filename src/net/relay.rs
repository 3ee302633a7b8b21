//! The one relay: copies bytes both ways between two streams in a single task,
//! propagates half-close (EOF on one side shuts down the write half of the other),
//! and reports the byte counts when both directions are done.
//!
//! Buffers start small (8 KiB) and double up to 256 KiB when reads fill them, and a
//! direction takes everything its reader has ready (up to a full buffer) before it
//! writes: a TLS reader yields one record (16 KiB) per read, and a write per record
//! to a local socket cost a system call and a wake-up of its reader each time
//! (wstunnel writes megabytes at once; docs/benchmarks.md has the figures). Buffers
//! are not zeroed: readers fill them through `ReadBuf`'s uninitialised part. A
//! direction holds its buffer only while it has bytes in hand: when its reader has
//! nothing more for now and the buffer is written out, the buffer is given back (its
//! size is remembered), so an idle connection holds no relay buffer at all, however
//! much it moved before (benches/throughput.rs measured 222 KiB per idle connection
//! after a 256 KiB exchange when the buffers were kept).
//!
//! A multiplexed stream moves owned chunks ([`Chunks`]): towards it, each read lands
//! in a fresh part of a `BytesMut` that is handed over whole; from it, the frames
//! received so far go out in one vectored write. That saves a copy of every byte
//! each way against copying through the relay's buffer ([`relay_link`] picks the way
//! for a [`Link`]). Reads towards a stream grow to one DATA frame (256 KiB), and
//! after [`crate::net::io::RUN`] bytes read in one poll the relay yields, so the
//! session's connection writes them out before more are read.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::net::io::{BoxIo, Chunks, RUN};

const INITIAL_BUF: usize = 8 * 1024;
const MAX_BUF: usize = 256 * 1024;
/// Largest read towards a multiplexed stream: one DATA frame of the most the
/// session takes ([`crate::net::mux::MAX_FRAME`]).
const MAX_CHUNK: usize = crate::net::mux::MAX_FRAME as usize;

/// Bytes moved by a finished relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Bytes read from `a` and written to `b`.
    pub a_to_b: u64,
    /// Bytes read from `b` and written to `a`.
    pub b_to_a: u64,
}

impl Counts {
    /// The same counts seen from the other side.
    pub fn swapped(self) -> Counts {
        Counts { a_to_b: self.b_to_a, b_to_a: self.a_to_b }
    }
}

/// Copies `a` ⇄ `b` until both directions have reached EOF (each EOF is passed on
/// as a shutdown of the other side's write half).
///
/// # Errors
/// The first I/O error of either direction; the caller drops both streams.
pub async fn relay<A, B>(a: &mut A, b: &mut B) -> io::Result<Counts>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut ab = OneWay::new();
    let mut ba = OneWay::new();
    poll_fn(|cx| {
        let ab_done = ab.poll(cx, &mut *a, &mut *b)?.is_ready();
        let ba_done = ba.poll(cx, &mut *b, &mut *a)?.is_ready();
        if ab_done && ba_done {
            Poll::Ready(Ok(Counts { a_to_b: ab.total, b_to_a: ba.total }))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// One direction of the relay.
struct OneWay {
    /// Bytes read and not yet all written: `buf[pos..]`. Not zeroed (readers
    /// fill it through `ReadBuf::uninit`); no allocation while idle.
    buf: BytesMut,
    pos: usize,
    /// The size of the next buffer.
    size: usize,
    total: u64,
    read_done: bool,
    /// A read error that came after bytes still in hand: returned once they are
    /// written (a TLS peer's last answer and then its unclean close, say).
    err: Option<io::Error>,
    need_flush: bool,
    done: bool,
}

impl OneWay {
    fn new() -> Self {
        OneWay {
            buf: BytesMut::new(),
            pos: 0,
            size: INITIAL_BUF,
            total: 0,
            read_done: false,
            err: None,
            need_flush: false,
            done: false,
        }
    }

    fn poll<R, W>(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            if self.pos == self.buf.len() && !self.read_done {
                self.buf.clear();
                self.pos = 0;
                if self.buf.capacity() < self.size {
                    self.buf = BytesMut::with_capacity(self.size);
                }
                // Take what the reader has ready, up to a full buffer, so that a
                // burst goes out in few large writes (and wakes the peer fewer
                // times); a reader that yields one TLS record per read would
                // otherwise make one write per record.
                loop {
                    match tokio_util::io::poll_read_buf(Pin::new(&mut *r), cx, &mut self.buf) {
                        Poll::Ready(Ok(0)) => {
                            self.read_done = true;
                            break;
                        }
                        Poll::Ready(Ok(_)) => {
                            if self.buf.len() >= self.buf.capacity() {
                                // The reader has more than we took: the next buffer
                                // is twice as large.
                                self.size = (self.size * 2).min(MAX_BUF);
                                break;
                            }
                            if self.buf.capacity() - self.buf.len() < MIN_READ {
                                break;
                            }
                        }
                        Poll::Ready(Err(e)) if self.buf.is_empty() => return Poll::Ready(Err(e)),
                        Poll::Ready(Err(e)) => {
                            self.err = Some(e);
                            break;
                        }
                        Poll::Pending if self.buf.is_empty() => {
                            // Nothing to read now and nothing in hand: give the
                            // buffer back, and make sure what we wrote reaches the
                            // peer.
                            self.buf = BytesMut::new();
                            if self.need_flush {
                                ready!(Pin::new(&mut *w).poll_flush(cx))?;
                                self.need_flush = false;
                            }
                            return Poll::Pending;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            while self.pos < self.buf.len() {
                let n = ready!(Pin::new(&mut *w).poll_write(cx, &self.buf[self.pos..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
                self.total += n as u64;
                self.need_flush = true;
            }
            if let Some(e) = self.err.take() {
                return Poll::Ready(Err(e));
            }
            if self.read_done && self.pos == self.buf.len() {
                ready!(Pin::new(&mut *w).poll_flush(cx))?;
                ready!(Pin::new(&mut *w).poll_shutdown(cx))?;
                self.done = true;
                self.buf = BytesMut::new();
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// One side of a tunnel: a plain byte stream, or one that moves owned chunks.
pub enum Link {
    /// Relayed through the relay's buffers.
    Bytes(BoxIo),
    /// Relayed chunk by chunk, without a copy (see [`Chunks`]).
    Chunks(Box<dyn Chunks>),
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Link::Bytes(_) => "Link::Bytes",
            Link::Chunks(_) => "Link::Chunks",
        })
    }
}

impl Link {
    /// As a plain byte stream.
    pub fn into_io(self) -> BoxIo {
        match self {
            Link::Bytes(io) => io,
            Link::Chunks(c) => Box::new(c),
        }
    }

    fn io(&mut self) -> Pin<&mut (dyn AsyncReadWrite + '_)> {
        match self {
            Link::Bytes(io) => Pin::new(io),
            Link::Chunks(c) => Pin::new(c),
        }
    }
}

/// What [`Link`] delegates its own byte-stream impls to.
trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin + ?Sized> AsyncReadWrite for T {}

impl AsyncRead for Link {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.io().poll_read(cx, buf)
    }
}

impl AsyncWrite for Link {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.io().poll_write(cx, data)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Link::Bytes(io) => io.is_write_vectored(),
            Link::Chunks(c) => c.is_write_vectored(),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_shutdown(cx)
    }
}

/// [`relay`] between `a` and the link `b`, chunk by chunk when `b` moves chunks.
///
/// # Errors
/// As [`relay`].
pub async fn relay_link<A>(a: &mut A, b: &mut Link) -> io::Result<Counts>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    match b {
        Link::Bytes(io) => relay(a, io).await,
        Link::Chunks(c) => relay_chunks(a, &mut **c).await,
    }
}

/// [`relay`] where `b` moves owned chunks: no copy through a relay buffer.
///
/// # Errors
/// As [`relay`].
pub async fn relay_chunks<A, B>(a: &mut A, b: &mut B) -> io::Result<Counts>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: Chunks + ?Sized,
{
    let mut ab = ToChunks::new();
    let mut ba = FromChunks::default();
    poll_fn(|cx| {
        let ab_done = ab.poll(cx, &mut *a, &mut *b)?.is_ready();
        let ba_done = ba.poll(cx, &mut *b, &mut *a)?.is_ready();
        if ab_done && ba_done {
            Poll::Ready(Ok(Counts { a_to_b: ab.total, b_to_a: ba.total }))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// A read needs at least this much room (and half the current size); with less, the
/// next read gets a new buffer.
const MIN_READ: usize = 4 * 1024;

/// Bytes to a [`Chunks`] stream: each read fills the free part of `buf`, and what
/// it read is split off and handed over whole.
struct ToChunks {
    /// The free room of the current buffer (always empty: what is read is split
    /// off at once). No allocation while idle.
    buf: BytesMut,
    /// Read and not yet all sent.
    hand: Bytes,
    size: usize,
    total: u64,
    read_done: bool,
    need_flush: bool,
    done: bool,
}

impl ToChunks {
    fn new() -> Self {
        ToChunks {
            buf: BytesMut::new(),
            hand: Bytes::new(),
            size: INITIAL_BUF,
            total: 0,
            read_done: false,
            need_flush: false,
            done: false,
        }
    }

    fn poll<R, W>(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: Chunks + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        // Read in this poll: past RUN the task yields, so that the session's
        // connection writes out what the stream queued (see `mux::Paced`).
        let mut run = 0usize;
        loop {
            if self.hand.is_empty() && !self.read_done {
                if run >= RUN {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                // A small rest of the last buffer would make small reads (and small
                // DATA frames): a new one then.
                if self.buf.capacity() < MIN_READ.max(self.size / 2) {
                    self.buf = BytesMut::with_capacity(self.size);
                }
                let room = self.buf.capacity();
                match tokio_util::io::poll_read_buf(Pin::new(&mut *r), cx, &mut self.buf) {
                    Poll::Ready(Ok(0)) => self.read_done = true,
                    Poll::Ready(Ok(n)) => {
                        if n == room && self.size < MAX_CHUNK {
                            self.size = (self.size * 2).min(MAX_CHUNK);
                        }
                        run += n;
                        self.hand = self.buf.split().freeze();
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        // Nothing to read now: keep no buffer while idle (the stream
                        // may still hold chunks split off it until they are sent).
                        self.buf = BytesMut::new();
                        if self.need_flush {
                            ready!(Pin::new(&mut *w).poll_flush(cx))?;
                            self.need_flush = false;
                        }
                        return Poll::Pending;
                    }
                }
            }
            while !self.hand.is_empty() {
                let before = self.hand.len();
                ready!(w.poll_send(cx, &mut self.hand))?;
                let sent = before - self.hand.len();
                if sent == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.total += sent as u64;
                self.need_flush = true;
            }
            self.hand = Bytes::new();
            if self.read_done {
                ready!(Pin::new(&mut *w).poll_flush(cx))?;
                ready!(Pin::new(&mut *w).poll_shutdown(cx))?;
                self.done = true;
                self.buf = BytesMut::new();
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// Most chunks one write gathers: a few frames, well under `IOV_MAX`.
const MAX_GATHER: usize = 16;

/// Bytes from a [`Chunks`] stream: the chunks received so far, up to [`RUN`] bytes
/// and [`MAX_GATHER`] chunks, go out in one vectored write, so that a burst of
/// frames costs the writer one system call (and its reader one wake-up) instead of
/// one per frame.
#[derive(Default)]
struct FromChunks {
    /// Received and not yet all written, in order. No allocation while idle.
    held: std::collections::VecDeque<Bytes>,
    held_bytes: usize,
    total: u64,
    read_done: bool,
    /// An error of the stream that came after chunks still held: returned once
    /// they are written.
    err: Option<io::Error>,
    need_flush: bool,
    done: bool,
}

impl FromChunks {
    fn poll<R, W>(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W) -> Poll<io::Result<()>>
    where
        R: Chunks + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        let vectored = w.is_write_vectored();
        loop {
            // Take what the stream has ready, up to the bounds (one chunk at a
            // time for a writer that takes one slice per call).
            let mut pending = false;
            while !self.read_done
                && self.err.is_none()
                && self.held_bytes < RUN
                && self.held.len() < MAX_GATHER
                && (vectored || self.held.is_empty())
            {
                match r.poll_chunk(cx) {
                    Poll::Ready(Ok(Some(c))) => {
                        if !c.is_empty() {
                            self.held_bytes += c.len();
                            self.held.push_back(c);
                        }
                    }
                    Poll::Ready(Ok(None)) => self.read_done = true,
                    Poll::Ready(Err(e)) if self.held.is_empty() => return Poll::Ready(Err(e)),
                    Poll::Ready(Err(e)) => self.err = Some(e),
                    Poll::Pending => {
                        pending = true;
                        break;
                    }
                }
            }
            if self.held.is_empty() {
                if let Some(e) = self.err.take() {
                    return Poll::Ready(Err(e));
                }
                if self.read_done {
                    ready!(Pin::new(&mut *w).poll_flush(cx))?;
                    ready!(Pin::new(&mut *w).poll_shutdown(cx))?;
                    self.done = true;
                    self.held = Default::default();
                    return Poll::Ready(Ok(()));
                }
                if pending {
                    // Nothing in hand and nothing to read: keep nothing while idle.
                    self.held = Default::default();
                    if self.need_flush {
                        ready!(Pin::new(&mut *w).poll_flush(cx))?;
                        self.need_flush = false;
                    }
                    return Poll::Pending;
                }
                continue;
            }
            let n = if vectored {
                let mut slices = [io::IoSlice::new(&[]); MAX_GATHER];
                let k = self.held.len().min(MAX_GATHER);
                for (s, c) in slices.iter_mut().zip(self.held.iter()) {
                    *s = io::IoSlice::new(c);
                }
                ready!(Pin::new(&mut *w).poll_write_vectored(cx, &slices[..k]))?
            } else {
                let first = self.held.front().map(|c| &c[..]).unwrap_or_default();
                ready!(Pin::new(&mut *w).poll_write(cx, first))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.total += n as u64;
            self.held_bytes = self.held_bytes.saturating_sub(n);
            self.need_flush = true;
            let mut left = n;
            while left > 0 {
                let Some(front) = self.held.front_mut() else { break };
                if front.len() <= left {
                    left -= front.len();
                    self.held.pop_front();
                } else {
                    front.advance(left);
                    left = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn an_idle_direction_holds_no_buffer() {
        let (mut src, mut r) = tokio::io::duplex(1 << 20);
        let (mut w, mut dst) = tokio::io::duplex(1 << 20);
        let burst: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
        src.write_all(&burst).await.unwrap();
        let mut one = OneWay::new();
        // One poll moves everything the reader has, then finds it empty.
        poll_fn(|cx| {
            assert!(one.poll(cx, &mut r, &mut w).is_pending());
            Poll::Ready(())
        })
        .await;
        assert_eq!(one.buf.capacity(), 0, "an idle direction kept its buffer");
        assert_eq!(one.size, MAX_BUF, "a burst should have grown the next buffer");
        let mut got = vec![0; burst.len()];
        dst.read_exact(&mut got).await.unwrap();
        assert_eq!(got, burst);
        assert_eq!(one.total, burst.len() as u64);
    }

    #[tokio::test]
    async fn copies_both_ways_with_half_close() {
        let (mut client, mut a) = tokio::io::duplex(4096);
        let (mut b, mut server) = tokio::io::duplex(4096);
        let relay = tokio::spawn(async move { relay(&mut a, &mut b).await });
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sent = payload.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap(); // half-close: still reads the reply
            let mut reply = Vec::new();
            client.read_to_end(&mut reply).await.unwrap();
            reply
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, payload);
        server.write_all(b"thanks").await.unwrap();
        server.shutdown().await.unwrap();
        assert_eq!(writer.await.unwrap(), b"thanks");
        let counts = relay.await.unwrap().unwrap();
        assert_eq!(counts, Counts { a_to_b: payload.len() as u64, b_to_a: 6 });
    }
    /// A reader that yields `piece` bytes per read (as TLS yields one record) until
    /// `left` is used up, then `Pending` (or EOF once `eof`).
    struct Pieces {
        left: Vec<u8>,
        piece: usize,
        eof: bool,
        /// Once `left` is used up, an error instead of `Pending` or EOF.
        fail: bool,
    }

    impl AsyncRead for Pieces {
        fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            if self.left.is_empty() {
                if self.fail {
                    return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                }
                return if self.eof { Poll::Ready(Ok(())) } else { Poll::Pending };
            }
            let n = self.piece.min(self.left.len()).min(buf.remaining());
            let rest = self.left.split_off(n);
            buf.put_slice(&self.left);
            self.left = rest;
            Poll::Ready(Ok(()))
        }
    }

    /// A writer that keeps what it is given and counts the calls; vectored or not.
    #[derive(Default)]
    struct Calls {
        got: Vec<u8>,
        calls: usize,
        vectored: bool,
    }

    impl AsyncWrite for Calls {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
            self.calls += 1;
            self.got.extend_from_slice(data);
            Poll::Ready(Ok(data.len()))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            let mut n = 0;
            for b in bufs {
                self.got.extend_from_slice(b);
                n += b.len();
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            self.vectored
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_direction_takes_what_is_ready_before_it_writes() {
        let burst: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
        let mut r = Pieces { left: burst.clone(), piece: 16 * 1024, eof: false, fail: false };
        let mut w = Calls::default();
        let mut one = OneWay::new();
        poll_fn(|cx| {
            assert!(one.poll(cx, &mut r, &mut w).is_pending());
            Poll::Ready(())
        })
        .await;
        assert!(w.got == burst, "{} bytes written of {}", w.got.len(), burst.len());
        // Buffers of 8, 16, 32, 64 and 128 KiB, then three of 256 KiB (the last
        // not full): 8 writes, not 62 (one per 16 KiB read).
        assert_eq!(w.calls, 8, "one write per buffer filled");
        assert_eq!(one.buf.capacity(), 0, "an idle direction kept its buffer");
        // What is ready when the reader ends still goes out, then the shutdown.
        r.left = b"tail".to_vec();
        r.eof = true;
        poll_fn(|cx| one.poll(cx, &mut r, &mut w)).await.unwrap();
        assert!(w.got.ends_with(b"tail") && w.got.len() == burst.len() + 4);
    }

    /// A multiplexed stream stand-in: hands out `chunks`, then `Pending` (or the end
    /// once `end`).
    struct Frames {
        chunks: std::collections::VecDeque<Bytes>,
        end: bool,
        /// After the chunks, an error instead of `Pending` or the end.
        fail: bool,
    }

    impl AsyncRead for Frames {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            unreachable!("the chunk relay takes chunks")
        }
    }

    impl AsyncWrite for Frames {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
            unreachable!("the chunk relay sends chunks")
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Chunks for Frames {
        fn poll_send(&mut self, _: &mut Context<'_>, _: &mut Bytes) -> Poll<io::Result<()>> {
            unreachable!("nothing is sent in these tests")
        }
        fn poll_chunk(&mut self, _: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
            match self.chunks.pop_front() {
                Some(c) => Poll::Ready(Ok(Some(c))),
                None if self.fail => Poll::Ready(Err(io::ErrorKind::ConnectionReset.into())),
                None if self.end => Poll::Ready(Ok(None)),
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test]
    async fn frames_received_together_go_out_in_one_vectored_write() {
        let frames: Vec<Bytes> = (0..40u8).map(|i| Bytes::from(vec![i; 10_000])).collect();
        let all: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        for vectored in [true, false] {
            let mut r = Frames { chunks: frames.iter().cloned().collect(), end: false, fail: false };
            let mut w = Calls { vectored, ..Calls::default() };
            let mut from = FromChunks::default();
            poll_fn(|cx| {
                assert!(from.poll(cx, &mut r, &mut w).is_pending());
                Poll::Ready(())
            })
            .await;
            assert!(w.got == all, "vectored {vectored}: {} bytes of {}", w.got.len(), all.len());
            // Vectored: 16 frames per write (MAX_GATHER); otherwise one per frame.
            assert_eq!(w.calls, if vectored { 3 } else { 40 }, "vectored {vectored}");
            assert_eq!(from.held.capacity(), 0, "an idle direction kept its queue");
            r.end = true;
            poll_fn(|cx| from.poll(cx, &mut r, &mut w)).await.unwrap();
            assert_eq!(from.total, all.len() as u64);
        }
    }

    /// A writer that takes at most 7,000 bytes a call, across slices when
    /// vectored, and says `Pending` every other call (waking its task at once).
    #[derive(Default)]
    struct Stingy {
        got: Vec<u8>,
        calls: usize,
        vectored: bool,
    }

    impl Stingy {
        fn take(&mut self, cx: &mut Context<'_>, bufs: &[&[u8]]) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.calls % 2 == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(7000 - n);
                self.got.extend_from_slice(&b[..k]);
                n += k;
                if n == 7000 {
                    break;
                }
            }
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Stingy {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
            self.take(cx, &[data])
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let bufs: Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
            self.take(cx, &bufs)
        }
        fn is_write_vectored(&self) -> bool {
            self.vectored
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn short_and_refused_writes_lose_nothing() {
        let burst: Vec<u8> = (0..700_000u32).map(|i| (i % 239) as u8).collect();
        let mut r = Pieces { left: burst.clone(), piece: 10_000, eof: true, fail: false };
        let mut w = Stingy::default();
        let mut one = OneWay::new();
        poll_fn(|cx| one.poll(cx, &mut r, &mut w)).await.unwrap();
        assert!(w.got == burst, "one way: {} bytes of {}", w.got.len(), burst.len());
        assert_eq!(one.total, burst.len() as u64);

        let frames: Vec<Bytes> = (0..40u32).map(|i| Bytes::from(vec![i as u8; 9_000 + i as usize])).collect();
        let all: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        for vectored in [true, false] {
            let mut r = Frames { chunks: frames.iter().cloned().collect(), end: true, fail: false };
            let mut w = Stingy { vectored, ..Stingy::default() };
            let mut from = FromChunks::default();
            poll_fn(|cx| from.poll(cx, &mut r, &mut w)).await.unwrap();
            assert!(w.got == all, "vectored {vectored}: {} bytes of {}", w.got.len(), all.len());
            assert_eq!((from.total, from.held_bytes), (all.len() as u64, 0));
        }
    }

    #[tokio::test]
    async fn bytes_read_before_an_error_are_written_before_it() {
        // TLS hands over a peer's last answer, then its unclean close on the next
        // read: the answer must reach the other side.
        let mut r = Pieces { left: b"the last answer".to_vec(), piece: 4, eof: false, fail: true };
        let mut w = Calls::default();
        let mut one = OneWay::new();
        let e = poll_fn(|cx| one.poll(cx, &mut r, &mut w)).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(w.got, b"the last answer");

        let mut r = Frames { chunks: [Bytes::from_static(b"last frame")].into(), end: false, fail: true };
        let mut w = Calls { vectored: true, ..Calls::default() };
        let mut from = FromChunks::default();
        let e = poll_fn(|cx| from.poll(cx, &mut r, &mut w)).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(w.got, b"last frame");
    }
}
