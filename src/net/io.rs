//! Boxed byte streams: what the dialer returns and what the router hands to backends;
//! a stream without its own half-close, a byte-counting one, one that notes
//! whether an error came from its side of a relay, and `write_through!`, the write
//! side of wrappers that only watch reads.

use tokio::io::{AsyncRead, AsyncWrite};

/// Implements `AsyncWrite` for `$ty<S>` by handing every call, vectored writes
/// included, to its field `$field`: for wrappers that only watch the read side.
macro_rules! write_through {
    ($ty:ident, $field:ident) => {
        impl<S: ::tokio::io::AsyncWrite + Unpin> ::tokio::io::AsyncWrite for $ty<S> {
            fn poll_write(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                ::std::pin::Pin::new(&mut self.$field).poll_write(cx, buf)
            }
            fn poll_write_vectored(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                ::std::pin::Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
            }
            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }
            fn poll_flush(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::pin::Pin::new(&mut self.$field).poll_flush(cx)
            }
            fn poll_shutdown(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::pin::Pin::new(&mut self.$field).poll_shutdown(cx)
            }
        }
    };
}
pub(crate) use write_through;

/// Any bidirectional byte stream that can move between tasks.
pub trait IoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + ?Sized> IoStream for T {}

/// A boxed [`IoStream`].
pub type BoxIo = Box<dyn IoStream>;

/// Bytes a multiplexed session reads in one go, from its transport or from a local
/// connection into a stream, before its task yields to the other side of the
/// pipeline (`mux::Paced`, the relay towards a stream). A quarter of a MiB: a few
/// DATA frames, and well under the windows.
pub const RUN: usize = 256 * 1024;

/// A byte stream that takes and gives owned chunks (a multiplexed stream: its
/// frames are `Bytes` already). Its `AsyncRead`/`AsyncWrite` still work, with a
/// copy, for callers that want a plain byte stream.
pub trait Chunks: AsyncRead + AsyncWrite + Unpin + Send {
    /// Sends a leading part of `data` (at least one byte when `data` is not empty)
    /// and advances `data` past it.
    ///
    /// # Errors
    /// As `poll_write` would.
    fn poll_send(
        &mut self,
        cx: &mut std::task::Context<'_>,
        data: &mut bytes::Bytes,
    ) -> std::task::Poll<std::io::Result<()>>;

    /// The next chunk received, `None` at the end of the stream. The chunk's flow
    /// control window is given back as it is handed over.
    ///
    /// # Errors
    /// As `poll_read` would.
    fn poll_chunk(&mut self, cx: &mut std::task::Context<'_>)
        -> std::task::Poll<std::io::Result<Option<bytes::Bytes>>>;
}

/// A transport under the TLS-routing handshake whose write side is never shut down
/// on its own: the TLS inside carries half-close as `close_notify`, while squid,
/// nginx and many other middleboxes tear down both directions when they see a FIN.
/// The socket is closed when the connection is dropped, after both directions end.
#[derive(Debug)]
pub struct NoHalfClose<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for NoHalfClose<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for NoHalfClose<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
}

/// Bytes read from and written to a [`Counted`] stream, readable while it runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes read from the stream.
    pub read: std::sync::atomic::AtomicU64,
    /// Bytes written to the stream.
    pub written: std::sync::atomic::AtomicU64,
}

impl Counters {
    /// (read, written) so far.
    pub fn get(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.read.load(Relaxed), self.written.load(Relaxed))
    }
}

/// A stream that counts the bytes through it (for the audit line of a session).
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    counters: std::sync::Arc<Counters>,
}

impl<S> Counted<S> {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: S, counters: std::sync::Arc<Counters>) -> Counted<S> {
        Counted { inner, counters }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.counters.read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            self.counters.written.fetch_add(*n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        r
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            self.counters.written.fetch_add(*n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: Chunks> Chunks for Counted<S> {
    fn poll_send(
        &mut self,
        cx: &mut std::task::Context<'_>,
        data: &mut bytes::Bytes,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = data.len();
        let r = self.inner.poll_send(cx, data);
        self.counters.written.fetch_add((before - data.len()) as u64, std::sync::atomic::Ordering::Relaxed);
        r
    }
    fn poll_chunk(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<Option<bytes::Bytes>>> {
        let r = self.inner.poll_chunk(cx);
        if let std::task::Poll::Ready(Ok(Some(c))) = &r {
            self.counters.read.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        r
    }
}

/// A stream that notes whether one of its own reads or writes failed, so that the
/// caller of a relay can tell "the local client went away" from "the tunnel broke".
#[derive(Debug)]
pub struct Noted<S> {
    inner: S,
    failed: bool,
}

impl<S> Noted<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Noted<S> {
        Noted { inner, failed: false }
    }

    /// Whether a read or write on this stream returned an error.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn seen<T>(&mut self, r: std::task::Poll<std::io::Result<T>>) -> std::task::Poll<std::io::Result<T>> {
        if let std::task::Poll::Ready(Err(_)) = &r {
            self.failed = true;
        }
        r
    }
}

impl<S: AsyncRead + Unpin + ?Sized> AsyncRead for Noted<&mut S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut *self.inner).poll_read(cx, buf);
        self.seen(r)
    }
}

impl<S: AsyncWrite + Unpin + ?Sized> AsyncWrite for Noted<&mut S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut *self.inner).poll_write(cx, buf);
        self.seen(r)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut *self.inner).poll_write_vectored(cx, bufs);
        self.seen(r)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut *self.inner).poll_flush(cx);
        self.seen(r)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut *self.inner).poll_shutdown(cx);
        self.seen(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn noted_notes_its_own_errors_only() {
        let (a, b) = tokio::io::duplex(1024);
        let mut a = a;
        let mut noted = Noted::new(&mut a);
        noted.write_all(b"x").await.unwrap();
        assert!(!noted.failed());
        drop(b);
        assert!(noted.write_all(b"y").await.is_err());
        assert!(noted.failed());
    }

    #[test]
    fn noted_passes_vectored_writes_on() {
        // The relay gathers a stream's frames into one vectored write only when
        // the writer says it takes them.
        let mut sink = tokio::io::sink();
        assert!(Noted::new(&mut sink).is_write_vectored());
        let mut counted = Counted::new(tokio::io::sink(), Default::default());
        assert!(Noted::new(&mut counted).is_write_vectored());
    }

    #[tokio::test]
    async fn counted_counts_both_ways() {
        let (a, mut b) = tokio::io::duplex(1024);
        let counters = std::sync::Arc::new(Counters::default());
        let mut c = Counted::new(a, counters.clone());
        c.write_all(b"hello").await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut got = [0u8; 3];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(counters.get(), (3, 5));
    }
}
