//! The local database proxy's handling of one client connection, around
//! `local::tunnel_on` (which opens a stream on the database's session, or dials,
//! and relays):
//! - Postgres: answer `SSLRequest`/`GSSENCRequest` with `N` (the outer TLS already
//!   carries the identity, so the local hop stays plaintext), read the startup
//!   message or `CancelRequest`, then tunnel it and everything after it. A cancel
//!   on a fresh connection takes the same route, so it reaches the same database.
//! - MySQL/MariaDB: tunnel untouched (the server speaks first); a refusal is told
//!   the way a server would (greeting, the client's response, `ERR`).
//! - MongoDB, Redis: tunnel untouched.
//!
//! Once the identity has expired, new connections are refused the same way, with
//! the sentence saying so and what to do.
//!
//! When the tunnel fails before the database said anything, the client gets the
//! reason in its own protocol (a FATAL `ErrorResponse`, an `ERR` packet), so
//! `psql` and `mysql` print the proxy's sentence instead of "connection closed".

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tracing::{debug, error};

use crate::client::dial::Dialer;
use crate::client::local::{self, Handler};
use crate::client::session::Session;
use crate::client::webapi;
use crate::error::Error;
use crate::net::io::IoStream;
use crate::proto::db::handshake::{prelude, refuse_mysql, PreludeError};
use crate::proto::db::postgres::{self, Startup};
use crate::proto::db::{mysql, DbProtocol};
use crate::proto::naming::{Kind, ResourceRef};
use crate::proto::webapi::Outcome;

/// How long a Postgres client may take to send its startup message.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long telling the client about a refusal may take.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The session of database `name` speaking `protocol`, opened in the background
/// now (docs/protocol.md §13), and the handler for `local::serve` that serves it.
pub fn handler(dialer: Arc<Dialer>, protocol: DbProtocol, name: &str) -> Handler {
    let session = Session::new(dialer, Kind::Db, name, protocol.protocol());
    session.warm_in_background();
    session_handler(session, protocol)
}

/// The handler for `local::serve` that serves the database of `session`.
pub fn session_handler(session: Arc<Session>, protocol: DbProtocol) -> Handler {
    Arc::new(move |tcp| {
        let session = session.clone();
        Box::pin(async move {
            let meter = tcp.meter().clone();
            let result = match protocol {
                DbProtocol::Postgres => serve_postgres(&session, tcp).await,
                DbProtocol::Mysql => serve_mysql(&session, tcp).await,
                DbProtocol::Mongodb | DbProtocol::Redis => {
                    let mut tcp = tcp;
                    local::tunnel_on(&session, &mut tcp).await.map(drop)
                }
            };
            if let Err(e) = result {
                error!("database {}: {e}", session.resource().name);
                meter.error(format!("database {}: {e}", session.resource().name));
            }
        })
    })
}

/// Serves one Postgres client.
async fn serve_postgres<S: IoStream>(session: &Arc<Session>, mut io: S) -> Result<(), Error> {
    let (dialer, res) = (session.dialer(), session.resource());
    let (first, buffered) = match tokio::time::timeout(STARTUP_TIMEOUT, prelude(&mut io)).await {
        Err(_) => {
            debug!("no startup message within {}s; closed", STARTUP_TIMEOUT.as_secs());
            return Ok(());
        }
        Ok(Err(PreludeError::Io(e))) => {
            debug!(error = %e, "client left before its startup message");
            return Ok(());
        }
        Ok(Err(PreludeError::Protocol(e))) => {
            let reply = postgres::error_response(postgres::SQLSTATE_PROTOCOL_VIOLATION, &e);
            write_refusal(&mut io, &reply).await;
            return Err(Error::config(format!("a client sent something that is not PostgreSQL: {e}")));
        }
        Ok(Ok(x)) => x,
    };
    match &first {
        Startup::Cancel { pid } => debug!(pid, "forwarding a cancel request"),
        m => debug!(user = ?m.param("user"), database = ?m.param("database"), "startup message"),
    }
    if let (Startup::Startup { .. }, Some(sentence)) = (&first, local::expired(dialer)) {
        write_refusal(&mut io, &postgres::error_response(postgres::SQLSTATE_DENIED, &sentence)).await;
        return Err(Error::Refused(sentence));
    }
    let mut local = Local::new(buffered, io);
    let Err(err) = local::tunnel_on(session, &mut local).await else { return Ok(()) };
    // A cancel request has no answer; a startup does, if nothing reached the client yet.
    if matches!(first, Startup::Startup { .. }) && !local.wrote {
        // Expired while this connection was set up (the proxy judged it a moment
        // after we did): whatever ended it, that is the reason to give.
        let (code, text) = match local::expired(dialer) {
            Some(sentence) => (postgres::SQLSTATE_DENIED, sentence),
            None => match refusal(dialer, res, &err).await {
                Refusal::Denied => (postgres::SQLSTATE_DENIED, err.to_string()),
                Refusal::Unknown => (postgres::SQLSTATE_UNKNOWN_DB, err.to_string()),
                Refusal::Other => (postgres::SQLSTATE_CONNECTION_FAILURE, path_failure(res, &err)),
            },
        };
        write_refusal(&mut local.inner, &postgres::error_response(code, &text)).await;
    }
    Err(err)
}

/// Serves one MySQL/MariaDB client.
async fn serve_mysql<S: IoStream>(session: &Arc<Session>, io: S) -> Result<(), Error> {
    let (dialer, res) = (session.dialer(), session.resource());
    let mut local = Local::new(Vec::new(), io);
    if let Some(sentence) = local::expired(dialer) {
        let (code, state) = (mysql::ER_ACCESS_DENIED, mysql::SQLSTATE_DENIED);
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, refuse_mysql(&mut local.inner, code, state, &sentence)).await;
        return Err(Error::Refused(sentence));
    }
    let Err(err) = local::tunnel_on(session, &mut local).await else { return Ok(()) };
    // Nothing written yet means the server's greeting never came: refuse in its place.
    if !local.wrote {
        // As for PostgreSQL: expired while this connection was set up.
        let (code, state, text) = match local::expired(dialer) {
            Some(sentence) => (mysql::ER_ACCESS_DENIED, mysql::SQLSTATE_DENIED, sentence),
            None => match refusal(dialer, res, &err).await {
                Refusal::Denied => (mysql::ER_ACCESS_DENIED, mysql::SQLSTATE_DENIED, err.to_string()),
                Refusal::Unknown => (mysql::ER_BAD_DB, mysql::SQLSTATE_BAD_DB, err.to_string()),
                Refusal::Other => (mysql::ER_UNKNOWN, mysql::SQLSTATE_GENERAL, path_failure(res, &err)),
            },
        };
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, refuse_mysql(&mut local.inner, code, state, &text)).await;
    }
    Err(err)
}

/// Why a tunnel failed, as far as the client's error code is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The caller is not in the database's allow-list.
    Denied,
    /// The proxy has no such database.
    Unknown,
    /// Anything else on the path (proxy down, TLS, timeouts).
    Other,
}

/// Classifies a tunnel error. `tunnel` already put the proxy's sentence in
/// [`Error::Refused`]; which of the two refusals it was takes one more question.
async fn refusal(dialer: &Dialer, res: &ResourceRef, err: &Error) -> Refusal {
    if !matches!(err, Error::Refused(_)) {
        return Refusal::Other;
    }
    match webapi::resolve(dialer, res).await {
        Ok(r) if r.outcome == Outcome::Unknown => Refusal::Unknown,
        _ => Refusal::Denied,
    }
}

fn path_failure(res: &ResourceRef, err: &Error) -> String {
    match err {
        Error::Tunnel { .. } => err.to_string(), // already names the database
        _ => format!("oneport could not reach database {}: {err}", res.name),
    }
}

async fn write_refusal<S: AsyncWrite + Unpin>(io: &mut S, bytes: &[u8]) {
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        io.write_all(bytes).await?;
        io.shutdown().await
    })
    .await;
}

/// The client side of a tunnel: replays bytes already read from the client before
/// reading more, and records whether anything was written to the client (after
/// that, a refusal can no longer be put in the client's protocol).
struct Local<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
    wrote: bool,
}

impl<S> Local<S> {
    fn new(prefix: Vec<u8>, inner: S) -> Self {
        Local { prefix, pos: 0, inner, wrote: false }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Local<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.pos);
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new(); // replayed: free it
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Local<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote = true;
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote = true;
        }
        r
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn local_replays_the_prefix_and_records_writes() {
        let (mut client, proxy) = tokio::io::duplex(4096);
        let mut local = Local::new(b"abc".to_vec(), proxy);
        client.write_all(b"def").await.unwrap();
        let mut got = [0u8; 6];
        local.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcdef");
        assert!(!local.wrote);
        local.write_all(b"x").await.unwrap();
        assert!(local.wrote);
    }
}
