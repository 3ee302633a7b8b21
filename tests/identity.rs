//! Identities by invite, end to end with the real programs: `server invite` →
//! `login --token` (a key made on the client, the server verified by the invite's
//! CA pin) → `db connect` with psql, directly and behind nginx; tokens replayed,
//! unknown, expired or pinned to another CA; revocation picked up by a running
//! server; `proxy db` renewing a short identity in the background; two servers
//! behind HAProxy (TCP mode) sharing one PostgreSQL; bad CSRs on the wire; a state
//! store that cannot be reached.
//!
//! The issue asks for a 2-minute identity kept alive for 10 minutes; the renewal
//! test uses a 20 s identity kept alive past its expiry (the mechanism is the same:
//! renewal at 2/3 of the lifetime), so the suite stays quick.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::lb::{self, LbPki, NginxMode};
use common::realdb::{self, output, text, Postgres};
use common::{deadline, free_port, have, oneport, poll_until, wait_port, TestServer};
use oneport::identity::Identity;
use oneport::proto::auth::{self as wire, Request, Response, Token};
use oneport::server::config::DbProtocol;
use oneport::server::{self, setup, Config};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

const REFRESH: Duration = Duration::from_secs(1);

fn pin_of(ca_path: &Path) -> [u8; 32] {
    let der = oneport::identity::load_certs(ca_path).unwrap().remove(0);
    wire::pin_of_cert(&der).unwrap()
}

/// `server invite` through the binary; returns (token, the printed login line).
async fn invite(dir: &Path, args: &[&str]) -> (String, String) {
    let mut cmd = oneport(dir);
    cmd.args(["server", "invite", "--dir"]).arg(dir).args(["--user", "alice", "--group", "dev"]).args(args);
    let out = output(cmd).await;
    assert!(out.status.success(), "invite failed: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line = stdout.lines().find(|l| l.contains("--token ")).unwrap_or_else(|| panic!("no login line: {stdout}"));
    let token = line.rsplit("--token ").next().unwrap().trim().to_string();
    (token, line.trim().to_string())
}

/// `login --proxy P --token T` in `home`.
async fn login(home: &Path, proxy: &str, token: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = oneport(home);
    cmd.envs(env.iter().copied()).args(["login", "--proxy", proxy, "--token", token]);
    output(cmd).await
}

/// `db connect pg1 --db-user postgres` from `home`, selecting `word`.
async fn db_through(home: &Path, word: &str) -> std::process::Output {
    let mut cmd = oneport(home);
    let q = format!("select '{word}'");
    cmd.args(["db", "connect", "pg1", "--db-user", "postgres", "--", "-X", "-A", "-t", "-c", &q]);
    output(cmd).await
}

/// The identity file `login` stored in `home`.
fn stored_identity(home: &Path) -> PathBuf {
    std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("identity-"))
        .expect("an identity file in the home")
}

/// `db connect pg1` as the logged-in user, running one query.
async fn db_query(home: &Path, extra: &[&str], sql: &str) -> std::process::Output {
    let mut cmd = oneport(home);
    cmd.args(extra).args(["db", "connect", "pg1", "--db-user", "postgres", "--", "-X", "-A", "-t", "-c", sql]);
    output(cmd).await
}

/// Every file under `dir`, concatenated.
fn all_files(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// The base64 body of the PRIVATE KEY block in an identity file.
fn key_body(pem: &str) -> String {
    let start = pem.find("-----BEGIN PRIVATE KEY-----").expect("a PKCS#8 key") + "-----BEGIN PRIVATE KEY-----".len();
    let end = pem.find("-----END PRIVATE KEY-----").unwrap();
    pem[start..end].replace('\n', "")
}

/// The server as a program (its stderr kept in a file, at debug level).
struct BinServer {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    log: PathBuf,
    _child: Child,
}

async fn bin_server(edit: impl FnOnce(&mut Config)) -> BinServer {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let o = setup::InitOptions {
        public_addr: oneport::util::addr::HostPort::parse(&addr.to_string()).unwrap(),
        cluster_name: Some("test".into()),
        listen: addr.to_string(),
        extra_names: vec![],
        force: false,
    };
    let path = setup::init(dir.path(), &o).unwrap();
    let mut cfg = Config::load(&path).unwrap();
    edit(&mut cfg);
    std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
    let log = dir.path().join("server.log");
    let mut cmd = oneport(dir.path());
    cmd.args(["-v", "server", "start", "--config"]).arg(&path);
    cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
    let child = cmd.spawn().unwrap();
    wait_port(addr, Duration::from_secs(30)).await;
    BinServer { dir, addr, log, _child: child }
}

#[tokio::test(flavor = "multi_thread")]
async fn invite_login_db_connect_replay_and_revoke() {
    if !realdb::have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let srv = bin_server(|c| {
            c.state_refresh = REFRESH;
            c.databases.push(realdb::db("pg1", DbProtocol::Postgres, &pg.addr().to_string(), &["alice"]));
        })
        .await;
        let dir = srv.dir.path();
        let proxy = srv.addr.to_string();
        let (token, line) = invite(dir, &["--ttl", "1h", "--renewable-for", "1d"]).await;
        assert_eq!(line, format!("oneport login --proxy {proxy} --token {token}"));

        let home = tempfile::tempdir().unwrap();
        let out = login(home.path(), &proxy, &token, &[]).await;
        assert!(out.status.success(), "login --token: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("as alice (groups: dev)"), "{}", text(&out.stdout));
        let id_path = stored_identity(home.path());
        let pem = std::fs::read_to_string(&id_path).unwrap();
        let id = Identity::load(&id_path).unwrap();
        assert_eq!((id.caller.user.as_str(), id.caller.groups.clone()), ("alice", vec!["dev".to_string()]));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&id_path).unwrap().permissions().mode() & 0o777, 0o600);

        let out = db_query(home.path(), &[], "select 'via-' || current_user").await;
        assert!(out.status.success(), "db connect: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "via-postgres");

        let status = output({
            let mut c = oneport(home.path());
            c.arg("status");
            c
        })
        .await;
        let s = text(&status.stdout);
        assert!(s.contains("Renews at:") && s.contains("Renewable until:"), "{s}");
        assert!(s.contains(" (while the certificate is valid; a lapsed one needs a new invite)"), "{s}");

        // The key was made on the client: neither the store nor the log has it, nor
        // the token's secret.
        let secret = token.rsplit('.').next().unwrap().to_string();
        let key = key_body(&pem);
        let mut server_side = all_files(&dir.join("state"));
        server_side.extend(std::fs::read(&srv.log).unwrap());
        let server_side = text(&server_side);
        assert!(server_side.contains(&id.caller.serial), "the store records the serial");
        assert!(!server_side.contains(&key[..64]), "the client's key reached the server");
        assert!(!server_side.contains(&secret), "the token's secret reached the server's files or log");

        // Replayed, unknown, wrong pin, expired.
        let other = tempfile::tempdir().unwrap();
        let out = login(other.path(), &proxy, &token, &[]).await;
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("the invite token was already used at"), "{}", text(&out.stderr));
        let pin = pin_of(&dir.join("ca.pem"));
        let unknown = Token::generate(pin).to_string();
        let out = login(other.path(), &proxy, &unknown, &[]).await;
        assert!(
            text(&out.stderr).contains(&format!("the invite token is not known to proxy {proxy}")),
            "{}",
            text(&out.stderr)
        );
        let parsed = Token::parse(&token).unwrap();
        let wrong_pin = Token { pin: [0x11; 32], secret: parsed.secret }.to_string();
        let out = login(other.path(), &proxy, &wrong_pin, &[]).await;
        let err = text(&out.stderr);
        assert!(err.contains("is not the cluster this invite was made for"), "{err}");
        assert!(err.contains(&format!("sha256:{}", wire::hex(&pin))), "names the CA it saw: {err}");
        let (short, _) = invite(dir, &["--expires-in", "1s"]).await;
        tokio::time::sleep(Duration::from_millis(2100)).await; // the expiry is what is tested
        let out = login(other.path(), &proxy, &short, &[]).await;
        assert!(text(&out.stderr).contains("the invite token expired at"), "{}", text(&out.stderr));
        assert!(!other.path().join("profiles").exists(), "no profile stored");

        // Renewal by hand works, then revocation: refused at the next connection and
        // at renewal, with the sentence, by the running server.
        let out = output({
            let mut c = oneport(home.path());
            c.args(["login", "--renew"]);
            c
        })
        .await;
        assert!(out.status.success(), "login --renew: {}", text(&out.stderr));
        let renewed = Identity::load(&id_path).unwrap();
        assert_ne!(renewed.caller.serial, id.caller.serial);
        assert_ne!(key_body(&std::fs::read_to_string(&id_path).unwrap()), key, "a fresh key pair");
        let mut cmd = oneport(home.path());
        cmd.args(["server", "revoke", "--dir"]).arg(dir).args(["--user", "alice", "--reason", "laptop lost"]);
        let out = output(cmd).await;
        assert!(out.status.success(), "revoke: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("Revoked {} for alice", renewed.caller.serial)));
        let sentence = format!("identity {} for alice was revoked: laptop lost", renewed.caller.serial);
        let err = poll_until(Duration::from_secs(20), "the revocation to be enforced", || {
            let home = home.path().to_path_buf();
            async move {
                let out = db_query(&home, &[], "select 1").await;
                (!out.status.success()).then(|| text(&out.stderr))
            }
        })
        .await;
        assert!(err.contains(&sentence), "{err}");
        // ls fails with the same sentence rather than listing nothing.
        let out = output({
            let mut c = oneport(home.path());
            c.arg("ls");
            c
        })
        .await;
        assert_eq!((out.status.code(), text(&out.stdout)), (Some(1), String::new()));
        assert_eq!(text(&out.stderr), format!("error: {sentence}\n"));
        let out = output({
            let mut c = oneport(home.path());
            c.args(["login", "--renew"]);
            c
        })
        .await;
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains(&sentence), "{}", text(&out.stderr));
        let mut cmd = oneport(home.path());
        cmd.args(["server", "identities", "ls", "--dir"]).arg(dir);
        let ls = text(&output(cmd).await.stdout);
        assert!(ls.lines().any(|l| l.contains(&id.caller.serial) && l.contains("laptop lost")), "{ls}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_through_nginx() {
    if !realdb::have_postgres() || !have("nginx") {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let srv = TestServer::start(|c| {
            c.databases.push(realdb::db("pg1", DbProtocol::Postgres, &pg.addr().to_string(), &["alice"]));
        })
        .await;
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, false, Duration::from_secs(30)).await;
        let (token, _) = invite(srv.dir.path(), &[]).await;
        let home = tempfile::tempdir().unwrap();
        let ca = pki.ca.to_str().unwrap();
        let out = login(home.path(), &nginx.addr.to_string(), &token, &[("SSL_CERT_FILE", ca)]).await;
        assert!(out.status.success(), "login --token through nginx: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("load balancer is in front"), "{}", text(&out.stdout));
        let mut cmd = oneport(home.path());
        cmd.env("SSL_CERT_FILE", ca);
        cmd.args(["db", "connect", "pg1", "--db-user", "postgres", "--", "-X", "-A", "-t", "-c", "select 'lb-ok'"]);
        let out = output(cmd).await;
        assert!(out.status.success(), "db connect through nginx: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "lb-ok");

        // The load balancer's CA given as --ca (here ONEPORT_CA) instead of a system
        // root: enrollment trusts it for that hop, and the profile keeps it.
        let (token, _) = invite(srv.dir.path(), &[]).await;
        let home = tempfile::tempdir().unwrap();
        let out = login(home.path(), &nginx.addr.to_string(), &token, &[]).await;
        assert!(!out.status.success());
        assert!(
            text(&out.stderr)
                .contains("presented a certificate no trusted CA signed: give the CA that signs it with --ca FILE"),
            "{}",
            text(&out.stderr)
        );
        let out = login(home.path(), &nginx.addr.to_string(), &token, &[("ONEPORT_CA", ca)]).await;
        assert!(out.status.success(), "login --token --ca through nginx: {}", text(&out.stderr));
        let mut cmd = oneport(home.path());
        cmd.args(["db", "connect", "pg1", "--db-user", "postgres", "--", "-X", "-A", "-t", "-c", "select 'ca-ok'"]);
        let out = output(cmd).await;
        assert!(out.status.success(), "db connect through nginx with the stored --ca: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), "ca-ok");

        // A load balancer holding the cluster's own certificate: the CA the invite
        // pins is the cluster CA, trusted for that hop without --ca.
        let cluster_pki = LbPki::cluster_cert(srv.dir.path());
        let nginx2 = lb::nginx(&cluster_pki, srv.addr, NginxMode::PassUpgrades, false, Duration::from_secs(30)).await;
        let (token, _) = invite(srv.dir.path(), &[]).await;
        let home = tempfile::tempdir().unwrap();
        let out = login(home.path(), &nginx2.addr.to_string(), &token, &[]).await;
        assert!(out.status.success(), "login --token through nginx with the cluster cert: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("load balancer is in front"), "{}", text(&out.stdout));
        let out = db_through(home.path(), "cluster-ok").await;
        assert_eq!(text(&out.stdout).trim(), "cluster-ok", "{}", text(&out.stderr));
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollment_and_renewal_through_an_https_proxy() {
    if !have("squid") {
        return;
    }
    deadline(async {
        let srv = TestServer::start(|_| {}).await;
        let squid = lb::squid().await;
        let via = [("HTTPS_PROXY", format!("http://{}", squid.addr))];
        let env: Vec<(&str, &str)> = via.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (token, _) = invite(srv.dir.path(), &[]).await;
        let home = tempfile::tempdir().unwrap();
        let out = login(home.path(), &srv.addr.to_string(), &token, &env).await;
        assert!(out.status.success(), "login --token through squid: {}", text(&out.stderr));
        let mut cmd = oneport(home.path());
        cmd.envs(env.iter().copied()).args(["login", "--renew"]);
        let out = output(cmd).await;
        assert!(out.status.success(), "login --renew through squid: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Renewed: certificate"), "{}", text(&out.stdout));
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_identity_does_not_silently_replace_a_renewable_one() {
    deadline(async {
        let srv = TestServer::start(|_| {}).await;
        let proxy = srv.addr.to_string();
        let (token, _) = invite(srv.dir.path(), &["--renewable-for", "7d"]).await;
        let home = tempfile::tempdir().unwrap();
        let out = login(home.path(), &proxy, &token, &[]).await;
        assert!(out.status.success(), "login --token: {}", text(&out.stderr));
        let alice = stored_identity(home.path());
        let alice_pem = std::fs::read(&alice).unwrap();
        let files = tempfile::tempdir().unwrap();
        let carol = files.path().join("carol.pem");
        let mut cmd = oneport(home.path());
        cmd.args(["server", "issue", "--dir"]).arg(srv.dir.path()).args(["--user", "carol", "--out"]).arg(&carol);
        let out = output(cmd).await;
        assert!(out.status.success(), "server issue: {}", text(&out.stderr));

        let login_id = |file: PathBuf, extra: &'static [&'static str]| {
            let mut cmd = oneport(home.path());
            cmd.args(["login", "--proxy", &proxy, "--identity"]).arg(file).args(extra);
            output(cmd)
        };
        let out = login_id(carol.clone(), &[]).await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("the profile for {proxy} holds alice's renewable identity (renewable until 20")),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "); `oneport login --proxy {proxy} --identity {} --force` replaces it, or `oneport logout --proxy {proxy}` first",
                carol.display()
            )),
            "{err}"
        );
        assert_eq!(std::fs::read(&alice).unwrap(), alice_pem, "alice's identity is kept");

        // The same identity again (a copy of alice's own file) is fine.
        let copy = files.path().join("alice.pem");
        std::fs::write(&copy, &alice_pem).unwrap();
        let out = login_id(copy, &[]).await;
        assert!(out.status.success(), "login --identity with the same key: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("Renewed automatically by long-running proxies (or `oneport login --renew`) until 20")
                && text(&out.stdout).contains(", as long as it has not expired: renewal presents the current certificate, so one that lapsed (a laptop closed past its expiry) needs a new invite."),
            "the same identity stays renewable: {}",
            text(&out.stdout)
        );

        let out = login_id(carol.clone(), &["--force"]).await;
        assert!(out.status.success(), "login --identity --force: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("as carol"), "{}", text(&out.stdout));
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_db_renews_and_keeps_serving_past_the_first_expiry() {
    if !realdb::have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let srv = TestServer::start(|c| {
            c.databases.push(realdb::db("pg1", DbProtocol::Postgres, &pg.addr().to_string(), &["alice"]));
        })
        .await;
        let (token, _) = invite(srv.dir.path(), &["--ttl", "20s", "--renewable-for", "10m"]).await;
        let home = tempfile::tempdir().unwrap();
        let out = login(home.path(), &srv.addr.to_string(), &token, &[]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let id_path = stored_identity(home.path());
        let first = Identity::load(&id_path).unwrap().caller;
        let mut cmd = oneport(home.path());
        cmd.args(["proxy", "db", "pg1", "--db-user", "postgres"]);
        let proxy = realdb::start_proxy_db(cmd).await.expect("proxy db starts");
        let query = |sql: &'static str| {
            let addr = proxy.addr;
            async move {
                let out = realdb::psql(addr, "postgres").args(["-c", sql]).output().await.unwrap();
                (out.status.success(), text(&out.stdout).trim().to_string(), text(&out.stderr))
            }
        };
        // A session opened on the first certificate outlives its renewal.
        let long = realdb::psql(proxy.addr, "postgres").args(["-c", "select 'long-' || pg_sleep(26)"]).spawn().unwrap();
        // New connections keep working past the first certificate's expiry (waiting
        // for that expiry is what is tested).
        let end = first.not_after + 4;
        let mut n = 0;
        while now() < end {
            let (ok, out, err) = query("select 'tick'").await;
            assert!(ok && out == "tick", "connection {n} failed: {err}");
            n += 1;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let renewed = Identity::load(&id_path).unwrap().caller;
        assert_ne!(renewed.serial, first.serial, "renewed in the background");
        assert!(renewed.not_after > first.not_after);
        assert_eq!((renewed.user.as_str(), renewed.groups.clone()), ("alice", vec!["dev".to_string()]));
        let (ok, out, err) = query("select 'after-expiry'").await;
        assert!(ok && out == "after-expiry", "{err}");
        let long = long.wait_with_output().await.unwrap();
        assert!(long.status.success(), "the open session was dropped: {}", text(&long.stderr));
        assert_eq!(text(&long.stdout).trim(), "long-");
        drop(proxy);

        // Short-lived commands renew too, once the identity is past its renewal time.
        let (token, _) = invite(srv.dir.path(), &["--ttl", "6s"]).await;
        let home = tempfile::tempdir().unwrap();
        let out = login(home.path(), &srv.addr.to_string(), &token, &[]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let id_path = stored_identity(home.path());
        let before = Identity::load(&id_path).unwrap().caller;
        let due = oneport::client::enroll::renew_at(before.not_before, before.not_after);
        while now() <= due {
            tokio::time::sleep(Duration::from_millis(200)).await; // the renewal time is what is tested
        }
        let out = db_query(home.path(), &[], "select 'short'").await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let after = Identity::load(&id_path).unwrap().caller;
        assert_ne!(after.serial, before.serial, "db connect renewed the due identity");
        srv.stop().await;
    })
    .await;
}

/// An identity file replaced by something else (another tool, a copy by hand) is
/// used by a running `proxy db` for its next connection, without a restart.
#[tokio::test(flavor = "multi_thread")]
async fn proxy_db_picks_up_an_identity_file_replaced_on_disk() {
    if !realdb::have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let srv = TestServer::start(|c| {
            c.databases.push(realdb::db("pg1", DbProtocol::Postgres, &pg.addr().to_string(), &["alice"]));
        })
        .await;
        let (alice, bob) = (srv.identity("alice", &[]), srv.identity("bob", &[]));
        let work = tempfile::tempdir().unwrap();
        let live = work.path().join("live.pem");
        let replace = |from: &Path| {
            // As an agent would: a new file renamed over the old one.
            let tmp = work.path().join("next.pem");
            std::fs::copy(from, &tmp).unwrap();
            std::fs::rename(&tmp, &live).unwrap();
        };
        replace(&alice);
        let home = tempfile::tempdir().unwrap();
        let proxy = realdb::proxy_db(&srv, &live, home.path(), "pg1", &["--db-user", "postgres"]).await;
        let query = || async {
            let out = realdb::psql(proxy.addr, "postgres").args(["-c", "select 'as-file'"]).output().await.unwrap();
            (out.status.success(), text(&out.stdout).trim().to_string(), text(&out.stderr))
        };
        let (ok, out, err) = query().await;
        assert!(ok && out == "as-file", "{err}");
        replace(&bob);
        let (ok, _, err) = query().await;
        assert!(!ok && err.contains("access to database pg1 denied for user bob"), "{err}");
        replace(&alice);
        let (ok, out, err) = query().await;
        assert!(ok && out == "as-file", "{err}");
        drop(proxy);
        srv.stop().await;
    })
    .await;
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// HAProxy in TCP mode, round robin over `backends`.
async fn haproxy_tcp(backends: &[SocketAddr]) -> (Child, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let servers: String = backends.iter().enumerate().map(|(i, b)| format!("  server s{i} {b}\n")).collect();
    let conf = format!(
        "global\n  maxconn 500\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend fe\n  bind {addr}\n  default_backend be\nbackend be\n  balance roundrobin\n{servers}"
    );
    std::fs::write(dir.path().join("haproxy.cfg"), conf).unwrap();
    let mut cmd = Command::new(common::which("haproxy").unwrap());
    cmd.arg("-db").arg("-f").arg(dir.path().join("haproxy.cfg"));
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    wait_port(addr, Duration::from_secs(30)).await;
    (child, addr, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_behind_haproxy_share_one_postgres() {
    if !realdb::have_postgres() || !have("haproxy") {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let state = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
        let a = TestServer::start(|c| {
            c.state = Some(state.clone());
            c.state_refresh = REFRESH;
            c.databases.push(realdb::db("pg1", DbProtocol::Postgres, &pg.addr().to_string(), &["alice"]));
        })
        .await;
        // Instance B: the same CA, certificates and state, another port.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b_addr = listener.local_addr().unwrap();
        let mut b_cfg = a.config.clone();
        b_cfg.listen = b_addr.to_string();
        let b_srv = server::Server::new(b_cfg).unwrap();
        let b_stop = tokio_util::sync::CancellationToken::new();
        let b_task = tokio::spawn(server::run(listener, b_srv, b_stop.clone()));
        let (_hap, hap_addr, _hap_dir) = haproxy_tcp(&[a.addr, b_addr]).await;

        // A token used through A is refused by B.
        let (token, _) = invite(a.dir.path(), &[]).await;
        let home = tempfile::tempdir().unwrap();
        let out = login(home.path(), &a.addr.to_string(), &token, &[]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let other = tempfile::tempdir().unwrap();
        let out = login(other.path(), &b_addr.to_string(), &token, &[]).await;
        assert!(text(&out.stderr).contains("the invite token was already used at"), "{}", text(&out.stderr));

        // Through HAProxy (connections alternate between A and B).
        let (token2, _) = invite(a.dir.path(), &[]).await;
        let lb_home = tempfile::tempdir().unwrap();
        let out = login(lb_home.path(), &hap_addr.to_string(), &token2, &[]).await;
        assert!(out.status.success(), "login through HAProxy: {}", text(&out.stderr));
        for i in 0..4 {
            let out = db_query(lb_home.path(), &[], "select 'lb'").await;
            assert!(out.status.success(), "query {i} through HAProxy: {}", text(&out.stderr));
        }
        let out = output({
            let mut c = oneport(lb_home.path());
            c.args(["login", "--renew"]);
            c
        })
        .await;
        assert!(out.status.success(), "renewal through HAProxy: {}", text(&out.stderr));

        // Revoked through A's directory (the shared store): B refuses within seconds.
        let id_path = stored_identity(home.path());
        let serial = Identity::load(&id_path).unwrap().caller.serial;
        let mut cmd = oneport(home.path());
        cmd.args(["server", "revoke", "--dir"]).arg(a.dir.path()).args([
            "--serial",
            &serial,
            "--reason",
            "left the team",
        ]);
        let out = output(cmd).await;
        assert!(out.status.success(), "revoke: {}", text(&out.stderr));
        let sentence = format!("identity {serial} for alice was revoked: left the team");
        let b = b_addr.to_string();
        let id = id_path.to_string_lossy().into_owned();
        let err = poll_until(Duration::from_secs(20), "B to enforce the revocation", || {
            let (home, b, id) = (home.path().to_path_buf(), b.clone(), id.clone());
            async move {
                let out = db_query(&home, &["--proxy", &b, "--identity", &id], "select 1").await;
                (!out.status.success()).then(|| text(&out.stderr))
            }
        })
        .await;
        assert!(err.contains(&sentence), "{err}");
        let mut cmd = oneport(home.path());
        cmd.args(["server", "identities", "ls", "--dir"]).arg(a.dir.path());
        let ls = text(&output(cmd).await.stdout);
        assert!(ls.lines().any(|l| l.contains(&serial) && l.contains("left the team")), "{ls}");
        assert!(ls.lines().filter(|l| l.contains("alice")).count() >= 3, "two enrollments and a renewal: {ls}");
        // The other user's identity is untouched.
        let out = db_query(lb_home.path(), &[], "select 'still'").await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        b_stop.cancel();
        b_task.await.unwrap().unwrap();
        a.stop().await;
    })
    .await;
}

/// One raw exchange on the auth route (the server's certificate is not checked
/// here: what is tested is what the server does with the bytes).
async fn raw_exchange(addr: SocketAddr, cluster: &str, frame: &[u8]) -> Response {
    let trust = oneport::net::tls::Trust { insecure: true, ..Default::default() };
    let cfg = oneport::net::tls::client_config(&trust, None, vec![wire::alpn(cluster).into_bytes()]).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("teleport.cluster.local").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(wire::alpn(cluster).as_bytes()));
    tls.write_all(frame).await.unwrap();
    tls.flush().await.unwrap();
    wire::read_frame(&mut tls, wire::MAX_RESPONSE).await.unwrap()
}

fn refusal(r: Response) -> String {
    match r {
        Response::Refused { message, .. } => message,
        Response::Issued(i) => panic!("expected a refusal, got a certificate for {}", i.user),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_on_the_auth_route() {
    deadline(async {
        let srv = TestServer::start(|_| {}).await;
        let store = server::auth::open_store(&srv.config).unwrap();
        let ca = std::fs::read_to_string(srv.ca_path()).unwrap();
        let o = server::auth::InviteOptions {
            user: "alice".into(),
            groups: vec!["dev".into()],
            ttl: Duration::from_secs(600),
            renewable_for: Duration::from_secs(600),
            expires_in: Duration::from_secs(600),
        };
        let token = server::auth::invite(store.as_ref(), &ca, &o).await.unwrap();
        let secret = wire::hex(&token.secret);
        let enroll = |csr: String| wire::encode(&Request::Enroll { secret: secret.clone(), csr }).unwrap();
        // Oversized frame: refused before it is read.
        let huge = (10u32 << 20).to_be_bytes();
        assert!(refusal(raw_exchange(srv.addr, "test", &huge).await).contains("more than the"));
        // Malformed JSON, malformed and oversized CSRs: refused, the token not used.
        let junk = [&5u32.to_be_bytes()[..], b"{nope"].concat();
        assert!(refusal(raw_exchange(srv.addr, "test", &junk).await).contains("not understood"));
        let bad = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAA==\n-----END CERTIFICATE REQUEST-----\n".to_string();
        assert!(refusal(raw_exchange(srv.addr, "test", &enroll(bad)).await).contains("not a valid PKCS#10"));
        let big =
            format!("-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n", "A".repeat(17000));
        assert!(refusal(raw_exchange(srv.addr, "test", &enroll(big)).await).contains("more than the 16384"));
        // A CSR naming another user and group: the certificate names the invite's.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name.push(rcgen::DnType::CommonName, "admin");
        p.distinguished_name.push(rcgen::DnType::OrganizationName, "root");
        let csr = p.serialize_request(&key).unwrap().pem().unwrap();
        let Response::Issued(issued) = raw_exchange(srv.addr, "test", &enroll(csr.clone())).await else {
            panic!("a valid CSR with an unused token must be signed");
        };
        let der: rustls::pki_types::CertificateDer<'static> =
            rustls::pki_types::pem::PemObject::from_pem_slice(issued.cert.as_bytes()).unwrap();
        let c = oneport::identity::Caller::from_der(&der).unwrap();
        assert_eq!((c.user.as_str(), c.groups.clone()), ("alice", vec!["dev".to_string()]));
        // Renewal without a certificate.
        let renew = wire::encode(&Request::Renew { csr }).unwrap();
        assert!(refusal(raw_exchange(srv.addr, "test", &renew).await).contains("needs the current identity"));
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_store_refuses_enrollment_but_issued_identities_work() {
    deadline(async {
        let (echo, _) = common::spawn_echo().await;
        let dead = format!("postgres://postgres@127.0.0.1:{}/nothing", free_port());
        let srv = TestServer::start(|c| {
            c.state = Some(dead);
            c.apps.push(oneport::server::config::App {
                name: "echo".into(),
                kind: oneport::server::config::AppKind::Tcp,
                addr: echo.to_string(),
                allow: oneport::server::config::Allow { users: vec!["bob".into()], groups: vec![] },
            });
        })
        .await;
        let id = srv.identity("bob", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = realdb::as_user(&srv, &id, home.path());
        cmd.arg("ls");
        let out = output(cmd).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("echo"), "{}", text(&out.stdout));
        let token = Token::generate(pin_of(&srv.ca_path())).to_string();
        let out = login(home.path(), &srv.addr.to_string(), &token, &[]).await;
        let err = text(&out.stderr);
        assert!(err.contains("cannot reach its state store"), "{err}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_says_when_its_store_is_unreachable() {
    deadline(async {
        let dead = format!("postgres://postgres@127.0.0.1:{}/nothing", free_port());
        let srv = bin_server(|c| c.state = Some(dead)).await;
        let log = srv.log.clone();
        let line = poll_until(Duration::from_secs(20), "the log to mention the store", || {
            let log = log.clone();
            async move {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.lines().find(|l| l.contains("state store unreachable")).map(str::to_string)
            }
        })
        .await;
        assert!(line.contains("enrollment and renewal are refused"), "{line}");
        assert!(line.contains("127.0.0.1"), "names the store: {line}");
    })
    .await;
}
