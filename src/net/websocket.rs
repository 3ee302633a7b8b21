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

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
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
    state: State<S>,
    role: Role,
    /// What the current WebSocket has read from the stream, and at least what its
    /// frames took of that: when the two are equal nothing is left in its buffer.
    consumed: u64,
    pending: Bytes,
    eof: bool,
    pinger: Option<Interval>,
    ping_due: bool,
    /// When the last message (data or control) arrived.
    last_rx: Instant,
    /// Name idle cuts in words (the client's side, through a load balancer).
    name_idle_cuts: bool,
}

/// tungstenite keeps its read and write buffers at the largest size they reached
/// (a 64 KiB frame each way after bulk), so the WebSocket exists only while it has
/// bytes in hand: between messages, with everything written out, only the stream
/// is kept, and the next byte read or written makes a fresh WebSocket (the
/// protocol keeps no other state between messages). benches/throughput.rs measured
/// ~100 KiB per idle upgraded connection after a 256 KiB exchange before this.
#[derive(Debug)]
enum State<S> {
    Active(Box<WebSocketStream<Tally<S>>>),
    Idle(S),
    /// Only while changing between the two (or after a failure to).
    Gone,
}

/// The stream beneath tungstenite, counting what tungstenite reads from it.
#[derive(Debug)]
struct Tally<S> {
    inner: S,
    read: u64,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tally<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read += (buf.filled().len() - before) as u64;
        r
    }
}

crate::net::io::write_through!(Tally, inner);

/// The bytes a frame with `payload` bytes takes on the wire (pure): the header
/// with the shortest length encoding (RFC 6455 §5.2 requires it), the mask key
/// when `masked`. A peer that fragments or pads its lengths only makes the sum
/// smaller than what was read, which keeps the WebSocket: never the other way.
pub fn frame_len(payload: usize, masked: bool) -> u64 {
    let length = match payload {
        0..=125 => 0,
        126..=65535 => 2,
        _ => 8,
    };
    (2 + length + if masked { 4 } else { 0 } + payload) as u64
}

/// What a connection dropped without a Close after [`IDLE_CUT_AFTER`] is said to be.
pub const IDLE_CUT: &str =
    "the load balancer closed an idle connection: the server's ping_interval must be below its idle timeout";

/// What a connection dropped without a Close while busy is said to be.
pub const CUT: &str = "the load balancer dropped the connection without a WebSocket close (the server stopped, or the load balancer cut it)";

/// How long without a message before a dropped connection counts as an idle cut.
pub const IDLE_CUT_AFTER: Duration = Duration::from_millis(500);

/// The error for a connection reset without a Close, `quiet` after the last
/// message (pure).
pub fn reset_error(quiet: Duration) -> io::Error {
    let msg = if quiet >= IDLE_CUT_AFTER { IDLE_CUT } else { CUT };
    io::Error::new(io::ErrorKind::ConnectionAborted, msg)
}

impl<S> WsStream<S> {
    /// A WebSocket on `io`, whose handshake is done, speaking as `role`;
    /// `ping_every` makes it send Pings (server side).
    pub fn new(io: S, role: Role, ping_every: Option<Duration>) -> Self {
        let pinger = ping_every.filter(|d| !d.is_zero()).map(|p| {
            let mut iv = tokio::time::interval_at(Instant::now() + p, p);
            iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
            iv
        });
        WsStream {
            state: State::Idle(io),
            role,
            consumed: 0,
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

    /// Whether a WebSocket (and its buffers) exists now.
    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Active(_))
    }
}

fn to_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, format!("websocket: {other}")),
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "websocket: the connection is gone")
}

/// Read from the bare stream while no WebSocket exists: the first bytes of the next
/// frame, handed to the WebSocket made for them.
const IDLE_READ: usize = 8 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// The WebSocket, made on the bare stream (with `part`, bytes already read from
    /// it) if none exists.
    fn active(&mut self, cx: &mut Context<'_>, part: &[u8]) -> io::Result<&mut WebSocketStream<Tally<S>>> {
        if let State::Idle(_) = self.state {
            let State::Idle(io) = std::mem::replace(&mut self.state, State::Gone) else { return Err(gone()) };
            let tally = Tally { inner: io, read: part.len() as u64 };
            let (role, config) = (self.role, Some(config()));
            let made = if part.is_empty() {
                std::pin::pin!(WebSocketStream::from_raw_socket(tally, role, config)).poll(cx)
            } else {
                std::pin::pin!(WebSocketStream::from_partially_read(tally, part.to_vec(), role, config)).poll(cx)
            };
            // Making one does no I/O (no handshake): it is ready at once.
            let Poll::Ready(ws) = made else { return Err(gone()) };
            self.consumed = 0;
            self.state = State::Active(Box::new(ws));
        }
        match &mut self.state {
            State::Active(ws) => Ok(ws),
            _ => Err(gone()),
        }
    }

    /// Drops the WebSocket when it holds nothing: every byte it read belongs to a
    /// message already returned and everything written is out.
    fn rest(&mut self, cx: &mut Context<'_>) {
        let State::Active(ws) = &mut self.state else { return };
        if !self.pending.is_empty() || self.eof || ws.get_ref().read != self.consumed {
            return;
        }
        if !matches!(Pin::new(&mut **ws).poll_flush(cx), Poll::Ready(Ok(()))) {
            return;
        }
        if let State::Active(ws) = std::mem::replace(&mut self.state, State::Gone) {
            self.state = State::Idle(ws.into_inner().inner);
        }
    }

    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(pinger) = self.pinger.as_mut() else { return Ok(()) };
        while pinger.poll_tick(cx).is_ready() {
            self.ping_due = true;
        }
        if !self.ping_due && !self.is_active() {
            return Ok(());
        }
        let ping_due = self.ping_due;
        let ws = self.active(cx, &[])?;
        let mut sent = false;
        if ping_due {
            if let Poll::Ready(r) = Pin::new(&mut *ws).poll_ready(cx) {
                r.map_err(to_io)?;
                Pin::new(&mut *ws).start_send(Message::Ping(Bytes::new())).map_err(to_io)?;
                sent = true;
            }
        }
        // Push the ping (or a queued Pong) out; Pending registers the waker.
        let flushed = Pin::new(&mut *ws).poll_flush(cx);
        if sent {
            self.ping_due = false;
        }
        if let Poll::Ready(Err(e)) = flushed {
            return Err(to_io(e));
        }
        Ok(())
    }

    /// The end of the stream, read while no WebSocket existed: what tungstenite
    /// says of a stream that ends between messages without a Close.
    fn ended_without_close(&self) -> io::Error {
        if self.name_idle_cuts {
            return reset_error(self.last_rx.elapsed());
        }
        to_io(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))
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
                if this.pending.is_empty() {
                    // Let go of the message's buffer (an empty slice still holds it).
                    this.pending = Bytes::new();
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if let State::Idle(io) = &mut this.state {
                let mut first = [0u8; IDLE_READ];
                let mut rb = ReadBuf::new(&mut first);
                ready!(Pin::new(io).poll_read(cx, &mut rb))?;
                if rb.filled().is_empty() {
                    return Poll::Ready(Err(this.ended_without_close()));
                }
                let n = rb.filled().len();
                this.active(cx, &first[..n])?;
            }
            let masked = this.role == Role::Server;
            let ws = this.active(cx, &[])?;
            let next = match Pin::new(ws).poll_next(cx) {
                Poll::Ready(next) => next,
                Poll::Pending => {
                    this.rest(cx);
                    return Poll::Pending;
                }
            };
            if let Some(Ok(m)) = &next {
                this.last_rx = Instant::now();
                if let Message::Binary(b) | Message::Ping(b) | Message::Pong(b) = m {
                    this.consumed += frame_len(b.len(), masked);
                }
            }
            match next {
                None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => this.eof = true,
                Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) if this.name_idle_cuts => {
                    return Poll::Ready(Err(reset_error(this.last_rx.elapsed())));
                }
                Some(Err(WsError::Capacity(e))) => {
                    // Say why (Close 1009) rather than just dropping the connection.
                    let frame = CloseFrame { code: CloseCode::Size, reason: TOO_BIG_REASON.into() };
                    let ws = this.active(cx, &[])?;
                    if let Poll::Ready(Ok(())) = Pin::new(&mut *ws).poll_ready(cx) {
                        let _ = Pin::new(&mut *ws).start_send(Message::Close(Some(frame)));
                        let _ = Pin::new(&mut *ws).poll_flush(cx);
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
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let ws = self.active(cx, &[])?;
        ready!(Pin::new(&mut *ws).poll_ready(cx)).map_err(to_io)?;
        let n = buf.len().min(crate::net::ping::MAX_WRITE_FRAME);
        Pin::new(ws).start_send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).map_err(to_io)?;
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
        let ws = self.active(cx, &[])?;
        ready!(Pin::new(&mut *ws).poll_ready(cx)).map_err(to_io)?;
        let mut message = Vec::with_capacity(total);
        for b in bufs {
            let room = total - message.len();
            if room == 0 {
                break;
            }
            message.extend_from_slice(&b[..b.len().min(room)]);
        }
        Pin::new(ws).start_send(Message::Binary(Bytes::from(message))).map_err(to_io)?;
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// A flush that empties the WebSocket's write buffer may leave it at rest: the
    /// last thing a relay does after a download is write and flush, with its read
    /// already waiting, so the read side alone would keep the WebSocket for good.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match &mut this.state {
            State::Active(ws) => {
                ready!(Pin::new(&mut **ws).poll_flush(cx)).map_err(to_io)?;
                this.rest(cx);
                Poll::Ready(Ok(()))
            }
            // Nothing is buffered without a WebSocket.
            State::Idle(io) => Pin::new(io).poll_flush(cx),
            State::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    #[test]
    fn frames_are_counted_as_rfc_6455_lays_them_out() {
        assert_eq!(frame_len(0, false), 2);
        assert_eq!(frame_len(125, true), 2 + 4 + 125);
        assert_eq!(frame_len(126, false), 4 + 126);
        assert_eq!(frame_len(65535, true), 4 + 4 + 65535);
        assert_eq!(frame_len(65536, false), 10 + 65536);
    }

    /// Polls `s` once for reading; `Pending` is what an idle stream gives.
    fn read_now<S: AsyncRead + AsyncWrite + Unpin>(s: &mut WsStream<S>) -> Poll<io::Result<Vec<u8>>> {
        let mut buf = [0u8; 256];
        let mut rb = ReadBuf::new(&mut buf);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        Pin::new(s).poll_read(&mut cx, &mut rb).map_ok(|()| rb.filled().to_vec())
    }

    /// Between messages, with everything written, no WebSocket (and none of its
    /// buffers) is kept; bytes, pings and half-sent frames still travel whole.
    #[tokio::test]
    async fn at_rest_it_keeps_no_websocket() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut c = WsStream::new(a, Role::Client, None);
        let mut s = WsStream::new(b, Role::Server, Some(Duration::from_millis(5)));
        assert!(!c.is_active() && !s.is_active(), "a new stream holds no WebSocket");
        let bulk: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for round in 0..3 {
            c.write_all(&bulk).await.unwrap();
            c.flush().await.unwrap();
            let mut got = vec![0u8; bulk.len()];
            s.read_exact(&mut got).await.unwrap();
            assert_eq!(got, bulk, "round {round}");
            s.write_all(b"ack").await.unwrap();
            s.flush().await.unwrap();
            let mut ack = [0u8; 3];
            c.read_exact(&mut ack).await.unwrap();
            assert_eq!(&ack, b"ack");
            assert!(read_now(&mut s).is_pending() && read_now(&mut c).is_pending());
            assert!(!s.is_active(), "round {round}: the server kept its WebSocket at rest");
            assert!(!c.is_active(), "round {round}: the client kept its WebSocket at rest");
            // The server's pings and the client's pongs come and go in between.
            tokio::time::sleep(Duration::from_millis(12)).await;
            let _ = read_now(&mut s);
            let _ = read_now(&mut c);
        }
    }

    /// The server's last act after a download is a write and a flush while its
    /// read already waits: the flush alone lets the WebSocket go.
    #[tokio::test]
    async fn a_flush_at_rest_lets_it_go() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut c = WsStream::new(a, Role::Client, None);
        let mut s = WsStream::new(b, Role::Server, None);
        c.write_all(b"request").await.unwrap();
        c.flush().await.unwrap();
        let mut got = [0u8; 7];
        s.read_exact(&mut got).await.unwrap();
        assert!(read_now(&mut s).is_pending());
        let bulk: Vec<u8> = (0..300_000u32).map(|i| (i % 249) as u8).collect();
        s.write_all(&bulk).await.unwrap();
        assert!(s.is_active(), "a write makes a WebSocket");
        s.flush().await.unwrap();
        assert!(!s.is_active(), "the server kept its WebSocket after writing everything out");
        let mut back = vec![0u8; bulk.len()];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(back, bulk);
        // A frame still arriving keeps it, whoever flushes.
        let (mut peer, ours) = tokio::io::duplex(1 << 16);
        let mut s = WsStream::new(ours, Role::Client, None);
        peer.write_all(&[0x82, 10, b'0', b'1']).await.unwrap();
        assert!(read_now(&mut s).is_pending());
        s.write_all(b"x").await.unwrap();
        s.flush().await.unwrap();
        assert!(s.is_active(), "a frame half read was dropped by a flush");
        peer.write_all(b"23456789").await.unwrap();
        let mut got = [0u8; 10];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"0123456789");
    }

    /// A frame whose end has not arrived keeps the WebSocket: dropping it would
    /// lose the bytes it holds. A peer's fragmented message is carried whole too.
    #[tokio::test]
    async fn a_partial_or_fragmented_message_keeps_it() {
        let (mut peer, ours) = tokio::io::duplex(1 << 16);
        let mut s = WsStream::new(ours, Role::Client, None);
        // Unmasked binary frame of 10 bytes; only 6 of them sent yet.
        peer.write_all(&[0x82, 10, b'0', b'1', b'2', b'3']).await.unwrap();
        assert!(read_now(&mut s).is_pending());
        assert!(s.is_active(), "a frame half read was dropped");
        peer.write_all(b"456789").await.unwrap();
        let mut got = [0u8; 10];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"0123456789");
        // Two fragments: "ab" (FIN clear), then a continuation "cd" (FIN set).
        peer.write_all(&[0x02, 2, b'a', b'b', 0x80, 2, b'c', b'd']).await.unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcd");
        // Its two headers count as one: the WebSocket stays, which is only wasteful.
        assert!(read_now(&mut s).is_pending());
        assert!(s.is_active());
    }

    /// A stream that ends between messages without a Close says so, as tungstenite
    /// would, whether or not a WebSocket existed then.
    #[tokio::test]
    async fn an_end_without_close_at_rest_is_named() {
        let (peer, ours) = tokio::io::duplex(1 << 16);
        let mut s = WsStream::new(ours, Role::Server, None);
        drop(peer);
        let e = s.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("without closing handshake"), "{e}");
        let (peer, ours) = tokio::io::duplex(1 << 16);
        let mut c = WsStream::new(ours, Role::Client, None).through_load_balancer();
        drop(peer);
        let e = c.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(e.to_string(), CUT);
    }

    #[tokio::test]
    async fn carries_bytes_and_pings() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut c = WsStream::new(a, Role::Client, None);
        let mut s = WsStream::new(b, Role::Server, Some(Duration::from_millis(20)));
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
        let mut server = WebSocketStream::from_raw_socket(b, Role::Server, Some(config())).await;
        let mut c = WsStream::new(a, Role::Client, None);
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
        let mut s = WsStream::new(ours, Role::Server, None);
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
