//! Boxed byte streams: what the dialer returns and what the router hands to backends.

use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional byte stream that can move between tasks.
pub trait IoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + ?Sized> IoStream for T {}

/// A boxed [`IoStream`].
pub type BoxIo = Box<dyn IoStream>;
