//! oneport: SSH, databases, Kubernetes and internal apps through one TLS port.
//!
//! # Layout
//! Folders are layers; imports point down only, and `client` and `server` never
//! import each other (`tests/layers.rs` checks it).
//! - [`error`]: the crate's error type, below everything; errors name the failing
//!   layer ([`Layer`]) and, for timeouts, the phase and its limit ([`Phase`]).
//! - [`util`]: small helpers with no network (`host:port`, IP networks, durations,
//!   the open-files limit, private files, `%XX` decoding, shutdown signals, UTC
//!   timestamps).
//! - [`identity`]: identity files, callers, and certificate making ([`identity::pki`]).
//! - [`proto`]: wire vocabulary both ends share, no sockets: ALPN/SNI naming and
//!   resource references, web API types (with their `Outcome`), upgrade names,
//!   database codecs, Kubernetes `Status` bodies, the exec/attach WebSocket channel
//!   framing. `docs/protocol.md` describes it.
//! - [`net`]: how bytes move: the one accept loop and the one connect-with-deadline
//!   (with their socket options), the books of every connection's tasks, streams,
//!   the one relay, ping framing, stdio, TLS (configs, system roots, server names),
//!   WebSocket, HTTP/1.1 forwarding, HTTP/2 multiplexed streams.
//! - [`tools`]: glue for the client programs oneport drives (ssh config, database
//!   client command lines, kubeconfig and exec credentials, running child processes).
//! - [`client`]: profile and context, the one dialer and its way through load
//!   balancers, the web API client, enrollment and renewal, the kept-warm
//!   multiplexed session per resource, the local listeners for app/db/kube.
//! - [`server`]: the routing server: config (reloaded on SIGHUP), routes,
//!   connections, web API, the upgrade endpoint, multiplexed sessions, backends
//!   (including the impersonating Kubernetes backend and its session recording),
//!   audit records, the auth
//!   route's authority and the state store (files or PostgreSQL), and
//!   `server init`/`issue` as library calls.
//! - [`cli`]: clap definitions and printing only.
//! - `fuzzing` (hidden, above every layer): one entry per parser for the fuzz
//!   targets in `fuzz/` and the corpus replay in `tests/fuzz_corpus.rs`.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod client;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod net;
pub mod proto;
pub mod server;
pub mod tools;
pub mod util;

pub use error::{Error, Layer, Phase, Result};
