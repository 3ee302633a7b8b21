//! The books of a listener's tasks: every task a connection starts (the connection
//! itself, an upgraded kube stream, a pooled upstream connection) is spawned here,
//! so drain waits for it and force-close ends it. A connection's limits travel with
//! it: a task spawned from inside a connection with [`Tasks::spawn`] holds that
//! connection's permit (so `max_connections` still counts it after the connection
//! task itself has handed its stream over) and what [`hold`] attached to the
//! connection (its audit record); the connection's place in the per-source count of
//! unauthenticated connections is given back by [`authenticated`].

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::net::shards::{Placed, Seat};
use tracing::{debug, info, warn, Instrument};

/// What lives as long as a connection and every task spawned from it: its permit,
/// and what [`hold`] put there.
struct Anchor {
    _permit: Option<OwnedSemaphorePermit>,
    /// The connection's place in its shard's count: an upgraded stream that goes on
    /// in a spawned task still counts against the thread it runs on.
    _seat: Option<Seat>,
    held: Mutex<Vec<Box<dyn Send + Sync>>>,
}

/// What a connection's tasks see.
pub(crate) struct ConnScope {
    anchor: Option<Arc<Anchor>>,
    unauth: Mutex<Option<Box<dyn Send + Sync>>>,
}

tokio::task_local! {
    static CONN: ConnScope;
}

/// Marks the current connection as authenticated: its slot in the per-source count
/// of unauthenticated connections is given back. Outside a connection, does nothing.
pub fn authenticated() {
    let _ = CONN.try_with(|c| c.unauth.lock().unwrap_or_else(|p| p.into_inner()).take());
}

/// Gives the current connection a place in its source's count of unauthenticated
/// connections (held until [`authenticated`] or the end).
pub(crate) fn unauthenticated(slot: Box<dyn Send + Sync>) {
    let _ = CONN.try_with(|c| *c.unauth.lock().unwrap_or_else(|p| p.into_inner()) = Some(slot));
}

/// Keeps `value` until the current connection and every task spawned from it with
/// [`Tasks::spawn`] have ended (an audit record that must outlive an upgrade), then
/// drops it. Outside a connection, `value` is dropped at once.
pub fn hold(value: impl Send + Sync + 'static) {
    let _ = CONN.try_with(|c| {
        if let Some(a) = &c.anchor {
            a.held.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(value));
        }
    });
}

fn current_anchor() -> Option<Arc<Anchor>> {
    CONN.try_with(|c| c.anchor.clone()).ok().flatten()
}

/// The tracker, the stop signal (drain: stop accepting, close HTTP keep-alive
/// connections gracefully) and the force signal (grace over: end everything).
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    stop: CancellationToken,
    force: CancellationToken,
    quiet: bool,
}

impl Tasks {
    /// Empty books.
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Books whose drain logs nothing at INFO: the caller tells the user itself
    /// (a local proxy, which says how long it waits), or nobody needs to know (the
    /// proxy of `db connect` after its client exited).
    pub fn quiet() -> Tasks {
        Tasks { quiet: true, ..Tasks::default() }
    }

    /// Ends every task now, without waiting for the grace period (a second Ctrl-C).
    pub fn force_close(&self) {
        self.force.cancel();
    }

    /// Cancelled when draining starts: HTTP servers close keep-alive connections
    /// gracefully, pools stop keeping idle connections.
    pub fn stopping(&self) -> &CancellationToken {
        &self.stop
    }

    /// Tasks still running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    /// Whether no task runs.
    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Spawns `fut` as part of the current connection: it holds the connection's
    /// permit until it ends, drain waits for it, force-close ends it.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let anchor = current_anchor();
        self.spawn_inner(CONN.scope(ConnScope { anchor, unauth: Mutex::new(None) }, fut));
    }

    /// Spawns `fut` outside any connection (a pooled upstream connection shared by
    /// many): tracked and force-closed, but holding no connection's permit.
    pub fn spawn_shared<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_inner(CONN.scope(ConnScope { anchor: None, unauth: Mutex::new(None) }, fut));
    }

    /// Spawns a connection's task with its permit and unauthenticated-source slot.
    /// On `placed`, the connection runs on that shard, and it and every task it
    /// spawns hold its seat there; else it runs on the current runtime.
    pub(crate) fn spawn_connection<F>(
        &self,
        placed: Option<Placed>,
        permit: Option<OwnedSemaphorePermit>,
        unauth: Option<Box<dyn Send + Sync>>,
        fut: F,
    ) where
        F: Future<Output = ()> + Send + 'static,
    {
        let (handle, seat) = match placed {
            Some(Placed { handle, seat }) => (Some(handle), Some(seat)),
            None => (None, None),
        };
        let anchor = Arc::new(Anchor { _permit: permit, _seat: seat, held: Mutex::new(Vec::new()) });
        let scope = ConnScope { anchor: Some(anchor), unauth: Mutex::new(unauth) };
        match handle {
            Some(handle) => {
                let fut = self.guarded(CONN.scope(scope, fut));
                self.tracker.spawn_on(fut, &handle);
            }
            None => self.spawn_inner(CONN.scope(scope, fut)),
        }
    }

    fn spawn_inner<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(self.guarded(fut));
    }

    /// `fut`, ended by force-close, in the current span.
    fn guarded<F>(&self, fut: F) -> impl Future<Output = ()> + Send + 'static
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let force = self.force.clone();
        async move {
            tokio::select! {
                _ = fut => {}
                _ = force.cancelled() => tracing::debug!("closed at the end of the shutdown grace period"),
            }
        }
        .in_current_span()
    }

    /// Drains: signals [`Tasks::stopping`], waits up to `grace` for every task, then
    /// force-closes the rest and waits for them to end. `what` names the listener.
    pub async fn drain(&self, grace: Duration, what: &str) {
        self.stop.cancel();
        self.tracker.close();
        if !self.tracker.is_empty() {
            if self.quiet {
                debug!(open = self.tracker.len(), grace_secs = grace.as_secs(), "{what}: draining connections");
            } else {
                info!(open = self.tracker.len(), grace_secs = grace.as_secs(), "{what}: draining connections");
            }
        }
        tokio::select! {
            r = tokio::time::timeout(grace, self.tracker.wait()) => if r.is_err() {
                warn!(open = self.tracker.len(), "{what}: grace period over; closing the remaining connections");
                self.force.cancel();
            },
            _ = self.force.cancelled() => debug!(open = self.tracker.len(), "{what}: closing the remaining connections now"),
        }
        self.tracker.wait().await;
    }
}

/// A hyper executor that spawns into [`Tasks`] (HTTP/2 runs each stream in its own
/// task): the streams belong to the connection's books like everything else.
#[derive(Debug, Clone)]
pub struct Executor(pub Tasks);

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(async move {
            let _ = fut.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task spawned from inside a connection keeps the connection's permit after
    /// the connection task ends, and drain waits for it.
    #[tokio::test]
    async fn spawned_tasks_hold_the_connection_permit_and_are_drained() {
        let limit = Arc::new(tokio::sync::Semaphore::new(1));
        let tasks = Tasks::new();
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let inner = tasks.clone();
        let permit = limit.clone().try_acquire_owned().unwrap();
        tasks.spawn_connection(None, Some(permit), None, async move {
            inner.spawn(async move {
                let _ = wait.await;
            });
        });
        // The connection task is over; its child still holds the one permit.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(limit.available_permits(), 0, "the upgraded task holds the permit");
        assert_eq!(tasks.len(), 1);
        release.send(()).unwrap();
        tasks.drain(Duration::from_secs(5), "test").await;
        assert!(tasks.is_empty());
        assert_eq!(limit.available_permits(), 1);
    }

    /// A force-close during the grace period ends the drain at once.
    #[tokio::test(start_paused = true)]
    async fn force_close_ends_the_drain_before_the_grace_period() {
        let tasks = Tasks::quiet();
        tasks.spawn_shared(std::future::pending());
        let t = tasks.clone();
        let start = tokio::time::Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            t.force_close();
        });
        tasks.drain(Duration::from_secs(3600), "test").await;
        assert!(tasks.is_empty());
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    /// Force-close ends a task that ignores the stop signal.
    #[tokio::test(start_paused = true)]
    async fn grace_over_forces_tasks_closed() {
        let tasks = Tasks::new();
        tasks.spawn_shared(std::future::pending());
        tasks.drain(Duration::from_secs(1), "test").await;
        assert!(tasks.is_empty());
    }

    /// What a connection holds lives until its last spawned task ends.
    #[tokio::test]
    async fn held_values_outlive_the_connection_until_its_tasks_end() {
        struct Flag(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = Tasks::new();
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let (inner, d) = (tasks.clone(), dropped.clone());
        tasks.spawn_connection(None, None, None, async move {
            hold(Flag(d));
            inner.spawn(async move {
                let _ = wait.await;
            });
        });
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst), "still held by the spawned task");
        release.send(()).unwrap();
        tasks.drain(Duration::from_secs(5), "test").await;
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn authenticated_gives_the_source_slot_back() {
        struct Slot(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Slot {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let freed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = Tasks::new();
        let (f, seen) = (freed.clone(), Arc::new(std::sync::atomic::AtomicBool::new(false)));
        let s = seen.clone();
        tasks.spawn_connection(None, None, Some(Box::new(Slot(freed.clone()))), async move {
            assert!(!f.load(std::sync::atomic::Ordering::SeqCst));
            authenticated();
            s.store(f.load(std::sync::atomic::Ordering::SeqCst), std::sync::atomic::Ordering::SeqCst);
        });
        tasks.drain(Duration::from_secs(5), "test").await;
        assert!(seen.load(std::sync::atomic::Ordering::SeqCst), "freed while the connection still ran");
    }
}
