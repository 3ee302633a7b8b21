//! Through real layer 7 load balancers and an HTTPS proxy, with no flag given: the
//! client detects the load balancer and tunnels through the connection upgrade.
//! nginx and HAProxy cut idle streams (after 1 s, or 5 s at realistic values); the
//! server's pings keep sessions up, and without them the same sessions are cut. An
//! HTTP app's connections ride one multiplexed session through nginx, and pgbench,
//! psql, mysql, curl and wrk ride the sessions of `proxy db`/`proxy app` behind
//! nginx, HAProxy and squid without one new connection to the router.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::lb::{self, LbPki, NginxMode};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The load balancers' idle cut-off in tests that do not idle (generous, so a slow
/// response on a loaded machine is not cut).
const LB_IDLE: Duration = Duration::from_secs(5);

/// The echo-app server pinging every `pings` (`NO_PINGS`: never).
async fn server_with_echo_pinging(pings: Duration) -> TestServer {
    server_with_echo(|c| c.ping_interval = pings).await
}

/// `oneport proxy app echo` against `proxy`, trusting the load balancer's CA as a
/// system root.
async fn proxy_app(proxy: &str, id: &Path, pki: &LbPki, env: &[(&str, &str)]) -> (Running, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = oneport(home.path());
    cmd.env("SSL_CERT_FILE", &pki.ca).args(["--proxy", proxy, "--identity"]).arg(id).args(["proxy", "app", "echo"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    (start_and_wait_addr(cmd).await, home)
}

async fn transfer_64_mib(addr: std::net::SocketAddr) {
    let payload = Arc::new(random_bytes(64 << 20, 11));
    let back = send_and_collect(TcpStream::connect(addr).await.unwrap(), payload.clone()).await;
    assert_eq!(back.len(), payload.len());
    assert_eq!(sha256(&back), sha256(&payload));
}

/// One round trip, then `idle` with no traffic at all, then another round trip.
async fn survives_idle(addr: std::net::SocketAddr, idle: Duration) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 5];
    s.write_all(b"first").await.unwrap();
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"first");
    tokio::time::sleep(idle).await; // idling is the thing under test
    s.write_all(b"later").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf)).await.expect("no echo after idling").unwrap();
    assert_eq!(&buf, b"later");
}

/// The negative control of [`survives_idle`]: after `idle` with no traffic, the load
/// balancer has cut the session, so the second round trip gets no echo. (Without
/// pings a loaded machine may stall past the cut-off even before the first echo:
/// that is a cut too.)
async fn cut_when_idle(addr: std::net::SocketAddr, idle: Duration, path: &str) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 5];
    s.write_all(b"first").await.unwrap();
    if s.read_exact(&mut buf).await.is_err() {
        return;
    }
    tokio::time::sleep(idle).await; // idling is the thing under test
    let _ = s.write_all(b"later").await; // may fail: the session is gone
    let r = tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf)).await;
    assert!(
        !matches!(r, Ok(Ok(_))),
        "{path}: the session survived {idle:?} idle without pings, so pings are not what keeps it up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_websocket_bulk_and_idle() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        // The realistic timings (5 s cut-off, 2 s pings, 15 s idle); the other paths use FAST_IDLE.
        let srv = server_with_echo_pinging(REAL_IDLE.pings).await;
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, false, REAL_IDLE.lb).await;
        let id = srv.identity("alice", &[]);
        let (run, _home) = proxy_app(&nginx.addr.to_string(), &id, &pki, &[]).await;
        transfer_64_mib(run.addr).await;
        survives_idle(run.addr, REAL_IDLE.window).await;
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_plain_upstream_and_legacy_mode() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(FAST_IDLE.pings).await;
        let pki = LbPki::new();
        // nginx speaks plain HTTP to the router: the same port takes it.
        let nginx = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, true, FAST_IDLE.lb).await;
        let id = srv.identity("alice", &[]);
        let env = [("ONEPORT_TLS_ROUTING_CONN_UPGRADE_MODE", "legacy")];
        let (run, _home) = proxy_app(&nginx.addr.to_string(), &id, &pki, &env).await;
        let payload = Arc::new(random_bytes(4 << 20, 3));
        let back = send_and_collect(TcpStream::connect(run.addr).await.unwrap(), payload.clone()).await;
        assert_eq!(sha256(&back), sha256(&payload));
        survives_idle(run.addr, FAST_IDLE.window).await;
        srv.stop().await;
    })
    .await;
}

/// `oneport ARGS` as `id` through the load balancer at `lb`, trusting `ca` (the
/// load balancer's) as a system root.
async fn through_lb(
    home: &Path,
    ca: &Path,
    lb: std::net::SocketAddr,
    id: &Path,
    args: &[&str],
) -> std::process::Output {
    let mut c = oneport(home);
    c.env("SSL_CERT_FILE", ca).args(["--proxy", &lb.to_string(), "--identity"]).arg(id).args(args);
    c.output().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_refusing_upgrades_gives_the_layer_specific_error() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(REAL_IDLE.pings).await;
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, srv.addr, NginxMode::Refuse400, false, LB_IDLE).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let out = through_lb(home.path(), &pki.ca, nginx.addr, &id, &["ls"]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains(&format!(
                "the load balancer at {} answered 400 Bad Request to the WebSocket upgrade",
                nginx.addr
            )),
            "{err}"
        );
        assert!(err.contains("it must pass WebSocket upgrades on /webapi/connectionupgrade"), "{err}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_nginx_caches_the_upgrade_decision() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(REAL_IDLE.pings).await;
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, false, LB_IDLE).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let mut c = oneport(home.path());
            c.env("SSL_CERT_FILE", &pki.ca).args(args);
            c
        };
        let out = run(&["login", "--proxy", &nginx.addr.to_string(), "--identity", id.to_str().unwrap()])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let status = run(&["status"]).output().await.unwrap();
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(text.contains("Upgrade:   required (probe: "), "{text}");
        // A direct login says the opposite.
        let out = run(&["login", "--proxy", &srv.addr.to_string(), "--identity", id.to_str().unwrap()])
            .output()
            .await
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&run(&["status"]).output().await.unwrap().stdout).into_owned();
        assert!(text.contains("Upgrade:   not required (probe: ALPN negotiated"), "{text}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_http_mode_bulk_and_idle() {
    if !have("haproxy") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(FAST_IDLE.pings).await;
        let pki = LbPki::new();
        let ha = lb::haproxy(&pki, srv.addr, FAST_IDLE.lb).await;
        let id = srv.identity("alice", &[]);
        let (run, _home) = proxy_app(&ha.addr.to_string(), &id, &pki, &[]).await;
        transfer_64_mib(run.addr).await;
        survives_idle(run.addr, FAST_IDLE.window).await;
        srv.stop().await;
    })
    .await;
}

/// The negative control of the idle tests above: the same three paths (nginx with
/// WebSocket, nginx with the legacy upgrade over plain HTTP, HAProxy), the same
/// cut-off and idle window, but a server that never pings: every session is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pings_load_balancers_cut_idle_sessions() {
    if !have("nginx") || !have("haproxy") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(NO_PINGS).await;
        let pki = LbPki::new();
        let id = srv.identity("alice", &[]);
        let ws = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, false, FAST_IDLE.lb).await;
        let plain = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, true, FAST_IDLE.lb).await;
        let ha = lb::haproxy(&pki, srv.addr, FAST_IDLE.lb).await;
        let legacy = [("ONEPORT_TLS_ROUTING_CONN_UPGRADE_MODE", "legacy")];
        let (a, _h1) = proxy_app(&ws.addr.to_string(), &id, &pki, &[]).await;
        let (b, _h2) = proxy_app(&plain.addr.to_string(), &id, &pki, &legacy).await;
        let (c, _h3) = proxy_app(&ha.addr.to_string(), &id, &pki, &[]).await;
        tokio::join!(
            cut_when_idle(a.addr, FAST_IDLE.window, "nginx (WebSocket)"),
            cut_when_idle(b.addr, FAST_IDLE.window, "nginx (legacy, plain upstream)"),
            cut_when_idle(c.addr, FAST_IDLE.window, "HAProxy"),
        );
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squid_as_https_proxy() {
    if !have("squid") || !have("nginx") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(REAL_IDLE.pings).await;
        let pki = LbPki::new();
        let squid = lb::squid().await;
        let url = format!("http://{}", squid.addr);
        // Straight to the router through squid, then through squid and nginx.
        let id = srv.identity("alice", &[]);
        let (run, _h1) = proxy_app(&srv.addr.to_string(), &id, &pki, &[("HTTPS_PROXY", &url)]).await;
        transfer_64_mib(run.addr).await;
        let nginx = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, false, LB_IDLE).await;
        let (run, _h2) = proxy_app(&nginx.addr.to_string(), &id, &pki, &[("HTTPS_PROXY", &url)]).await;
        transfer_64_mib(run.addr).await;
        srv.stop().await;
    })
    .await;
}

/// A proxy that wants credentials: the error names the layer and the status.
#[tokio::test]
async fn proxy_auth_required_is_reported() {
    deadline(async {
        let srv = server_with_echo_pinging(REAL_IDLE.pings).await;
        let fake = loopback_listener().await;
        let fake_addr = fake.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = fake.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n").await;
            }
        });
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let out = oneport(home.path())
            .env("HTTPS_PROXY", format!("http://user:secret@{fake_addr}"))
            .args(["--proxy", &srv.addr.to_string(), "--identity"])
            .arg(&id)
            .arg("ls")
            .output()
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains("proxy CONNECT refused: 407 Proxy Authentication Required"), "{err}");
        assert!(!err.contains("secret"), "credentials leaked: {err}");
        srv.stop().await;
    })
    .await;
}

/// `X-Forwarded-For` is read only from `trusted_proxies`: from a trusted peer the
/// deciding entry must be an IP (junk is a 400); from any other peer it is ignored,
/// junk or not. Through nginx (which sets it) the tunnel works as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    deadline(async {
        let get = |addr: std::net::SocketAddr, xff: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let req = format!("GET /webapi/ping HTTP/1.1\r\nHost: x\r\n{xff}Connection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        // Not a trusted proxy: whatever the client writes is ignored.
        let other = TestServer::start(|c| c.trusted_proxies = vec!["10.9.9.0/24".into()]).await;
        assert!(get(other.addr, "X-Forwarded-For: nonsense\r\n").await.starts_with("HTTP/1.1 200"));
        other.stop().await;

        let srv = server_with_echo(|c| c.trusted_proxies = vec!["127.0.0.1".into(), "::1".into()]).await;
        assert!(get(srv.addr, "X-Forwarded-For: 203.0.113.7\r\n").await.starts_with("HTTP/1.1 200"));
        assert!(get(srv.addr, "X-Forwarded-For: junk, 203.0.113.7\r\n").await.starts_with("HTTP/1.1 200"));
        let junk = get(srv.addr, "X-Forwarded-For: nonsense\r\n").await;
        assert!(junk.starts_with("HTTP/1.1 400"), "{junk}");
        assert!(junk.contains(r#"X-Forwarded-For entry \"nonsense\" is not an IP address"#), "{junk}");
        if have("nginx") {
            let pki = LbPki::new();
            let nginx = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, true, LB_IDLE).await;
            let id = srv.identity("alice", &[]);
            let (run, _home) = proxy_app(&nginx.addr.to_string(), &id, &pki, &[]).await;
            let back = send_and_collect(TcpStream::connect(run.addr).await.unwrap(), Arc::new(b"hello".to_vec())).await;
            assert_eq!(back, b"hello");
        }
        srv.stop().await;
    })
    .await;
}

/// `doctor` through nginx: the load balancer's public certificate, the probe's
/// verdict, the upgrade; and with upgrades refused, where it breaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_through_nginx() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(REAL_IDLE.pings).await;
        let pki = LbPki::new();
        let id = srv.identity("alice", &[]);
        let doctor = |addr: String| {
            let home = tempfile::tempdir().unwrap();
            let mut c = oneport(home.path());
            c.env("SSL_CERT_FILE", &pki.ca).args(["--proxy", &addr, "--identity"]).arg(&id).args([
                "doctor",
                "--resource",
                "app/echo",
            ]);
            async move {
                let out = c.output().await.unwrap();
                (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), home)
            }
        };
        let good = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, false, LB_IDLE).await;
        let (code, out, _h) = doctor(good.addr.to_string()).await;
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("a publicly trusted certificate (a load balancer or TLS proxy answers)"), "{out}");
        assert!(out.contains("[ok]   upgrade      the load balancer passes the connection upgrade"), "{out}");
        assert!(out.contains("[ok]   route        app echo is reachable"), "{out}");
        let bad = lb::nginx(&pki, srv.addr, NginxMode::Refuse400, false, LB_IDLE).await;
        let (code, out, _h) = doctor(bad.addr.to_string()).await;
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("[FAIL] upgrade"), "{out}");
        assert!(out.contains("Where it breaks: upgrade: let the load balancer pass WebSocket upgrades"), "{out}");
        srv.stop().await;
    })
    .await;
}

/// `oneport` with a private home and no system trust for the load balancer's CA.
async fn oneport_out(home: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = oneport(home);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().await.unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// `--ca` adds a trust anchor for the load balancer hop only: nginx with a
/// certificate from a separate "corporate" CA works with `--ca corp.pem` (also
/// stored by `login`), fails without it with an error naming the load balancer; and
/// a routing server whose certificate that corporate CA signed is refused for the
/// routing TLS although `--ca corp.pem` is given (while an identity file without a
/// CA, where `--ca` is all there is, reaches it: the refusal is the trust rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_flag_trusts_the_load_balancer_hop_only() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(FAST_IDLE.pings).await;
        let corp = LbPki::new();
        let nginx = lb::nginx(&corp, srv.addr, NginxMode::PassUpgrades, false, LB_IDLE).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let lb_addr = nginx.addr.to_string();
        let (ids, corp_ca) = (id.to_str().unwrap(), corp.ca.to_str().unwrap());

        let (code, out, err) = oneport_out(h, &["--proxy", &lb_addr, "--identity", ids, "ls"], &[]).await;
        assert_eq!(code, 1, "{out}");
        assert!(
            err.contains(&format!(
                "TLS handshake with load balancer at {lb_addr} failed: the load balancer at {lb_addr} presented a certificate no trusted CA signed: give the CA that signs it with --ca FILE"
            )),
            "{err}"
        );
        let (code, out, err) =
            oneport_out(h, &["--proxy", &lb_addr, "--identity", ids, "--ca", corp_ca, "ls"], &[]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("echo") && out.contains("tcp"), "{out}");
        // login stores the --ca; later commands need no flags.
        let (code, _, err) =
            oneport_out(h, &["login", "--proxy", &lb_addr, "--identity", ids, "--ca", corp_ca], &[]).await;
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = oneport_out(h, &["ls"], &[]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("echo"), "{out}");
        let (code, out, _) = oneport_out(h, &["doctor", "--resource", "app/echo"], &[]).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("signed by the --ca CA (a load balancer or TLS proxy answers)"), "{out}");
        assert!(out.contains("[ok]   route        app echo is reachable"), "{out}");

        // A routing server with a certificate from the corporate CA.
        let corp_ca_key = oneport::identity::pki::make_ca("corporate").unwrap();
        let certs = tempfile::tempdir().unwrap();
        let (dns, ips) = oneport::server::setup::server_names("127.0.0.1", &[]);
        let leaf =
            oneport::identity::pki::make_server_cert(&corp_ca_key, &dns, &ips, Duration::from_secs(3600)).unwrap();
        let (cert, key, corp2) =
            (certs.path().join("cert.pem"), certs.path().join("key.pem"), certs.path().join("corp.pem"));
        std::fs::write(&cert, &leaf.cert_pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        std::fs::write(&corp2, &corp_ca_key.cert_pem).unwrap();
        let rogue = server_with_echo(|c| {
            c.tls.cert = cert.clone();
            c.tls.key = key.clone();
        })
        .await;
        let rid = rogue.identity("alice", &[]);
        let direct = rogue.addr.to_string();
        let (code, out, err) = oneport_out(
            h,
            &["--proxy", &direct, "--identity", rid.to_str().unwrap(), "--ca", corp2.to_str().unwrap(), "ls"],
            &[],
        )
        .await;
        assert_eq!(code, 1, "{out}");
        assert!(
            err.contains(&format!(
                "TLS handshake with {direct} (SNI teleport.cluster.local) failed: the certificate presented by {direct} is not signed by the expected CA"
            )),
            "{err}"
        );
        // The control: the same identity without its CA, so --ca is the only anchor.
        let pem = std::fs::read_to_string(&rid).unwrap();
        let ca_pem = std::fs::read_to_string(rogue.ca_path()).unwrap();
        assert!(pem.contains(&ca_pem));
        let bare = certs.path().join("bare.pem");
        std::fs::write(&bare, pem.replace(&ca_pem, "")).unwrap();
        let (code, out, err) = oneport_out(
            h,
            &["--proxy", &direct, "--identity", bare.to_str().unwrap(), "--ca", corp2.to_str().unwrap(), "ls"],
            &[],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("echo"), "{out}");
        rogue.stop().await;
        srv.stop().await;
    })
    .await;
}

/// Every profile file under `home` (wherever `login` keeps it).
fn profile_files(home: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![home.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    out
}

/// Apache httpd (mod_ssl + mod_proxy_wstunnel) answers the probe's unknown ALPN with
/// `http/1.1`: that is an upgrade verdict. Login, a TCP app and PostgreSQL through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_login_app_and_db() {
    if !have("apache2") || !common::realdb::have_postgres() {
        return;
    }
    deadline(async {
        use common::realdb::{db, psql, start_proxy_db, text, Postgres};
        let pg = Postgres::start().await;
        let (echo, _) = spawn_echo().await;
        let srv = TestServer::start(|c| {
            c.ping_interval = REAL_IDLE.pings;
            c.apps.push(tcp_app("echo", echo, &["alice"]));
            c.databases.push(db("pg1", oneport::server::config::DbProtocol::Postgres, &pg.addr().to_string(), &["alice"]));
        })
        .await;
        let pki = LbPki::new();
        let apache = lb::apache(&pki, srv.addr, LB_IDLE).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let mut c = oneport(home.path());
            c.env("SSL_CERT_FILE", &pki.ca).args(args);
            c
        };
        let out = run(&["login", "--proxy", &apache.addr.to_string(), "--identity", id.to_str().unwrap()])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let status = String::from_utf8_lossy(&run(&["status"]).output().await.unwrap().stdout).into_owned();
        assert!(
            status.contains(
                "Upgrade:   required (probe: the server picked an ALPN that was never offered (a layer 7 load balancer terminates TLS))"
            ),
            "{status}"
        );
        let mut cmd = run(&["proxy", "app", "echo"]);
        cmd.kill_on_drop(true);
        let app = start_and_wait_addr(cmd).await;
        let payload = Arc::new(random_bytes(4 << 20, 5));
        let back = send_and_collect(TcpStream::connect(app.addr).await.unwrap(), payload.clone()).await;
        assert_eq!(sha256(&back), sha256(&payload));
        let mut cmd = run(&["proxy", "db", "pg1", "--db-user", "postgres", "--db-name", "postgres"]);
        cmd.kill_on_drop(true);
        let proxy = start_proxy_db(cmd).await.unwrap_or_else(|e| panic!("proxy db through Apache: {e}"));
        let out = psql(proxy.addr, "postgres").args(["-c", "select 40 + 2"]).output().await.unwrap();
        assert_eq!(text(&out.stdout).trim(), "42", "stderr: {}", text(&out.stderr));
        srv.stop().await;
    })
    .await;
}

/// A load balancer presenting the cluster's own certificate passes the direct
/// dial's TLS checks; the web API's 401 "a client certificate is required" on a
/// connection that presented one proves it terminated TLS, and the client falls
/// back to the upgrade (and remembers it) instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_on_the_direct_path_falls_back_to_the_upgrade() {
    if !have("apache2") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(REAL_IDLE.pings).await;
        let pki = LbPki::cluster_cert(srv.dir.path());
        let apache = lb::apache(&pki, srv.addr, LB_IDLE).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let mut c = oneport(home.path());
            c.args(args);
            c
        };
        let out = run(&["login", "--proxy", &apache.addr.to_string(), "--identity", id.to_str().unwrap()])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // A profile from before the load balancer was put in front: "direct".
        let files = profile_files(home.path());
        let profile = files
            .iter()
            .find(|p| std::fs::read_to_string(p).unwrap().contains("required: true"))
            .unwrap_or_else(|| panic!("no profile caching the upgrade in {files:?}"));
        let text = std::fs::read_to_string(profile).unwrap().replace("required: true", "required: false");
        std::fs::write(profile, text).unwrap();
        let mut cmd = run(&["proxy", "app", "echo"]);
        cmd.kill_on_drop(true);
        let app = start_and_wait_addr(cmd).await;
        let back = send_and_collect(TcpStream::connect(app.addr).await.unwrap(), Arc::new(b"hello".to_vec())).await;
        assert_eq!(back, b"hello");
        let status = String::from_utf8_lossy(&run(&["status"]).output().await.unwrap().stdout).into_owned();
        assert!(
            status.contains(&format!(
                "Upgrade:   required (switched to upgrade required after: {}/webapi/resolve?kind=app&name=echo answered 401 (a client certificate is required) to a connection that presented one)",
                apache.addr
            )),
            "{status}"
        );
        srv.stop().await;
    })
    .await;
}

/// nginx proxying the upgrade endpoint without `Upgrade`/`Connection`: the
/// WebSocket upgrade gets 404, the legacy one a 101 that opens no tunnel. The
/// error says so and what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_without_upgrade_headers_is_named() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(REAL_IDLE.pings).await;
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, srv.addr, NginxMode::NoUpgradeHeaders, false, LB_IDLE).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let out = through_lb(home.path(), &pki.ca, nginx.addr, &id, &["ls"]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains(&format!(
                "the load balancer at {} answered the legacy alpn-ping upgrade with 101 but opened no tunnel (it answered 404 Not Found (unsupported upgrade: send `Upgrade: websocket` with Sec-WebSocket-Protocol alpn or alpn-ping, or `Upgrade: alpn|alpn-ping`) to the WebSocket upgrade): it must pass WebSocket upgrades on /webapi/connectionupgrade; forward the Upgrade and Connection headers",
                nginx.addr
            )),
            "{err}"
        );
        // doctor names the upgrade, not the identity.
        let out = through_lb(home.path(), &pki.ca, nginx.addr, &id, &["doctor"]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("[FAIL] upgrade      the load balancer at"), "{text}");
        assert!(text.contains("with 101 but opened no tunnel"), "{text}");
        assert!(text.contains("Where it breaks: upgrade: let the load balancer pass WebSocket upgrades"), "{text}");
        srv.stop().await;
    })
    .await;
}

/// `doctor` through a load balancer holding a certificate from the cluster CA: it
/// says what it can know (the proxy CA signed it; the probe shows a load balancer
/// presents it), and the path through the upgrade works end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_through_apache_with_the_cluster_certificate() {
    if !have("apache2") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(REAL_IDLE.pings).await;
        let pki = LbPki::cluster_cert(srv.dir.path());
        let apache = lb::apache(&pki, srv.addr, LB_IDLE).await;
        let id = srv.identity("alice", &[]);
        let doctor = |addr: String| {
            let home = tempfile::tempdir().unwrap();
            let mut c = oneport(home.path());
            c.args(["--proxy", &addr, "--identity"]).arg(&id).args(["doctor", "--resource", "app/echo"]);
            async move {
                let out = c.output().await.unwrap();
                (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), home)
            }
        };
        let signed = "signed by the proxy CA (the routing server, or a load balancer holding a certificate from the cluster CA: the ALPN probe tells which)";
        let held = "[--]   TLS          the certificate from the proxy CA is presented by a load balancer, not the routing server";
        let (code, out, _h) = doctor(apache.addr.to_string()).await;
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains(signed), "{out}");
        assert!(out.contains(held), "{out}");
        assert!(out.contains("[ok]   upgrade      the load balancer passes the connection upgrade"), "{out}");
        assert!(out.contains("[ok]   backend      proxy "), "{out}");
        // Straight to the routing server: the same certificate, no load balancer.
        let (code, out, _h) = doctor(srv.addr.to_string()).await;
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains(signed), "{out}");
        assert!(!out.contains(held), "{out}");
        assert!(out.contains("[--]   upgrade      not needed: ALPN and SNI reach the server"), "{out}");
        srv.stop().await;
    })
    .await;
}

/// A load balancer whose idle timeout (1 s) is below the server's `ping_interval`
/// (30 s) cuts idle sessions; the local proxy says why, in the user's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_cut_names_the_ping_interval() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        let srv = server_with_echo_pinging(Duration::from_secs(30)).await;
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, false, Duration::from_secs(1)).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = oneport(home.path());
        cmd.env("SSL_CERT_FILE", &pki.ca)
            .args(["--proxy", &nginx.addr.to_string(), "--identity"])
            .arg(&id)
            .args(["proxy", "app", "echo"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        let mut stderr = child.stderr.take().unwrap();
        let errors = tokio::spawn(async move {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all).await;
            all
        });
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let mut line = String::new();
                let n = tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line).await.unwrap();
                assert!(n > 0, "proxy app exited without printing an address");
                if let Some(a) = find_loopback_addr(&line) {
                    return a;
                }
            }
        })
        .await
        .expect("no address within 60s");
        tokio::spawn(async move { while tokio::io::AsyncReadExt::read(&mut stdout, &mut [0u8; 512]).await.is_ok_and(|n| n > 0) {} });
        cut_when_idle(addr, Duration::from_secs(3), "nginx 1 s idle, pings every 30 s").await;
        let _ = child.kill().await;
        let err = errors.await.unwrap();
        assert!(
            err.contains("connection to app echo through ")
                && err.contains(" ended: the load balancer closed an idle connection: the server's ping_interval must be below its idle timeout"),
            "{err}"
        );
        assert!(!err.contains("WebSocket protocol error"), "{err}");
        srv.stop().await;
    })
    .await;
}

/// Through nginx (the connection upgrade), `proxy app` on an HTTP app keeps one
/// `teleport-http-mux` session: curl after curl opens streams on it, and nginx
/// opens no new connection to the router for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_carries_an_http_app_on_one_multiplexed_session() {
    assert!(have("nginx") && have("curl"), "nginx and curl are needed (scripts/install-deps)");
    deadline(async {
        let (app, conns) = http_app().await;
        let srv = TestServer::start(|c| {
            c.apps.push(oneport::server::config::App {
                kind: oneport::server::config::AppKind::Http,
                ..tcp_app("site", app, &["alice"])
            })
        })
        .await;
        let (router, dials) = counting_forwarder(srv.addr).await;
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, router, NginxMode::PassUpgrades, false, LB_IDLE).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = oneport(home.path());
        cmd.env("SSL_CERT_FILE", &pki.ca)
            .env_remove("RUST_LOG")
            .args(["--proxy", &nginx.addr.to_string(), "--identity"])
            .arg(&id)
            .args(["proxy", "app", "site"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let lines = collect_lines(child.stderr.take().unwrap());
        let stdout = child.stdout.take().unwrap();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            use tokio::io::AsyncBufReadExt;
            let mut out = tokio::io::BufReader::new(stdout).lines();
            while let Some(line) = out.next_line().await.unwrap() {
                if let Some(a) = find_loopback_addr(&line) {
                    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
                    return a;
                }
            }
            panic!("proxy app exited without printing an address");
        })
        .await
        .expect("proxy app printed no address within 60s");
        wait_line(&lines, "app site: multiplexed session (teleport-http-mux)").await;
        let before = dials.load(std::sync::atomic::Ordering::SeqCst);
        for _ in 0..5 {
            let out = tokio::process::Command::new("curl")
                .args(["-sS", "--fail", "--max-time", "30"])
                .arg(format!("http://{addr}/"))
                .output()
                .await
                .unwrap();
            assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
        }
        assert_eq!(conns.load(std::sync::atomic::Ordering::SeqCst), 5, "one app connection per curl");
        let routed = dials.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert_eq!(routed, 0, "5 curls through nginx: streams of the open session, no new router connection");
        drop(child);
        srv.stop().await;
    })
    .await;
}

/// How a local proxy reaches the router in [`real_clients_ride_one_session_behind_each_front`].
struct Front {
    name: &'static str,
    /// The `--proxy` value.
    proxy: String,
    /// Extra environment (squid: `HTTPS_PROXY`).
    env: Vec<(&'static str, String)>,
}

/// `oneport proxy ARGS` through `front`, trusting the load balancer's CA, with
/// its stderr collected; returns once the session to the resource is multiplexed.
async fn muxed_proxy(front: &Front, home: &Path, id: &Path, pki: &LbPki, args: &[&str]) -> (Running, ArcLines) {
    let mut cmd = oneport(home);
    cmd.env("SSL_CERT_FILE", &pki.ca)
        .env_remove("RUST_LOG")
        .args(["--proxy", &front.proxy, "--identity"])
        .arg(id)
        .arg("proxy")
        .args(args)
        .kill_on_drop(true);
    for (k, v) in &front.env {
        cmd.env(k, v);
    }
    let (running, lines) = start_and_wait_addr_logged(cmd).await;
    let line = wait_line(&lines, "new connections open streams on it").await;
    assert!(line.contains("multiplexed session ("), "{}: {line}", front.name);
    (running, lines)
}

type ArcLines = Arc<std::sync::Mutex<Vec<String>>>;

/// The real clients through the multiplexed sessions of `proxy db` (PostgreSQL and
/// MariaDB) and `proxy app` (an HTTP app) behind nginx (WebSocket upgrade),
/// HAProxy (`mode http`, upgrade) and squid (CONNECT): pgbench with 8 clients,
/// psql, mysql, curl and wrk all run, and not one of their connections reaches the
/// router as a new connection: each is a stream of the session opened at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_ride_one_session_behind_each_front() {
    use common::realdb::{self, Mariadb, Postgres};
    use oneport::server::config::{App, AppKind, DbProtocol};
    use std::sync::atomic::Ordering;
    for p in ["nginx", "haproxy", "squid", "curl", "wrk", "pgbench"] {
        assert!(have(p), "{p} is needed (scripts/install-deps)");
    }
    assert!(realdb::have_postgres() && realdb::have_mariadb(), "PostgreSQL and MariaDB are needed");
    deadline(async {
        let (pg, maria) = tokio::join!(Postgres::start(), Mariadb::start());
        let (app, conns) = http_app().await;
        let srv = TestServer::start(|c| {
            c.ping_interval = REAL_IDLE.pings;
            c.databases.push(realdb::db("pg1", DbProtocol::Postgres, &pg.addr().to_string(), &["alice"]));
            c.databases.push(realdb::db("my1", DbProtocol::Mysql, &maria.addr().to_string(), &["alice"]));
            c.apps.push(App { kind: AppKind::Http, ..tcp_app("site", app, &["alice"]) });
        })
        .await;
        let id = srv.identity("alice", &[]);
        let (router, dials) = counting_forwarder(srv.addr).await;
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, router, NginxMode::PassUpgrades, false, LB_IDLE).await;
        let haproxy = lb::haproxy(&pki, router, LB_IDLE).await;
        let squid = lb::squid().await;
        let fronts = [
            Front { name: "nginx", proxy: nginx.addr.to_string(), env: vec![] },
            Front { name: "HAProxy", proxy: haproxy.addr.to_string(), env: vec![] },
            Front {
                name: "squid",
                proxy: router.to_string(),
                env: vec![("HTTPS_PROXY", format!("http://{}", squid.addr))],
            },
        ];
        for front in &fronts {
            let who = front.name;
            let home = tempfile::tempdir().unwrap();
            let (pgp, _) = muxed_proxy(front, home.path(), &id, &pki, &["db", "pg1", "--db-user", "postgres"]).await;
            let (myp, _) = muxed_proxy(front, home.path(), &id, &pki, &["db", "my1", "--db-user", "root"]).await;
            let (site, site_log) = muxed_proxy(front, home.path(), &id, &pki, &["app", "site"]).await;
            let before = dials.load(Ordering::SeqCst);
            let app_before = conns.load(Ordering::SeqCst);

            let addr = pgp.addr;
            let init = realdb::output(realdb::pgbench(addr, &["-i", "-q"])).await;
            assert!(init.status.success(), "{who}: pgbench -i: {}", realdb::text(&init.stderr));
            let run = realdb::output(realdb::pgbench(addr, &["-c", "8", "-j", "2", "-t", "20"])).await;
            let out = realdb::text(&run.stdout);
            assert!(run.status.success(), "{who}: pgbench: {out}{}", realdb::text(&run.stderr));
            assert!(out.contains("number of transactions actually processed: 160/160"), "{who}: {out}");
            let mut psql = realdb::psql(addr, "postgres");
            psql.args(["-c", "select count(*) from pgbench_branches"]);
            let psql = realdb::output(psql).await;
            assert_eq!(realdb::text(&psql.stdout).trim(), "1", "{who}: psql: {}", realdb::text(&psql.stderr));

            let mut mysql = realdb::mysql(myp.addr, "root");
            mysql.args(["-e", "select 6 * 7"]);
            let mysql = realdb::output(mysql).await;
            assert_eq!(realdb::text(&mysql.stdout).trim(), "42", "{who}: mysql: {}", realdb::text(&mysql.stderr));

            for _ in 0..3 {
                let out = tokio::process::Command::new("curl")
                    .args(["-sS", "--fail", "--max-time", "30"])
                    .arg(format!("http://{}/", site.addr))
                    .output()
                    .await
                    .unwrap();
                assert!(out.status.success(), "{who}: curl: {}", String::from_utf8_lossy(&out.stderr));
                assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{who}");
            }
            let wrk = tokio::process::Command::new("wrk")
                .args(["-t", "2", "-c", "8", "-d", "1s", "--timeout", "10s"])
                .arg(format!("http://{}/", site.addr))
                .output()
                .await
                .unwrap();
            let report = String::from_utf8_lossy(&wrk.stdout).into_owned();
            assert!(wrk.status.success(), "{who}: wrk: {report}{}", String::from_utf8_lossy(&wrk.stderr));
            assert!(!report.contains("Socket errors") && !report.contains("Non-2xx"), "{who}: {report}");
            assert!(
                conns.load(Ordering::SeqCst) - app_before >= 11,
                "{who}: the app sees a connection per local connection (3 curls, 8 wrk)"
            );

            let routed = dials.load(Ordering::SeqCst) - before;
            let log = site_log.lock().unwrap().join("\n");
            assert_eq!(routed, 0, "{who}: clients' connections reached the router as new connections\n{log}");
            drop((pgp, myp, site));
        }
        srv.stop().await;
    })
    .await;
}
