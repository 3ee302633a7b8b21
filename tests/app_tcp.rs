//! `proxy app` and the routing server end to end: bulk transfers checked by hash,
//! half-close, ping framing, and every refusal with its specific error.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use oneport::client::dial::Target;
use oneport::client::local;
use oneport::proto::naming::{Kind, Protocol, ResourceRef};
use oneport::server::config::{App, AppKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// 64 MiB each way through the real binary's `proxy app`, checked by hash on both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_app_moves_64_mib_each_way() {
    deadline(async {
        let (srv, accepted) = echo_server(|_| {}).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = oneport(home.path());
        cmd.args(["--proxy", &srv.addr.to_string(), "--identity"]).arg(&id).args(["proxy", "app", "echo"]);
        let run = start_and_wait_addr(cmd).await;
        assert!(run.stdout.iter().any(|l| l.contains("TCP app")), "{:?}", run.stdout);

        let payload = Arc::new(random_bytes(64 << 20, 7));
        let want = sha256(&payload);
        let s = TcpStream::connect(run.addr).await.unwrap();
        let back = send_and_collect(s, payload.clone()).await;
        assert_eq!(back.len(), payload.len());
        assert_eq!(sha256(&back), want, "bytes changed on the way");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        srv.stop().await;
    })
    .await;
}

fn echo_target(srv: &TestServer, id: &std::path::Path, name: &str) -> Target {
    Target::resource(&srv.context(id), Kind::App, name, Protocol::Tcp)
}

/// The client shuts its write side and still reads the whole reply.
#[tokio::test]
async fn half_close_keeps_the_reply_flowing() {
    deadline(async {
        // A backend that reads to EOF, then answers with what it counted.
        let l = loopback_listener().await;
        let backend = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            s.write_all(format!("got {} bytes", all.len()).as_bytes()).await.unwrap();
            s.shutdown().await.unwrap();
        });
        let srv = TestServer::start(|c| c.apps.push(tcp_app("counter", backend, &["alice"]))).await;
        let id = srv.identity("alice", &[]);
        let dialer = srv.dialer(&id);
        let mut d = dialer.dial(&echo_target(&srv, &id, "counter")).await.unwrap();
        d.stream.write_all(&vec![1u8; 100_000]).await.unwrap();
        d.stream.shutdown().await.unwrap();
        let mut reply = String::new();
        d.stream.read_to_string(&mut reply).await.unwrap();
        assert_eq!(reply, "got 100000 bytes");
        srv.stop().await;
    })
    .await;
}

/// `teleport-tcp-ping` is negotiated (offered first), the server pings (every 300 ms)
/// on an idle connection, and data still flows afterwards, framed.
#[tokio::test]
async fn ping_variant_negotiated_and_pings_flow() {
    deadline(async {
        let (srv, _) = echo_server(|c| c.ping_interval = FAST_IDLE.pings).await;
        let id = srv.identity("alice", &[]);
        let ctx = srv.context(&id);
        let cfg =
            oneport::net::tls::client_config(&ctx.trust, Some(&ctx.identity), Protocol::Tcp.client_offer()).unwrap();
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let sni = oneport::proto::naming::resource_sni(Kind::App, "echo", &ctx.domain);
        let name = rustls::pki_types::ServerName::try_from(sni).unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"teleport-tcp-ping"[..]));
        // Two pings on the raw stream while we say nothing at all.
        let mut raw = [0u8; 8];
        tokio::time::timeout(Duration::from_secs(10), tls.read_exact(&mut raw)).await.expect("no pings").unwrap();
        assert_eq!(raw, [0u8; 8]);
        // Then a framed round trip; pings may interleave, the deframer drops them.
        tls.write_all(&[0, 0, 0, 2, b'h', b'i']).await.unwrap();
        let mut framed = oneport::net::ping::PingStream::new(tls, None);
        let mut back = [0u8; 2];
        framed.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hi");
        srv.stop().await;
    })
    .await;
}

/// Each refusal fails with its own error, and the backend never sees a connection.
#[tokio::test]
async fn refusals_are_specific_and_reach_no_backend() {
    deadline(async {
        let (srv, accepted) = echo_server(|_| {}).await;
        let alice = srv.identity("alice", &[]);
        let bob = srv.identity("bob", &["dev"]);
        let proxy = srv.addr.to_string();

        // Not in the allow-list.
        let d = srv.dialer(&bob);
        let err = run_tunnel(&d, &echo_target(&srv, &bob, "echo"), "echo").await;
        assert_eq!(err, "access to app echo denied for user bob");

        // Unknown resource.
        let d = srv.dialer(&alice);
        let err = run_tunnel(&d, &echo_target(&srv, &alice, "nope"), "nope").await;
        assert_eq!(err, format!("app nope is not known to proxy {proxy}; known: echo"));

        // Expired certificate.
        let ca = oneport::server::setup::load_ca(srv.dir.path()).unwrap();
        let old = time::OffsetDateTime::now_utc() - time::Duration::hours(3);
        let expired =
            oneport::identity::pki::make_client_cert(&ca, "alice", &[], old, Duration::from_secs(3600)).unwrap();
        let expired_path = srv.dir.path().join("expired.pem");
        std::fs::write(&expired_path, oneport::identity::pki::identity_pem(&expired, &ca.cert_pem)).unwrap();
        let d = srv.dialer(&expired_path);
        let err = run_tunnel(&d, &echo_target(&srv, &alice, "echo"), "echo").await;
        assert!(err.contains("rejected the client certificate as expired"), "{err}");

        // Wrong CA: the client trusts another CA than the one that signed the server
        // (an identity file without a CA, so the routing TLS trusts the --ca).
        let other = oneport::identity::pki::make_ca("other").unwrap();
        let other_path = srv.dir.path().join("other-ca.pem");
        std::fs::write(&other_path, &other.cert_pem).unwrap();
        let bare = oneport::identity::pki::make_client_cert(
            &ca,
            "alice",
            &[],
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(3600),
        )
        .unwrap();
        let bare_path = srv.dir.path().join("alice-without-ca.pem");
        std::fs::write(&bare_path, oneport::identity::pki::identity_pem(&bare, "")).unwrap();
        let over = oneport::client::context::Overrides {
            proxy: Some(proxy.clone()),
            identity: Some(bare_path),
            ca: Some(other_path),
            insecure: false,
        };
        let d = oneport::client::dial::Dialer::new(oneport::client::context::Context::build(&over, None).unwrap());
        let err = d.dial(&echo_target(&srv, &alice, "echo")).await.unwrap_err().to_string();
        assert!(
            err.contains(
                "is not signed by the expected CA (the CA of the identity's cluster): the identity belongs to another \
                 cluster, or something else answers on that address"
            ),
            "{err}"
        );
        assert!(!err.contains("--insecure"), "an error never advertises turning verification off: {err}");

        // No client certificate.
        let ctx = srv.context(&alice);
        let err = raw_tls(&srv, &ctx, None, Protocol::Tcp.client_offer()).await;
        assert!(err.contains("requires a client certificate"), "{err}");

        // Unknown ALPN.
        let err = raw_tls(&srv, &ctx, Some(&ctx.identity), vec![b"spdy/3".to_vec()]).await;
        assert!(err.contains("no_application_protocol"), "{err}");

        assert_eq!(accepted.load(Ordering::SeqCst), 0, "a refused connection reached the backend");
        srv.stop().await;
    })
    .await;
}

/// A certificate with a blank or padded CN (which `server issue` refuses, but another
/// CA tool could sign) is refused in the handshake even where `users: ["*"]` would
/// admit anyone, and the backend never sees a connection.
#[tokio::test]
async fn blank_or_padded_names_are_refused_in_the_handshake() {
    deadline(async {
        let (srv, accepted) = echo_server(|c| c.apps[0].allow.users = vec!["*".into()]).await;
        let alice = srv.identity("alice", &[]);
        let ctx = srv.context(&alice);
        let ca = oneport::server::setup::load_ca(srv.dir.path()).unwrap();
        for (user, groups) in [(" ", vec![]), ("bob ", vec![]), ("bob", vec!["system:masters ".to_string()])] {
            let now = time::OffsetDateTime::now_utc();
            let c =
                oneport::identity::pki::make_client_cert_unchecked(&ca, user, &groups, now, Duration::from_secs(600))
                    .unwrap();
            use rustls::pki_types::pem::PemObject;
            let id = oneport::identity::Identity {
                chain: vec![rustls::pki_types::CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap()],
                key: rustls::pki_types::PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap(),
                ca: vec![],
                caller: oneport::identity::Caller {
                    user: user.into(),
                    groups,
                    not_after: i64::MAX,
                    ..Default::default()
                },
            };
            let err = raw_tls(&srv, &ctx, Some(&id), Protocol::Tcp.client_offer()).await;
            assert!(err.contains("refused the connection (access denied)"), "{user:?}: {err}");
        }
        // The same file is refused by the client too, with the reason.
        let c = oneport::identity::pki::make_client_cert_unchecked(
            &ca,
            "bob ",
            &[],
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(600),
        )
        .unwrap();
        let pem = oneport::identity::pki::identity_pem(&c, &ca.cert_pem);
        let err = oneport::identity::Identity::from_pem(pem.as_bytes()).unwrap_err().to_string();
        assert_eq!(err, r#"the certificate's user name "bob " has leading or trailing whitespace"#);
        assert_eq!(accepted.load(Ordering::SeqCst), 0, "a refused connection reached the backend");
        srv.stop().await;
    })
    .await;
}

async fn run_tunnel(d: &oneport::client::dial::Dialer, t: &Target, name: &str) -> String {
    let (mut local, _peer) = tokio::io::duplex(1024);
    let res = ResourceRef::new(Kind::App, name);
    local::tunnel(d, t, &res, &mut local).await.unwrap_err().to_string()
}

/// A TLS client by hand (no identity, or odd ALPN): connect, then read, and explain.
async fn raw_tls(
    srv: &TestServer,
    ctx: &oneport::client::context::Context,
    id: Option<&oneport::identity::Identity>,
    alpn: Vec<Vec<u8>>,
) -> String {
    let cfg = oneport::net::tls::client_config(&ctx.trust, id, alpn).unwrap();
    let sni = oneport::proto::naming::resource_sni(Kind::App, "echo", &ctx.domain);
    let name = rustls::pki_types::ServerName::try_from(sni).unwrap();
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let e = match tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await {
        Err(e) => e,
        Ok(mut tls) => tls.read(&mut [0u8; 16]).await.expect_err("the server must refuse"),
    };
    oneport::net::tls::explain_client_error(&e, &srv.addr.to_string())
}

/// Garbage and a stalled ClientHello are cut at the handshake deadline; a hello
/// dribbled one byte per segment still works; other connections carry on meanwhile.
#[tokio::test]
async fn bad_hellos_are_cut_and_split_hellos_work() {
    deadline(async {
        let (srv, _) = echo_server(|c| c.handshake_timeout = Duration::from_secs(1)).await;
        let id = srv.identity("alice", &[]);

        // Slow loris: a TLS record header, then nothing.
        let mut loris = TcpStream::connect(srv.addr).await.unwrap();
        loris.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        // Garbage that looks like TLS.
        let mut junk = TcpStream::connect(srv.addr).await.unwrap();
        junk.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7]).await.unwrap();
        // Garbage that is not TLS at all goes to the HTTP side, which answers 400.
        let mut text = TcpStream::connect(srv.addr).await.unwrap();
        text.write_all(b"HELLO\r\n\r\n").await.unwrap();

        // Meanwhile a real connection works, its ClientHello split into 1-byte segments.
        let d = srv.dialer(&id);
        let mut s = d.dial(&echo_target(&srv, &id, "echo")).await.unwrap().stream;
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        dribbled_hello_works(&srv, &id).await;

        let closed = |mut s: TcpStream| async move {
            let mut sink = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut sink))
                .await
                .expect("not cut by the deadline")
                .ok();
            sink
        };
        assert!(closed(loris).await.is_empty());
        let junk_reply = closed(junk).await;
        assert!(junk_reply.is_empty() || junk_reply[0] == 0x15, "expected close or a TLS alert");
        let text_reply = String::from_utf8_lossy(&closed(text).await).into_owned();
        assert!(text_reply.starts_with("HTTP/1.1 400"), "{text_reply}");
        srv.stop().await;
    })
    .await;
}

/// Writes at most one byte per write with NODELAY, so the hello spans many segments.
struct Dribble(TcpStream);

impl tokio::io::AsyncRead for Dribble {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Dribble {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let n = buf.len().min(1);
        std::pin::Pin::new(&mut self.0).poll_write(cx, &buf[..n])
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

async fn dribbled_hello_works(srv: &TestServer, id: &std::path::Path) {
    let ctx = srv.context(id);
    let cfg = oneport::net::tls::client_config(&ctx.trust, Some(&ctx.identity), Protocol::Tcp.client_offer()).unwrap();
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let sni = oneport::proto::naming::resource_sni(Kind::App, "echo", &ctx.domain);
    let name = rustls::pki_types::ServerName::try_from(sni).unwrap();
    let tls = tokio_rustls::TlsConnector::from(cfg).connect(name, Dribble(tcp)).await.unwrap();
    let mut s = oneport::net::ping::PingStream::new(tls, None);
    s.write_all(b"split").await.unwrap();
    s.flush().await.unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"split");
}

/// curl through `proxy app` to a real HTTP server (python's http.server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_proxy_app() {
    if !have("curl") || !have("python3") {
        return;
    }
    deadline(async {
        let site = tempfile::tempdir().unwrap();
        let body = random_bytes(3 << 20, 5);
        std::fs::write(site.path().join("blob.bin"), &body).unwrap();
        let port = free_port();
        let mut http = tokio::process::Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
            .current_dir(site.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let backend: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        wait_port(backend, Duration::from_secs(30)).await;
        let srv = TestServer::start(|c| {
            c.apps.push(App { kind: AppKind::Http, ..tcp_app("site", backend, &["alice"]) });
        })
        .await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = oneport(home.path());
        cmd.args(["--proxy", &srv.addr.to_string(), "--identity"]).arg(&id).args(["proxy", "app", "site"]);
        let run = start_and_wait_addr(cmd).await;
        assert!(run.stdout[0].starts_with(&format!("Listening on http://{}/", run.addr)), "{:?}", run.stdout);
        let out_file = site.path().join("downloaded");
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--fail", "-D", "-", "-o"])
            .arg(&out_file)
            .arg(format!("http://{}/blob.bin", run.addr))
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
        let headers = String::from_utf8_lossy(&out.stdout);
        assert!(headers.starts_with("HTTP/1.0 200"), "{headers}");
        assert!(headers.contains("SimpleHTTP"), "{headers}");
        assert_eq!(sha256(&std::fs::read(&out_file).unwrap()), sha256(&body));
        // A request naming a domain (a DNS-rebinding page) is refused before any dial.
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "-H", "Host: attacker.example", "-w", "\n%{http_code}"])
            .arg(format!("http://{}/blob.bin", run.addr))
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.trim_end().ends_with("421"), "{text}");
        assert!(text.contains("refused to stop DNS rebinding"), "{text}");
        // On every address, the suggested command uses loopback (0.0.0.0 is no place to go).
        let port = free_port();
        let mut cmd = oneport(home.path());
        cmd.args(["--proxy", &srv.addr.to_string(), "--identity"]).arg(&id);
        cmd.args(["proxy", "app", "site", "--bind-addr", "0.0.0.0", "--port", &port.to_string()]);
        cmd.stdout(std::process::Stdio::piped()).kill_on_drop(true);
        let mut wide = cmd.spawn().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(wide.stdout.take().unwrap()));
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if line.starts_with("  try:") {
                break;
            }
        }
        assert!(seen[0].starts_with(&format!("Listening on http://0.0.0.0:{port}/")), "{seen:?}");
        assert_eq!(seen.last().unwrap(), &format!("  try: curl http://127.0.0.1:{port}/"), "{seen:?}");
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--fail", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{port}/blob.bin"))
            .output()
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{}", String::from_utf8_lossy(&out.stderr));
        let _ = wide.kill().await;
        let _ = http.kill().await;
        srv.stop().await;
    })
    .await;
}

/// `max_connections`: a second connection waits in the accept queue until the first
/// one ends, then is served.
#[tokio::test]
async fn connection_limit_queues_the_excess() {
    deadline(async {
        let (srv, _) = echo_server(|c| c.max_connections = 1).await;
        let id = srv.identity("alice", &[]);
        let d = srv.dialer(&id);
        let mut first = d.dial(&echo_target(&srv, &id, "echo")).await.unwrap().stream;
        first.write_all(b"one").await.unwrap();
        let mut buf = [0u8; 3];
        first.read_exact(&mut buf).await.unwrap();
        let d2 = srv.dialer(&id);
        let target = echo_target(&srv, &id, "echo");
        let mut second = tokio::spawn(async move {
            let mut s = d2.dial(&target).await.unwrap().stream;
            s.write_all(b"two").await.unwrap();
            let mut buf = [0u8; 3];
            s.read_exact(&mut buf).await.unwrap();
            buf
        });
        // While the first holds the only slot, the second is not served.
        assert!(tokio::time::timeout(Duration::from_millis(700), &mut second).await.is_err());
        drop(first);
        assert_eq!(&second.await.unwrap(), b"two");
        srv.stop().await;
    })
    .await;
}

/// On shutdown the server stops accepting but lets open connections finish.
#[tokio::test]
async fn shutdown_drains_open_connections() {
    deadline(async {
        let (srv, _) = echo_server(|c| c.shutdown_grace = Duration::from_secs(20)).await;
        let id = srv.identity("alice", &[]);
        let d = srv.dialer(&id);
        let mut open = d.dial(&echo_target(&srv, &id, "echo")).await.unwrap().stream;
        open.write_all(b"before").await.unwrap();
        let mut buf = [0u8; 6];
        open.read_exact(&mut buf).await.unwrap();
        let addr = srv.addr;
        let stopping = tokio::spawn(srv.stop());
        // New connections are refused once the listener is gone.
        poll_until(Duration::from_secs(10), "the listener to close", || async move {
            TcpStream::connect(addr).await.is_err().then_some(())
        })
        .await;
        // The open one still works, then ends the drain by closing.
        open.write_all(b"during").await.unwrap();
        open.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"during");
        open.shutdown().await.unwrap();
        let mut rest = Vec::new();
        open.read_to_end(&mut rest).await.unwrap();
        drop(open);
        tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("drain did not end").unwrap();
    })
    .await;
}

/// A backend that is down: the tunnel error says which resource and where to look.
#[tokio::test]
async fn backend_down_is_explained() {
    deadline(async {
        let dead: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let srv = TestServer::start(|c| c.apps.push(tcp_app("gone", dead, &["alice"]))).await;
        let id = srv.identity("alice", &[]);
        let d = srv.dialer(&id);
        let err = run_tunnel(&d, &echo_target(&srv, &id, "gone"), "gone").await;
        assert!(err.starts_with(&format!("connection to app gone through {} ended:", srv.addr)), "{err}");
        assert!(err.contains("see the proxy's log"), "{err}");
        srv.stop().await;
    })
    .await;
}

/// A client that negotiates HTTP/2 on the web route (no certificate needed) and then
/// says nothing does not keep its connection slot.
#[tokio::test]
async fn silent_h2_clients_are_cut() {
    deadline(async {
        let (srv, _) = echo_server(|c| c.handshake_timeout = Duration::from_secs(1)).await;
        let id = srv.identity("alice", &[]);
        let ctx = srv.context(&id);
        let cfg = oneport::net::tls::client_config(&ctx.trust, None, vec![b"h2".to_vec()]).unwrap();
        let name = rustls::pki_types::ServerName::try_from(ctx.domain.clone()).unwrap();
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let mut sink = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(15), tls.read_to_end(&mut sink)).await;
        assert!(closed.is_ok(), "a silent HTTP/2 connection was kept open");
        srv.stop().await;
    })
    .await;
}

/// Polls the JSON audit log until it has `n` lines.
async fn audit_lines(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    poll_until(Duration::from_secs(20), "audit lines", || async move {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (lines.len() >= n).then_some(lines)
    })
    .await
}

/// A session leaves one audit record (user, groups, source, resource, protocol,
/// direct, bytes each way, how it ended) and a refusal names the refused user; the
/// JSON lines file is 0600.
#[tokio::test]
async fn sessions_and_refusals_leave_audit_records() {
    deadline(async {
        let log = tempfile::tempdir().unwrap();
        let path = log.path().join("audit.jsonl");
        let p = path.clone();
        let (srv, _) = echo_server(move |c| c.audit_log = Some(p)).await;
        let alice = srv.identity("alice", &["dev", "ops"]);
        let d = srv.dialer(&alice);
        let s = d.dial(&echo_target(&srv, &alice, "echo")).await.unwrap().stream;
        let back = send_and_collect(s, Arc::new(vec![7u8; 1000])).await;
        assert_eq!(back.len(), 1000);
        let bob = srv.identity("bob", &["dev"]);
        let err = run_tunnel(&srv.dialer(&bob), &echo_target(&srv, &bob, "echo"), "echo").await;
        assert!(err.contains("denied for user bob"), "{err}");

        let lines = audit_lines(&path, 2).await;
        let session = lines.iter().find(|l| l["event"] == "session").expect("a session record");
        assert_eq!(session["user"], "alice");
        assert_eq!(session["groups"], serde_json::json!(["dev", "ops"]));
        assert!(session["source"].as_str().unwrap().starts_with("127.0.0.1:"), "{session}");
        assert_eq!(session["kind"], "app");
        assert_eq!(session["resource"], "echo");
        assert_eq!(session["protocol"], "teleport-tcp-ping");
        assert_eq!(session["via"], "direct");
        assert_eq!(session["bytes_to_resource"], 1000);
        assert_eq!(session["bytes_to_client"], 1000);
        assert_eq!(session["end"], "closed");
        assert!(session["start"].as_str().unwrap().ends_with('Z'), "{session}");
        assert!(session["duration_ms"].is_u64());
        let refused = lines.iter().find(|l| l["event"] == "refused").expect("a refusal record");
        assert_eq!(refused["user"], "bob");
        assert_eq!(refused["groups"], serde_json::json!(["dev"]));
        assert_eq!(refused["resource"], "echo");
        assert_eq!(refused["reason"], "caller not in the allow-list");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        srv.stop().await;
    })
    .await;
}

/// Each client config keeps its own TLS tickets: a connection made with another
/// config to the same host name (another route, identity or port) between two of
/// this config's connections does not take this config's ticket (rustls resumes a
/// ticket only in the config that made it, and dropped the one it took from a shared
/// store, so the next connection here did a full handshake).
#[tokio::test]
async fn another_configs_connection_leaves_this_configs_ticket() {
    deadline(async {
        let (srv, _) = echo_server(|_| {}).await;
        let ctx = srv.context(&srv.identity("alice", &[]));
        let alpn = || vec![b"http/1.1".to_vec()];
        let mine = oneport::net::tls::client_config(&ctx.trust, Some(&ctx.identity), alpn()).unwrap();
        let other = oneport::net::tls::client_config(&ctx.trust, Some(&ctx.identity), alpn()).unwrap();
        let ping = |cfg: Arc<rustls::ClientConfig>| async move {
            let (resumed, out) = tls_get(cfg, srv.addr, "/webapi/ping").await;
            assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
            resumed
        };
        assert!(!ping(mine.clone()).await, "the first connection is a full handshake");
        assert!(!ping(other.clone()).await, "another config has no ticket of its own yet");
        assert!(ping(mine.clone()).await, "this config's ticket is still there: the session resumes");
        assert!(ping(other).await, "and so is the other config's");
        srv.stop().await;
    })
    .await;
}

/// A TLS session resumed after the client certificate expired skips certificate
/// verification; the web API still treats the caller as expired: `/webapi/ping`
/// names no caller and lists nothing, `/webapi/resolve` answers 401.
#[tokio::test]
async fn resumed_session_with_an_expired_certificate_gets_no_answers() {
    deadline(async {
        let (srv, _) = echo_server(|_| {}).await;
        let ca = oneport::server::setup::load_ca(srv.dir.path()).unwrap();
        // Valid for three more seconds.
        let from = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        let c = oneport::identity::pki::make_client_cert(&ca, "alice", &[], from, Duration::from_secs(3603)).unwrap();
        let pem = oneport::identity::pki::identity_pem(&c, &ca.cert_pem);
        let id = oneport::identity::Identity::from_pem(pem.as_bytes()).unwrap();
        let ctx = srv.context(&srv.identity("alice", &[]));
        let cfg = oneport::net::tls::client_config(&ctx.trust, Some(&id), vec![b"http/1.1".to_vec()]).unwrap();
        let get = |path: &'static str| tls_get(cfg.clone(), srv.addr, path);
        let (_, fresh) = get("/webapi/ping").await;
        assert!(fresh.contains(r#""user": "alice""#), "{fresh}");
        assert!(fresh.contains(r#""name": "echo""#), "{fresh}");
        poll_until(Duration::from_secs(20), "the certificate to expire", || async {
            id.caller.expired_at(std::time::SystemTime::now()).then_some(())
        })
        .await;
        let (resumed, ping) = get("/webapi/ping").await;
        assert!(resumed, "the second handshake must resume the session");
        assert!(ping.starts_with("HTTP/1.1 200 OK\r\n"), "{ping}");
        assert!(ping.contains(r#""caller": null"#), "{ping}");
        assert!(ping.contains(r#""resources": []"#), "{ping}");
        let (resumed, resolve) = get("/webapi/resolve?kind=app&name=echo").await;
        assert!(resumed);
        assert!(resolve.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{resolve}");
        assert!(
            resolve.contains("the identity for alice expired at ")
                && resolve.contains(" ago): get a new one and run `oneport login`"),
            "{resolve}"
        );
        srv.stop().await;
    })
    .await;
}

/// GET `path` over a TLS connection made with `cfg` (one request, `Connection:
/// close`): whether the handshake resumed a session, and the whole answer.
async fn tls_get(cfg: Arc<rustls::ClientConfig>, addr: std::net::SocketAddr, path: &str) -> (bool, String) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.unwrap();
    let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    (resumed, String::from_utf8_lossy(&out).into_owned())
}

/// A TCP connection to the server from `ip` (any 127/8 address works on loopback).
async fn connect_from(ip: &str, to: std::net::SocketAddr) -> TcpStream {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

/// Silent connections from one address beyond `max_unauthenticated_per_source` are
/// closed at once; the ones within it stay (until the handshake deadline), and an
/// authenticated session from elsewhere still works.
#[tokio::test]
async fn silent_connections_beyond_the_per_source_cap_are_closed() {
    deadline(async {
        let (srv, _) = echo_server(|c| {
            c.max_unauthenticated_per_source = 5;
            c.handshake_timeout = Duration::from_secs(120);
        })
        .await;
        let mut silent = Vec::new();
        for _ in 0..8 {
            silent.push(connect_from("127.0.0.2", srv.addr).await);
        }
        for (i, s) in silent.iter_mut().enumerate().skip(5) {
            let mut b = [0u8; 1];
            let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await;
            assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "connection {i} over the cap is closed: {r:?}");
        }
        for (i, s) in silent.iter().enumerate().take(5) {
            let mut b = [0u8; 1];
            let r = s.try_read(&mut b);
            assert!(
                matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
                "connection {i} within the cap stays open: {r:?}"
            );
        }
        let alice = srv.identity("alice", &[]);
        let s = srv.dialer(&alice).dial(&echo_target(&srv, &alice, "echo")).await.unwrap().stream;
        assert_eq!(send_and_collect(s, Arc::new(b"still served".to_vec())).await, b"still served");
        drop(silent);
        srv.stop().await;
    })
    .await;
}

// === memory before authentication ===

const UPGRADE_REQUEST: &str = "GET /webapi/connectionupgrade HTTP/1.1\r\nHost: proxy\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Protocol: alpn\r\n\r\n";

/// A masked binary WebSocket frame header announcing `len` payload bytes.
fn ws_header(len: u64) -> Vec<u8> {
    let mut h = vec![0x82, 0xff];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    h
}

/// Connects, upgrades to a WebSocket (checking the 101), and returns the stream.
async fn ws_upgraded(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(UPGRADE_REQUEST.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).await.unwrap(), 1, "closed during the upgrade: {head:?}");
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
    s
}

/// What a connection got back: bytes until the server closed (or reset) it, or
/// `None` when it was still open after `limit`.
async fn answer(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in {status}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A WebSocket Close 1009 (message too big), with or without a reason.
fn is_close_1009(b: &[u8]) -> bool {
    b.len() >= 4 && b[0] == 0x88 && b[2..4] == [0x03, 0xf1]
}

/// The real `oneport server start`: 200 peers without an identity, each sending what
/// used to be held until the handshake deadline (an almost complete 1 MiB WebSocket
/// frame, a 60 KiB one, a 400 KB HTTP head, a 64 KiB ClientHello), all at once. The
/// server's peak RSS grows by less than 64 KiB per peer plus a fixed slack, and each
/// peer is answered (Close 1009, 431) or closed well before the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_peers_cost_at_most_64_kib_each() {
    const PEERS: usize = 200;
    const SLACK_KIB: u64 = 8 * 1024;
    deadline(async {
        let dir = tempfile::tempdir().unwrap();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let o = oneport::server::setup::InitOptions {
            public_addr: oneport::util::addr::HostPort::parse(&addr.to_string()).unwrap(),
            cluster_name: Some("mem".into()),
            listen: addr.to_string(),
            extra_names: vec![],
            force: false,
        };
        let cfg = oneport::server::setup::init(dir.path(), &o).unwrap();
        let home = tempfile::tempdir().unwrap();
        let mut cmd = oneport(home.path());
        cmd.args(["server", "start", "--config"]).arg(&cfg).env("RUST_LOG", "warn").stdout(std::process::Stdio::null());
        let child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        wait_port(addr, Duration::from_secs(30)).await;

        // The exact answers, from peers that stop sending where the server stops reading.
        let mut s = ws_upgraded(addr).await;
        s.write_all(&ws_header((1 << 20) - 1)).await.unwrap();
        let got = answer(&mut s, Duration::from_secs(5)).await.expect("a 1 MiB frame header must be answered");
        let reason = oneport::net::websocket::TOO_BIG_REASON;
        assert_eq!(got[..4], [0x88, 2 + reason.len() as u8, 0x03, 0xf1], "{got:?}");
        assert_eq!(&got[4..], reason.as_bytes());
        let mut s = ws_upgraded(addr).await;
        let limit = oneport::server::conn::PRE_AUTH_READ_LIMIT;
        let mut frame = ws_header(60 * 1024);
        frame.resize(limit, 0x16);
        s.write_all(&frame).await.unwrap();
        let got = answer(&mut s, Duration::from_secs(5)).await.expect("a budget overrun must be answered");
        assert_eq!(got, oneport::net::budget::WS_CLOSE_TOO_BIG, "Close 1009 once {limit} bytes came unauthenticated");
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut head = b"GET /webapi/ping HTTP/1.1\r\nHost: proxy\r\nX-Big: ".to_vec();
        head.resize(oneport::server::web::MAX_HEAD, b'a');
        s.write_all(&head).await.unwrap();
        let got = answer(&mut s, Duration::from_secs(5)).await.expect("a long head must be answered");
        let got = String::from_utf8_lossy(&got);
        assert!(got.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{got}");

        let base = status_kib(pid, "VmHWM");
        let peers = (0..PEERS).map(|i| {
            tokio::spawn(async move {
                let (mut s, payload) = match i % 4 {
                    0 => {
                        let mut p = ws_header((1 << 20) - 1);
                        p.resize((1 << 20) - 64, 7);
                        (ws_upgraded(addr).await, p)
                    }
                    1 => {
                        let mut p = ws_header(60 * 1024);
                        p.resize(60 * 1024, 7);
                        (ws_upgraded(addr).await, p)
                    }
                    2 => {
                        let mut p = b"GET /webapi/ping HTTP/1.1\r\nHost: proxy\r\nX-Big: ".to_vec();
                        p.resize(400_000, b'a');
                        (TcpStream::connect(addr).await.unwrap(), p)
                    }
                    _ => {
                        // A ClientHello announcing 64 KiB, in 16 KiB records.
                        let mut p = Vec::new();
                        for r in 0..4 {
                            p.extend_from_slice(&[0x16, 0x03, 0x01, 0x40, 0x00]);
                            let start = p.len();
                            if r == 0 {
                                p.extend_from_slice(&[0x01, 0x00, 0xff, 0xff, 0x03, 0x03]);
                            }
                            p.resize(start + 0x4000, 0x41);
                        }
                        (TcpStream::connect(addr).await.unwrap(), p)
                    }
                };
                // The server may close before everything is written.
                let _ = s.write_all(&payload).await;
                (i % 4, answer(&mut s, Duration::from_secs(5)).await, s)
            })
        });
        let mut results = Vec::new();
        for p in peers.collect::<Vec<_>>() {
            results.push(p.await.unwrap());
        }
        let grown = status_kib(pid, "VmHWM").saturating_sub(base);
        let budget = PEERS as u64 * 64 + SLACK_KIB;
        eprintln!("server peak RSS grew by {grown} KiB for {PEERS} unauthenticated peers (limit {budget} KiB)");
        assert!(grown < budget, "peak RSS grew by {grown} KiB for {PEERS} peers; the limit is {budget} KiB");
        for (kind, got, _) in &results {
            let got = got.as_ref().unwrap_or_else(|| panic!("peer kind {kind} was still open after 5 s"));
            match kind {
                0 | 1 => assert!(got.is_empty() || is_close_1009(got), "kind {kind}: {got:?}"),
                2 => assert!(
                    got.is_empty() || got.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
                    "{}",
                    String::from_utf8_lossy(got)
                ),
                _ => {}
            }
        }
        drop(child);
    })
    .await;
}

/// `max_unauthenticated`: peers without an identity beyond the budget wait unread
/// for a place (nothing of theirs is buffered); sessions that have authenticated carry
/// on, and once the silent peers are gone the waiting client is served.
#[tokio::test]
async fn unauthenticated_budget_queues_the_excess_and_spares_sessions() {
    deadline(async {
        let (srv, _) = echo_server(|c| {
            c.max_unauthenticated = 3;
            c.handshake_timeout = Duration::from_secs(30);
        })
        .await;
        let id = srv.identity("alice", &[]);
        let d = Arc::new(srv.dialer(&id));
        let target = echo_target(&srv, &id, "echo");
        let mut session = d.dial(&target).await.unwrap().stream;
        session.write_all(b"one").await.unwrap();
        let mut b = [0u8; 3];
        session.read_exact(&mut b).await.unwrap();
        let mut silent = Vec::new();
        for _ in 0..3 {
            silent.push(TcpStream::connect(srv.addr).await.unwrap());
        }
        // Give the server the three first (they are accepted in order).
        poll_until(Duration::from_secs(10), "three places taken", || async {
            (srv.pre_auth_available() == 0).then_some(())
        })
        .await;
        let waiting = {
            let (d, target) = (d.clone(), target.clone());
            tokio::spawn(async move { d.dial(&target).await.map(|x| x.stream) })
        };
        session.write_all(b"two").await.unwrap();
        session.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"two", "an authenticated session carries on");
        assert!(!waiting.is_finished(), "a client over the budget must wait for a place");
        drop(silent);
        let mut fresh = waiting.await.unwrap().expect("served once the silent peers left");
        fresh.write_all(b"new").await.unwrap();
        fresh.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"new");
        drop((fresh, session));
        srv.stop().await;
    })
    .await;
}

/// On shutdown, an idle keep-alive web connection is closed gracefully at once, not
/// left to the end of the grace period.
#[tokio::test]
async fn shutdown_closes_idle_keep_alive_web_connections() {
    deadline(async {
        let (srv, _) = echo_server(|c| {
            c.shutdown_grace = Duration::from_secs(120);
            c.handshake_timeout = Duration::from_secs(120);
        })
        .await;
        let alice = srv.identity("alice", &[]);
        let d = srv.dialer(&alice);
        let web = d.dial(&Target::web(d.context())).await.unwrap().stream;
        let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(web)).await.unwrap();
        let conn = tokio::spawn(conn);
        let req = http::Request::get("/webapi/ping")
            .header("host", d.context().web_sni())
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        use http_body_util::BodyExt;
        resp.into_body().collect().await.unwrap();
        // The connection is idle and kept alive; stopping must close it well before
        // the 120 s grace (TestServer::stop allows 30 s).
        srv.stop().await;
        tokio::time::timeout(Duration::from_secs(10), conn).await.expect("closed by the server").unwrap().unwrap();
    })
    .await;
}

/// An HTTP/1.1 app with keep-alive that answers `path=<path>` and records the
/// requests it saw.
async fn recording_http_app() -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let s = s.clone();
                    async move {
                        let line = format!("{} {}", req.method(), req.uri().path());
                        s.lock().unwrap().push(line);
                        let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                        let body = http_body_util::Full::new(hyper::body::Bytes::from("ok\n"));
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// `proxy app` through the real binary and curl: every request on a keep-alive
/// connection is judged. A second request with the listener's own Origin passes; a
/// third with a cross-site Origin gets 403 and a sentence, and the app never sees
/// it; `Sec-Fetch-Site: cross-site` is refused on a first request too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_app_refuses_cross_site_requests_on_every_request() {
    if !have("curl") {
        return;
    }
    deadline(async {
        let (app, seen) = recording_http_app().await;
        let srv = TestServer::start(|c| {
            c.apps.push(App { kind: AppKind::Http, ..tcp_app("site", app, &["alice"]) });
        })
        .await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = oneport(home.path());
        cmd.args(["--proxy", &srv.addr.to_string(), "--identity"]).arg(&id).args(["proxy", "app", "site"]);
        let run = start_and_wait_addr(cmd).await;
        let base = format!("http://{}", run.addr);
        let own = format!("Origin: http://127.0.0.1:{}", run.addr.port());
        let w = "%{http_code} %{num_connects}\n";
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "-w", w, &format!("{base}/a")])
            .args(["--next", "-sS", "-w", w, "-X", "POST", "-d", "x=1", "-H", &own, &format!("{base}/b")])
            .args(["--next", "-sS", "-w", w, "-X", "POST", "-d", "x=2", "-H", "Origin: http://evil.example"])
            .arg(format!("{base}/c"))
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let want = format!(
            "ok\n200 1\nok\n200 0\noneport: cross-site request refused: Origin \"http://evil.example\" is not this \
             listener (http://127.0.0.1:{}); a page on another site may not use your identity\n403 0\n",
            run.addr.port()
        );
        assert_eq!(text, want, "stderr: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(*seen.lock().unwrap(), ["GET /a", "POST /b"], "the refused request reached the app");

        let out = tokio::process::Command::new("curl")
            .args(["-sS", "-w", w, "-H", "Sec-Fetch-Site: cross-site", &format!("{base}/d")])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("oneport: cross-site request refused (Sec-Fetch-Site: cross-site)"), "{text}");
        assert!(text.ends_with("403 1\n"), "{text}");
        assert_eq!(seen.lock().unwrap().len(), 2, "the refused request reached the app");
        srv.stop().await;
    })
    .await;
}

/// HTTP/2 on the web route (no identity needed) bounds header lists too: a 20 KiB
/// header gets 431, and a normal request on the same connection still works.
#[tokio::test]
async fn h2_header_lists_are_bounded() {
    deadline(async {
        let (srv, _) = echo_server(|_| {}).await;
        let ctx = srv.context(&srv.identity("alice", &[]));
        let cfg = oneport::net::tls::client_config(&ctx.trust, None, vec![b"h2".to_vec()]).unwrap();
        let name = rustls::pki_types::ServerName::try_from(ctx.domain.clone()).unwrap();
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .max_header_list_size(1 << 20)
            .handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        let req = |big: bool| {
            let mut r = hyper::Request::get("https://proxy/webapi/ping");
            if big {
                r = r.header("x-big", "a".repeat(20 * 1024));
            }
            r.body(http_body_util::Empty::<hyper::body::Bytes>::new()).unwrap()
        };
        let status = match send.send_request(req(true)).await {
            Ok(resp) => resp.status().as_u16(),
            Err(e) => panic!("the oversized request must be answered, got {e}"),
        };
        assert_eq!(status, 431);
        let resp = send.send_request(req(false)).await.unwrap();
        assert_eq!(resp.status(), 200);
        drop(send);
        conn.abort();
        srv.stop().await;
    })
    .await;
}
