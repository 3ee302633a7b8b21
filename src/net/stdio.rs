//! Standard input and output as one byte stream, for commands OpenSSH runs as a
//! ProxyCommand (`proxy ssh`), to hand to the relay.
//!
//! Stdin is read on a dedicated thread rather than tokio's `stdin()`: tokio reads it
//! on its blocking pool, where a read that never returns (ssh keeps our stdin open)
//! would hold up the runtime's shutdown, while a plain thread simply ends with the
//! process. When the write side is shut down (the peer has finished, and the relay
//! passes that on) the read side reports EOF too, so the relay, and the command, end
//! without waiting for stdin.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// Bytes per read of stdin.
const CHUNK: usize = 64 * 1024;
/// Chunks read ahead of the relay (bounds memory when the peer is slow).
const AHEAD: usize = 4;

/// Stdin and stdout (or any reader and writer) as one [`AsyncRead`] + [`AsyncWrite`].
pub struct Stdio<W> {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    pending: Vec<u8>,
    pos: usize,
    out: W,
    write_closed: bool,
    read_waker: Option<Waker>,
}

impl<W> std::fmt::Debug for Stdio<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stdio").field("write_closed", &self.write_closed).finish_non_exhaustive()
    }
}

impl Stdio<tokio::io::Stdout> {
    /// The process's stdin and stdout.
    ///
    /// # Errors
    /// When the reader thread cannot be started.
    pub fn process() -> io::Result<Self> {
        Stdio::new(io::stdin(), tokio::io::stdout())
    }
}

impl<W> Stdio<W> {
    /// Reads `input` on a new thread; writes go to `out`.
    ///
    /// # Errors
    /// When the reader thread cannot be started.
    pub fn new<R: Read + Send + 'static>(input: R, out: W) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel(AHEAD);
        std::thread::Builder::new().name("stdin".into()).spawn(move || read_loop(input, tx))?;
        Ok(Stdio { rx, pending: Vec::new(), pos: 0, out, write_closed: false, read_waker: None })
    }
}

/// Reads until EOF or an error (sent on), or until the stream is dropped.
fn read_loop<R: Read>(mut input: R, tx: mpsc::Sender<io::Result<Vec<u8>>>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let msg = match input.read(&mut buf) {
            Ok(0) => return, // dropping `tx` is the EOF
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let failed = msg.is_err();
        if tx.blocking_send(msg).is_err() || failed {
            return;
        }
    }
}

impl<W: Unpin> AsyncRead for Stdio<W> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.write_closed {
                return Poll::Ready(Ok(())); // the peer has finished: nothing more to send
            }
            if this.pos < this.pending.len() {
                let n = buf.remaining().min(this.pending.len() - this.pos);
                buf.put_slice(&this.pending[this.pos..this.pos + n]);
                this.pos += n;
                return Poll::Ready(Ok(()));
            }
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => (this.pending, this.pos) = (chunk, 0),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    this.read_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Stdio<W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.out).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.out).poll_flush(cx)
    }

    /// Flushes the output (stdout stays open: it is the process's) and ends the read side.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(Pin::new(&mut this.out).poll_shutdown(cx))?;
        this.write_closed = true;
        if let Some(w) = this.read_waker.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::relay::relay;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A reader that never returns, like ssh's pipe while the session lasts.
    struct Forever;
    impl Read for Forever {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            std::thread::park();
            Ok(0)
        }
    }

    #[tokio::test]
    async fn input_eof_half_closes_and_still_reads_the_reply() {
        let input: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let (out, mut out_peer) = tokio::io::duplex(1 << 20);
        let mut stdio = Stdio::new(io::Cursor::new(input.clone()), out).unwrap();
        let (mut up, mut server) = tokio::io::duplex(4096);
        let relay = tokio::spawn(async move { relay(&mut stdio, &mut up).await });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap(); // EOF: the input's EOF was passed on
        assert_eq!(got, input);
        server.write_all(b"reply after the half-close").await.unwrap();
        server.shutdown().await.unwrap();
        let counts = relay.await.unwrap().unwrap();
        assert_eq!((counts.a_to_b, counts.b_to_a), (200_000, 26));
        let mut reply = Vec::new();
        out_peer.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"reply after the half-close");
    }

    #[tokio::test]
    async fn peer_eof_ends_the_relay_while_input_stays_open() {
        let (out, mut out_peer) = tokio::io::duplex(1024);
        let mut stdio = Stdio::new(Forever, out).unwrap();
        let (mut up, mut server) = tokio::io::duplex(1024);
        server.write_all(b"bye").await.unwrap();
        server.shutdown().await.unwrap();
        let counts = tokio::time::timeout(std::time::Duration::from_secs(10), relay(&mut stdio, &mut up))
            .await
            .expect("the relay must end when the peer does, whatever stdin does")
            .unwrap();
        assert_eq!(counts.b_to_a, 3);
        let mut buf = [0u8; 3];
        out_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"bye");
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap(); // our side was shut down too
        assert!(rest.is_empty());
    }
}
