//! `server init` and `server issue` as library calls: make the CA, the server
//! certificate and a commented `server.yaml`; issue identity files.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::identity::pki::{self, CertAndKey};
use crate::proto::naming;
use crate::util::addr::HostPort;
use crate::util::fsutil;

/// File names inside a server directory.
pub mod files {
    /// CA certificate.
    pub const CA: &str = "ca.pem";
    /// CA key (0600).
    pub const CA_KEY: &str = "ca-key.pem";
    /// Server certificate.
    pub const CERT: &str = "server.pem";
    /// Server key (0600).
    pub const KEY: &str = "server-key.pem";
    /// Server config.
    pub const CONFIG: &str = "server.yaml";
}

/// Options of `server init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The address clients use.
    pub public_addr: HostPort,
    /// The cluster name (default: the public host).
    pub cluster_name: Option<String>,
    /// The listen address written into the config.
    pub listen: String,
    /// Extra DNS names or IPs for the server certificate.
    pub extra_names: Vec<String>,
    /// Replace an existing CA.
    pub force: bool,
}

/// Makes a server directory; returns the config path.
///
/// # Errors
/// When files exist (without `force`) or cannot be written.
pub fn init(dir: &Path, o: &InitOptions) -> Result<PathBuf> {
    let ca_key = dir.join(files::CA_KEY);
    if ca_key.exists() && !o.force {
        return Err(Error::config(format!(
            "{} exists: this directory already has a CA (use --force to replace it and invalidate every identity it issued)",
            ca_key.display()
        )));
    }
    fsutil::create_private_dir(dir)?;
    let cluster = o.cluster_name.clone().unwrap_or_else(|| o.public_addr.host.clone());
    let ca = pki::make_ca(&cluster)?;
    let (dns, ips) = server_names(&o.public_addr.host, &o.extra_names);
    let server = pki::make_server_cert(&ca, &dns, &ips, pki::SERVER_VALIDITY)?;
    fsutil::write_public(&dir.join(files::CA), ca.cert_pem.as_bytes())?;
    fsutil::write_private(&ca_key, ca.key_pem.as_bytes())?;
    fsutil::write_public(&dir.join(files::CERT), server.cert_pem.as_bytes())?;
    fsutil::write_private(&dir.join(files::KEY), server.key_pem.as_bytes())?;
    let cfg = dir.join(files::CONFIG);
    fsutil::write_public(&cfg, config_template(&o.listen, &o.public_addr, &cluster).as_bytes())?;
    Ok(cfg)
}

/// The DNS names and IPs a server certificate covers for `public_host`.
pub fn server_names(public_host: &str, extra: &[String]) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    let host = public_host.trim_start_matches('[').trim_end_matches(']');
    for name in std::iter::once(host).chain(extra.iter().map(String::as_str)) {
        match name.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(name.to_ascii_lowercase()),
        }
    }
    let domain = naming::routing_domain(host);
    dns.extend(naming::server_cert_names(&domain));
    if domain != naming::INTERNAL_DOMAIN {
        dns.extend(naming::server_cert_names(naming::INTERNAL_DOMAIN));
    }
    dns.push("localhost".into());
    // The first name becomes the certificate's CN: keep the public host first.
    let mut seen = std::collections::HashSet::new();
    dns.retain(|n| seen.insert(n.clone()));
    let mut seen = std::collections::HashSet::new();
    ips.retain(|ip| seen.insert(*ip));
    (dns, ips)
}

fn config_template(listen: &str, public: &HostPort, cluster: &str) -> String {
    format!(
        r#"# oneport server configuration. Every resource must be listed here; nothing
# else is reachable. Relative paths are relative to this file.

# Where to listen. 127.0.0.1 serves this machine only; 0.0.0.0 serves the network.
listen: {listen}
# The address clients (and load balancers) use to reach this server.
public_addr: {public}
cluster_name: {cluster}

tls:
  cert: {cert}
  key: {key}
  client_ca: {ca}

# Server pings on -ping protocols and alpn-ping upgrades keep idle connections
# alive through load balancers that cut idle streams (AWS ALB: 60s).
ping_interval: 30s
handshake_timeout: 10s
connect_timeout: 10s
shutdown_grace: 10s
# Limits (docs/limits.md): connections at once (default 10000, lowered at start to
# what the open-files limit allows, two descriptors each; a value set here is
# lowered with a warning), connections per source address that have not
# authenticated yet (0: no limit), TCP keepalive (0s: off).
# max_connections: 10000
max_unauthenticated_per_source: 1024
tcp_keepalive: 60s
# Connections without a verified client certificate yet, at once (64 KiB each at most).
max_unauthenticated: 1024
# One audit line per session and per refusal goes to the log at INFO; this also
# writes them as JSON lines (0600). SIGHUP reloads this file and reopens the log.
# audit_log: audit.jsonl
# Behind an L7 load balancer: the load balancers' addresses (CIDRs). Only their
# X-Forwarded-For is believed; any other peer is logged with its own address.
trusted_proxies:
#  - 10.0.0.0/8

# Invites, issued certificates and revocations (`oneport server invite/revoke`).
# Absent: files in state/ beside this file. Several servers behind one load
# balancer share one PostgreSQL: state: postgres://oneport@db.internal/oneport
# state: postgres://USER@HOST/DB
# How often every server re-reads the revocation list.
state_refresh: 3s

# Allow-lists name users (certificate CN) and groups (certificate O). Empty allows nobody.
# Each list below is empty until you uncomment (or add) its indented entries.
nodes:
#  - name: web1
#    addr: 127.0.0.1:22
#    allow: {{ groups: [ops] }}

databases:
#  - name: pg1
#    protocol: postgres        # postgres, mysql, mongodb, redis
#    addr: 127.0.0.1:5432
#    allow: {{ users: [alice] }}

apps:
#  - name: grafana
#    kind: http                # http or tcp
#    addr: 127.0.0.1:3000
#    allow: {{ groups: [dev] }}

# Kubernetes clusters. The server calls the API server with its own credentials
# (a token file or client_cert/client_key) and impersonates each caller, so those
# credentials need RBAC permission to `impersonate` users and groups.
kube:
#  - name: dev
#    api_server: https://127.0.0.1:6443
#    ca: kube-ca.pem           # CA of the API server
#    token_file: sa.token      # re-read every minute
#    allow: {{ groups: [dev] }}
"#,
        cert = files::CERT,
        key = files::KEY,
        ca = files::CA,
    )
}

/// Loads the CA of a server directory.
///
/// # Errors
/// When the files are missing.
pub fn load_ca(dir: &Path) -> Result<CertAndKey> {
    let cert = String::from_utf8_lossy(&fsutil::read(&dir.join(files::CA))?).into_owned();
    let key = String::from_utf8_lossy(&fsutil::read(&dir.join(files::CA_KEY))?).into_owned();
    Ok(CertAndKey { cert_pem: cert, key_pem: key })
}

/// Issues an identity for `user` in `groups`, valid for `ttl`, written to `out` (0600).
///
/// # Errors
/// When the CA cannot be loaded or the file written.
pub fn issue(dir: &Path, user: &str, groups: &[String], ttl: Duration, out: &Path) -> Result<()> {
    let ca = load_ca(dir)?;
    let client = pki::make_client_cert(&ca, user, groups, time::OffsetDateTime::now_utc(), ttl)?;
    fsutil::write_private(out, pki::identity_pem(&client, &ca.cert_pem).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_ip_and_dns_hosts() {
        let (dns, ips) = server_names("127.0.0.1", &[]);
        assert!(dns.contains(&"*.db.teleport.cluster.local".to_string()));
        assert!(ips.contains(&"127.0.0.1".parse().unwrap()));
        let (dns, _) = server_names("Proxy.Example.com", &["10.0.0.5".into()]);
        assert!(dns.contains(&"proxy.example.com".to_string()));
        assert!(dns.contains(&"*.node.proxy.example.com".to_string()));
        assert!(dns.contains(&"kube-teleport-proxy-alpn.teleport.cluster.local".to_string()));
    }

    #[test]
    fn uncommenting_the_template_examples_keeps_it_loadable() {
        let dir = tempfile::tempdir().unwrap();
        let text = config_template("127.0.0.1:3080", &HostPort::parse("127.0.0.1:3080").unwrap(), "c");
        let uncommented: String =
            text.lines().map(|l| if l.starts_with("#  ") { &l[1..] } else { l }).map(|l| format!("{l}\n")).collect();
        let path = dir.path().join(files::CONFIG);
        std::fs::write(&path, &uncommented).unwrap();
        let cfg = crate::server::Config::load(&path).unwrap();
        assert_eq!(
            (cfg.nodes.len(), cfg.databases.len(), cfg.apps.len(), cfg.kube.len(), cfg.trusted_proxies.len()),
            (1, 1, 1, 1, 1),
            "{uncommented}"
        );
        std::fs::write(&path, &text).unwrap();
        let cfg = crate::server::Config::load(&path).unwrap();
        assert!(cfg.nodes.is_empty() && cfg.kube.is_empty());
    }

    #[test]
    fn init_writes_a_loadable_config() {
        let dir = tempfile::tempdir().unwrap();
        let o = InitOptions {
            public_addr: HostPort::parse("127.0.0.1:3080").unwrap(),
            cluster_name: None,
            listen: "127.0.0.1:3080".into(),
            extra_names: vec![],
            force: false,
        };
        let cfg = init(dir.path(), &o).unwrap();
        let loaded = crate::server::Config::load(&cfg).unwrap();
        assert_eq!(loaded.cluster_name, "127.0.0.1");
        crate::server::Server::new(loaded).unwrap();
        let err = init(dir.path(), &o).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
    }
}
