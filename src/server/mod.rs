//! `oneport server start`: the single-port routing server. This file owns the
//! server's shared state, its accept loop (the one in [`crate::net::accept`], with
//! the connection limit capped to the open-files limit, the per-source limit on
//! unauthenticated connections, and graceful drain) and config reload on SIGHUP;
//! `conn` handles one connection, `routes` chooses, `backend` reaches resources,
//! `mux` serves multiplexed sessions, `web` serves the web API, `auth` issues and renews identities on the auth route
//! and keeps the revocation list, `store` remembers (files or PostgreSQL), `audit`
//! records who did what.
//!
//! Reload: each connection takes the state in force when it was accepted and keeps
//! it to the end, so established sessions are never touched; a new config that does
//! not load (bad YAML, a missing certificate) is refused and the old one kept. The
//! identity authority (its store and revocation list) is kept across reloads.

pub mod audit;
pub mod auth;
pub mod backend;
pub mod config;
pub mod conn;
pub mod kube;
pub mod mux;
pub mod recording;
pub mod routes;
pub mod setup;
pub mod store;
pub mod upgrade;
pub mod web;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::identity;
use crate::net::accept::{self, Limits};
use crate::net::shards;
use crate::net::tasks::Tasks;
use crate::net::tls::ServerTls;
use crate::util::fdlimit;

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
    /// Multiplexed sessions open per user (shared by the states a reload makes).
    pub mux_sessions: Arc<mux::Sessions>,
    /// Every task of every connection (shared by the states a reload makes).
    pub tasks: Tasks,
    /// Where audit records go besides the log.
    pub audit: Arc<audit::Sink>,
    /// The state in force now (shared by the states a reload makes; each state is
    /// kept alive by the connections that took it, so this holds it weakly).
    current: Arc<RwLock<Weak<Server>>>,
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
        Server::build(cfg, Tasks::new(), None, Arc::default(), Arc::default())
    }

    /// A new state from `cfg` for the same listener and tasks (config reload).
    ///
    /// # Errors
    /// As [`Server::new`], and when the audit log cannot be opened.
    pub fn reload(&self, cfg: Config) -> Result<Arc<Server>> {
        let fixed = [
            ("listen", self.cfg.listen != cfg.listen),
            ("max_connections", self.cfg.max_connections != cfg.max_connections),
            (
                "max_unauthenticated_per_source",
                self.cfg.max_unauthenticated_per_source != cfg.max_unauthenticated_per_source,
            ),
            ("tcp_keepalive", self.cfg.tcp_keepalive != cfg.tcp_keepalive),
            ("workers", self.cfg.workers != cfg.workers),
        ];
        let new = Server::build(
            cfg,
            self.tasks.clone(),
            Some(self.auth.clone()),
            self.mux_sessions.clone(),
            self.current.clone(),
        )?;
        for (name, changed) in fixed {
            if changed {
                warn!("config reload: {name} changed; for the listener it takes effect at the next start");
            }
        }
        Ok(new)
    }

    fn build(
        cfg: Config,
        tasks: Tasks,
        auth: Option<Arc<auth::Authority>>,
        mux_sessions: Arc<mux::Sessions>,
        current: Arc<RwLock<Weak<Server>>>,
    ) -> Result<Arc<Server>> {
        let chain = identity::load_certs(&cfg.tls.cert)?;
        let key = identity::load_key(&cfg.tls.key)?;
        let client_ca = identity::load_certs(&cfg.tls.client_ca)?;
        let tls = ServerTls::new(chain, key, &client_ca)?;
        let table = routes::Table::new(&cfg);
        let kube = kube::Upstreams::new(&cfg.kube, cfg.connect_timeout, cfg.keepalive(), &tasks)?;
        let db_tls = backend::DbTls::new(&cfg)?;
        let auth = match auth {
            Some(a) => a,
            None => {
                let ca = match cfg.ca_key_path() {
                    Some(key) => Some(identity::pki::CertAndKey {
                        cert_pem: String::from_utf8_lossy(&crate::util::fsutil::read(&cfg.tls.client_ca)?).into_owned(),
                        key_pem: String::from_utf8_lossy(&crate::util::fsutil::read(&key)?).into_owned(),
                    }),
                    None => None,
                };
                let store = auth::open_store(&cfg)?;
                Arc::new(auth::Authority::new(ca, store, cfg.state_refresh, &cfg.public_addr))
            }
        };
        let audit = Arc::new(audit::Sink::open(cfg.audit_log.as_deref())?);
        let trusted_proxies = cfg.trusted_proxy_nets();
        let pre_auth = Arc::new(Semaphore::new(cfg.max_unauthenticated));
        Ok(Arc::new(Server {
            cfg,
            table,
            tls,
            kube,
            db_tls,
            auth,
            mux_sessions,
            tasks,
            audit,
            current,
            trusted_proxies,
            pre_auth,
        }))
    }

    /// Makes this state the one in force (at start and after a reload).
    fn make_current(self: &Arc<Self>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(self);
    }

    /// The state in force now: the newest config, for checks that must follow a
    /// reload on connections that started before it (multiplexed stream opens).
    pub fn latest(self: &Arc<Self>) -> Arc<Server> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).upgrade().unwrap_or_else(|| self.clone())
    }
}

/// Binds the configured listen address (backlog [`accept::BACKLOG`]).
///
/// # Errors
/// [`Error::Bind`].
pub async fn bind(cfg: &Config) -> Result<TcpListener> {
    let bind_err = |cause| Error::Bind { addr: cfg.listen.clone(), cause };
    let addr: std::net::SocketAddr = cfg
        .listen
        .parse()
        .map_err(|_| bind_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an IP:port")))?;
    accept::bind(addr).map_err(bind_err)
}

/// Serves `listener` until `shutdown` is cancelled, then stops accepting and lets open
/// connections drain for `shutdown_grace` before closing them.
///
/// # Errors
/// Only if the listener's address cannot be read; per-connection errors are logged.
pub async fn run(listener: TcpListener, server: Arc<Server>, shutdown: CancellationToken) -> Result<()> {
    run_with_reload(listener, server, shutdown, None).await
}

/// As [`run`]; with `config`, SIGHUP reloads that file (Unix).
///
/// # Errors
/// As [`run`].
pub async fn run_with_reload(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: CancellationToken,
    config: Option<PathBuf>,
) -> Result<()> {
    let local = listener.local_addr()?;
    let mut limits = limits(&server.cfg);
    let workers = server.cfg.workers.unwrap_or_else(shards::default_count);
    let shards = shards::Shards::start(workers, "oneport-conn").map_err(|e| {
        Error::Config(format!("cannot start {workers} connection worker threads (workers in the config): {e}"))
    })?;
    let shards = Arc::new(shards);
    limits.shards = Some(shards.clone());
    let live = Arc::new(RwLock::new(server.clone()));
    server.make_current();
    if let Some(path) = config {
        watch_reload(live.clone(), path, &server.tasks);
    }
    info!(listen = %local, public_addr = %server.cfg.public_addr, cluster = %server.cfg.cluster_name,
        nodes = server.cfg.nodes.len(), databases = server.cfg.databases.len(), apps = server.cfg.apps.len(),
        kube = server.cfg.kube.len(), max_connections = limits.max_connections, workers, "oneport server listening");
    // The state store: migrated and the revocation list read before the first
    // connection (bounded: an unreachable store must not keep the port closed),
    // then re-read every few seconds until shutdown.
    let _ = tokio::time::timeout(STORE_START_TIMEOUT, server.auth.start()).await;
    server.tasks.spawn_shared(server.auth.clone().run(shutdown.clone()));
    let span = |id: u64, peer: std::net::SocketAddr| {
        tracing::info_span!("conn", id, peer = %peer, sni = tracing::field::Empty,
            alpn = tracing::field::Empty, user = tracing::field::Empty)
    };
    let tasks = server.tasks.clone();
    drop(server);
    accept::serve(listener, limits, &tasks, shutdown, "server", span, move |tcp, peer| {
        let srv = live.read().unwrap_or_else(|p| p.into_inner()).clone();
        conn::handle_tcp(srv, tcp, peer)
    })
    .await;
    // Every connection has drained; the worker threads end with their runtimes.
    drop(shards);
    info!("server stopped");
    Ok(())
}

/// The listener's limits: `max_connections` capped to what the open-files limit
/// (raised to the hard limit first) carries, and the decision logged.
fn limits(cfg: &Config) -> Limits {
    let mut max = cfg.max_connections;
    match fdlimit::raise() {
        Some(l) => {
            let (capped, lowered) = fdlimit::cap(max, l.soft);
            if lowered {
                let why = format!(
                    "max_connections {max} lowered to {capped}: the open-files limit is {} (hard limit {}) and each \
                     proxied connection holds two descriptors; raise the limit (ulimit -n, systemd LimitNOFILE=) \
                     to serve more",
                    l.soft, l.hard
                );
                // The default is a ceiling, fitted to the descriptors without alarm
                // (20,000 open files carry 9,950); a value someone chose is warned about.
                if max == crate::server::config::default_max_connections() {
                    info!("{why}");
                } else {
                    warn!("{why}");
                }
            } else {
                info!(
                    open_files = l.soft,
                    raised_from = l.before,
                    hard = l.hard,
                    max_connections = max,
                    "open-files limit carries max_connections (two descriptors each)"
                );
            }
            max = capped;
        }
        None => info!(max_connections = max, "open-files limit unknown here; max_connections as configured"),
    }
    Limits {
        max_connections: max,
        max_unauthenticated_per_source: cfg.max_unauthenticated_per_source,
        keepalive: cfg.keepalive(),
        grace: cfg.shutdown_grace,
        shards: None,
    }
}

/// Reloads `path` into `live` on every SIGHUP until the server stops. The handler
/// is registered now, so a SIGHUP never kills the server.
fn watch_reload(live: Arc<RwLock<Arc<Server>>>, path: PathBuf, tasks: &Tasks) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => return warn!(error = %e, "cannot watch SIGHUP; config reload is off"),
        };
        let stop = tasks.stopping().clone();
        tasks.spawn_shared(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    got = hup.recv() => if got.is_none() { return },
                }
                reload(&live, &path);
            }
        });
    }
    #[cfg(not(unix))]
    {
        let _ = (live, path, tasks);
    }
}

/// Loads `path` and puts it in force, or keeps the old state and says why.
fn reload(live: &RwLock<Arc<Server>>, path: &Path) {
    info!(config = %path.display(), "SIGHUP: reloading the config");
    let old = live.read().unwrap_or_else(|p| p.into_inner()).clone();
    match Config::load(path).and_then(|cfg| old.reload(cfg)) {
        Ok(new) => {
            new.make_current();
            info!(
                nodes = new.cfg.nodes.len(),
                databases = new.cfg.databases.len(),
                apps = new.cfg.apps.len(),
                kube = new.cfg.kube.len(),
                "config reloaded; established sessions keep the config they started with"
            );
            *live.write().unwrap_or_else(|p| p.into_inner()) = new;
        }
        Err(e) => warn!("config reload refused, still serving the previous config: {e}"),
    }
}
