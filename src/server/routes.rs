//! Route choice, a pure function of the configuration, the SNI and the client's ALPN
//! list: walk the client's list in its order, take the first entry with a route
//! (docs/protocol.md §2), and name the resource from the SNI. No I/O here.

use std::collections::BTreeMap;

use crate::proto::naming::{self, Alpn, Kind, Protocol, SniTarget};
use crate::server::config::{self, Allow, App, AppKind, Config, Database, Kube, Node};

/// What a connection is routed to.
#[derive(Debug, Clone)]
pub enum Route {
    /// The web API (`/webapi/*`), over HTTP/1.1 or HTTP/2.
    Web {
        /// True when `h2` was negotiated.
        h2: bool,
    },
    /// The upgrade probe's `teleport-reversetunnel`: finish the handshake (so the
    /// client sees its ALPN negotiated and knows no upgrade is needed), then close.
    Probe,
    /// A configured resource.
    Resource(Box<ResourceRoute>),
    /// A routable protocol but a resource that does not exist or does not speak it:
    /// the handshake ends with `access_denied` once the client is authenticated.
    Refuse {
        /// The ALPN to negotiate.
        alpn: Alpn,
        /// Why, for the log.
        reason: String,
    },
    /// The auth route (`teleport-auth@<hex(cluster)>.teleport.cluster.local`):
    /// enrollment and renewal.
    Auth,
    /// No ALPN entry the router knows: `no_application_protocol`.
    NoProtocol,
}

/// A resource and how to reach it.
#[derive(Debug, Clone)]
pub struct ResourceRoute {
    /// The negotiated ALPN.
    pub alpn: Alpn,
    /// The kind.
    pub kind: Kind,
    /// The name.
    pub name: String,
    /// Who may use it.
    pub allow: Allow,
    /// Where it is.
    pub target: Target,
}

/// Where a resource is.
#[derive(Debug, Clone)]
pub enum Target {
    /// An SSH node, and the address chosen for the port the client asked for.
    Node {
        /// The node.
        node: Node,
        /// The address to dial (allowed by the node's `addr` or `targets`).
        addr: String,
    },
    /// A database.
    Database(Database),
    /// An application (HTTP or TCP; both relayed as bytes).
    App(App),
    /// A Kubernetes cluster (served by the impersonating backend).
    Kube(Kube),
}

/// The routing table built from the config.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Domains the server answers for.
    pub domains: Vec<String>,
    /// The auth route's ALPN for this cluster.
    pub auth_alpn: Vec<u8>,
    nodes: BTreeMap<String, Node>,
    databases: BTreeMap<String, Database>,
    apps: BTreeMap<String, App>,
    kube: BTreeMap<String, Kube>,
    /// Whether `-mux` entries are routed (config `mux.enabled`).
    mux: bool,
    /// The server's own listening address, never dialled as a node target.
    listen: Option<std::net::SocketAddr>,
}

impl Table {
    /// Builds the table.
    pub fn new(cfg: &Config) -> Table {
        Table {
            domains: cfg.routing_domains(),
            auth_alpn: crate::proto::auth::alpn(&cfg.cluster_name).into_bytes(),
            nodes: cfg.nodes.iter().map(|n| (n.name.clone(), n.clone())).collect(),
            databases: cfg.databases.iter().map(|d| (d.name.clone(), d.clone())).collect(),
            apps: cfg.apps.iter().map(|a| (a.name.clone(), a.clone())).collect(),
            kube: cfg.kube.iter().map(|k| (k.name.clone(), k.clone())).collect(),
            mux: cfg.mux.enabled,
            listen: cfg.listen.parse().ok(),
        }
    }

    /// Whether `addr` (`host:port`) is the server's own listener, judged without DNS
    /// (IP literals and `localhost`); names are checked again at dial time.
    pub fn is_own_listener(&self, addr: &str) -> bool {
        let Some(listen) = self.listen else { return false };
        let Ok(hp) = crate::util::addr::HostPort::parse(addr) else { return false };
        let host = hp.host.trim_start_matches('[').trim_end_matches(']');
        let ip = if host.eq_ignore_ascii_case("localhost") {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            match host.parse() {
                Ok(ip) => ip,
                Err(_) => return false,
            }
        };
        config::is_own_listener(listen, std::net::SocketAddr::new(ip, hp.port), config::is_local_address)
    }

    /// The server's own listening address.
    pub fn listen(&self) -> Option<std::net::SocketAddr> {
        self.listen
    }

    /// Names of the resources of `kind`, sorted.
    pub fn names(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::Node => self.nodes.keys().cloned().collect(),
            Kind::Db => self.databases.keys().cloned().collect(),
            Kind::App => self.apps.keys().cloned().collect(),
            Kind::Kube => self.kube.keys().cloned().collect(),
        }
    }

    /// A node, if it exists.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// A database, if it exists.
    pub fn database(&self, name: &str) -> Option<&Database> {
        self.databases.get(name)
    }

    /// An app, if it exists.
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.get(name)
    }

    /// The allow-list of a resource, if it exists.
    pub fn allow_of(&self, kind: Kind, name: &str) -> Option<&Allow> {
        match kind {
            Kind::Node => self.nodes.get(name).map(|n| &n.allow),
            Kind::Db => self.databases.get(name).map(|d| &d.allow),
            Kind::App => self.apps.get(name).map(|a| &a.allow),
            Kind::Kube => self.kube.get(name).map(|k| &k.allow),
        }
    }

    /// Every resource, for listings: (kind, name, protocol or app kind, allow).
    pub fn all(&self) -> Vec<(Kind, String, String, &Allow)> {
        let mut out = Vec::new();
        out.extend(self.nodes.values().map(|n| (Kind::Node, n.name.clone(), "ssh".to_string(), &n.allow)));
        out.extend(
            self.databases.values().map(|d| (Kind::Db, d.name.clone(), d.protocol.as_str().to_string(), &d.allow)),
        );
        out.extend(self.apps.values().map(|a| (Kind::App, a.name.clone(), a.kind.as_str().to_string(), &a.allow)));
        out.extend(self.kube.values().map(|k| (Kind::Kube, k.name.clone(), "kubernetes".to_string(), &k.allow)));
        out
    }

    /// Chooses the route for a ClientHello.
    pub fn decide<'a>(&self, sni: Option<&str>, offered: impl IntoIterator<Item = &'a [u8]>) -> Route {
        let target = naming::parse_sni(sni, &self.domains);
        let mut offered: Vec<&[u8]> = offered.into_iter().collect();
        if offered.is_empty() {
            offered.push(b"http/1.1"); // no ALPN counts as http/1.1
        }
        for raw in offered {
            if raw == self.auth_alpn.as_slice() {
                return Route::Auth;
            }
            let Some(alpn) = Alpn::parse(raw) else { continue };
            if alpn.mux && !self.mux {
                continue; // as a server that does not know the name
            }
            if let Some(route) = self.route_for(alpn, &target) {
                return route;
            }
        }
        Route::NoProtocol
    }

    /// The route for one ALPN entry, or `None` to try the client's next entry.
    fn route_for(&self, alpn: Alpn, target: &SniTarget) -> Option<Route> {
        let (named, port) = match target {
            SniTarget::Resource { kind, name, port } => (Some((*kind, name.as_deref())), *port),
            _ => (None, None),
        };
        let want_kind = match alpn.protocol {
            Protocol::ReverseTunnel => return Some(Route::Probe),
            Protocol::Http2 => return if named.is_some() { None } else { Some(Route::Web { h2: true }) },
            Protocol::Http1 => match named {
                // `teleport-http-mux` carries HTTP apps and Kubernetes only, never the web API.
                None if alpn.mux => return None,
                None => return Some(Route::Web { h2: false }),
                Some((Kind::App, _)) => Kind::App,
                Some((Kind::Kube, _)) => Kind::Kube,
                Some((kind, name)) => {
                    return Some(refuse(alpn, format!("{kind} {} cannot be reached over HTTP", name.unwrap_or(""))))
                }
            },
            Protocol::ProxySsh => Kind::Node,
            Protocol::Postgres | Protocol::Mysql | Protocol::Mongodb | Protocol::Redis => Kind::Db,
            Protocol::Tcp => Kind::App,
        };
        let Some((kind, name)) = named else {
            return Some(refuse(alpn, format!("{alpn} needs a {} named in the SNI, got {target:?}", want_kind.noun())));
        };
        if kind != want_kind {
            return Some(refuse(alpn, format!("{alpn} cannot reach {kind} {}", name.unwrap_or(""))));
        }
        Some(self.lookup(alpn, kind, name, port))
    }

    fn lookup(&self, alpn: Alpn, kind: Kind, name: Option<&str>, port: Option<u16>) -> Route {
        let unknown = |name: &str| refuse(alpn, format!("{} {name:?} is not configured", kind.noun()));
        let name = match (kind, name) {
            (_, Some(n)) => n.to_string(),
            (Kind::Kube, None) if self.kube.len() == 1 => self.kube.keys().next().cloned().unwrap_or_default(),
            (_, None) => return refuse(alpn, "the SNI names no kube cluster and more than one is configured".into()),
        };
        let (allow, target) = match kind {
            // A port outside the node's `addr`/`targets` is refused here, before any dial.
            Kind::Node => match self.nodes.get(&name).map(|n| (n, n.dial_addr(port))) {
                Some((_, Ok(addr))) if self.is_own_listener(&addr) => {
                    let port = crate::util::addr::HostPort::parse(&addr).map(|h| h.port).unwrap_or_default();
                    return refuse(alpn, config::own_listener_sentence(&name, port, "this proxy"));
                }
                Some((n, Ok(addr))) => (n.allow.clone(), Target::Node { node: n.clone(), addr }),
                Some((_, Err(refusal))) => return refuse(alpn, refusal.to_string()),
                None => return unknown(&name),
            },
            Kind::Db => match self.databases.get(&name) {
                Some(d) if d.protocol.protocol() == alpn.protocol => (d.allow.clone(), Target::Database(d.clone())),
                Some(d) => {
                    return refuse(alpn, format!("database {name:?} speaks {:?}, not {}", d.protocol, alpn.protocol))
                }
                None => return unknown(&name),
            },
            Kind::App => match self.apps.get(&name) {
                Some(a) if (a.kind == AppKind::Http) == (alpn.protocol == Protocol::Http1) => {
                    (a.allow.clone(), Target::App(a.clone()))
                }
                Some(a) => {
                    return refuse(alpn, format!("app {name:?} is a {:?} app, not reachable with {alpn}", a.kind))
                }
                None => return unknown(&name),
            },
            Kind::Kube => match self.kube.get(&name) {
                Some(k) => (k.allow.clone(), Target::Kube(k.clone())),
                None => return unknown(&name),
            },
        };
        Route::Resource(Box::new(ResourceRoute { alpn, kind, name, allow, target }))
    }
}

fn refuse(alpn: Alpn, reason: String) -> Route {
    Route::Refuse { alpn, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let cfg: Config = serde_yaml_ng::from_str(
            r#"
listen: 127.0.0.1:3080
public_addr: 127.0.0.1:3080
cluster_name: t
tls: { cert: a, key: b, client_ca: c }
nodes: [ { name: web1, addr: "127.0.0.1:22" }, { name: any, targets: ["127.0.0.1:*"] } ]
databases: [ { name: pg1, protocol: postgres, addr: "127.0.0.1:5432" } ]
apps: [ { name: echo, kind: tcp, addr: "127.0.0.1:7" }, { name: site, kind: http, addr: "127.0.0.1:80" } ]
kube: [ { name: dev, api_server: "https://127.0.0.1:6443" } ]
"#,
        )
        .unwrap();
        Table::new(&cfg)
    }

    fn sni(kind: Kind, name: &str) -> String {
        naming::resource_sni(kind, name, naming::INTERNAL_DOMAIN)
    }

    fn res(r: Route) -> (Kind, String, String) {
        match r {
            Route::Resource(r) => (r.kind, r.name.clone(), r.alpn.to_string()),
            other => panic!("expected a resource route, got {other:?}"),
        }
    }

    #[test]
    fn takes_the_clients_first_routable_entry() {
        let t = table();
        let s = sni(Kind::Db, "pg1");
        let r = t.decide(Some(&s), [&b"bogus"[..], b"teleport-postgres-ping", b"teleport-postgres"]);
        assert_eq!(res(r), (Kind::Db, "pg1".into(), "teleport-postgres-ping".into()));
        let s = sni(Kind::App, "echo");
        assert_eq!(res(t.decide(Some(&s), [&b"teleport-tcp"[..]])).2, "teleport-tcp");
    }

    #[test]
    fn web_and_probe() {
        let t = table();
        assert!(matches!(t.decide(None, []), Route::Web { h2: false }));
        assert!(matches!(t.decide(Some("127.0.0.1"), [&b"h2"[..], b"http/1.1"]), Route::Web { h2: true }));
        assert!(matches!(t.decide(None, [&b"teleport-reversetunnel"[..]]), Route::Probe));
        let auth = crate::proto::auth::alpn("t");
        assert!(matches!(t.decide(None, [&b"bogus"[..], auth.as_bytes()]), Route::Auth));
        let other = crate::proto::auth::alpn("other");
        assert!(matches!(t.decide(None, [other.as_bytes()]), Route::NoProtocol));
    }

    #[test]
    fn http_to_resources_skips_h2() {
        let t = table();
        let s = sni(Kind::App, "site");
        assert_eq!(res(t.decide(Some(&s), [&b"h2"[..], b"http/1.1"])).1, "site");
        let bare = format!("{}.{}", naming::KUBE_SNI_LABEL, naming::INTERNAL_DOMAIN);
        assert_eq!(res(t.decide(Some(&bare), [&b"h2"[..], b"http/1.1"])).1, "dev");
        assert_eq!(res(t.decide(Some(&sni(Kind::Kube, "dev")), [])).0, Kind::Kube);
    }

    #[test]
    fn http_mux_reaches_http_apps_and_kube_only() {
        let t = table();
        let offer = [&b"teleport-http-mux"[..], b"http/1.1"];
        assert_eq!(res(t.decide(Some(&sni(Kind::App, "site")), offer)).2, "teleport-http-mux");
        assert_eq!(
            res(t.decide(Some(&sni(Kind::Kube, "dev")), offer)),
            (Kind::Kube, "dev".into(), "teleport-http-mux".into())
        );
        // Never the web API: the plain entry after it is taken.
        assert!(matches!(t.decide(None, offer), Route::Web { h2: false }));
        assert!(matches!(t.decide(None, [&b"teleport-http-mux"[..]]), Route::NoProtocol));
        assert!(matches!(t.decide(Some(&sni(Kind::App, "echo")), offer), Route::Refuse { .. }), "a TCP app");
        let mut cfg_off = t.clone();
        cfg_off.mux = false;
        assert_eq!(res(cfg_off.decide(Some(&sni(Kind::App, "site")), offer)).2, "http/1.1");
    }

    #[test]
    fn node_ports() {
        let t = table();
        let ssh = [&b"teleport-proxy-ssh"[..]];
        let addr = |r: Route| match r {
            Route::Resource(r) => match r.target {
                Target::Node { addr, .. } => addr,
                other => panic!("expected a node, got {other:?}"),
            },
            other => panic!("expected a node route, got {other:?}"),
        };
        let node = |name: &str, port| naming::node_sni(name, port, naming::INTERNAL_DOMAIN);
        assert_eq!(addr(t.decide(Some(&node("web1", None)), ssh)), "127.0.0.1:22");
        assert_eq!(addr(t.decide(Some(&node("web1", Some(22))), ssh)), "127.0.0.1:22");
        assert_eq!(addr(t.decide(Some(&node("any", None)), ssh)), "127.0.0.1:22");
        assert_eq!(addr(t.decide(Some(&node("any", Some(2222))), ssh)), "127.0.0.1:2222");
        // The wildcard never reaches the server's own listener (127.0.0.1:3080).
        match t.decide(Some(&node("any", Some(3080))), ssh) {
            Route::Refuse { reason, .. } => assert_eq!(
                reason,
                "port 3080 of node any is not allowed by proxy this proxy: it is the proxy's own listening address"
            ),
            other => panic!("expected refuse, got {other:?}"),
        }
        assert_eq!(addr(t.decide(Some(&node("any", Some(3081))), ssh)), "127.0.0.1:3081");
        match t.decide(Some(&node("web1", Some(2222))), ssh) {
            Route::Refuse { reason, .. } => {
                assert!(reason.contains("port 2222 of node web1 is not allowed"), "{reason}")
            }
            other => panic!("expected refuse, got {other:?}"),
        }
    }

    #[test]
    fn refusals() {
        let t = table();
        let is_refuse = |r: Route, want: &str| match r {
            Route::Refuse { reason, .. } => assert!(reason.contains(want), "{reason} should contain {want}"),
            other => panic!("expected refuse, got {other:?}"),
        };
        is_refuse(t.decide(Some(&sni(Kind::Node, "web9")), [&b"teleport-proxy-ssh"[..]]), "not configured");
        is_refuse(t.decide(Some(&sni(Kind::Db, "pg1")), [&b"teleport-mysql"[..]]), "speaks");
        is_refuse(t.decide(Some(&sni(Kind::App, "site")), [&b"teleport-tcp"[..]]), "not reachable");
        is_refuse(t.decide(None, [&b"teleport-proxy-ssh"[..]]), "needs a node");
        is_refuse(t.decide(Some(&sni(Kind::Db, "pg1")), [&b"teleport-proxy-ssh"[..]]), "cannot reach");
        assert!(matches!(t.decide(Some(&sni(Kind::Db, "pg1")), [&b"spdy/3"[..]]), Route::NoProtocol));
    }
}
