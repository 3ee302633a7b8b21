//! Entry points for the fuzz targets (`fuzz/`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`): one function per parser, each taking untrusted bytes
//! and calling the very code the client and server run on peer input. They must
//! never panic, whatever the input; where a parser has a property that can be
//! checked (a round trip, a written file that parses again), they assert it.
//!
//! Not an API: hidden from the docs and free to change. Async readers are driven
//! over an in-memory stream with a no-op waker: the input is all there, so nothing
//! waits, and no runtime is needed.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::{pin, Pin};
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::client::upgrade::{http as client_http, proxy_env};
use crate::net::ping::PingStream;
use crate::net::websocket::WsStream;
use crate::proto::db::{handshake, mysql, postgres};
use crate::proto::naming;
use crate::proto::upgrade::Sub;
use crate::server::routes::Table;
use crate::server::{upgrade as server_upgrade, Config};
use crate::tools::kube::kubeconfig;
use crate::util::addr::HostPort;

/// The most bytes one target reads from its input (libFuzzer's `-max_len` is
/// smaller anyway; the corpus replay uses whole files).
const MAX_INPUT: usize = 1 << 20;

/// An in-memory peer: reads hand out the input in chunks of a size picked by the
/// input's first byte (so every split of a message across reads is tried), then
/// EOF; writes are kept in `out`.
#[derive(Debug)]
struct Mem<'a> {
    input: &'a [u8],
    chunk: usize,
    out: Vec<u8>,
}

impl<'a> Mem<'a> {
    /// Takes the chunk size from the first byte (1..=256) and reads the rest.
    fn new(data: &'a [u8]) -> Mem<'a> {
        match data.split_first() {
            Some((&c, rest)) => {
                Mem { input: &rest[..rest.len().min(MAX_INPUT)], chunk: c as usize + 1, out: Vec::new() }
            }
            None => Mem { input: &[], chunk: 1, out: Vec::new() },
        }
    }
}

impl AsyncRead for Mem<'_> {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = self.input.len().min(self.chunk).min(buf.remaining());
        let (head, rest) = self.input.split_at(n);
        buf.put_slice(head);
        self.input = rest;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Mem<'_> {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.chunk);
        self.out.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls `fut` to completion with a no-op waker. Over [`Mem`] nothing is ever
/// pending, so a `Pending` means the code under test waits for nothing (a hang):
/// that is a failure.
fn drive<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    // Generous: each poll makes progress over an always-ready stream.
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("a reader over an always-ready in-memory stream stayed pending");
}

/// The route table the ClientHello target routes against: one resource of every
/// kind, under the default internal domain and a public host.
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let yaml = r#"
listen: 127.0.0.1:3080
public_addr: proxy.example.com:3080
cluster_name: fuzz
tls: { cert: server.pem, key: server-key.pem, client_ca: ca.pem }
nodes: [ { name: web1, addr: "127.0.0.1:22", targets: ["10.0.0.5:*", "10.0.0.6:2222"], allow: { groups: [ops] } } ]
databases:
  - { name: pg1, protocol: postgres, addr: "127.0.0.1:5432", allow: { users: [alice] } }
  - { name: my1, protocol: mysql, addr: "127.0.0.1:3306" }
apps:
  - { name: grafana, kind: http, addr: "127.0.0.1:3000" }
  - { name: echo, kind: tcp, addr: "127.0.0.1:7" }
kube: [ { name: dev, api_server: "https://127.0.0.1:6443" } ]
"#;
        match serde_yaml_ng::from_str::<Config>(yaml) {
            Ok(cfg) => Table::new(&cfg),
            Err(e) => panic!("the fuzz route table's config does not parse: {e}"),
        }
    })
}

/// The server's ClientHello reading and route choice: the bytes go to rustls's
/// `Acceptor` (as `server::conn` does, however they are split), and a complete
/// ClientHello's SNI and ALPN list go to the route table. The same input is also
/// read directly as `SNI \n ALPN \n ALPN ...`, so the SNI and ALPN parsers see
/// arbitrary names and not only those a valid ClientHello can carry.
pub fn client_hello(data: &[u8]) {
    let mem = Mem::new(data);
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rest = mem.input;
    loop {
        let take = rest.len().min(mem.chunk);
        let mut piece = &rest[..take];
        match acceptor.read_tls(&mut piece) {
            Ok(0) | Err(_) => break,
            Ok(n) => rest = &rest[n..],
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let hello = accepted.client_hello();
                let sni = hello.server_name().map(str::to_string);
                let alpn: Vec<Vec<u8>> = hello.alpn().map(|it| it.map(<[u8]>::to_vec).collect()).unwrap_or_default();
                let _ = table().decide(sni.as_deref(), alpn.iter().map(Vec::as_slice));
                break;
            }
            Ok(None) if !rest.is_empty() => {}
            Ok(None) | Err(_) => break,
        }
    }
    let mut lines = data.split(|b| *b == b'\n');
    let sni = lines.next().map(String::from_utf8_lossy);
    let alpn: Vec<&[u8]> = lines.collect();
    let _ = table().decide(sni.as_deref(), alpn.iter().copied());
    let _ = naming::parse_sni(sni.as_deref(), &table().domains);
    for a in &alpn {
        if let Some(parsed) = naming::Alpn::parse(a) {
            assert_eq!(naming::Alpn::parse(&parsed.to_bytes()), Some(parsed), "ALPN round trip");
        }
    }
}

/// The ping framing (wire.md §3): the input read as a framed stream (pings
/// dropped, bodies passed on, a truncated frame an error), then written through
/// the framing and read back, which must give the very same bytes.
pub fn ping(data: &[u8]) {
    let mem = Mem::new(data);
    let chunk = mem.chunk;
    let mut reader = PingStream::new(mem, None);
    let mut got = Vec::new();
    let _ = drive(reader.read_to_end(&mut got));
    assert!(got.len() <= data.len(), "the deframer produced more bytes than it read");

    // Round trip: frame the payload in writes of `chunk` bytes, then deframe it.
    let payload = data.get(1..).unwrap_or_default();
    let mut writer = PingStream::new(Mem { input: &[], chunk: usize::MAX, out: Vec::new() }, None);
    for piece in payload.chunks(chunk) {
        if let Err(e) = drive(writer.write_all(piece)) {
            panic!("framing into memory failed: {e}");
        }
    }
    if let Err(e) = drive(writer.flush()) {
        panic!("flushing into memory failed: {e}");
    }
    let framed = writer.get_ref().out.clone();
    let mut back = Vec::new();
    let mut deframer = PingStream::new(Mem { input: &framed, chunk, out: Vec::new() }, None);
    if let Err(e) = drive(deframer.read_to_end(&mut back)) {
        panic!("reading our own frames failed: {e}");
    }
    assert_eq!(back, payload, "ping framing round trip changed the bytes");
}

/// The WebSocket byte-stream adapter of upgraded connections: the input is what
/// the peer sends after the 101 (the second byte picks whether we are the server,
/// reading masked client frames, or the client); read until EOF or an error.
pub fn websocket(data: &[u8]) {
    let role = match data.get(1) {
        Some(b) if b & 1 == 1 => tokio_tungstenite::tungstenite::protocol::Role::Client,
        _ => tokio_tungstenite::tungstenite::protocol::Role::Server,
    };
    let mut stream = WsStream::new(Mem::new(data), role, None);
    let mut got = Vec::new();
    let _ = drive(stream.read_to_end(&mut got));
    let _ = drive(stream.write_all(b"reply"));
    let _ = drive(stream.flush());
}

/// Parses an HTTP head with httparse (what hyper uses) into a header map; `None`
/// when it is incomplete or invalid (hyper would answer 400 or keep reading).
fn head_headers(data: &[u8], response: bool) -> Option<(HeaderMap, usize)> {
    let mut raw = [httparse::EMPTY_HEADER; 64];
    let (status, headers) = if response {
        let mut r = httparse::Response::new(&mut raw);
        let s = r.parse(data).ok()?;
        (s, r.headers.to_vec())
    } else {
        let mut r = httparse::Request::new(&mut raw);
        let s = r.parse(data).ok()?;
        (s, r.headers.to_vec())
    };
    let httparse::Status::Complete(len) = status else { return None };
    let mut map = HeaderMap::new();
    for h in headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value))
        else {
            return None;
        };
        map.append(name, value);
    }
    Some((map, len))
}

/// The server's upgrade choice: a request head to `/webapi/connectionupgrade`,
/// then the 101 answer built from the choice. An answer must echo a choice the
/// server knows and carry the accept key of the client's key.
pub fn upgrade_request(data: &[u8]) {
    let Some((headers, _)) = head_headers(data, false) else { return };
    let Some(choice) = server_upgrade::choose(&headers) else { return };
    let answer = server_upgrade::answer(&choice);
    let sub = match &choice {
        server_upgrade::Choice::WebSocket { sub, key } => {
            assert_eq!(client_http::check_websocket_answer(answer.headers(), key, *sub), Ok(()), "{choice:?}");
            *sub
        }
        server_upgrade::Choice::Legacy(sub) => {
            assert_eq!(client_http::check_legacy_answer(answer.headers(), *sub), Ok(()), "{choice:?}");
            *sub
        }
    };
    assert_eq!(Sub::parse(sub.name()), Some(sub));
}

/// The client's checks of an upgrade or CONNECT answer: the 101's headers against
/// a fixed key for both sub-protocols and the legacy form, and the body after the
/// head turned into the sentence of a refusal.
pub fn upgrade_answer(data: &[u8]) {
    let Some((headers, len)) = head_headers(data, true) else {
        let _ = client_http::refusal_text(data);
        return;
    };
    for sub in [Sub::Alpn, Sub::AlpnPing] {
        let _ = client_http::check_websocket_answer(&headers, "dGhlIHNhbXBsZSBub25jZQ==", sub);
        let _ = client_http::check_legacy_answer(&headers, sub);
    }
    let text = client_http::refusal_text(&data[len..]);
    assert!(text.chars().count() <= 200, "refusal text is not cut to 200 characters");
    assert!(!text.contains(['\r', '\n']), "refusal text spans lines");
}

/// The Postgres startup phase as the local proxy and the server read it: messages
/// parsed from the front of the input, and the whole prelude (encryption requests
/// answered `N`) over a stream.
pub fn postgres_startup(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((msg, n))) = postgres::parse(rest) {
        assert!(n >= 8 && n <= rest.len(), "parse took {n} of {} bytes", rest.len());
        let _ = msg.param("user");
        rest = &rest[n..];
    }
    let mut mem = Mem::new(data);
    if let Ok((_, buf)) = drive(handshake::prelude(&mut mem)) {
        assert!(buf.len() <= data.len());
    }
    assert!(mem.out.iter().all(|b| *b == postgres::REFUSE_ENCRYPTION), "prelude wrote something but N");
    assert!(mem.out.len() <= 3, "prelude answered more encryption requests than it allows");
}

/// The MySQL refusal handshake: our greeting, the client's handshake response
/// (the input; read and dropped), then an `ERR` whose message is the input too.
pub fn mysql_handshake(data: &[u8]) {
    let mut mem = Mem::new(data);
    let text = String::from_utf8_lossy(data);
    let state: String = text.chars().take(5).collect();
    if drive(handshake::refuse_mysql(&mut mem, mysql::ER_ACCESS_DENIED, &state, &text)).is_ok() {
        assert!(mem.out.len() > 4, "no greeting and no ERR were written");
    }
    if let Some(h) = data.get(..4) {
        let (len, _) = mysql::header([h[0], h[1], h[2], h[3]]);
        assert!(len <= 0xff_ffff);
    }
    let p = mysql::err_packet(data.first().copied().unwrap_or(0), 1045, &state, &text);
    let (len, _) = mysql::header([p[0], p[1], p[2], p[3]]);
    assert_eq!(len, p.len() - 4, "ERR length field");
    assert!(std::str::from_utf8(&p[13..]).is_ok(), "ERR message cut inside a character");
}

/// `kube login`'s kubeconfig merge: the input is one or two kubeconfig files
/// (split at the first NUL byte), each checked as the login checks them; the
/// merge is planned, and every file it would write must parse again and hold the
/// login's cluster, user and context.
pub fn kubeconfig(data: &[u8]) {
    let (first, second) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let paths = [PathBuf::from("/fuzz/a"), PathBuf::from("/fuzz/b")];
    let mut files = Vec::new();
    for (path, bytes) in paths.iter().zip([Some(first), second]) {
        let Some(bytes) = bytes else { continue };
        match kubeconfig::parse(path, bytes) {
            Ok(doc) => files.push((path.clone(), Some(doc))),
            Err(_) => return, // the login stops here, naming the file
        }
    }
    let chain = kubeconfig::Chain {
        files: files.iter().map(|(p, _)| p.clone()).collect(),
        explicit: files.len() == 1,
        from_env: files.len() > 1,
    };
    let login = fuzz_login();
    let plan = kubeconfig::plan(&chain, &kubeconfig::Files(files), &login, true);
    for (path, doc) in &plan.writes {
        let text = match serde_yaml_ng::to_string(doc) {
            Ok(t) => t,
            Err(e) => panic!("a planned kubeconfig does not serialise: {e}"),
        };
        let again = match kubeconfig::parse(path, text.as_bytes()) {
            Ok(d) => d,
            Err(e) => panic!("a planned kubeconfig does not parse again: {e}\n{text}"),
        };
        let reread = kubeconfig::Files(vec![(path.clone(), Some(again))]);
        if path == &plan.context_file {
            assert!(reread.origin("contexts", &login.context.name).is_some(), "context missing after the merge");
        }
        if plan.current_file.as_deref() == Some(path.as_path()) {
            assert_eq!(reread.current_context().as_deref(), Some(login.context.name.as_str()));
        }
    }
}

fn fuzz_login() -> kubeconfig::Login {
    let stanza = |name: &str, keys: &[(&str, &str)], owned| {
        let mut body = serde_yaml_ng::Mapping::new();
        for (k, v) in keys {
            body.insert((*k).into(), (*v).into());
        }
        kubeconfig::Stanza { name: name.to_string(), body, owned }
    };
    kubeconfig::Login {
        cluster: stanza("fuzz-dev", &[("server", "https://proxy:3080")], kubeconfig::CLUSTER_KEYS),
        user: stanza("fuzz-dev", &[("token", "x")], kubeconfig::USER_KEYS),
        context: stanza("fuzz-dev", &[("cluster", "fuzz-dev"), ("user", "fuzz-dev")], kubeconfig::CONTEXT_KEYS),
    }
}

/// `HTTPS_PROXY` / `NO_PROXY`: the input's first line is the proxy URL, the
/// second `NO_PROXY`, the third a target `host:port`. A parsed proxy URL's error
/// never repeats its password.
pub fn https_proxy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let url = lines.next().unwrap_or_default();
    let no_proxy = lines.next().unwrap_or_default();
    let target = HostPort::parse(lines.next().unwrap_or("proxy.example.com:3080"))
        .unwrap_or_else(|_| HostPort { host: "proxy.example.com".into(), port: 3080 });
    if let Ok(p) = proxy_env::parse_proxy_url(url) {
        // Debug (what a log line would show) never carries the credentials.
        let auth = if p.auth.is_some() { "Some(\"***\")" } else { "None" };
        assert_eq!(format!("{p:?}"), format!("HttpProxy {{ addr: {:?}, auth: {auth} }}", p.addr));
    }
    let _ = proxy_env::no_proxy_matches(no_proxy, &target);
    let var = |name: &str| match name {
        "https_proxy" | "HTTPS_PROXY" => Some(url.to_string()),
        "no_proxy" | "NO_PROXY" => Some(no_proxy.to_string()),
        _ => None,
    };
    let _ = proxy_env::proxy_for(&target, var);
}

/// A fuzz entry point.
pub type Entry = fn(&[u8]);

/// Every target by its `fuzz/fuzz_targets` name, for the corpus replay.
pub const TARGETS: [(&str, Entry); 9] = [
    ("client_hello", client_hello),
    ("ping", ping),
    ("websocket", websocket),
    ("upgrade_request", upgrade_request),
    ("upgrade_answer", upgrade_answer),
    ("postgres_startup", postgres_startup),
    ("mysql_handshake", mysql_handshake),
    ("kubeconfig", kubeconfig),
    ("https_proxy", https_proxy),
];

/// Where a target's corpus lives, under the repository.
pub fn corpus_dir(root: &Path, target: &str) -> PathBuf {
    root.join("fuzz").join("corpus").join(target)
}
