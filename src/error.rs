//! The library's error type: one variant per cause a user can act on, each with a
//! message that says what failed and what to do.

use std::io;
use std::path::PathBuf;

/// The phase of a connection that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect.
    Connect,
    /// TLS handshake.
    TlsHandshake,
    /// An HTTP request to the proxy's web API.
    Request,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Connect => "TCP connect",
            Phase::TlsHandshake => "TLS handshake",
            Phase::Request => "web API request",
        })
    }
}

/// Errors of the oneport library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or argument is wrong; the message says which and why.
    #[error("{0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause (part of the message, so not chained as a source).
        cause: io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause (part of the message, so not chained as a source).
        cause: io::Error,
    },
    /// A TCP connection failed.
    #[error("cannot connect to {target}: {cause}")]
    Connect {
        /// host:port.
        target: String,
        /// The cause (part of the message, so not chained as a source).
        cause: io::Error,
    },
    /// A TLS handshake failed.
    #[error("TLS handshake with {peer} failed: {reason}")]
    Tls {
        /// host:port and SNI.
        peer: String,
        /// What went wrong, in plain words.
        reason: String,
    },
    /// A phase ran out of time.
    #[error("{phase} with {peer} timed out after {secs}s")]
    Timeout {
        /// The phase.
        phase: Phase,
        /// Who we were talking to.
        peer: String,
        /// The limit.
        secs: u64,
    },
    /// An established tunnel ended with an error.
    #[error("connection to {what} through {proxy} ended: {reason}")]
    Tunnel {
        /// The resource ("node web1").
        what: String,
        /// The proxy.
        proxy: String,
        /// What happened.
        reason: String,
    },
    /// The proxy refused the route; the message names the resource and why.
    #[error("{0}")]
    Refused(String),
    /// The proxy ended the handshake with `access_denied` (not allowed, or no such
    /// resource); `/webapi/resolve` says which.
    #[error("{proxy} refused the connection (access denied)")]
    AccessDenied {
        /// The proxy.
        proxy: String,
    },
    /// An HTTP exchange (web API, upgrade, CONNECT) failed.
    #[error("{0}")]
    Http(String),
    /// Any other I/O error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A configuration error.
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    /// A file error.
    pub fn file(path: impl Into<PathBuf>, cause: io::Error) -> Self {
        Error::File { path: path.into(), cause }
    }
}

/// Runs `fut` with a deadline, turning expiry into [`Error::Timeout`].
///
/// # Errors
/// [`Error::Timeout`] when the deadline passes, else what `fut` returns.
pub async fn with_timeout<T, F>(phase: Phase, peer: &str, limit: std::time::Duration, fut: F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout { phase, peer: peer.to_string(), secs: limit.as_secs().max(1) }),
    }
}
