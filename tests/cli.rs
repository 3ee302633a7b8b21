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
        let profile = h.join("profiles").join(format!("127.0.0.1_{}.yaml", srv.addr.port()));
        assert_eq!(std::fs::metadata(&profile).unwrap().permissions().mode() & 0o777, 0o600);

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
        assert_eq!(out, "KIND   NAME                     PROTOCOL\napp    echo                     tcp\n");

        // One kind, by its name or an alias; an empty kind says so and is no failure.
        let (code, out, err) = run(h, &["ls", "apps"]).await;
        assert_eq!((code, out.as_str()), (0, "KIND   NAME                     PROTOCOL\napp    echo                     tcp\n"), "{err}");
        let (code, out, err) = run(h, &["ls", "database"]).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, format!("No databases on proxy {} for alice (`oneport ls` lists every kind).\n", srv.addr));
        let (code, _, err) = run(h, &["ls", "pods"]).await;
        assert_eq!(code, 2);
        assert!(
            err.contains(r#"invalid value 'pods' for '[KIND]': "pods" is not a resource kind: use node (or ssh), db, app or kube"#),
            "{err}"
        );
        // JSON for programs (docs/json.md).
        let (code, out, err) = run(h, &["ls", "--format", "json"]).await;
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "proxy": srv.addr.to_string(), "cluster": "test", "user": "alice", "kind": null,
                "resources": [{"kind": "app", "name": "echo", "protocol": "tcp"}],
            })
        );
        let (code, out, err) = run(h, &["ls", "kube", "--format", "json"]).await;
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!((&v["kind"], &v["resources"]), (&serde_json::json!("kube"), &serde_json::json!([])));

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
async fn server_side_warnings_and_refusals() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("srv");
    let d = dir.to_str().unwrap();
    // Loopback listener, public address elsewhere: said at init and at every start.
    let (code, _, err) =
        run(home.path(), &["server", "init", "--dir", d, "--public-addr", "proxy.example.com:3080"]).await;
    assert_eq!(code, 0, "{err}");
    let warning = "listen 127.0.0.1:3080 accepts connections from this machine only, but public_addr \
                   proxy.example.com:3080 tells clients to come from elsewhere: they cannot connect. Set \
                   `listen: 0.0.0.0:3080` (or `server init --listen`) unless a load balancer or tunnel on this \
                   machine forwards to it";
    assert!(err.contains(&format!("warning: {warning}")), "{err}");
    let cfg = dir.join("server.yaml");
    let c = cfg.to_str().unwrap();
    // `server start` logs it (then fails on the taken port, so it exits by itself).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let text =
        std::fs::read_to_string(&cfg).unwrap().replace("listen: 127.0.0.1:3080", &format!("listen: 127.0.0.1:{port}"));
    std::fs::write(&cfg, text).unwrap();
    let (code, _, err) = run(home.path(), &["server", "start", "--config", c]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("accepts connections from this machine only"), "{err}");
    let (code, _, err) =
        run(home.path(), &["server", "init", "--dir", &format!("{d}2"), "--public-addr", "127.0.0.1:3080"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "loopback on both sides is fine: {err}");

    // Client options are refused on server-side commands, before or after the subcommand.
    for args in [
        &["server", "start", "--config", c, "--proxy", "p:1"][..],
        &["--proxy", "p:1", "server", "start", "--config", c],
        &["server", "issue", "--dir", d, "--user", "a", "--out", "x.pem", "--identity", "id.pem"],
        &["demo", "--insecure"],
    ] {
        let (code, _, err) = run(home.path(), args).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("is a client option"), "{args:?}: {err}");
    }
    let (_, out, _) = run(home.path(), &["server", "start", "--help"]).await;
    assert!(!out.contains("--proxy") && !out.contains("--insecure"), "{out}");
    // Their environment variables (a shell set up for the client) are ignored there.
    let out = oneport(home.path())
        .args(["server", "identities", "ls", "--dir", d])
        .env("ONEPORT_PROXY", "p:1")
        .env("ONEPORT_INSECURE", "true")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("WARNING") && !err.contains("accepts connections"), "only init and start say it: {err}");

    // `server issue` does not overwrite, and warns about long-lived files.
    let id = home.path().join("alice.pem");
    let i = id.to_str().unwrap();
    let (code, _, err) = run(home.path(), &["server", "issue", "--dir", d, "--user", "alice", "--out", i]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
    let before = std::fs::read(&id).unwrap();
    let (code, _, err) = run(home.path(), &["server", "issue", "--dir", d, "--user", "bob", "--out", i]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "error: {i} exists: not overwriting it (pass --force to replace it, or choose another --out)"
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&id).unwrap(), before, "the file is untouched");
    // A lifetime of nothing would write an identity that is expired when made.
    let (code, _, err) =
        run(home.path(), &["server", "issue", "--dir", d, "--user", "bob", "--out", i, "--force", "--ttl", "0s"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"0s\" is no time at all: give a lifetime such as 1h, 12h or 7d"), "{err}");
    assert_eq!(std::fs::read(&id).unwrap(), before, "the file is untouched");
    let (code, _, err) =
        run(home.path(), &["server", "issue", "--dir", d, "--user", "bob", "--out", i, "--force", "--ttl", "90d"])
            .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "warning: --ttl 90d: this file works for that long if it leaks, until you run `oneport server revoke`. \
             Prefer short certificates that renew: `oneport server invite --ttl 12h --renewable-for 30d`."
        ),
        "{err}"
    );
    assert_eq!(oneport::identity::Identity::load(&id).unwrap().caller.user, "bob");

    // A backend addr written as a URL.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "apps:\n",
        "apps:\n  - { name: grafana, kind: http, addr: \"http://127.0.0.1:3000\", allow: { users: [a] } }\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let (code, _, err) = run(home.path(), &["server", "start", "--config", c]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains(
            r#"app "grafana": addr "http://127.0.0.1:3000" is a URL; addr is HOST:PORT (e.g. "127.0.0.1:3000")"#
        ),
        "{err}"
    );
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
    // The protocol the round trip really used, not a fixed claim.
    assert!(text.contains("(mutual TLS, multiplexed session (teleport-http-mux), SNI"), "{text}");
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
        // A reader that left (`oneport doctor | head -1`) is no reason to panic.
        let mut c = oneport(home.path());
        c.args(["--proxy", &proxy, "--identity", id.to_str().unwrap(), "doctor"]);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        drop(child.stdout.take());
        let gone = child.wait_with_output().await.unwrap();
        let err = String::from_utf8_lossy(&gone.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(gone.status.code(), Some(0), "{err}");
        let (code, out, _) = run(home.path(), &["--proxy", &proxy, "--identity", id.to_str().unwrap(), "doctor"]).await;
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("signed by the proxy CA (the routing server, or a load balancer holding a certificate from the cluster CA: the ALPN probe tells which)"),
            "{out}"
        );
        assert!(out.contains("[ok]   ALPN         probe: ALPN negotiated (direct TLS routing works)"), "{out}");
        assert!(out.contains("[ok]   mTLS         the proxy knows you as alice"), "{out}");
        assert!(
            out.contains("[--]   backend      not checked: `oneport doctor --resource KIND/NAME` (e.g. db/pg1) asks the proxy to reach one"),
            "{out}"
        );
        assert!(out.contains("All checks passed."), "{out}");
        let (code, out, _) = run(
            home.path(),
            &["--proxy", &proxy, "--identity", id.to_str().unwrap(), "doctor", "--resource", "app/echo"],
        )
        .await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("negotiated ALPN teleport-tcp-ping"), "{out}");
        assert!(out.contains(&format!("[ok]   backend      proxy {proxy} reaches the backend of app echo")), "{out}");
        let other = oneport::identity::pki::make_ca("other").unwrap();
        let other_ca = home.path().join("other.pem");
        std::fs::write(&other_ca, other.cert_pem).unwrap();
        // --ca is a routing anchor only for an identity file without a CA.
        let (pem, ca_pem) = (std::fs::read_to_string(&id).unwrap(), std::fs::read_to_string(srv.ca_path()).unwrap());
        assert!(pem.contains(&ca_pem));
        let bare = home.path().join("bare.pem");
        std::fs::write(&bare, pem.replace(&ca_pem, "")).unwrap();
        let (code, out, _) = run(
            home.path(),
            &["--proxy", &proxy, "--identity", bare.to_str().unwrap(), "--ca", other_ca.to_str().unwrap(), "doctor"],
        )
        .await;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("[FAIL] TLS"), "{out}");
        assert!(out.contains("Where it breaks: TLS: give --ca with the CA that signs this certificate"), "{out}");
        srv.stop().await;
    })
    .await;
}

/// With a low open-files limit, `server start` raises what it can and lowers
/// `max_connections` to what the descriptors carry (two per connection), saying so;
/// silent connections from one address beyond `max_unauthenticated_per_source` are
/// closed while an authenticated session is served.
#[tokio::test]
async fn server_start_caps_max_connections_to_the_open_files_limit() {
    if !have("prlimit") {
        return;
    }
    deadline(async {
        let home = tempfile::tempdir().unwrap();
        let srv = TestServer::start(|_| {}).await;
        let (echo, _) = spawn_echo().await;
        let (path, port) = second_config(&srv, "fd.yaml", |c| {
            c.max_connections = 10_000;
            c.max_unauthenticated_per_source = 3;
            c.handshake_timeout = Duration::from_secs(120);
            c.apps = vec![tcp_app("echo", echo, &["alice"])];
        });
        let mut child = tokio::process::Command::new(which("prlimit").unwrap())
            .arg("--nofile=300:300")
            .arg(env!("CARGO_BIN_EXE_oneport"))
            .args(["server", "start", "--config", path.to_str().unwrap()])
            .env("ONEPORT_HOME", home.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = collect_lines(child.stderr.take().unwrap());
        let line = wait_line(&lines, "max_connections 10000 lowered to 100").await;
        assert!(line.contains("the open-files limit is 300 (hard limit 300)"), "{line}");
        assert!(line.contains("two descriptors"), "{line}");
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        wait_port(addr, Duration::from_secs(30)).await;

        // Silent connections from 127.0.0.2: three are kept, the excess closed at once.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut silent = Vec::new();
        for _ in 0..6 {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            silent.push(s.connect(addr).await.unwrap());
        }
        for (i, s) in silent.iter_mut().enumerate().skip(3) {
            let mut b = [0u8; 1];
            let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await;
            assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "connection {i} over the cap is closed: {r:?}");
        }
        for (i, s) in silent.iter().enumerate().take(3) {
            let r = s.try_read(&mut [0u8; 1]);
            assert!(matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "{i} kept: {r:?}");
        }
        wait_line(&lines, "too many unauthenticated connections from one address").await;
        // An authenticated session from another address is served meanwhile.
        let (dialer, target) = echo_dialer(&srv, "alice", addr);
        let mut s = dialer.dial(&target).await.unwrap().stream;
        s.write_all(b"served").await.unwrap();
        let mut back = [0u8; 6];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"served");
        drop((s, silent));

        stop_with_sigterm(&mut child).await;
        srv.stop().await;
    })
    .await;
}

/// SIGHUP reloads the config: a new app becomes reachable, an invalid file is
/// refused with the reason while the old config keeps serving, and a session opened
/// before both reloads keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_and_keeps_sessions() {
    use oneport::client::dial::{Dialer, Target};
    use oneport::proto::naming::{Kind, Protocol};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    deadline(async {
        let home = tempfile::tempdir().unwrap();
        let (echo, _) = spawn_echo().await;
        let srv = TestServer::start(|_| {}).await;
        let (path, port) = second_config(&srv, "reload.yaml", |c| c.apps = vec![tcp_app("echo1", echo, &["alice"])]);
        let mut child = oneport(home.path())
            .args(["server", "start", "--config", path.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = collect_lines(child.stderr.take().unwrap());
        wait_port(([127, 0, 0, 1], port).into(), Duration::from_secs(30)).await;
        let alice = srv.identity("alice", &[]);
        let over = oneport::client::context::Overrides {
            proxy: Some(format!("127.0.0.1:{port}")),
            identity: Some(alice),
            ca: None,
            insecure: false,
        };
        let dialer = Dialer::new(oneport::client::context::Context::build(&over, None).unwrap());
        let target = |name: &str| Target::resource(dialer.context(), Kind::App, name, Protocol::Tcp);
        // A refusal arrives after the TLS 1.3 handshake: only a round trip tells.
        let reachable = async |name: &str| match dialer.dial(&target(name)).await {
            Ok(mut d) => {
                let _ = d.stream.write_all(b"?").await;
                let mut b = [0u8; 1];
                matches!(tokio::time::timeout(Duration::from_secs(10), d.stream.read(&mut b)).await, Ok(Ok(1)))
            }
            Err(_) => false,
        };
        let mut open = dialer.dial(&target("echo1")).await.unwrap().stream;
        let round_trip = async |s: &mut oneport::net::io::BoxIo, msg: &[u8]| {
            s.write_all(msg).await.unwrap();
            let mut back = vec![0u8; msg.len()];
            s.read_exact(&mut back).await.unwrap();
            assert_eq!(back, msg);
        };
        round_trip(&mut open, b"before").await;
        assert!(!reachable("echo2").await, "echo2 is not configured yet");

        let mut cfg: oneport::server::Config = serde_yaml_ng::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        cfg.apps.push(tcp_app("echo2", echo, &["alice"]));
        std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
        send_signal(child.id().unwrap(), "-HUP");
        wait_line(&lines, "config reloaded").await;
        let mut two = dialer.dial(&target("echo2")).await.expect("echo2 after the reload").stream;
        round_trip(&mut two, b"new app").await;

        std::fs::write(&path, "listen: [not, an, address\n").unwrap();
        send_signal(child.id().unwrap(), "-HUP");
        let refused = wait_line(&lines, "config reload refused").await;
        assert!(refused.contains("still serving the previous config"), "{refused}");
        assert!(refused.contains("reload.yaml"), "the reason names the file: {refused}");
        let mut again = dialer.dial(&target("echo2")).await.expect("old config still served").stream;
        round_trip(&mut again, b"kept").await;
        round_trip(&mut open, b"after both reloads").await;

        drop((open, two, again));
        // Each session leaves its audit line at the default level.
        let audit = wait_line(&lines, "audit: session").await;
        for field in ["user=alice", "kind=app", "source=127.0.0.1:", "via=\"direct\"", "bytes_to_resource="] {
            assert!(audit.contains(field), "{field} in {audit}");
        }
        stop_with_sigterm(&mut child).await;
        srv.stop().await;
    })
    .await;
}

/// `proxy app` whose stdout and stderr are closed pipes neither panics on printing
/// nor ignores SIGTERM: it serves, then exits 0 promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_app_with_closed_stdout_and_stderr_serves_and_stops_on_sigterm() {
    deadline(async {
        let home = tempfile::tempdir().unwrap();
        let (echo, _) = spawn_echo().await;
        let srv = TestServer::start(|c| c.apps.push(tcp_app("echo", echo, &["alice"]))).await;
        let id = srv.identity("alice", &[]);
        let port = free_port();
        let mut child = oneport(home.path())
            .args(["--proxy", &srv.addr.to_string(), "--identity"])
            .arg(&id)
            .args(["proxy", "app", "echo", "--port", &port.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        drop(child.stderr.take());
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        wait_port(addr, Duration::from_secs(30)).await;
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let back = send_and_collect(s, std::sync::Arc::new(b"through".to_vec())).await;
        assert_eq!(back, b"through");
        assert!(child.try_wait().unwrap().is_none(), "still running after printing to closed pipes");
        send_signal(child.id().unwrap(), "-TERM");
        let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await.expect("no exit").unwrap();
        assert!(matches!(status.code(), Some(0) | Some(130)), "{status:?} (101 would be a panic)");
        srv.stop().await;
    })
    .await;
}

/// A reload that takes a user off an allow-list reaches multiplexed sessions that
/// are already open: the next stream on the same session is refused with the
/// allow-list's sentence (nothing dialled), while the stream opened before runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_removes_the_user_refuses_new_streams_on_an_open_session() {
    use bytes::Bytes;
    use oneport::client::dial::{Dialer, Target};
    use oneport::net::mux;
    use oneport::proto::naming::{Kind, Protocol};
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    deadline(async {
        let home = tempfile::tempdir().unwrap();
        let (echo, accepted) = spawn_echo().await;
        let srv = TestServer::start(|_| {}).await;
        let (path, port) =
            second_config(&srv, "mux-reload.yaml", |c| c.apps = vec![tcp_app("echo", echo, &["alice", "bob"])]);
        let mut child = oneport(home.path())
            .args(["server", "start", "--config", path.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = collect_lines(child.stderr.take().unwrap());
        wait_port(([127, 0, 0, 1], port).into(), Duration::from_secs(30)).await;
        let over = oneport::client::context::Overrides {
            proxy: Some(format!("127.0.0.1:{port}")),
            identity: Some(srv.identity("alice", &[])),
            ca: None,
            insecure: false,
        };
        let dialer = Dialer::new(oneport::client::context::Context::build(&over, None).unwrap());
        let plain = Target::resource(dialer.context(), Kind::App, "echo", Protocol::Tcp);
        let target = Target { sni: plain.sni.clone(), alpn: Protocol::Tcp.mux_offer() };
        let dialed = dialer.dial(&target).await.unwrap();
        assert!(dialed.alpn.is_some_and(|a| a.mux), "a multiplexed session: {:?}", dialed.alpn);
        let (send, conn) = mux::client_builder().handshake::<_, Bytes>(dialed.stream).await.unwrap();
        tokio::spawn(conn);
        let stream = async || {
            let mut send = send.clone().ready().await.unwrap();
            let (answer, s) = send.send_request(mux::connect_request(&target.sni).unwrap(), false).unwrap();
            mux::H2Stream::client(s, answer)
        };
        let round_trip = async |s: &mut mux::H2Stream, msg: &[u8]| {
            s.write_all(msg).await.unwrap();
            let mut back = vec![0u8; msg.len()];
            s.read_exact(&mut back).await.unwrap();
            assert_eq!(back, msg);
        };
        let mut first = stream().await;
        round_trip(&mut first, b"before").await;

        let mut cfg: oneport::server::Config = serde_yaml_ng::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        cfg.apps = vec![tcp_app("echo", echo, &["bob"])];
        std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
        send_signal(child.id().unwrap(), "-HUP");
        wait_line(&lines, "config reloaded").await;
        let dialled = accepted.load(Ordering::SeqCst);
        let mut second = stream().await;
        // The refusal may arrive before the write goes out: then the write reports it.
        let err = match second.write_all(b"?").await {
            Err(e) => e,
            Ok(()) => {
                let mut b = [0u8; 1];
                second.read(&mut b).await.expect_err("the stream after the reload is refused")
            }
        };
        let refusal = mux::StreamRefused::of(&err).cloned().unwrap_or_else(|| panic!("not a refusal: {err}"));
        assert_eq!(refusal.status, 403);
        assert!(refusal.sentence.contains("access to app echo denied for user alice"), "{}", refusal.sentence);
        assert_eq!(accepted.load(Ordering::SeqCst), dialled, "a refused stream dials nothing");
        round_trip(&mut first, b"the stream opened before runs on").await;
        wait_line(&lines, "denied for user alice").await;

        drop(first);
        stop_with_sigterm(&mut child).await;
        srv.stop().await;
    })
    .await;
}

/// `kubectl config view -o json` of `kubeconfig`: the names in each section and the
/// current context.
async fn kube_view(home: &std::path::Path, kubeconfig: &std::path::Path) -> (Vec<String>, Vec<String>, String) {
    let out = scrubbed("kubectl", home)
        .env("HOME", home)
        .env("KUBECONFIG", kubeconfig)
        .args(["config", "view", "-o", "json"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "kubectl config view: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = |section: &str| -> Vec<String> {
        v[section].as_array().into_iter().flatten().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    };
    let mut all = names("clusters");
    all.extend(names("users").into_iter().map(|n| format!("user:{n}")));
    (all, names("contexts"), v["current-context"].as_str().unwrap_or_default().to_string())
}

/// Kube cluster `dev` on the API double `api`, for group `dev`.
fn dev_cluster(api: &common::kube_api::KubeApi) -> oneport::server::config::Kube {
    oneport::server::config::Kube {
        name: "dev".into(),
        api_server: api.url.clone(),
        ca: Some(api.ca_path.clone()),
        token_file: Some(api.token_path.clone()),
        client_cert: None,
        client_key: None,
        allow: oneport::server::config::Allow { users: vec![], groups: vec!["dev".into()] },
        recording: Default::default(),
    }
}

const OTHER_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: other
  cluster:
    server: https://other.example:6443
users:
- name: other
  user:
    token: other-token
contexts:
- name: other
  context:
    cluster: other
    user: other
current-context: other
";

/// Two proxies with different CAs: one profile each, `status` lists both with the
/// active one marked, `--proxy` uses the other's stored profile without switching,
/// `status` follows `--identity`, `login --proxy` alone switches, a single
/// `profile.yaml` of an older version is migrated, and `logout` / `logout --all`
/// remove the files and (with --yes) exactly the kubeconfig entries `kube login`
/// wrote, checked with kubectl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_profile_per_proxy_status_and_logout() {
    if !have("kubectl") {
        return;
    }
    deadline(async {
        let api = common::kube_api::KubeApi::start().await;
        let (echo, _) = spawn_echo().await;
        let a = TestServer::start(|c| {
            c.apps.push(tcp_app("echo", echo, &["alice"]));
            c.kube.push(dev_cluster(&api));
        })
        .await;
        let b = TestServer::start(|c| c.apps.push(tcp_app("echo-b", echo, &["bob"]))).await;
        let alice = a.identity("alice", &["dev"]);
        let bob = b.identity("bob", &[]);
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let (pa, pb) = (a.addr.to_string(), b.addr.to_string());
        let files = |p: &std::net::SocketAddr| {
            let tag = format!("127.0.0.1_{}", p.port());
            [h.join("profiles").join(format!("{tag}.yaml")), h.join(format!("identity-{tag}.pem"))]
        };

        // An older version's single profile.yaml is moved into the new layout.
        let (code, _, err) = run(h, &["login", "--proxy", &pa, "--identity", alice.to_str().unwrap()]).await;
        assert_eq!(code, 0, "{err}");
        std::fs::rename(&files(&a.addr)[0], h.join("profile.yaml")).unwrap();
        std::fs::remove_file(h.join("active-profile")).unwrap();
        let (code, out, _) = run(h, &["status"]).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(&format!("Proxy:     {pa} (active profile)")), "{out}");
        assert!(!h.join("profile.yaml").exists() && files(&a.addr)[0].exists());

        let (code, out, err) = run(h, &["login", "--proxy", &pb, "--identity", bob.to_str().unwrap()]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("Logged in to {pb} (cluster test")), "{out}");
        use std::os::unix::fs::PermissionsExt;
        for f in files(&a.addr).iter().chain(&files(&b.addr)) {
            assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
        }
        let (code, out, _) = run(h, &["status"]).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(&format!("Proxy:     {pb} (active profile)")), "{out}");
        assert!(out.contains("User:      bob\n"), "{out}");
        let valid = out.lines().find(|l| l.starts_with("Valid for: ")).unwrap();
        assert!(valid.contains(" (until 20") && valid.ends_with("Z)"), "{valid}");
        assert!(out.contains("Profiles (* = active):"), "{out}");
        let row = |mark: char, p: &str, user: &str| format!("{mark} {p}  cluster test  user {user}  valid until 20");
        assert!(out.contains(&row('*', &pb, "bob")) && out.contains(&row(' ', &pa, "alice")), "{out}");

        // --proxy A: A's stored profile and identity, without switching.
        let (code, out, err) = run(h, &["--proxy", &pa, "ls"]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("echo") && !out.contains("echo-b"), "{out}");
        let (code, out, _) = run(h, &["--proxy", &pa, "status"]).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(&format!("Proxy:     {pa} (chosen by --proxy; the active profile is {pb})")), "{out}");
        assert!(out.contains("User:      alice (groups: dev)"), "{out}");
        assert!(out.contains(&row('*', &pb, "bob")), "still B active: {out}");

        // status describes what the next command uses: --identity, or ONEPORT_IDENTITY.
        let (code, out, _) = run(h, &["--identity", alice.to_str().unwrap(), "status"]).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("User:      alice (groups: dev)"), "{out}");
        assert!(
            out.contains(&format!("Identity:  {} (from --identity / ONEPORT_IDENTITY, not the profile's)", alice.display())),
            "{out}"
        );
        let o = oneport(h).env("ONEPORT_IDENTITY", &alice).args(["status", "--format", "json"]).output().await.unwrap();
        assert_eq!(o.status.code(), Some(0));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["logged_in"], true, "{j}");
        assert_eq!(j["proxy"], pb.as_str(), "{j}");
        assert_eq!(j["user"], "alice", "{j}");
        assert_eq!(j["groups"], serde_json::json!(["dev"]), "{j}");
        assert_eq!(j["identity_from"], "--identity", "{j}");
        assert_eq!(j["expired"], false, "{j}");
        assert!(j["valid_until"].as_str().unwrap().ends_with('Z'), "{j}");
        let listed: Vec<(String, bool)> = j["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["proxy"].as_str().unwrap().to_string(), p["active"].as_bool().unwrap()))
            .collect();
        let mut want = vec![(pa.clone(), false), (pb.clone(), true)];
        want.sort();
        let mut got = listed.clone();
        got.sort();
        assert_eq!(got, want, "{j}");

        // An expired identity: exit 1, said in words and in JSON.
        let expired = h.join("expired.pem");
        oneport::server::setup::issue(b.dir.path(), "carol", &[], Duration::from_secs(1), &expired).unwrap();
        poll_until(Duration::from_secs(10), "the 1s identity to expire", || async {
            let c = oneport::identity::Identity::load(&expired).unwrap().caller;
            c.expired_at(std::time::SystemTime::now()).then_some(())
        })
        .await;
        let (code, out, _) = run(h, &["--identity", expired.to_str().unwrap(), "status"]).await;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("User:      carol\nValid for: EXPIRED "), "{out}");
        assert!(out.contains("get a new identity and log in again"), "{out}");
        let (code, out, _) = run(h, &["--identity", expired.to_str().unwrap(), "status", "--format", "json"]).await;
        assert_eq!(code, 1, "{out}");
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!((j["user"].as_str(), j["expired"].as_bool()), (Some("carol"), Some(true)), "{j}");

        // kube login for A (through --proxy) is recorded in A's profile.
        let kc = h.join("kubeconfig");
        std::fs::write(&kc, OTHER_KUBECONFIG).unwrap();
        let kube_login = |proxy: &str| {
            let mut c = oneport(h);
            c.env("HOME", h).env("KUBECONFIG", &kc).args(["--proxy", proxy, "kube", "login", "dev"]);
            c
        };
        let o = kube_login(&pa).output().await.unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (entries, contexts, current) = kube_view(h, &kc).await;
        assert!(entries.contains(&"test-dev".to_string()) && entries.contains(&"user:test-dev".to_string()));
        assert_eq!((contexts.clone(), current.as_str()), (vec!["other".to_string(), "test-dev".to_string()], "test-dev"));
        // kubectl's exec plugin runs `oneport --proxy A kube credentials`: A's stored
        // identity, while B is the active profile.
        let o = scrubbed("kubectl", h).env("HOME", h).env("KUBECONFIG", &kc).args(["get", "pods"]).output().await.unwrap();
        let pods = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "kubectl get pods: {}", String::from_utf8_lossy(&o.stderr));
        assert!(pods.contains(common::kube_api::POD), "{pods}");

        // login --proxy A alone switches to A's stored profile.
        let (code, out, err) = run(h, &["login", "--proxy", &pa]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("Logged in to {pa} (cluster test")) && out.contains("as alice"), "{out}");
        let (_, out, _) = run(h, &["status"]).await;
        assert!(out.contains(&row('*', &pa, "alice")) && out.contains(&row(' ', &pb, "bob")), "{out}");

        // logout without a terminal and without --yes: A's files go, its kube entries
        // stay, and the commands that remove them are printed.
        let (code, out, _) = run(h, &["logout"]).await;
        assert_eq!(code, 0, "{out}");
        let file = kc.display().to_string();
        assert!(out.contains(&format!("Logged out of {pa} (alice): its profile and identity copy are removed.")), "{out}");
        assert!(
            out.contains(&format!(
                "Left the kubeconfig entries oneport wrote for {pa}: cluster test-dev, user test-dev, context test-dev in {file}. Remove them with:"
            )),
            "{out}"
        );
        assert!(out.contains(&format!("  kubectl --kubeconfig {file} config delete-context test-dev")), "{out}");
        assert!(
            out.contains(&format!(
                "No profile is active now. Still stored: {pb}; `oneport login --proxy HOST:PORT` makes one active, `oneport logout --all` removes them."
            )),
            "{out}"
        );
        assert!(files(&a.addr).iter().all(|f| !f.exists()), "A's files are gone");
        assert!(files(&b.addr).iter().all(|f| f.exists()), "B's files stay");
        assert_eq!(kube_view(h, &kc).await.1, vec!["other".to_string(), "test-dev".to_string()]);
        let (code, out, _) = run(h, &["status"]).await;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("Not logged in. Run: oneport login --proxy HOST:PORT --identity FILE"), "{out}");
        assert!(out.contains(&row(' ', &pb, "bob")), "{out}");
        let (code, out, _) = run(h, &["logout"]).await;
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            out.trim(),
            format!(
                "No profile is active. Still stored: {pb}; `oneport logout --proxy HOST:PORT` removes one, `oneport logout --all` all."
            )
        );
        assert!(files(&b.addr).iter().all(|f| f.exists()), "nothing removed");

        // Log in to A again, kube login again, then logout --all --yes removes every
        // profile and exactly the entries oneport wrote.
        let (code, _, err) = run(h, &["login", "--proxy", &pa, "--identity", alice.to_str().unwrap()]).await;
        assert_eq!(code, 0, "{err}");
        let o = kube_login(&pa).output().await.unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (code, out, _) = run(h, &["logout", "--all", "--yes"]).await;
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!(
                "Removed the kubeconfig entries oneport wrote for {pa}: cluster test-dev, user test-dev, context test-dev in {file}."
            )),
            "{out}"
        );
        assert!(out.contains(&format!("Logged out of {pb} (bob)")), "{out}");
        for f in files(&a.addr).iter().chain(&files(&b.addr)) {
            assert!(!f.exists(), "{} is gone", f.display());
        }
        assert!(!h.join("active-profile").exists());
        let (entries, contexts, current) = kube_view(h, &kc).await;
        assert_eq!(entries, vec!["other".to_string(), "user:other".to_string()]);
        assert_eq!(contexts, vec!["other".to_string()]);
        assert_eq!(current, "", "the removed context is no longer current");
        let (code, out, _) = run(h, &["status", "--format", "json"]).await;
        assert_eq!(code, 1);
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(j, serde_json::json!({"logged_in": false, "profiles": []}));
        a.stop().await;
        b.stop().await;
    })
    .await;
}

/// On a terminal (tmux), `logout` asks before removing the kubeconfig entries
/// `kube login` wrote: Enter (the default, No) leaves them, `y` removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_a_terminal_asks_about_the_kube_entries() {
    if !have("kubectl") || !have("tmux") {
        return;
    }
    deadline(async {
        let api = common::kube_api::KubeApi::start().await;
        let srv = TestServer::start(|c| c.kube.push(dev_cluster(&api))).await;
        let alice = srv.identity("alice", &["dev"]);
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let proxy = srv.addr.to_string();
        let kc = h.join("kubeconfig");
        let sock = h.join("tmux.sock");
        let bin = env!("CARGO_BIN_EXE_oneport");
        for (answer, want) in [
            ("Enter", format!("Left the kubeconfig entries oneport wrote for {proxy}: cluster test-dev, user test-dev, context test-dev in {}. Remove them with:", kc.display())),
            ("y", format!("Removed the kubeconfig entries oneport wrote for {proxy}: cluster test-dev, user test-dev, context test-dev in {}.", kc.display())),
        ] {
            let (code, _, err) = run(h, &["login", "--proxy", &proxy, "--identity", alice.to_str().unwrap()]).await;
            assert_eq!(code, 0, "{err}");
            let o = oneport(h).env("HOME", h).env("KUBECONFIG", &kc).args(["kube", "login", "dev"]).output().await.unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let (out, rc) = (h.join("out"), h.join("rc"));
            let _ = std::fs::remove_file(&rc);
            let line = format!(
                "env -i PATH=\"$PATH\" ONEPORT_HOME={h} HOME={h} KUBECONFIG={kc} NO_COLOR=1 {bin} logout > {out} 2>&1; echo $? > {rc}.tmp && mv {rc}.tmp {rc}",
                h = h.display(),
                kc = kc.display(),
                out = out.display(),
                rc = rc.display()
            );
            let mut c = tokio::process::Command::new("tmux");
            c.arg("-S").arg(&sock).args(["new-session", "-d", "-s", "logout", "-x", "200", "-y", "30", &line]);
            assert!(c.status().await.unwrap().success(), "tmux new-session");
            let question = format!(
                "Remove the kubeconfig entries oneport wrote for {proxy} (cluster test-dev, user test-dev, context test-dev in {})? [y/N] ",
                kc.display()
            );
            poll_until(Duration::from_secs(30), "the question", || async {
                std::fs::read_to_string(&out).ok().filter(|t| t.contains(&question)).map(|_| ())
            })
            .await;
            let keys: &[&str] = if answer == "Enter" { &["Enter"] } else { &["y", "Enter"] };
            let mut c = tokio::process::Command::new("tmux");
            c.arg("-S").arg(&sock).args(["send-keys", "-t", "logout"]).args(keys);
            assert!(c.status().await.unwrap().success(), "tmux send-keys");
            let code = poll_until(Duration::from_secs(30), "logout to finish", || async {
                std::fs::read_to_string(&rc).ok().and_then(|s| s.trim().parse::<i32>().ok())
            })
            .await;
            let text = std::fs::read_to_string(&out).unwrap();
            assert_eq!(code, 0, "{text}");
            assert!(text.contains(&want), "{text}");
            let contexts = kube_view(h, &kc).await.1;
            if answer == "y" {
                assert!(contexts.is_empty(), "{contexts:?}");
            } else {
                assert_eq!(contexts, vec!["test-dev".to_string()]);
            }
        }
        let _ = tokio::process::Command::new("tmux").arg("-S").arg(&sock).arg("kill-server").output().await;
        srv.stop().await;
    })
    .await;
}

/// Writes an identity for `user` (signed by `srv`'s CA) that expired `ago` ago, to
/// `out`; returns the clock time of its expiry as the sentence prints it.
fn write_expired_identity(srv: &TestServer, user: &str, ago: Duration, out: &std::path::Path) -> String {
    let ca = oneport::server::setup::load_ca(srv.dir.path()).unwrap();
    let valid = Duration::from_secs(3600);
    let from = time::OffsetDateTime::now_utc() - valid - ago;
    let c = oneport::identity::pki::make_client_cert(&ca, user, &[], from, valid).unwrap();
    std::fs::write(out, oneport::identity::pki::identity_pem(&c, &ca.cert_pem)).unwrap();
    let not_after = oneport::identity::Identity::load(out).unwrap().caller.not_after;
    oneport::util::utc::format(not_after, "-", " ", ":").unwrap()[11..].to_string()
}

/// An expired identity is refused before anything is dialled, with one sentence,
/// by every command that uses it (the proxy would only say "connection error").
#[tokio::test]
async fn an_expired_identity_is_refused_before_dialling_with_one_sentence() {
    deadline(async {
        let srv = server_with_echo(|_| {}).await;
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let fresh = srv.identity("carol", &[]);
        let (code, _, err) =
            run(h, &["login", "--proxy", &srv.addr.to_string(), "--identity", fresh.to_str().unwrap()]).await;
        assert_eq!(code, 0, "{err}");
        // The stored identity expires (as it would, left alone for a while).
        let stored = h.join(format!("identity-127.0.0.1_{}.pem", srv.addr.port()));
        let at = write_expired_identity(&srv, "carol", Duration::from_secs(12 * 60 + 2), &stored);
        let sentence =
            format!("the identity for carol expired at {at} UTC (12 minutes ago): get a new one and run `oneport login`");
        let want = format!("error: {sentence}\n");
        for args in [
            &["ls"][..],
            &["proxy", "app", "echo"],
            &["proxy", "db", "pg1"],
            &["proxy", "kube", "dev"],
            &["db", "connect", "pg1"],
            &["config", "ssh"],
            &["kube", "login", "dev"],
            &["kube", "credentials"],
            &["login", "--renew"],
        ] {
            let (code, out, err) = run(h, args).await;
            assert_eq!((code, out.as_str(), err.as_str()), (1, "", want.as_str()), "oneport {}", args.join(" "));
        }
        // As an OpenSSH ProxyCommand: one stderr line, nothing on stdout (ssh's).
        let (code, out, err) = run(h, &["proxy", "ssh", "root@web1"]).await;
        assert_eq!((code, out.as_str(), err.as_str()), (1, "", want.as_str()));
        // kubectl names the cluster it asked for.
        let (code, _, err) = run(h, &["kube", "credentials", "dev"]).await;
        assert_eq!((code, err), (1, format!("error: credentials for kube cluster dev: {sentence}\n")));
        // doctor reports it as its identity layer.
        let (code, out, _) = run(h, &["doctor"]).await;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("  [FAIL] identity     {sentence}\n")), "{out}");
        assert!(out.contains(&format!("Where it breaks: identity: {sentence}\n")), "{out}");

        // Logging in with an expired file says the same, and stores nothing.
        let old = h.join("old.pem");
        let at = write_expired_identity(&srv, "carol", Duration::from_secs(3 * 3600 + 30), &old);
        let (code, out, err) = run(
            tempfile::tempdir().unwrap().path(),
            &["login", "--proxy", &srv.addr.to_string(), "--identity", old.to_str().unwrap()],
        )
        .await;
        assert_eq!(code, 1, "{out}");
        assert_eq!(
            err,
            format!(
                "error: the identity for carol expired at {at} UTC (3 hours ago): get a new one and run `oneport login`\n"
            )
        );
        srv.stop().await;
    })
    .await;
}

/// A name given as the wrong kind gets the kind it is and the command for it, from
/// the proxy; names the user may not use are not revealed that way.
#[tokio::test]
async fn a_name_of_another_kind_gets_a_hint_with_the_right_command() {
    deadline(async {
        use oneport::server::config::{Allow, Database, Node};
        let (echo, _) = spawn_echo().await;
        let carol = || Allow { users: vec!["carol".into()], groups: vec![] };
        let srv = TestServer::start(|c| {
            c.apps.push(tcp_app("web", echo, &["carol"]));
            c.apps.push(tcp_app("secret", echo, &["root"]));
            c.databases.push(Database {
                name: "pg1".into(),
                protocol: oneport::proto::db::DbProtocol::Postgres,
                addr: echo.to_string(),
                tls: None,
                allow: carol(),
            });
            c.nodes.push(Node { name: "web1".into(), addr: Some(echo.to_string()), targets: vec![], allow: carol() });
        })
        .await;
        let id = srv.identity("carol", &[]);
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let (code, _, err) =
            run(h, &["login", "--proxy", &srv.addr.to_string(), "--identity", id.to_str().unwrap()]).await;
        assert_eq!(code, 0, "{err}");
        let app = "error: web is an app: oneport proxy app web\n";
        let db = "error: pg1 is a database: oneport db connect pg1\n";
        for (args, want) in [
            (&["db", "connect", "web"][..], app),
            (&["proxy", "db", "web"], app),
            (&["kube", "login", "web"], app),
            (&["proxy", "ssh", "root@web"], app),
            (&["proxy", "app", "pg1"], db),
            (&["proxy", "kube", "pg1"], db),
            (&["proxy", "ssh", "root@pg1"], db),
            (
                &["proxy", "app", "web1"],
                "error: web1 is a node: ssh -o \"ProxyCommand oneport proxy ssh %r@%h:%p\" USER@web1\n",
            ),
        ] {
            let mut c = oneport(h);
            c.env("HOME", h).args(args);
            let out = c.output().await.unwrap();
            let (out, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert_eq!((out.as_ref(), err.as_ref()), ("", want), "oneport {}", args.join(" "));
        }
        // secret is an app carol may not use: as a database it is simply unknown.
        let (code, _, err) = run(h, &["db", "connect", "secret"]).await;
        assert_eq!(code, 1);
        assert_eq!(err, format!("error: database secret is not known to proxy {}; known: pg1\n", srv.addr));
        // Sentences name the proxy as dialled, not the server's public_addr.
        let typed = format!("localhost:{}", srv.addr.port());
        let (code, _, err) =
            run(h, &["--proxy", &typed, "--identity", id.to_str().unwrap(), "proxy", "app", "nope"]).await;
        assert_eq!(code, 1);
        assert_eq!(err, format!("error: app nope is not known to proxy {typed}; known: web\n"));
        srv.stop().await;
    })
    .await;
}

/// An identity from another cluster's CA (a file without a CA, trusting this proxy
/// with --ca): the TLS
/// alert the proxy sends after the handshake is said in words, not "connection error".
#[tokio::test]
async fn an_identity_from_another_ca_is_explained() {
    deadline(async {
        let srv = TestServer::start(|_| {}).await;
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let proxy = srv.addr.to_string();
        for (cluster, want) in [
            // Same CA name, other key: the signature does not verify.
            ("test", "could not verify the client certificate (TLS alert decrypt_error): the identity was issued by another cluster's CA"),
            ("elsewhere", "does not trust the client certificate (unknown CA): the identity was issued by another cluster"),
        ] {
            let ca = oneport::identity::pki::make_ca(cluster).unwrap();
            let c = oneport::identity::pki::make_client_cert(&ca, "bob", &[], time::OffsetDateTime::now_utc(), Duration::from_secs(600))
                .unwrap();
            let id = h.join(format!("bob-{cluster}.pem"));
            // Without a CA in the file, so the routing TLS trusts the --ca (this proxy's).
            std::fs::write(&id, oneport::identity::pki::identity_pem(&c, "")).unwrap();
            let ca_path = srv.ca_path();
            let base = ["--proxy", &proxy, "--identity", id.to_str().unwrap(), "--ca", ca_path.to_str().unwrap()];
            let (code, _, err) = run(h, &[&base[..], &["ls"]].concat()).await;
            assert_eq!(code, 1);
            assert_eq!(err, format!("error: listing the resources: {proxy}/webapi/ping: {proxy} {want}\n"));
            assert!(!err.contains("connection error"), "{err}");
        }
        srv.stop().await;
    })
    .await;
}

/// Completion of resource names: `oneport __complete KIND` asks the proxy (only
/// what the caller may use), and the generated bash script offers them after
/// `proxy app`; an unreachable proxy gives nothing, quickly and silently.
#[tokio::test]
async fn completion_offers_resource_names_from_the_proxy() {
    let (echo, _) = spawn_echo().await;
    let srv = TestServer::start(|c| {
        c.apps.push(tcp_app("grafana", echo, &["alice"]));
        c.apps.push(tcp_app("gitea", echo, &["alice"]));
        c.apps.push(tcp_app("secret", echo, &["bob"]));
    })
    .await;
    let id = srv.identity("alice", &[]);
    let home = tempfile::tempdir().unwrap();
    let (proxy, idp) = (srv.addr.to_string(), id.to_str().unwrap().to_string());
    let (code, out, err) = run(home.path(), &["--proxy", &proxy, "--identity", &idp, "__complete", "app"]).await;
    assert_eq!((code, out.as_str()), (0, "gitea\ngrafana\n"), "{err}");
    let (_, out, _) = run(home.path(), &["--proxy", &proxy, "--identity", &idp, "__complete", "app", "gr"]).await;
    assert_eq!(out, "grafana\n");
    let (_, out, _) = run(home.path(), &["--proxy", &proxy, "--identity", &idp, "__complete", "db"]).await;
    assert_eq!(out, "");
    let (_, out, _) = run(home.path(), &["--help"]).await;
    assert!(!out.contains("__complete"), "{out}");

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/oneport.bash");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_oneport")).parent().unwrap();
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let snippet = format!(
            "source {script:?}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE={line:?}; COMP_POINT=${{#COMP_LINE}}; \
             _oneport_with_names oneport {cur:?} {prev:?}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words = words.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(" "),
            cword = words.len() - 1,
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let mut c = scrubbed("bash", home.path());
        c.env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()));
        c.args(["--norc", "-c", &snippet]);
        c
    };
    let out = complete(&format!("oneport --proxy {proxy} --identity {idp} proxy app g")).output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "gitea\ngrafana\n", "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        complete(&format!("oneport --proxy {proxy} --identity {idp} proxy app --port 8080 gr")).output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "grafana\n");
    // Subcommands still come from clap's own function.
    let out = complete("oneport proxy a").output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app\n");

    // Nothing listens on the port: no names, exit 0, nothing on stdout or stderr.
    let closed = format!("127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let (code, out, err) = run(home.path(), &["--proxy", &closed, "--identity", &idp, "__complete", "app"]).await;
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    srv.stop().await;
}

/// `workers` in the config: the server runs that many connection threads (named
/// `oneport-conn-N`, each a runtime of its own), says so at start, and serves
/// connections on them, several at once.
#[tokio::test]
#[cfg(target_os = "linux")]
async fn server_start_runs_the_configured_connection_threads() {
    deadline(async {
        let home = tempfile::tempdir().unwrap();
        let srv = TestServer::start(|_| {}).await;
        let (echo, _) = spawn_echo().await;
        let (path, port) = second_config(&srv, "workers.yaml", |c| {
            c.workers = Some(3);
            c.apps = vec![tcp_app("echo", echo, &["alice"])];
        });
        let mut child = oneport(home.path())
            .args(["server", "start", "--config", path.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = collect_lines(child.stderr.take().unwrap());
        let line = wait_line(&lines, "oneport server listening").await;
        assert!(line.contains("workers=3"), "{line}");
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        wait_port(addr, Duration::from_secs(30)).await;

        let pid = child.id().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .filter(|n| n.starts_with("oneport-conn-"))
            .collect();
        names.sort();
        assert_eq!(names, ["oneport-conn-0", "oneport-conn-1", "oneport-conn-2"]);

        // Four connections open at once (more than the threads), each echoed.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (dialer, target) = echo_dialer(&srv, "alice", addr);
        let mut streams = Vec::new();
        for _ in 0..4 {
            streams.push(dialer.dial(&target).await.unwrap().stream);
        }
        for (i, s) in streams.iter_mut().enumerate() {
            let msg = format!("connection {i}");
            s.write_all(msg.as_bytes()).await.unwrap();
            let mut back = vec![0u8; msg.len()];
            s.read_exact(&mut back).await.unwrap();
            assert_eq!(back, msg.as_bytes());
        }
        drop(streams);

        stop_with_sigterm(&mut child).await;
        srv.stop().await;
    })
    .await;
}

/// A direct dialer for `user` to the TCP app `echo` of the server at `addr`.
fn echo_dialer(
    srv: &TestServer,
    user: &str,
    addr: std::net::SocketAddr,
) -> (oneport::client::dial::Dialer, oneport::client::dial::Target) {
    let over = oneport::client::context::Overrides {
        proxy: Some(addr.to_string()),
        identity: Some(srv.identity(user, &[])),
        ca: None,
        insecure: false,
    };
    let dialer = oneport::client::dial::Dialer::new(oneport::client::context::Context::build(&over, None).unwrap());
    let target = oneport::client::dial::Target::resource(
        dialer.context(),
        oneport::proto::naming::Kind::App,
        "echo",
        oneport::proto::naming::Protocol::Tcp,
    );
    (dialer, target)
}
