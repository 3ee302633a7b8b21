//! A WebSocket connection as a byte stream: bytes travel in binary messages (client
//! frames masked with a random key, done by tungstenite), Ping is answered with Pong
//! (tungstenite queues it and it is flushed on the next read or write), Close means
//! EOF. On the server's `alpn-ping` side the stream also sends a Ping every interval,
//! from `poll_read` like [`crate::net::ping::PingStream`].
//!
//! On the client's side ([`WsStream::through_load_balancer`]) a connection dropped
//! without a Close after a quiet spell is said to be what it almost always is: the
//! load balancer's idle timeout, shorter than the server's pings.
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
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// The largest frame and message accepted: what our writers put in one message at
/// most ([`crate::net::ping::MAX_WRITE_FRAME`]; a TLS record is 16 KiB). A larger
/// one is refused with the Close code 1009 (message too big) as soon as its header
/// arrives, before anything is buffered for it.
pub const MAX_MESSAGE: usize = crate::net::ping::MAX_WRITE_FRAME;

/// Buffer sizes for upgraded streams: smaller than tungstenite's 128 KiB defaults so
/// that idle upgraded connections stay cheap.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(32 * 1024)
        .write_buffer_size(32 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// The reason sent with Close 1009.
pub const TOO_BIG_REASON: &str = "frame or message larger than 64 KiB";

/// See the module docs.
#[derive(Debug)]
pub struct WsStream<S> {
    ws: WebSocketStream<S>,
    pending: Bytes,
    eof: bool,
    pinger: Option<Interval>,
    ping_due: bool,
    /// When the last message (data or control) arrived.
    last_rx: Instant,
    /// Name idle cuts in words (the client's side, through a load balancer).
    name_idle_cuts: bool,
}

/// How long without a message before a dropped connection counts as an idle cut.
pub const IDLE_CUT_AFTER: Duration = Duration::from_millis(500);

/// What a connection dropped without a Close after [`IDLE_CUT_AFTER`] is said to be.
pub const IDLE_CUT: &str =
    "the load balancer closed an idle connection: the server's ping_interval must be below its idle timeout";

/// What a connection dropped without a Close while busy is said to be.
pub const CUT: &str = "the load balancer dropped the connection without a WebSocket close (the server stopped, or the load balancer cut it)";

/// The error for a connection reset without a Close, `quiet` after the last
/// message (pure).
pub fn reset_error(quiet: Duration) -> io::Error {
    let msg = if quiet >= IDLE_CUT_AFTER { IDLE_CUT } else { CUT };
    io::Error::new(io::ErrorKind::ConnectionAborted, msg)
}

impl<S> WsStream<S> {
    /// Wraps an established WebSocket; `ping_every` makes it send Pings (server side).
    pub fn new(ws: WebSocketStream<S>, ping_every: Option<Duration>) -> Self {
        let pinger = ping_every.filter(|d| !d.is_zero()).map(|p| {
            let mut iv = tokio::time::interval_at(Instant::now() + p, p);
            iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
            iv
        });
        WsStream {
            ws,
            pending: Bytes::new(),
            eof: false,
            pinger,
            ping_due: false,
            last_rx: Instant::now(),
            name_idle_cuts: false,
        }
    }

    /// The client's side of an upgrade through a load balancer: a drop without a
    /// Close is reported as [`IDLE_CUT`] or [`CUT`], not as a protocol error.
    pub fn through_load_balancer(mut self) -> Self {
        self.name_idle_cuts = true;
        self
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
            let next = ready!(Pin::new(&mut this.ws).poll_next(cx));
            if let Some(Ok(_)) = next {
                this.last_rx = Instant::now();
            }
            match next {
                None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => this.eof = true,
                Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) if this.name_idle_cuts => {
                    return Poll::Ready(Err(reset_error(this.last_rx.elapsed())));
                }
                Some(Err(WsError::Capacity(e))) => {
                    // Say why (Close 1009) rather than just dropping the connection.
                    let frame = CloseFrame { code: CloseCode::Size, reason: TOO_BIG_REASON.into() };
                    if let Poll::Ready(Ok(())) = Pin::new(&mut this.ws).poll_ready(cx) {
                        let _ = Pin::new(&mut this.ws).start_send(Message::Close(Some(frame)));
                        let _ = Pin::new(&mut this.ws).poll_flush(cx);
                    }
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, format!("websocket: {e}"))));
                }
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

    /// The TLS inside hands over its records in one vectored write: they go out as
    /// one message (up to [`crate::net::ping::MAX_WRITE_FRAME`]), not a message each.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total = bufs.iter().map(|b| b.len()).sum::<usize>().min(crate::net::ping::MAX_WRITE_FRAME);
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(to_io)?;
        let mut message = Vec::with_capacity(total);
        for b in bufs {
            let room = total - message.len();
            if room == 0 {
                break;
            }
            message.extend_from_slice(&b[..b.len().min(room)]);
        }
        Pin::new(&mut self.ws).start_send(Message::Binary(Bytes::from(message))).map_err(to_io)?;
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
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

    #[test]
    fn resets_are_named_by_how_long_it_was_quiet() {
        let idle = super::reset_error(Duration::from_secs(5));
        assert_eq!(idle.kind(), io::ErrorKind::ConnectionAborted);
        assert_eq!(
            idle.to_string(),
            "the load balancer closed an idle connection: the server's ping_interval must be below its idle timeout"
        );
        assert!(super::reset_error(Duration::from_millis(10)).to_string().contains("without a WebSocket close"));
    }

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

    /// A vectored write is one message holding the slices in order, cut at the
    /// largest message.
    #[tokio::test]
    async fn vectored_writes_are_one_message() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let client = WebSocketStream::from_raw_socket(a, Role::Client, Some(config())).await;
        let mut server = WebSocketStream::from_raw_socket(b, Role::Server, Some(config())).await;
        let mut c = WsStream::new(client, None);
        let big = vec![7u8; crate::net::ping::MAX_WRITE_FRAME];
        let slices = [io::IoSlice::new(b"head"), io::IoSlice::new(b""), io::IoSlice::new(&big)];
        let n = c.write_vectored(&slices).await.unwrap();
        assert_eq!(n, crate::net::ping::MAX_WRITE_FRAME);
        c.flush().await.unwrap();
        use futures_util::StreamExt;
        let Some(Ok(Message::Binary(m))) = server.next().await else { panic!("no binary message") };
        assert_eq!(m.len(), n);
        assert_eq!(&m[..4], b"head");
        assert!(m[4..].iter().all(|&x| x == 7));
    }

    /// A frame header announcing more than 64 KiB gets Close 1009 and an error at
    /// once: nothing is buffered for it.
    #[tokio::test]
    async fn oversized_frames_get_close_1009() {
        let (mut peer, ours) = tokio::io::duplex(1 << 16);
        let server = WebSocketStream::from_raw_socket(ours, Role::Server, Some(config())).await;
        let mut s = WsStream::new(server, None);
        // Masked binary frame, 64-bit length (1 MiB - 1), then a little payload.
        let mut head = vec![0x82, 0xff];
        head.extend_from_slice(&((1u64 << 20) - 1).to_be_bytes());
        head.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 0]);
        peer.write_all(&head).await.unwrap();
        let err = s.read(&mut [0u8; 16]).await.unwrap_err();
        assert!(err.to_string().contains("websocket: "), "{err}");
        s.flush().await.unwrap();
        let mut close = vec![0u8; 4 + TOO_BIG_REASON.len()];
        peer.read_exact(&mut close).await.unwrap();
        assert_eq!(&close[..4], &[0x88, (2 + TOO_BIG_REASON.len()) as u8, 0x03, 0xf1]);
        assert_eq!(&close[4..], TOO_BIG_REASON.as_bytes());
    }
}
