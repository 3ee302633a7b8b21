//! A read budget for a peer that has not authenticated yet: until [`Lift::lift`] is
//! called (the TLS handshake finished), at most `limit` bytes may be read through
//! the stream, so whatever the peer sends, the layers above it (WebSocket frame
//! buffers, the TLS handshake) cannot hold more than that for it. Going over is an
//! error (`InvalidData`), optionally after a last word written to the peer (the
//! WebSocket close frame 1009 "message too big").

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The bytes of a server WebSocket Close frame with code 1009 (message too big) and
/// no reason: unmasked, as a server sends it.
pub const WS_CLOSE_TOO_BIG: &[u8] = &[0x88, 0x02, 0x03, 0xf1];

/// Ends the budget of the streams it was made with.
#[derive(Debug, Clone, Default)]
pub struct Lift(Arc<AtomicBool>);

impl Lift {
    /// Lifts the budget: from now on reads are unlimited.
    pub fn lift(&self) {
        self.0.store(true, Ordering::Release);
    }
    fn lifted(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct Budget<S> {
    inner: S,
    left: usize,
    limit: usize,
    lift: Lift,
    last_word: Option<&'static [u8]>,
    written: usize,
}

impl<S> Budget<S> {
    /// Wraps `inner` with `limit` bytes to read until `lift` is lifted; on going over,
    /// `last_word` is written to the peer (best effort) before the error.
    pub fn new(inner: S, limit: usize, lift: Lift, last_word: Option<&'static [u8]>) -> Self {
        Budget { inner, left: limit, limit, lift, last_word, written: 0 }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Budget<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.lift.lifted() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if this.left == 0 {
            // Best effort: one attempt, never waiting for a peer that does not read.
            if let Some(word) = this.last_word {
                while this.written < word.len() {
                    match Pin::new(&mut this.inner).poll_write(cx, &word[this.written..]) {
                        Poll::Ready(Ok(n)) if n > 0 => this.written += n,
                        _ => break,
                    }
                }
                let _ = Pin::new(&mut this.inner).poll_flush(cx);
            }
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the peer sent more than {} bytes before authenticating", this.limit),
            )));
        }
        let take = buf.remaining().min(this.left);
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(take));
        let r = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        if let Poll::Ready(Ok(())) = r {
            buf.advance(n);
            this.left -= n;
        }
        r
    }
}

crate::net::io::write_through!(Budget, inner);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_stop_at_the_limit_until_lifted() {
        let (mut peer, ours) = tokio::io::duplex(1 << 16);
        let lift = Lift::default();
        let mut b = Budget::new(ours, 10, lift.clone(), Some(WS_CLOSE_TOO_BIG));
        peer.write_all(&[7u8; 30]).await.unwrap();
        let mut got = vec![0u8; 10];
        b.read_exact(&mut got).await.unwrap();
        let err = b.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(err.to_string(), "the peer sent more than 10 bytes before authenticating");
        let mut word = [0u8; 4];
        peer.read_exact(&mut word).await.unwrap();
        assert_eq!(word, WS_CLOSE_TOO_BIG, "the last word reached the peer");

        let (mut peer, ours) = tokio::io::duplex(1 << 16);
        let mut b = Budget::new(ours, 4096, lift.clone(), None);
        lift.lift();
        peer.write_all(&[1u8; 8192]).await.unwrap();
        let mut got = vec![0u8; 8192];
        b.read_exact(&mut got).await.unwrap();
    }
}
