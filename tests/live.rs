//! Long-running local proxies with the real binary: the status line in a terminal
//! (tmux), one line per connection when stderr is not a terminal, `--quiet`,
//! Ctrl-C (what the drain waits for; a second one closes at once;
//! `--drain-timeout`), an HTTP app whose backend is down (curl gets 502 with the
//! server's sentence) or whose proxy is down (502 with the local proxy's), and an
//! identity that expires (warned before; psql and curl get the sentence after) or is
//! revoked while the proxy runs (curl gets 403, psql FATAL, with the reason).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::realdb::{as_user, have_postgres, psql, text, Postgres};
use common::*;
use oneport::server::config::{App, AppKind, DbProtocol};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A running `oneport proxy ...` with its stderr collected line by line.
struct Proxy {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    /// Starts `cmd` and waits for the address on stdout.
    async fn start(mut cmd: Command) -> Proxy {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start oneport");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (s, err) = (stderr.clone(), child.stderr.take().unwrap());
        let reader = tokio::spawn(async move {
            let mut r = BufReader::new(err).lines();
            while let Ok(Some(line)) = r.next_line().await {
                eprintln!("oneport: {line}");
                s.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(a) = find_loopback_addr(&line) {
                    return a;
                }
            }
            panic!("oneport exited without printing an address; stderr: {:?}", stderr.lock().unwrap());
        })
        .await
        .expect("no address within 60s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Proxy { child, addr, stderr, reader: Some(reader) }
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a stderr line containing `needle`.
    async fn wait_line(&self, needle: &str) -> String {
        poll_until(Duration::from_secs(30), &format!("a stderr line with {needle:?}"), || async {
            self.stderr().into_iter().find(|l| l.contains(needle))
        })
        .await
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("still running").to_string();
        assert!(std::process::Command::new("kill").args([sig, &pid]).status().unwrap().success());
    }

    /// Waits for the exit, and for every stderr line it wrote.
    async fn exit_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let status =
            tokio::time::timeout(limit, self.child.wait()).await.expect("oneport did not exit in time").unwrap();
        if let Some(r) = self.reader.take() {
            tokio::time::timeout(limit, r).await.expect("stderr did not end").unwrap();
        }
        status
    }
}

/// How many sockets process `pid` holds that were accepted on local `port` (Linux:
/// its descriptors' inodes against `/proc/net/tcp`, listener excluded).
fn accepted_sockets(pid: u32, port: u16) -> usize {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit(':').next()?;
            (u16::from_str_radix(local_port, 16).ok()? == port && f.get(3)? != &"0A")
                .then(|| f.get(9).map(|s| s.to_string()))?
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|t| inodes.iter().any(|i| t.to_string_lossy() == format!("socket:[{i}]")))
                .count()
        })
        .unwrap_or(0)
}

/// A one-line HTTP backend: answers every request with `ok` and closes.
async fn http_backend() -> SocketAddr {
    let listener = loopback_listener().await;
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n").await;
            });
        }
    });
    addr
}

fn http_app(name: &str, addr: SocketAddr) -> App {
    App { kind: AppKind::Http, ..tcp_app(name, addr, &["alice"]) }
}

/// curl's body and status code for `url`.
async fn curl(url: &str) -> (String, String) {
    let out = Command::new("curl").args(["-sS", "-w", "\n%{http_code}", url]).output().await.unwrap();
    let all = text(&out.stdout);
    let (body, code) = all.rsplit_once('\n').unwrap_or(("", &all));
    (body.to_string(), format!("{code}{}", text(&out.stderr)))
}

/// An identity for alice valid for `ttl` from now.
fn short_identity(srv: &TestServer, ttl: Duration) -> PathBuf {
    let out = srv.dir.path().join("alice-short.pem");
    oneport::server::setup::issue(srv.dir.path(), "alice", &[], ttl, &out).unwrap();
    out
}

/// An HTTP app whose backend refuses: curl gets 502 and the server's sentence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_app_with_its_backend_down_answers_502_with_the_sentence() {
    if !have("curl") {
        return;
    }
    deadline(async {
        let dead: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let srv = TestServer::start(|c| c.apps.push(http_app("web", dead))).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = as_user(&srv, &id, home.path());
        cmd.args(["proxy", "app", "web"]);
        let mut p = Proxy::start(cmd).await;
        for _ in 0..2 {
            let (body, code) = curl(&format!("http://{}/some/page", p.addr)).await;
            assert_eq!(code, "502");
            assert_eq!(body, format!("app web: the proxy cannot reach {dead}: connection refused\n"));
        }
        p.signal("-INT");
        assert!(p.exit_within(Duration::from_secs(20)).await.success());
        srv.stop().await;
    })
    .await;
}

/// Logs alice in to `srv` in `home` with an invite (so the server has a record of
/// the identity, and can revoke it); its serial.
async fn log_in_alice(srv: &TestServer, home: &Path) -> String {
    let mut cmd = oneport(home);
    cmd.args(["server", "invite", "--dir"]).arg(srv.dir.path()).args(["--user", "alice"]);
    let out = cmd.output().await.unwrap();
    let stdout = text(&out.stdout);
    let token = stdout.rsplit_once("--token ").map(|(_, t)| t.trim().to_string()).expect("a login line");
    let mut cmd = oneport(home);
    cmd.args(["login", "--proxy", &srv.addr.to_string(), "--token", &token]);
    let out = cmd.output().await.unwrap();
    assert!(out.status.success(), "login: {}", text(&out.stderr));
    let id = std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("identity-"))
        .expect("an identity file in the home");
    oneport::identity::Identity::load(&id).unwrap().caller.serial
}

/// `server revoke` of `serial` ("laptop lost"); the sentence that refuses it.
async fn revoke(srv: &TestServer, home: &Path, serial: &str) -> String {
    let mut cmd = oneport(home);
    cmd.args(["server", "revoke", "--dir"]).arg(srv.dir.path()).args(["--serial", serial, "--reason", "laptop lost"]);
    let out = cmd.output().await.unwrap();
    assert!(out.status.success(), "revoke: {}", text(&out.stderr));
    format!("identity {serial} for alice was revoked: laptop lost")
}

/// An HTTP app whose proxy is down: curl gets 502 and the local proxy's sentence
/// naming the proxy and what to do, not an empty reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_app_with_the_proxy_down_answers_502_with_the_sentence() {
    if !have("curl") {
        return;
    }
    deadline(async {
        let backend = http_backend().await;
        let srv = TestServer::start(|c| c.apps.push(http_app("web", backend))).await;
        let addr = srv.addr;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = as_user(&srv, &id, home.path());
        cmd.args(["proxy", "app", "web"]);
        let mut p = Proxy::start(cmd).await;
        assert_eq!(curl(&format!("http://{}/", p.addr)).await, ("ok\n".to_string(), "200".to_string()));
        srv.stop().await;
        for _ in 0..2 {
            let (body, code) = curl(&format!("http://{}/some/page", p.addr)).await;
            assert_eq!(code, "502");
            assert_eq!(
                body,
                format!(
                    "oneport: app web: cannot reach the proxy: cannot connect to {addr}: Connection refused (os error \
                     111) (is the server running? `oneport doctor` walks the path)\n"
                )
            );
        }
        p.signal("-INT");
        assert!(p.exit_within(Duration::from_secs(20)).await.success());
    })
    .await;
}

/// A running `proxy app` whose identity is revoked: curl gets 403 with the
/// revocation's sentence (asked of /webapi/ping), logged once per connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_app_with_a_revoked_identity_answers_403_with_the_reason() {
    if !have("curl") {
        return;
    }
    deadline(async {
        let backend = http_backend().await;
        let srv = TestServer::start(|c| {
            c.state_refresh = Duration::from_secs(1);
            c.apps.push(http_app("web", backend));
        })
        .await;
        let home = tempfile::tempdir().unwrap();
        let serial = log_in_alice(&srv, home.path()).await;
        let mut cmd = oneport(home.path());
        cmd.args(["proxy", "app", "web"]);
        let mut p = Proxy::start(cmd).await;
        assert_eq!(curl(&format!("http://{}/", p.addr)).await, ("ok\n".to_string(), "200".to_string()));
        let sentence = revoke(&srv, home.path(), &serial).await;
        let url = format!("http://{}/some/page", p.addr);
        let (body, code) = poll_until(Duration::from_secs(20), "the revocation to be enforced", || {
            let url = url.clone();
            async move { Some(curl(&url).await).filter(|(_, code)| code != "200") }
        })
        .await;
        assert_eq!((code.as_str(), body), ("403", format!("oneport: {sentence}\n")));
        let line = p.wait_line(&format!("app web: {sentence}")).await;
        assert!(line.contains(" ERROR "), "{line}");
        p.signal("-INT");
        assert!(p.exit_within(Duration::from_secs(20)).await.success());
        srv.stop().await;
    })
    .await;
}

/// Without a terminal: one line per connection (peer, duration, bytes); Ctrl-C with
/// a connection open says what the drain waits for (`--drain-timeout`), and a second
/// one closes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_each_connection_is_one_line_and_ctrl_c_twice_closes_at_once() {
    deadline(async {
        let srv = server_with_echo(|_| {}).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = as_user(&srv, &id, home.path());
        cmd.args(["proxy", "app", "echo", "--drain-timeout", "2m"]);
        let mut p = Proxy::start(cmd).await;
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        let local = s.local_addr().unwrap();
        s.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        s.shutdown().await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 0);
        drop(s);
        let line = p.wait_line(&format!("connection from {local} closed after ")).await;
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.ends_with("s: 5 bytes up, 5 bytes down"), "{line}");
        // One connection stays open over Ctrl-C.
        let mut open = TcpStream::connect(p.addr).await.unwrap();
        open.write_all(b"x").await.unwrap();
        open.read_exact(&mut buf[..1]).await.unwrap();
        p.signal("-INT");
        p.wait_line("Stopping: waiting up to 2m for 1 open connection to finish; press Ctrl-C again to close it now.")
            .await;
        let started = tokio::time::Instant::now();
        p.signal("-INT");
        assert!(p.exit_within(Duration::from_secs(20)).await.success());
        assert!(started.elapsed() < Duration::from_secs(10), "the second Ctrl-C must not wait for the grace");
        assert!(p.stderr().iter().any(|l| l == "Closing 1 open connection now."), "{:?}", p.stderr());
        assert_eq!(open.read(&mut buf).await.unwrap_or(0), 0, "the open connection is closed");
        srv.stop().await;
    })
    .await;
}

/// `--quiet`: traffic and Ctrl-C without open connections print nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_prints_nothing() {
    deadline(async {
        let srv = server_with_echo(|_| {}).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = as_user(&srv, &id, home.path());
        cmd.args(["proxy", "app", "echo", "--quiet"]);
        let mut p = Proxy::start(cmd).await;
        for _ in 0..3 {
            let mut s = TcpStream::connect(p.addr).await.unwrap();
            s.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
        }
        // Ctrl-C with none open (with one open it would say what the drain waits for).
        let pid = p.child.id().unwrap();
        poll_until(Duration::from_secs(30), "the proxy to close the connections", || async {
            (accepted_sockets(pid, p.addr.port()) == 0).then_some(())
        })
        .await;
        p.signal("-INT");
        assert!(p.exit_within(Duration::from_secs(20)).await.success());
        assert_eq!(p.stderr(), Vec::<String>::new());
        srv.stop().await;
    })
    .await;
}

/// A tmux session running `script`, `cols` wide.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(dir: &Path, script: &str) -> Tmux {
        let socket = dir.join("tmux.sock");
        let path = dir.join("run.sh");
        std::fs::write(&path, script).unwrap();
        let ok = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "live", "-x", "220", "-y", "40", "sh"])
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session");
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["capture-pane", "-p", "-t", "live"])
            .output()
            .unwrap();
        text(&out.stdout)
    }

    async fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let end = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if f(&screen) {
                return screen;
            }
            assert!(tokio::time::Instant::now() < end, "timed out waiting for {what}; screen:\n{screen}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn ctrl_c(&self) {
        let ok = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["send-keys", "-t", "live", "C-c"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux send-keys");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").status();
    }
}

/// In a terminal: one status line with the counts, bytes, identity time left and
/// the path and the last error, updated as curl runs; Ctrl-C says what the drain waits for; a second
/// Ctrl-C closes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_terminal_a_status_line_counts_connections_and_bytes() {
    if !have("tmux") || !have("curl") {
        return;
    }
    deadline(async {
        let backend = http_backend().await;
        let srv = TestServer::start(|c| c.apps.push(http_app("web", backend))).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let script = proxy_app_script(home.path(), &srv, &id, "web", port);
        let tmux = Tmux::start(home.path(), &script);
        tmux.wait_for("the status line", |s| s.contains("0 open / 0 total | up 0 B | down 0 B | identity 59m ")).await;
        let url = format!("http://127.0.0.1:{port}/");
        for _ in 0..2 {
            let (body, code) = curl(&url).await;
            assert_eq!((body.as_str(), code.as_str()), ("ok\n", "200"));
        }
        let screen = tmux.wait_for("2 total", |s| s.contains("0 open / 2 total | up ")).await;
        assert!(!screen.contains("down 0 B"), "bytes came back: {screen}");
        assert!(screen.contains(" | direct"), "{screen}");
        // A refused request (a DNS-rebinding page) is the last error.
        let out = Command::new("curl").args(["-sS", "-H", "Host: attacker.example", &url]).output().await.unwrap();
        assert!(text(&out.stdout).contains("refused to stop DNS rebinding"), "{}", text(&out.stdout));
        let screen = tmux.wait_for("the last error", |s| s.contains("0 open / 3 total | up ")).await;
        let line = screen.lines().find(|l| l.contains("0 open / 3 total")).unwrap();
        // An HTTP app's connections ride its `teleport-http-mux` session.
        assert!(line.contains(" | direct, multiplexed | last error "), "{line}");
        assert!(line.contains(": app web: request refused: Host \"attacker.example\" is a domain name"), "{line}");
        // A fourth connection, held open.
        let held = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tmux.wait_for("1 open / 4 total", |s| s.contains("1 open / 4 total | up ")).await;
        tmux.ctrl_c();
        tmux.wait_for("the drain sentence", |s| {
            s.contains(
                "Stopping: waiting up to 10s for 1 open connection to finish; press Ctrl-C again to close it now.",
            )
        })
        .await;
        let started = tokio::time::Instant::now();
        tmux.ctrl_c();
        let screen = tmux.wait_for("the exit", |s| s.contains("EXITED 0")).await;
        assert!(started.elapsed() < Duration::from_secs(8), "the second Ctrl-C closes at once");
        assert!(screen.contains("Closing 1 open connection now."), "{screen}");
        drop(held);
        srv.stop().await;
    })
    .await;
}

/// The shell script a tmux test runs: `proxy app APP` on `port` in a clean
/// environment (Ctrl-C reaches oneport, not the shell), then its exit status.
fn proxy_app_script(home: &Path, srv: &TestServer, id: &Path, app: &str, port: u16) -> String {
    format!(
        "trap 'true' INT\nenv -i PATH=\"$PATH\" TERM=\"$TERM\" ONEPORT_HOME={home} NO_COLOR=1 {bin} --proxy {proxy} --identity {id} \
         proxy app {app} --port {port}\necho \"EXITED $?\"\nsleep 600\n",
        home = home.display(),
        bin = env!("CARGO_BIN_EXE_oneport"),
        proxy = srv.addr,
        id = id.display(),
    )
}

/// A TCP app's status line says its connections ride one multiplexed session (the
/// session is opened at start, so it shows before the first connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_terminal_a_tcp_app_shows_its_multiplexed_session() {
    if !have("tmux") {
        return;
    }
    deadline(async {
        let (echo, _) = spawn_echo().await;
        let srv = TestServer::start(|c| c.apps.push(tcp_app("echo", echo, &["alice"]))).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let script = proxy_app_script(home.path(), &srv, &id, "echo", port);
        let tmux = Tmux::start(home.path(), &script);
        tmux.wait_for("the multiplexed session", |s| {
            s.contains("0 open / 0 total | up 0 B | down 0 B | identity 59m ")
        })
        .await;
        let screen = tmux.wait_for("the session mode", |s| s.contains(" | direct, multiplexed")).await;
        assert!(!screen.contains("not multiplexed"), "{screen}");
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ping");
        drop(s);
        tmux.wait_for("1 total", |s| {
            s.contains("0 open / 1 total | up 4 B | down 4 B") && s.contains("direct, multiplexed")
        })
        .await;
        tmux.ctrl_c();
        tmux.wait_for("the exit", |s| s.contains("EXITED 0")).await;
        srv.stop().await;
    })
    .await;
}

/// An identity that expires while `proxy app` runs: a warning before; after it,
/// curl gets 401 with the sentence (not an empty reply).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_identity_gets_a_warning_then_a_401_page_for_curl() {
    if !have("curl") {
        return;
    }
    deadline(async {
        let backend = http_backend().await;
        let srv = TestServer::start(|c| c.apps.push(http_app("web", backend))).await;
        let id = short_identity(&srv, Duration::from_secs(12));
        let home = tempfile::tempdir().unwrap();
        let mut cmd = as_user(&srv, &id, home.path());
        cmd.args(["proxy", "app", "web"]);
        let mut p = Proxy::start(cmd).await;
        let url = format!("http://{}/", p.addr);
        assert_eq!(curl(&url).await, ("ok\n".to_string(), "200".to_string()));
        let warning = p.wait_line("WARNING: the identity for alice expires at ").await;
        assert!(
            warning.ends_with("; after that new connections are refused: get a new one and run `oneport login`"),
            "{warning}"
        );
        let (body, code) = poll_until(Duration::from_secs(30), "the 401 after expiry", || async {
            let r = curl(&url).await;
            (r.1 != "200").then_some(r)
        })
        .await;
        assert_eq!(code, "401");
        assert!(body.starts_with("oneport: the identity for alice expired at "), "{body}");
        assert!(body.ends_with(" ago): get a new one and run `oneport login`\n"), "{body}");
        assert!(!body.contains("https://"), "{body}");
        p.signal("-INT");
        assert!(p.exit_within(Duration::from_secs(20)).await.success());
        srv.stop().await;
    })
    .await;
}

/// An identity that expires while `proxy db` runs: psql prints the sentence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_identity_is_told_to_psql() {
    if !have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let addr = pg.addr().to_string();
        let srv = TestServer::start(|c| {
            c.databases.push(common::realdb::db("pg1", DbProtocol::Postgres, &addr, &["alice"]));
        })
        .await;
        let id = short_identity(&srv, Duration::from_secs(8));
        let home = tempfile::tempdir().unwrap();
        let mut cmd = as_user(&srv, &id, home.path());
        cmd.args(["proxy", "db", "pg1", "--db-user", "postgres"]);
        let mut p = Proxy::start(cmd).await;
        let mut q = psql(p.addr, "postgres");
        q.args(["-c", "select 40 + 2"]);
        let out = q.output().await.unwrap();
        assert_eq!(text(&out.stdout).trim(), "42", "{}", text(&out.stderr));
        let stderr = poll_until(Duration::from_secs(30), "psql to be refused", || async {
            let mut q = psql(p.addr, "postgres");
            q.args(["-c", "select 1"]);
            let out = q.output().await.unwrap();
            (!out.status.success()).then(|| text(&out.stderr))
        })
        .await;
        assert!(stderr.contains("FATAL:  the identity for alice expired at "), "{stderr}");
        assert!(stderr.contains(" ago): get a new one and run `oneport login`"), "{stderr}");
        assert!(!stderr.contains("https://"), "{stderr}");
        p.signal("-INT");
        assert!(p.exit_within(Duration::from_secs(20)).await.success());
        srv.stop().await;
    })
    .await;
}

/// An identity revoked while `proxy db` runs: psql prints the revocation's sentence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_identity_is_told_to_psql() {
    if !have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let addr = pg.addr().to_string();
        let srv = TestServer::start(|c| {
            c.state_refresh = Duration::from_secs(1);
            c.databases.push(common::realdb::db("pg1", DbProtocol::Postgres, &addr, &["alice"]));
        })
        .await;
        let home = tempfile::tempdir().unwrap();
        let serial = log_in_alice(&srv, home.path()).await;
        let mut cmd = oneport(home.path());
        cmd.args(["proxy", "db", "pg1", "--db-user", "postgres"]);
        let mut p = Proxy::start(cmd).await;
        let mut q = psql(p.addr, "postgres");
        q.args(["-c", "select 40 + 2"]);
        let out = q.output().await.unwrap();
        assert_eq!(text(&out.stdout).trim(), "42", "{}", text(&out.stderr));
        let sentence = revoke(&srv, home.path(), &serial).await;
        let stderr = poll_until(Duration::from_secs(20), "psql to be refused", || async {
            let mut q = psql(p.addr, "postgres");
            q.args(["-c", "select 1"]);
            let out = q.output().await.unwrap();
            (!out.status.success()).then(|| text(&out.stderr))
        })
        .await;
        assert!(stderr.contains(&format!("FATAL:  {sentence}")), "{stderr}");
        p.signal("-INT");
        assert!(p.exit_within(Duration::from_secs(20)).await.success());
        srv.stop().await;
    })
    .await;
}

/// `db connect` says nothing of its own local proxy when the client exits normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_connect_is_silent_on_a_normal_exit() {
    if !have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let addr = pg.addr().to_string();
        let srv = TestServer::start(|c| {
            c.databases.push(common::realdb::db("pg1", DbProtocol::Postgres, &addr, &["alice"]));
        })
        .await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        for _ in 0..3 {
            let mut cmd = as_user(&srv, &id, home.path());
            cmd.args(["db", "connect", "pg1", "--db-user", "postgres", "--db-name", "postgres", "--"]);
            cmd.args(["-X", "-A", "-t", "-c", "select 6 * 7"]);
            let out = common::realdb::output(cmd).await;
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert_eq!(text(&out.stdout).trim(), "42");
            assert_eq!(text(&out.stderr), "", "nothing but the client's own output");
        }
        srv.stop().await;
    })
    .await;
}

/// An identity that expires while `proxy db` runs for MariaDB: the mysql client
/// prints the sentence as an access-denied error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_identity_is_told_to_mysql() {
    if !common::realdb::have_mariadb() {
        return;
    }
    deadline(async {
        let db = common::realdb::Mariadb::start().await;
        let addr = db.addr().to_string();
        let srv = TestServer::start(|c| {
            c.databases.push(common::realdb::db("my1", DbProtocol::Mysql, &addr, &["alice"]));
        })
        .await;
        let id = short_identity(&srv, Duration::from_secs(8));
        let home = tempfile::tempdir().unwrap();
        let mut cmd = as_user(&srv, &id, home.path());
        cmd.args(["proxy", "db", "my1"]);
        let mut p = Proxy::start(cmd).await;
        let out = common::realdb::mysql(p.addr, "root").args(["-e", "select 40 + 2"]).output().await.unwrap();
        assert_eq!(text(&out.stdout).trim(), "42", "{}", text(&out.stderr));
        let stderr = poll_until(Duration::from_secs(30), "mysql to be refused", || async {
            let out = common::realdb::mysql(p.addr, "root").args(["-e", "select 1"]).output().await.unwrap();
            (!out.status.success()).then(|| text(&out.stderr))
        })
        .await;
        assert!(stderr.contains("ERROR 1045 (28000): the identity for alice expired at "), "{stderr}");
        assert!(stderr.contains(" ago): get a new one and run `oneport login`"), "{stderr}");
        p.signal("-INT");
        assert!(p.exit_within(Duration::from_secs(20)).await.success());
        srv.stop().await;
    })
    .await;
}
