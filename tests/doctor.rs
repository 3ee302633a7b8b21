//! `oneport doctor` against a real server: `--resource` is checked before any
//! network step, and its last layer asks the server to reach the backend and
//! reports the server's sentence (a backend that is down fails the run).

mod common;

use std::path::Path;

use common::realdb::db;
use common::*;
use oneport::server::config::DbProtocol;

/// `doctor` with `args` as `id` against `proxy`: exit code and stdout.
async fn doctor(proxy: &str, id: &Path, args: &[&str]) -> (Option<i32>, String) {
    let home = tempfile::tempdir().unwrap();
    let out = oneport(home.path())
        .args(["--proxy", proxy, "--identity"])
        .arg(id)
        .arg("doctor")
        .args(args)
        .output()
        .await
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An address nothing listens on (bound, then released).
async fn closed_port() -> std::net::SocketAddr {
    let l = loopback_listener().await;
    l.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_the_servers_sentence_for_a_backend_that_is_down() {
    deadline(async {
        let (echo, _) = spawn_echo().await;
        let down = closed_port().await;
        let srv = TestServer::start(|c| {
            c.apps.push(tcp_app("echo", echo, &["alice"]));
            c.apps.push(tcp_app("gone", down, &["alice"]));
            c.databases.push(db("pg1", DbProtocol::Postgres, &down.to_string(), &["alice"]));
        })
        .await;
        let id = srv.identity("alice", &[]);
        let proxy = srv.addr.to_string();

        let (code, out) = doctor(&proxy, &id, &["--resource", "app/echo"]).await;
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains(&format!("[ok]   backend      proxy {proxy} reaches the backend of app echo")), "{out}");
        assert!(out.contains("All checks passed."), "{out}");

        for (spec, what) in [("app/gone", "app gone"), ("db/pg1", "database pg1")] {
            let (code, out) = doctor(&proxy, &id, &["--resource", spec]).await;
            assert_eq!(code, Some(1), "{out}");
            assert!(out.contains("[ok]   tunnel"), "{out}");
            assert!(
                out.contains(&format!(
                    "[FAIL] backend      {what} is unreachable from proxy {proxy} (Connection refused (os error 111)); the proxy's log has the details"
                )),
                "{out}"
            );
            assert!(
                out.contains("Where it breaks: backend: the proxy cannot reach the backend: see the sentence above"),
                "{out}"
            );
            assert!(!out.contains(&down.port().to_string()), "the backend's address stays in the server's log: {out}");
        }
        srv.stop().await;
    })
    .await;
}

/// A `--resource` that cannot name anything fails first: nothing is dialled (the
/// proxy here does not even exist).
#[tokio::test]
async fn doctor_checks_the_resource_before_the_network() {
    deadline(async {
        let srv = TestServer::start(|_| {}).await;
        let id = srv.identity("alice", &[]);
        let nowhere = closed_port().await.to_string();
        for (spec, want) in [
            ("app", r#"[FAIL] resource     "app" is not KIND/NAME"#),
            ("pod/x", r#"[FAIL] resource     "pod/x": "pod" is not a kind (node, db, app or kube)"#),
            (
                "db/Bad_Name",
                r#"[FAIL] resource     --resource "db/Bad_Name": "Bad_Name" is not a database name (lowercase letters, digits and '-'): `oneport ls` lists them"#,
            ),
        ] {
            let (code, out) = doctor(&nowhere, &id, &["--resource", spec]).await;
            assert_eq!(code, Some(1), "{out}");
            assert!(out.contains(want), "{out}");
            assert!(out.contains("Where it breaks: resource: use node/web1, db/pg1, app/grafana or kube/dev"), "{out}");
            assert!(!out.contains("TCP"), "no network check may run first: {out}");
        }
        srv.stop().await;
    })
    .await;
}

/// A kube cluster whose API server the configured CA did not sign: the server's
/// dial says so in words (and a good one is reached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_kube_api_server_the_server_cannot_verify() {
    deadline(async {
        use common::kube_api::KubeApi;
        use oneport::server::config::{Allow, Kube};
        let api = KubeApi::start().await;
        let other = tempfile::tempdir().unwrap();
        let wrong_ca = other.path().join("other-ca.pem");
        std::fs::write(&wrong_ca, oneport::identity::pki::make_ca("other").unwrap().cert_pem).unwrap();
        let cluster = |name: &str, ca: &Path| Kube {
            name: name.into(),
            api_server: api.url.clone(),
            ca: Some(ca.to_path_buf()),
            token_file: Some(api.token_path.clone()),
            client_cert: None,
            client_key: None,
            allow: Allow { users: vec!["alice".into()], groups: vec![] },
            recording: Default::default(),
        };
        let (good, bad) = (cluster("dev", &api.ca_path), cluster("prod", &wrong_ca));
        let srv = TestServer::start(|c| c.kube.extend([good, bad])).await;
        let id = srv.identity("alice", &[]);
        let proxy = srv.addr.to_string();
        let (code, out) = doctor(&proxy, &id, &["--resource", "kube/dev"]).await;
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains(&format!("[ok]   backend      proxy {proxy} reaches the backend of kube cluster dev")), "{out}");
        let (code, out) = doctor(&proxy, &id, &["--resource", "kube/prod"]).await;
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains(&format!("[FAIL] backend      kube cluster prod is unreachable from proxy {proxy} (the API server presents a certificate not signed by the configured CA; configure the CA that signed it); the proxy's log has the details")),
            "{out}"
        );
        srv.stop().await;
    })
    .await;
}
