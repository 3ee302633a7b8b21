//! Wire names shared by client and server: ALPN protocol families (docs/protocol.md §2) and
//! the SNI scheme that names a resource under the proxy's routing domain.
//!
//! SNI scheme (our choice, see `docs/protocol.md` §3):
//! - node `web1`      → `web1.node.<domain>`; port 2222 of node `web1` →
//!   `web1--2222.node.<domain>` (names never contain `--`, so the split is unambiguous)
//! - database `pg1`   → `pg1.db.<domain>`
//! - app `grafana`    → `grafana.app.<domain>`
//! - kube cluster `dev` → `dev.kube-teleport-proxy-alpn.<domain>`; the bare
//!   `kube-teleport-proxy-alpn.<domain>` means "the only kube cluster".
//!
//! `<domain>` is the proxy's host name, or `teleport.cluster.local` when the proxy
//! is addressed by IP or as `localhost` (as the reference does).

use std::fmt;
use std::net::IpAddr;

/// The routing domain used when the proxy host is an IP address or `localhost`.
pub const INTERNAL_DOMAIN: &str = "teleport.cluster.local";
/// The SNI label that routes Kubernetes traffic (kubectl cannot set ALPN).
pub const KUBE_SNI_LABEL: &str = "kube-teleport-proxy-alpn";
/// Suffix of ALPN names that carry the ping framing of docs/protocol.md §6.
pub const PING_SUFFIX: &str = "-ping";
/// Suffix of ALPN names that carry a multiplexed session (HTTP/2 streams, one per
/// client connection; docs/protocol.md §13).
pub const MUX_SUFFIX: &str = "-mux";
/// The family name of multiplexed HTTP/1.1 (`teleport-http-mux`): `http/1.1` plus
/// `-mux` would not be a clean ALPN token (docs/protocol.md §2, §13).
pub const HTTP_MUX_FAMILY: &str = "teleport-http";
/// Separates a node's name from a requested port in its SNI label (`web1--2222`).
pub const PORT_SEPARATOR: &str = "--";
/// The port OpenSSH passes as `%p` when the user gave none. Asking for it (or for no
/// port) means "the node's own address", so the client never sends it to the proxy.
pub const SSH_DEFAULT_PORT: u16 = 22;

/// A protocol family, named on the wire by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// SSH to a node (`teleport-proxy-ssh`).
    ProxySsh,
    /// Reverse tunnel (`teleport-reversetunnel`); the server only answers the
    /// upgrade probe with it.
    ReverseTunnel,
    /// PostgreSQL wire protocol.
    Postgres,
    /// MySQL / MariaDB wire protocol.
    Mysql,
    /// MongoDB wire protocol.
    Mongodb,
    /// Redis wire protocol.
    Redis,
    /// A raw TCP application.
    Tcp,
    /// HTTP/1.1: the web API, HTTP apps and the upgrade endpoint.
    Http1,
    /// HTTP/2 on the web API.
    Http2,
}

impl Protocol {
    /// Every protocol the router knows, in no particular order.
    pub const ALL: [Protocol; 9] = [
        Protocol::ProxySsh,
        Protocol::ReverseTunnel,
        Protocol::Postgres,
        Protocol::Mysql,
        Protocol::Mongodb,
        Protocol::Redis,
        Protocol::Tcp,
        Protocol::Http1,
        Protocol::Http2,
    ];

    /// The plain ALPN name.
    pub fn alpn(self) -> &'static str {
        match self {
            Protocol::ProxySsh => "teleport-proxy-ssh",
            Protocol::ReverseTunnel => "teleport-reversetunnel",
            Protocol::Postgres => "teleport-postgres",
            Protocol::Mysql => "teleport-mysql",
            Protocol::Mongodb => "teleport-mongodb",
            Protocol::Redis => "teleport-redis",
            Protocol::Tcp => "teleport-tcp",
            Protocol::Http1 => "http/1.1",
            Protocol::Http2 => "h2",
        }
    }

    /// Whether the protocol has a `-ping` variant (docs/protocol.md §2).
    pub fn has_ping(self) -> bool {
        matches!(self, Protocol::Postgres | Protocol::Mysql | Protocol::Mongodb | Protocol::Redis | Protocol::Tcp)
    }

    /// Whether the protocol has a `-mux` variant (docs/protocol.md §13): the byte
    /// tunnels a local proxy opens many connections of, and HTTP/1.1 (HTTP apps and
    /// Kubernetes, as `teleport-http-mux`).
    pub fn has_mux(self) -> bool {
        matches!(
            self,
            Protocol::Postgres
                | Protocol::Mysql
                | Protocol::Mongodb
                | Protocol::Redis
                | Protocol::Tcp
                | Protocol::Http1
        )
    }

    /// The family name the `-mux` suffix is added to: the plain name, except
    /// `teleport-http` for HTTP/1.1.
    fn mux_family(self) -> &'static str {
        match self {
            Protocol::Http1 => HTTP_MUX_FAMILY,
            other => other.alpn(),
        }
    }

    /// The ALPN list a local proxy's kept-warm session offers: the `-mux` variant
    /// first, then what [`Protocol::client_offer`] offers (so a server without it
    /// negotiates the per-connection protocol).
    pub fn mux_offer(self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(3);
        if self.has_mux() {
            out.push(format!("{}{MUX_SUFFIX}", self.mux_family()).into_bytes());
        }
        out.extend(self.client_offer());
        out
    }

    /// The ALPN list a client offers: the ping variant first, then the plain name.
    pub fn client_offer(self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(2);
        if self.has_ping() {
            out.push(format!("{}{PING_SUFFIX}", self.alpn()).into_bytes());
        }
        out.push(self.alpn().as_bytes().to_vec());
        out
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpn())
    }
}

/// An ALPN entry understood by the router: a family and whether it is the ping or
/// the multiplexed variant (never both: a multiplexed session keeps alive with
/// HTTP/2 pings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Alpn {
    /// The family.
    pub protocol: Protocol,
    /// True for the `-ping` variant.
    pub ping: bool,
    /// True for the `-mux` variant.
    pub mux: bool,
}

impl Alpn {
    /// Parses one ALPN entry; `None` for names the router does not know.
    pub fn parse(raw: &[u8]) -> Option<Alpn> {
        let s = std::str::from_utf8(raw).ok()?;
        let (base, ping, mux) = if let Some(base) = s.strip_suffix(PING_SUFFIX) {
            (base, true, false)
        } else if let Some(base) = s.strip_suffix(MUX_SUFFIX) {
            (base, false, true)
        } else {
            (s, false, false)
        };
        // A `-mux` name is the family name plus the suffix (`teleport-http-mux`, never
        // `http/1.1-mux`).
        let protocol = Protocol::ALL.into_iter().find(|p| if mux { p.mux_family() } else { p.alpn() } == base)?;
        if (ping && !protocol.has_ping()) || (mux && !protocol.has_mux()) {
            return None;
        }
        Some(Alpn { protocol, ping, mux })
    }

    /// The plain, per-connection entry of `protocol`.
    pub fn plain(protocol: Protocol) -> Alpn {
        Alpn { protocol, ping: false, mux: false }
    }

    /// The wire bytes of this entry.
    pub fn to_bytes(self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Alpn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.mux { self.protocol.mux_family() } else { self.protocol.alpn() })?;
        if self.ping {
            f.write_str(PING_SUFFIX)?;
        }
        if self.mux {
            f.write_str(MUX_SUFFIX)?;
        }
        Ok(())
    }
}

/// The kind of a routed resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An SSH node.
    Node,
    /// A database.
    Db,
    /// An HTTP or TCP application.
    App,
    /// A Kubernetes cluster.
    Kube,
}

impl Kind {
    /// Every kind, in listing order.
    pub const ALL: [Kind; 4] = [Kind::Node, Kind::Db, Kind::App, Kind::Kube];

    /// The wire name (web API `kind=`, JSON, `doctor --resource KIND/NAME`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Db => "db",
            Kind::App => "app",
            Kind::Kube => "kube",
        }
    }

    /// The SNI label for this kind.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Db => "db",
            Kind::App => "app",
            Kind::Kube => KUBE_SNI_LABEL,
        }
    }

    /// The word used in messages ("node web1", "database pg1").
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Db => "database",
            Kind::App => "app",
            Kind::Kube => "kube cluster",
        }
    }
}

impl fmt::Display for Kind {
    /// The word used in messages ([`Kind::noun`]); [`Kind::as_str`] is the wire name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    /// Parses the wire name ([`Kind::as_str`]).
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a resource kind (node, db, app or kube)"))
    }
}

/// Kinds of application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// An HTTP application (`http/1.1` on the wire).
    Http,
    /// A raw TCP application (`teleport-tcp`).
    Tcp,
}

impl AppKind {
    /// The ALPN family a client speaks to this kind of app.
    pub fn protocol(self) -> Protocol {
        match self {
            AppKind::Http => Protocol::Http1,
            AppKind::Tcp => Protocol::Tcp,
        }
    }

    /// The config and listing name (`http`, `tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::Http => "http",
            AppKind::Tcp => "tcp",
        }
    }
}

impl std::fmt::Display for AppKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AppKind {
    type Err = String;

    fn from_str(s: &str) -> Result<AppKind, String> {
        match s {
            "http" => Ok(AppKind::Http),
            "tcp" => Ok(AppKind::Tcp),
            _ => Err(format!("{s:?} is not an app kind (http or tcp)")),
        }
    }
}

/// One resource, as a request names it: its kind, its name and, for a node, the
/// port asked for (`None`: the node's own address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceRef {
    /// The kind.
    pub kind: Kind,
    /// The name.
    pub name: String,
    /// The node port asked for, if any.
    pub port: Option<u16>,
}

impl ResourceRef {
    /// Resource `name` of `kind`, at its own address.
    pub fn new(kind: Kind, name: impl Into<String>) -> ResourceRef {
        ResourceRef { kind, name: name.into(), port: None }
    }

    /// The same resource reached on `port` (`None`: its own address).
    pub fn at(self, port: Option<u16>) -> ResourceRef {
        ResourceRef { port, ..self }
    }
}

impl fmt::Display for ResourceRef {
    /// "node web1", "node web1 port 2222", "database pg1".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.noun(), self.name)?;
        match self.port {
            Some(p) => write!(f, " port {p}"),
            None => Ok(()),
        }
    }
}

/// The routing domain for a proxy host (see the module docs).
pub fn routing_domain(proxy_host: &str) -> String {
    let host = proxy_host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost") {
        INTERNAL_DOMAIN.to_string()
    } else {
        host.trim_end_matches('.').to_ascii_lowercase()
    }
}

/// The SNI that names resource `name` of `kind` under `domain`.
pub fn resource_sni(kind: Kind, name: &str, domain: &str) -> String {
    format!("{name}.{}.{domain}", kind.label())
}

/// The SNI of node `name`, asking for `port` on it when given (`web1--2222.node.<domain>`).
/// The label stays one DNS label, so the server's `*.node.<domain>` certificate covers it.
pub fn node_sni(name: &str, port: Option<u16>, domain: &str) -> String {
    match port {
        Some(p) => format!("{name}{PORT_SEPARATOR}{p}.{}.{domain}", Kind::Node.label()),
        None => resource_sni(Kind::Node, name, domain),
    }
}

/// The names a server certificate must cover to route everything under `domain`.
pub fn server_cert_names(domain: &str) -> Vec<String> {
    let mut names = vec![domain.to_string(), format!("*.{domain}")];
    for kind in [Kind::Node, Kind::Db, Kind::App, Kind::Kube] {
        names.push(format!("*.{}.{domain}", kind.label()));
    }
    names.push(format!("{KUBE_SNI_LABEL}.{domain}"));
    names
}

/// What an SNI names, as seen by the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SniTarget {
    /// A resource of a kind; `name` is `None` only for the bare kube label.
    Resource {
        /// The kind.
        kind: Kind,
        /// The resource name.
        name: Option<String>,
        /// A port the client asks for (nodes only, `web1--2222`).
        port: Option<u16>,
    },
    /// The proxy itself (the domain, the public host, or no SNI).
    Proxy,
    /// A name outside every routing domain.
    Foreign,
}

/// Splits an SNI into what it names, given the server's routing domains.
pub fn parse_sni(sni: Option<&str>, domains: &[String]) -> SniTarget {
    let Some(sni) = sni else {
        return SniTarget::Proxy;
    };
    let sni = sni.trim_end_matches('.').to_ascii_lowercase();
    for domain in domains {
        if sni == *domain {
            return SniTarget::Proxy;
        }
        let Some(prefix) = sni.strip_suffix(domain.as_str()).and_then(|p| p.strip_suffix('.')) else {
            continue;
        };
        if prefix == KUBE_SNI_LABEL {
            return SniTarget::Resource { kind: Kind::Kube, name: None, port: None };
        }
        let Some((name, label)) = prefix.split_once('.') else {
            return SniTarget::Foreign;
        };
        let kind = match label {
            "node" => Kind::Node,
            "db" => Kind::Db,
            "app" => Kind::App,
            KUBE_SNI_LABEL => Kind::Kube,
            _ => return SniTarget::Foreign,
        };
        let (name, port) = match name.split_once(PORT_SEPARATOR) {
            Some((name, port)) if kind == Kind::Node => match parse_port(port) {
                Some(p) => (name, Some(p)),
                None => return SniTarget::Foreign,
            },
            _ => (name, None),
        };
        if !valid_name(name) {
            return SniTarget::Foreign;
        }
        return SniTarget::Resource { kind, name: Some(name.to_string()), port };
    }
    SniTarget::Foreign
}

/// A port in an SNI label: decimal, 1 to 65535, no sign and no leading zero (one
/// spelling per port, so a port cannot hide behind `00022`).
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok()
}

/// Whether `name` can name a resource: one DNS label of lowercase letters,
/// digits and `-`, not starting or ending with `-`, without `--` (which separates
/// a port in node SNIs), at most 63 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains(PORT_SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec!["proxy.example.com".into(), INTERNAL_DOMAIN.into()]
    }

    #[test]
    fn offers_ping_variant_first() {
        assert_eq!(
            Protocol::Postgres.client_offer(),
            vec![b"teleport-postgres-ping".to_vec(), b"teleport-postgres".to_vec()]
        );
        assert_eq!(Protocol::ProxySsh.client_offer(), vec![b"teleport-proxy-ssh".to_vec()]);
    }

    #[test]
    fn parses_alpn_entries() {
        assert_eq!(Alpn::parse(b"teleport-tcp-ping"), Some(Alpn { protocol: Protocol::Tcp, ping: true, mux: false }));
        assert_eq!(Alpn::parse(b"http/1.1"), Some(Alpn::plain(Protocol::Http1)));
        assert_eq!(
            Alpn::parse(b"teleport-postgres-mux"),
            Some(Alpn { protocol: Protocol::Postgres, ping: false, mux: true })
        );
        assert_eq!(Alpn::parse(b"teleport-proxy-ssh-mux"), None, "ssh has no multiplexed variant");
        assert_eq!(Alpn::parse(b"teleport-tcp-mux-ping"), None);
        assert_eq!(
            Protocol::Mysql.mux_offer(),
            vec![b"teleport-mysql-mux".to_vec(), b"teleport-mysql-ping".to_vec(), b"teleport-mysql".to_vec()]
        );
        assert_eq!(Alpn::parse(b"teleport-proxy-ssh-ping"), None, "ssh has no ping variant");
        assert_eq!(Alpn::parse(b"spdy/3"), None);
        assert_eq!(Alpn::parse(&[0xff, 0xfe]), None);
        for p in Protocol::ALL {
            for raw in p.client_offer() {
                assert_eq!(Alpn::parse(&raw).map(|a| a.to_bytes()), Some(raw));
            }
        }
    }

    #[test]
    fn http_mux_is_teleport_http_mux() {
        let http_mux = Alpn { protocol: Protocol::Http1, ping: false, mux: true };
        assert_eq!(Alpn::parse(b"teleport-http-mux"), Some(http_mux));
        assert_eq!(http_mux.to_string(), "teleport-http-mux");
        assert_eq!(http_mux.to_bytes(), b"teleport-http-mux".to_vec());
        assert_eq!(Alpn::parse(b"http/1.1-mux"), None, "not a clean token");
        assert_eq!(Alpn::parse(b"teleport-http"), None, "only the -mux name uses the family name");
        assert_eq!(Alpn::parse(b"teleport-http-ping"), None);
        assert_eq!(Alpn::parse(b"h2-mux"), None);
        assert_eq!(Protocol::Http1.mux_offer(), vec![b"teleport-http-mux".to_vec(), b"http/1.1".to_vec()]);
        assert!(Protocol::Http1.has_mux() && !Protocol::Http2.has_mux() && !Protocol::ProxySsh.has_mux());
        for p in Protocol::ALL {
            for raw in p.mux_offer() {
                assert_eq!(Alpn::parse(&raw).map(|a| a.to_bytes()), Some(raw));
            }
        }
    }

    #[test]
    fn routing_domain_for_ip_and_localhost() {
        assert_eq!(routing_domain("127.0.0.1"), INTERNAL_DOMAIN);
        assert_eq!(routing_domain("[::1]"), INTERNAL_DOMAIN);
        assert_eq!(routing_domain("LocalHost"), INTERNAL_DOMAIN);
        assert_eq!(routing_domain("Proxy.Example.com."), "proxy.example.com");
    }

    #[test]
    fn sni_round_trip() {
        for kind in [Kind::Node, Kind::Db, Kind::App, Kind::Kube] {
            let sni = resource_sni(kind, "pg-1", INTERNAL_DOMAIN);
            assert_eq!(
                parse_sni(Some(&sni), &domains()),
                SniTarget::Resource { kind, name: Some("pg-1".into()), port: None }
            );
        }
    }

    #[test]
    fn node_sni_carries_a_port() {
        let d = domains();
        assert_eq!(node_sni("web1", None, "p.example"), "web1.node.p.example");
        assert_eq!(node_sni("web1", Some(2222), "p.example"), "web1--2222.node.p.example");
        for port in [None, Some(1), Some(22), Some(2222), Some(65535)] {
            let sni = node_sni("web-1", port, INTERNAL_DOMAIN);
            assert_eq!(
                parse_sni(Some(&sni), &d),
                SniTarget::Resource { kind: Kind::Node, name: Some("web-1".into()), port }
            );
        }
        let foreign = |s: &str| assert_eq!(parse_sni(Some(s), &d), SniTarget::Foreign, "{s}");
        foreign("web1--0.node.proxy.example.com");
        foreign("web1--022.node.proxy.example.com");
        foreign("web1--65536.node.proxy.example.com");
        foreign("web1--.node.proxy.example.com");
        foreign("web1--+22.node.proxy.example.com");
        foreign("web1--22--23.node.proxy.example.com");
        foreign("--22.node.proxy.example.com");
        foreign("web1--x.node.proxy.example.com");
        // Only nodes take a port.
        foreign("pg1--5432.db.proxy.example.com");
        foreign("grafana--80.app.proxy.example.com");
    }

    #[test]
    fn sni_edge_cases() {
        let d = domains();
        assert_eq!(parse_sni(None, &d), SniTarget::Proxy);
        assert_eq!(parse_sni(Some("proxy.example.com"), &d), SniTarget::Proxy);
        assert_eq!(
            parse_sni(Some("WEB1.NODE.proxy.example.com."), &d),
            parse_sni(Some("web1.node.proxy.example.com"), &d)
        );
        assert_eq!(
            parse_sni(Some("kube-teleport-proxy-alpn.teleport.cluster.local"), &d),
            SniTarget::Resource { kind: Kind::Kube, name: None, port: None }
        );
        assert_eq!(parse_sni(Some("web1.other.proxy.example.com"), &d), SniTarget::Foreign);
        assert_eq!(parse_sni(Some("a.b.node.proxy.example.com"), &d), SniTarget::Foreign);
        assert_eq!(parse_sni(Some("evil.com"), &d), SniTarget::Foreign);
        assert_eq!(parse_sni(Some("xproxy.example.com"), &d), SniTarget::Foreign);
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(valid_name("web1"));
        assert!(valid_name("pg-main"));
        assert!(!valid_name(""));
        assert!(!valid_name("-a"));
        assert!(!valid_name("Web1"));
        assert!(!valid_name("a.b"));
        assert!(!valid_name(&"a".repeat(64)));
        assert!(!valid_name("web--1"), "`--` separates a port in node SNIs");
        assert!(valid_name("a-b-c"));
    }

    #[test]
    fn cert_names_cover_every_kind() {
        let names = server_cert_names("p.example");
        assert!(names.contains(&"*.db.p.example".to_string()));
        assert!(names.contains(&"kube-teleport-proxy-alpn.p.example".to_string()));
        assert!(names.contains(&"*.kube-teleport-proxy-alpn.p.example".to_string()));
    }

    #[test]
    fn kind_wire_names_round_trip_and_match_serde() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert!("database".parse::<Kind>().unwrap_err().contains("node, db, app or kube"));
    }

    #[test]
    fn resource_ref_names_the_port_only_when_asked() {
        let r = ResourceRef::new(Kind::Node, "web1");
        assert_eq!(r.to_string(), "node web1");
        assert_eq!(r.at(Some(2222)).to_string(), "node web1 port 2222");
    }
    #[test]
    fn app_kind_names_match_serde_and_protocols() {
        for k in [AppKind::Http, AppKind::Tcp] {
            assert_eq!(k.as_str().parse::<AppKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert!("udp".parse::<AppKind>().is_err());
        assert_eq!(AppKind::Http.protocol(), Protocol::Http1);
        assert_eq!(AppKind::Tcp.protocol(), Protocol::Tcp);
    }
}
