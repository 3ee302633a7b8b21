//! Load balancers and proxies in front of the routing server, started on loopback by
//! the tests: nginx (TLS-terminating, WebSocket pass-through), HAProxy (`mode http`),
//! squid (an HTTPS_PROXY doing CONNECT). Each runs in the foreground from a temporary
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

use super::{free_port, wait_port, which};

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
}

/// A running program, killed on drop.
pub struct Proc {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    child: Child,
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
}

/// nginx terminating TLS in front of `router`, re-encrypting to it (`https`) or
/// not (`plain_upstream`), with `proxy_read_timeout` = `idle`.
pub async fn nginx(pki: &LbPki, router: SocketAddr, mode: NginxMode, plain_upstream: bool, idle: Duration) -> Proc {
    let bin = which("nginx").expect("nginx");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = dir.path().display();
    let scheme = if plain_upstream { "http" } else { "https" };
    let refuse = match mode {
        NginxMode::Refuse400 => "location = /webapi/connectionupgrade { return 400; }",
        NginxMode::PassUpgrades => "",
    };
    let conf = format!(
        r#"daemon off;
user root;
worker_processes 1;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 2048; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    {refuse}
    location / {{
      proxy_pass {scheme}://{router};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_buffering off;
      proxy_read_timeout {secs}s;
      proxy_send_timeout {secs}s;
    }}
  }}
}}
"#,
        cert = pki.cert.display(),
        key = pki.key.display(),
        secs = idle.as_secs().max(1),
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(&conf_path).arg("-p").arg(dir.path());
    spawn(cmd, ([127, 0, 0, 1], port).into(), dir, "nginx").await
}

/// HAProxy in `mode http` terminating TLS in front of `router`, with client, server
/// and tunnel timeouts = `idle`.
pub async fn haproxy(pki: &LbPki, router: SocketAddr, idle: Duration) -> Proc {
    let bin = which("haproxy").expect("haproxy");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ms = idle.as_millis();
    let conf = format!(
        r#"global
  maxconn 2000
defaults
  mode http
  timeout connect 5s
  timeout client {ms}ms
  timeout server {ms}ms
  timeout tunnel {ms}ms
frontend fe
  bind 127.0.0.1:{port} ssl crt {combined}
  default_backend be
backend be
  server router {router} ssl verify none
"#,
        combined = pki.dir.path().join("lb-combined.pem").display(),
    );
    let conf_path = dir.path().join("haproxy.cfg");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-db").arg("-f").arg(&conf_path);
    spawn(cmd, ([127, 0, 0, 1], port).into(), dir, "haproxy").await
}

/// squid as a CONNECT proxy on loopback (any port may be CONNECTed to).
pub async fn squid() -> Proc {
    let bin = which("squid").expect("squid");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = dir.path().display();
    let conf = format!(
        r#"http_port 127.0.0.1:{port}
acl any_port port 1-65535
acl CONNECT method CONNECT
acl local src 127.0.0.0/8
http_access allow CONNECT local any_port
http_access deny all
cache deny all
access_log none
cache_log stdio:{d}/cache.log
pid_filename none
coredump_dir {d}
shutdown_lifetime 0 seconds
"#
    );
    let conf_path = dir.path().join("squid.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-N").arg("-f").arg(&conf_path);
    spawn(cmd, ([127, 0, 0, 1], port).into(), dir, "squid").await
}
