//! The kept-warm routing session of a local proxy (docs/protocol.md §13): one
//! TLS-routing connection per resource, through the one dialer (direct or
//! upgraded), offering the `-mux` ALPN first; each new local connection becomes an
//! HTTP/2 stream in it, so after the session is open a connection costs one round
//! trip. The session is opened when the proxy starts ([`Session::warm`]), kept alive
//! with HTTP/2 pings (and the upgrade's own pings behind a load balancer), re-opened
//! in the background when it drops, and no longer used once the identity expires
//! (its open streams finish; new connections then dial and meet the proxy's refusal).
//! When every open session is at the proxy's stream limit, an extra one is opened
//! (up to [`MAX_SESSIONS`]) and closed again once idle ([`EXTRA_IDLE`]).
//!
//! A proxy that does not negotiate `-mux` (an older server, or `mux.enabled:
//! false`) gets today's behaviour: the connection dialled to find out is used as the
//! tunnel, and every later connection dials its own. [`Session::mode`] says which.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::FutureExt;
use tracing::{debug, info};

use crate::client::dial::{Dialer, Target};
use crate::error::{Error, Result};
use crate::net::io::BoxIo;
use crate::net::mux::{self, H2Stream};
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
/// After the proxy refused a stream on a new extra session (its limit of sessions
/// per user), no other is tried for this long.
const EXTRA_RETRY: Duration = Duration::from_secs(30);

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
    /// Streams open on it (against the proxy's SETTINGS_MAX_CONCURRENT_STREAMS).
    open: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Default)]
struct Slot {
    live: Option<Live>,
    /// Extra sessions, opened while the others were full; closed when idle.
    extra: Vec<Live>,
    /// No extra session is tried before then.
    extra_blocked_until: Option<tokio::time::Instant>,
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
            dialer,
        })
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
        match self.connect(&mut slot, false).await {
            Ok(Opened::Session(_)) => {}
            Ok(Opened::Plain(stream)) => drop(stream), // no multiplexing: nothing to keep
            Err(e) => debug!(error = %e, "could not open the session ahead of the first connection"),
        }
    }

    /// A byte stream to the resource for one local connection: a stream on the
    /// session, or a dialled connection when the proxy does not multiplex.
    ///
    /// # Errors
    /// The dial's error.
    pub async fn open(self: &Arc<Self>) -> Result<BoxIo> {
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
        self.open_with(true).await
    }

    async fn open_with(self: &Arc<Self>, answered: bool) -> Result<BoxIo> {
        let Some(_) = self.multiplexing() else {
            return Ok(self.dialer.dial(&self.plain).await?.stream);
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
                    None => match self.connect(&mut slot, false).await? {
                        Opened::Session(l) => l,
                        Opened::Plain(stream) => return Ok(stream),
                    },
                }
            };
            match self.stream_on(&live, answered).await {
                Ok(Some(s)) => return Ok(s),
                Ok(None) => return self.overflow(answered).await,
                // A refusal is the proxy's answer; another session would get the same.
                Err(e) if attempt == 0 && !matches!(e, Error::Refused(_)) => {
                    debug!(error = %e, "the session is gone; opening a new one");
                    self.forget(live.generation).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::config("the multiplexed session could not be re-opened"))
    }

    /// A stream on `live`, or `None` when it has no room now: a session at the
    /// proxy's `mux.max_streams_per_session` does not make the connection wait for a
    /// slot ([`Session::overflow`] finds it another way: a burst of long-lived
    /// connections is never stalled).
    async fn stream_on(&self, live: &Live, answered: bool) -> Result<Option<BoxIo>> {
        let Some(slot) = mux::StreamSlot::take(&live.open, live.send.current_max_send_streams()) else {
            return Ok(None);
        };
        let mut send = match live.send.clone().ready().now_or_never() {
            Some(r) => r.map_err(|e| self.lost(&e, &live.tap))?,
            None => return Ok(None),
        };
        let req = mux::connect_request(&self.plain.sni).map_err(Error::config)?;
        let (answer, stream) = send.send_request(req, false).map_err(|e| self.lost(&e, &live.tap))?;
        let mut stream = H2Stream::client(stream, answer);
        if answered {
            match tokio::time::timeout(ANSWER_TIMEOUT, stream.answered()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(match mux::StreamRefused::of(&e) {
                        Some(r) => Error::Refused(r.sentence.clone()),
                        None => Error::Tunnel {
                            what: self.res.to_string(),
                            proxy: self.dialer.context().proxy.to_string(),
                            reason: format!("the multiplexed session ended: {}", live.tap.explain(e)),
                        },
                    })
                }
                Err(_) => {
                    return Err(Error::Tunnel {
                        what: self.res.to_string(),
                        proxy: self.dialer.context().proxy.to_string(),
                        reason: format!("the proxy did not answer a stream open within {}s", ANSWER_TIMEOUT.as_secs()),
                    })
                }
            }
        }
        Ok(Some(Box::new(mux::Tapped::stream(stream, live.tap.clone(), slot))))
    }

    /// A connection for which the kept-warm session has no room: a stream on an
    /// extra session with room, or on a new one (up to [`MAX_SESSIONS`]; its first
    /// stream waits for the proxy's answer, so that a proxy refusing more sessions
    /// costs this connection nothing), else a routing connection of its own.
    async fn overflow(self: &Arc<Self>, answered: bool) -> Result<BoxIo> {
        let picked = {
            let mut slot = self.slot.lock().await;
            let serial = self.dialer.identity().caller.serial;
            let roomy = slot
                .extra
                .iter()
                .find(|l| {
                    l.serial == serial
                        && l.open.load(std::sync::atomic::Ordering::Acquire) < l.send.current_max_send_streams()
                })
                .cloned();
            let may_open = slot.extra.len() + 1 < MAX_SESSIONS
                && slot.extra_blocked_until.is_none_or(|t| tokio::time::Instant::now() >= t);
            match roomy {
                Some(l) => Some((l, false)),
                None if may_open => match self.connect(&mut slot, true).await {
                    Ok(Opened::Session(l)) => Some((l, true)),
                    Ok(Opened::Plain(stream)) => return Ok(stream),
                    Err(e) => {
                        debug!(error = %e, "could not open an extra session");
                        None
                    }
                },
                None => None,
            }
        };
        if let Some((live, fresh)) = picked {
            match self.stream_on(&live, answered || fresh).await {
                Ok(Some(s)) => return Ok(s),
                Ok(None) => {}
                Err(Error::Refused(why)) if fresh => {
                    debug!(reason = %why, "the proxy refused a stream on an extra session; connections beyond the session's limit dial their own for a while");
                    self.forget(live.generation).await;
                    self.slot.lock().await.extra_blocked_until = Some(tokio::time::Instant::now() + EXTRA_RETRY);
                }
                Err(e @ Error::Refused(_)) => return Err(e),
                Err(e) => {
                    debug!(error = %e, "an extra session failed; this connection dials its own");
                    self.forget(live.generation).await;
                }
            }
        }
        debug!("every multiplexed session is at its stream limit; this connection dials its own");
        Ok(self.dialer.dial(&self.plain).await?.stream)
    }

    /// Closes extra session `generation` if no stream is open on it (checked under
    /// the slot, where streams are placed from). Whether it was.
    async fn retire_if_idle(&self, generation: u64, open: &std::sync::atomic::AtomicUsize) -> bool {
        let mut slot = self.slot.lock().await;
        if open.load(std::sync::atomic::Ordering::Acquire) > 0 {
            return false;
        }
        slot.extra.retain(|l| l.generation != generation);
        true
    }

    fn lost(&self, e: &h2::Error, tap: &mux::AlertTap) -> Error {
        if tap.alert() == Some(rustls::AlertDescription::AccessDenied) {
            return Error::AccessDenied { proxy: self.dialer.context().proxy.to_string() };
        }
        Error::Tunnel {
            what: self.res.to_string(),
            proxy: self.dialer.context().proxy.to_string(),
            reason: format!("the multiplexed session ended: {e}"),
        }
    }

    async fn forget(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot.live.as_ref().is_some_and(|l| l.generation == generation) {
            slot.live = None;
        }
        slot.extra.retain(|l| l.generation != generation);
    }

    /// Dials the session, or an `extra` one (the caller holds the slot, so only one
    /// dial runs).
    async fn connect(self: &Arc<Self>, slot: &mut Slot, extra: bool) -> Result<Opened> {
        let Some(target) = self.multiplexing() else {
            return Ok(Opened::Plain(self.dialer.dial(&self.plain).await?.stream));
        };
        let identity = self.dialer.identity();
        let dialed = self.dialer.dial(target).await?;
        let alpn = match dialed.alpn {
            Some(a) if a.mux => a,
            other => {
                self.set_mode(Mode::PerConnection(other));
                return Ok(Opened::Plain(dialed.stream));
            }
        };
        // TLS 1.3 finishes the client's side before the proxy judges the certificate:
        // a refusal arrives as an `access_denied` alert on the first read, which the
        // tap keeps for the streams to report.
        let tap = mux::AlertTap::default();
        let transport = mux::Tapped::transport(dialed.stream, tap.clone());
        let (send, conn) = mux::client_builder().handshake::<_, Bytes>(transport).await.map_err(|e| Error::Tunnel {
            what: self.res.to_string(),
            proxy: self.dialer.context().proxy.to_string(),
            reason: format!("the HTTP/2 session did not start: {e}"),
        })?;
        slot.generation += 1;
        let live = Live {
            send,
            generation: slot.generation,
            tap,
            serial: identity.caller.serial.clone(),
            open: Arc::default(),
        };
        if extra {
            debug!(sessions = slot.extra.len() + 2, "every session is at its stream limit: an extra one is open");
            slot.extra.push(live.clone());
        } else {
            slot.live = Some(live.clone());
        }
        self.set_mode(Mode::Multiplexed(alpn));
        let mut conn = conn;
        let pings = conn.ping_pong();
        let weak = Arc::downgrade(self);
        let generation = live.generation;
        let expires = expiry(&identity);
        let open = live.open.clone();
        tokio::spawn(async move {
            let keepalive = async {
                match pings {
                    Some(p) => mux::keepalive(p, PING_INTERVAL, PING_TIMEOUT).await,
                    None => std::future::pending().await,
                }
            };
            // An extra session lasts while streams use it.
            let idle = async {
                if !extra {
                    return std::future::pending().await;
                }
                loop {
                    tokio::time::sleep(EXTRA_IDLE).await;
                    match weak.upgrade() {
                        Some(s) if !s.retire_if_idle(generation, &open).await => {}
                        _ => return,
                    }
                }
            };
            let until_expiry = expires.duration_since(SystemTime::now()).unwrap_or_default();
            let why = tokio::select! {
                r = &mut conn => r.err().map(|e| e.to_string()).unwrap_or_else(|| "closed".into()),
                why = keepalive => why,
                () = idle => format!("an extra session without streams for {}s", EXTRA_IDLE.as_secs()),
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
            if !extra {
                reopen(weak, generation).await;
            } else if let Some(s) = weak.upgrade() {
                s.forget(generation).await;
            }
        });
        Ok(Opened::Session(live))
    }
}

enum Opened {
    Session(Live),
    Plain(BoxIo),
}

/// After session `generation` ended: forget it and open a new one in the
/// background, with backoff, while the proxy runs and the identity is valid.
fn reopen(weak: Weak<Session>, generation: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    // Boxed: `connect` spawns the task that calls this, so the future type is recursive.
    Box::pin(reopen_loop(weak, generation))
}

async fn reopen_loop(weak: Weak<Session>, generation: u64) {
    let mut backoff = Duration::from_millis(200);
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
            match s.connect(&mut slot, false).await {
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
