//! PostgreSQL through oneport with the real binary, a real PostgreSQL 15 and psql:
//! `db connect` (output, exit codes, Ctrl-C, missing client, refusals before the
//! client starts), `proxy db` (settings, queries, 20 MiB `\copy` both ways checked
//! by hash, query cancel on a fresh connection, refusals shown by psql with their
//! SQLSTATE), and the server's TLS towards the database.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::lb;
use common::realdb::{
    as_user, db, have_postgres, output, proxy_db, psql, serve_db, start_proxy_db, text, PgTls, Postgres,
};
use common::*;
use oneport::proto::db::postgres::startup_message;
use oneport::server::config::{BackendTls, Database, DbProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

/// `db connect` as the `postgres` database user with client arguments `extra`.
fn db_connect(srv: &TestServer, id: &Path, home: &Path, name: &str, extra: &[&str]) -> Command {
    let mut cmd = as_user(srv, id, home);
    cmd.args(["db", "connect", name, "--db-user", "postgres", "--db-name", "postgres", "--"]).args(extra);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_connect_runs_psql_and_passes_its_exit_code_through() {
    if !have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let (srv, id, home) = serve_db("pg1", DbProtocol::Postgres, pg.addr()).await;

        let out = output(db_connect(&srv, &id, home.path(), "pg1", &["-X", "-c", "select 1"])).await;
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
        assert!(stdout.lines().any(|l| l.trim() == "1"), "{stdout}");
        assert!(stdout.contains("(1 row)"), "{stdout}");

        // psql exits 3 for a failed script with ON_ERROR_STOP: a code oneport never uses.
        let script = home.path().join("bad.sql");
        std::fs::write(&script, "select nonsense;\n").unwrap();
        let extra = ["-X", "-v", "ON_ERROR_STOP=1", "-f", script.to_str().unwrap()];
        let out = output(db_connect(&srv, &id, home.path(), "pg1", &extra)).await;
        assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(r#"column "nonsense" does not exist"#), "{}", text(&out.stderr));
        srv.stop().await;
    })
    .await;
}

/// A PATH holding only a fake `psql` that records its arguments in `marker`.
fn fake_psql(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let marker = dir.join("launched");
    let script = format!("#!/bin/sh\necho \"$@\" > '{}'\n", marker.display());
    std::fs::write(bin.join("psql"), script).unwrap();
    std::process::Command::new("chmod").arg("755").arg(bin.join("psql")).status().unwrap();
    (bin, marker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_connect_refuses_before_the_client_starts() {
    deadline(async {
        // Nothing listens on the database's port: none of these may dial it.
        let srv =
            TestServer::start(|c| c.databases.push(db("pg1", DbProtocol::Postgres, "127.0.0.1:1", &["alice"]))).await;
        let (alice, bob) = (srv.identity("alice", &[]), srv.identity("bob", &[]));
        let home = tempfile::tempdir().unwrap();
        let (bin, marker) = fake_psql(home.path());

        let mut cmd = db_connect(&srv, &bob, home.path(), "pg1", &["-c", "select 1"]);
        cmd.env("PATH", &bin);
        let out = output(cmd).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("access to database pg1 denied for user bob"), "{}", text(&out.stderr));
        assert!(!marker.exists(), "the client was started for a denied database");

        let mut cmd = db_connect(&srv, &alice, home.path(), "nope", &[]);
        cmd.env("PATH", &bin);
        let out = output(cmd).await;
        let want = format!("database nope is not known to proxy {}; known: pg1", srv.addr);
        assert!(text(&out.stderr).contains(&want), "{}", text(&out.stderr));
        assert!(!marker.exists(), "the client was started for an unknown database");

        // The same PATH does start the client when the database is allowed, with the
        // URL and the extra arguments: so the two checks above could have failed.
        let mut cmd = db_connect(&srv, &alice, home.path(), "pg1", &["-c", "select 1"]);
        cmd.env("PATH", &bin);
        let out = output(cmd).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let args = std::fs::read_to_string(&marker).unwrap();
        assert!(args.starts_with("postgres://postgres@127.0.0.1:") && args.contains("/postgres -c select 1"), "{args}");

        // No client installed: say which package to install.
        let empty = home.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let mut cmd = db_connect(&srv, &alice, home.path(), "pg1", &[]);
        cmd.env("PATH", &empty);
        let out = output(cmd).await;
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert!(err.contains("psql was not found") && err.contains("postgresql-client"), "{err}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_db_serves_psql_and_copies_20_mib_both_ways() {
    if !have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let (srv, id, home) = serve_db("pg1", DbProtocol::Postgres, pg.addr()).await;

        // A fixed --port, as a GUI client would use; retried on the rare collision.
        let mut started = None;
        for _ in 0..3 {
            let port = free_port().to_string();
            let mut cmd = as_user(&srv, &id, home.path());
            cmd.args(["proxy", "db", "pg1", "--port", &port, "--db-user", "postgres", "--db-name", "postgres"]);
            match start_proxy_db(cmd).await {
                Ok(p) => {
                    started = Some((p, port));
                    break;
                }
                Err(e) => assert!(e.contains("port is taken"), "{e}"),
            }
        }
        let (proxy, port) = started.expect("no free port in 3 attempts");
        assert_eq!(proxy.addr.port().to_string(), port);
        assert!(proxy.lines[0].contains(&format!("127.0.0.1:{port}")), "{:?}", proxy.lines);
        let settings = proxy.lines.join("\n");
        for want in [
            "host:     127.0.0.1".to_string(),
            format!("port:     {port}"),
            "user:     postgres".into(),
            "database: postgres".into(),
            format!("psql postgres://postgres@127.0.0.1:{port}/postgres"),
        ] {
            assert!(settings.contains(&want), "missing {want:?} in:\n{settings}");
        }

        let out = psql(proxy.addr, "postgres").args(["-c", "select 40 + 2"]).output().await.unwrap();
        assert_eq!(text(&out.stdout).trim(), "42", "stderr: {}", text(&out.stderr));

        // 20 MiB of lines in through \copy; PostgreSQL's own hash of what arrived.
        let files = tempfile::tempdir().unwrap();
        let (input, want, rows) = copy_input(files.path());
        let out = psql(proxy.addr, "postgres")
            .args(["-c", "create table t(id bigserial primary key, line text)"])
            .args(["-c", &format!("\\copy t(line) from '{}'", input.display())])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let got = pg
            .query(
                "select count(*) || ' ' || encode(sha256(convert_to(string_agg(line || E'\\n', '' order by id), 'UTF8')), 'hex') from t",
            )
            .await;
        assert_eq!(got, format!("{rows} {want}"), "what reached the database differs");

        // And out again through \copy, hashed on this side.
        let output_file = files.path().join("out.txt");
        let out = psql(proxy.addr, "postgres")
            .args(["-c", &format!("\\copy (select line from t order by id) to '{}'", output_file.display())])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let back = std::fs::read(&output_file).unwrap();
        assert_eq!(back.len(), std::fs::metadata(&input).unwrap().len() as usize);
        assert_eq!(sha256(&back), want, "what came back differs");
        srv.stop().await;
    })
    .await;
}

/// Writes about 20 MiB of hex lines; returns the file, its SHA-256 and the line count.
fn copy_input(dir: &Path) -> (PathBuf, String, usize) {
    let raw = random_bytes(10 << 20, 42);
    let mut data = Vec::with_capacity(21 << 20);
    let mut rows = 0;
    for chunk in raw.chunks(32) {
        data.extend_from_slice(hex(chunk).as_bytes());
        data.push(b'\n');
        rows += 1;
    }
    assert!(data.len() >= 20 << 20);
    let path = dir.join("in.txt");
    std::fs::write(&path, &data).unwrap();
    (path, sha256(&data), rows)
}

/// Waits until `sql` runs on the server (seen through a direct connection).
async fn wait_until_running(pg: &Postgres, sql: &str) {
    let probe = format!("select count(*) from pg_stat_activity where query = '{sql}' and state = 'active'");
    let probe = probe.as_str();
    poll_until(
        Duration::from_secs(30),
        "the query to run",
        || async move { (pg.query(probe).await == "1").then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_psql_cancels_the_query_through_proxy_db() {
    if !have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let (srv, id, home) = serve_db("pg1", DbProtocol::Postgres, pg.addr()).await;
        let proxy = proxy_db(&srv, &id, home.path(), "pg1", &["--db-user", "postgres"]).await;

        let started = tokio::time::Instant::now();
        let client = psql(proxy.addr, "postgres").args(["-c", "select pg_sleep(30)"]).spawn().unwrap();
        wait_until_running(&pg, "select pg_sleep(30)").await;
        // What Ctrl-C does: psql opens a fresh connection and sends CancelRequest.
        let pid = client.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let out = tokio::time::timeout(Duration::from_secs(20), client.wait_with_output()).await.unwrap().unwrap();
        let err = text(&out.stderr);
        assert!(err.contains("canceling statement due to user request"), "{err}");
        assert_eq!(out.status.code(), Some(1));
        assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_connect_survives_ctrl_c_and_psql_cancels_through_it() {
    if !have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let (srv, id, home) = serve_db("pg1", DbProtocol::Postgres, pg.addr()).await;
        let mut cmd = db_connect(&srv, &id, home.path(), "pg1", &["-X", "-c", "select pg_sleep(30)"]);
        // Its own process group, as a terminal's foreground job: Ctrl-C reaches
        // oneport and psql alike.
        cmd.process_group(0).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = tokio::time::Instant::now();
        let child = cmd.spawn().unwrap();
        wait_until_running(&pg, "select pg_sleep(30)").await;
        let group = format!("-{}", child.id().unwrap());
        assert!(std::process::Command::new("kill").args(["-INT", "--", &group]).status().unwrap().success());
        let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await.unwrap().unwrap();
        let err = text(&out.stderr);
        assert!(err.contains("canceling statement due to user request"), "{err}");
        assert_eq!(out.status.code(), Some(1), "psql's code, not a signal death: {err}");
        assert!(started.elapsed() < Duration::from_secs(20));
        srv.stop().await;
    })
    .await;
}

/// Speaks to a local proxy as a Postgres client would up to the first answer:
/// SSLRequest (must be answered N), startup, then reads the ErrorResponse and
/// returns its SQLSTATE and message.
async fn raw_startup_error(addr: SocketAddr) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[8u32.to_be_bytes(), 80_877_103u32.to_be_bytes()].concat()).await.unwrap();
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"N");
    s.write_all(&startup_message(&[("user", "postgres"), ("database", "postgres")])).await.unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply.first(), Some(&b'E'), "{reply:?}");
    let field = |tag: u8| {
        reply[5..].split(|b| *b == 0).find(|f| f.first() == Some(&tag)).map(|f| text(&f[1..])).unwrap_or_default()
    };
    (field(b'C'), field(b'M'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_reach_psql_as_fatal_errors() {
    if !have("psql") {
        return;
    }
    deadline(async {
        let srv =
            TestServer::start(|c| c.databases.push(db("pg1", DbProtocol::Postgres, "127.0.0.1:1", &["alice"]))).await;
        let (alice, bob) = (srv.identity("alice", &[]), srv.identity("bob", &[]));
        let home = tempfile::tempdir().unwrap();
        let denied = "access to database pg1 denied for user bob";

        // Without --protocol the proxy cannot know what to speak: it stops, saying why.
        let mut cmd = as_user(&srv, &bob, home.path());
        cmd.args(["proxy", "db", "pg1"]);
        let err = start_proxy_db(cmd).await.err().expect("proxy db started for a denied user");
        assert!(err.contains(denied), "{err}");

        // With it, it starts, and psql shows the server's sentence.
        let proxy = proxy_db(&srv, &bob, home.path(), "pg1", &["--protocol", "postgres"]).await;
        let out = psql(proxy.addr, "postgres").args(["-c", "select 1"]).output().await.unwrap();
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains(&format!("FATAL:  {denied}")), "{}", text(&out.stderr));
        assert_eq!(raw_startup_error(proxy.addr).await, ("28000".into(), denied.into()));

        let unknown = format!("database nope is not known to proxy {}; known: pg1", srv.addr);
        let proxy = proxy_db(&srv, &alice, home.path(), "nope", &["--protocol", "postgres"]).await;
        let out = psql(proxy.addr, "postgres").args(["-c", "select 1"]).output().await.unwrap();
        assert!(text(&out.stderr).contains(&format!("FATAL:  {unknown}")), "{}", text(&out.stderr));
        assert_eq!(raw_startup_error(proxy.addr).await, ("3D000".into(), unknown));

        // Allowed, but nothing listens at the database's address: the server says so
        // in the Postgres protocol, without the address.
        let proxy = proxy_db(&srv, &alice, home.path(), "pg1", &[]).await;
        let out = psql(proxy.addr, "postgres").args(["-c", "select 1"]).output().await.unwrap();
        let down = format!("database pg1 is unreachable from proxy {} (Connection refused", srv.addr);
        assert!(text(&out.stderr).contains(&format!("FATAL:  {down}")), "{}", text(&out.stderr));
        let (code, msg) = raw_startup_error(proxy.addr).await;
        assert_eq!(code, "08001");
        assert!(msg.starts_with(&down) && !msg.contains("127.0.0.1:1"), "{msg}");

        // An allowed database whose proxy is gone: a connection failure, still in psql.
        srv.stop().await;
        let (code, msg) = raw_startup_error(proxy.addr).await;
        assert_eq!(code, "08006", "{msg}");
        assert!(msg.contains("oneport could not reach database pg1") && msg.contains("cannot connect"), "{msg}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_speaks_tls_to_postgres() {
    if !have_postgres() {
        return;
    }
    deadline(async {
        let ca = oneport::identity::pki::make_ca("databases").unwrap();
        let day = Duration::from_secs(86400);
        let ip = "127.0.0.1".parse().unwrap();
        let cert = oneport::identity::pki::make_server_cert(&ca, &["db.test".into()], &[ip], day).unwrap();
        let pg = Postgres::start_with(Some(PgTls { cert_pem: cert.cert_pem, key_pem: cert.key_pem })).await;
        // The database takes TLS only: a plaintext connection is turned away.
        let out =
            psql(pg.addr(), "postgres").env("PGSSLMODE", "disable").args(["-c", "select 1"]).output().await.unwrap();
        assert!(!out.status.success(), "PostgreSQL accepted plaintext; the test would prove nothing");

        let cas = tempfile::tempdir().unwrap();
        let ca_file = cas.path().join("db-ca.pem");
        std::fs::write(&ca_file, &ca.cert_pem).unwrap();
        let other_ca = cas.path().join("other-ca.pem");
        std::fs::write(&other_ca, oneport::identity::pki::make_ca("other").unwrap().cert_pem).unwrap();
        let addr = pg.addr().to_string();
        let with_tls = |name: &str, ca: &Path, server_name: Option<&str>| Database {
            tls: Some(BackendTls { ca: ca.to_path_buf(), server_name: server_name.map(str::to_string) }),
            ..db(name, DbProtocol::Postgres, &addr, &["alice"])
        };
        let srv = TestServer::start(|c| {
            c.databases.push(with_tls("pg-name", &ca_file, Some("db.test")));
            c.databases.push(with_tls("pg-ip", &ca_file, None)); // verified against the IP SAN
            c.databases.push(with_tls("pg-other-ca", &other_ca, Some("db.test")));
            c.databases.push(with_tls("pg-wrong-name", &ca_file, Some("elsewhere.test")));
        })
        .await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let ssl_in_use = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
        for name in ["pg-name", "pg-ip"] {
            let out = output(db_connect(&srv, &id, home.path(), name, &["-X", "-A", "-t", "-c", ssl_in_use])).await;
            assert!(out.status.success(), "{name}: {}", text(&out.stderr));
            assert_eq!(text(&out.stdout).trim(), "t", "{name}: the server's session is not TLS");
        }
        for (name, reason) in [
            ("pg-other-ca", "the database presents a certificate not signed by the configured CA; configure the CA that signed it"),
            ("pg-wrong-name", "the database's certificate is not valid for the name the server checks (the host of its address, or its configured server name); use a name the certificate carries"),
        ] {
            let out = output(db_connect(&srv, &id, home.path(), name, &["-X", "-c", "select 1"])).await;
            assert!(!out.status.success(), "{name}: connected although the database's certificate must not verify");
            let want = format!("database {name} is unreachable from proxy {} ({reason})", srv.addr);
            assert!(text(&out.stderr).contains(&want), "{}", text(&out.stderr));
        }
        srv.stop().await;
    })
    .await;
}

/// A TLS-only echo server with `cert`, for the protocols that start TLS at once.
async fn spawn_tls_echo(cert: &oneport::identity::pki::CertAndKey) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    let chain = vec![rustls::pki_types::CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(oneport::net::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = loopback_listener().await;
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let (mut r, mut w) = tokio::io::split(tls);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_mongodb_entries_get_tls_from_the_first_byte() {
    deadline(async {
        let ca = oneport::identity::pki::make_ca("databases").unwrap();
        let cert =
            oneport::identity::pki::make_server_cert(&ca, &["cache.test".into()], &[], Duration::from_secs(86400))
                .unwrap();
        let echo = spawn_tls_echo(&cert).await;
        let cas = tempfile::tempdir().unwrap();
        let ca_file = cas.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.cert_pem).unwrap();
        let tls = Some(BackendTls { ca: ca_file, server_name: Some("cache.test".into()) });
        let srv = TestServer::start(|c| {
            c.databases
                .push(Database { tls: tls.clone(), ..db("cache", DbProtocol::Redis, &echo.to_string(), &["alice"]) });
            c.databases.push(Database { tls, ..db("docs", DbProtocol::Mongodb, &echo.to_string(), &["alice"]) });
        })
        .await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        for name in ["cache", "docs"] {
            let proxy = proxy_db(&srv, &id, home.path(), name, &[]).await;
            let payload = Arc::new(random_bytes(4 << 20, 5));
            let back = send_and_collect(TcpStream::connect(proxy.addr).await.unwrap(), payload.clone()).await;
            assert_eq!(sha256(&back), sha256(&payload), "{name}: bytes changed on the way");
        }
        srv.stop().await;
    })
    .await;
}

/// nginx (cut-off 1 s) in front of a server pinging every 300 ms: psql's session
/// through `db connect` survives a 3 s query that sends nothing. The negative
/// control runs beside it on the same database: the same path and query through a
/// server that never pings is cut, and psql fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_through_nginx_in_front_of_the_server() {
    if !have_postgres() || !have("nginx") {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let (b, silent) =
            tokio::join!(PgBehindNginx::start(pg.addr(), FAST_IDLE.pings), PgBehindNginx::start(pg.addr(), NO_PINGS));
        let (out, cut) = tokio::join!(b.idle_query(), silent.idle_query());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with("1\n") && stdout.contains("still here"), "{stdout}");
        // (Without pings a loaded machine may stall past the cut-off even before
        // the first query: that is a cut too.)
        let stdout = text(&cut.stdout);
        assert!(
            !cut.status.success() && !stdout.contains("still here"),
            "the session survived without pings, so pings are not what keeps it up: {stdout}"
        );
        silent.srv.stop().await;

        // A refusal travels back through the upgrade and still reaches psql.
        let mut cmd = b.through_nginx(&b.srv.identity("bob", &[]));
        cmd.args(["proxy", "db", "pg1", "--protocol", "postgres"]);
        let proxy = start_proxy_db(cmd).await.unwrap();
        let out = psql(proxy.addr, "postgres").args(["-c", "select 1"]).output().await.unwrap();
        assert!(
            text(&out.stderr).contains("FATAL:  access to database pg1 denied for user bob"),
            "{}",
            text(&out.stderr)
        );
        b.srv.stop().await;
    })
    .await;
}

/// A server pinging every `pings` with database `pg1` (at `pg`) for alice, and nginx
/// (cut-off `FAST_IDLE.lb`) in front of it.
struct PgBehindNginx {
    srv: TestServer,
    lb_pki: lb::LbPki,
    nginx: lb::Proc,
    alice: PathBuf,
    home: tempfile::TempDir,
}

impl PgBehindNginx {
    async fn start(pg: SocketAddr, pings: Duration) -> PgBehindNginx {
        let srv = TestServer::start(|c| {
            c.ping_interval = pings;
            c.databases.push(db("pg1", DbProtocol::Postgres, &pg.to_string(), &["alice"]));
        })
        .await;
        let alice = srv.identity("alice", &[]);
        let lb_pki = lb::LbPki::new();
        let nginx = lb::nginx(&lb_pki, srv.addr, lb::NginxMode::PassUpgrades, false, FAST_IDLE.lb).await;
        PgBehindNginx { srv, lb_pki, nginx, alice, home: tempfile::tempdir().unwrap() }
    }

    /// `oneport` through nginx as `id`.
    fn through_nginx(&self, id: &Path) -> Command {
        let mut cmd = oneport(self.home.path());
        cmd.env("SSL_CERT_FILE", &self.lb_pki.ca).args(["--proxy", &self.nginx.addr.to_string(), "--identity"]).arg(id);
        cmd
    }

    /// `db connect` as alice: `select 1`, a query silent for `FAST_IDLE.window`,
    /// then `select 'still here'`.
    async fn idle_query(&self) -> std::process::Output {
        let sleep = format!("select pg_sleep({})", FAST_IDLE.window.as_secs());
        let mut cmd = self.through_nginx(&self.alice);
        cmd.args(["db", "connect", "pg1", "--db-user", "postgres", "--db-name", "postgres", "--"]).args([
            "-X",
            "-A",
            "-t",
            "-c",
            "select 1",
            "-c",
            &sleep,
            "-c",
            "select 'still here'",
        ]);
        output(cmd).await
    }
}
