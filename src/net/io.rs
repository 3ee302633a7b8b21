//! Boxed byte streams: what the dialer returns and what the router hands to backends.

use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional byte stream that can move between tasks.
pub trait IoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + ?Sized> IoStream for T {}

/// A boxed [`IoStream`].
pub type BoxIo = Box<dyn IoStream>;

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
