//! Load balancers and proxies in front of the routing server, started on loopback by
//! the tests: nginx (TLS-terminating, WebSocket pass-through), HAProxy (`mode http`),
//! Apache httpd (mod_ssl + mod_proxy_wstunnel), squid (an HTTPS_PROXY doing CONNECT). Each runs in the foreground from a temporary
//! directory on a port the test picked, and is killed when dropped. The load
//! balancers present a certificate from their own CA; clients trust it through
//! `SSL_CERT_FILE` (read by the OS-roots loader), as they would a public CA.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use oneport::identity::pki;
use tokio::process::{Child, Command};

use super::{fixture, free_port, wait_port, which};

/// The load balancer's own CA and certificate for 127.0.0.1/localhost.
pub struct LbPki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl LbPki {
    pub fn new() -> LbPki {
        let dir = tempfile::tempdir().unwrap();
        let ca = pki::make_ca("load balancer").unwrap();
        let leaf = pki::make_server_cert(
            &ca,
            &["localhost".to_string()],
            &["127.0.0.1".parse().unwrap()],
            Duration::from_secs(86400),
        )
        .unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("lb-ca.pem"), &ca.cert_pem).unwrap();
        std::fs::write(p("lb.pem"), &leaf.cert_pem).unwrap();
        std::fs::write(p("lb-key.pem"), &leaf.key_pem).unwrap();
        std::fs::write(p("lb-combined.pem"), format!("{}{}", leaf.cert_pem, leaf.key_pem)).unwrap();
        LbPki { ca: p("lb-ca.pem"), cert: p("lb.pem"), key: p("lb-key.pem"), dir }
    }

    /// The routing server's own certificate and key, from its directory `srv_dir`
    /// (a load balancer given the cluster's certificate: its CA is the proxy CA).
    pub fn cluster_cert(srv_dir: &std::path::Path) -> LbPki {
        use oneport::server::setup::files;
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::copy(srv_dir.join(files::CA), p("lb-ca.pem")).unwrap();
        std::fs::copy(srv_dir.join(files::CERT), p("lb.pem")).unwrap();
        std::fs::copy(srv_dir.join(files::KEY), p("lb-key.pem")).unwrap();
        let combined = format!(
            "{}{}",
            std::fs::read_to_string(p("lb.pem")).unwrap(),
            std::fs::read_to_string(p("lb-key.pem")).unwrap()
        );
        std::fs::write(p("lb-combined.pem"), combined).unwrap();
        LbPki { ca: p("lb-ca.pem"), cert: p("lb.pem"), key: p("lb-key.pem"), dir }
    }
}

/// A running program, killed on drop.
pub struct Proc {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Proc {
    /// Kills the program and waits until it is gone (its port is free again).
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts nginx again after [`Proc::kill`]: the same config, directory and port.
    pub async fn restart_nginx(&mut self) {
        let bin = which("nginx").expect("nginx");
        let mut cmd = Command::new(bin);
        cmd.arg("-c").arg(self.dir.path().join("nginx.conf")).arg("-p").arg(self.dir.path());
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).kill_on_drop(true);
        self.child = cmd.spawn().unwrap_or_else(|e| panic!("restart nginx: {e}"));
        wait_port(self.addr, Duration::from_secs(30)).await;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn spawn(mut cmd: Command, addr: SocketAddr, dir: tempfile::TempDir, what: &str) -> Proc {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).kill_on_drop(true);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
    wait_port(addr, Duration::from_secs(30)).await;
    Proc { addr, dir, child }
}

/// How nginx treats the upgrade endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NginxMode {
    /// Passes WebSocket and legacy upgrades (Upgrade/Connection headers forwarded).
    PassUpgrades,
    /// Answers 400 on /webapi/connectionupgrade, as a misconfigured LB would.
    Refuse400,
    /// Proxies /webapi/connectionupgrade without passing `Upgrade`/`Connection`
    /// (nginx's defaults: HTTP/1.0 upstream, hop-by-hop headers dropped).
    NoUpgradeHeaders,
}

/// Writes `fixtures/lb/NAME` rendered with `vars` into `dir`.
fn conf(dir: &tempfile::TempDir, name: &str, vars: &[(&str, &str)]) -> PathBuf {
    fixture::render_to(&format!("lb/{name}"), vars, &dir.path().join(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// An idle timeout as nginx and HAProxy read it (`1000ms`).
fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// nginx terminating TLS in front of `router` (fixtures/lb/nginx.conf),
/// re-encrypting to it (`https`) or not (`plain_upstream`), cutting streams idle
/// for `idle` (`proxy_read_timeout`; sub-second values work).
pub async fn nginx(pki: &LbPki, router: SocketAddr, mode: NginxMode, plain_upstream: bool, idle: Duration) -> Proc {
    let bin = which("nginx").expect("nginx");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let scheme = if plain_upstream { "http" } else { "https" };
    let extra = match mode {
        NginxMode::Refuse400 => fixture::read("lb/nginx-refuse-upgrade.locations").unwrap_or_else(|e| panic!("{e}")),
        NginxMode::NoUpgradeHeaders => fixture::read("lb/nginx-no-upgrade-headers.locations")
            .unwrap_or_else(|e| panic!("{e}"))
            .replace("{{UPSTREAM}}", &format!("{scheme}://{router}")),
        NginxMode::PassUpgrades => String::new(),
    };
    let conf_path = conf(
        &dir,
        "nginx.conf",
        &[
            ("DIR", &dir.path().display().to_string()),
            ("LISTEN_PORT", &port.to_string()),
            ("CERT", &pki.cert.display().to_string()),
            ("KEY", &pki.key.display().to_string()),
            ("UPSTREAM", &format!("{scheme}://{router}")),
            ("IDLE", &millis(idle)),
            ("WORKER_CONNECTIONS", "2048"),
            ("EXTRA_LOCATIONS", extra.trim()),
        ],
    );
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(&conf_path).arg("-p").arg(dir.path());
    spawn(cmd, ([127, 0, 0, 1], port).into(), dir, "nginx").await
}

/// HAProxy in `mode http` terminating TLS in front of `router`
/// (fixtures/lb/haproxy.cfg), with client, server and tunnel timeouts = `idle`.
pub async fn haproxy(pki: &LbPki, router: SocketAddr, idle: Duration) -> Proc {
    let bin = which("haproxy").expect("haproxy");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf_path = conf(
        &dir,
        "haproxy.cfg",
        &[
            ("LISTEN_PORT", &port.to_string()),
            ("CERT", &pki.dir.path().join("lb-combined.pem").display().to_string()),
            ("UPSTREAM", &router.to_string()),
            ("IDLE", &millis(idle)),
        ],
    );
    let mut cmd = Command::new(bin);
    cmd.arg("-db").arg("-f").arg(&conf_path);
    spawn(cmd, ([127, 0, 0, 1], port).into(), dir, "haproxy").await
}

/// Apache httpd terminating TLS in front of `router` (fixtures/lb/apache.conf),
/// re-encrypting to it and passing WebSocket upgrades, with `Timeout` = `idle`
/// (whole seconds, at least 1). One process in the foreground (`-X`).
pub async fn apache(pki: &LbPki, router: SocketAddr, idle: Duration) -> Proc {
    let bin = which("apache2").expect("apache2");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf_path = conf(
        &dir,
        "apache.conf",
        &[
            ("DIR", &dir.path().display().to_string()),
            ("MODULES", "/usr/lib/apache2/modules"),
            ("LISTEN_PORT", &port.to_string()),
            ("CERT", &pki.cert.display().to_string()),
            ("KEY", &pki.key.display().to_string()),
            ("UPSTREAM", &router.to_string()),
            ("IDLE", &idle.as_secs().max(1).to_string()),
        ],
    );
    let mut cmd = Command::new(bin);
    cmd.arg("-f").arg(&conf_path).arg("-X");
    spawn(cmd, ([127, 0, 0, 1], port).into(), dir, "apache2").await
}

/// squid as a CONNECT proxy on loopback, any port may be CONNECTed to
/// (fixtures/lb/squid.conf).
pub async fn squid() -> Proc {
    let bin = which("squid").expect("squid");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf_path =
        conf(&dir, "squid.conf", &[("LISTEN_PORT", &port.to_string()), ("DIR", &dir.path().display().to_string())]);
    let mut cmd = Command::new(bin);
    cmd.arg("-N").arg("-f").arg(&conf_path);
    spawn(cmd, ([127, 0, 0, 1], port).into(), dir, "squid").await
}
