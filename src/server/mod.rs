//! `oneport server start`: the single-port routing server. This file owns the
//! server's shared state and the accept loop (connection limit, accept backoff,
//! graceful drain); `conn` handles one connection, `routes` chooses, `backend`
//! reaches resources, `mux` serves multiplexed sessions, `web` serves the web API, `auth` issues and renews identities
//! on the auth route and keeps the revocation list, `store` remembers (files or
//! PostgreSQL).

pub mod auth;
pub mod backend;
pub mod config;
pub mod conn;
pub mod kube;
pub mod mux;
pub mod routes;
pub mod setup;
pub mod store;
pub mod upgrade;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn, Instrument};

use crate::error::{Error, Result};
use crate::identity;
use crate::net::tls::ServerTls;

pub use config::Config;

/// How long the start waits for the state store before serving anyway.
const STORE_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a connection needs, shared by all of them.
#[derive(Debug)]
pub struct Server {
    /// The configuration.
    pub cfg: Config,
    /// The routing table.
    pub table: routes::Table,
    /// TLS material.
    pub tls: ServerTls,
    /// The Kubernetes API servers behind the kube routes.
    pub kube: kube::Upstreams,
    /// TLS towards databases that want it.
    pub db_tls: backend::DbTls,
    /// Invites, enrollment, renewal and the revocation list (the auth route).
    pub auth: Arc<auth::Authority>,
    /// Multiplexed sessions open per user.
    pub mux_sessions: mux::Sessions,
    /// The load balancers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::util::cidr::Cidr>,
    /// Places for connections without an identity yet (`max_unauthenticated`).
    pub pre_auth: Arc<Semaphore>,
}

impl Server {
    /// Loads TLS files and builds the routing table.
    ///
    /// # Errors
    /// When a TLS file (the server's, or a database's CA) is missing or unusable, or a
    /// kube cluster's API server URL, CA, client certificate or token file is.
    pub fn new(cfg: Config) -> Result<Arc<Server>> {
        let chain = identity::load_certs(&cfg.tls.cert)?;
        let key = identity::load_key(&cfg.tls.key)?;
        let client_ca = identity::load_certs(&cfg.tls.client_ca)?;
        let tls = ServerTls::new(chain, key, &client_ca)?;
        let table = routes::Table::new(&cfg);
        let kube = kube::Upstreams::new(&cfg.kube, cfg.connect_timeout)?;
        let db_tls = backend::DbTls::new(&cfg)?;
        let ca = match cfg.ca_key_path() {
            Some(key) => Some(identity::pki::CertAndKey {
                cert_pem: String::from_utf8_lossy(&crate::util::fsutil::read(&cfg.tls.client_ca)?).into_owned(),
                key_pem: String::from_utf8_lossy(&crate::util::fsutil::read(&key)?).into_owned(),
            }),
            None => None,
        };
        let store = auth::open_store(&cfg)?;
        let auth = Arc::new(auth::Authority::new(ca, store, cfg.state_refresh, &cfg.public_addr));
        let trusted_proxies = cfg.trusted_proxy_nets();
        let pre_auth = Arc::new(Semaphore::new(cfg.max_unauthenticated));
        Ok(Arc::new(Server {
            cfg,
            table,
            tls,
            kube,
            db_tls,
            auth,
            mux_sessions: mux::Sessions::default(),
            trusted_proxies,
            pre_auth,
        }))
    }
}

/// Binds the configured listen address.
///
/// # Errors
/// [`Error::Bind`].
pub async fn bind(cfg: &Config) -> Result<TcpListener> {
    TcpListener::bind(&cfg.listen).await.map_err(|source| Error::Bind { addr: cfg.listen.clone(), cause: source })
}

/// Serves `listener` until `shutdown` is cancelled, then stops accepting and lets open
/// connections drain for `shutdown_grace` before closing them.
///
/// # Errors
/// Only if the listener's address cannot be read; per-connection errors are logged.
pub async fn run(listener: TcpListener, server: Arc<Server>, shutdown: CancellationToken) -> Result<()> {
    let local = listener.local_addr()?;
    info!(listen = %local, public_addr = %server.cfg.public_addr, cluster = %server.cfg.cluster_name,
        nodes = server.cfg.nodes.len(), databases = server.cfg.databases.len(), apps = server.cfg.apps.len(),
        kube = server.cfg.kube.len(), "oneport server listening");
    let tracker = TaskTracker::new();
    let force = CancellationToken::new();
    // The state store: migrated and the revocation list read before the first
    // connection (bounded: an unreachable store must not keep the port closed),
    // then re-read every few seconds.
    let _ = tokio::time::timeout(STORE_START_TIMEOUT, server.auth.start()).await;
    tracker.spawn(server.auth.clone().run(shutdown.clone()));
    let limit = Arc::new(Semaphore::new(server.cfg.max_connections));
    let mut backoff = Duration::from_millis(5);
    let mut next_id: u64 = 0;
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => { backoff = Duration::from_millis(5); x }
                Err(e) => {
                    // EMFILE and friends: wait instead of spinning, up to 1 s.
                    warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        next_id += 1;
        let span = tracing::info_span!("conn", id = next_id, peer = %peer,
            sni = tracing::field::Empty, alpn = tracing::field::Empty, user = tracing::field::Empty);
        let (srv, force) = (server.clone(), force.clone());
        tracker.spawn(
            async move {
                let _permit = permit;
                tokio::select! {
                    _ = conn::handle_tcp(srv, tcp, peer) => {}
                    _ = force.cancelled() => tracing::debug!("closed at the end of the shutdown grace period"),
                }
            }
            .instrument(span),
        );
    }
    drop(listener);
    tracker.close();
    info!(
        open = tracker.len(),
        grace_secs = server.cfg.shutdown_grace.as_secs(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(server.cfg.shutdown_grace, tracker.wait()).await.is_err() {
        warn!(open = tracker.len(), "grace period over; closing the remaining connections");
        force.cancel();
        tracker.wait().await;
    }
    info!("server stopped");
    Ok(())
}
