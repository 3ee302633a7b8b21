//! The one accept loop, for the routing server, the local proxies and the demo.
//! [`bind`] listens with a backlog of [`BACKLOG`] (the kernel caps it at
//! `net.core.somaxconn`), so a burst of connects waits in the kernel instead of
//! being reset. [`serve`] accepts until shutdown while earlier connections run
//! their handshakes in their own tasks; each accepted socket gets `TCP_NODELAY` and
//! TCP keepalive ([`crate::net::connect::tune`]); each connection holds a permit
//! (`max_connections`) and, until it calls [`crate::net::tasks::authenticated`], a
//! place in its source address's count of unauthenticated connections; `EMFILE`
//! and `ENFILE` back off with a warning instead of spinning. On Linux the kernel's
//! count of accept-queue overflows (`ListenOverflows` in `/proc/net/netstat`) is
//! checked every [`OVERFLOW_CHECK`] and at drain, and a rise is logged.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn, Instrument, Span};

use crate::net::shards::Shards;
use crate::net::tasks::Tasks;

/// The listen backlog asked for (the kernel caps it at `net.core.somaxconn`).
pub const BACKLOG: u32 = 4096;

/// How long a connection over its source's cap of unauthenticated connections may
/// wait for a place before it is closed (short against `handshake_timeout`, so
/// silent connections are shed early; long enough for a burst of real handshakes
/// from one client to be served in turn).
pub const SOURCE_WAIT: Duration = Duration::from_secs(2);

/// How often a waiting connection looks for a place.
const SOURCE_POLL: Duration = Duration::from_millis(20);

/// How often the kernel's accept-queue overflow counter is read.
pub const OVERFLOW_CHECK: Duration = Duration::from_secs(10);

/// Binds `addr` with `SO_REUSEADDR` and a backlog of [`BACKLOG`].
///
/// # Errors
/// The socket, bind or listen error.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The limits of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Connections from one source address that have not authenticated yet
    /// (0: no limit). The excess waits up to [`SOURCE_WAIT`] for a place, then is
    /// closed.
    pub max_unauthenticated_per_source: usize,
    /// TCP keepalive on accepted sockets (`None`: off).
    pub keepalive: Option<Duration>,
    /// How long open connections may finish after shutdown.
    pub grace: Duration,
    /// Spread connections over these single-threaded runtimes
    /// ([`crate::net::shards`]); `None`: run them on the caller's runtime.
    pub shards: Option<Arc<Shards>>,
}

/// Accepts on `listener` until `shutdown`, running `handler` for each connection in
/// `tasks`, then drains `tasks` (see [`Tasks::drain`]). `span` makes each
/// connection's span from its number and peer. `what` names the listener in logs.
pub async fn serve<H, F>(
    listener: TcpListener,
    limits: Limits,
    tasks: &Tasks,
    shutdown: CancellationToken,
    what: &str,
    span: impl Fn(u64, SocketAddr) -> Span,
    mut handler: H,
) where
    H: FnMut(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let sources = Sources::new(limits.max_unauthenticated_per_source);
    let overflows = watch_overflows(tasks, what);
    let mut backoff = Backoff::default();
    let mut next_id: u64 = 0;
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => { backoff.reset(); x }
                Err(e) => { backoff.wait(&e, what).await; continue }
            },
        };
        crate::net::connect::tune(&tcp, limits.keepalive);
        next_id += 1;
        // On a shard, the socket is registered with that shard's reactor before
        // the handler sees it, and the connection is spawned there.
        let (tcp, placed) = match &limits.shards {
            Some(shards) => match shards.place(tcp) {
                Ok((tcp, placed)) => (tcp, Some(placed)),
                Err(e) => {
                    warn!(error = %e, peer = %peer, "{what}: cannot hand the connection to a worker thread; closed");
                    continue;
                }
            },
            None => (tcp, None),
        };
        let conn = handler(tcp, peer).instrument(span(next_id, peer));
        match sources.admit(peer.ip()) {
            Some(slot) => {
                let unauth = slot.map(|s| Box::new(s) as Box<dyn Send + Sync>);
                tasks.spawn_connection(placed, Some(permit), unauth, conn);
            }
            None => {
                // Over the cap: wait briefly for a place (a burst of real clients
                // frees places as their handshakes finish), else close.
                let (sources, ip, what) = (sources.clone(), peer.ip(), what.to_string());
                tasks.spawn_connection(placed, Some(permit), None, async move {
                    match sources.wait(ip).await {
                        Some(slot) => {
                            crate::net::tasks::unauthenticated(Box::new(slot));
                            conn.await
                        }
                        None => sources.refused(ip, &what), // dropping `conn` closes the socket
                    }
                });
            }
        }
    }
    drop(listener);
    if let Some(o) = overflows {
        o.lock().unwrap_or_else(|p| p.into_inner()).report(what);
    }
    tasks.drain(limits.grace, what).await;
}

/// Reads the overflow counter every [`OVERFLOW_CHECK`] until draining starts,
/// logging a rise (Linux only: elsewhere, or without `/proc`, nothing runs). Returns
/// the counter for the last look at drain.
fn watch_overflows(tasks: &Tasks, what: &str) -> Option<Arc<Mutex<Overflows>>> {
    let overflows = Arc::new(Mutex::new(Overflows::new()?));
    let (stop, what, o) = (tasks.stopping().clone(), what.to_string(), overflows.clone());
    // Bare spawn: holds no connection or socket and ends when draining starts; kept
    // out of the books so drain's count of open connections stays true.
    tokio::spawn(async move {
        let mut check = tokio::time::interval(OVERFLOW_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = check.tick() => o.lock().unwrap_or_else(|p| p.into_inner()).report(&what),
            }
        }
    });
    Some(overflows)
}

/// Doubling back-off for failed accepts, 5 ms to 1 s.
#[derive(Debug)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(5))
    }
}

impl Backoff {
    fn reset(&mut self) {
        self.0 = Duration::from_millis(5);
    }

    async fn wait(&mut self, e: &std::io::Error, what: &str) {
        if out_of_descriptors(e) {
            warn!(error = %e, backoff_ms = self.0.as_millis() as u64,
                "{what}: out of file descriptors; not accepting for a moment (raise the open-files limit or lower max_connections)");
        } else {
            debug!(error = %e, backoff_ms = self.0.as_millis() as u64, "{what}: accept failed; backing off");
        }
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(1));
    }
}

/// EMFILE (the process's limit) or ENFILE (the system's).
fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(24) | Some(23)) && cfg!(unix)
}

/// Unauthenticated connections per source address.
#[derive(Debug, Clone)]
struct Sources {
    cap: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    last_warning: Arc<Mutex<Option<tokio::time::Instant>>>,
}

/// A connection's place in its source's count; given back on drop.
#[derive(Debug)]
struct SourceSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl Sources {
    fn new(cap: usize) -> Sources {
        Sources { cap, counts: Arc::default(), last_warning: Arc::default() }
    }

    /// `Some(None)`: no cap; `Some(Some(slot))`: admitted; `None`: over the cap.
    fn admit(&self, ip: IpAddr) -> Option<Option<SourceSlot>> {
        if self.cap == 0 {
            return Some(None);
        }
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Some(SourceSlot { ip, counts: self.counts.clone() }))
    }

    /// Waits up to [`SOURCE_WAIT`] for a place of `ip`.
    async fn wait(&self, ip: IpAddr) -> Option<SourceSlot> {
        let end = tokio::time::Instant::now() + SOURCE_WAIT;
        loop {
            if let Some(Some(slot)) = self.admit(ip) {
                return Some(slot);
            }
            if tokio::time::Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(SOURCE_POLL).await;
        }
    }

    /// Logs a refusal, at most once a second at WARN (the rest at DEBUG).
    fn refused(&self, ip: IpAddr, what: &str) {
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        let now = tokio::time::Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            *last = Some(now);
            warn!(source = %ip, cap = self.cap,
                "{what}: too many unauthenticated connections from one address (max_unauthenticated_per_source); closed one that waited {}s", SOURCE_WAIT.as_secs());
        } else {
            debug!(source = %ip, "{what}: over max_unauthenticated_per_source; closed");
        }
    }
}

/// The kernel's accept-queue overflow counter, and its last value.
#[derive(Debug)]
struct Overflows {
    last: u64,
}

impl Overflows {
    fn new() -> Option<Overflows> {
        read_listen_overflows().map(|last| Overflows { last })
    }

    /// Logs a rise of the counter since the last look.
    fn report(&mut self, what: &str) {
        let Some(now) = read_listen_overflows() else { return };
        if now > self.last {
            warn!(
                overflows = now - self.last,
                backlog = BACKLOG,
                "{what}: the kernel's accept queue overflowed (ListenOverflows, counted for the whole host): \
                 connection attempts were dropped; raise net.core.somaxconn, or max_connections if it is the limit"
            );
        }
        self.last = now;
    }
}

/// `ListenOverflows` from `/proc/net/netstat` (Linux; `None` elsewhere).
fn read_listen_overflows() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    parse_listen_overflows(&text)
}

/// Finds `ListenOverflows` in `/proc/net/netstat` text: a `TcpExt:` header line of
/// names followed by a `TcpExt:` line of values (pure).
pub fn parse_listen_overflows(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(names) = line.strip_prefix("TcpExt:") else { continue };
        let values = lines.next()?.strip_prefix("TcpExt:")?;
        let at = names.split_whitespace().position(|n| n == "ListenOverflows")?;
        return values.split_whitespace().nth(at)?.parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_overflows() {
        let text = "TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops\n\
                    TcpExt: 0 3 41 43\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(parse_listen_overflows(text), Some(41));
        assert_eq!(parse_listen_overflows("IpExt: A\nIpExt: 1\n"), None);
        assert_eq!(parse_listen_overflows("TcpExt: ListenOverflows\n"), None);
        assert_eq!(parse_listen_overflows("TcpExt: ListenOverflows\nTcpExt: x\n"), None);
        #[cfg(target_os = "linux")]
        assert!(read_listen_overflows().is_some(), "this kernel's /proc/net/netstat has the counter");
    }

    #[test]
    fn per_source_slots_are_counted_and_given_back() {
        let s = Sources::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let one = s.admit(a).unwrap();
        let two = s.admit(a).unwrap();
        assert!(s.admit(a).is_none(), "third from one source refused");
        assert!(s.admit(b).unwrap().is_some(), "another source is not affected");
        drop(one);
        assert!(s.admit(a).is_some(), "a place given back is usable");
        drop(two);
        assert!(Sources::new(0).admit(a).unwrap().is_none(), "0 means no cap");
    }

    /// Accepted sockets get nodelay and the configured keepalive; the per-source cap
    /// closes the excess at once; drain ends the loop.
    #[tokio::test]
    async fn accepted_sockets_are_tuned_and_capped_per_source() {
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let limits = Limits {
            max_connections: 100,
            max_unauthenticated_per_source: 2,
            keepalive: Some(Duration::from_secs(30)),
            grace: Duration::from_secs(1),
            shards: None,
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            let tasks = Tasks::new();
            serve(
                l,
                limits,
                &tasks,
                stop,
                "test",
                |_, _| Span::none(),
                move |tcp, _| {
                    let sock = socket2::SockRef::from(&tcp);
                    let tuned = (tcp.nodelay().unwrap(), sock.keepalive().unwrap(), sock.tcp_keepalive_time().ok());
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(tuned);
                        let _tcp = tcp;
                        std::future::pending::<()>().await
                    }
                },
            )
            .await
        });
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        for _ in 0..2 {
            let got = rx.recv().await.unwrap();
            assert_eq!(got, (true, true, Some(Duration::from_secs(30))));
        }
        // The third, over the cap of 2 from 127.0.0.1, is closed without a handler.
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(10), clients[2].read(&mut buf)).await.unwrap();
        assert!(matches!(n, Ok(0) | Err(_)), "closed: {n:?}");
        assert!(rx.try_recv().is_err(), "no handler ran for it");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
    }

    /// A connection over the cap waits for a place that a handshake frees.
    #[tokio::test]
    async fn over_the_cap_waits_for_a_freed_place() {
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let limits = Limits {
            max_connections: 10,
            max_unauthenticated_per_source: 1,
            keepalive: None,
            grace: Duration::ZERO,
            shards: None,
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            serve(
                l,
                limits,
                &Tasks::new(),
                stop,
                "test",
                |_, _| Span::none(),
                move |tcp, _| {
                    let tx = tx.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        crate::net::tasks::authenticated(); // its handshake is done
                        let _ = tx.send(());
                        let _tcp = tcp;
                        std::future::pending::<()>().await
                    }
                },
            )
            .await
        });
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("both are served").unwrap();
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
    }

    /// The listener really has the larger backlog: `ss` shows it as Send-Q.
    #[test]
    fn listens_with_the_larger_backlog() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let l = rt.block_on(async { bind("127.0.0.1:0".parse().unwrap()) }).unwrap();
        let port = l.local_addr().unwrap().port();
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(BACKLOG);
        // The harness's rule: a missing program fails unless ONEPORT_TEST_ALLOW_SKIP=1.
        let Ok(out) = std::process::Command::new("ss").args(["-ltnH", &format!("sport = :{port}")]).output() else {
            if std::env::var("ONEPORT_TEST_ALLOW_SKIP").as_deref() != Ok("1") {
                panic!("ss (iproute2) is not installed: scripts/install-deps installs it");
            }
            return eprintln!("SKIPPED: ss is not installed (ONEPORT_TEST_ALLOW_SKIP=1)");
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let send_q: u32 = text.split_whitespace().nth(2).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert_eq!(send_q, BACKLOG.min(somaxconn), "ss said: {text}");
    }
}
