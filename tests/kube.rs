//! Kubernetes end to end with the real kubectl: `kube login` (kubectl straight to the
//! routing server, routed by SNI) and `proxy kube` (kubectl to the local HTTPS proxy),
//! the server's impersonating backend in front of an API-server double, watches that
//! idle past 10 s (and 3 s behind nginx's 1 s cut-off), `kubectl exec` with stdin, kubeconfig merging by kubectl's rules,
//! the Status 403 for callers outside the allow-list, and `proxy kube` on one
//! `teleport-http-mux` session (get, watch and exec, direct and behind nginx, HAProxy
//! and squid; the fallback without it; a reload that removes the user).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::kube_api::{KubeApi, POD};
use common::lb::{self, LbPki, NginxMode};
use common::*;
use oneport::server::config::{Allow, Kube};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const KUBECTL: &str = "/usr/bin/kubectl";
/// Deadline for one kubectl command.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(90);

fn kube_cluster(api: &KubeApi, name: &str, groups: &[&str]) -> Kube {
    Kube {
        name: name.into(),
        api_server: api.url.clone(),
        ca: Some(api.ca_path.clone()),
        token_file: Some(api.token_path.clone()),
        client_cert: None,
        client_key: None,
        allow: Allow { users: vec![], groups: groups.iter().map(|g| g.to_string()).collect() },
        recording: Default::default(),
    }
}

/// The set-up most tests share: the kube API double, a server with cluster `dev`
/// (for group `dev`) routed to it, alice's identity, and a private home.
struct Dev {
    api: KubeApi,
    srv: TestServer,
    id: PathBuf,
    home: Home,
}

impl Dev {
    /// Alice in group `dev`.
    async fn start() -> Dev {
        Dev::start_as(&["dev"], |_| {}).await
    }

    /// Alice in `groups`, with `edit` applied to the server config after `dev` is added.
    async fn start_as(groups: &[&str], edit: impl FnOnce(&mut oneport::server::Config)) -> Dev {
        let api = KubeApi::start().await;
        let srv = TestServer::start(|c| {
            c.kube.push(kube_cluster(&api, "dev", &["dev"]));
            edit(c);
        })
        .await;
        let id = srv.identity("alice", groups);
        Dev { api, srv, id, home: Home::new() }
    }
}

/// A temporary HOME (kubectl's cache, ~/.kube) that is also ONEPORT_HOME.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home { dir: tempfile::tempdir().unwrap() }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn kubeconfig(&self) -> PathBuf {
        self.path().join("kubeconfig")
    }
    /// `oneport` with this home, the proxy and identity flags, and KUBECONFIG.
    fn oneport(&self, srv: &TestServer, id: &Path, kubeconfig: &str) -> Command {
        self.oneport_via(&srv.addr.to_string(), id, kubeconfig)
    }
    /// As [`Home::oneport`], with `proxy` as the proxy address (a load balancer).
    fn oneport_via(&self, proxy: &str, id: &Path, kubeconfig: &str) -> Command {
        let mut c = oneport(self.path());
        c.env("HOME", self.path()).env("KUBECONFIG", kubeconfig);
        c.args(["--proxy", proxy, "--identity"]).arg(id);
        c
    }
    /// kubectl with this HOME and KUBECONFIG.
    fn kubectl(&self, kubeconfig: &str) -> Command {
        let mut c = scrubbed(KUBECTL, self.path());
        c.env("HOME", self.path()).env("KUBECONFIG", kubeconfig);
        c
    }
}

/// Runs a command to completion under [`KUBECTL_TIMEOUT`].
async fn output(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    tokio::time::timeout(KUBECTL_TIMEOUT, cmd.output()).await.expect("command timed out").expect("command starts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and asserts success; returns stdout.
async fn ok(cmd: Command, what: &str) -> String {
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `kube login` for `id` into `kubeconfig` (a KUBECONFIG value).
async fn kube_login(home: &Home, srv: &TestServer, id: &Path, kubeconfig: &str, name: &str) -> String {
    let mut c = home.oneport(srv, id, kubeconfig);
    c.args(["kube", "login", name]);
    ok(c, "oneport kube login").await
}

/// `kubectl version` and `kubectl get pods` through `kubeconfig`.
async fn version_and_pods(home: &Home, kubeconfig: &str) {
    let mut c = home.kubectl(kubeconfig);
    c.args(["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&ok(c, "kubectl version").await).unwrap();
    assert_eq!(v["serverVersion"]["gitVersion"], common::kube_api::GIT_VERSION, "{v}");
    let mut c = home.kubectl(kubeconfig);
    c.args(["get", "pods"]);
    let out = ok(c, "kubectl get pods").await;
    assert!(out.contains(POD) && out.contains("Running"), "{out}");
}

/// 1 and 2: kubectl through `kube login` straight to the server; the API server sees
/// the caller impersonated with its own token, never the client's credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_login_direct_impersonates_the_caller() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let Dev { api, srv, id, home } = Dev::start_as(&["dev", "ops"], |_| {}).await;
        let kc = home.kubeconfig();
        let kc = kc.to_str().unwrap();
        let out = kube_login(&home, &srv, &id, kc, "dev").await;
        assert!(out.contains("context test-dev"), "{out}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(kc).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "kubeconfig mode");
        }
        version_and_pods(&home, kc).await;

        // The client asks to impersonate admin. (A client token is tried through
        // `proxy kube`: kubectl skips the exec plugin's certificate when given --token.)
        let mut c = home.kubectl(kc);
        c.args(["--as=admin", "--as-group=system:masters", "get", "pods"]);
        let out = output(c).await;
        assert!(out.status.success(), "{}", text(&out.stderr));

        let seen = api.requests();
        assert!(seen.len() >= 4, "{seen:?}");
        for r in &seen {
            assert_eq!(r.all("impersonate-user"), ["alice"], "{} {}", r.method, r.path);
            assert_eq!(r.all("impersonate-group"), ["dev", "ops"], "{} {}", r.method, r.path);
            assert_eq!(r.all("authorization"), [format!("Bearer {}", api.token)], "{} {}", r.method, r.path);
            assert!(r.all("impersonate-uid").is_empty());
        }
        assert!(seen.iter().any(|r| r.path == "/version"));
        assert!(seen.iter().any(|r| r.path == "/api/v1/namespaces/default/pods"));
        // Three kubectl runs, one upstream pool: connections to the API server are reused.
        assert!(api.connections() * 2 <= seen.len(), "{} connections for {} requests", api.connections(), seen.len());
        srv.stop().await;
    })
    .await;
}

/// A running `oneport proxy kube` and the KUBECONFIG it printed.
struct KubeProxy {
    child: tokio::process::Child,
    kubeconfig: String,
}

/// Starts `oneport proxy kube NAMES...`; checks the first stdout line names the local
/// address and reads the `export KUBECONFIG=...` line.
async fn proxy_kube(home: &Home, srv: &TestServer, id: &Path, names: &[&str]) -> KubeProxy {
    proxy_kube_cmd(home.oneport(srv, id, "/nonexistent/never-used"), names).await
}

/// Both ways kubectl reaches cluster `dev`: `kube login` into the home kubeconfig
/// (returned) and a running `proxy kube dev`.
async fn both_ways(home: &Home, srv: &TestServer, id: &Path) -> (String, KubeProxy) {
    let kc = home.kubeconfig().to_str().unwrap().to_string();
    kube_login(home, srv, id, &kc, "dev").await;
    (kc, proxy_kube(home, srv, id, &["dev"]).await)
}

async fn proxy_kube_cmd(c: Command, names: &[&str]) -> KubeProxy {
    proxy_kube_spawn(c, names, Stdio::inherit()).await
}

/// As [`proxy_kube_cmd`], without the upgrade probe (so `via` may be a plain TCP
/// forwarder), and with its stderr lines collected.
async fn proxy_kube_logged(mut c: Command, names: &[&str]) -> (KubeProxy, Arc<std::sync::Mutex<Vec<String>>>) {
    c.env("ONEPORT_TLS_ROUTING_CONN_UPGRADE", "false").env_remove("RUST_LOG");
    let mut p = proxy_kube_spawn(c, names, Stdio::piped()).await;
    let lines = collect_lines(p.child.stderr.take().unwrap());
    (p, lines)
}

async fn proxy_kube_spawn(mut c: Command, names: &[&str], stderr: Stdio) -> KubeProxy {
    c.args(["proxy", "kube"]).args(names).stdout(Stdio::piped()).stderr(stderr).kill_on_drop(true);
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (addr, kubeconfig) = tokio::time::timeout(Duration::from_secs(60), async {
        let first = lines.next_line().await.unwrap().expect("proxy kube printed nothing");
        let addr = find_loopback_addr(&first).unwrap_or_else(|| panic!("first line has no address: {first}"));
        loop {
            let line = lines.next_line().await.unwrap().expect("no export line");
            if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
                return (addr, path.to_string());
            }
        }
    })
    .await
    .expect("proxy kube did not start within 60s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let server = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(server.contains(&format!("server: https://{addr}")), "{server}");
    KubeProxy { child, kubeconfig }
}

/// 1 and 2 through `proxy kube`: kubectl talks HTTPS to the local proxy, which dials
/// the server; client credentials and impersonation never reach the API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kube_direct_impersonates_the_caller() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let api = KubeApi::start().await;
        let prod = KubeApi::start().await;
        let srv = TestServer::start(|c| {
            c.kube.push(kube_cluster(&api, "dev", &["dev"]));
            c.kube.push(kube_cluster(&prod, "prod", &["dev"]));
        })
        .await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let mut p = proxy_kube(&home, &srv, &id, &["dev", "prod"]).await;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p.kubeconfig).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "throwaway kubeconfig mode");
        }
        version_and_pods(&home, &p.kubeconfig).await;
        // Both clusters are contexts, told apart by SNI: prod's requests reach prod's
        // API server only.
        let dev_requests = api.requests().len();
        assert!(prod.requests().is_empty());
        let mut c = home.kubectl(&p.kubeconfig);
        c.args(["--context", "test-prod", "get", "pods"]);
        assert!(ok(c, "kubectl get pods on prod").await.contains(POD));
        assert!(prod.requests().iter().any(|r| r.path == "/api/v1/namespaces/default/pods"));
        assert_eq!(api.requests().len(), dev_requests, "prod's requests went to dev");

        let mut c = home.kubectl(&p.kubeconfig);
        c.args(["-v=8", "--token=client-token", "--as=admin", "--as-group=system:masters", "get", "pods"]);
        let out = output(c).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let log = text(&out.stderr);
        assert!(log.contains("Impersonate-User: admin"), "kubectl must have sent the header we strip:\n{log}");
        assert!(log.contains("Authorization: Bearer <masked>"), "kubectl must have sent its token:\n{log}");

        let seen = api.requests();
        assert!(seen.len() >= 5, "{seen:?}");
        for r in &seen {
            assert_eq!(r.all("impersonate-user"), ["alice"], "{} {}", r.method, r.path);
            assert_eq!(r.all("impersonate-group"), ["dev"], "{} {}", r.method, r.path);
            assert_eq!(r.all("authorization"), [format!("Bearer {}", api.token)], "{} {}", r.method, r.path);
        }
        // SIGTERM stops the proxy and removes the throwaway kubeconfig.
        let pid = p.child.id().unwrap().to_string();
        let mut kill = Command::new("kill");
        kill.args(["-TERM", &pid]);
        ok(kill, "kill -TERM").await;
        let status = tokio::time::timeout(Duration::from_secs(30), p.child.wait()).await.unwrap().unwrap();
        assert!(status.success(), "{status}");
        assert!(!Path::new(&p.kubeconfig).exists(), "the kubeconfig must be removed at exit");
        srv.stop().await;
    })
    .await;
}

/// `kubectl exec -i POD -- cat`: 1 MiB of stdin comes back byte for byte, through
/// `kube login` and through `proxy kube` (WebSocket upgrade relayed on every hop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_round_trips_stdin() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let Dev { api, srv, id, home } = Dev::start().await;
        let (kc, mut p) = both_ways(&home, &srv, &id).await;
        let payload = random_bytes(1 << 20, 11);
        for (how, kubeconfig) in [("kube login", kc.as_str()), ("proxy kube", p.kubeconfig.as_str())] {
            let mut c = home.kubectl(kubeconfig);
            c.args(["exec", "-i", POD, "--", "cat"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let data = payload.clone();
            let writer = tokio::spawn(async move {
                stdin.write_all(&data).await.unwrap();
                stdin.shutdown().await.unwrap();
            });
            let out = tokio::time::timeout(KUBECTL_TIMEOUT, child.wait_with_output()).await.unwrap().unwrap();
            writer.await.unwrap();
            assert!(out.status.success(), "{how}: kubectl exec failed: {}", text(&out.stderr));
            assert_eq!(out.stdout.len(), payload.len(), "{how}: {}", text(&out.stderr));
            assert_eq!(sha256(&out.stdout), sha256(&payload), "{how}: bytes changed");
        }
        assert_eq!(api.execs(), 2);
        let exec = api.requests().into_iter().filter(|r| r.path.ends_with("/exec")).collect::<Vec<_>>();
        assert_eq!(exec.len(), 2);
        for r in exec {
            assert_eq!(r.all("impersonate-user"), ["alice"]);
            assert!(r.all("sec-websocket-protocol").iter().any(|p| p.contains("v5.channel.k8s.io")), "{r:?}");
        }
        let _ = p.child.start_kill();
        srv.stop().await;
    })
    .await;
}

/// 3: `kubectl get pods --watch` idles 10 s, then receives the event the API server
/// sends, through `kube login` and through `proxy kube` at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_an_event_after_ten_idle_seconds() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let Dev { api, srv, id, home } = Dev::start().await;
        let (kc, mut p) = both_ways(&home, &srv, &id).await;
        let mut watchers = Vec::new();
        for kubeconfig in [kc.as_str(), p.kubeconfig.as_str()] {
            let mut c = home.kubectl(kubeconfig);
            c.args(["get", "pods", "--watch"]).stdout(Stdio::piped()).stderr(Stdio::inherit());
            let mut child = c.spawn().unwrap();
            let lines = BufReader::new(child.stdout.take().unwrap()).lines();
            watchers.push((child, lines));
        }
        poll_until(Duration::from_secs(60), "both watches to reach the API server", || async {
            (api.watches() >= 2).then_some(())
        })
        .await;
        // Idling is the thing under test.
        tokio::time::sleep(Duration::from_secs(10)).await;
        api.send_event("late-pod");
        for (i, (child, lines)) in watchers.iter_mut().enumerate() {
            let got = tokio::time::timeout(Duration::from_secs(30), async {
                while let Some(line) = lines.next_line().await.unwrap() {
                    if line.contains("late-pod") {
                        return line;
                    }
                }
                panic!("watch {i} ended without the event");
            })
            .await
            .unwrap_or_else(|_| panic!("watch {i} did not print the event within 30s"));
            assert!(got.contains("Running"), "{got}");
            let _ = child.start_kill();
        }
        let _ = p.child.start_kill();
        srv.stop().await;
    })
    .await;
}

/// `proxy kube --exec=CMD`: CMD runs with KUBECONFIG set, its exit code comes back,
/// and the throwaway kubeconfig is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kube_exec_passes_the_exit_code_and_cleans_up() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let Dev { api: _api, srv, id, home } = Dev::start().await;
        let mut c = home.oneport(&srv, &id, "/nonexistent/never-used");
        c.args(["proxy", "kube", "dev", "--exec=kubectl get pods && test -f \"$KUBECONFIG\" && exit 7"]);
        let out = output(c).await;
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(7), "stdout: {stdout}\nstderr: {stderr}");
        assert!(stdout.contains(POD), "kubectl's output: {stdout}");
        let path = stderr
            .lines()
            .find_map(|l| l.strip_prefix("export KUBECONFIG="))
            .unwrap_or_else(|| panic!("no export line on stderr: {stderr}"));
        assert!(!Path::new(path).exists(), "{path} should be removed");
        assert!(!Path::new(path).parent().unwrap().exists(), "its directory too");
        srv.stop().await;
    })
    .await;
}

/// 6: a caller outside the allow-list completes the TLS handshake and gets a
/// Kubernetes Status 403 that kubectl prints; the API server sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_outside_the_allow_list_gets_status_403() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let log = tempfile::tempdir().unwrap();
        let audit = log.path().join("audit.jsonl");
        let a = audit.clone();
        let Dev { api, srv, id: alice, home } = Dev::start_as(&["dev"], |c| c.audit_log = Some(a)).await;
        let bob = srv.identity("bob", &["qa"]);
        // Log in while allowed, then the identity file changes to bob's (as if the
        // allow-list had changed since): kubectl's exec plugin now presents bob.
        let id = home.path().join("id.pem");
        std::fs::copy(&alice, &id).unwrap();
        let kc = home.kubeconfig();
        let kc = kc.to_str().unwrap();
        kube_login(&home, &srv, &id, kc, "dev").await;
        // kube login's one check, as alice.
        let at_login = api.requests();
        assert_eq!(at_login.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/version"], "{at_login:?}");
        std::fs::copy(&bob, &id).unwrap();
        let mut c = home.kubectl(kc);
        c.args(["get", "pods"]);
        let out = output(c).await;
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("Error from server (Forbidden): access to kube cluster dev denied for user bob"),
            "{stderr}"
        );

        // The raw answer to an API request is a Kubernetes Status (discovery paths
        // get the sentence as text: client-go shows nothing else there).
        let dialer = srv.dialer(&bob);
        let target = oneport::client::dial::Target::resource(
            dialer.context(),
            oneport::proto::naming::Kind::Kube,
            "dev",
            oneport::proto::naming::Protocol::Http1,
        );
        let dialed = dialer.dial(&target).await.expect("a denied kube caller completes the handshake");
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(dialed.stream)).await.unwrap();
        tokio::spawn(conn);
        let get = |path: &str| {
            hyper::Request::get(path)
                .header("host", "kube")
                .body(http_body_util::Empty::<hyper::body::Bytes>::new())
                .unwrap()
        };
        use http_body_util::BodyExt;
        let resp = send.send_request(get("/api")).await.unwrap();
        assert_eq!(resp.status(), 403);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(text(&body).trim(), "access to kube cluster dev denied for user bob");
        send.ready().await.unwrap();
        let resp = send.send_request(get("/api/v1/namespaces/default/pods")).await.unwrap();
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "Forbidden");
        assert_eq!(v["code"], 403);
        assert_eq!(v["message"], "access to kube cluster dev denied for user bob");
        drop(send); // closes the connection, so the server drains at once

        // `proxy kube` refuses up front with the same sentence.
        let mut c = home.oneport(&srv, &bob, "/nonexistent/never-used");
        c.args(["proxy", "kube", "dev"]);
        let out = output(c).await;
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("access to kube cluster dev denied for user bob"), "{}", text(&out.stderr));

        assert_eq!(
            api.requests().len(),
            at_login.len(),
            "the API server must see nothing of bob: {:?}",
            api.requests()
        );
        srv.stop().await;
        // Each refused request is in the audit log with the user.
        let text = std::fs::read_to_string(&audit).unwrap();
        let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let refused = records
            .iter()
            .find(|r| r["event"] == "refused" && r["reason"] == "caller not in the allow-list (GET /api)")
            .unwrap_or_else(|| panic!("a refusal of GET /api in {text}"));
        assert_eq!(refused["user"], "bob");
        assert_eq!(refused["groups"], serde_json::json!(["qa"]));
        assert_eq!(refused["kind"], "kube");
        assert_eq!(refused["resource"], "dev");
    })
    .await;
}

/// `kube login` when the login profile says a layer 7 load balancer is in front:
/// kubectl cannot go direct, so it says so and names the `proxy kube` command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_login_behind_an_l7_balancer_points_to_proxy_kube() {
    deadline(async {
        let Dev { api: _api, srv, id, home } = Dev::start().await;
        let mut c = home.oneport(&srv, &id, "/nonexistent/never-used");
        c.arg("login");
        ok(c, "oneport login").await;
        let profile = home.path().join("profiles").join(format!("127.0.0.1_{}.yaml", srv.addr.port()));
        let mut p: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
        p["upgrade"] = serde_yaml_ng::from_str("{required: true, reason: 'probe: no ALPN negotiated'}").unwrap();
        std::fs::write(&profile, serde_yaml_ng::to_string(&p).unwrap()).unwrap();
        let kc = home.kubeconfig();
        let mut c = oneport(home.path());
        c.env("HOME", home.path()).env("KUBECONFIG", &kc).args(["kube", "login", "dev"]);
        let out = output(c).await;
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(stderr.contains("load balancer") && stderr.contains("oneport proxy kube dev"), "{stderr}");
        assert!(!kc.exists(), "nothing written");
        srv.stop().await;
    })
    .await;
}

const EXISTING: &str = r#"apiVersion: v1
kind: Config
preferences: {}
clusters:
- name: other
  cluster:
    server: https://other.example:6443
    insecure-skip-tls-verify: true
    extensions:
    - name: vendor.example/meta
      extension: {team: blue}
users:
- name: other
  user:
    token: other-token
contexts:
- name: other
  context:
    cluster: other
    user: other
    namespace: payments
current-context: other
x-vendor-field: keep-me
"#;

fn yaml(path: &Path) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn entry<'a>(doc: &'a serde_yaml_ng::Value, section: &str, name: &str) -> Option<&'a serde_yaml_ng::Value> {
    doc[section].as_sequence()?.iter().find(|e| e["name"].as_str() == Some(name))
}

/// 5a: with no KUBECONFIG, `kube login` edits ~/.kube/config: the unrelated context
/// and every unknown field stay exactly as they were; kubectl uses both contexts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_login_merges_into_home_kubeconfig() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let Dev { api: _api, srv, id, home } = Dev::start().await;
        let kc = home.path().join(".kube/config");
        std::fs::create_dir_all(kc.parent().unwrap()).unwrap();
        std::fs::write(&kc, EXISTING).unwrap();
        let before = yaml(&kc);

        let mut c = home.oneport(&srv, &id, "");
        c.env_remove("KUBECONFIG").args(["kube", "login", "dev"]);
        let out = ok(c, "kube login").await;
        assert!(out.contains(&kc.display().to_string()), "{out}");
        let after = yaml(&kc);
        for section in ["clusters", "users", "contexts"] {
            assert_eq!(entry(&after, section, "other"), entry(&before, section, "other"), "{section}/other changed");
            assert!(entry(&after, section, "test-dev").is_some(), "{section}/test-dev missing");
        }
        assert_eq!(after["x-vendor-field"], "keep-me");
        assert_eq!(after["preferences"], before["preferences"]);
        assert_eq!(after["current-context"], "test-dev");
        let cluster = &entry(&after, "clusters", "test-dev").unwrap()["cluster"];
        assert_eq!(cluster["server"], format!("https://{}", srv.addr).as_str());
        assert_eq!(cluster["tls-server-name"], "dev.kube-teleport-proxy-alpn.teleport.cluster.local");
        let exec = &entry(&after, "users", "test-dev").unwrap()["user"]["exec"];
        assert!(Path::new(exec["command"].as_str().unwrap()).is_absolute(), "{exec:?}");

        let mut k = home.kubectl("");
        k.env_remove("KUBECONFIG").args(["get", "pods"]);
        assert!(ok(k, "kubectl get pods").await.contains(POD));
        let mut k = home.kubectl("");
        k.env_remove("KUBECONFIG").args(["config", "get-contexts", "-o", "name"]);
        let names = ok(k, "kubectl config get-contexts").await;
        assert_eq!(names.lines().collect::<Vec<_>>(), ["other", "test-dev"]);

        // Again, under another context name and without switching.
        let mut c = home.oneport(&srv, &id, "");
        c.env_remove("KUBECONFIG").args(["kube", "login", "dev", "--no-switch", "--set-context-name", "mydev"]);
        ok(c, "kube login --no-switch").await;
        let again = yaml(&kc);
        assert_eq!(again["current-context"], "test-dev");
        assert_eq!(entry(&again, "contexts", "mydev").unwrap()["context"]["cluster"], "test-dev");
        assert_eq!(again["clusters"].as_sequence().unwrap().len(), 2, "the cluster entry is updated, not duplicated");
        let mut k = home.kubectl("");
        k.env_remove("KUBECONFIG").args(["--context", "mydev", "get", "pods"]);
        assert!(ok(k, "kubectl --context mydev").await.contains(POD));
        srv.stop().await;
    })
    .await;
}

/// 5b: a kubeconfig that does not parse stops `kube login` with its name, and no
/// file of the chain is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_login_refuses_a_broken_kubeconfig() {
    deadline(async {
        let Dev { api: _api, srv, id, home } = Dev::start().await;
        let good = home.path().join("good");
        let broken = home.path().join("broken");
        std::fs::write(&good, EXISTING).unwrap();
        let junk = "apiVersion: v1\nclusters: [ { name: x, cluster: {\n";
        std::fs::write(&broken, junk).unwrap();
        let chain = format!("{}:{}", good.display(), broken.display());
        let mut c = home.oneport(&srv, &id, &chain);
        c.args(["kube", "login", "dev"]);
        let out = output(c).await;
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&broken.display().to_string()) && stderr.contains("not valid YAML"), "{stderr}");
        assert!(stderr.contains("nothing was written"), "{stderr}");
        assert_eq!(std::fs::read_to_string(&broken).unwrap(), junk);
        assert_eq!(std::fs::read_to_string(&good).unwrap(), EXISTING);

        // --kubeconfig FILE takes every write, whatever KUBECONFIG says.
        let explicit = home.path().join("explicit");
        let mut c = home.oneport(&srv, &id, &chain);
        c.args(["kube", "login", "dev", "--kubeconfig"]).arg(&explicit);
        ok(c, "kube login --kubeconfig").await;
        assert_eq!(yaml(&explicit)["current-context"], "test-dev");
        assert_eq!(std::fs::read_to_string(&good).unwrap(), EXISTING);
        srv.stop().await;
    })
    .await;
}

/// Which entries each file holds: `section/name` and `current-context=X`, or `missing`.
fn summary(files: &[PathBuf]) -> Vec<Vec<String>> {
    files
        .iter()
        .map(|f| {
            if !f.exists() {
                return vec!["missing".to_string()];
            }
            let doc = yaml(f);
            let mut out = Vec::new();
            for section in ["clusters", "users", "contexts"] {
                for e in doc[section].as_sequence().into_iter().flatten() {
                    out.push(format!("{section}/{}", e["name"].as_str().unwrap()));
                }
            }
            if let Some(cc) = doc["current-context"].as_str().filter(|s| !s.is_empty()) {
                out.push(format!("current-context={cc}"));
            }
            out.sort();
            out
        })
        .collect()
}

/// 5c: with KUBECONFIG listing several files, `kube login` puts each entry in the
/// same file as kubectl's own `config set-cluster/set-credentials/set-context/
/// use-context` would (checked against kubectl on an identical copy), and kubectl
/// reaches the cluster through the merged chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_login_follows_kubectl_with_several_files() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let Dev { api: _api, srv, id, home } = Dev::start().await;
        let existing_user = "users:\n- name: test-dev\n  user: {token: old}\n";
        // Case 1: a missing, b has another context and current-context, c already
        // has our user. Case 2: neither file exists.
        let cases: [&[(&str, Option<&str>)]; 2] =
            [&[("a", None), ("b", Some(EXISTING)), ("c", Some(existing_user))], &[("x", None), ("y", None)]];
        for (n, files) in cases.iter().enumerate() {
            let ours = home.path().join(format!("ours{n}"));
            let theirs = home.path().join(format!("theirs{n}"));
            let mut paths = (Vec::new(), Vec::new());
            for (dir, list) in [(&ours, &mut paths.0), (&theirs, &mut paths.1)] {
                std::fs::create_dir_all(dir).unwrap();
                for (name, content) in files.iter() {
                    let p = dir.join(name);
                    if let Some(c) = content {
                        std::fs::write(&p, c).unwrap();
                    }
                    list.push(p);
                }
            }
            let join = |l: &Vec<PathBuf>| l.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
            let (ours_chain, theirs_chain) = (join(&paths.0), join(&paths.1));
            kube_login(&home, &srv, &id, &ours_chain, "dev").await;
            for args in [
                &["config", "set-cluster", "test-dev", "--server=https://127.0.0.1:1"][..],
                &["config", "set-credentials", "test-dev", "--token=x"],
                &["config", "set-context", "test-dev", "--cluster=test-dev", "--user=test-dev"],
                &["config", "use-context", "test-dev"],
            ] {
                let mut k = home.kubectl(&theirs_chain);
                k.args(args);
                ok(k, &format!("kubectl {args:?}")).await;
            }
            assert_eq!(summary(&paths.0), summary(&paths.1), "case {n}: files differ from kubectl's choice");
            let expected: Vec<Vec<&str>> = if n == 0 {
                // New entries and current-context: the first file that exists (b);
                // the existing user: where it already was (c).
                vec![
                    vec!["missing"],
                    vec![
                        "clusters/other",
                        "clusters/test-dev",
                        "contexts/other",
                        "contexts/test-dev",
                        "current-context=test-dev",
                        "users/other",
                    ],
                    vec!["users/test-dev"],
                ]
            } else {
                // Nothing exists: the last file.
                vec![
                    vec!["missing"],
                    vec!["clusters/test-dev", "contexts/test-dev", "current-context=test-dev", "users/test-dev"],
                ]
            };
            assert_eq!(summary(&paths.0), expected, "case {n}");
            let mut k = home.kubectl(&ours_chain);
            k.args(["config", "current-context"]);
            assert_eq!(ok(k, "current-context").await.trim(), "test-dev");
            let mut k = home.kubectl(&ours_chain);
            k.args(["get", "pods"]);
            assert!(ok(k, "kubectl get pods through the chain").await.contains(POD));
        }
        srv.stop().await;
    })
    .await;
}

/// 7: behind nginx (a TLS-terminating L7 load balancer that cuts streams idle for
/// 1 s), `proxy kube` finds the upgrade on its own: `kubectl get pods` works, and a
/// watch idle for 3 s (pings every 300 ms) still receives its event. `kube login`
/// says kubectl cannot go direct and names the `proxy kube` command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_proxy_kube_serves_kubectl_and_idle_watches() {
    if !have(KUBECTL) || !have("nginx") {
        return;
    }
    deadline(async {
        let b = BehindNginx::start(FAST_IDLE.pings).await;
        let (api, home, id, via) = (&b.api, &b.home, &b.id, &b.via);

        // `oneport login` through nginx caches "upgrade required"; `kube login` then
        // refuses to write a kubeconfig kubectl could not use.
        let mut c = home.oneport_via(via, id, "/nonexistent/never-used");
        c.env("SSL_CERT_FILE", &b.pki.ca).arg("login");
        ok(c, "oneport login through nginx").await;
        let kc = home.kubeconfig();
        let mut c = oneport(home.path());
        c.env("HOME", home.path())
            .env("KUBECONFIG", &kc)
            .env("SSL_CERT_FILE", &b.pki.ca)
            .args(["kube", "login", "dev"]);
        let out = output(c).await;
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(stderr.contains("load balancer") && stderr.contains("oneport proxy kube dev"), "{stderr}");
        assert!(!kc.exists());

        let got = b.idle_watch(true).await.expect("the watch ended without the event (cut by nginx?)");
        assert!(got.contains("Running"), "{got}");
        assert_eq!(api.watches(), 1, "one watch, never re-established");
        for r in api.requests() {
            assert_eq!(r.all("impersonate-user"), ["alice"]);
        }
        b.stop().await;
    })
    .await;
}

/// 7b. The negative control of 7: the same path, cut-off and idle window, but a
/// server that never pings: nginx cuts the idle watch, and the event never arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_idle_watches_are_cut_without_pings() {
    if !have(KUBECTL) || !have("nginx") {
        return;
    }
    deadline(async {
        let b = BehindNginx::start(NO_PINGS).await;
        let got = b.idle_watch(false).await;
        assert_eq!(got, None, "the watch survived without pings, so pings are not what keeps it up");
        b.stop().await;
    })
    .await;
}

/// The kube API double, a server pinging every `pings` with cluster `dev` on it,
/// nginx in front (cut-off `FAST_IDLE.lb`), and alice's identity and home.
struct BehindNginx {
    api: KubeApi,
    srv: TestServer,
    pki: LbPki,
    nginx: lb::Proc,
    via: String,
    id: PathBuf,
    home: Home,
}

impl BehindNginx {
    async fn start(pings: Duration) -> BehindNginx {
        let Dev { api, srv, id, home } = Dev::start_as(&["dev"], |c| c.ping_interval = pings).await;
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, false, FAST_IDLE.lb).await;
        let via = nginx.addr.to_string();
        BehindNginx { api, srv, pki, nginx, via, id, home }
    }

    /// `proxy kube` through nginx, `kubectl get pods` (when `check_pods`), then a
    /// watch idle for `FAST_IDLE.window` before the double sends an event: the line
    /// kubectl printed for it, or `None` if the watch ended (or stayed silent for
    /// 10 s) without it.
    async fn idle_watch(&self, check_pods: bool) -> Option<String> {
        let mut c = self.home.oneport_via(&self.via, &self.id, "/nonexistent/never-used");
        c.env("SSL_CERT_FILE", &self.pki.ca);
        let mut p = proxy_kube_cmd(c, &["dev"]).await;
        if check_pods {
            version_and_pods(&self.home, &p.kubeconfig).await;
        }
        let mut k = self.home.kubectl(&p.kubeconfig);
        k.args(["get", "pods", "--watch"]).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut watch = k.spawn().unwrap();
        let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
        let before = self.api.watches();
        // Until the watch reaches the API server. Without pings a loaded machine may
        // stall past the cut-off before that, and kubectl ends: a cut too.
        let end = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.api.watches() == before {
            if watch.try_wait().unwrap().is_some() {
                let _ = p.child.start_kill();
                return None;
            }
            assert!(tokio::time::Instant::now() < end, "the watch did not reach the API server within 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(FAST_IDLE.window).await; // idling past nginx's cut-off is the point
        self.api.send_event("late-pod");
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("late-pod") {
                    return Some(line);
                }
            }
            None
        })
        .await
        .unwrap_or(None);
        let _ = watch.start_kill();
        let _ = p.child.start_kill();
        got
    }

    async fn stop(self) {
        drop(self.nginx);
        self.srv.stop().await;
    }
}

/// The expiry of the identity in `path`.
fn old_not_after(path: &Path) -> i64 {
    oneport::identity::Identity::load(path).unwrap().caller.not_after
}

/// `kube credentials` prints the identity as an ExecCredential, and refuses an
/// expired identity with a sentence kubectl shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_credentials_carry_the_identity_and_refuse_expired_ones() {
    deadline(async {
        let Dev { api: _api, srv, id, home } = Dev::start().await;
        let mut c = home.oneport(&srv, &id, "");
        c.args(["kube", "credentials", "dev"]);
        let v: serde_json::Value = serde_json::from_str(&ok(c, "kube credentials").await).unwrap();
        assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(v["kind"], "ExecCredential");
        let pem = format!(
            "{}{}",
            v["status"]["clientCertificateData"].as_str().unwrap(),
            v["status"]["clientKeyData"].as_str().unwrap()
        );
        assert_eq!(oneport::identity::Identity::from_pem(pem.as_bytes()).unwrap().caller.user, "alice");
        assert!(v["status"]["expirationTimestamp"].as_str().unwrap().ends_with('Z'));

        let ca = oneport::server::setup::load_ca(srv.dir.path()).unwrap();
        let past = time::OffsetDateTime::now_utc() - Duration::from_secs(7200);
        let old = oneport::identity::pki::make_client_cert(&ca, "alice", &[], past, Duration::from_secs(3600)).unwrap();
        let expired = home.path().join("expired.pem");
        std::fs::write(&expired, oneport::identity::pki::identity_pem(&old, &ca.cert_pem)).unwrap();
        let mut c = home.oneport(&srv, &expired, "");
        c.args(["kube", "credentials", "dev"]);
        let out = output(c).await;
        assert!(!out.status.success());
        let at = oneport::util::utc::format(old_not_after(&expired), "-", " ", ":").unwrap()[11..].to_string();
        let sentence =
            format!("the identity for alice expired at {at} UTC (1 hour ago): get a new one and run `oneport login`");
        assert_eq!(text(&out.stderr), format!("error: credentials for kube cluster dev: {sentence}\n"));

        // kubectl, through `kube login`'s exec stanza, shows that sentence once the
        // identity it runs with has expired.
        let id = home.path().join("alice.pem");
        std::fs::copy(srv.identity("alice", &["dev"]), &id).unwrap();
        let kc = home.kubeconfig();
        let kc = kc.to_str().unwrap();
        kube_login(&home, &srv, &id, kc, "dev").await;
        std::fs::copy(&expired, &id).unwrap();
        let mut c = home.kubectl(kc);
        c.args(["get", "pods"]);
        let out = output(c).await;
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains(&format!("error: credentials for kube cluster dev: {sentence}\n")), "{err}");
        assert!(err.contains("getting credentials: exec: executable"), "{err}");
        srv.stop().await;
    })
    .await;
}

/// A `Connection` header naming the impersonation headers must not strip them on the
/// way upstream (the request would then run as the server's own account): refused.
#[tokio::test]
async fn connection_header_cannot_drop_impersonation() {
    deadline(async {
        let api = KubeApi::start().await;
        let srv = TestServer::start(|c| c.kube.push(kube_cluster(&api, "dev", &["dev"]))).await;
        let alice = srv.identity("alice", &["dev"]);
        let dialer = srv.dialer(&alice);
        let target = oneport::client::dial::Target::resource(
            dialer.context(),
            oneport::proto::naming::Kind::Kube,
            "dev",
            oneport::proto::naming::Protocol::Http1,
        );
        let dialed = dialer.dial(&target).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(dialed.stream)).await.unwrap();
        tokio::spawn(conn);
        let get = |connection: &'static str| {
            hyper::Request::get("/api/v1/namespaces/default/pods")
                .header("host", "kube")
                .header("connection", connection)
                .header("x-trace", "1")
                .body(http_body_util::Empty::<hyper::body::Bytes>::new())
                .unwrap()
        };
        let resp = send.send_request(get("keep-alive, Impersonate-User, Impersonate-Group")).await.unwrap();
        assert_eq!(resp.status(), 400);
        assert!(api.requests().is_empty(), "nothing may reach the API server: {:?}", api.requests());
        drop(send);
        let dialed = dialer.dial(&target).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(dialed.stream)).await.unwrap();
        tokio::spawn(conn);
        let resp = send.send_request(get("keep-alive, X-Trace")).await.unwrap();
        assert_eq!(resp.status(), 200);
        let seen = api.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].all("impersonate-user"), vec!["alice"]);
        assert_eq!(seen[0].all("impersonate-group"), vec!["dev"]);
        assert!(seen[0].all("x-trace").is_empty(), "a header named by Connection is hop-by-hop");
        drop(send);
        srv.stop().await;
    })
    .await;
}

/// An upgraded kube stream (`kubectl exec`) is in the server's books: shutdown
/// drains it for the grace period, then closes it before the server reports it has
/// stopped; nothing keeps relaying after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_are_drained_and_closed_at_shutdown() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let api = KubeApi::start().await;
        let srv = TestServer::start(|c| {
            c.kube.push(kube_cluster(&api, "dev", &["dev"]));
            c.shutdown_grace = Duration::from_secs(2);
        })
        .await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let kc = home.kubeconfig();
        let kc = kc.to_str().unwrap().to_string();
        kube_login(&home, &srv, &id, &kc, "dev").await;
        let mut c = home.kubectl(&kc);
        c.args(["exec", "-i", POD, "--", "cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        stdin.write_all(b"live\n").await.unwrap();
        let line = tokio::time::timeout(KUBECTL_TIMEOUT, out.next_line()).await.unwrap().unwrap();
        assert_eq!(line.as_deref(), Some("live"), "the exec stream works");
        // The exec's HTTP request is long over; only the upgraded relay is left.
        srv.stop().await;
        // Stopped means the relay is gone: kubectl sees its stream end.
        let _ = stdin.write_all(b"after\n").await;
        let next = tokio::time::timeout(Duration::from_secs(20), out.next_line()).await;
        assert!(matches!(next, Ok(Ok(None)) | Ok(Err(_))), "nothing relayed after the server stopped: {next:?}");
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("kubectl ended").unwrap();
        assert!(!status.success(), "the stream was cut, not finished: {status:?}");
    })
    .await;
}

/// Dot segments (plain or percent-encoded), `*` and absolute-form targets get a
/// Kubernetes `Status` 400 and never reach the API server; front-proxy identity
/// headers and a client-sent bearer WebSocket sub-protocol are stripped.
#[tokio::test]
async fn bad_request_targets_never_reach_the_api_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    deadline(async {
        let api = KubeApi::start().await;
        let srv = TestServer::start(|c| c.kube.push(kube_cluster(&api, "dev", &["dev"]))).await;
        let alice = srv.identity("alice", &["dev"]);
        let dialer = srv.dialer(&alice);
        let target = oneport::client::dial::Target::resource(
            dialer.context(),
            oneport::proto::naming::Kind::Kube,
            "dev",
            oneport::proto::naming::Protocol::Http1,
        );
        let raw = |head: String| {
            let (dialer, target) = (&dialer, &target);
            async move {
                let mut s = dialer.dial(target).await.unwrap().stream;
                s.write_all(head.as_bytes()).await.unwrap();
                let mut out = Vec::new();
                s.read_to_end(&mut out).await.unwrap();
                String::from_utf8_lossy(&out).into_owned()
            }
        };
        let dots = "the request path may not contain dot segments ('.', '..' or their percent-encodings)";
        for (method, t, want) in [
            ("GET", "/api/v1/namespaces/default/secrets/../../../apis", dots),
            ("GET", "/api/v1/%2e%2e/secrets", dots),
            ("GET", "/api/v1/.%2E/secrets", dots),
            ("GET", "/api/v1/%2E./x", dots),
            ("GET", "/api/v1/..%2Fsecrets", dots),
            (
                "GET",
                "http://evil.example/api",
                r#"the request target must be a path, not "http://evil.example/api" (absolute"#, // discovery path: plain text
            ),
            ("OPTIONS", "*", "the request target must be a path starting with '/'"),
        ] {
            let answer = raw(format!("{method} {t} HTTP/1.1\r\nHost: kube\r\nConnection: close\r\n\r\n")).await;
            assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{t}: {answer}");
            assert!(answer.contains(want), "{t}: {answer} should contain {want}");
        }
        assert!(api.requests().is_empty(), "the API server must see nothing: {:?}", api.requests());

        let answer = raw("GET /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: kube\r\nConnection: close\r\n\
             X-Remote-User: admin\r\nX-Remote-Group: system:masters\r\nX-Remote-Extra-Scopes: all\r\n\
             Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.c2VjcmV0, v5.channel.k8s.io\r\n\r\n"
            .to_string())
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        let seen = api.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/api/v1/namespaces/default/pods");
        assert!(!seen[0].headers.iter().any(|(k, _)| k.starts_with("x-remote-")), "{:?}", seen[0].headers);
        assert_eq!(seen[0].all("sec-websocket-protocol"), vec!["v5.channel.k8s.io"]);
        assert_eq!(seen[0].all("impersonate-user"), vec!["alice"]);
        srv.stop().await;
    })
    .await;
}

/// An identity that expires while `proxy kube` runs: kubectl then gets a 403 Status
/// with the sentence (not a TLS error), and nothing reaches the API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kube_after_the_identity_expired_answers_a_403_status() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let api = KubeApi::start().await;
        let srv = TestServer::start(|c| c.kube.push(kube_cluster(&api, "dev", &["dev"]))).await;
        let id = srv.dir.path().join("alice-short.pem");
        oneport::server::setup::issue(srv.dir.path(), "alice", &["dev".into()], Duration::from_secs(10), &id).unwrap();
        let home = Home::new();
        let p = proxy_kube(&home, &srv, &id, &["dev"]).await;
        let mut c = home.kubectl(&p.kubeconfig);
        c.args(["get", "pods"]);
        assert!(ok(c, "kubectl get pods").await.contains(POD));
        let stderr = poll_until(Duration::from_secs(40), "kubectl to be refused", || async {
            let mut c = home.kubectl(&p.kubeconfig);
            c.args(["get", "pods"]);
            let out = output(c).await;
            (!out.status.success()).then(|| text(&out.stderr))
        })
        .await;
        let seen = api.requests().len();
        assert!(stderr.contains("Error from server (Forbidden): the identity for alice expired at "), "{stderr}");
        assert!(stderr.contains(" ago): get a new one and run `oneport login`"), "{stderr}");
        assert!(!stderr.contains("https://docs.rs"), "{stderr}");
        let mut c = home.kubectl(&p.kubeconfig);
        c.args(["get", "pods"]);
        assert!(!output(c).await.status.success());
        assert_eq!(api.requests().len(), seen, "nothing reaches the API server after expiry");
        drop(p);
        srv.stop().await;
    })
    .await;
}

/// An API server whose certificate the configured CA did not sign: `kube login`
/// writes the entries but warns with the server's sentence, and kubectl's stderr
/// shows the reason in words (not only "the server is currently unable to handle
/// the request").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_signed_by_another_ca_is_named() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let other = tempfile::tempdir().unwrap();
        let wrong_ca = other.path().join("other-ca.pem");
        std::fs::write(&wrong_ca, oneport::identity::pki::make_ca("not the API server's").unwrap().cert_pem).unwrap();
        let w = wrong_ca.clone();
        let Dev { api, srv, id, home } = Dev::start_as(&["dev"], |c| c.kube[0].ca = Some(w)).await;
        let kc = home.kubeconfig();
        let kc = kc.to_str().unwrap();
        let reason = "the API server presents a certificate not signed by the configured CA; configure the CA that signed it";
        let mut c = home.oneport(&srv, &id, kc);
        c.args(["kube", "login", "dev"]);
        let out = output(c).await;
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(text(&out.stdout).contains("Logged in to kube cluster dev"), "{}", text(&out.stdout));
        assert!(
            stderr.contains(&format!("WARNING: kube cluster dev does not answer through proxy {}: GET /version answered 502 Bad Gateway: API server of kube cluster dev ({}) is unreachable: TLS handshake with {} failed: {reason}", srv.addr, api.url, api.addr)),
            "{stderr}"
        );
        assert!(stderr.contains("The kubeconfig entries are written"), "{stderr}");
        let mut c = home.kubectl(kc);
        c.args(["get", "pods"]);
        let out = output(c).await;
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("Error from server (InternalError): an error on the server (\"API server of kube cluster dev ({}) is unreachable: TLS handshake with {} failed: {reason}\") has prevented the request from succeeding", api.url, api.addr)),
            "{stderr}"
        );
        assert!(!stderr.contains("https://docs.rs"), "{stderr}");
        assert!(api.requests().is_empty(), "nothing reached the API server: {:?}", api.requests());
        srv.stop().await;
    })
    .await;
}

/// An API server presenting its CA certificate as its own: the webpki reason
/// (`CaUsedAsEndEntity`) reaches kubectl in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_presenting_a_ca_certificate_is_named() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let api = KubeApi::start_presenting_its_ca().await;
        let srv = TestServer::start(|c| c.kube.push(kube_cluster(&api, "dev", &["dev"]))).await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let kc = home.kubeconfig();
        let kc = kc.to_str().unwrap();
        let mut c = home.oneport(&srv, &id, kc);
        c.args(["kube", "login", "dev"]);
        let out = output(c).await;
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let reason = "the API server presents a CA certificate as its own; configure the CA that signed it";
        assert!(
            stderr.contains("WARNING: kube cluster dev does not answer through proxy") && stderr.contains(reason),
            "{stderr}"
        );
        let mut c = home.kubectl(kc);
        c.args(["get", "pods"]);
        let out = output(c).await;
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("Error from server (InternalError): an error on the server (") && stderr.contains(reason),
            "{stderr}"
        );
        assert!(!stderr.contains("CaUsedAsEndEntity"), "{stderr}");
        srv.stop().await;
    })
    .await;
}

/// `oneport kubectl ARGS` with `--cluster` (or none: the only cluster), KUBECONFIG
/// pointing at the user's own file, which must stay untouched.
fn oneport_kubectl(home: &Home, proxy: &str, id: &Path, args: &[&str]) -> Command {
    let mut c = home.oneport_via(proxy, id, home.kubeconfig().to_str().unwrap());
    c.arg("kubectl").args(args);
    c
}

/// Checks `oneport kubectl get pods -o json` (stdout is kubectl's JSON alone) and
/// that a failing kubectl's exit code comes back, with the throwaway kubeconfig
/// private and gone afterwards.
async fn kubectl_wrapper_works(home: &Home, proxy: &str, id: &Path, env: &[(&str, &Path)]) {
    let mut c = oneport_kubectl(home, proxy, id, &["get", "pods", "-o", "json"]);
    c.envs(env.iter().map(|(k, v)| (*k, *v)));
    let out = ok(c, "oneport kubectl get pods -o json").await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: stdout is not JSON: {out}"));
    assert_eq!(v["items"][0]["metadata"]["name"], POD, "{v}");
    // A kubectl plugin that reports its KUBECONFIG and fails with 7.
    let bin = tempfile::tempdir().unwrap();
    let plugin = bin.path().join("kubectl-fail7");
    std::fs::write(
        &plugin,
        "#!/bin/sh\nstat -c %a \"$KUBECONFIG\" \"$(dirname \"$KUBECONFIG\")\"\necho \"$KUBECONFIG\"\nexit 7\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = oneport_kubectl(home, proxy, id, &["--cluster", "dev", "fail7"]);
    c.envs(env.iter().map(|(k, v)| (*k, *v)));
    c.env("PATH", format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default()));
    let out = output(c).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{stdout} {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..2], ["600", "700"], "{stdout}");
    assert!(!Path::new(lines[2]).exists(), "{} is removed", lines[2]);
    assert!(!home.kubeconfig().exists(), "the user's kubeconfig is not touched");
}

/// `oneport kubectl` straight to the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneport_kubectl_direct() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        let Dev { api, srv, id, home } = Dev::start().await;
        kubectl_wrapper_works(&home, &srv.addr.to_string(), &id, &[]).await;
        assert!(api.requests().iter().all(|r| r.all("impersonate-user") == ["alice"]));
        // An unknown cluster is the proxy's refusal, before kubectl runs.
        let out =
            output(oneport_kubectl(&home, &srv.addr.to_string(), &id, &["--cluster", "nope", "get", "pods"])).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
        srv.stop().await;
    })
    .await;
}

/// `oneport kubectl` behind nginx: through a throwaway `proxy kube`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneport_kubectl_behind_nginx() {
    if !have(KUBECTL) || !have("nginx") {
        return;
    }
    deadline(async {
        let b = BehindNginx::start(FAST_IDLE.pings).await;
        kubectl_wrapper_works(&b.home, &b.via, &b.id, &[("SSL_CERT_FILE", b.pki.ca.as_path())]).await;
        assert!(b.api.requests().iter().all(|r| r.all("impersonate-user") == ["alice"]));
        b.stop().await;
    })
    .await;
}

/// The line `proxy kube` logs when cluster `dev`'s session is multiplexed.
const DEV_MULTIPLEXED: &str =
    "kube cluster dev: multiplexed session (teleport-http-mux); new connections open streams on it";

/// `kubectl exec -i POD -- cat` of `payload` through `kubeconfig`.
async fn exec_cat(home: &Home, kubeconfig: &str, payload: &[u8]) {
    let mut c = home.kubectl(kubeconfig);
    c.args(["exec", "-i", POD, "--", "cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = payload.to_vec();
    let writer = tokio::spawn(async move {
        stdin.write_all(&data).await.unwrap();
        stdin.shutdown().await.unwrap();
    });
    let out = tokio::time::timeout(KUBECTL_TIMEOUT, child.wait_with_output()).await.unwrap().unwrap();
    writer.await.unwrap();
    assert!(out.status.success(), "kubectl exec failed: {}", text(&out.stderr));
    assert_eq!(sha256(&out.stdout), sha256(payload), "exec: bytes changed ({})", text(&out.stderr));
}

/// On a running `proxy kube` whose session is multiplexed: `kubectl get`, a
/// `get --watch` that stays open and receives an event, `exec` (upgraded to
/// WebSocket inside its stream) while the watch is open, and another `get`. None of
/// them may open a routing connection (`dials` counts those); `who` names the path.
async fn get_watch_and_exec_ride_the_session(
    api: &KubeApi,
    home: &Home,
    kubeconfig: &str,
    dials: &AtomicUsize,
    who: &str,
) {
    let before = dials.load(Ordering::SeqCst);
    let (watches, execs) = (api.watches(), api.execs());
    version_and_pods(home, kubeconfig).await;
    let mut c = home.kubectl(kubeconfig);
    c.args(["get", "pods", "--watch"]).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
    let mut watch = c.spawn().unwrap();
    let mut watched = BufReader::new(watch.stdout.take().unwrap()).lines();
    poll_until(Duration::from_secs(60), "the watch to reach the API server", || async {
        (api.watches() > watches).then_some(())
    })
    .await;
    // While the watch is open on its stream, exec and get run on others.
    exec_cat(home, kubeconfig, &random_bytes(256 << 10, 5)).await;
    let event = format!("muxed-pod-{}", api.watches());
    api.send_event(&event);
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = watched.next_line().await.unwrap() {
            if line.contains(&event) {
                return line;
            }
        }
        panic!("{who}: the watch ended without the event");
    })
    .await
    .unwrap_or_else(|_| panic!("{who}: the watch did not print the event within 30s"));
    assert!(got.contains("Running"), "{who}: {got}");
    let mut c = home.kubectl(kubeconfig);
    c.args(["get", "pods"]);
    assert!(ok(c, "kubectl get pods beside the watch").await.contains(POD), "{who}");
    assert_eq!(api.execs() - execs, 1, "{who}");
    assert_eq!(dials.load(Ordering::SeqCst) - before, 0, "{who}: every kubectl connection is a stream of the session");
    let _ = watch.start_kill();
}

/// `proxy kube` keeps one `teleport-http-mux` session to the cluster: `kubectl get`,
/// a watch, and `exec` all ride it; the server sees no new routing connection for
/// any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kube_carries_get_watch_and_exec_on_one_session() {
    assert!(have(KUBECTL), "kubectl is needed (scripts/install-deps)");
    deadline(async {
        let Dev { api, srv, id, home } = Dev::start().await;
        let (front, dials) = counting_forwarder(srv.addr).await;
        let c = home.oneport_via(&front.to_string(), &id, "/nonexistent/never-used");
        let (mut p, lines) = proxy_kube_logged(c, &["dev"]).await;
        wait_line(&lines, DEV_MULTIPLEXED).await;
        get_watch_and_exec_ride_the_session(&api, &home, &p.kubeconfig, &dials, "direct").await;
        let _ = p.child.start_kill();
        srv.stop().await;
    })
    .await;
}

/// The same behind nginx (WebSocket upgrade), HAProxy (`mode http`) and squid
/// (CONNECT): `proxy kube` finds its way on its own, its session is multiplexed,
/// and get, watch and exec open no new connection to the router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_haproxy_and_squid_kubectl_rides_one_session() {
    for p in [KUBECTL, "nginx", "haproxy", "squid"] {
        assert!(have(p), "{p} is needed (scripts/install-deps)");
    }
    deadline(async {
        let Dev { api, srv, id, home } = Dev::start_as(&["dev"], |c| c.ping_interval = REAL_IDLE.pings).await;
        let (router, dials) = counting_forwarder(srv.addr).await;
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, router, NginxMode::PassUpgrades, false, Duration::from_secs(5)).await;
        let haproxy = lb::haproxy(&pki, router, Duration::from_secs(5)).await;
        let squid = lb::squid().await;
        let squid_url = format!("http://{}", squid.addr);
        let fronts = [
            ("nginx", nginx.addr.to_string(), None),
            ("HAProxy", haproxy.addr.to_string(), None),
            ("squid", router.to_string(), Some(squid_url.as_str())),
        ];
        for (who, via, https_proxy) in fronts {
            let mut c = home.oneport_via(&via, &id, "/nonexistent/never-used");
            c.env("SSL_CERT_FILE", &pki.ca).env_remove("RUST_LOG");
            if let Some(url) = https_proxy {
                c.env("HTTPS_PROXY", url);
            }
            let mut p = proxy_kube_spawn(c, &["dev"], Stdio::piped()).await;
            let lines = collect_lines(p.child.stderr.take().unwrap());
            wait_line(&lines, DEV_MULTIPLEXED).await;
            get_watch_and_exec_ride_the_session(&api, &home, &p.kubeconfig, &dials, who).await;
            let _ = p.child.start_kill();
        }
        srv.stop().await;
    })
    .await;
}

/// Against a server with `mux: { enabled: false }`, `proxy kube` negotiates
/// `http/1.1`, says so, and dials a routing connection per upstream connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kube_falls_back_without_mux() {
    assert!(have(KUBECTL), "kubectl is needed (scripts/install-deps)");
    deadline(async {
        let Dev { api, srv, id, home } = Dev::start_as(&["dev"], |c| c.mux.enabled = false).await;
        let (front, dials) = counting_forwarder(srv.addr).await;
        let c = home.oneport_via(&front.to_string(), &id, "/nonexistent/never-used");
        let (mut p, lines) = proxy_kube_logged(c, &["dev"]).await;
        wait_line(
            &lines,
            "kube cluster dev: the proxy does not offer multiplexing: one routing connection per local connection \
             (http/1.1)",
        )
        .await;
        let before = dials.load(Ordering::SeqCst);
        version_and_pods(&home, &p.kubeconfig).await;
        exec_cat(&home, &p.kubeconfig, b"fallback\n").await;
        assert_eq!(api.execs(), 1);
        assert!(dials.load(Ordering::SeqCst) > before, "per-connection routing dials");
        assert!(!lines.lock().unwrap().iter().any(|l| l.contains(DEV_MULTIPLEXED)));
        let _ = p.child.start_kill();
        srv.stop().await;
    })
    .await;
}

/// A reload that takes the user off the cluster's allow-list reaches `proxy kube`'s
/// open session: the next request (on a kept-alive stream or a new one) gets the
/// Status 403 kubectl prints, and the API server sees nothing more of the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_removes_the_user_refuses_kube_streams() {
    assert!(have(KUBECTL), "kubectl is needed (scripts/install-deps)");
    deadline(async {
        let api = KubeApi::start().await;
        let srv = TestServer::start(|_| {}).await;
        let (path, port) =
            second_config(&srv, "kube-reload.yaml", |c| c.kube = vec![kube_cluster(&api, "dev", &["dev"])]);
        let mut server = oneport(srv.dir.path())
            .args(["server", "start", "--config", path.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let server_lines = collect_lines(server.stderr.take().unwrap());
        wait_port(([127, 0, 0, 1], port).into(), Duration::from_secs(30)).await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let c = home.oneport_via(&format!("127.0.0.1:{port}"), &id, "/nonexistent/never-used");
        let (mut p, lines) = proxy_kube_logged(c, &["dev"]).await;
        wait_line(&lines, DEV_MULTIPLEXED).await;
        version_and_pods(&home, &p.kubeconfig).await;

        let mut cfg: oneport::server::Config = serde_yaml_ng::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        cfg.kube = vec![kube_cluster(&api, "dev", &["ops"])];
        std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
        send_signal(server.id().unwrap(), "-HUP");
        wait_line(&server_lines, "config reloaded").await;
        let seen = api.requests().len();
        let mut c = home.kubectl(&p.kubeconfig);
        c.args(["get", "pods"]);
        let out = output(c).await;
        assert!(!out.status.success(), "{}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("Error from server (Forbidden): access to kube cluster dev denied for user alice"),
            "{stderr}"
        );
        assert_eq!(api.requests().len(), seen, "nothing of alice reaches the API server after the reload");

        // The configuration in force, both ways: a reload that lets alice back in lets
        // her requests through on the same session ...
        let reload = |kube: Vec<Kube>| {
            let mut cfg: oneport::server::Config = serde_yaml_ng::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            cfg.kube = kube;
            std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
            send_signal(server.id().unwrap(), "-HUP");
        };
        let reloads = || server_lines.lock().unwrap().iter().filter(|l| l.contains("config reloaded")).count();
        let wait_reloads =
            |n: usize| {
                poll_until(Duration::from_secs(30), "the config reload", move || async move {
                    (reloads() >= n).then_some(())
                })
            };
        reload(vec![kube_cluster(&api, "dev", &["dev"])]);
        wait_reloads(2).await;
        version_and_pods(&home, &p.kubeconfig).await;
        // ... and one that removes the cluster refuses them (a kept stream per request,
        // a new one at its open: both a Status 403 kubectl prints).
        reload(vec![]);
        wait_reloads(3).await;
        let seen = api.requests().len();
        let mut c = home.kubectl(&p.kubeconfig);
        c.args(["get", "pods"]);
        let out = output(c).await;
        assert!(!out.status.success(), "{}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("Error from server (Forbidden)") && stderr.contains("kube cluster dev"), "{stderr}");
        assert_eq!(api.requests().len(), seen, "nothing reaches the removed cluster's API server");
        let _ = p.child.start_kill();
        stop_with_sigterm(&mut server).await;
        srv.stop().await;
    })
    .await;
}
