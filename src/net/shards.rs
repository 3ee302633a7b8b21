//! Connection shards: a few single-threaded runtimes, each on a thread of its own,
//! that a listener spreads its accepted connections over ([`Shards::place`]). A
//! connection then lives on one thread from accept to close: its TLS session, its
//! relay and the sockets' readiness events are all handled there, so bulk traffic
//! does not wake the other threads (a work-stealing runtime woke an idle worker for
//! most readiness events, and the context switches cost more than the crypto; see
//! docs/benchmarks.md). A new connection goes to the shard with the fewest open.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long a stopping shard waits for its blocking work (a session recording's
/// file writer finishing its file) before the thread ends without it.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// One shard: its runtime's handle and its count of open connections.
#[derive(Debug)]
struct Shard {
    handle: Handle,
    open: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The shards of one listener; dropping it stops their threads (what still runs on
/// them is dropped).
#[derive(Debug)]
pub struct Shards {
    shards: Vec<Shard>,
}

/// Where a connection was placed: the shard's runtime and the count it holds a
/// place in until the connection's future is dropped.
#[derive(Debug)]
pub struct Placed {
    /// The shard's runtime: spawn the connection here.
    pub handle: Handle,
    /// Holds the connection's place in the shard's count.
    pub seat: Seat,
}

/// A place in a shard's count of open connections, given back on drop.
#[derive(Debug)]
pub struct Seat(Arc<AtomicUsize>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The shard count used when none is configured: one per available core.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl Shards {
    /// Starts `count` (at least 1) shards, their threads named `{name}-{i}`.
    ///
    /// # Errors
    /// When a runtime or a thread cannot be made (out of memory or threads).
    pub fn start(count: usize, name: &str) -> io::Result<Shards> {
        let mut shards = Vec::with_capacity(count.max(1));
        for i in 0..count.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = rt.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                // Runs the shard's tasks until told to stop (or the books are
                // dropped); the runtime's drop then drops what is left on it.
                rt.block_on(async {
                    let _ = stopped.await;
                });
                // Blocking work still running (a recording's file writer) gets
                // time to finish; the thread does not wait on it forever.
                rt.shutdown_timeout(SHUTDOWN_WAIT);
            })?;
            shards.push(Shard { handle, open: Arc::new(AtomicUsize::new(0)), stop: Some(stop), thread: Some(thread) });
        }
        Ok(Shards { shards })
    }

    /// How many shards there are.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether there are none (never: [`Shards::start`] makes at least one).
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The shard with the fewest open connections, and a place in its count.
    fn pick(&self) -> Placed {
        let shard = self
            .shards
            .iter()
            .min_by_key(|s| s.open.load(Ordering::Relaxed))
            .unwrap_or_else(|| unreachable!("Shards::start makes at least one"));
        shard.open.fetch_add(1, Ordering::Relaxed);
        Placed { handle: shard.handle.clone(), seat: Seat(shard.open.clone()) }
    }

    /// Moves an accepted socket to the least busy shard: it is registered with
    /// that shard's reactor, so its readiness events wake that shard's thread only.
    /// Spawn the connection's future on the returned handle, holding the seat.
    ///
    /// # Errors
    /// When the socket cannot be moved (it is closed then).
    pub fn place(&self, tcp: TcpStream) -> io::Result<(TcpStream, Placed)> {
        let placed = self.pick();
        let std = tcp.into_std()?;
        let _in_shard = placed.handle.enter();
        let tcp = TcpStream::from_std(std)?;
        Ok((tcp, placed))
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        for s in &mut self.shards {
            if let Some(stop) = s.stop.take() {
                let _ = stop.send(());
            }
        }
        for s in &mut self.shards {
            if let Some(t) = s.thread.take() {
                // The thread only drops its runtime now; joining keeps a
                // stopped server from leaving threads behind (never from the
                // thread itself, which would wait for ever).
                if t.thread().id() != std::thread::current().id() {
                    let _ = t.join();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections go to the shard with the fewest open, and a seat given back
    /// makes room again.
    #[test]
    fn the_least_busy_shard_takes_the_next_connection() {
        let shards = Shards::start(2, "test-shard").unwrap();
        let a = shards.pick();
        let b = shards.pick();
        assert_eq!(shards.shards[0].open.load(Ordering::Relaxed), 1);
        assert_eq!(shards.shards[1].open.load(Ordering::Relaxed), 1);
        drop(b);
        let c = shards.pick();
        assert_eq!(shards.shards[1].open.load(Ordering::Relaxed), 1, "the freed shard is picked");
        drop((a, c));
        assert!(shards.shards.iter().all(|s| s.open.load(Ordering::Relaxed) == 0));
    }

    /// A placed socket works on its shard's thread, and the shard threads stop
    /// when the books are dropped.
    #[test]
    fn a_placed_socket_is_served_on_its_shard() {
        let main = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        main.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let shards = Shards::start(2, "test-shard").unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let client = tokio::spawn(async move {
                let mut c = TcpStream::connect(addr).await.unwrap();
                c.write_all(b"ping").await.unwrap();
                let mut got = [0u8; 4];
                c.read_exact(&mut got).await.unwrap();
                got
            });
            let (tcp, _) = listener.accept().await.unwrap();
            let (mut tcp, placed) = shards.place(tcp).unwrap();
            let served = placed.handle.spawn(async move {
                let _seat = placed.seat;
                let mut buf = [0u8; 4];
                tcp.read_exact(&mut buf).await.unwrap();
                tcp.write_all(b"pong").await.unwrap();
                std::thread::current().name().map(str::to_string)
            });
            let thread = served.await.unwrap().unwrap();
            assert!(thread.starts_with("test-shard-"), "served on {thread}");
            assert_eq!(&client.await.unwrap(), b"pong");
            drop(shards);
        });
    }
}
