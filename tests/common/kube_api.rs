//! A Kubernetes API-server double for kubectl, on HTTPS with its own rcgen CA:
//! `/version`, `/api`, `/apis`, `/api/v1` discovery, pods in namespace `default`
//! (list, get, and a chunked watch that sends an event when the test says so), and
//! `pods/NAME/exec` and `pods/NAME/attach` over WebSocket (it picks the first of
//! [`KubeApi::set_protocols`] the client offers: `v5.channel.k8s.io` and `v4` by
//! default; the `base64` variants on request): `cat` echoes stdin to stdout, `sh`
//! (and attach) is a tiny terminal shell that echoes what is typed, runs
//! `echo WORDS`, and ends with `exit N` as an exit status on the error channel;
//! resizes are kept for the test to read. A SPDY/3.1 upgrade is answered with a 101
//! and the line `spdy-session-started`, then closed (enough to show the upgrade
//! passed; the double does not speak SPDY). `pods/NAME/portforward` is upgraded
//! (WebSocket `SPDY/3.1+portforward.k8s.io`, as kubectl >= 1.31 asks, or SPDY/3.1)
//! and held open until the client goes, reading and discarding what it sends: enough
//! for `kubectl port-forward` to start listening, not to carry a connection. Its discovery
//! documents and pod objects are the files in fixtures/kube/. It demands its own
//! bearer token and records the headers of every
//! request so tests can assert what the oneport backend sent.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The pod that always exists.
pub const POD: &str = "web-1";
/// The version `/version` reports (fixtures/kube/version.json; tests/fixtures.rs
/// checks they agree).
pub const GIT_VERSION: &str = "v1.32.4";

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One request as the double received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Every header, lowercase names, in order (repeated headers repeat).
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// Every value of header `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
}

struct State {
    token: String,
    seen: Mutex<Vec<Seen>>,
    events: broadcast::Sender<String>,
    watches: AtomicUsize,
    execs: AtomicUsize,
    connections: AtomicUsize,
    resizes: Mutex<Vec<(u16, u16)>>,
    /// Exec subprotocols the double accepts, in its order of preference.
    protocols: Mutex<Vec<String>>,
    port_forwards: AtomicUsize,
}

/// The exec subprotocols the double speaks.
pub const EXEC_PROTOCOLS: [&str; 4] =
    ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "base64.channel.k8s.io"];

/// A running double; stops when dropped.
pub struct KubeApi {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// Its CA (PEM file), for the server config's `ca`.
    pub ca_path: PathBuf,
    /// The bearer token it accepts, and the file holding it.
    pub token: String,
    pub token_path: PathBuf,
    _dir: tempfile::TempDir,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeApi {
    /// Starts the double on 127.0.0.1 with a fresh CA and token.
    pub async fn start() -> KubeApi {
        KubeApi::start_with(false).await
    }

    /// As [`KubeApi::start`], but presenting its CA certificate as its own (a
    /// misconfigured API server: webpki's `CaUsedAsEndEntity`).
    pub async fn start_presenting_its_ca() -> KubeApi {
        KubeApi::start_with(true).await
    }

    async fn start_with(present_ca: bool) -> KubeApi {
        let dir = tempfile::tempdir().unwrap();
        let ca = oneport::identity::pki::make_ca("kube-api double").unwrap();
        let cert = oneport::identity::pki::make_server_cert(
            &ca,
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
            std::time::Duration::from_secs(86400),
        )
        .unwrap();
        let ca_path = dir.path().join("kube-ca.pem");
        std::fs::write(&ca_path, &ca.cert_pem).unwrap();
        let token = format!("backend-token-{}", super::hex(&super::random_bytes(8, 99)));
        let token_path = dir.path().join("sa.token");
        std::fs::write(&token_path, format!("{token}\n")).unwrap();

        let presented = if present_ca { &ca } else { &cert };
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(presented.cert_pem.as_bytes()).collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_slice(presented.key_pem.as_bytes()).unwrap();
        let mut cfg = rustls::ServerConfig::builder_with_provider(oneport::net::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(cfg));

        let listener = super::loopback_listener().await;
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            token: token.clone(),
            seen: Mutex::new(Vec::new()),
            events: broadcast::channel(16).0,
            watches: AtomicUsize::new(0),
            execs: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            resizes: Mutex::new(Vec::new()),
            protocols: Mutex::new(EXEC_PROTOCOLS[..2].iter().map(|p| p.to_string()).collect()),
            port_forwards: AtomicUsize::new(0),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                st.connections.fetch_add(1, Ordering::SeqCst);
                let (acceptor, st) = (acceptor.clone(), st.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let svc = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(st, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        KubeApi { addr, url: format!("https://{addr}"), ca_path, token, token_path, _dir: dir, state, task }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Watches started so far.
    pub fn watches(&self) -> usize {
        self.state.watches.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Exec sessions upgraded so far.
    pub fn execs(&self) -> usize {
        self.state.execs.load(Ordering::SeqCst)
    }

    /// Port-forward sessions upgraded so far.
    pub fn port_forwards(&self) -> usize {
        self.state.port_forwards.load(Ordering::SeqCst)
    }

    /// The exec subprotocols to accept from now on, preferred first (each one of
    /// [`EXEC_PROTOCOLS`]); e.g. `["v4.channel.k8s.io"]` makes kubectl fall back to v4.
    pub fn set_protocols(&self, protocols: &[&str]) {
        assert!(protocols.iter().all(|p| EXEC_PROTOCOLS.contains(p)), "the double does not speak {protocols:?}");
        *self.state.protocols.lock().unwrap() = protocols.iter().map(|p| p.to_string()).collect();
    }

    /// Terminal sizes received on the resize channel so far.
    pub fn resizes(&self) -> Vec<(u16, u16)> {
        self.state.resizes.lock().unwrap().clone()
    }

    /// Sends an ADDED event for a pod named `name` to every open watch.
    pub fn send_event(&self, name: &str) {
        let _ = self.state.events.send(name.to_string());
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(serde_json::to_vec(v).unwrap())).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
    r
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let v = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()});
    json_response(code, &v)
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let seen = Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
    };
    st.seen.lock().unwrap().push(seen.clone());
    if seen.all("authorization") != [format!("Bearer {}", st.token)] {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let table = seen.all("accept").iter().any(|a| a.contains("as=Table"));
    let watch = seen.query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1");
    let pods = "/api/v1/namespaces/default/pods";
    match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", "/version") => json_response(StatusCode::OK, &data("version.json")),
        ("GET", "/api") => json_response(StatusCode::OK, &data("api.json")),
        ("GET", "/apis") => json_response(StatusCode::OK, &data("apis.json")),
        ("GET", "/api/v1") => json_response(StatusCode::OK, &data("api-v1.json")),
        ("GET", p) if p == pods && watch => watch_response(st, table),
        ("GET", p) if p == pods => {
            let list = if table {
                table_of(&[POD])
            } else {
                let mut list = data("pod-list.json");
                list["items"] = json!([pod(POD)]);
                list
            };
            json_response(StatusCode::OK, &list)
        }
        ("GET", p) if p == format!("{pods}/{POD}") => json_response(StatusCode::OK, &pod(POD)),
        (_, p) if p == format!("{pods}/{POD}/exec") || p == format!("{pods}/{POD}/attach") => exec(st, req),
        (_, p) if p == format!("{pods}/{POD}/portforward") => port_forward(st, req),
        (m, p) => status(StatusCode::NOT_FOUND, "NotFound", &format!("the double has no {m} {p}")),
    }
}

/// `fixtures/kube/NAME`, with `{{NAME}}` filled by `vars`, parsed.
fn data_with(name: &str, vars: &[(&str, &str)]) -> Value {
    let text = super::fixture::render(&format!("kube/{name}"), vars).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixtures/kube/{name} is not JSON: {e}"))
}

/// `fixtures/kube/NAME`, parsed.
pub fn data(name: &str) -> Value {
    data_with(name, &[])
}

/// The pod object `name` (fixtures/kube/pod.json).
pub fn pod(name: &str) -> Value {
    data_with("pod.json", &[("NAME", name)])
}

/// A `Table` (kubectl's `as=Table` view) of pods `names`.
fn table_of(names: &[&str]) -> Value {
    let mut table = data("pod-table.json");
    table["rows"] = names.iter().map(|n| data_with("pod-table-row.json", &[("NAME", n)])).collect();
    table
}

/// A chunked watch: one `{"type":"ADDED",...}` line per event the test sends.
fn watch_response(st: Arc<State>, table: bool) -> Response<Body> {
    let rx = st.events.subscribe();
    st.watches.fetch_add(1, Ordering::SeqCst);
    let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
        let name = loop {
            match rx.recv().await {
                Ok(n) => break n,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        };
        let object = if table { table_of(&[&name]) } else { pod(&name) };
        let mut line = serde_json::to_vec(&json!({"type": "ADDED", "object": object})).unwrap();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from(line))), rx))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
    r
}

/// `pods/NAME/exec|attach` over WebSocket (see the module docs), or SPDY's 101.
fn exec(st: Arc<State>, mut req: Request<Incoming>) -> Response<Body> {
    if req.headers().get("upgrade").and_then(|v| v.to_str().ok()).is_some_and(|u| u.eq_ignore_ascii_case("SPDY/3.1")) {
        return spdy(st, req);
    }
    let offered: Vec<String> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .collect();
    let Some(key) = req.headers().get("sec-websocket-key").map(|k| derive_accept_key(k.as_bytes())) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "the double only speaks WebSocket exec");
    };
    let accepted = st.protocols.lock().unwrap().clone();
    let Some(proto) = accepted.into_iter().find(|p| offered.iter().any(|o| o == p)) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", &format!("no supported subprotocol in {offered:?}"));
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let command: Vec<String> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("command="))
        .map(|c| c.replace("%2F", "/").replace('+', " "))
        .collect();
    let shell = req.uri().path().ends_with("/attach") || command.first().is_some_and(|c| c == "sh");
    let upgrade = hyper::upgrade::on(&mut req);
    let base64 = proto.contains("base64");
    tokio::spawn(async move {
        let Ok(up) = upgrade.await else { return };
        st.execs.fetch_add(1, Ordering::SeqCst);
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, None).await;
        let out = |channel: u8, data: &[u8]| {
            if base64 {
                use base64::Engine;
                let text = format!("{channel}{}", base64::engine::general_purpose::STANDARD.encode(data));
                return Message::Text(text.into());
            }
            let mut v = vec![channel];
            v.extend_from_slice(data);
            Message::Binary(v.into())
        };
        if shell && ws.send(out(1, b"$ ")).await.is_err() {
            return;
        }
        let mut line = Vec::new();
        let mut exit_code = 0u32;
        while let Some(Ok(msg)) = ws.next().await {
            let data: Vec<u8> = match msg {
                Message::Binary(b) if !base64 => b.to_vec(),
                // Channel as an ASCII digit, then the data in base64.
                Message::Text(t) if base64 && !t.is_empty() => {
                    use base64::Engine;
                    let Some(channel) = t.as_bytes()[0].checked_sub(b'0') else { continue };
                    let Ok(mut d) = base64::engine::general_purpose::STANDARD.decode(&t.as_bytes()[1..]) else {
                        continue;
                    };
                    d.insert(0, channel);
                    d
                }
                _ => continue,
            };
            match data.first() {
                Some(0) if !shell && ws.send(out(1, &data[1..])).await.is_err() => return,
                Some(0) if !shell => {}
                Some(0) => {
                    let mut reply = Vec::new();
                    let mut done = false;
                    for &b in &data[1..] {
                        if b == b'\r' || b == b'\n' {
                            reply.extend_from_slice(b"\r\n");
                            let cmd = String::from_utf8_lossy(&line).trim().to_string();
                            line.clear();
                            if let Some(words) = cmd.strip_prefix("echo ") {
                                reply.extend_from_slice(words.as_bytes());
                                reply.extend_from_slice(b"\r\n");
                            } else if cmd == "exit" || cmd.starts_with("exit ") {
                                exit_code = cmd[4..].trim().parse().unwrap_or(0);
                                done = true;
                                break;
                            } else if !cmd.is_empty() {
                                reply.extend_from_slice(format!("sh: {cmd}: not found\r\n").as_bytes());
                            }
                            reply.extend_from_slice(b"$ ");
                        } else {
                            line.push(b);
                            reply.push(b); // the terminal's echo
                        }
                    }
                    if ws.send(out(1, &reply)).await.is_err() {
                        return;
                    }
                    if done {
                        break;
                    }
                }
                Some(4) => {
                    #[derive(serde::Deserialize)]
                    struct Size {
                        #[serde(rename = "Width")]
                        w: u16,
                        #[serde(rename = "Height")]
                        h: u16,
                    }
                    if let Ok(s) = serde_json::from_slice::<Size>(&data[1..]) {
                        st.resizes.lock().unwrap().push((s.w, s.h));
                    }
                }
                Some(255) if data.get(1) == Some(&0) && !shell => break,
                _ => {} // other channels
            }
        }
        let status = if exit_code == 0 {
            json!({"metadata": {}, "status": "Success"})
        } else {
            json!({"metadata": {}, "status": "Failure", "message": format!("command terminated with non-zero exit code: exit status {exit_code}"),
                "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": exit_code.to_string()}]}})
        };
        let _ = ws.send(out(3, &serde_json::to_vec(&status).unwrap())).await;
        let normal = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        let _ = ws.close(Some(normal)).await;
        // Let the client's close come back before the stream is dropped.
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(5), async { while ws.next().await.is_some() {} }).await;
    });
    let mut r = Response::new(Full::new(Bytes::new()).boxed_unsync());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert("upgrade", "websocket".parse().unwrap());
    h.insert("connection", "Upgrade".parse().unwrap());
    h.insert("sec-websocket-accept", key.parse().unwrap());
    h.insert("sec-websocket-protocol", proto.parse().unwrap());
    r
}

/// `pods/NAME/portforward`: the 101 for WebSocket-tunnelled SPDY or for SPDY/3.1,
/// then the stream held open (what the client sends read and dropped) until it ends.
fn port_forward(st: Arc<State>, mut req: Request<Incoming>) -> Response<Body> {
    const TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
    let spdy =
        req.headers().get("upgrade").and_then(|v| v.to_str().ok()).is_some_and(|u| u.eq_ignore_ascii_case("SPDY/3.1"));
    let key = req.headers().get("sec-websocket-key").map(|k| derive_accept_key(k.as_bytes()));
    let tunnel = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == TUNNEL);
    if !spdy && (key.is_none() || !tunnel) {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "the double forwards ports over SPDY/3.1 or its tunnel");
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(up) = upgrade.await else { return };
        st.port_forwards.fetch_add(1, Ordering::SeqCst);
        let mut io = TokioIo::new(up);
        if spdy {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut io, &mut sink).await;
            return;
        }
        // Reading answers the client's pings.
        let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        while let Some(Ok(_)) = ws.next().await {}
    });
    let mut r = Response::new(Full::new(Bytes::new()).boxed_unsync());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert("connection", "Upgrade".parse().unwrap());
    match key {
        Some(key) if !spdy => {
            h.insert("upgrade", "websocket".parse().unwrap());
            h.insert("sec-websocket-accept", key.parse().unwrap());
            h.insert("sec-websocket-protocol", TUNNEL.parse().unwrap());
        }
        _ => {
            h.insert("upgrade", "SPDY/3.1".parse().unwrap());
            h.insert("x-stream-protocol-version", "portforward.k8s.io".parse().unwrap());
        }
    }
    r
}

/// A SPDY/3.1 upgrade: 101, one line of raw bytes, close.
fn spdy(st: Arc<State>, mut req: Request<Incoming>) -> Response<Body> {
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(up) = upgrade.await else { return };
        st.execs.fetch_add(1, Ordering::SeqCst);
        let mut io = TokioIo::new(up);
        let _ = tokio::io::AsyncWriteExt::write_all(&mut io, b"spdy-session-started\n").await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut io).await;
    });
    let mut r = Response::new(Full::new(Bytes::new()).boxed_unsync());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert("upgrade", "SPDY/3.1".parse().unwrap());
    h.insert("connection", "Upgrade".parse().unwrap());
    h.insert("x-stream-protocol-version", "v4.channel.k8s.io".parse().unwrap());
    r
}
