//! Multiplexed sessions (docs/protocol.md §13) end to end: many local connections on
//! one routing connection, 64 MiB each way on a stream checked by hash, the
//! per-stream re-check of an expired identity on an open session, the fallback
//! against a server with `mux.enabled: false`, pgbench with 8 clients through
//! the real binary's `proxy db` on one session, and curl and wrk through `proxy app`
//! on an HTTP app (`teleport-http-mux`, and its fallback to `http/1.1`), and a local
//! client's reset that ends its stream without a routing connection to ask why.

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

/// A TCP forwarder in front of `to` that counts the connections whose first bytes
/// (the ClientHello, in clear) carry `sni`: the routing connections to one resource,
/// not the web API calls a local proxy makes beside them (asking why a connection
/// the local client cut ended, say).
async fn sni_counting_forwarder(to: SocketAddr, sni: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    tokio::spawn(async move {
        while let Ok((mut a, _)) = l.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut first = vec![0u8; 16 * 1024];
                let Ok(k) = a.read(&mut first).await else { return };
                if first[..k].windows(sni.len()).any(|w| w == sni.as_bytes()) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                if let Ok(mut b) = TcpStream::connect(to).await {
                    if b.write_all(&first[..k]).await.is_ok() {
                        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                    }
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

/// Connections beyond a session's `mux.max_streams_per_session` ride extra
/// sessions, up to the proxy's `mux.max_sessions_per_user`; past that (the proxy
/// refuses streams on the session over its limit) they dial their own, and none of
/// them fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sessions_open_extra_ones_up_to_the_proxys_limit() {
    deadline(async {
        let (echo, accepted) = spawn_echo().await;
        let srv = TestServer::start(|c| {
            c.apps.push(tcp_app("echo", echo, &["alice"]));
            c.mux.max_streams_per_session = 2;
            c.mux.max_sessions_per_user = 3;
        })
        .await;
        let id = srv.identity("alice", &[]);
        let (front, dials) = counting_forwarder(srv.addr).await;
        let session = Session::new(dialer_via(&srv, &id, front), Kind::App, "echo", Protocol::Tcp);
        session.warm().await;
        let mut held = Vec::new();
        let mut after = Vec::new();
        for i in 0..8u8 {
            let mut s = session.open().await.unwrap();
            s.write_all(&[i; 10]).await.unwrap();
            let mut got = [0u8; 10];
            s.read_exact(&mut got).await.unwrap();
            assert_eq!(got, [i; 10], "connection {i}");
            held.push(s);
            after.push(dials.load(Ordering::SeqCst));
        }
        // Two streams on each of three sessions; the fourth session gets a 503 for
        // its first stream, which then dials its own, as does the eighth.
        assert_eq!(after, [1, 1, 2, 2, 3, 3, 5, 6], "routing connections after each local one");
        for (i, s) in held.iter_mut().enumerate() {
            s.write_all(b"again").await.unwrap();
            let mut got = [0u8; 5];
            s.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"again", "connection {i} after the others opened");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 8);
        drop(held);
        srv.stop().await;
    })
    .await;
}

/// A burst that finds every session full shares the one extra session being
/// dialled: the others wait for it instead of dialling their own or piling
/// streams onto it before the proxy's SETTINGS say how many it takes (beyond the
/// proxy's limit, h2 refuses them and the connection would fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_limit_waits_for_the_extra_session_being_dialled() {
    deadline(async {
        let (echo, accepted) = spawn_echo().await;
        let srv = TestServer::start(|c| {
            c.apps.push(tcp_app("echo", echo, &["alice"]));
            c.mux.max_streams_per_session = 2;
            c.mux.max_sessions_per_user = 3;
        })
        .await;
        let id = srv.identity("alice", &[]);
        let (front, dials) = counting_forwarder(srv.addr).await;
        let session = Session::new(dialer_via(&srv, &id, front), Kind::App, "echo", Protocol::Tcp);
        session.warm().await;
        let mut held = Vec::new();
        for i in 0..2u8 {
            let mut s = session.open().await.unwrap();
            s.write_all(&[i; 4]).await.unwrap();
            let mut got = [0u8; 4];
            s.read_exact(&mut got).await.unwrap();
            held.push(s);
        }
        assert_eq!(dials.load(Ordering::SeqCst), 1, "two streams on the kept-warm session");
        let burst: Vec<_> = (10..14u8)
            .map(|i| {
                let s = session.clone();
                tokio::spawn(async move {
                    let mut c = s.open().await.map_err(|e| format!("connection {i}: {e}"))?;
                    c.write_all(&[i; 1000]).await.map_err(|e| format!("connection {i}: {e}"))?;
                    let mut got = vec![0u8; 1000];
                    c.read_exact(&mut got).await.map_err(|e| format!("connection {i}: {e}"))?;
                    assert_eq!(got, vec![i; 1000], "connection {i}");
                    Ok::<_, String>(c)
                })
            })
            .collect();
        for t in burst {
            held.push(t.await.unwrap().unwrap());
        }
        assert_eq!(dials.load(Ordering::SeqCst), 3, "four connections on two extra sessions, none of their own");
        assert_eq!(session.sessions().await, 3);
        assert_eq!(accepted.load(Ordering::SeqCst), 6);
        drop(held);
        srv.stop().await;
    })
    .await;
}

/// An extra session closes once it has had no stream for its idle time, and not
/// while a stream uses it; the next connection beyond the limit opens a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_extra_session_closes_and_a_busy_one_stays() {
    deadline(async {
        let (echo, _) = spawn_echo().await;
        let srv = TestServer::start(|c| {
            c.apps.push(tcp_app("echo", echo, &["alice"]));
            c.mux.max_streams_per_session = 1;
        })
        .await;
        let id = srv.identity("alice", &[]);
        let (front, dials) = counting_forwarder(srv.addr).await;
        let session = Session::new(dialer_via(&srv, &id, front), Kind::App, "echo", Protocol::Tcp);
        let idle = Duration::from_millis(300);
        session.set_extra_idle(idle);
        session.warm().await;
        let mut first = session.open().await.unwrap();
        let extra = session.open().await.unwrap();
        assert_eq!(echo_to_end(extra.into_io(), b"extra").await, b"extra");
        assert_eq!(dials.load(Ordering::SeqCst), 2, "the second connection rode an extra session");
        poll_until(Duration::from_secs(10), "the idle extra session to close", || {
            let s = session.clone();
            async move { (s.sessions().await == 1).then_some(()) }
        })
        .await;
        // A new one for the next connection beyond the limit, kept while it is used.
        let mut busy = session.open().await.unwrap();
        assert_eq!(dials.load(Ordering::SeqCst), 3);
        // Not a readiness wait: time passing is what is tested (the idle close looks
        // every sixth of `idle`).
        tokio::time::sleep(idle * 3).await;
        assert_eq!(session.sessions().await, 2, "a session with a stream open stays");
        for (s, msg) in [(&mut busy, &b"still here"[..]), (&mut first, &b"first"[..])] {
            s.write_all(msg).await.unwrap();
            let mut got = vec![0u8; msg.len()];
            s.read_exact(&mut got).await.unwrap();
            assert_eq!(got, msg);
        }
        srv.stop().await;
    })
    .await;
}

/// A server shutting down tells its sessions (GOAWAY): an open stream finishes, and
/// the server stops as soon as it has, however long its grace period, instead of
/// waiting the grace out for sessions the clients keep warm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_open_streams_finish_and_does_not_wait_for_idle_sessions() {
    deadline(async {
        let (echo, _) = spawn_echo().await;
        let srv = TestServer::start(|c| {
            c.apps.push(tcp_app("echo", echo, &["alice"]));
            c.shutdown_grace = Duration::from_secs(3600);
        })
        .await;
        let id = srv.identity("alice", &[]);
        let (front, _) = counting_forwarder(srv.addr).await;
        let srv_addr = front;
        let session = Session::new(dialer_via(&srv, &id, front), Kind::App, "echo", Protocol::Tcp);
        session.warm().await;
        let mut open = session.open().await.unwrap();
        open.write_all(b"before").await.unwrap();
        let mut got = [0u8; 6];
        open.read_exact(&mut got).await.unwrap();
        // TestServer::stop fails if the server has not stopped within 30 s.
        let stopping = tokio::spawn(srv.stop());
        // Once the GOAWAY is in, a new connection does not ride the session, and the
        // proxy accepts no new routing connection.
        let refused = poll_until(Duration::from_secs(10), "new connections to be refused", || {
            let s = session.clone();
            async move { s.open().await.err() }
        })
        .await;
        assert!(refused.to_string().contains(&srv_addr.to_string()), "{refused}");
        assert!(!stopping.is_finished(), "the server waits for the open stream");
        assert_eq!(echo_to_end(open.into_io(), b"during the drain").await, b"during the drain");
        stopping.await.unwrap();
        poll_until(Duration::from_secs(10), "the client to let the session go", || {
            let s = session.clone();
            async move { (s.sessions().await == 0).then_some(()) }
        })
        .await;
    })
    .await;
}

/// A session the proxy refuses at the handshake (a caller outside the allow-list)
/// ends before its SETTINGS are known: the connections waiting for them are told
/// at once, not after the 20 s a first ping may take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_waiting_on_a_session_refused_at_the_handshake_fail_at_once() {
    deadline(async {
        let (echo, accepted) = spawn_echo().await;
        let srv = TestServer::start(|c| c.apps.push(tcp_app("echo", echo, &["alice"]))).await;
        let id = srv.identity("bob", &[]);
        let (front, _) = counting_forwarder(srv.addr).await;
        let session = Session::new(dialer_via(&srv, &id, front), Kind::App, "echo", Protocol::Tcp);
        // Well under the 20 s (PING_TIMEOUT) a wait for SETTINGS would otherwise last;
        // this bounds a hang, it measures nothing.
        let errors = tokio::time::timeout(Duration::from_secs(10), async {
            session.warm().await;
            let opens: Vec<_> = (0..3)
                .map(|_| {
                    let s = session.clone();
                    tokio::spawn(async move { s.open_answered().await.err().map(|e| e.to_string()) })
                })
                .collect();
            let mut errors = Vec::new();
            for o in opens {
                errors.push(o.await.unwrap());
            }
            errors
        })
        .await
        .expect("connections to a refused session were told within 10 s");
        for e in errors {
            let e = e.expect("a refused caller gets no stream");
            assert!(e.contains("access denied"), "{e}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing reached the app");
        srv.stop().await;
    })
    .await;
}

/// A kept-warm session the proxy refused (a caller outside the allow-list) is not
/// re-dialled in the background: before, its end re-opened it at once, again and
/// again (a full handshake, and a refusal in the proxy's log, each time, for as
/// long as the local proxy ran). A local connection still dials once and gets the
/// refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_session_is_not_redialled_in_the_background() {
    deadline(async {
        let (echo, _) = spawn_echo().await;
        let srv = TestServer::start(|c| c.apps.push(tcp_app("echo", echo, &["alice"]))).await;
        let id = srv.identity("bob", &[]);
        let (front, dials) = counting_forwarder(srv.addr).await;
        let session = Session::new(dialer_via(&srv, &id, front), Kind::App, "echo", Protocol::Tcp);
        session.warm().await;
        let e = session.open_answered().await.err().expect("a refused caller gets no stream").to_string();
        assert!(e.contains("access denied"), "{e}");
        let seen = dials.load(Ordering::SeqCst);
        assert!(seen <= 2, "{seen} routing connections for the warm-up and one local connection");
        // An observation window, not a wait for readiness: a re-dial came within
        // milliseconds before, and the first background retry of a session that
        // never settled comes after 200 ms.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(dials.load(Ordering::SeqCst), seen, "no routing connection without a local one");
        srv.stop().await;
    })
    .await;
}

/// During a drain, a stream whose backend spoke and closed first still delivers
/// the client's last bytes and half-close to the backend, although h2 closes the
/// session the moment that stream's END_STREAM arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_session_delivers_the_last_bytes_of_a_stream_to_its_backend() {
    deadline(async {
        // A backend that greets, closes its side, then reads the client to the end.
        let backend = loopback_listener().await;
        let addr = backend.local_addr().unwrap();
        let (got_tx, got_rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
        tokio::spawn(async move {
            let (mut c, _) = backend.accept().await.unwrap();
            c.write_all(b"hello").await.unwrap();
            c.shutdown().await.unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).await.unwrap();
            let _ = got_tx.send(got);
        });
        let srv = TestServer::start(|c| {
            c.apps.push(tcp_app("greeter", addr, &["alice"]));
            c.shutdown_grace = Duration::from_secs(3600);
        })
        .await;
        let id = srv.identity("alice", &[]);
        let (front, _) = counting_forwarder(srv.addr).await;
        let session = Session::new(dialer_via(&srv, &id, front), Kind::App, "greeter", Protocol::Tcp);
        session.warm().await;
        let mut s = session.open().await.unwrap();
        let mut hello = Vec::new();
        s.read_to_end(&mut hello).await.unwrap();
        assert_eq!(hello, b"hello");
        let stopping = tokio::spawn(srv.stop());
        poll_until(Duration::from_secs(10), "the drain to refuse new connections", || {
            let se = session.clone();
            async move { se.open().await.err() }
        })
        .await;
        let last = vec![7u8; 100_000];
        s.write_all(&last).await.unwrap();
        s.shutdown().await.unwrap();
        let got = got_rx.await.expect("the backend saw its connection end");
        assert_eq!(got.len(), last.len(), "bytes the backend got after the drain began");
        assert!(got == last);
        stopping.await.unwrap();
    })
    .await;
}

/// Writes `msg` on `s`, half-closes and reads the echo to the end.
async fn echo_to_end(mut s: oneport::net::io::BoxIo, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    got
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
        // The client's own sentence, so the second of expiry reads the same either side.
        assert!(refusal.sentence.starts_with("the identity for alice expired at "), "{}", refusal.sentence);
        assert!(refusal.sentence.ends_with(" ago): get a new one and run `oneport login`"), "{}", refusal.sentence);
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
        let before = dials.load(Ordering::SeqCst);
        let init = realdb::output(realdb::pgbench(addr, &["-i", "-q"])).await;
        assert!(init.status.success(), "pgbench -i: {}", realdb::text(&init.stderr));
        let run = realdb::output(realdb::pgbench(addr, &["-c", "8", "-j", "2", "-t", "50"])).await;
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

/// The SNI of app `site` (under the internal domain: the proxy is addressed by IP).
const SITE_SNI: &str = "site.app.teleport.cluster.local";

/// `oneport proxy app site` through `front` (no upgrade probe); its address and
/// its stderr lines.
async fn proxy_http_app(
    home: &std::path::Path,
    front: SocketAddr,
    id: &std::path::Path,
) -> (tokio::process::Child, SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let mut cmd = oneport(home);
    cmd.env("ONEPORT_TLS_ROUTING_CONN_UPGRADE", "false")
        .env_remove("RUST_LOG")
        .args(["--proxy", &front.to_string(), "--identity"])
        .arg(id)
        .args(["proxy", "app", "site"])
        .kill_on_drop(true);
    let (running, lines) = start_and_wait_addr_logged(cmd).await;
    (running.child, running.addr, lines)
}

async fn curl_ok(addr: SocketAddr) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "30"])
        .arg(format!("http://{addr}/"))
        .output()
        .await
        .expect("curl is installed");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

/// curl and wrk through `proxy app` on an HTTP app: every local connection is a
/// stream of one `teleport-http-mux` session, so the server sees ONE routing
/// connection while the app sees one connection per local one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_wrk_through_proxy_app_ride_one_http_session() {
    assert!(have("curl") && have("wrk"), "curl and wrk are needed (scripts/install-deps)");
    deadline(async {
        let (app, conns) = http_app().await;
        let srv =
            TestServer::start(|c| c.apps.push(App { kind: AppKind::Http, ..tcp_app("site", app, &["alice"]) })).await;
        let id = srv.identity("alice", &[]);
        let (front, dials) = sni_counting_forwarder(srv.addr, SITE_SNI).await;
        let home = tempfile::tempdir().unwrap();
        let (child, addr, lines) = proxy_http_app(home.path(), front, &id).await;
        wait_line(&lines, "app site: multiplexed session (teleport-http-mux); new connections open streams on it")
            .await;
        assert_eq!(dials.load(Ordering::SeqCst), 1, "the session");
        for _ in 0..5 {
            curl_ok(addr).await;
        }
        let wrk = tokio::process::Command::new("wrk")
            .args(["-t", "2", "-c", "8", "-d", "2s", "--timeout", "10s"])
            .arg(format!("http://{addr}/"))
            .output()
            .await
            .expect("wrk is installed");
        let report = String::from_utf8_lossy(&wrk.stdout).into_owned();
        assert!(wrk.status.success(), "wrk: {report}{}", String::from_utf8_lossy(&wrk.stderr));
        assert!(!report.contains("Socket errors") && !report.contains("Non-2xx"), "{report}");
        let requests: u64 = report
            .lines()
            .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no request count in {report}"));
        assert!(requests >= 8, "{report}");
        assert!(conns.load(Ordering::SeqCst) >= 13, "the app sees one connection per local connection");
        let log = lines.lock().unwrap().join("\n");
        let routed = dials.load(Ordering::SeqCst);
        assert_eq!(routed, 1, "{requests}+5 requests on 13 local connections: all streams of one session\n{log}");
        drop(child);
        srv.stop().await;
    })
    .await;
}

/// Against a server with `mux: { enabled: false }`, `proxy app` on an HTTP app
/// negotiates `http/1.1`, says so, and dials one routing connection per local one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_app_falls_back_to_one_routing_connection_per_local_connection() {
    assert!(have("curl"), "curl is needed");
    deadline(async {
        let (app, _) = http_app().await;
        let srv = TestServer::start(|c| {
            c.apps.push(App { kind: AppKind::Http, ..tcp_app("site", app, &["alice"]) });
            c.mux.enabled = false;
        })
        .await;
        let id = srv.identity("alice", &[]);
        let (front, dials) = counting_forwarder(srv.addr).await;
        let home = tempfile::tempdir().unwrap();
        let (child, addr, lines) = proxy_http_app(home.path(), front, &id).await;
        wait_line(
            &lines,
            "app site: the proxy does not offer multiplexing: one routing connection per local connection (http/1.1)",
        )
        .await;
        let before = dials.load(Ordering::SeqCst);
        for _ in 0..3 {
            curl_ok(addr).await;
        }
        assert_eq!(dials.load(Ordering::SeqCst) - before, 3, "one routing connection per curl");
        drop(child);
        srv.stop().await;
    })
    .await;
}

/// A local client that resets its connection mid-session ends its stream, and
/// only that: the proxy does not open a routing connection to ask the server why
/// (the reset was the client's doing), and the next local connection rides the
/// same session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_reset_costs_no_routing_connection() {
    deadline(async {
        let srv = server_with_echo(|_| {}).await;
        let (front, dials) = counting_forwarder(srv.addr).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = oneport(home.path());
        cmd.env("ONEPORT_TLS_ROUTING_CONN_UPGRADE", "false")
            .env("RUST_LOG", "oneport=debug")
            .args(["--proxy", &front.to_string(), "--identity"])
            .arg(&id)
            .args(["proxy", "app", "echo"])
            .kill_on_drop(true);
        let (running, lines) = start_and_wait_addr_logged(cmd).await;
        let mut first = TcpStream::connect(running.addr).await.unwrap();
        let mut buf = [0u8; 5];
        first.write_all(b"hello").await.unwrap();
        first.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        let before = dials.load(Ordering::SeqCst);
        // SO_LINGER 0: closing sends RST, so the proxy's next read fails.
        first.set_zero_linger().unwrap();
        drop(first);
        wait_line(&lines, "the local client cut its connection").await;
        let mut second = TcpStream::connect(running.addr).await.unwrap();
        second.write_all(b"again").await.unwrap();
        second.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"again");
        assert_eq!(dials.load(Ordering::SeqCst), before, "a local reset opened a routing connection");
        assert!(
            !lines.lock().unwrap().iter().any(|l| l.contains("ERROR")),
            "a local reset was logged as an error: {:?}",
            lines.lock().unwrap()
        );
        drop(running);
        srv.stop().await;
    })
    .await;
}
