//! Multiplexed sessions (docs/protocol.md §13) end to end: many local connections on
//! one routing connection, 64 MiB each way on a stream checked by hash, the
//! per-stream re-check of an expired identity on an open session, the fallback
//! against a server with `mux.enabled: false`, and pgbench with 8 clients through
//! the real binary's `proxy db` on one session.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::realdb::{self, Postgres};
use common::*;
use oneport::client::dial::{Dialer, PathOptions, Target};
use oneport::client::session::{Mode, Session};
use oneport::net::mux;
use oneport::proto::db::DbProtocol;
use oneport::proto::naming::{self, Kind, Protocol};
use oneport::server::config::{Allow, App, AppKind};
use oneport::util::addr::HostPort;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn tcp_app(name: &str, addr: SocketAddr, users: &[&str]) -> App {
    App {
        name: name.into(),
        kind: AppKind::Tcp,
        addr: addr.to_string(),
        allow: Allow { users: users.iter().map(|s| s.to_string()).collect(), groups: vec![] },
    }
}

/// A TCP forwarder in front of `to` that counts the connections it accepted.
async fn counting_forwarder(to: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    tokio::spawn(async move {
        while let Ok((mut a, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut b) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
            });
        }
    });
    (addr, n)
}

/// A direct dialer (no upgrade probe) for `id` reaching the server at `proxy`.
fn dialer_via(srv: &TestServer, id: &std::path::Path, proxy: SocketAddr) -> Arc<Dialer> {
    let mut ctx = srv.context(id);
    ctx.proxy = HostPort::parse(&proxy.to_string()).unwrap();
    Arc::new(Dialer::with_options(ctx, PathOptions { upgrade_override: Some(false), ..PathOptions::default() }))
}

async fn echo_once(session: &Arc<Session>, msg: &[u8]) -> Vec<u8> {
    let mut s = session.open().await.unwrap();
    s.write_all(msg).await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_share_one_session_and_move_64_mib_each_way() {
    deadline(async {
        let (echo, accepted) = spawn_echo().await;
        let srv = TestServer::start(|c| c.apps.push(tcp_app("echo", echo, &["alice"]))).await;
        let id = srv.identity("alice", &[]);
        let (front, dials) = counting_forwarder(srv.addr).await;
        let session = Session::new(dialer_via(&srv, &id, front), Kind::App, "echo", Protocol::Tcp);
        session.warm().await;
        assert_eq!(session.mode().to_string(), "multiplexed session (teleport-tcp-mux)");
        // 64 MiB each way on one stream while small echoes run on others.
        let payload = Arc::new(random_bytes(64 << 20, 21));
        let bulk = {
            let (s, p) = (session.clone(), payload.clone());
            tokio::spawn(async move { send_and_collect(s.open().await.unwrap(), p).await })
        };
        let mut small = Vec::new();
        for i in 0..16u8 {
            let s = session.clone();
            small.push(tokio::spawn(async move { (i, echo_once(&s, &[i; 100]).await) }));
        }
        for t in small {
            let (i, got) = t.await.unwrap();
            assert_eq!(got, vec![i; 100]);
        }
        let back = bulk.await.unwrap();
        assert_eq!(back.len(), payload.len());
        assert_eq!(sha256(&back), sha256(&payload));
        assert_eq!(accepted.load(Ordering::SeqCst), 17, "the server dials the backend once per stream");
        assert_eq!(dials.load(Ordering::SeqCst), 1, "17 connections on one routing connection");
        srv.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_when_the_server_does_not_offer_mux() {
    deadline(async {
        let (echo, _) = spawn_echo().await;
        let srv = TestServer::start(|c| {
            c.apps.push(tcp_app("echo", echo, &["alice"]));
            c.mux.enabled = false;
        })
        .await;
        let id = srv.identity("alice", &[]);
        let (front, dials) = counting_forwarder(srv.addr).await;
        let session = Session::new(dialer_via(&srv, &id, front), Kind::App, "echo", Protocol::Tcp);
        session.warm().await;
        assert_eq!(session.mode(), Mode::PerConnection(naming::Alpn::parse(b"teleport-tcp-ping")));
        for i in 0..3u8 {
            assert_eq!(echo_once(&session, &[i; 10]).await, vec![i; 10]);
        }
        assert_eq!(dials.load(Ordering::SeqCst), 4, "the warm-up dial, then one per connection");
        srv.stop().await;
    })
    .await;
}

/// A raw multiplexed session to app `echo` as `id` (no client-side checks), and a
/// way to open streams on it.
struct RawSession {
    send: h2::client::SendRequest<Bytes>,
    sni: String,
}

impl RawSession {
    async fn open(srv: &TestServer, id: &std::path::Path) -> RawSession {
        let dialer = dialer_via(srv, id, srv.addr);
        let sni = naming::resource_sni(Kind::App, "echo", naming::INTERNAL_DOMAIN);
        let dialed = dialer.dial(&Target { sni: sni.clone(), alpn: Protocol::Tcp.mux_offer() }).await.unwrap();
        assert!(dialed.alpn.is_some_and(|a| a.mux), "{:?}", dialed.alpn);
        let (send, conn) = mux::client_builder().handshake::<_, Bytes>(dialed.stream).await.unwrap();
        tokio::spawn(conn);
        RawSession { send, sni }
    }

    async fn stream(&self) -> mux::H2Stream {
        let mut send = self.send.clone().ready().await.unwrap();
        let (answer, stream) = send.send_request(mux::connect_request(&self.sni).unwrap(), false).unwrap();
        mux::H2Stream::client(stream, answer)
    }

    /// Opens streams until one is refused; its refusal.
    async fn refused(&self, what: &str) -> mux::StreamRefused {
        poll_until(Duration::from_secs(20), what, || async {
            let mut s = self.stream().await;
            // Ends its side at once: an accepted stream then reads EOF from the echo.
            let _ = s.shutdown().await;
            let mut buf = [0u8; 1];
            match s.read(&mut buf).await {
                Err(e) => mux::StreamRefused::of(&e).cloned(),
                Ok(_) => None,
            }
        })
        .await
    }
}

async fn echo_on(s: &mut mux::H2Stream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, msg);
}

/// The server re-checks expiry at every stream open: a session opened before the
/// identity expired opens no stream after it, and says why; the stream opened
/// before runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_identity_opens_no_new_streams_on_its_session() {
    deadline(async {
        let (echo, accepted) = spawn_echo().await;
        let srv = TestServer::start(|c| c.apps.push(tcp_app("echo", echo, &["alice"]))).await;
        let id = srv.dir.path().join("short.pem");
        oneport::server::setup::issue(srv.dir.path(), "alice", &[], Duration::from_secs(3), &id).unwrap();
        let session = RawSession::open(&srv, &id).await;
        let mut s = session.stream().await;
        echo_on(&mut s, b"before").await;
        // Waiting past the expiry is the thing under test.
        let refusal = session.refused("a refused stream after expiry").await;
        assert_eq!(refusal.status, 403);
        assert_eq!(refusal.sentence, "the identity of user alice has expired: get a new one and log in again");
        echo_on(&mut s, b"after!").await;
        let dialled = accepted.load(Ordering::SeqCst);
        assert!(session.refused("a second refusal").await.status == 403);
        assert_eq!(accepted.load(Ordering::SeqCst), dialled, "a refused stream dials nothing");
        srv.stop().await;
    })
    .await;
}

/// `server revoke` reaches a session already open: its next stream is refused with
/// the revocation's sentence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_identity_opens_no_new_streams_on_its_session() {
    deadline(async {
        let (echo, _) = spawn_echo().await;
        let srv = TestServer::start(|c| c.apps.push(tcp_app("echo", echo, &["alice"]))).await;
        let home = tempfile::tempdir().unwrap();
        // `server issue` records the identity, so that `server revoke` finds it.
        let id = srv.dir.path().join("alice-recorded.pem");
        let mut cmd = oneport(home.path());
        cmd.args(["server", "issue", "--dir"]).arg(srv.dir.path()).args(["--user", "alice", "--out"]).arg(&id);
        let out = realdb::output(cmd).await;
        assert!(out.status.success(), "issue: {}", realdb::text(&out.stderr));
        let serial = oneport::identity::Identity::load(&id).unwrap().caller.serial;
        let session = RawSession::open(&srv, &id).await;
        let mut s = session.stream().await;
        echo_on(&mut s, b"before").await;
        let mut cmd = oneport(home.path());
        cmd.args(["server", "revoke", "--dir"]).arg(srv.dir.path()).args(["--serial", &serial, "--reason", "left"]);
        let out = realdb::output(cmd).await;
        assert!(out.status.success(), "revoke: {}", realdb::text(&out.stderr));
        let refusal = session.refused("the revocation to reach the open session").await;
        assert_eq!(refusal.status, 403);
        assert_eq!(refusal.sentence, format!("identity {serial} for alice was revoked: left"));
        srv.stop().await;
    })
    .await;
}

/// pgbench with 8 clients through the binary's `proxy db`: every connection is a
/// stream, so the proxy sees a handful of routing connections, not one per client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_with_8_clients_through_one_session() {
    if !realdb::have_postgres() || !have("pgbench") {
        assert!(std::env::var_os("CI").is_none(), "PostgreSQL or pgbench is missing");
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let srv = TestServer::start(|c| {
            c.databases.push(realdb::db("pg1", DbProtocol::Postgres, &pg.addr().to_string(), &["alice"]))
        })
        .await;
        let id = srv.identity("alice", &[]);
        let (front, dials) = counting_forwarder(srv.addr).await;
        let home = tempfile::tempdir().unwrap();
        let mut cmd = oneport(home.path());
        cmd.env("ONEPORT_TLS_ROUTING_CONN_UPGRADE", "false")
            .args(["--proxy", &front.to_string(), "--identity"])
            .arg(&id)
            .args(["proxy", "db", "pg1", "--db-user", "postgres"]);
        let proxy = realdb::start_proxy_db(cmd).await.unwrap();
        let addr = proxy.addr;
        let pgbench = |args: &[&str]| {
            let mut c = tokio::process::Command::new("pgbench");
            c.args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string(), "-U", "postgres"])
                .args(args)
                .arg("postgres")
                .env("PGCONNECT_TIMEOUT", "10")
                .env_remove("PGSSLMODE")
                .stdin(std::process::Stdio::null());
            c
        };
        let before = dials.load(Ordering::SeqCst);
        let init = realdb::output(pgbench(&["-i", "-q"])).await;
        assert!(init.status.success(), "pgbench -i: {}", realdb::text(&init.stderr));
        let run = realdb::output(pgbench(&["-c", "8", "-j", "2", "-t", "50"])).await;
        let out = realdb::text(&run.stdout);
        assert!(run.status.success(), "pgbench: {out}{}", realdb::text(&run.stderr));
        assert!(out.contains("number of transactions actually processed: 400/400"), "{out}");
        let mut psql = realdb::psql(addr, "postgres");
        psql.args(["-c", "select count(*) from pgbench_branches"]);
        let psql = realdb::output(psql).await;
        assert_eq!(realdb::text(&psql.stdout).trim(), "1", "{}", realdb::text(&psql.stderr));
        // pgbench -i, 8 clients and psql: 10+ client connections; the session is
        // one routing connection (a re-open after a drop would add one more).
        let routed = dials.load(Ordering::SeqCst) - before;
        assert!(routed <= 1, "{routed} routing connections for 10+ client connections");
        drop(proxy);
        srv.stop().await;
    })
    .await;
}
