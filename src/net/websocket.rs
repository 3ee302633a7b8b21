//! A WebSocket connection as a byte stream: bytes travel in binary messages (client
//! frames masked with a random key, done by tungstenite), Ping is answered with Pong
//! (tungstenite queues it and it is flushed on the next read or write), Close means
//! EOF. On the server's `alpn-ping` side the stream also sends a Ping every interval,
//! from `poll_read` like [`crate::net::ping::PingStream`].
//!
//! Shutting down the write side only flushes: a WebSocket Close would end both
//! directions, while the TLS inside already carries its own half-close (close_notify).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// Buffer sizes for upgraded streams: smaller than tungstenite's 128 KiB defaults so
/// that idle upgraded connections stay cheap.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(32 * 1024)
        .write_buffer_size(32 * 1024)
        // Our writers never put more than 64 KiB in a message; a peer may not make us
        // buffer more than 1 MiB before the inner TLS has authenticated anyone.
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// See the module docs.
#[derive(Debug)]
pub struct WsStream<S> {
    ws: WebSocketStream<S>,
    pending: Bytes,
    eof: bool,
    pinger: Option<Interval>,
    ping_due: bool,
}

impl<S> WsStream<S> {
    /// Wraps an established WebSocket; `ping_every` makes it send Pings (server side).
    pub fn new(ws: WebSocketStream<S>, ping_every: Option<Duration>) -> Self {
        let pinger = ping_every.filter(|d| !d.is_zero()).map(|p| {
            let mut iv = tokio::time::interval_at(Instant::now() + p, p);
            iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
            iv
        });
        WsStream { ws, pending: Bytes::new(), eof: false, pinger, ping_due: false }
    }
}

fn to_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, format!("websocket: {other}")),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(pinger) = self.pinger.as_mut() else { return Ok(()) };
        while pinger.poll_tick(cx).is_ready() {
            self.ping_due = true;
        }
        if self.ping_due {
            if let Poll::Ready(r) = Pin::new(&mut self.ws).poll_ready(cx) {
                r.map_err(to_io)?;
                Pin::new(&mut self.ws).start_send(Message::Ping(Bytes::new())).map_err(to_io)?;
                self.ping_due = false;
            }
        }
        // Push the ping (or a queued Pong) out; Pending registers the waker.
        if let Poll::Ready(Err(e)) = Pin::new(&mut self.ws).poll_flush(cx) {
            return Err(to_io(e));
        }
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.poll_keepalive(cx)?;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => this.eof = true,
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
                Some(Ok(Message::Binary(b))) => this.pending = b,
                Some(Ok(Message::Close(_))) => this.eof = true,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "websocket: a text message arrived on a binary tunnel",
                    )))
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(to_io)?;
        let n = buf.len().min(crate::net::ping::MAX_WRITE_FRAME);
        Pin::new(&mut self.ws).start_send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).map_err(to_io)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[tokio::test]
    async fn carries_bytes_and_pings() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let client = WebSocketStream::from_raw_socket(a, Role::Client, Some(config())).await;
        let server = WebSocketStream::from_raw_socket(b, Role::Server, Some(config())).await;
        let mut c = WsStream::new(client, None);
        let mut s = WsStream::new(server, Some(Duration::from_millis(20)));
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let sent = payload.clone();
        let w = tokio::spawn(async move {
            c.write_all(&sent).await.unwrap();
            c.flush().await.unwrap();
            let mut back = [0u8; 5];
            c.read_exact(&mut back).await.unwrap();
            back
        });
        let mut got = vec![0u8; payload.len()];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(got, payload);
        s.write_all(b"reply").await.unwrap();
        s.flush().await.unwrap();
        assert_eq!(&w.await.unwrap(), b"reply");
    }
}
