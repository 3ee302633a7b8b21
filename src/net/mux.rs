//! HTTP/2 plumbing of multiplexed sessions (docs/protocol.md §13), for both ends:
//! the `h2` builders with windows sized for bulk, a stream as a byte stream
//! ([`H2Stream`]: DATA frames each way, END_STREAM = half-close of that direction;
//! it also moves owned chunks, [`Chunks`], so the relay copies nothing through it),
//! the CONNECT request that opens a stream and the refusal that answers one, the
//! pacing of a session's transport ([`Paced`]), and the PING keepalive.
//!
//! A client stream is usable at once: its bytes go out behind the request without
//! waiting for the answer (so a new connection costs one round trip), and its first
//! read waits for the answer. A refusal (any status but 200) surfaces as an I/O
//! error carrying the server's sentence ([`StreamRefused`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2::{client::ResponseFuture, Ping, PingPong, RecvStream, SendStream};
use http::{Method, Request, Response, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::net::io::{Chunks, RUN};

/// Receive window of one stream: what one local connection may have in flight.
pub const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
/// Receive window of the whole session: bounds what a peer may make us buffer.
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
/// Largest DATA frame either end accepts. h2 writes (and flushes) one frame per
/// write to the TLS layer, so the default 16 KiB meant a system call per 16 KiB;
/// 256 KiB frames let a bulk stream move as few, large writes as a dedicated
/// connection does (against 128 KiB: +7-12% on a session both ways,
/// docs/benchmarks.md), and still hold the session for well under a millisecond.
pub const MAX_FRAME: u32 = 256 * 1024;
/// Largest header block accepted (a CONNECT request or its answer is tiny).
pub const MAX_HEADER_LIST: u32 = 16 * 1024;
/// Longest refusal sentence read from a 403 body.
pub const MAX_REFUSAL: usize = 4 * 1024;
/// The content type of a refusal body.
pub const REFUSAL_TYPE: &str = "text/plain; charset=utf-8";

/// Streams a client opens on a new session before the server's SETTINGS say how
/// many it takes (h2's default is no limit, so a burst in the first round trip
/// could exceed the server's and be refused). RFC 9113 §6.5.2 recommends servers
/// allow at least 100; oneport's allows 256 unless configured lower.
pub const INITIAL_MAX_SEND_STREAMS: usize = 100;

/// An HTTP/2 client builder with oneport's windows.
pub fn client_builder() -> h2::client::Builder {
    let mut b = h2::client::Builder::new();
    b.initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_frame_size(MAX_FRAME)
        .enable_push(false);
    b
}

/// An HTTP/2 server builder with oneport's windows and at most `max_streams` open
/// streams (the client's excess streams wait for a free slot).
pub fn server_builder(max_streams: u32) -> h2::server::Builder {
    let mut b = h2::server::Builder::new();
    b.initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_frame_size(MAX_FRAME)
        .max_concurrent_streams(max_streams);
    b
}

/// The CONNECT request opening a stream to the resource named `authority` (the
/// session's SNI).
///
/// # Errors
/// When `authority` is not a valid URI authority.
pub fn connect_request(authority: &str) -> Result<Request<()>, String> {
    let uri = Uri::builder()
        .authority(authority)
        .build()
        .map_err(|e| format!("{authority:?} cannot name a multiplexed stream: {e}"))?;
    Request::builder()
        .method(Method::CONNECT)
        .uri(uri)
        .body(())
        .map_err(|e| format!("{authority:?} cannot name a multiplexed stream: {e}"))
}

/// The answer to an accepted stream.
pub fn accepted() -> Response<()> {
    let mut r = Response::new(());
    *r.status_mut() = StatusCode::OK;
    r
}

/// The head of a refusal; the body is the sentence.
pub fn refused(status: StatusCode) -> Response<()> {
    let mut r = Response::new(());
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(REFUSAL_TYPE));
    r
}

/// A stream the server refused: its status and sentence. Carried inside the
/// `io::Error` a read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRefused {
    /// The HTTP status (403 for a refusal of the caller).
    pub status: u16,
    /// The server's sentence.
    pub sentence: String,
}

impl std::fmt::Display for StreamRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sentence)
    }
}

impl std::error::Error for StreamRefused {}

impl StreamRefused {
    /// The refusal inside `e`, if that is what it is.
    pub fn of(e: &io::Error) -> Option<&StreamRefused> {
        e.get_ref().and_then(|x| x.downcast_ref::<StreamRefused>())
    }
}

/// An `h2` error as an I/O error (an I/O error inside stays itself).
pub fn to_io(e: h2::Error) -> io::Error {
    if e.is_io() {
        return e.into_io().unwrap_or_else(|| io::Error::other("HTTP/2 I/O error"));
    }
    io::Error::other(format!("multiplexed stream: {e}"))
}

/// A session's transport that lets its task yield after [`RUN`] bytes read
/// without the socket running dry. h2 otherwise reads all there is (up to the
/// windows: megabytes) before the streams it fed write any of it out, and the
/// bytes then wait in memory gone cold while the socket runs dry and the peer
/// sleeps and is woken again (benches/throughput: a stream on a session moved
/// 5-10% more each way with this; docs/benchmarks.md).
#[derive(Debug)]
pub struct Paced<S> {
    inner: S,
    /// Read since the socket last ran dry (or the task last yielded).
    run: usize,
}

impl<S> Paced<S> {
    /// `inner`, paced.
    pub fn new(inner: S) -> Self {
        Paced { inner, run: 0 }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Paced<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.run >= RUN {
            self.run = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        match r {
            Poll::Ready(Ok(())) => self.run += buf.filled().len() - before,
            Poll::Pending => self.run = 0,
            Poll::Ready(Err(_)) => {}
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Paced<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the session's transport told us. HTTP/2 reports a transport error to its
/// streams as a kind and a text only; this keeps the TLS alert (the proxy's
/// `access_denied` after TLS 1.3's handshake means "refused"). A transport that
/// failed before the proxy sent a byte counts as refused too: a proxy that accepts
/// a session sends its SETTINGS at once, while a refusal closes the connection,
/// and the client's own writes may meet the closed socket before the alert is read.
#[derive(Debug, Clone, Default)]
pub struct AlertTap(Arc<Mutex<TapState>>);

#[derive(Debug, Default)]
struct TapState {
    alert: Option<rustls::AlertDescription>,
    heard: bool,
    failed: bool,
}

impl AlertTap {
    /// The alert seen, if any (`access_denied` for a transport that failed before
    /// the proxy said anything).
    pub fn alert(&self) -> Option<rustls::AlertDescription> {
        let st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match st.alert {
            Some(a) => Some(a),
            None if st.failed && !st.heard => Some(rustls::AlertDescription::AccessDenied),
            None => None,
        }
    }

    fn heard(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).heard = true;
    }

    /// `e` as a stream should report it: the transport's alert when there was one.
    pub fn explain(&self, e: io::Error) -> io::Error {
        match self.alert() {
            Some(a) if crate::net::tls::alert_of(&e).is_none() && StreamRefused::of(&e).is_none() => {
                io::Error::new(io::ErrorKind::InvalidData, rustls::Error::AlertReceived(a))
            }
            _ => e,
        }
    }

    fn record(&self, e: &io::Error) {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        st.failed = true;
        if st.alert.is_none() {
            st.alert = crate::net::tls::alert_of(e);
        }
    }
}

/// A session's streams, counted by the client: how many are open and how many were
/// ever opened, and whether it was closed for being idle. h2 queues a stream opened
/// beyond the peer's SETTINGS_MAX_CONCURRENT_STREAMS until another closes (per
/// handle, so clones do not see each other's), which would stall a connection
/// behind long-lived ones; counting them ourselves lets the caller go another way
/// instead.
#[derive(Debug, Default)]
pub struct Streams {
    open: AtomicUsize,
    opened: AtomicU64,
}

/// What `open` holds once the session is closed: more than any limit, so no place
/// is taken any more.
const CLOSED: usize = usize::MAX;

impl Streams {
    /// A place if fewer than `max` are taken (and the session is not closed).
    pub fn take(self: &Arc<Self>, max: usize) -> Option<StreamSlot> {
        self.open
            .fetch_update(
                Ordering::AcqRel,
                Ordering::Acquire,
                |n| if n != CLOSED && n < max { Some(n + 1) } else { None },
            )
            .ok()?;
        self.opened.fetch_add(1, Ordering::AcqRel);
        Some(StreamSlot(self.clone()))
    }

    /// Streams open now (0 once closed).
    pub fn open(&self) -> usize {
        match self.open.load(Ordering::Acquire) {
            CLOSED => 0,
            n => n,
        }
    }

    /// Streams ever opened.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Acquire)
    }

    /// Closes the session if no stream is open, atomically with [`Streams::take`]:
    /// after `true` no place is ever taken again. Whether it was closed.
    pub fn close_if_idle(&self) -> bool {
        self.open.compare_exchange(0, CLOSED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

/// A place among a session's open [`Streams`], given back when dropped.
#[derive(Debug)]
pub struct StreamSlot(Arc<Streams>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        // Never at CLOSED: a session is closed only with no place taken.
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A stream and an [`AlertTap`]. Around a session's transport (`recording`) it
/// records the alert the transport returns; around a stream it reports errors
/// through [`AlertTap::explain`].
#[derive(Debug)]
pub struct Tapped<S> {
    inner: S,
    tap: AlertTap,
    recording: bool,
    _slot: Option<StreamSlot>,
}

impl<S> Tapped<S> {
    /// The session's transport, recording into `tap`.
    pub fn transport(inner: S, tap: AlertTap) -> Self {
        Tapped { inner, tap, recording: true, _slot: None }
    }

    /// A stream of the session whose transport records into `tap`, holding its
    /// place among the session's open streams until dropped.
    pub fn stream(inner: S, tap: AlertTap, slot: StreamSlot) -> Self {
        Tapped { inner, tap, recording: false, _slot: Some(slot) }
    }

    fn seen<T>(&self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(Err(e)) if self.recording => {
                self.tap.record(&e);
                Poll::Ready(Err(e))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.tap.explain(e))),
            other => other,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.recording && matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.tap.heard();
        }
        self.seen(r)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tapped<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        self.seen(r)
    }
    // h2 writes a DATA frame as its head and its payload in one vectored write when
    // the transport says it can; hiding that would cost a TLS record and a system
    // call for each head.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.seen(r)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.seen(r)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.seen(r)
    }
}

impl<S: Chunks> Chunks for Tapped<S> {
    fn poll_send(&mut self, cx: &mut Context<'_>, data: &mut Bytes) -> Poll<io::Result<()>> {
        let r = self.inner.poll_send(cx, data);
        self.seen(r)
    }
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        let r = self.inner.poll_chunk(cx);
        if self.recording && matches!(r, Poll::Ready(Ok(Some(_)))) {
            self.tap.heard();
        }
        self.seen(r)
    }
}

enum ReadState {
    /// Waiting for the server's answer to the CONNECT.
    Answer(ResponseFuture),
    /// Reading a refusal's sentence.
    Refusal { body: RecvStream, status: u16, text: Vec<u8> },
    /// The stream's data.
    Body(RecvStream),
    /// END_STREAM seen.
    Eof,
}

/// One stream as a byte stream.
pub struct H2Stream {
    send: SendStream<Bytes>,
    read: ReadState,
    /// Received and not yet read; its window is given back as it is read.
    buf: Bytes,
    shut: bool,
    /// The server's refusal, once read: every later read and write returns it.
    refusal: Option<StreamRefused>,
}

impl std::fmt::Debug for H2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Stream").field("buffered", &self.buf.len()).finish_non_exhaustive()
    }
}

impl H2Stream {
    /// The client end of a stream, before the server's answer.
    pub fn client(send: SendStream<Bytes>, answer: ResponseFuture) -> H2Stream {
        H2Stream { send, read: ReadState::Answer(answer), buf: Bytes::new(), shut: false, refusal: None }
    }

    /// The server end of an accepted stream.
    pub fn server(send: SendStream<Bytes>, body: RecvStream) -> H2Stream {
        H2Stream { send, read: ReadState::Body(body), buf: Bytes::new(), shut: false, refusal: None }
    }

    /// Waits for the server's answer to the stream's CONNECT: `Ok` once accepted,
    /// else the refusal (a [`StreamRefused`]) or the session's error.
    ///
    /// # Errors
    /// As the stream's first read would.
    pub async fn answered(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_answer(cx)).await
    }

    fn refusal_error(&self) -> Option<io::Error> {
        self.refusal.clone().map(|r| io::Error::new(io::ErrorKind::PermissionDenied, r))
    }

    /// A write that failed: when the server's answer is (or is about to be) a
    /// refusal, that is the error to report.
    fn write_failed(&mut self, cx: &mut Context<'_>, e: io::Error) -> Poll<io::Result<usize>> {
        match self.poll_answer(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(refusal)) => Poll::Ready(Err(refusal)),
            Poll::Ready(Ok(())) => Poll::Ready(Err(self.refusal_error().unwrap_or(e))),
        }
    }

    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refusal_error() {
            return Poll::Ready(Err(e));
        }
        loop {
            match &mut self.read {
                ReadState::Answer(fut) => {
                    let resp = ready!(Pin::new(fut).poll(cx)).map_err(to_io)?;
                    let status = resp.status();
                    let body = resp.into_body();
                    self.read = if status == StatusCode::OK {
                        ReadState::Body(body)
                    } else {
                        ReadState::Refusal { body, status: status.as_u16(), text: Vec::new() }
                    };
                }
                ReadState::Refusal { body, status, text } => {
                    let done = match ready!(body.poll_data(cx)) {
                        Some(Ok(b)) => {
                            let _ = body.flow_control().release_capacity(b.len());
                            let room = MAX_REFUSAL.saturating_sub(text.len());
                            text.extend_from_slice(&b[..b.len().min(room)]);
                            text.len() >= MAX_REFUSAL
                        }
                        Some(Err(_)) | None => true,
                    };
                    if done {
                        let mut sentence = String::from_utf8_lossy(text).trim().to_string();
                        if sentence.is_empty() {
                            sentence = format!("the proxy refused the stream (HTTP {status})");
                        }
                        self.refusal = Some(StreamRefused { status: *status, sentence });
                        self.read = ReadState::Eof;
                        return Poll::Ready(Err(self
                            .refusal_error()
                            .unwrap_or_else(|| io::ErrorKind::PermissionDenied.into())));
                    }
                }
                ReadState::Body(_) | ReadState::Eof => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl H2Stream {
    /// The next received chunk (the buffered rest first), its window given back.
    fn poll_next_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        ready!(self.poll_answer(cx))?;
        let chunk = if !self.buf.is_empty() {
            std::mem::take(&mut self.buf)
        } else {
            let ReadState::Body(body) = &mut self.read else { return Poll::Ready(Ok(None)) };
            match ready!(body.poll_data(cx)) {
                Some(Ok(b)) => b,
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
                None => {
                    self.read = ReadState::Eof;
                    return Poll::Ready(Ok(None));
                }
            }
        };
        if let ReadState::Body(body) = &mut self.read {
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        Poll::Ready(Ok(Some(chunk)))
    }

    /// Window for up to `want` (> 0) bytes: how many may be sent now.
    fn poll_grant(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        self.send.reserve_capacity(want);
        let mut granted = self.send.poll_capacity(cx);
        // Older h2 releases could report a grant of 0 (hyperium/h2#270); asking
        // again registers for the next window update instead of spinning.
        while matches!(granted, Poll::Ready(Some(Ok(0)))) {
            granted = self.send.poll_capacity(cx);
        }
        match ready!(granted) {
            Some(Ok(n)) => Poll::Ready(Ok(n.min(want))),
            Some(Err(e)) => self.write_failed(cx, to_io(e)),
            None => {
                self.write_failed(cx, io::Error::new(io::ErrorKind::BrokenPipe, "the multiplexed stream was closed"))
            }
        }
    }

    /// Sends as much of `data` as the stream's window takes now, without a copy.
    fn poll_send_bytes(&mut self, cx: &mut Context<'_>, data: &mut Bytes) -> Poll<io::Result<()>> {
        if data.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let n = ready!(self.poll_grant(cx, data.len()))?;
        // `data` advances only past what h2 took.
        match self.send.send_data(data.slice(..n), false) {
            Ok(()) => {
                data.advance(n);
                Poll::Ready(Ok(()))
            }
            Err(e) => self.write_failed(cx, to_io(e)).map_ok(|_| ()),
        }
    }
}

impl Chunks for H2Stream {
    fn poll_send(&mut self, cx: &mut Context<'_>, data: &mut Bytes) -> Poll<io::Result<()>> {
        self.poll_send_bytes(cx, data)
    }
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        self.poll_next_chunk(cx)
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_answer(cx))?;
        // An empty frame is not the end of the stream: only END_STREAM is.
        while this.buf.is_empty() {
            let ReadState::Body(body) = &mut this.read else { return Poll::Ready(Ok(())) };
            match ready!(body.poll_data(cx)) {
                Some(Ok(b)) => this.buf = b,
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
                None => {
                    this.read = ReadState::Eof;
                    return Poll::Ready(Ok(()));
                }
            }
        }
        let n = out.remaining().min(this.buf.len());
        out.put_slice(&this.buf.split_to(n));
        if this.buf.is_empty() {
            // An empty slice still holds the frame's whole read buffer: an idle
            // stream must hold nothing.
            this.buf = Bytes::new();
        }
        if let ReadState::Body(body) = &mut this.read {
            let _ = body.flow_control().release_capacity(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = &mut *self;
        let n = ready!(this.poll_grant(cx, data.len()))?;
        match this.send.send_data(Bytes::copy_from_slice(&data[..n]), false) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(e) => this.write_failed(cx, to_io(e)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The session's connection task writes frames out as they are queued.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shut {
            self.shut = true;
            // END_STREAM: this direction is done. A stream the peer already reset
            // has nothing left to end.
            let _ = self.send.send_data(Bytes::new(), true);
        }
        Poll::Ready(Ok(()))
    }
}

/// One ping answered: every frame the peer sent before its PONG, its SETTINGS
/// (the stream limit) included, has been applied.
///
/// # Errors
/// The ping's failure, or no answer within `timeout`, in words.
pub async fn settle(pings: &mut PingPong, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, pings.ping(Ping::opaque())).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("HTTP/2 ping failed: {e}")),
        Err(_) => Err(format!("no answer to an HTTP/2 ping within {}s", timeout.as_secs())),
    }
}

/// Pings the peer every `interval`; returns why the session should end when a ping
/// fails or goes unanswered for `timeout`.
pub async fn keepalive(mut pings: PingPong, interval: Duration, timeout: Duration) -> String {
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, pings.ping(Ping::opaque())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return format!("HTTP/2 ping failed: {e}"),
            Err(_) => return format!("no answer to an HTTP/2 ping within {}s", timeout.as_secs()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn streams_count_places_and_close_only_when_idle() {
        let streams = Arc::new(Streams::default());
        let a = streams.take(2).expect("a first place");
        let b = streams.take(2).expect("a second place");
        assert!(streams.take(2).is_none(), "two is the limit");
        assert_eq!((streams.open(), streams.opened()), (2, 2));
        assert!(!streams.close_if_idle(), "not while streams are open");
        drop(a);
        assert!(!streams.close_if_idle());
        drop(b);
        assert!(streams.close_if_idle(), "idle now");
        assert!(streams.take(usize::MAX).is_none(), "closed: no place, whatever the limit");
        assert_eq!((streams.open(), streams.opened()), (0, 2));
        assert!(!streams.close_if_idle(), "closed once");
    }

    #[tokio::test]
    async fn a_paced_transport_yields_after_a_run_and_loses_nothing() {
        let payload: Vec<u8> = (0..(3 * RUN + 1000)).map(|i| (i % 253) as u8).collect();
        let (mut w, r) = tokio::io::duplex(4 * RUN);
        w.write_all(&payload).await.unwrap();
        drop(w);
        let mut paced = Paced::new(r);
        let (mut got, mut yields) = (Vec::new(), 0);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut rb = ReadBuf::new(&mut buf);
            // The pipe always has bytes (or its end) ready: a Pending is the pacing.
            let r = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut paced).poll_read(cx, &mut rb))).await;
            match r {
                Poll::Pending => yields += 1,
                Poll::Ready(r) => {
                    r.unwrap();
                    if rb.filled().is_empty() {
                        break;
                    }
                    got.extend_from_slice(rb.filled());
                }
            }
        }
        assert!(got == payload, "{} bytes of {}", got.len(), payload.len());
        assert_eq!(yields, 3, "one yield per {RUN} bytes read in one go");
    }

    #[test]
    fn connect_request_is_authority_form() {
        let r = connect_request("pg1.db.teleport.cluster.local").unwrap();
        assert_eq!(r.method(), Method::CONNECT);
        assert_eq!(r.uri().authority().map(|a| a.as_str()), Some("pg1.db.teleport.cluster.local"));
        assert!(r.uri().scheme().is_none());
        assert!(connect_request("bad host").is_err());
    }

    /// A session over an in-memory pipe: the server echoes accepted streams and
    /// refuses those whose authority is `no`.
    async fn pair() -> h2::client::SendRequest<Bytes> {
        let (c, s) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let mut conn = server_builder(8).handshake::<_, Bytes>(s).await.unwrap();
            while let Some(Ok((req, mut respond))) = conn.accept().await {
                tokio::spawn(async move {
                    if req.uri().authority().map(|a| a.as_str()) == Some("no") {
                        let mut send = respond.send_response(refused(StatusCode::FORBIDDEN), false).unwrap();
                        send.send_data(Bytes::from_static(b"access to app no denied for user t"), true).unwrap();
                        return;
                    }
                    let send = respond.send_response(accepted(), false).unwrap();
                    let mut s = H2Stream::server(send, req.into_body());
                    let (mut r, mut w) = tokio::io::split(&mut s);
                    tokio::io::copy(&mut r, &mut w).await.unwrap();
                    w.shutdown().await.unwrap();
                });
            }
        });
        let (send, conn) = client_builder().handshake(c).await.unwrap();
        tokio::spawn(conn);
        send
    }

    async fn open(send: &h2::client::SendRequest<Bytes>, authority: &str) -> H2Stream {
        let mut send = send.clone().ready().await.unwrap();
        let (answer, stream) = send.send_request(connect_request(authority).unwrap(), false).unwrap();
        H2Stream::client(stream, answer)
    }

    #[tokio::test]
    async fn streams_echo_with_half_close_beyond_the_windows() {
        let send = pair().await;
        let payload: Vec<u8> = (0..(3 * STREAM_WINDOW as usize / 2)).map(|i| (i % 251) as u8).collect();
        let mut a = open(&send, "x").await;
        let mut b = open(&send, "y").await;
        let (pa, pb) = (payload.clone(), payload.clone());
        let ta = tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(&mut a);
            let writer = async {
                w.write_all(&pa).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            tokio::join!(writer, async { r.read_to_end(&mut got).await.unwrap() });
            got
        });
        b.write_all(b"small").await.unwrap();
        b.shutdown().await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"small");
        assert_eq!(ta.await.unwrap(), payload);
        drop(pb);
    }

    #[tokio::test]
    async fn a_refusal_is_an_error_with_the_sentence() {
        let send = pair().await;
        let mut s = open(&send, "no").await;
        // Depending on timing the write goes out before the answer or finds the
        // stream already refused; either way the refusal is what read and write say.
        if let Err(e) = s.write_all(b"sent before the answer").await {
            assert_eq!(StreamRefused::of(&e).map(|r| r.status), Some(403), "{e}");
        }
        let mut buf = [0u8; 16];
        for _ in 0..2 {
            let e = s.read(&mut buf).await.unwrap_err();
            let r = StreamRefused::of(&e).expect("a refusal");
            assert_eq!((r.status, r.sentence.as_str()), (403, "access to app no denied for user t"));
        }
    }

    #[tokio::test]
    async fn the_chunk_relay_moves_every_byte_both_ways_with_half_close() {
        let send = pair().await;
        let mut stream = open(&send, "x").await;
        let (mut local, mut near) = tokio::io::duplex(1 << 16);
        let relay = tokio::spawn(async move { crate::net::relay::relay_chunks(&mut near, &mut stream).await });
        // Beyond the stream's window both ways, in writes of odd sizes.
        let payload: Vec<u8> = (0..(5 * STREAM_WINDOW as usize / 2)).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = tokio::io::split(&mut local);
        let writer = async {
            for part in payload.chunks(77_777) {
                w.write_all(part).await.unwrap();
            }
            w.shutdown().await.unwrap();
        };
        let mut got = Vec::new();
        tokio::join!(writer, async { r.read_to_end(&mut got).await.unwrap() });
        assert!(got == payload, "the echo differs: {} bytes back of {}", got.len(), payload.len());
        let counts = relay.await.unwrap().unwrap();
        let n = payload.len() as u64;
        assert_eq!((counts.a_to_b, counts.b_to_a), (n, n));
    }

    #[tokio::test]
    async fn the_chunk_relay_reports_a_refusal() {
        let send = pair().await;
        let mut stream = open(&send, "no").await;
        let (mut local, mut near) = tokio::io::duplex(1 << 16);
        local.write_all(b"sent before the answer").await.unwrap();
        let e = crate::net::relay::relay_chunks(&mut near, &mut stream).await.unwrap_err();
        let r = StreamRefused::of(&e).expect("a refusal");
        assert_eq!((r.status, r.sentence.as_str()), (403, "access to app no denied for user t"));
    }
}
