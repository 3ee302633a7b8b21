//! One exec, attach or port-forward session after its `101`: the relay that reads
//! the channel frames in both directions without changing them and hands the events
//! to the recorder, and the audit line at the end.
//!
//! The recorder runs on a blocking thread behind a bounded queue ([`QUEUE`] events
//! of at most one read, 64 KiB, each: what one read carried on a direction is one
//! event), so the relay never waits on the disk unless the disk falls that far
//! behind, and memory stays bounded. A disk slower than the session slows the
//! session to its pace (both modes: nothing is dropped from a recording); one that
//! takes nothing for [`STALL`] counts as a failed recording. When the recording
//! fails mid-session: under `required` the relay stops passing stdin on, lets the
//! output reach the end of the WebSocket message in flight, then puts a `Status`
//! on the error channel (3) and a close frame, and ends the session; under
//! `best_effort` the session goes on unrecorded and the server logs why.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Event, Meta, Mode, Recorder};
use crate::net::http_forward::{Body, UpgradeHandler};
use crate::net::io::BoxIo;
use crate::proto::k8s_channel::{self, channel, ChannelDecoder, PARSED_PROTOCOLS};
use crate::proto::kube_status;

/// Events queued for the recorder before the relay waits for it.
pub const QUEUE: usize = 64;
/// Bytes read at a time in each direction (and so the largest event).
const BUF: usize = 64 * 1024;
/// How long the relay waits for a recorder that takes no event (a stalled disk)
/// before the recording counts as failed.
pub const STALL: Duration = Duration::from_secs(10);
/// How long the output may take to finish the message in flight before a failed
/// `required` session is cut without the error-channel message.
const DRAIN: Duration = Duration::from_secs(2);

/// What kind of session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `pods/exec`.
    Exec,
    /// `pods/attach`.
    Attach,
    /// `pods/portforward` (never recorded: not a terminal session).
    PortForward,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Exec => "exec",
            Kind::Attach => "attach",
            Kind::PortForward => "port-forward",
        })
    }
}

/// A new session id (a random UUID, version 4).
pub fn new_id() -> String {
    let r: u128 = rand::random();
    let r = (r & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{r:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The upgrade handler of one session (see [`UpgradeHandler`]).
pub struct Handler {
    meta: Meta,
    mode: Mode,
    recorder: Option<Box<dyn Recorder>>,
    /// Why the session is not recorded.
    why_not: Option<String>,
    started: SystemTime,
    /// See [`STALL`].
    stall: Duration,
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("session", &self.meta.session_id)
            .field("mode", &self.mode)
            .field("recorded", &self.recorder.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        // Still holding the recorder: the upgrade never happened.
        if let Some(r) = self.recorder.take() {
            r.discard();
        }
    }
}

impl Handler {
    /// A session described by `meta`; `recorder` is `None` when not recorded, and
    /// `why_not` says why.
    pub fn new(
        meta: Meta,
        mode: Mode,
        recorder: Option<Box<dyn Recorder>>,
        why_not: Option<String>,
        started: SystemTime,
    ) -> Handler {
        Handler { meta, mode, recorder, why_not, started, stall: STALL }
    }

    /// Whether the session will be recorded.
    pub fn is_recorded(&self) -> bool {
        self.recorder.is_some()
    }

    /// Relays a session, recording it if a recorder was started (public for the
    /// benchmark; the kube backend goes through [`UpgradeHandler`]).
    pub async fn run<C, U>(mut self, client: C, upstream: U)
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
        U: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let begun = Instant::now();
        let recorder = self.recorder.take();
        let decoders = recorder.is_some() && PARSED_PROTOCOLS.contains(&self.meta.protocol.as_str());
        let (outcome, recording) = match recorder {
            Some(mut rec) if decoders => {
                rec.begin(&self.meta);
                let name = rec.name();
                let (tap, writer) = Tap::spawn(rec, begun, self.stall);
                let outcome = relay(client, upstream, &self.meta, self.mode, Some(tap)).await;
                let joined = match outcome.failure {
                    None => Ok(writer.await),
                    // A recorder that failed may be stuck in a write (a stalled disk).
                    Some(_) => tokio::time::timeout(DRAIN, writer).await,
                };
                let result = match joined {
                    Ok(r) => r.unwrap_or_else(|e| Err(format!("the recorder stopped: {e}"))),
                    Err(_) => Err("the recorder is stuck writing".to_string()),
                };
                if let (Err(e), None) = (&result, &outcome.failure) {
                    warn!(session = %self.meta.session_id, error = %e, "the recording could not be finished");
                }
                (outcome, Some((name, result)))
            }
            other => {
                if let Some(r) = other {
                    r.discard();
                }
                (relay(client, upstream, &self.meta, self.mode, None).await, None)
            }
        };
        self.audit(begun.elapsed(), &outcome, recording.as_ref());
    }

    fn audit(&self, took: Duration, o: &Outcome, recording: Option<&(String, Result<(), String>)>) {
        let m = &self.meta;
        let (recorded, file, reason) = match (recording, &o.failure) {
            (Some((name, Ok(()))), None) => (true, name.as_str(), String::new()),
            (Some((name, _)), Some(f)) => (false, name.as_str(), format!("the recording failed mid-session: {f}")),
            (Some((name, Err(e))), None) => (false, name.as_str(), format!("the recording failed at the end: {e}")),
            (None, _) => (false, "", self.why_not.clone().unwrap_or_default()),
        };
        let start = time::OffsetDateTime::from(self.started);
        info!(audit = "kube_session", session = %m.session_id, kind = %m.kind, user = %m.user,
            groups = %m.groups.join(","), kube = %m.cluster, namespace = %m.namespace, pod = %m.pod,
            container = %m.container, command = %m.command.join(" "), tty = m.tty, protocol = %m.protocol,
            started = %start.unix_timestamp(), duration_ms = took.as_millis() as u64, exit = %o.exit,
            stdin_bytes = o.input, stdout_bytes = o.output, recorded, recording = %file, %reason,
            "kube session ended");
    }
}

impl UpgradeHandler for Handler {
    fn accept(&mut self, response: &HeaderMap) -> Result<(), Box<Response<Body>>> {
        let chosen = response.get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).unwrap_or("").trim();
        self.meta.protocol = chosen.to_string();
        if self.recorder.is_none() {
            return Ok(());
        }
        let extensions = response.get("sec-websocket-extensions").is_some();
        if PARSED_PROTOCOLS.contains(&chosen) && !extensions {
            return Ok(());
        }
        let reason = if extensions {
            "the API server turned on a WebSocket extension, which the server cannot read".to_string()
        } else {
            format!("the API server chose the subprotocol {chosen:?}, which the server cannot read")
        };
        if let Some(r) = self.recorder.take() {
            r.discard();
        }
        if self.mode == Mode::Required {
            let msg = format!(
                "{} sessions on kube cluster {} must be recorded, but the recording could not be started: {reason}",
                self.meta.kind, self.meta.cluster
            );
            warn!(session = %self.meta.session_id, %reason, "refused after the upgrade: cannot be recorded");
            return Err(Box::new(kube_status::response(StatusCode::BAD_GATEWAY, &msg)));
        }
        warn!(session = %self.meta.session_id, %reason, "session not recorded (best_effort): it runs unrecorded");
        self.why_not = Some(reason);
        Ok(())
    }

    fn relay(self: Box<Self>, client: BoxIo, upstream: BoxIo) -> BoxFuture<'static, ()> {
        Box::pin(async move { (*self).run(client, upstream).await })
    }
}

/// The relay's side of the recorder: a bounded queue and a failure flag.
struct Tap {
    tx: mpsc::Sender<(Duration, Event)>,
    failed: watch::Receiver<Option<String>>,
    fail: Arc<watch::Sender<Option<String>>>,
    begun: Instant,
    stall: Duration,
    /// Still recording (false once the recording failed).
    on: AtomicBool,
}

impl Tap {
    fn spawn(
        mut rec: Box<dyn Recorder>,
        begun: Instant,
        stall: Duration,
    ) -> (Tap, tokio::task::JoinHandle<Result<(), String>>) {
        let (tx, mut rx) = mpsc::channel::<(Duration, Event)>(QUEUE);
        let (fail_tx, failed) = watch::channel(None);
        let fail_tx = Arc::new(fail_tx);
        let fail = fail_tx.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let fail = |e: std::io::Error| {
                let msg = e.to_string();
                let _ = fail_tx.send(Some(msg.clone()));
                Err(msg)
            };
            while let Some((at, ev)) = rx.blocking_recv() {
                if let Err(e) = rec.write(at, &ev) {
                    return fail(e);
                }
                if rx.is_empty() {
                    if let Err(e) = rec.flush() {
                        return fail(e);
                    }
                }
            }
            rec.flush().or_else(fail)
        });
        (Tap { tx, failed, fail, begun, stall, on: AtomicBool::new(true) }, writer)
    }

    /// Queues `ev`, waiting while the queue is full; a recorder that takes nothing
    /// for [`STALL`] fails the recording.
    async fn record(&self, ev: Event) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        if let Err(mpsc::error::SendTimeoutError::Timeout(_)) =
            self.tx.send_timeout((self.begun.elapsed(), ev), self.stall).await
        {
            self.on.store(false, Ordering::Relaxed);
            let why = format!("the recording fell behind: its destination took nothing for {:?}", self.stall);
            let _ = self.fail.send(Some(why));
        }
        // Closed: the writer ended on a failure, which it reported.
    }
}

/// How a relay ended.
#[derive(Debug, Default)]
struct Outcome {
    /// `exit N`, `error: ...`, or `unknown` (no status on the error channel).
    exit: String,
    input: u64,
    output: u64,
    /// The recording's failure, when it failed mid-session.
    failure: Option<String>,
}

/// Why the output direction stopped.
enum Stop {
    Eof,
    /// The recording failed under `required`: end the session with this message.
    Failed(String),
}

/// Copies both ways; with a tap, decodes each direction and records it.
async fn relay<C, U>(client: C, upstream: U, meta: &Meta, mode: Mode, tap: Option<Tap>) -> Outcome
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
    U: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(tap) = tap else {
        // Not recorded: the one relay (half-close, buffers given back when idle).
        let (mut client, mut upstream) = (client, upstream);
        return match crate::net::relay::relay(&mut client, &mut upstream).await {
            Ok(c) => Outcome { exit: "unknown".into(), input: c.a_to_b, output: c.b_to_a, failure: None },
            Err(e) => {
                tracing::debug!(session = %meta.session_id, error = %e, "session stream ended with an error");
                Outcome { exit: "unknown".into(), ..Default::default() }
            }
        };
    };
    let tap = Some(tap);
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let stop_input = CancellationToken::new();
    let tap = tap.as_ref();
    let protocol = meta.protocol.as_str();
    let mut exit = String::from("unknown");
    let mut failure: Option<String> = None;
    let mut input_bytes = 0u64;
    let mut output_bytes = 0u64;

    let input = async {
        let mut dec = tap.and_then(|_| ChannelDecoder::new(protocol, true));
        let mut buf = vec![0u8; BUF];
        let mut events = Vec::new();
        loop {
            let n = tokio::select! {
                r = cr.read(&mut buf) => r?,
                _ = stop_input.cancelled() => return Ok::<(), std::io::Error>(()),
            };
            if n == 0 {
                return uw.shutdown().await;
            }
            input_bytes += n as u64;
            if let (Some(d), Some(tap)) = (dec.as_mut(), tap) {
                if tap.on.load(Ordering::Relaxed) {
                    let parsed = d.feed(&buf[..n], false, &mut |e| match e {
                        k8s_channel::Event::Data { channel: channel::STDIN, data } => {
                            push_data(&mut events, false, data, n)
                        }
                        k8s_channel::Event::Resize { width, height } => events.push(Event::Resize(width, height)),
                        _ => {}
                    });
                    if let Err(e) = parsed {
                        unreadable(tap, meta, &format!("stdin: {e}"));
                        dec = None;
                    }
                    for ev in events.drain(..) {
                        tap.record(ev).await;
                    }
                }
            }
            uw.write_all(&buf[..n]).await?;
            uw.flush().await?;
        }
    };

    let output = async {
        let mut dec = tap.and_then(|_| ChannelDecoder::new(protocol, false));
        let mut failed = tap.map(|t| t.failed.clone());
        let mut buf = vec![0u8; BUF];
        let mut events = Vec::new();
        let stop = loop {
            let n = tokio::select! {
                r = ur.read(&mut buf) => r?,
                Some(reason) = recording_failed(&mut failed) => {
                    failure = Some(reason.clone());
                    if mode == Mode::Required {
                        break Stop::Failed(reason);
                    }
                    warn!(session = %meta.session_id, %reason,
                        "the recording failed mid-session (best_effort): the session goes on unrecorded");
                    if let Some(t) = tap {
                        t.on.store(false, Ordering::Relaxed);
                    }
                    failed = None;
                    dec = None;
                    continue;
                }
            };
            if n == 0 {
                break Stop::Eof;
            }
            output_bytes += n as u64;
            if let (Some(d), Some(tap)) = (dec.as_mut(), tap) {
                let parsed = d.feed(&buf[..n], false, &mut |e| collect_output(e, &mut events, &mut exit, n));
                if let Err(e) = parsed {
                    unreadable(tap, meta, &format!("output: {e}"));
                    dec = None;
                }
                for ev in events.drain(..) {
                    tap.record(ev).await;
                }
            }
            cw.write_all(&buf[..n]).await?;
            cw.flush().await?;
        };
        match stop {
            Stop::Eof => cw.shutdown().await,
            Stop::Failed(reason) => {
                stop_input.cancel();
                let msg = format!(
                    "{} session on kube cluster {} ended: it must be recorded, and the recording failed: {reason}",
                    meta.kind, meta.cluster
                );
                warn!(session = %meta.session_id, %reason, "the recording failed mid-session (required): ending the session");
                if let Some(d) = dec.as_mut() {
                    let drained = tokio::time::timeout(DRAIN, async {
                        while !d.at_message_boundary() {
                            let n = ur.read(&mut buf).await?;
                            if n == 0 {
                                return Err(std::io::ErrorKind::UnexpectedEof.into());
                            }
                            let used = d.feed(&buf[..n], true, &mut |_| {}).map_err(std::io::Error::other)?;
                            cw.write_all(&buf[..used]).await?;
                        }
                        Ok::<(), std::io::Error>(())
                    })
                    .await;
                    if matches!(drained, Ok(Ok(()))) {
                        let status = kube_status::body(StatusCode::INTERNAL_SERVER_ERROR, &msg);
                        let json = serde_json::to_vec(&status).unwrap_or_default();
                        cw.write_all(&k8s_channel::server_frame(channel::ERROR, &json)).await?;
                        cw.write_all(&k8s_channel::server_close(1000, "recording failed")).await?;
                    }
                }
                exit = format!("error: {msg}");
                cw.flush().await?;
                cw.shutdown().await
            }
        }
    };

    let res = tokio::try_join!(input, output);
    if let Err(e) = res {
        tracing::debug!(session = %meta.session_id, error = %e, "session stream ended with an error");
    }
    if let Some(t) = tap {
        t.record(Event::End(exit.clone())).await;
    }
    Outcome { exit, input: input_bytes, output: output_bytes, failure }
}

/// Adds `data` to the last event if it is data of the same direction, else starts
/// one (with room for the rest of a read of `read` bytes): one event per read, not
/// one per message, keeps the recorder's per-event costs out of the way of large
/// output.
fn push_data(events: &mut Vec<Event>, output: bool, data: &[u8], read: usize) {
    match events.last_mut() {
        Some(Event::Output(v)) if output => v.extend_from_slice(data),
        Some(Event::Input(v)) if !output => v.extend_from_slice(data),
        _ => {
            let mut v = Vec::with_capacity(read.max(data.len()));
            v.extend_from_slice(data);
            events.push(if output { Event::Output(v) } else { Event::Input(v) });
        }
    }
}

fn collect_output(e: k8s_channel::Event<'_>, events: &mut Vec<Event>, exit: &mut String, read: usize) {
    match e {
        k8s_channel::Event::Data { channel: channel::STDOUT | channel::STDERR, data } => {
            push_data(events, true, data, read)
        }
        k8s_channel::Event::Status(json) => {
            *exit = match k8s_channel::exit_code(json) {
                Some(code) => format!("exit {code}"),
                None => match serde_json::from_slice::<serde_json::Value>(json) {
                    Ok(v) => format!("error: {}", v["message"].as_str().unwrap_or("unreadable status")),
                    // base64.channel.k8s.io (the v1 protocol) puts the error as text.
                    Err(_) => {
                        let text = String::from_utf8_lossy(json);
                        format!("error: {}", text.trim().chars().take(500).collect::<String>())
                    }
                },
            }
        }
        _ => {}
    }
}

/// The stream cannot be read: reported like a write failure, so that `required`
/// ends the session and `best_effort` goes on unrecorded.
fn unreadable(tap: &Tap, meta: &Meta, why: &str) {
    warn!(session = %meta.session_id, why, "cannot read the session's WebSocket frames");
    let _ = tap.fail.send(Some(format!("cannot read the session's WebSocket frames ({why})")));
}

/// Resolves with the failure reason once the recorder reports one; never without a tap.
async fn recording_failed(failed: &mut Option<watch::Receiver<Option<String>>>) -> Option<String> {
    let Some(rx) = failed.as_mut() else { return std::future::pending().await };
    loop {
        if let Some(r) = rx.borrow_and_update().clone() {
            return Some(r);
        }
        if rx.changed().await.is_err() {
            // The writer ended without a failure (the session is ending).
            return std::future::pending().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    fn meta(protocol: &str) -> Meta {
        Meta {
            session_id: new_id(),
            kind: "exec".into(),
            user: "alice".into(),
            cluster: "prod".into(),
            namespace: "default".into(),
            pod: "web-1".into(),
            protocol: protocol.into(),
            ..Default::default()
        }
    }

    fn msg(channel: u8, data: &[u8]) -> Message {
        msg_in("v5.channel.k8s.io", channel, data)
    }

    /// A channel message as `protocol` frames it.
    fn msg_in(protocol: &str, channel: u8, data: &[u8]) -> Message {
        if protocol.contains("base64") {
            use base64::Engine;
            return Message::Text(
                format!("{channel}{}", base64::engine::general_purpose::STANDARD.encode(data)).into(),
            );
        }
        let mut v = vec![channel];
        v.extend_from_slice(data);
        Message::Binary(v.into())
    }

    /// A recorder that fails after `ok` writes.
    struct Failing {
        ok: usize,
    }

    impl Recorder for Failing {
        fn name(&self) -> String {
            "failing".into()
        }
        fn begin(&mut self, _: &Meta) {}
        fn write(&mut self, _: Duration, _: &Event) -> std::io::Result<()> {
            if self.ok == 0 {
                return Err(std::io::Error::other("No space left on device"));
            }
            self.ok -= 1;
            Ok(())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn discard(self: Box<Self>) {}
    }

    /// Client and server WebSocket ends with a session relay between them.
    async fn pair(
        handler: Handler,
    ) -> (WebSocketStream<tokio::io::DuplexStream>, WebSocketStream<tokio::io::DuplexStream>, tokio::task::JoinHandle<()>)
    {
        let (client, relay_client) = tokio::io::duplex(64 * 1024);
        let (relay_up, server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(handler.run(relay_client, relay_up));
        let c = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let s = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        (c, s, task)
    }

    #[tokio::test]
    async fn records_both_directions_in_every_parsed_protocol_unchanged() {
        for protocol in PARSED_PROTOCOLS {
            let msg = move |channel, data: &[u8]| msg_in(protocol, channel, data);
            let dir = tempfile::tempdir().unwrap();
            let sink = super::super::dir::DirSink::new(dir.path().to_path_buf());
            let m = meta(protocol);
            let rec = super::super::Sink::create(&sink, &m, 1_764_625_680_000).unwrap();
            let h = Handler::new(m, Mode::Required, Some(rec), None, SystemTime::now());
            let (mut c, mut s, task) = pair(h).await;
            c.send(msg(4, br#"{"Width":100,"Height":30}"#)).await.unwrap();
            c.send(msg(0, b"ls\r")).await.unwrap();
            let big = vec![b'y'; 200_000];
            for expect in [msg(4, br#"{"Width":100,"Height":30}"#), msg(0, b"ls\r")] {
                assert_eq!(s.next().await.unwrap().unwrap(), expect);
            }
            // The server writes while the client reads (the streams hold 64 KiB).
            let b = big.clone();
            let server = tokio::spawn(async move {
                s.send(msg(1, b"file\r\n")).await.unwrap();
                s.send(msg(2, &b)).await.unwrap();
                s.send(msg(3, br#"{"metadata":{},"status":"Success"}"#)).await.unwrap();
                s.close(None).await.unwrap();
                while let Some(Ok(_)) = s.next().await {}
            });
            assert_eq!(c.next().await.unwrap().unwrap(), msg(1, b"file\r\n"));
            assert_eq!(c.next().await.unwrap().unwrap(), msg(2, &big));
            assert_eq!(c.next().await.unwrap().unwrap(), msg(3, br#"{"metadata":{},"status":"Success"}"#));
            while let Some(Ok(_)) = c.next().await {}
            drop(c);
            server.await.unwrap();
            task.await.unwrap();
            let files = super::super::dir::list(dir.path()).unwrap();
            let path = files[0].as_ref().unwrap().path.clone();
            let text = std::fs::read_to_string(path).unwrap();
            let h = super::super::asciicast::read_header(&mut text.as_bytes()).unwrap();
            assert_eq!((h.width, h.height, h.meta.protocol.as_str()), (100, 30, protocol));
            let events: Vec<_> =
                text.lines().skip(1).map(|l| super::super::asciicast::parse_event(l).unwrap()).collect();
            let input: String = events.iter().filter(|e| e.kind == "i").map(|e| e.data.as_str()).collect();
            let output: String = events.iter().filter(|e| e.kind == "o").map(|e| e.data.as_str()).collect();
            assert_eq!(input, "ls\r");
            assert_eq!(output, format!("file\r\n{}", "y".repeat(200_000)));
            assert_eq!(events.last().unwrap().kind, "m");
            assert_eq!(events.last().unwrap().data, "exit 0");
        }
    }

    #[tokio::test]
    async fn a_failing_recording_ends_a_required_session_on_the_error_channel() {
        let h = Handler::new(
            meta("v5.channel.k8s.io"),
            Mode::Required,
            Some(Box::new(Failing { ok: 1 })),
            None,
            SystemTime::now(),
        );
        let (mut c, mut s, task) = pair(h).await;
        s.send(msg(1, b"one")).await.unwrap();
        assert_eq!(c.next().await.unwrap().unwrap(), msg(1, b"one"));
        s.send(msg(1, b"two")).await.unwrap(); // the write that fails
        let mut got = Vec::new();
        while let Some(Ok(m)) = c.next().await {
            got.push(m);
        }
        let status = got.iter().find_map(|m| match m {
            Message::Binary(b) if b.first() == Some(&3) => Some(String::from_utf8_lossy(&b[1..]).into_owned()),
            _ => None,
        });
        let status = status.unwrap_or_else(|| panic!("no error-channel status in {got:?}"));
        assert!(status.contains("exec session on kube cluster prod ended: it must be recorded, and the recording failed: No space left on device"), "{status}");
        assert!(matches!(got.last(), Some(Message::Close(Some(f))) if u16::from(f.code) == 1000), "{got:?}");
        // stdin no longer reaches the pod.
        let _ = c.send(msg(0, b"rm -rf /\r")).await;
        task.await.unwrap();
        while let Some(Ok(m)) = s.next().await {
            assert!(!matches!(&m, Message::Binary(b) if b.first() == Some(&0)), "stdin reached the pod: {m:?}");
        }
    }

    /// A recorder that blocks in its first write until released (a hung disk).
    struct Stuck {
        release: std::sync::mpsc::Receiver<()>,
    }

    impl Recorder for Stuck {
        fn name(&self) -> String {
            "stuck".into()
        }
        fn begin(&mut self, _: &Meta) {}
        fn write(&mut self, _: Duration, _: &Event) -> std::io::Result<()> {
            let _ = self.release.recv();
            Err(std::io::Error::other("released"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn discard(self: Box<Self>) {}
    }

    #[tokio::test]
    async fn a_stalled_recording_ends_a_required_session() {
        let (release, rx) = std::sync::mpsc::channel();
        let mut h = Handler::new(
            meta("v5.channel.k8s.io"),
            Mode::Required,
            Some(Box::new(Stuck { release: rx })),
            None,
            SystemTime::now(),
        );
        h.stall = Duration::from_millis(200);
        let (mut c, mut s, task) = pair(h).await;
        let server = tokio::spawn(async move {
            // Output until the relay stops reading: the queue fills, then waits.
            let chunk = vec![b'x'; 16 * 1024];
            while s.send(msg(1, &chunk)).await.is_ok() {}
        });
        let mut status = None;
        while let Some(Ok(m)) = c.next().await {
            if let Message::Binary(b) = &m {
                if b.first() == Some(&3) {
                    status = Some(String::from_utf8_lossy(&b[1..]).into_owned());
                }
            }
        }
        let status = status.expect("no error-channel status");
        assert!(
            status.contains("exec session on kube cluster prod ended: it must be recorded, and the recording failed: the recording fell behind: its destination took nothing for 200ms"),
            "{status}"
        );
        drop(c);
        // The handler does not wait for the stuck writer beyond DRAIN.
        tokio::time::timeout(Duration::from_secs(10), task).await.expect("the session did not end").unwrap();
        let _ = release.send(());
        server.abort();
    }

    #[tokio::test]
    async fn a_failing_recording_leaves_a_best_effort_session_running() {
        let h = Handler::new(
            meta("v5.channel.k8s.io"),
            Mode::BestEffort,
            Some(Box::new(Failing { ok: 0 })),
            None,
            SystemTime::now(),
        );
        let (mut c, mut s, task) = pair(h).await;
        for i in 0..20u8 {
            s.send(msg(1, &[b'a' + i])).await.unwrap();
            assert_eq!(c.next().await.unwrap().unwrap(), msg(1, &[b'a' + i]));
            c.send(msg(0, &[i])).await.unwrap();
            assert_eq!(s.next().await.unwrap().unwrap(), msg(0, &[i]));
        }
        s.close(None).await.unwrap();
        tokio::spawn(async move { while let Some(Ok(_)) = s.next().await {} });
        while let Some(Ok(_)) = c.next().await {}
        drop(c);
        task.await.unwrap();
    }

    #[test]
    fn ids_are_uuids() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(new_id(), id);
    }
}
