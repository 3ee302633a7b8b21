//! The kept-warm routing session of a local proxy (docs/protocol.md §13): one
//! TLS-routing connection per resource, through the one dialer (direct or
//! upgraded), offering the `-mux` ALPN first; each new local connection becomes an
//! HTTP/2 stream in it, so after the session is open a connection costs one round
//! trip. The session is opened when the proxy starts ([`Session::warm`]), kept alive
//! with HTTP/2 pings (and the upgrade's own pings behind a load balancer), re-opened
//! in the background when it drops, and no longer used once the identity expires
//! (its open streams finish; new connections then dial and meet the proxy's refusal).
//! When every open session is at the proxy's stream limit, an extra one is opened
//! (up to [`MAX_SESSIONS`], one dial at a time, outside the lock that places
//! streams) and closed again once idle ([`EXTRA_IDLE`]).
//!
//! A proxy that does not negotiate `-mux` (an older server, or `mux.enabled:
//! false`) gets today's behaviour: the connection dialled to find out is used as the
//! tunnel, and every later connection dials its own. [`Session::mode`] says which.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::FutureExt;
use tracing::{debug, info};

use crate::client::dial::{Dialer, Target};
use crate::error::{Error, Result};
use crate::net::io::BoxIo;
use crate::net::mux::{self, H2Stream};
use crate::net::relay::Link;
use crate::proto::naming::{Alpn, Kind, Protocol, ResourceRef};

/// Interval of the session's HTTP/2 pings.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long a ping may go unanswered before the session is dropped.
pub const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Session::open_answered`] waits for the proxy to accept a stream.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait between background re-open attempts.
const MAX_REOPEN_BACKOFF: Duration = Duration::from_secs(30);
/// Most sessions to one resource: the kept-warm one and the extra ones opened
/// while every open one is at the proxy's `mux.max_streams_per_session` (256 by
/// default, so 4,096 connections ride sessions; beyond that each dials its own).
/// The proxy's `mux.max_sessions_per_user` (64) is shared by a user's resources.
pub const MAX_SESSIONS: usize = 16;
/// An extra session without a stream for this long is closed.
pub const EXTRA_IDLE: Duration = Duration::from_secs(30);
/// After the proxy refused a new extra session (503: its limit of sessions per
/// user), no other is tried for this long; a dial that failed backs off from 1 s,
/// doubling, up to this.
const EXTRA_RETRY: Duration = Duration::from_secs(30);
/// How long a connection that found every session full waits for the extra one
/// being dialled before it dials its own.
const EXTRA_WAIT: Duration = Duration::from_secs(5);

/// What the session found out about the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Not dialled yet.
    Unknown,
    /// Multiplexed: new connections are streams on the session.
    Multiplexed(Alpn),
    /// The proxy negotiated a per-connection protocol: one routing connection per
    /// local connection.
    PerConnection(Option<Alpn>),
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Unknown => f.write_str("not connected yet"),
            Mode::Multiplexed(a) => write!(f, "multiplexed session ({a})"),
            Mode::PerConnection(Some(a)) => write!(f, "one routing connection per local connection ({a})"),
            Mode::PerConnection(None) => f.write_str("one routing connection per local connection"),
        }
    }
}

/// The live session: its stream opener and a generation number, so that a
/// connection task that ended only clears its own session.
#[derive(Clone)]
struct Live {
    send: h2::client::SendRequest<Bytes>,
    generation: u64,
    tap: mux::AlertTap,
    /// The serial of the certificate the session presented: when the identity is
    /// renewed or replaced on disk, new connections go to a new session under it.
    serial: String,
    /// Its streams (against the proxy's SETTINGS_MAX_CONCURRENT_STREAMS).
    streams: Arc<mux::Streams>,
    /// Whether the proxy's SETTINGS (its stream limit) are known.
    settled: Arc<Settled>,
    /// Set by the session's task when its connection ended.
    ended: Arc<std::sync::atomic::AtomicBool>,
}

impl Live {
    /// A place for one more stream, if the proxy's limit leaves one. Until the
    /// proxy's SETTINGS are known the session takes one stream: h2 would otherwise
    /// send a burst against its own default and then queue what the proxy's limit
    /// does not admit behind streams that may never end.
    fn place(&self) -> Option<mux::StreamSlot> {
        let limit = if self.settled.is() { self.send.current_max_send_streams() } else { 1 };
        self.streams.take(limit)
    }

    /// As [`Live::place`], but a session whose SETTINGS are not known yet is waited
    /// for (up to [`PING_TIMEOUT`]) rather than taken as full.
    async fn place_settled(&self) -> Option<mux::StreamSlot> {
        if let Some(p) = self.place() {
            return Some(p);
        }
        if self.settled.is() {
            return None;
        }
        self.settled.wait(PING_TIMEOUT).await;
        self.place()
    }
}

/// Set once the proxy's SETTINGS have been applied to a session: its first ping
/// answered (the proxy sends SETTINGS before anything else) or its first stream.
#[derive(Default)]
struct Settled {
    flag: std::sync::atomic::AtomicBool,
    woken: tokio::sync::Notify,
}

impl Settled {
    fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.woken.notify_waiters();
    }

    fn is(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Waits until set, at most `timeout`.
    async fn wait(&self, timeout: Duration) {
        let woken = self.woken.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if !self.is() {
            let _ = tokio::time::timeout(timeout, woken).await;
        }
    }
}

#[derive(Default)]
struct Slot {
    live: Option<Live>,
    /// Extra sessions, opened while the others were full, each once the proxy
    /// accepted its first stream (so its SETTINGS, the stream limit, are known);
    /// closed when idle.
    extra: Vec<Live>,
    /// No extra session is tried before then.
    extra_blocked_until: Option<tokio::time::Instant>,
    /// Extra dials that failed in a row (for the back-off).
    extra_failures: u32,
    generation: u64,
}

/// One resource's session. Share it behind an `Arc` between the handlers.
pub struct Session {
    dialer: Arc<Dialer>,
    res: ResourceRef,
    /// The per-connection target (what the dialer offers today).
    plain: Target,
    /// The session's target: `-mux` first, then the per-connection names.
    muxed: Option<Target>,
    slot: tokio::sync::Mutex<Slot>,
    mode: Mutex<Mode>,
    /// An extra session is being dialled (set under `slot`; cleared by
    /// [`Dialling`], which wakes `dialled`'s waiters).
    dialling: std::sync::atomic::AtomicBool,
    dialled: tokio::sync::Notify,
    /// [`EXTRA_IDLE`] unless set otherwise, in milliseconds.
    extra_idle_ms: std::sync::atomic::AtomicU64,
    /// Kept-warm sessions in a row that ended before they were settled (the proxy
    /// or something in front of it took the connection and dropped it): the
    /// background re-open waits longer after each ([`reopen_delay`]).
    unsettled_ends: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("res", &self.res).field("mode", &self.mode()).finish_non_exhaustive()
    }
}

impl Session {
    /// A session for resource `kind`/`name` spoken with `protocol`. Protocols
    /// without a `-mux` variant (SSH, the web API's h2) always dial per connection.
    pub fn new(dialer: Arc<Dialer>, kind: Kind, name: &str, protocol: Protocol) -> Arc<Session> {
        let ctx = dialer.context();
        let plain = Target::resource(ctx, kind, name, protocol);
        let muxed = protocol.has_mux().then(|| Target { sni: plain.sni.clone(), alpn: protocol.mux_offer() });
        Arc::new(Session {
            res: ResourceRef::new(kind, name),
            plain,
            muxed,
            slot: tokio::sync::Mutex::new(Slot::default()),
            mode: Mutex::new(Mode::Unknown),
            dialling: std::sync::atomic::AtomicBool::new(false),
            dialled: tokio::sync::Notify::new(),
            extra_idle_ms: std::sync::atomic::AtomicU64::new(EXTRA_IDLE.as_millis() as u64),
            unsettled_ends: std::sync::atomic::AtomicU32::new(0),
            dialer,
        })
    }

    /// Closes extra sessions after `idle` without a stream instead of
    /// [`EXTRA_IDLE`] (for sessions opened from now on).
    pub fn set_extra_idle(&self, idle: Duration) {
        let ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
        self.extra_idle_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Multiplexed sessions open to the resource now: the kept-warm one and the
    /// extra ones.
    pub async fn sessions(&self) -> usize {
        let slot = self.slot.lock().await;
        usize::from(slot.live.is_some()) + slot.extra.len()
    }

    /// The dialer.
    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    /// The resource.
    pub fn resource(&self) -> &ResourceRef {
        &self.res
    }

    /// The per-connection target.
    pub fn target(&self) -> &Target {
        &self.plain
    }

    /// Whether the proxy multiplexes this resource's connections, as far as known.
    pub fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_mode(&self, m: Mode) {
        let mut mode = self.mode.lock().unwrap_or_else(|p| p.into_inner());
        if *mode != m {
            let what = format!("{} {}", self.res.kind.noun(), self.res.name);
            match m {
                Mode::Multiplexed(_) => info!("{what}: {m}; new connections open streams on it"),
                _ => info!("{what}: the proxy does not offer multiplexing: {m}"),
            }
        }
        *mode = m;
    }

    /// How new connections travel, in a word or two for a status line: `None` when
    /// the resource's protocol has no multiplexed variant (each connection dials).
    pub fn mode_words(&self) -> Option<&'static str> {
        self.muxed.as_ref()?;
        match self.mode() {
            Mode::Unknown => None,
            Mode::Multiplexed(_) => Some("multiplexed"),
            Mode::PerConnection(_) => Some("not multiplexed (the proxy does not offer it)"),
        }
    }

    fn multiplexing(&self) -> Option<&Target> {
        if matches!(self.mode(), Mode::PerConnection(_)) || SystemTime::now() >= expiry(&self.dialer.identity()) {
            return None;
        }
        self.muxed.as_ref()
    }

    /// [`Session::warm`] in a task of its own (at proxy start).
    pub fn warm_in_background(self: &Arc<Self>) {
        let s = self.clone();
        tokio::spawn(async move { s.warm().await });
    }

    /// Opens the session now if it is not open (at proxy start, so that even the
    /// first connection is fast). Failures are only logged: the first connection
    /// dials again and reports them.
    pub async fn warm(self: &Arc<Self>) {
        if self.multiplexing().is_none() {
            return;
        }
        let mut slot = self.slot.lock().await;
        if slot.live.is_some() {
            return;
        }
        match self.connect(&mut slot).await {
            Ok(Opened::Session(live)) => {
                drop(slot);
                // Ready once the proxy's stream limit is known, so that a burst of
                // first connections is spread by it.
                live.settled.wait(PING_TIMEOUT).await;
            }
            Ok(Opened::Plain(stream)) => drop(stream), // no multiplexing: nothing to keep
            Err(e) => debug!(error = %e, "could not open the session ahead of the first connection"),
        }
    }

    /// A byte stream to the resource for one local connection: a stream on the
    /// session, or a dialled connection when the proxy does not multiplex.
    ///
    /// # Errors
    /// The dial's error.
    pub async fn open(self: &Arc<Self>) -> Result<Link> {
        self.open_with(false).await
    }

    /// As [`Session::open`], but a stream is returned only once the proxy accepted
    /// it (one round trip more, bounded by [`ANSWER_TIMEOUT`]): a refusal is
    /// [`Error::Refused`] with the proxy's sentence, for callers that answer
    /// requests themselves (`proxy kube`'s pool) rather than relay bytes.
    ///
    /// # Errors
    /// The dial's error, or the refusal.
    pub async fn open_answered(self: &Arc<Self>) -> Result<BoxIo> {
        Ok(self.open_with(true).await?.into_io())
    }

    async fn open_with(self: &Arc<Self>, answered: bool) -> Result<Link> {
        let Some(_) = self.multiplexing() else {
            return Ok(Link::Bytes(self.dialer.dial(&self.plain).await?.stream));
        };
        // One retry: a session that died since its last use is replaced once.
        for attempt in 0..2 {
            let live = {
                let mut slot = self.slot.lock().await;
                let current = self.dialer.identity().caller.serial;
                match slot.live.clone().filter(|l| l.serial == current) {
                    Some(l) => l,
                    // None open, or open under a certificate since renewed or replaced
                    // (its open streams finish on it).
                    None => match self.connect(&mut slot).await? {
                        Opened::Session(l) => l,
                        Opened::Plain(stream) => return Ok(Link::Bytes(stream)),
                    },
                }
            };
            let Some(place) = live.place_settled().await else { return self.overflow(answered).await };
            match self.stream_on(&live, place, answered).await {
                Ok(Some(s)) => return Ok(s),
                Ok(None) => return self.overflow(answered).await,
                // A refusal is the proxy's answer (a status, or the access-denied
                // alert of a session refused at its handshake); another session
                // would get the same.
                Err(f) if attempt == 0 && f.status.is_none() && !matches!(f.error, Error::AccessDenied { .. }) => {
                    debug!(error = %f.error, "the session is gone; opening a new one");
                    self.forget(live.generation).await;
                }
                Err(f) => return Err(f.error),
            }
        }
        Err(Error::config("the multiplexed session could not be re-opened"))
    }

    /// A stream on `live` in `place`, or `None` when h2 cannot take one now: a
    /// session at the proxy's `mux.max_streams_per_session` does not make the
    /// connection wait for a slot ([`Session::overflow`] finds it another way: a
    /// burst of long-lived connections is never stalled).
    async fn stream_on(&self, live: &Live, place: mux::StreamSlot, answered: bool) -> Result<Option<Link>, Failed> {
        let mut send = match live.send.clone().ready().now_or_never() {
            Some(r) => r.map_err(|e| Failed::new(self.lost(&e, &live.tap)))?,
            None => return Ok(None),
        };
        let req = mux::connect_request(&self.plain.sni).map_err(|e| Failed::new(Error::config(e)))?;
        let (answer, stream) = send.send_request(req, false).map_err(|e| Failed::new(self.lost(&e, &live.tap)))?;
        let mut stream = H2Stream::client(stream, answer);
        if answered {
            match tokio::time::timeout(ANSWER_TIMEOUT, stream.answered()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(match mux::StreamRefused::of(&e) {
                        Some(r) => Failed { error: Error::Refused(r.sentence.clone()), status: Some(r.status) },
                        // The proxy refused the session's certificate at the handshake.
                        None if live.tap.alert() == Some(rustls::AlertDescription::AccessDenied) => {
                            Failed::new(Error::AccessDenied { proxy: self.dialer.context().proxy.to_string() })
                        }
                        None => Failed::new(Error::Tunnel {
                            what: self.res.to_string(),
                            proxy: self.dialer.context().proxy.to_string(),
                            reason: format!("the multiplexed session ended: {}", live.tap.explain(e)),
                        }),
                    });
                }
                Err(_) => {
                    return Err(Failed::new(Error::Tunnel {
                        what: self.res.to_string(),
                        proxy: self.dialer.context().proxy.to_string(),
                        reason: format!("the proxy did not answer a stream open within {}s", ANSWER_TIMEOUT.as_secs()),
                    }))
                }
            }
        }
        Ok(Some(Link::Chunks(Box::new(mux::Tapped::stream(stream, live.tap.clone(), place)))))
    }

    /// A connection for which the kept-warm session has no room: a stream on an
    /// extra session with room; else, while one is being dialled, a wait for it (up
    /// to [`EXTRA_WAIT`]); else a new one (up to [`MAX_SESSIONS`]); else a routing
    /// connection of its own. Places are taken under the slot, but no extra dial
    /// runs under it, so connections that find room on an open session never wait
    /// for one. (The kept-warm session's own re-dial does hold the slot: while it
    /// runs, new connections wait for it, bounded by the dial's timeouts.)
    async fn overflow(self: &Arc<Self>, answered: bool) -> Result<Link> {
        enum Next<'a> {
            Use(Live, mux::StreamSlot),
            Wait(Pin<Box<tokio::sync::futures::Notified<'a>>>),
            Dial(Dialling<'a>),
            Own,
        }
        // Bounded: each turn places the stream, waits for one dial, or leaves.
        for _ in 0..=MAX_SESSIONS {
            let next = {
                let slot = self.slot.lock().await;
                let serial = self.dialer.identity().caller.serial;
                let found =
                    slot.extra.iter().filter(|l| l.serial == serial).find_map(|l| l.place().map(|p| (l.clone(), p)));
                match found {
                    Some((l, p)) => Next::Use(l, p),
                    None => {
                        // Registered before the flag is read, so a dial that ends in
                        // between still wakes it.
                        let mut woken = Box::pin(self.dialled.notified());
                        woken.as_mut().enable();
                        let may_open = slot.extra.len() + 1 < MAX_SESSIONS
                            && slot.extra_blocked_until.is_none_or(|t| tokio::time::Instant::now() >= t);
                        if self.dialling.load(Ordering::Acquire) {
                            Next::Wait(woken)
                        } else if may_open
                            && self.dialling.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
                        {
                            Next::Dial(Dialling(self))
                        } else {
                            Next::Own
                        }
                    }
                }
            };
            match next {
                Next::Use(live, place) => match self.stream_on(&live, place, answered).await {
                    Ok(Some(s)) => return Ok(s),
                    Ok(None) => {}
                    Err(f) if f.status.is_some() => return Err(f.error),
                    Err(f) => {
                        debug!(error = %f.error, "an extra session failed");
                        self.forget(live.generation).await;
                    }
                },
                Next::Wait(woken) => {
                    if tokio::time::timeout(EXTRA_WAIT, woken).await.is_err() {
                        debug!("the extra session being dialled is slow; this connection dials its own");
                        break;
                    }
                }
                Next::Dial(dialling) => return self.open_extra(dialling).await,
                Next::Own => break,
            }
        }
        debug!("every multiplexed session is at its stream limit; this connection dials its own");
        Ok(Link::Bytes(self.dialer.dial(&self.plain).await?.stream))
    }

    /// Dials an extra session (while `dialling` is held) and opens this
    /// connection's stream on it, waiting for the proxy's answer: only a session
    /// whose first stream was accepted takes others, so a proxy refusing more
    /// sessions costs this connection nothing, and the others place their streams
    /// against the limit the proxy's SETTINGS gave.
    async fn open_extra(self: &Arc<Self>, dialling: Dialling<'_>) -> Result<Link> {
        let dialled = match self.dial_session().await {
            Ok(Dial::Session(d)) => d,
            Ok(Dial::Plain(stream)) => return Ok(Link::Bytes(stream)),
            Err(e) => {
                let wait = self.extra_failed().await;
                debug!(error = %e, retry_in_s = wait.as_secs(), "could not open an extra session; this connection dials its own");
                drop(dialling);
                return Ok(Link::Bytes(self.dialer.dial(&self.plain).await?.stream));
            }
        };
        let live = self.install(&mut *self.slot.lock().await, dialled, true);
        let outcome = match live.place() {
            Some(place) => self.stream_on(&live, place, true).await,
            None => Ok(None),
        };
        match outcome {
            Ok(Some(s)) => {
                live.settled.set(); // its first stream was answered, after its SETTINGS
                let mut slot = self.slot.lock().await;
                slot.extra_failures = 0;
                debug!(sessions = slot.extra.len() + 2, "every session was at its stream limit: an extra one is open");
                if !live.ended.load(Ordering::Acquire) {
                    slot.extra.push(live);
                }
                return Ok(s);
            }
            // The proxy's limit of sessions per user.
            Err(f) if f.status == Some(503) => {
                debug!(reason = %f.error, "the proxy refused an extra session; connections beyond the sessions' limit dial their own for a while");
                self.slot.lock().await.extra_blocked_until = Some(tokio::time::Instant::now() + EXTRA_RETRY);
            }
            // Any other refusal (expiry, access) is the proxy's answer to this
            // connection; the next extra dial waits its back-off (it would meet the
            // same answer).
            Err(f) if f.status.is_some() => {
                self.extra_failed().await;
                return Err(f.error);
            }
            Err(Failed { error, .. }) => {
                let wait = self.extra_failed().await;
                debug!(%error, retry_in_s = wait.as_secs(), "a new extra session failed; this connection dials its own");
            }
            Ok(None) => {
                self.extra_failed().await;
            }
        }
        drop(live); // its connection ends with its last handle
        drop(dialling);
        Ok(Link::Bytes(self.dialer.dial(&self.plain).await?.stream))
    }

    /// Backs extra dials off after a failure: from 1 s, doubling, up to
    /// [`EXTRA_RETRY`]. The wait.
    async fn extra_failed(&self) -> Duration {
        let mut slot = self.slot.lock().await;
        slot.extra_failures = slot.extra_failures.saturating_add(1);
        let wait = Duration::from_secs(1 << (slot.extra_failures - 1).min(5)).min(EXTRA_RETRY);
        slot.extra_blocked_until = Some(tokio::time::Instant::now() + wait);
        wait
    }

    fn lost(&self, e: &h2::Error, tap: &mux::AlertTap) -> Error {
        if tap.alert() == Some(rustls::AlertDescription::AccessDenied) {
            return Error::AccessDenied { proxy: self.dialer.context().proxy.to_string() };
        }
        Error::Tunnel {
            what: self.res.to_string(),
            proxy: self.dialer.context().proxy.to_string(),
            reason: if e.is_go_away() && e.reason() == Some(h2::Reason::NO_ERROR) {
                "the proxy closed the multiplexed session (it is shutting down or restarting)".into()
            } else {
                format!("the multiplexed session ended: {e}")
            },
        }
    }

    async fn forget(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot.live.as_ref().is_some_and(|l| l.generation == generation) {
            slot.live = None;
        }
        slot.extra.retain(|l| l.generation != generation);
    }

    /// Dials the kept-warm session (the caller holds the slot, so only one dial runs).
    async fn connect(self: &Arc<Self>, slot: &mut Slot) -> Result<Opened> {
        Ok(match self.dial_session().await? {
            Dial::Session(d) => Opened::Session(self.install(slot, d, false)),
            Dial::Plain(stream) => Opened::Plain(stream),
        })
    }

    /// Dials a routing connection offering `-mux` and starts HTTP/2 on it, or
    /// returns the connection itself when the proxy chose a per-connection protocol.
    async fn dial_session(&self) -> Result<Dial> {
        let Some(target) = self.multiplexing() else {
            return Ok(Dial::Plain(self.dialer.dial(&self.plain).await?.stream));
        };
        let identity = self.dialer.identity();
        let dialed = self.dialer.dial(target).await?;
        let alpn = match dialed.alpn {
            Some(a) if a.mux => a,
            other => {
                self.set_mode(Mode::PerConnection(other));
                return Ok(Dial::Plain(dialed.stream));
            }
        };
        // TLS 1.3 finishes the client's side before the proxy judges the certificate:
        // a refusal arrives as an `access_denied` alert on the first read, which the
        // tap keeps for the streams to report.
        let tap = mux::AlertTap::default();
        let transport = mux::Tapped::transport(mux::Paced::new(dialed.stream), tap.clone());
        let (send, conn) = mux::client_builder().handshake::<_, Bytes>(transport).await.map_err(|e| Error::Tunnel {
            what: self.res.to_string(),
            proxy: self.dialer.context().proxy.to_string(),
            reason: format!("the HTTP/2 session did not start: {e}"),
        })?;
        Ok(Dial::Session(Box::new(Dialled {
            send,
            conn,
            tap,
            alpn,
            serial: identity.caller.serial.clone(),
            expires: expiry(&identity),
        })))
    }

    /// Gives `d` a generation and the task that drives it (pings, expiry, and for an
    /// `extra` session the idle close); the kept-warm session goes into the slot at
    /// once, an extra one only once its first stream is accepted.
    fn install(self: &Arc<Self>, slot: &mut Slot, d: Box<Dialled>, extra: bool) -> Live {
        let d = *d;
        slot.generation += 1;
        let live = Live {
            send: d.send,
            generation: slot.generation,
            tap: d.tap,
            serial: d.serial,
            streams: Arc::default(),
            settled: Arc::default(),
            ended: Arc::default(),
        };
        if !extra {
            slot.live = Some(live.clone());
        }
        self.set_mode(Mode::Multiplexed(d.alpn));
        let mut conn = d.conn;
        let pings = conn.ping_pong();
        let weak = Arc::downgrade(self);
        let generation = live.generation;
        let expires = d.expires;
        let streams = live.streams.clone();
        let settled = live.settled.clone();
        let ended = live.ended.clone();
        let tap = live.tap.clone();
        let idle_for = Duration::from_millis(self.extra_idle_ms.load(Ordering::Relaxed));
        tokio::spawn(async move {
            // The first ping answered settles the session (its SETTINGS applied).
            let keepalive = async {
                match pings {
                    Some(mut p) => {
                        if let Err(why) = mux::settle(&mut p, PING_TIMEOUT).await {
                            return why;
                        }
                        settled.set();
                        mux::keepalive(p, PING_INTERVAL, PING_TIMEOUT).await
                    }
                    None => {
                        settled.set();
                        std::future::pending().await
                    }
                }
            };
            // An extra session lasts while streams use it: closed `idle_for` after
            // its last stream ended (seen at a sixth of that).
            let idle = async {
                if !extra {
                    return std::future::pending().await;
                }
                let every = (idle_for / 6).max(Duration::from_millis(10));
                let mut seen = streams.opened();
                let mut since = tokio::time::Instant::now();
                loop {
                    tokio::time::sleep(every).await;
                    let opened = streams.opened();
                    if opened != seen || streams.open() > 0 {
                        (seen, since) = (opened, tokio::time::Instant::now());
                    } else if since.elapsed() >= idle_for && streams.close_if_idle() {
                        return;
                    }
                }
            };
            let until_expiry = expires.duration_since(SystemTime::now()).unwrap_or_default();
            let why = tokio::select! {
                r = &mut conn => r.err().map(|e| e.to_string()).unwrap_or_else(|| "closed".into()),
                why = keepalive => why,
                () = idle => format!("an extra session without streams for {} ms", idle_for.as_millis()),
                _ = tokio::time::sleep(until_expiry) => {
                    // No new streams; the open ones finish on the connection.
                    if let Some(s) = weak.upgrade() {
                        s.forget(generation).await;
                    }
                    let r = conn.await;
                    r.err().map(|e| e.to_string()).unwrap_or_else(|| "the identity expired".into())
                }
            };
            debug!(reason = %why, extra, "multiplexed session ended");
            let was_settled = settled.is();
            // Connections waiting for its SETTINGS look again (and find it gone), and
            // an extra one being installed is not.
            ended.store(true, Ordering::Release);
            settled.set();
            let Some(s) = weak.upgrade() else { return };
            if extra {
                return s.forget(generation).await;
            }
            if tap.alert() == Some(rustls::AlertDescription::AccessDenied) {
                // The proxy refused this caller: re-dialling in the background would
                // only repeat the refusal (a full handshake and a line in the
                // proxy's log each time, for as long as the local proxy runs).
                // Each new local connection dials again and reports it.
                s.forget(generation).await;
                return debug!("the proxy refused the session (access denied); not re-opened in the background");
            }
            let unsettled = if was_settled {
                s.unsettled_ends.store(0, Ordering::Relaxed);
                0
            } else {
                s.unsettled_ends.fetch_add(1, Ordering::Relaxed).saturating_add(1)
            };
            drop(s);
            reopen(weak, generation, reopen_delay(unsettled)).await;
        });
        live
    }
}

/// A session dialled, not yet installed.
struct Dialled {
    send: h2::client::SendRequest<Bytes>,
    conn: h2::client::Connection<mux::Tapped<mux::Paced<BoxIo>>, Bytes>,
    tap: mux::AlertTap,
    alpn: Alpn,
    serial: String,
    expires: SystemTime,
}

enum Dial {
    Session(Box<Dialled>),
    Plain(BoxIo),
}

/// Why a stream was not opened, and the proxy's status when it refused it.
struct Failed {
    error: Error,
    status: Option<u16>,
}

impl Failed {
    fn new(error: Error) -> Failed {
        Failed { error, status: None }
    }
}

/// Held while an extra session is dialled; when dropped (the dial ended, or the
/// connection that dialled went away) the connections waiting for it look again.
struct Dialling<'a>(&'a Session);

impl Drop for Dialling<'_> {
    fn drop(&mut self) {
        self.0.dialling.store(false, Ordering::Release);
        self.0.dialled.notify_waiters();
    }
}

enum Opened {
    Session(Live),
    Plain(BoxIo),
}

/// The first re-open's delay after `unsettled` kept-warm sessions in a row ended
/// before they were settled: at once after a session that worked, then from
/// 200 ms doubling up to [`MAX_REOPEN_BACKOFF`]. Without it, a connection the
/// proxy (or a load balancer) takes and drops at once was re-dialled in a loop.
fn reopen_delay(unsettled: u32) -> Duration {
    match unsettled {
        0 => Duration::ZERO,
        n => Duration::from_millis(200).saturating_mul(1 << (n - 1).min(8)).min(MAX_REOPEN_BACKOFF),
    }
}

/// After session `generation` ended: forget it and, after `delay`, open a new one
/// in the background, with backoff, while the proxy runs and the identity is valid.
fn reopen(
    weak: Weak<Session>,
    generation: u64,
    delay: Duration,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    // Boxed: `connect` spawns the task that calls this, so the future type is recursive.
    Box::pin(reopen_loop(weak, generation, delay))
}

async fn reopen_loop(weak: Weak<Session>, generation: u64, delay: Duration) {
    if let Some(s) = weak.upgrade() {
        s.forget(generation).await;
    }
    tokio::time::sleep(delay).await;
    let mut backoff = delay.max(Duration::from_millis(200));
    loop {
        let Some(s) = weak.upgrade() else { return };
        s.forget(generation).await;
        if s.multiplexing().is_none() {
            return;
        }
        {
            let mut slot = s.slot.lock().await;
            if slot.live.is_some() {
                return; // a connection already opened a new one
            }
            match s.connect(&mut slot).await {
                Ok(_) => return,
                Err(e) => debug!(error = %e, backoff_ms = backoff.as_millis() as u64, "re-opening the session failed"),
            }
        }
        drop(s);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_REOPEN_BACKOFF);
    }
}

/// When `id` stops being valid: the first instant [`crate::identity::Caller::expired_at`]
/// says so (it counts whole seconds, as the proxy's checks do), so that the session
/// is given up exactly when connections start being told of the expiry.
fn expiry(id: &crate::identity::Identity) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(id.caller.not_after).unwrap_or(0).saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_waits_longer_after_each_session_that_never_settled() {
        let ms = |n| reopen_delay(n).as_millis();
        assert_eq!([ms(0), ms(1), ms(2), ms(3), ms(8), ms(9)], [0, 200, 400, 800, 25_600, 30_000]);
        assert_eq!(reopen_delay(u32::MAX), MAX_REOPEN_BACKOFF);
    }

    #[test]
    fn modes_say_what_they_are() {
        let m = Alpn::parse(b"teleport-tcp-mux").unwrap();
        assert_eq!(Mode::Multiplexed(m).to_string(), "multiplexed session (teleport-tcp-mux)");
        let p = Alpn::parse(b"teleport-tcp-ping");
        assert_eq!(
            Mode::PerConnection(p).to_string(),
            "one routing connection per local connection (teleport-tcp-ping)"
        );
        assert!(Protocol::Tcp.has_mux());
    }
}
