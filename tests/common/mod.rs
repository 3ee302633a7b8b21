//! Shared test harness: a routing server on loopback with a throwaway CA, identities,
//! scripted backends, the `oneport` binary with a private home, and helpers that poll
//! with deadlines (never fixed sleeps or fixed ports).
#![allow(dead_code, unreachable_pub)]

pub mod fixture;
pub mod kube_api;
pub mod ports;
pub mod realdb;
pub mod sshd;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oneport::client::context::{Context, Overrides};
use oneport::client::dial::Dialer;
use oneport::server::config::{Allow, App, AppKind};
use oneport::server::{self, setup, Config};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod lb;

pub use ports::{free_port, loopback_listener};

/// Every test body runs under this deadline so a hang fails fast.
pub const TEST_DEADLINE: Duration = Duration::from_secs(240);

/// Runs `fut` under [`TEST_DEADLINE`].
pub async fn deadline<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_DEADLINE, fut).await.expect("test exceeded its deadline")
}

/// Timings of an idle-survival test: the load balancer cuts streams idle for `lb`,
/// the server pings every `pings`, and the test idles for `window` (three cut-offs)
/// between two round trips. Each such test has a negative control with pings off
/// ([`NO_PINGS`]) that must see the cut, so survival is the pings' doing.
#[derive(Debug, Clone, Copy)]
pub struct IdleTimings {
    pub lb: Duration,
    pub pings: Duration,
    pub window: Duration,
}

/// Sub-second timings (nginx and HAProxy accept them): a 1 s cut-off, pings every
/// 300 ms (3.3 per cut-off), 3 s idle. As strong as [`REAL_IDLE`], five times faster.
pub const FAST_IDLE: IdleTimings =
    IdleTimings { lb: Duration::from_secs(1), pings: Duration::from_millis(300), window: Duration::from_secs(3) };

/// Timings a deployment would use: a 5 s cut-off, 2 s pings, 15 s idle (one test per
/// load balancer path keeps them, in case something only breaks at real values).
pub const REAL_IDLE: IdleTimings =
    IdleTimings { lb: Duration::from_secs(5), pings: Duration::from_secs(2), window: Duration::from_secs(15) };

/// `ping_interval: 0`: the server sends no pings (negative controls).
pub const NO_PINGS: Duration = Duration::ZERO;

/// Logs for tests: `RUST_LOG=oneport=debug cargo test` shows the server's view.
pub fn trace_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()))
        .with_test_writer()
        .try_init();
}

/// A routing server on 127.0.0.1 with its own CA in a temporary directory.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub config: Config,
    pub config_path: PathBuf,
    shutdown: CancellationToken,
    task: Option<JoinHandle<oneport::Result<()>>>,
    server: Arc<server::Server>,
}

impl TestServer {
    /// Starts a server whose config `edit` fills in (resources, timeouts).
    pub async fn start(edit: impl FnOnce(&mut Config)) -> TestServer {
        trace_init();
        let dir = tempfile::tempdir().unwrap();
        let listener = loopback_listener().await;
        let addr = listener.local_addr().unwrap();
        let o = setup::InitOptions {
            public_addr: oneport::util::addr::HostPort::parse(&addr.to_string()).unwrap(),
            cluster_name: Some("test".into()),
            listen: addr.to_string(),
            extra_names: vec![],
            force: false,
        };
        let config_path = setup::init(dir.path(), &o).unwrap();
        let mut config = Config::load(&config_path).unwrap();
        edit(&mut config);
        config.validate().unwrap();
        // Keep the file in step with what runs, for tests that start the binary on it.
        std::fs::write(&config_path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
        let srv = server::Server::new(config.clone()).unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server::run(listener, srv.clone(), shutdown.clone()));
        TestServer { dir, addr, config, config_path, shutdown, task: Some(task), server: srv }
    }

    /// Free places for connections without an identity (`max_unauthenticated`).
    pub fn pre_auth_available(&self) -> usize {
        self.server.pre_auth.available_permits()
    }

    /// Issues an identity file for `user` in `groups`.
    pub fn identity(&self, user: &str, groups: &[&str]) -> PathBuf {
        let out = self.dir.path().join(format!("{user}-{}.pem", groups.join("_")));
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        setup::issue(self.dir.path(), user, &groups, Duration::from_secs(3600), &out).unwrap();
        out
    }

    /// The CA file of this server.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join(setup::files::CA)
    }

    /// A client context for `identity`.
    pub fn context(&self, identity: &Path) -> Context {
        let over = Overrides {
            proxy: Some(self.addr.to_string()),
            identity: Some(identity.to_path_buf()),
            ca: None,
            insecure: false,
        };
        Context::build(&over, None).unwrap()
    }

    /// A dialer for `identity`.
    pub fn dialer(&self, identity: &Path) -> Dialer {
        Dialer::new(self.context(identity))
    }

    /// Stops the server and waits for it (exercising graceful shutdown).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t).await.expect("server did not stop").unwrap().unwrap();
        }
    }
}

/// A TCP echo backend; the counter says how many connections it accepted.
pub async fn spawn_echo() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = loopback_listener().await;
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, count)
}

/// A TCP app entry for the server's config: `name` routed to `addr`, for `users`.
pub fn tcp_app(name: &str, addr: SocketAddr, users: &[&str]) -> App {
    App {
        name: name.into(),
        kind: AppKind::Tcp,
        addr: addr.to_string(),
        allow: Allow { users: users.iter().map(|s| s.to_string()).collect(), groups: vec![] },
    }
}

/// The echo-app set-up: a server routing TCP app `echo` (for alice) to a fresh
/// [`spawn_echo`] backend, and how many connections the backend accepted; `edit`
/// says what else differs.
pub async fn echo_server(edit: impl FnOnce(&mut Config)) -> (TestServer, Arc<AtomicUsize>) {
    let (echo, accepted) = spawn_echo().await;
    let srv = TestServer::start(|c| {
        c.apps.push(tcp_app("echo", echo, &["alice"]));
        edit(c);
    })
    .await;
    (srv, accepted)
}

/// [`echo_server`] without the counter.
pub async fn server_with_echo(edit: impl FnOnce(&mut Config)) -> TestServer {
    echo_server(edit).await.0
}

/// Variables a scrubbed environment keeps from the test's own (when set): how to
/// find programs, where temporary files go, and what to log.
const KEPT_ENV: [&str; 4] = ["PATH", "TMPDIR", "RUST_LOG", "RUST_BACKTRACE"];

/// `program` in a scrubbed environment: nothing of the caller's but [`KEPT_ENV`]
/// (no ONEPORT_*, HTTPS_PROXY, SSL_CERT_FILE, KUBECONFIG, HOME ...), `ONEPORT_HOME`
/// = `home` (a temporary directory), NO_COLOR=1, stdin from /dev/null, killed when
/// dropped. Tests add only what differs.
pub fn scrubbed(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear();
    for var in KEPT_ENV {
        if let Some(v) = std::env::var_os(var) {
            c.env(var, v);
        }
    }
    c.env("ONEPORT_HOME", home).env("NO_COLOR", "1").stdin(Stdio::null()).kill_on_drop(true);
    c
}

/// The `oneport` binary in a [`scrubbed`] environment with `ONEPORT_HOME` = `home`.
pub fn oneport(home: &Path) -> Command {
    scrubbed(env!("CARGO_BIN_EXE_oneport"), home)
}

/// A running `oneport` that printed a loopback address on stdout.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdout: Vec<String>,
}

/// Starts `cmd` and waits (up to 60 s) for a stdout line with `127.0.0.1:PORT`.
pub async fn start_and_wait_addr(mut cmd: Command) -> Running {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    wait_addr(cmd.spawn().expect("start oneport")).await
}

/// The same with stderr collected: the running process and its stderr lines.
pub async fn start_and_wait_addr_logged(mut cmd: Command) -> (Running, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start oneport");
    let lines = collect_lines(child.stderr.take().unwrap());
    (wait_addr(child).await, lines)
}

/// Waits (up to 60 s) for `child` to print a line with `127.0.0.1:PORT` on stdout.
async fn wait_addr(mut child: Child) -> Running {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if let Some(a) = find_loopback_addr(&line) {
                return a;
            }
        }
        panic!("oneport exited without printing an address; stdout: {seen:?}");
    })
    .await
    .expect("no address printed within 60s");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running { child, addr, stdout: seen }
}

/// Finds `127.0.0.1:PORT` in a line.
pub fn find_loopback_addr(line: &str) -> Option<SocketAddr> {
    let at = line.find("127.0.0.1:")?;
    let rest = &line[at + "127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    format!("127.0.0.1:{digits}").parse().ok()
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `limit`.
pub async fn poll_until<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > end {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until something accepts TCP on `addr`.
pub async fn wait_port(addr: SocketAddr, limit: Duration) {
    poll_until(limit, &format!("{addr} to accept"), || async move { TcpStream::connect(addr).await.ok().map(|_| ()) })
        .await
}

/// The variable that lets a run skip tests whose program is missing.
pub const ALLOW_SKIP: &str = "ONEPORT_TEST_ALLOW_SKIP";

/// Tests of this process that skipped (only with [`ALLOW_SKIP`]).
static SKIPPED: AtomicUsize = AtomicUsize::new(0);

/// Whether an external program is installed. A missing one FAILS the test (the
/// panic names the test and the program) unless the run sets
/// `ONEPORT_TEST_ALLOW_SKIP=1`; then the caller skips, and the skip is written to
/// stderr past the test harness's capture with the test name, the program and the
/// count so far, so a skipping run never looks like a full one. The rule is the same
/// on CI and on a laptop.
pub fn have(program: &str) -> bool {
    if which(program).is_some() {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("(unnamed test)").to_string();
    if std::env::var(ALLOW_SKIP).as_deref() != Ok("1") {
        panic!(
            "{test}: {program} is not installed, so this test cannot run. scripts/install-deps \
             installs every program the tests drive; {ALLOW_SKIP}=1 skips such tests instead"
        );
    }
    let n = SKIPPED.fetch_add(1, Ordering::SeqCst) + 1;
    // Straight to the stream: `eprintln!` output of a passing test is captured.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED ({n} in this test binary): {test}: {program} is not installed ({ALLOW_SKIP}=1)"
    );
    false
}

/// Finds a program on PATH (or by absolute path).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).exists().then(|| PathBuf::from(program));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// Deterministic pseudo-random bytes (xorshift), fast enough for 64 MiB.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Hex SHA-256.
pub fn sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Sends `payload` on `stream` while reading everything back; returns what came back.
pub async fn send_and_collect<S>(stream: S, payload: Arc<Vec<u8>>) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    writer.await.unwrap();
    back
}

/// Sends SIGTERM and waits for a clean exit (status 0) within 20 s.
pub async fn stop_with_sigterm(child: &mut tokio::process::Child) {
    send_signal(child.id().unwrap(), "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("no exit").unwrap();
    assert!(status.success(), "{status:?}");
}

/// Sends `sig` (`-HUP`, `-TERM`) via the `kill` program.
pub fn send_signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill {sig} {pid}");
}

/// Collects a child's stderr lines as they come.
pub fn collect_lines(stderr: tokio::process::ChildStderr) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use tokio::io::AsyncBufReadExt;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = lines.clone();
    tokio::spawn(async move {
        let mut r = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = r.next_line().await {
            l.lock().unwrap().push(line);
        }
    });
    lines
}

/// Waits until a collected line contains `needle`; returns it.
pub async fn wait_line(lines: &std::sync::Arc<std::sync::Mutex<Vec<String>>>, needle: &str) -> String {
    poll_until(Duration::from_secs(30), needle, || async move {
        lines.lock().unwrap().iter().find(|l| l.contains(needle)).cloned()
    })
    .await
}

/// A second server config on a free port, written beside the test server's.
pub fn second_config(
    srv: &TestServer,
    name: &str,
    edit: impl FnOnce(&mut oneport::server::Config),
) -> (std::path::PathBuf, u16) {
    let mut cfg = srv.config.clone();
    let port = free_port();
    cfg.listen = format!("127.0.0.1:{port}");
    edit(&mut cfg);
    let path = srv.dir.path().join(name);
    std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
    (path, port)
}

/// A TCP forwarder in front of `to` that counts the connections it accepted (the
/// routing connections a client opened, when `to` is the server).
pub async fn counting_forwarder(to: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    tokio::spawn(async move {
        while let Ok((mut a, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut b) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
            });
        }
    });
    (addr, n)
}

/// A keep-alive HTTP/1.1 app answering every GET `ok`; counts its connections.
pub async fn http_app() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
                        if s.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                }
            });
        }
    });
    (addr, n)
}
