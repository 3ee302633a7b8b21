//! oneport: SSH, databases, Kubernetes and internal apps through one TLS port.
//!
//! # Layout
//! - wire: [`naming`] (ALPN and SNI names), [`ping`] (ping framing), [`tls`].
//! - how bytes move: `dial` (the one dialer), [`relay`] (the one relay), [`stdio`]
//!   (stdin/stdout as one stream).
//! - integrations (what to connect to, no sockets): [`ssh`], [`db`] (Postgres and
//!   MySQL bits, client command lines; its `local` and `handshake` speak to streams).
//! - the server: [`server`] (accept loop, routing, backends, web API).
//! - Kubernetes: [`kube`] (kubeconfig, exec credentials, local proxy, forwarding).
//! - identities: [`pki`] (rcgen), [`identity`] (identity files, callers).
//! - small pure helpers: [`addr`], [`duration`], [`fsutil`], [`error`].
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod addr;
pub mod cli;
pub mod client;
pub mod db;
pub mod dial;
pub mod duration;
pub mod error;
pub mod fsutil;
pub mod hostcheck;
pub mod identity;
pub mod io;
pub mod kube;
pub mod localproxy;
pub mod naming;
pub mod ping;
pub mod pki;
pub mod process;
pub mod relay;
pub mod server;
pub mod shutdown;
pub mod ssh;
pub mod stdio;
pub mod tls;
pub mod upgrade;

pub use error::{Error, Result};
