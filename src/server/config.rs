//! The server's configuration file (`server.yaml`): what it listens on, its TLS
//! files, limits, and the resources it routes with their allow-lists. Relative paths
//! are resolved against the file's directory. Anything not named here is unreachable.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::identity::Caller;
pub use crate::proto::db::DbProtocol;
use crate::proto::naming::{self, Kind};
use crate::util::cidr::Cidr;
use crate::util::duration::serde_human;

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:3080`; `0.0.0.0:3080` to serve the network).
    pub listen: String,
    /// The address clients use (`proxy.example.com:443`).
    pub public_addr: String,
    /// The cluster name shown to clients.
    pub cluster_name: String,
    /// Certificate files.
    pub tls: TlsFiles,
    /// Interval of server pings on `-ping` protocols and `alpn-ping` upgrades.
    #[serde(default = "defaults::ping_interval", with = "serde_human")]
    pub ping_interval: Duration,
    /// Deadline for reading the ClientHello and completing the TLS handshake.
    #[serde(default = "defaults::handshake_timeout", with = "serde_human")]
    pub handshake_timeout: Duration,
    /// Deadline for dialling a backend.
    #[serde(default = "defaults::connect_timeout", with = "serde_human")]
    pub connect_timeout: Duration,
    /// How long open connections may drain after SIGINT/SIGTERM.
    #[serde(default = "defaults::shutdown_grace", with = "serde_human")]
    pub shutdown_grace: Duration,
    /// Connections served at once; more wait in the kernel's accept queue. Lowered
    /// at start to what the open-files limit carries (two descriptors each).
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Threads that serve connections, each running its own share of them from
    /// accept to close (default: one per core). 1 keeps all on one thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Connections from one source address that have not authenticated yet (0: no
    /// limit). Clients behind one load balancer share its address.
    #[serde(default = "defaults::max_unauthenticated_per_source")]
    pub max_unauthenticated_per_source: usize,
    /// TCP keepalive on accepted and dialled sockets: the first probe after this
    /// much silence (`0s`: off). A vanished peer is given up about twice this later.
    #[serde(default = "defaults::tcp_keepalive", with = "serde_human")]
    pub tcp_keepalive: Duration,
    /// Also write the audit lines (one per session, one per refusal) as JSON lines
    /// to this file (created 0600, appended to; reopened on SIGHUP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<PathBuf>,
    /// Load balancers whose `X-Forwarded-For` is believed (CIDRs or single
    /// addresses: `[10.0.0.0/8, "fd00::/8", 192.0.2.7]`). A request from any other
    /// peer is logged with its TCP address, whatever it sends.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub trusted_proxies: Vec<String>,
    /// Deprecated: replaced by `trusted_proxies`. `false` loads with a warning;
    /// `true` without `trusted_proxies` is an error (it trusted every client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_x_forwarded_for: Option<bool>,
    /// Connections that have not authenticated yet (no verified client certificate),
    /// served at once; more wait unread for a place, up to `handshake_timeout`. Each
    /// served one holds at most 64 KiB, so the default 1024 bounds them to 64 MiB.
    #[serde(default = "defaults::max_unauthenticated")]
    pub max_unauthenticated: usize,
    /// Multiplexed sessions (`-mux` ALPN names, docs/protocol.md §13).
    #[serde(default)]
    pub mux: MuxLimits,
    /// SSH nodes.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub nodes: Vec<Node>,
    /// Databases.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub databases: Vec<Database>,
    /// HTTP and TCP applications.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub apps: Vec<App>,
    /// Kubernetes clusters.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub kube: Vec<Kube>,
    /// Where invites, issued serials and revocations live: absent for files in this
    /// folder's `state/`, or `postgres://USER@HOST/DB` shared by several servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// How often the revocation list is re-read from the state store.
    #[serde(default = "defaults::state_refresh", with = "serde_human")]
    pub state_refresh: Duration,
    /// The folder the config was loaded from (relative paths and the file store).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// A list key with nothing under it (`nodes:` followed only by comments) is an empty
/// list, so the template's commented entries can be uncommented in place.
fn null_is_empty<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The warning for a server that listens on loopback only while clients are told a
/// public address another machine would use; `None` when the two agree. Said by
/// `server init` and `server start` (not by every command that reads the file).
pub fn loopback_listen_warning(listen: &str, public_addr: &str) -> Option<String> {
    let l: SocketAddr = listen.parse().ok()?;
    if !l.ip().is_loopback() {
        return None;
    }
    let host = crate::util::addr::HostPort::parse(public_addr).ok()?.host;
    let public_is_loopback = match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost"),
    };
    if public_is_loopback {
        return None;
    }
    Some(format!(
        "listen {listen} accepts connections from this machine only, but public_addr {public_addr} tells clients \
         to come from elsewhere: they cannot connect. Set `listen: 0.0.0.0:{port}` (or `server init --listen`) \
         unless a load balancer or tunnel on this machine forwards to it",
        port = l.port()
    ))
}

/// `addr` of a backend: HOST:PORT, with a sentence for the common URL mistake.
fn check_addr(what: &str, addr: &str) -> std::result::Result<(), String> {
    if let Some((_, rest)) = addr.split_once("://") {
        let hostport = rest.split('/').next().unwrap_or(rest);
        return Err(format!("{what}: addr {addr:?} is a URL; addr is HOST:PORT (e.g. {hostport:?})"));
    }
    crate::util::addr::HostPort::parse(addr).map(|_| ()).map_err(|e| format!("{what}: {e}"))
}

/// The default `max_connections`: a ceiling the server lowers, without a warning,
/// to what the open-files limit carries.
pub fn default_max_connections() -> usize {
    10_000
}

mod defaults {
    use std::time::Duration;
    pub(super) fn ping_interval() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn handshake_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub(super) fn connect_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub(super) fn shutdown_grace() -> Duration {
        Duration::from_secs(10)
    }
    pub(super) fn max_connections() -> usize {
        super::default_max_connections()
    }
    pub(super) fn state_refresh() -> Duration {
        Duration::from_secs(3)
    }
    pub(super) fn max_unauthenticated_per_source() -> usize {
        1024
    }
    pub(super) fn tcp_keepalive() -> Duration {
        crate::net::connect::DEFAULT_KEEPALIVE
    }
    pub(super) fn max_unauthenticated() -> usize {
        1024
    }
}

/// Multiplexed sessions: whether the server offers them, and their limits.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MuxLimits {
    /// Negotiate `-mux` ALPN names (`false`: clients fall back to one routing
    /// connection per local connection).
    pub enabled: bool,
    /// Streams open at once on one session; more wait for a free slot.
    pub max_streams_per_session: u32,
    /// Sessions open at once per user; more are refused.
    pub max_sessions_per_user: usize,
}

impl Default for MuxLimits {
    fn default() -> Self {
        MuxLimits { enabled: true, max_streams_per_session: 256, max_sessions_per_user: 64 }
    }
}

/// Certificate files (relative to the config file).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Server certificate chain, PEM.
    pub cert: PathBuf,
    /// Server private key, PEM.
    pub key: PathBuf,
    /// CA that signs client identities, PEM.
    pub client_ca: PathBuf,
    /// The CA's key, for identities issued over the auth route (default
    /// `ca-key.pem` beside `client_ca`, if it exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key: Option<PathBuf>,
}

/// Who may use a resource: a caller matches if its user is listed or any of its
/// groups is. An empty allow-list allows nobody.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// Users (certificate CN).
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups (certificate O).
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Allow {
    /// Whether `caller` may use the resource.
    pub fn permits(&self, caller: &Caller) -> bool {
        self.users.iter().any(|u| u == "*" || *u == caller.user)
            || caller.groups.iter().any(|g| self.groups.contains(g))
    }
}

/// An SSH node.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The node's name (SNI label).
    pub name: String,
    /// Where sshd listens, `host:port`.
    #[serde(default)]
    pub addr: Option<String>,
    /// Other `host:port` targets a client may ask for by port (`127.0.0.1:*` allows
    /// every port on that host).
    #[serde(default)]
    pub targets: Vec<String>,
    /// Who may connect.
    #[serde(default)]
    pub allow: Allow,
}

impl Node {
    /// The address to dial for a client that asked for `port` (`None`: the node's own
    /// address). `None` gives `addr`, or else the first target allowing port 22;
    /// `Some(p)` gives `addr` if it listens on `p`, else the first target pattern
    /// allowing `p` (`host:p`, or `host:*` for any port on `host`). Nothing else.
    ///
    /// # Errors
    /// [`PortRefusal`] when nothing configured allows the request.
    pub fn dial_addr(&self, port: Option<u16>) -> Result<String, PortRefusal> {
        let found = match port {
            None => self.addr.clone().or_else(|| self.target_for(naming::SSH_DEFAULT_PORT)),
            Some(p) => self.addr.clone().filter(|a| port_of(a) == Some(p)).or_else(|| self.target_for(p)),
        };
        found.ok_or_else(|| PortRefusal { node: self.name.clone(), port, allowed: self.allowed_ports() })
    }

    fn target_for(&self, port: u16) -> Option<String> {
        self.targets.iter().find_map(|t| {
            let (host, p) = t.rsplit_once(':')?;
            match p {
                "*" => Some(format!("{host}:{port}")),
                _ if p.parse::<u16>().ok() == Some(port) => Some(t.clone()),
                _ => None,
            }
        })
    }

    /// The ports a client may ask for, for messages (a `host:*` target allows all,
    /// so it never needs listing: nothing is refused then).
    fn allowed_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.addr.iter().chain(&self.targets).filter_map(|a| port_of(a)).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// Why a node cannot be reached on the port a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRefusal {
    /// The node.
    pub node: String,
    /// The port asked for (`None`: the default).
    pub port: Option<u16>,
    /// The ports the node allows.
    pub allowed: Vec<u16>,
}

impl PortRefusal {
    /// The sentence for the user, naming the proxy.
    pub fn sentence(&self, proxy: &str) -> String {
        let allowed = if self.allowed.is_empty() {
            "none".to_string()
        } else {
            self.allowed.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        };
        match self.port {
            Some(p) => format!("port {p} of node {} is not allowed by proxy {proxy}; allowed ports: {allowed}", self.node),
            None => format!(
                "node {} has no default address on proxy {proxy}; ask for a port (ssh -p PORT); allowed ports: {allowed}",
                self.node
            ),
        }
    }
}

/// The sentence for a node target that is the proxy's own listener (never dialled:
/// a wildcard target on the proxy's host would otherwise loop back into it).
pub fn own_listener_sentence(node: &str, port: u16, proxy: &str) -> String {
    format!("port {port} of node {node} is not allowed by proxy {proxy}: it is the proxy's own listening address")
}

/// Whether dialling `target` would reach a server listening on `listen`: same port,
/// and the same address, or (when listening on every address) an unspecified,
/// loopback or local address; `is_local` says whether an address is this host's.
pub fn is_own_listener(listen: SocketAddr, target: SocketAddr, is_local: impl Fn(IpAddr) -> bool) -> bool {
    if listen.port() != target.port() {
        return false;
    }
    let (l, t) = (listen.ip().to_canonical(), target.ip().to_canonical());
    if l == t || t.is_unspecified() && (l.is_loopback() || l.is_unspecified()) {
        return true;
    }
    l.is_unspecified() && (t.is_loopback() || is_local(t))
}

/// Whether `ip` is an address of this host (one a socket can bind).
pub fn is_local_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

fn same_host(a: &str, b: &str) -> bool {
    let norm = |h: &str| {
        let h = h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        match h.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => "localhost".to_string(),
            Ok(ip) => ip.to_canonical().to_string(),
            Err(_) => h,
        }
    };
    norm(a) == norm(b)
}

impl std::fmt::Display for PortRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sentence("this proxy"))
    }
}

/// A database.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// The database's name (SNI label).
    pub name: String,
    /// Its wire protocol.
    pub protocol: DbProtocol,
    /// Where it listens, `host:port`.
    pub addr: String,
    /// TLS from the server to the database: postgres (SSLRequest, then TLS),
    /// mongodb and redis (TLS from the first byte); not mysql (see `validate`).
    #[serde(default)]
    pub tls: Option<BackendTls>,
    /// Who may connect.
    #[serde(default)]
    pub allow: Allow,
}

/// TLS towards a backend.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTls {
    /// CA that signs the backend's certificate (PEM).
    pub ca: PathBuf,
    /// The name to verify (defaults to the host of `addr`).
    #[serde(default)]
    pub server_name: Option<String>,
}

/// Kinds of application (wire vocabulary: the web API lists them too).
pub use crate::proto::naming::AppKind;

/// An application.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// The app's name (SNI label).
    pub name: String,
    /// HTTP or TCP.
    pub kind: AppKind,
    /// Where it listens, `host:port`.
    pub addr: String,
    /// Who may connect.
    #[serde(default)]
    pub allow: Allow,
}

/// A Kubernetes cluster behind the server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Kube {
    /// The cluster's name.
    pub name: String,
    /// The API server URL (`https://host:port`).
    pub api_server: String,
    /// CA of the API server (PEM).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// A file holding the bearer token the server uses upstream.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A client certificate the server uses upstream (PEM), with `client_key`.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// The key of `client_cert` (PEM).
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Who may connect.
    #[serde(default)]
    pub allow: Allow,
    /// Recording of exec and attach sessions (docs/recording.md).
    #[serde(default, skip_serializing_if = "crate::server::recording::Recording::is_off")]
    pub recording: crate::server::recording::Recording,
}

impl Config {
    /// TCP keepalive for sockets (`None`: off).
    pub fn keepalive(&self) -> Option<Duration> {
        (!self.tcp_keepalive.is_zero()).then_some(self.tcp_keepalive)
    }

    /// Reads and checks a config file; relative paths become relative to its folder.
    ///
    /// # Errors
    /// When the file cannot be read, does not parse, or fails [`Config::validate`].
    pub fn load(path: &Path) -> Result<Config> {
        let text = crate::util::fsutil::read(path)?;
        let mut cfg: Config =
            serde_yaml_ng::from_slice(&text).map_err(|e| Error::config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.dir = base.to_path_buf();
        cfg.validate().map_err(|e| Error::config(format!("{}: {e}", path.display())))?;
        for w in cfg.warnings() {
            tracing::warn!("{}: {w}", path.display());
        }
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.tls.cert);
        fix(&mut self.tls.key);
        fix(&mut self.tls.client_ca);
        if let Some(k) = &mut self.tls.ca_key {
            fix(k);
        }
        if let Some(p) = &mut self.audit_log {
            fix(p);
        }
        for db in &mut self.databases {
            if let Some(t) = &mut db.tls {
                fix(&mut t.ca);
            }
        }
        for k in &mut self.kube {
            for p in [&mut k.ca, &mut k.token_file, &mut k.client_cert, &mut k.client_key, &mut k.recording.dir]
                .into_iter()
                .flatten()
            {
                fix(p);
            }
        }
    }

    /// The folder of the file store and the default CA key: the config's folder.
    pub fn state_dir(&self) -> PathBuf {
        if self.dir.as_os_str().is_empty() {
            self.tls.client_ca.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
        } else {
            self.dir.clone()
        }
    }

    /// The CA key's file, if there is one.
    pub fn ca_key_path(&self) -> Option<PathBuf> {
        match &self.tls.ca_key {
            Some(k) => Some(k.clone()),
            None => {
                let p = self.tls.client_ca.parent()?.join(crate::server::setup::files::CA_KEY);
                p.exists().then_some(p)
            }
        }
    }

    /// Checks names, addresses and limits.
    ///
    /// # Errors
    /// A message naming the first bad entry.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.validate_listener()?;
        self.validate_names()?;
        self.nodes.iter().try_for_each(Node::validate)?;
        self.databases.iter().try_for_each(Database::validate)?;
        self.apps.iter().try_for_each(App::validate)?;
        self.kube.iter().try_for_each(Kube::validate)
    }

    /// Addresses, the connection limit and the timeouts.
    fn validate_listener(&self) -> std::result::Result<(), String> {
        crate::util::addr::HostPort::parse(&self.public_addr).map_err(|e| format!("public_addr: {e}"))?;
        self.listen.parse::<std::net::SocketAddr>().map_err(|e| format!("listen {:?}: {e}", self.listen))?;
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if self.state_refresh < Duration::from_millis(100) || self.state_refresh > Duration::from_secs(3600) {
            return Err("state_refresh must be between 100ms and 1h".into());
        }
        if self.handshake_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err("timeouts must be greater than zero".into());
        }
        let day = std::time::Duration::from_secs(86400);
        for (name, d) in [
            ("handshake_timeout", self.handshake_timeout),
            ("connect_timeout", self.connect_timeout),
            ("shutdown_grace", self.shutdown_grace),
            ("ping_interval", self.ping_interval),
            ("tcp_keepalive", self.tcp_keepalive),
        ] {
            if d > day {
                return Err(format!("{name} of {} is longer than a day", crate::util::duration::format(d)));
            }
        }
        if self.mux.max_streams_per_session == 0 || self.mux.max_sessions_per_user == 0 {
            return Err("mux.max_streams_per_session and mux.max_sessions_per_user must be at least 1".into());
        }
        if !self.tcp_keepalive.is_zero() && self.tcp_keepalive < Duration::from_secs(1) {
            return Err("tcp_keepalive must be at least 1s (or 0s for off)".into());
        }
        if let Some(w) = self.workers {
            if w == 0 || w > 1024 {
                return Err(format!("workers must be from 1 to 1024, got {w}"));
            }
        }
        if self.max_connections > 1_000_000 {
            return Err(format!("max_connections {} is more than 1000000", self.max_connections));
        }
        if self.max_unauthenticated == 0 || self.max_unauthenticated > 1_000_000 {
            return Err(format!("max_unauthenticated must be from 1 to 1000000, got {}", self.max_unauthenticated));
        }
        for p in &self.trusted_proxies {
            Cidr::parse(p).map_err(|e| format!("trusted_proxies: {e}"))?;
        }
        if self.trust_x_forwarded_for == Some(true) && self.trusted_proxies.is_empty() {
            return Err("trust_x_forwarded_for is replaced by trusted_proxies, which names the load balancers \
                        whose X-Forwarded-For is believed (trust_x_forwarded_for: true believed every client): \
                        write `trusted_proxies: [10.0.0.0/8]` with your load balancers' addresses and remove \
                        trust_x_forwarded_for"
                .into());
        }
        Ok(())
    }

    /// Every resource name is a DNS label, once per kind.
    fn validate_names(&self) -> std::result::Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        let named = self
            .nodes
            .iter()
            .map(|n| (Kind::Node, &n.name))
            .chain(self.databases.iter().map(|d| (Kind::Db, &d.name)))
            .chain(self.apps.iter().map(|a| (Kind::App, &a.name)))
            .chain(self.kube.iter().map(|k| (Kind::Kube, &k.name)));
        for (kind, name) in named {
            if !naming::valid_name(name) {
                return Err(format!(
                    "{kind} name {name:?} is not a DNS label (lowercase letters, digits and '-', no '--', at most 63)"
                ));
            }
            if !seen.insert((kind, name.clone())) {
                return Err(format!("{kind} {name:?} is defined twice"));
            }
        }
        Ok(())
    }

    /// The load balancers whose `X-Forwarded-For` is believed (checked by
    /// [`Config::validate`]; entries that do not parse are skipped).
    pub fn trusted_proxy_nets(&self) -> Vec<Cidr> {
        self.trusted_proxies.iter().filter_map(|p| Cidr::parse(p).ok()).collect()
    }

    /// Things that load but deserve the operator's attention, one sentence each
    /// (logged as warnings when the file is loaded).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.wildcard_warnings();
        if self.trust_x_forwarded_for.is_some() {
            out.push(
                "trust_x_forwarded_for is deprecated and ignored: trusted_proxies decides whose X-Forwarded-For is \
                 believed; remove it"
                    .to_string(),
            );
        }
        out
    }

    /// A node target `host:*` reaches every port of `host`: say so for each other
    /// resource's backend (and this server's own listener) on that host.
    fn wildcard_warnings(&self) -> Vec<String> {
        let mut backends: Vec<(String, &str)> = Vec::new();
        for n in &self.nodes {
            for a in n.addr.iter().chain(n.targets.iter().filter(|t| !t.ends_with(":*"))) {
                backends.push((format!("node {}", n.name), a));
            }
        }
        backends.extend(self.databases.iter().map(|d| (format!("database {}", d.name), d.addr.as_str())));
        backends.extend(self.apps.iter().map(|a| (format!("app {}", a.name), a.addr.as_str())));
        let mut out = Vec::new();
        for n in &self.nodes {
            for t in n.targets.iter().filter(|t| t.ends_with(":*")) {
                let host = t.trim_end_matches(":*");
                for (what, addr) in &backends {
                    let Some((h, _)) = addr.rsplit_once(':') else { continue };
                    if what == &format!("node {}", n.name) || !same_host(host, h) {
                        continue;
                    }
                    out.push(format!(
                        "node {}: target {t} also reaches {what} at {addr} for everyone node {} allows; \
                         list the node's ports instead of *",
                        n.name, n.name
                    ));
                }
                if self.listen.rsplit_once(':').is_some_and(|(h, _)| same_host(host, h)) {
                    out.push(format!(
                        "node {}: target {t} covers this server's own listening address {}, which is refused \
                         when asked for",
                        n.name, self.listen
                    ));
                }
            }
        }
        out
    }

    /// The routing domains the server answers for: its public host's, and the
    /// internal one (so clients that dial by IP or localhost also route).
    pub fn routing_domains(&self) -> Vec<String> {
        let host = crate::util::addr::HostPort::parse(&self.public_addr).map(|h| h.host).unwrap_or_default();
        let mut d = vec![naming::routing_domain(&host)];
        if d[0] != naming::INTERNAL_DOMAIN {
            d.push(naming::INTERNAL_DOMAIN.to_string());
        }
        d
    }
}

impl Node {
    /// An address to dial, and every address and target parses.
    fn validate(&self) -> std::result::Result<(), String> {
        if self.addr.is_none() && self.targets.is_empty() {
            return Err(format!("node {:?} needs `addr` or `targets`", self.name));
        }
        for t in self.addr.iter().chain(&self.targets) {
            check_addr(&format!("node {:?}", self.name), &t.replace(":*", ":1"))?;
        }
        Ok(())
    }
}

impl Database {
    /// The address parses, and `tls` only where the relay can add it.
    fn validate(&self) -> std::result::Result<(), String> {
        check_addr(&format!("database {:?}", self.name), &self.addr)?;
        if self.tls.is_some() && self.protocol == DbProtocol::Mysql {
            return Err(format!(
                "database {:?}: `tls` is not supported for mysql: MySQL switches to TLS inside its handshake, \
                 which the server's byte relay cannot do. Remove `tls`; a mysql client that asks for TLS \
                 still gets it end to end with the database, through the relay",
                self.name
            ));
        }
        Ok(())
    }
}

impl App {
    /// The address parses.
    fn validate(&self) -> std::result::Result<(), String> {
        check_addr(&format!("app {:?}", self.name), &self.addr)?;
        Ok(())
    }
}

impl Kube {
    /// An http(s) API server, client certificate and key together, and a usable
    /// `recording` block.
    fn validate(&self) -> std::result::Result<(), String> {
        if !self.api_server.starts_with("https://") && !self.api_server.starts_with("http://") {
            return Err(format!("kube {:?}: api_server must be an http(s):// URL", self.name));
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(format!("kube {:?}: client_cert and client_key go together", self.name));
        }
        self.recording.validate().map_err(|e| format!("kube {:?}: {e}", self.name))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
listen: 127.0.0.1:3080
public_addr: proxy.example.com:3080
cluster_name: example
tls: { cert: server.pem, key: server-key.pem, client_ca: ca.pem }
ping_interval: 15s
nodes: [ { name: web1, addr: "127.0.0.1:22", allow: { groups: [ops] } } ]
databases: [ { name: pg1, protocol: postgres, addr: "127.0.0.1:5432", allow: { users: [alice] } } ]
apps: [ { name: grafana, kind: http, addr: "127.0.0.1:3000", allow: { groups: [dev] } } ]
"#;

    fn caller(user: &str, groups: &[&str]) -> Caller {
        Caller {
            user: user.into(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            not_after: i64::MAX,
            ..Default::default()
        }
    }

    #[test]
    fn parses_sample_and_defaults() {
        let cfg: Config = serde_yaml_ng::from_str(SAMPLE).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.ping_interval, Duration::from_secs(15));
        assert_eq!(cfg.handshake_timeout, Duration::from_secs(10));
        assert_eq!(cfg.tcp_keepalive, Duration::from_secs(60));
        assert_eq!(cfg.keepalive(), Some(Duration::from_secs(60)));
        assert_eq!(cfg.max_unauthenticated_per_source, 1024);
        assert_eq!(cfg.audit_log, None);
        assert_eq!(cfg.databases[0].protocol, DbProtocol::Postgres);
        assert_eq!(cfg.routing_domains(), vec!["proxy.example.com", naming::INTERNAL_DOMAIN]);
    }

    #[test]
    fn old_forwarded_for_setting() {
        let text = format!("{SAMPLE}trust_x_forwarded_for: false\n");
        let cfg: Config = serde_yaml_ng::from_str(&text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(
            cfg.warnings(),
            ["trust_x_forwarded_for is deprecated and ignored: trusted_proxies decides whose X-Forwarded-For is \
              believed; remove it"]
        );
        let text =
            format!("{SAMPLE}trust_x_forwarded_for: true\ntrusted_proxies: [10.0.0.0/8, \"fd00::/8\", 192.0.2.7]\n");
        let cfg: Config = serde_yaml_ng::from_str(&text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.warnings().len(), 1);
        assert_eq!(cfg.trusted_proxy_nets().len(), 3);
        let cfg: Config = serde_yaml_ng::from_str(SAMPLE).unwrap();
        assert!(cfg.warnings().is_empty());
        assert_eq!(cfg.max_unauthenticated, 1024);
        assert!(!serde_yaml_ng::to_string(&cfg).unwrap().contains("trust_x_forwarded_for"));
    }

    #[test]
    fn wildcard_targets_that_cover_other_backends_are_reported() {
        let text = SAMPLE.replace(
            r#"nodes: [ { name: web1, addr: "127.0.0.1:22", allow: { groups: [ops] } } ]"#,
            r#"nodes: [ { name: web1, addr: "127.0.0.1:22", allow: { groups: [ops] } },
                      { name: any, targets: ["localhost:*", "10.0.0.5:*"] } ]"#,
        );
        let cfg: Config = serde_yaml_ng::from_str(&text).unwrap();
        cfg.validate().unwrap();
        let w = cfg.warnings();
        let cover = |what: &str| {
            format!("node any: target localhost:* also reaches {what} for everyone node any allows; list the node's ports instead of *")
        };
        assert_eq!(
            w,
            [
                cover("node web1 at 127.0.0.1:22"),
                cover("database pg1 at 127.0.0.1:5432"),
                cover("app grafana at 127.0.0.1:3000"),
                "node any: target localhost:* covers this server's own listening address 127.0.0.1:3080, which is \
                 refused when asked for"
                    .to_string(),
            ]
        );
        let cfg: Config = serde_yaml_ng::from_str(SAMPLE).unwrap();
        assert!(cfg.warnings().is_empty(), "no wildcard, no warning");
    }

    #[test]
    fn loopback_listener_with_a_public_address_is_reported() {
        let w = loopback_listen_warning("127.0.0.1:3080", "proxy.example.com:3080").unwrap();
        assert_eq!(
            w,
            "listen 127.0.0.1:3080 accepts connections from this machine only, but public_addr \
             proxy.example.com:3080 tells clients to come from elsewhere: they cannot connect. Set \
             `listen: 0.0.0.0:3080` (or `server init --listen`) unless a load balancer or tunnel on this machine \
             forwards to it"
        );
        assert!(loopback_listen_warning("[::1]:443", "10.0.0.5:443").is_some());
        for (listen, public) in [
            ("127.0.0.1:3080", "127.0.0.1:3080"),
            ("127.0.0.1:3080", "localhost:3080"),
            ("[::1]:3080", "[::1]:3080"),
            ("0.0.0.0:3080", "proxy.example.com:3080"),
            ("10.0.0.5:3080", "proxy.example.com:3080"),
        ] {
            assert_eq!(loopback_listen_warning(listen, public), None, "{listen} {public}");
        }
    }

    #[test]
    fn an_addr_that_is_a_url_says_host_port() {
        let text = SAMPLE.replace(r#"addr: "127.0.0.1:3000""#, r#"addr: "http://127.0.0.1:3000/""#);
        let cfg: Config = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            cfg.validate().unwrap_err(),
            r#"app "grafana": addr "http://127.0.0.1:3000/" is a URL; addr is HOST:PORT (e.g. "127.0.0.1:3000")"#
        );
        let text = SAMPLE.replace(r#"addr: "127.0.0.1:5432""#, r#"addr: "postgres://db:5432""#);
        let cfg: Config = serde_yaml_ng::from_str(&text).unwrap();
        assert!(cfg.validate().unwrap_err().starts_with(r#"database "pg1": addr "postgres://db:5432" is a URL"#));
    }

    #[test]
    fn an_empty_list_key_is_an_empty_list() {
        let text = SAMPLE.replace(
            r#"nodes: [ { name: web1, addr: "127.0.0.1:22", allow: { groups: [ops] } } ]"#,
            "nodes:\n#  - name: web1\ntrusted_proxies:\nkube:\n",
        );
        let cfg: Config = serde_yaml_ng::from_str(&text).unwrap();
        assert!(cfg.nodes.is_empty() && cfg.trusted_proxies.is_empty() && cfg.kube.is_empty());
    }

    #[test]
    fn own_listener_is_never_a_target() {
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        let none = |_: IpAddr| false;
        assert!(is_own_listener(sa("127.0.0.1:3080"), sa("127.0.0.1:3080"), none));
        assert!(is_own_listener(sa("127.0.0.1:3080"), sa("0.0.0.0:3080"), none));
        assert!(!is_own_listener(sa("127.0.0.1:3080"), sa("127.0.0.1:3081"), none));
        assert!(!is_own_listener(sa("127.0.0.1:3080"), sa("10.0.0.5:3080"), none));
        assert!(is_own_listener(sa("0.0.0.0:3080"), sa("127.0.0.1:3080"), none));
        assert!(is_own_listener(sa("0.0.0.0:3080"), sa("[::1]:3080"), none));
        assert!(is_own_listener(sa("[::]:3080"), sa("10.0.0.5:3080"), |ip| ip == "10.0.0.5".parse::<IpAddr>().unwrap()));
        assert!(!is_own_listener(sa("0.0.0.0:3080"), sa("10.0.0.6:3080"), none));
        assert!(is_own_listener(sa("[::ffff:127.0.0.1]:3080"), sa("127.0.0.1:3080"), none));
        assert!(is_local_address("127.0.0.1".parse().unwrap()));
        assert!(!is_local_address("192.0.2.77".parse().unwrap()), "TEST-NET-1 is nobody's");
        assert_eq!(
            own_listener_sentence("any", 3080, "p:443"),
            "port 3080 of node any is not allowed by proxy p:443: it is the proxy's own listening address"
        );
    }

    #[test]
    fn database_tls_for_postgres() {
        let text = SAMPLE.replace(
            r#"addr: "127.0.0.1:5432","#,
            r#"addr: "127.0.0.1:5432", tls: { ca: db-ca.pem, server_name: db.internal },"#,
        );
        let mut cfg: Config = serde_yaml_ng::from_str(&text).unwrap();
        cfg.validate().unwrap();
        cfg.resolve_paths(Path::new("/etc/oneport"));
        let tls = cfg.databases[0].tls.as_ref().unwrap();
        assert_eq!(tls.ca, Path::new("/etc/oneport/db-ca.pem"));
        assert_eq!(tls.server_name.as_deref(), Some("db.internal"));
    }

    #[test]
    fn allow_lists() {
        let allow = Allow { users: vec!["alice".into()], groups: vec!["ops".into()] };
        assert!(allow.permits(&caller("alice", &[])));
        assert!(allow.permits(&caller("bob", &["ops"])));
        assert!(!allow.permits(&caller("bob", &["dev"])));
        assert!(!Allow::default().permits(&caller("alice", &["ops"])));
    }

    #[test]
    fn rejects_bad_configs() {
        let bad = |edit: &dyn Fn(&mut Config), want: &str| {
            let mut cfg: Config = serde_yaml_ng::from_str(SAMPLE).unwrap();
            edit(&mut cfg);
            let err = cfg.validate().unwrap_err();
            assert!(err.contains(want), "{err} should contain {want}");
        };
        bad(&|c| c.nodes[0].name = "Web_1".into(), "not a DNS label");
        bad(&|c| c.apps.push(c.apps[0].clone()), "defined twice");
        bad(&|c| c.databases[0].addr = "nohost".into(), "database");
        bad(&|c| c.listen = "x".into(), "listen");
        bad(&|c| c.max_connections = 0, "max_connections");
        bad(&|c| c.workers = Some(0), "workers must be from 1 to 1024, got 0");
        bad(&|c| c.workers = Some(5000), "workers must be from 1 to 1024, got 5000");
        bad(&|c| c.max_connections = usize::MAX, "more than 1000000");
        bad(&|c| c.state_refresh = Duration::ZERO, "state_refresh");
        bad(&|c| c.ping_interval = std::time::Duration::from_secs(90 * 86400), "longer than a day");
        bad(
            &|c| {
                c.databases[0].protocol = DbProtocol::Mysql;
                c.databases[0].tls = Some(BackendTls { ca: "ca.pem".into(), server_name: None });
            },
            "not supported for mysql",
        );
        bad(&|c| c.nodes[0].name = "web--1".into(), "no '--'");
        bad(&|c| c.tcp_keepalive = Duration::from_millis(500), "tcp_keepalive must be at least 1s");
        bad(&|c| c.max_unauthenticated = 0, "max_unauthenticated must be from 1 to 1000000, got 0");
        bad(
            &|c| c.trusted_proxies = vec!["10.0.0.1/8".into()],
            "trusted_proxies: \"10.0.0.1/8\" has bits set after the first 8; did you mean 10.0.0.0/8?",
        );
        bad(&|c| c.trust_x_forwarded_for = Some(true), "trust_x_forwarded_for is replaced by trusted_proxies");
        let err = serde_yaml_ng::from_str::<Config>(&SAMPLE.replace("ping_interval", "pingg")).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    fn node(addr: Option<&str>, targets: &[&str]) -> Node {
        Node {
            name: "web1".into(),
            addr: addr.map(str::to_string),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            allow: Allow::default(),
        }
    }

    #[test]
    fn node_ports_follow_the_allow_list() {
        let n = node(Some("10.0.0.1:22"), &["10.0.0.2:2222", "127.0.0.1:*", "10.0.0.3:8022"]);
        assert_eq!(n.dial_addr(None).unwrap(), "10.0.0.1:22");
        assert_eq!(n.dial_addr(Some(22)).unwrap(), "10.0.0.1:22", "addr first");
        assert_eq!(n.dial_addr(Some(2222)).unwrap(), "10.0.0.2:2222", "first match in order");
        assert_eq!(n.dial_addr(Some(8022)).unwrap(), "127.0.0.1:8022", "the wildcard comes first");
        assert_eq!(n.dial_addr(Some(5)).unwrap(), "127.0.0.1:5");

        let n = node(Some("127.0.0.1:2222"), &["[::1]:*"]);
        assert_eq!(n.dial_addr(Some(2222)).unwrap(), "127.0.0.1:2222");
        assert_eq!(n.dial_addr(Some(2200)).unwrap(), "[::1]:2200");

        let fixed = node(Some("127.0.0.1:2222"), &["127.0.0.1:8022"]);
        let err = fixed.dial_addr(Some(2200)).unwrap_err();
        assert_eq!(err, PortRefusal { node: "web1".into(), port: Some(2200), allowed: vec![2222, 8022] });
        assert_eq!(
            err.sentence("p:3080"),
            "port 2200 of node web1 is not allowed by proxy p:3080; allowed ports: 2222, 8022"
        );

        // Without addr, "no port" means port 22 of a target.
        assert_eq!(node(None, &["127.0.0.1:*"]).dial_addr(None).unwrap(), "127.0.0.1:22");
        assert_eq!(node(None, &["10.0.0.9:22"]).dial_addr(None).unwrap(), "10.0.0.9:22");
        let err = node(None, &["10.0.0.9:2222"]).dial_addr(None).unwrap_err();
        assert!(err.sentence("p").contains("node web1 has no default address on proxy p"), "{err}");
        assert!(err.sentence("p").ends_with("allowed ports: 2222"), "{err}");
    }
}
