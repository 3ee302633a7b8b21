//! Free loopback ports for programs that must be told one, never handed out twice in
//! one process. Standalone (std and tokio) so the benchmark includes this very file.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Ports handed out in this process (by [`free_port`] and [`loopback_listener`]):
/// never again, even after the program told one has exited, since the kernel may
/// offer it to the next `bind(127.0.0.1:0)`.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Tries before giving up: collisions are rare, 200 in a row means something is wrong.
const TRIES: usize = 200;

fn remember(port: u16) -> bool {
    HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(port)
}

/// A free loopback port: bind 127.0.0.1:0, read, close, remember; a port handed out
/// before in this process is never handed out again.
///
/// # Errors
/// When no socket can be bound, or every try returned a port already handed out.
pub fn try_free_port() -> std::io::Result<u16> {
    for _ in 0..TRIES {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if remember(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other(format!("{TRIES} tries at a free loopback port all returned ports already handed out")))
}

/// [`try_free_port`], panicking on failure (for tests).
pub fn free_port() -> u16 {
    try_free_port().unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A listener on 127.0.0.1 for in-process servers, on a port not handed out before
/// (that port may be about to be bound by the program it was told to).
pub async fn loopback_listener() -> tokio::net::TcpListener {
    for _ in 0..TRIES {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
        if remember(l.local_addr().unwrap().port()) {
            return l;
        }
    }
    panic!("{TRIES} tries at a loopback listener all returned ports already handed out");
}
