//! Faults on a running path, with the real binaries: the routing server restarted
//! under an open session, the backend going away and coming back, the load
//! balancer restarted. In each case the open session ends with an error that says
//! what broke (never a hang), new connections fail fast and say why while the
//! fault lasts, and the same running local proxy serves new connections again once
//! it is over, without being restarted.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::lb::{self, LbPki, NginxMode};
use common::realdb::{self, have_postgres, psql, Postgres};
use common::*;
use oneport::server::{setup, Config};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// How long a fault's effect may take to show (an error, a recovery).
const SHOWS_WITHIN: Duration = Duration::from_secs(30);

/// `oneport server start` (the binary) on a port of its own, restartable on it.
struct BinServer {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl BinServer {
    async fn start(edit: impl FnOnce(&mut Config)) -> BinServer {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let o = setup::InitOptions {
            public_addr: oneport::util::addr::HostPort::parse(&addr.to_string()).unwrap(),
            cluster_name: Some("faults".into()),
            listen: addr.to_string(),
            extra_names: vec![],
            force: false,
        };
        let config = setup::init(dir.path(), &o).unwrap();
        let mut cfg = Config::load(&config).unwrap();
        // Short drain, so a restart does not wait for the default 10 s.
        cfg.shutdown_grace = Duration::from_secs(1);
        edit(&mut cfg);
        cfg.validate().unwrap();
        std::fs::write(&config, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
        let log = dir.path().join("server.log");
        let mut s = BinServer { dir, addr, config, log, child: None };
        s.run().await;
        s
    }

    /// Starts the binary on the config (again), appending to the log.
    async fn run(&mut self) {
        let home = self.dir.path().join("home");
        let err = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut cmd = oneport(&home);
        cmd.args(["server", "start", "--config"]).arg(&self.config).stdout(Stdio::null()).stderr(err);
        cmd.env("RUST_LOG", "oneport=info");
        self.child = Some(cmd.spawn().expect("start oneport server"));
        wait_port(self.addr, SHOWS_WITHIN).await;
    }

    /// SIGTERM (what a service manager sends), and waits for the exit.
    async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id().unwrap().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status().await;
        let status = tokio::time::timeout(SHOWS_WITHIN, child.wait()).await.expect("server ignored SIGTERM").unwrap();
        assert!(status.success(), "server exited with {status} on SIGTERM; log:\n{}", self.log_text());
    }

    fn identity(&self, user: &str) -> PathBuf {
        let out = self.dir.path().join(format!("{user}.pem"));
        setup::issue(self.dir.path(), user, &[], Duration::from_secs(3600), &out).unwrap();
        out
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A running `oneport proxy app` whose stderr goes to a file (the user's terminal).
struct LocalProxy {
    _child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _home: tempfile::TempDir,
}

impl LocalProxy {
    async fn start(proxy: &str, id: &Path, app: &str, env: &[(&str, &str)]) -> LocalProxy {
        let home = tempfile::tempdir().unwrap();
        let log = home.path().join("proxy-app.log");
        let err = std::fs::File::create(&log).unwrap();
        let mut cmd = oneport(home.path());
        cmd.args(["--proxy", proxy, "--identity"]).arg(id).args(["proxy", "app", app]).envs(env.iter().copied());
        cmd.stdout(Stdio::piped()).stderr(err);
        let mut child = cmd.spawn().expect("start proxy app");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(SHOWS_WITHIN, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(a) = find_loopback_addr(&line) {
                    return a;
                }
            }
            panic!("proxy app exited; stderr: {}", std::fs::read_to_string(&log).unwrap_or_default());
        })
        .await
        .expect("proxy app printed no address");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        LocalProxy { _child: child, addr, log, _home: home }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the proxy's stderr has a line containing every one of `parts`.
    async fn logged(&self, parts: &[&str]) -> String {
        let found = tokio::time::timeout(SHOWS_WITHIN, async {
            loop {
                let text = self.log_text();
                if let Some(l) = text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                    return l.to_string();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let line =
            found.unwrap_or_else(|_| panic!("proxy app never logged {parts:?}; its stderr:\n{}", self.log_text()));
        eprintln!("proxy app logged: {line}");
        line
    }
}

/// One echo round trip of `msg` through `addr`; `Err` says how it failed.
async fn round_trip(addr: SocketAddr, msg: &[u8]) -> Result<(), String> {
    tokio::time::timeout(SHOWS_WITHIN, async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        s.write_all(msg).await.map_err(|e| format!("write: {e}"))?;
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await.map_err(|e| format!("read: {e}"))?;
        if back != msg {
            return Err(format!("echoed {back:?}"));
        }
        Ok(())
    })
    .await
    .map_err(|_| "no echo within the deadline (a hang)".to_string())?
}

/// Polls round trips until one succeeds.
async fn recovers(addr: SocketAddr, what: &str) {
    poll_until(SHOWS_WITHIN, what, || async move { round_trip(addr, b"again").await.ok() }).await
}

/// A session that is open: `read` must end (EOF or error), never hang.
async fn session_ends(s: &mut TcpStream) -> String {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(SHOWS_WITHIN, s.read(&mut buf)).await {
        Ok(Ok(0)) => "closed".into(),
        Ok(Ok(n)) => panic!("the session received {n} bytes after its server went away"),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => panic!("the open session hung after its server went away"),
    }
}

/// The server is restarted (SIGTERM, start again on the same port) while a
/// session is open: the session ends and `proxy app` says the tunnel broke; while
/// the server is down a new connection fails at once and the log says the proxy
/// cannot be reached; afterwards the same `proxy app` carries new connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_ends_the_session_clearly_and_the_same_proxy_app_recovers() {
    deadline(async {
        let (echo, _) = spawn_echo().await;
        let mut srv = BinServer::start(|c| c.apps.push(tcp_app("echo", echo, &["alice"]))).await;
        let id = srv.identity("alice");
        let app = LocalProxy::start(&srv.addr.to_string(), &id, "echo", &[]).await;

        let mut session = TcpStream::connect(app.addr).await.unwrap();
        session.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        session.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");

        srv.stop().await;
        let how = session_ends(&mut session).await;
        let line = app.logged(&["app echo", "ended"]).await;
        assert!(
            line.contains("ERROR") && line.contains(&format!("connection to {} was cut without a TLS close", srv.addr)),
            "the broken session's line does not say what happened: {line} (session: {how})"
        );
        assert!(!line.contains("https://"), "a library's URL in the user's message: {line}");

        // Down: a new connection is closed promptly, and the log says why.
        let err = round_trip(app.addr, b"down").await.unwrap_err();
        assert!(!err.contains("hang"), "{err}");
        let line = app.logged(&["cannot connect to", &srv.addr.to_string()]).await;
        assert!(line.contains("Connection refused") || line.contains("refused"), "{line}");

        srv.run().await;
        recovers(app.addr, "a new connection through the same proxy app after the server restart").await;
        // And a bulk transfer, checked by hash, on the recovered path.
        let payload = std::sync::Arc::new(random_bytes(4 << 20, 3));
        let back = send_and_collect(TcpStream::connect(app.addr).await.unwrap(), payload.clone()).await;
        assert_eq!(sha256(&back), sha256(&payload));
        srv.stop().await;
    })
    .await;
}

/// A restartable TCP echo backend on a fixed port.
struct Backend {
    addr: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Backend {
    async fn start(addr: SocketAddr) -> Backend {
        let l = TcpListener::bind(addr).await.unwrap();
        let task = tokio::spawn(async move {
            let mut open = tokio::task::JoinSet::new();
            while let Ok((mut s, _)) = l.accept().await {
                open.spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        Backend { addr, task: Some(task) }
    }

    /// Stops listening and drops every open connection (aborting the JoinSet).
    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

/// The TCP backend goes away under an open session and comes back: the session
/// ends (no hang), a new connection while it is down is closed and the server's
/// log names the resource and the refusal, and once it listens again the same
/// `proxy app` carries new connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_backend_down_and_back() {
    deadline(async {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut backend = Backend::start(addr).await;
        let srv = BinServer::start(|c| c.apps.push(tcp_app("echo", addr, &["alice"]))).await;
        let id = srv.identity("alice");
        let app = LocalProxy::start(&srv.addr.to_string(), &id, "echo", &[]).await;
        round_trip(app.addr, b"up").await.unwrap();

        let mut session = TcpStream::connect(app.addr).await.unwrap();
        session.write_all(b"x").await.unwrap();
        session.read_exact(&mut [0u8; 1]).await.unwrap();
        backend.stop().await;
        session_ends(&mut session).await;

        let err = round_trip(app.addr, b"down").await.unwrap_err();
        assert!(!err.contains("hang"), "{err}");
        poll_until(SHOWS_WITHIN, "the server to log the unreachable backend", || async {
            let log = srv.log_text();
            log.lines().any(|l| l.contains("backend unreachable") && l.contains("resource=echo")).then_some(())
        })
        .await;
        assert!(srv.log_text().contains("Connection refused"), "{}", srv.log_text());

        let _backend = Backend::start(backend.addr).await;
        recovers(app.addr, "a new connection after the backend came back").await;
    })
    .await;
}

fn pg_ctl(pg: &Postgres, action: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("runuser");
    c.args(["-u", "postgres", "--", &format!("{}/pg_ctl", realdb::PG_BIN), "-D"])
        .arg(pg.dir.path().join("data"))
        .args(action)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

/// PostgreSQL stopped and started again behind `proxy db`: psql through the same
/// running `proxy db` gets the server's sentence (FATAL, the database named,
/// "unreachable", the cause) while it is down, and its query answered once it is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_and_back_through_the_same_proxy_db() {
    if !have_postgres() {
        return;
    }
    deadline(async {
        let pg = Postgres::start().await;
        let pg_addr = pg.addr();
        let srv = BinServer::start(|c| {
            c.databases.push(realdb::db(
                "pg1",
                oneport::server::config::DbProtocol::Postgres,
                &pg_addr.to_string(),
                &["alice"],
            ))
        })
        .await;
        let id = srv.identity("alice");
        let home = tempfile::tempdir().unwrap();
        let mut cmd = oneport(home.path());
        cmd.args(["--proxy", &srv.addr.to_string(), "--identity"]).arg(&id).args([
            "proxy",
            "db",
            "pg1",
            "--db-user",
            "postgres",
        ]);
        let proxy = realdb::start_proxy_db(cmd).await.unwrap();
        let query = || async {
            let out = realdb::output({
                let mut c = psql(proxy.addr, "postgres");
                c.args(["-c", "select 40 + 2"]);
                c
            })
            .await;
            (out.status.success(), realdb::text(&out.stdout).trim().to_string(), realdb::text(&out.stderr))
        };
        assert_eq!(query().await.1, "42");

        let stopped = pg_ctl(&pg, &["-m", "fast", "-w", "stop"]).status().unwrap();
        assert!(stopped.success());
        let (ok, _, err) = query().await;
        assert!(!ok, "psql succeeded with PostgreSQL stopped");
        assert!(
            err.contains("FATAL") && err.contains("database pg1 is unreachable from proxy") && err.contains("refused"),
            "psql's error while the database is down: {err}"
        );

        let opts = format!("-k {} -c listen_addresses=127.0.0.1 -c fsync=off -p {}", pg.dir.path().display(), pg.port);
        let log = pg.dir.path().join("log");
        let started =
            pg_ctl(&pg, &["-w", "-t", "60", "-o", &opts, "-l", &log.display().to_string(), "start"]).status().unwrap();
        assert!(
            started.success(),
            "PostgreSQL did not start again: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let (ok, out, err) = query().await;
        assert!(ok && out == "42", "after PostgreSQL came back: {out} {err}");
        drop(proxy);
    })
    .await;
}

/// nginx in front of the server is restarted while `proxy app` (upgrading through
/// it, as it found out by itself) has a session open: the session ends, a new
/// connection while nginx is down fails and the log names the load balancer's
/// address, and after the restart the same `proxy app` goes through nginx again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_restart_and_the_same_proxy_app_recovers() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        let (echo, _) = spawn_echo().await;
        let srv = BinServer::start(|c| c.apps.push(tcp_app("echo", echo, &["alice"]))).await;
        let id = srv.identity("alice");
        let pki = LbPki::new();
        let mut nginx = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, false, Duration::from_secs(60)).await;
        let ca = pki.ca.display().to_string();
        let app = LocalProxy::start(&nginx.addr.to_string(), &id, "echo", &[("SSL_CERT_FILE", ca.as_str())]).await;
        round_trip(app.addr, b"through nginx").await.unwrap();
        assert!(srv.log_text().contains("connection upgraded"), "the first dial did not upgrade: {}", srv.log_text());

        let mut session = TcpStream::connect(app.addr).await.unwrap();
        session.write_all(b"x").await.unwrap();
        session.read_exact(&mut [0u8; 1]).await.unwrap();
        nginx.kill().await;
        session_ends(&mut session).await;

        let err = round_trip(app.addr, b"down").await.unwrap_err();
        assert!(!err.contains("hang"), "{err}");
        app.logged(&["cannot connect to", &nginx.addr.to_string()]).await;

        nginx.restart_nginx().await;
        recovers(app.addr, "a new connection through the same proxy app after nginx restarted").await;
        let upgraded = srv.log_text().matches("connection upgraded").count();
        assert!(upgraded >= 2, "the recovered connection did not go through nginx's upgrade: {}", srv.log_text());
    })
    .await;
}
