//! The binary as a user meets it: help, server init/issue, login/status/ls/logout,
//! the demo, and clear errors for bad input.

mod common;

use std::time::Duration;

use common::*;

async fn run(home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = oneport(home).args(args).output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn help_lists_commands_and_bad_args_fail() {
    let home = tempfile::tempdir().unwrap();
    let (code, out, _) = run(home.path(), &["--help"]).await;
    assert_eq!(code, 0);
    for cmd in ["login", "logout", "status", "ls", "proxy", "server", "demo"] {
        assert!(out.contains(cmd), "--help lacks {cmd}: {out}");
    }
    let (code, _, err) = run(home.path(), &["proxy", "app"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("<NAME>"), "{err}");
    let (code, _, err) =
        run(home.path(), &["server", "issue", "--dir", "x", "--user", "a", "--ttl", "5y", "--out", "o"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("unknown unit"), "{err}");
}

#[tokio::test]
async fn server_init_and_issue_write_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("srv");
    let d = dir.to_str().unwrap();
    let (code, out, err) =
        run(home.path(), &["server", "init", "--dir", d, "--public-addr", "proxy.example.com:443"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("server.yaml"), "{out}");
    let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("ca-key.pem"), 0o600);
    assert_eq!(mode("server-key.pem"), 0o600);
    let cfg = oneport::server::Config::load(&dir.join("server.yaml")).unwrap();
    assert_eq!(cfg.public_addr, "proxy.example.com:443");
    assert_eq!(cfg.listen, "127.0.0.1:443", "listens on loopback unless told otherwise");
    // The server certificate covers every routed name.
    let pem = std::fs::read(dir.join("server.pem")).unwrap();
    let der = rustls::pki_types::CertificateDer::pem_slice_iter(&pem).next().unwrap().unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let sans = format!("{:?}", cert.subject_alternative_name().unwrap().unwrap().value);
    for name in
        ["*.db.proxy.example.com", "*.node.teleport.cluster.local", "kube-teleport-proxy-alpn.proxy.example.com"]
    {
        assert!(sans.contains(name), "{name} missing from {sans}");
    }
    // A second init refuses to replace the CA.
    let (code, _, err) = run(home.path(), &["server", "init", "--dir", d, "--public-addr", "p:1"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("--force"), "{err}");

    let id = home.path().join("alice.pem");
    let (code, out, err) = run(
        home.path(),
        &[
            "server",
            "issue",
            "--dir",
            d,
            "--user",
            "alice",
            "--group",
            "dev",
            "--group",
            "ops",
            "--ttl",
            "2h",
            "--out",
            id.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("alice in dev, ops, valid for 2h"), "{out}");
    assert_eq!(std::fs::metadata(&id).unwrap().permissions().mode() & 0o777, 0o600);
    let ident = oneport::identity::Identity::load(&id).unwrap();
    assert_eq!(ident.caller.user, "alice");
    assert_eq!(ident.caller.groups, vec!["dev", "ops"]);

    // Blank, padded and control-character names are refused at issue time: Kubernetes
    // trims header values, so "bob " would be bob there and someone else here.
    let bad = home.path().join("bad.pem");
    for (user, group, want) in [
        (" ", "dev", r#"user name " " is blank"#),
        ("", "dev", r#"user name "" is blank"#),
        ("bob ", "dev", r#"user name "bob " has leading or trailing whitespace"#),
        ("bob", " system:masters", r#"group name " system:masters" has leading or trailing whitespace"#),
        ("bob", "a\tb", r#"group name "a\tb" contains a control character"#),
    ] {
        let args = ["server", "issue", "--dir", d, "--user", user, "--group", group, "--out", bad.to_str().unwrap()];
        let (code, _, err) = run(home.path(), &args).await;
        assert_eq!(code, 1, "{user:?}/{group:?} must be refused: {err}");
        assert!(err.contains(want), "{err} should contain {want}");
        assert!(!bad.exists(), "nothing is written for a refused name");
    }
}

use rustls::pki_types::pem::PemObject;

#[tokio::test]
async fn login_status_ls_logout() {
    deadline(async {
        let (echo, _) = spawn_echo().await;
        let srv = TestServer::start(|c| {
            for (name, user) in [("echo", "alice"), ("secret", "root")] {
                c.apps.push(tcp_app(name, echo, &[user]));
            }
        })
        .await;
        let id = srv.identity("alice", &["dev"]);
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let (code, out, _) = run(h, &["status"]).await;
        assert_eq!(code, 1);
        assert!(out.contains("Not logged in"), "{out}");

        let (code, out, err) =
            run(h, &["login", "--proxy", &srv.addr.to_string(), "--identity", id.to_str().unwrap()]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("as alice (groups: dev)"), "{out}");
        let stored = h.join(format!("identity-127.0.0.1_{}.pem", srv.addr.port()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(h.join("profile.yaml")).unwrap().permissions().mode() & 0o777, 0o600);

        let (code, out, _) = run(h, &["status"]).await;
        assert_eq!(code, 0);
        assert!(out.contains(&format!("Proxy:     {}", srv.addr)), "{out}");
        assert!(out.contains("User:      alice (groups: dev)"), "{out}");
        assert!(out.contains("Valid for: 59m") || out.contains("Valid for: 1h"), "{out}");
        assert!(out.contains("Upgrade:   not required"), "{out}");

        // ls uses the profile; only what alice may use is listed.
        let (code, out, err) = run(h, &["ls"]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("echo") && out.contains("tcp"), "{out}");
        assert!(!out.contains("secret"), "{out}");

        // An app alice may not use: a specific error from the proxy.
        let (code, _, err) = run(h, &["proxy", "app", "secret"]).await;
        assert_eq!(code, 1);
        assert!(err.contains("access to app secret denied for user alice"), "{err}");

        let (code, out, _) = run(h, &["logout"]).await;
        assert_eq!(code, 0);
        assert!(out.contains(&format!("Logged out of {}", srv.addr)), "{out}");
        assert!(!stored.exists());
        let (code, _, err) = run(h, &["ls"]).await;
        assert_eq!(code, 1);
        assert!(err.contains("no proxy: run `oneport login"), "{err}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn insecure_is_said_loudly_and_unreachable_proxy_is_clear() {
    let home = tempfile::tempdir().unwrap();
    let srv = TestServer::start(|_| {}).await;
    let id = srv.identity("alice", &[]);
    let port = free_port();
    let (code, _, err) = run(
        home.path(),
        &["--insecure", "--proxy", &format!("127.0.0.1:{port}"), "--identity", id.to_str().unwrap(), "ls"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("WARNING: --insecure"), "{err}");
    assert!(err.contains(&format!("cannot connect to 127.0.0.1:{port}")), "{err}");
    let (code, _, err) = run(home.path(), &["--proxy", "nohost", "--identity", "/nonexistent.pem", "ls"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent.pem"), "{err}");
    srv.stop().await;
}

#[tokio::test]
async fn server_start_rejects_bad_config_clearly() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("bad.yaml");
    std::fs::write(&cfg, "listen: 127.0.0.1:0\npublic_addr: x:1\ncluster_name: c\ntls: {cert: a, key: b, client_ca: c}\napps: [{name: Bad_Name, kind: tcp, addr: 'a:1'}]\n").unwrap();
    let (code, _, err) = run(home.path(), &["server", "start", "--config", cfg.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not a DNS label"), "{err}");
    std::fs::write(&cfg, "listen: [oops").unwrap();
    let (code, _, err) = run(home.path(), &["server", "start", "--config", cfg.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml"), "{err}");
}

#[tokio::test]
async fn demo_proves_a_round_trip() {
    let home = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), oneport(home.path()).args(["demo", "--once"]).output())
        .await
        .expect("demo hung")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("4. Round trip OK"), "{text}");
    assert!(text.contains(oneport::cli::demo::GREETING), "{text}");
}

/// `server start` as a process stops on SIGTERM, draining.
#[tokio::test]
async fn server_start_stops_on_sigterm() {
    deadline(async {
        let home = tempfile::tempdir().unwrap();
        let srv = TestServer::start(|_| {}).await;
        // Run a second server process from the same directory on another port.
        let mut cfg = srv.config.clone();
        let port = free_port();
        cfg.listen = format!("127.0.0.1:{port}");
        let path = srv.dir.path().join("second.yaml");
        std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
        let mut child = oneport(home.path())
            .args(["server", "start", "--config", path.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_port(([127, 0, 0, 1], port).into(), Duration::from_secs(30)).await;
        let pid = child.id().unwrap() as i32;
        assert_eq!(unsafe_free_kill(pid), 0);
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("no exit").unwrap();
        assert!(status.success(), "{status:?}");
        srv.stop().await;
    })
    .await;
}

/// SIGTERM via the `kill` program (no unsafe code in tests).
fn unsafe_free_kill(pid: i32) -> i32 {
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map(|s| s.code().unwrap_or(1))
        .unwrap_or(1)
}

/// The web API with real curl: HTTP/2 negotiated by ALPN, the client certificate
/// read, and no secrets in the answer.
#[tokio::test]
async fn curl_reads_webapi_ping_over_h2() {
    if !have("curl") {
        return;
    }
    let srv = TestServer::start(|_| {}).await;
    let id = srv.identity("alice", &["dev"]);
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--fail", "--http2", "-w", "\n%{http_version}", "--cacert"])
        .arg(srv.ca_path())
        .arg("--cert")
        .arg(&id)
        .arg(format!("https://127.0.0.1:{}/webapi/ping", srv.addr.port()))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.trim_end().ends_with("\n2"), "not HTTP/2: {text}");
    let json: serde_json::Value = serde_json::from_str(text.trim_end().trim_end_matches('2')).unwrap();
    assert_eq!(json["caller"]["user"], "alice");
    assert_eq!(json["cluster_name"], "test");
    assert!(!text.contains("PRIVATE KEY"));
    srv.stop().await;
}

#[tokio::test]
async fn doctor_direct_and_with_the_wrong_ca() {
    deadline(async {
        let srv = server_with_echo(|_| {}).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let proxy = srv.addr.to_string();
        let (code, out, _) = run(home.path(), &["--proxy", &proxy, "--identity", id.to_str().unwrap(), "doctor"]).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("signed by the proxy CA (the routing server answers directly)"), "{out}");
        assert!(out.contains("[ok]   mTLS         the proxy knows you as alice"), "{out}");
        assert!(out.contains("All checks passed."), "{out}");
        let (code, out, _) = run(
            home.path(),
            &["--proxy", &proxy, "--identity", id.to_str().unwrap(), "doctor", "--resource", "app/echo"],
        )
        .await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("negotiated ALPN teleport-tcp-ping"), "{out}");
        let other = oneport::identity::pki::make_ca("other").unwrap();
        let other_ca = home.path().join("other.pem");
        std::fs::write(&other_ca, other.cert_pem).unwrap();
        let (code, out, _) = run(
            home.path(),
            &["--proxy", &proxy, "--identity", id.to_str().unwrap(), "--ca", other_ca.to_str().unwrap(), "doctor"],
        )
        .await;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("[FAIL] TLS"), "{out}");
        assert!(out.contains("Where it breaks: TLS: give --ca with the CA that signs this certificate"), "{out}");
        srv.stop().await;
    })
    .await;
}
