//! The paths under test. Each [`Peer`] is a loopback address that leads to the
//! backend, plus the processes that make up the path (so their memory can be read):
//! plain TCP, the no-crypto ceiling (two socat relays), an stunnel client/server
//! pair, a wstunnel client/server pair (direct, and through nginx) and `oneport
//! proxy app` + `oneport server start` (direct, and through nginx). [`upgraded`] is
//! the extension point for the load-balancer path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// How long a process may take to start listening.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The application name the bench's server routes to the backend.
pub const APP: &str = "sink";
/// The user of the bench's identity.
const USER: &str = "bench";

/// One process of a path.
pub struct Proc {
    /// What it is in the path ("client", "server").
    pub role: &'static str,
    child: Child,
}

impl Proc {
    fn spawn(role: &'static str, mut cmd: Command, log: &Path) -> Result<Proc> {
        let err = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null()).stderr(err).kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("starting {role}: {cmd:?}"))?;
        Ok(Proc { role, child })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM, then up to 5 s to exit, then SIGKILL.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
            if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_ok() {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

/// A path to the backend.
pub struct Peer {
    /// Its name in the table.
    pub name: String,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Its processes (none for plain TCP).
    pub procs: Vec<Proc>,
}

impl Peer {
    /// Stops its processes.
    pub async fn stop(self) {
        for p in self.procs {
            p.stop().await;
        }
    }
}

/// Plain loopback TCP: the client talks to the backend directly.
pub fn plain(backend: SocketAddr) -> Peer {
    Peer { name: "plain TCP".into(), addr: backend, procs: vec![] }
}

/// The certificates and the server config, made once with the real binary
/// (`oneport server init` and `oneport server issue`) and shared by every peer, so
/// stunnel and oneport use the very same keys (ECDSA P-256).
pub struct Pki {
    /// The temporary directory holding everything.
    pub dir: tempfile::TempDir,
    /// The port `oneport server start` listens on.
    pub server_port: u16,
    /// The backend the app routes to.
    backend: SocketAddr,
}

/// Renders `fixtures/REL` with `vars` into `out`.
fn render_to(rel: &str, vars: &[(&str, &str)], out: &Path) -> Result<PathBuf> {
    crate::fixture::render_to(rel, vars, out).map_err(|e| anyhow!(e))
}

/// fixtures/server/bench.yaml for a server on `port` routing the app to `backend`.
fn write_config(pki: &Pki, port: u16, backend: SocketAddr, out: &Path) -> Result<PathBuf> {
    let vars = [("LISTEN_PORT", &*port.to_string()), ("APP", APP), ("UPSTREAM", &*backend.to_string()), ("USER", USER)];
    render_to("server/bench.yaml", &vars, out).with_context(|| format!("server config in {}", pki.dir.path().display()))
}

impl Pki {
    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    /// The server certificate and key.
    pub fn server_cert(&self) -> (PathBuf, PathBuf) {
        (self.dir.path().join("server.pem"), self.dir.path().join("server-key.pem"))
    }
    /// The client identity (certificate, key and CA in one PEM).
    pub fn identity(&self) -> PathBuf {
        self.dir.path().join("bench.pem")
    }
    /// The server config.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("server.yaml")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// A `oneport` command with a private home and no inherited settings.
    fn oneport(&self) -> Command {
        self.oneport_with(Path::new(&oneport_bin()))
    }
    /// The same with another build of the binary.
    fn oneport_with(&self, bin: &Path) -> Command {
        let mut c = Command::new(bin);
        for var in ["ONEPORT_PROXY", "ONEPORT_IDENTITY", "ONEPORT_CA", "ONEPORT_INSECURE", "HTTPS_PROXY", "https_proxy"]
        {
            c.env_remove(var);
        }
        c.env("ONEPORT_HOME", self.path("home")).env("NO_COLOR", "1");
        c
    }
}

/// The `oneport` binary of every oneport peer: the release build this bench was
/// built with, or the one BENCH_ONEPORT_BIN names (to measure another build alone).
pub fn oneport_bin() -> String {
    std::env::var("BENCH_ONEPORT_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_oneport").to_string())
}

async fn run_ok(mut cmd: Command) -> Result<()> {
    let out = cmd.stdin(Stdio::null()).output().await.with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// `server init` + a TCP app pointing at `backend` + `server issue`.
pub async fn make_pki(backend: SocketAddr) -> Result<Pki> {
    let pki = Pki { dir: tempfile::tempdir()?, server_port: free_port()?, backend };
    let d = pki.dir.path();
    let mut init = pki.oneport();
    init.args(["server", "init", "--dir"]).arg(d).args(["--public-addr", &format!("127.0.0.1:{}", pki.server_port)]);
    run_ok(init).await?;
    let mut issue = pki.oneport();
    issue.args(["server", "issue", "--dir"]).arg(d).args(["--user", USER, "--out"]).arg(pki.identity());
    run_ok(issue).await?;
    // The bench's server config (fixtures/server/bench.yaml) replaces init's.
    write_config(&pki, pki.server_port, backend, &pki.config())?;
    Ok(pki)
}

/// `oneport server start` + `oneport proxy app sink`, both the release binary.
pub async fn oneport_pair(pki: &Pki) -> Result<Peer> {
    let bin = oneport_bin();
    let bin = Path::new(&bin);
    let (server, router) = start_server(pki, bin, pki.server_port, "server.log").await?;
    let router = crate::wan::front(router).await?;
    let (client, addr) = start_proxy_app(pki, bin, &router.to_string(), &[], "proxy-app.log").await?;
    Ok(Peer { name: "oneport".into(), addr, procs: vec![client, server] })
}

/// The same pair on a server with `mux: { enabled: false }`: one routing
/// connection per local connection (the fallback, and what every connection cost
/// before multiplexed sessions). Beside "oneport" it shows what a stream on a
/// shared session costs against a dedicated connection.
pub async fn percon_pair(pki: &Pki) -> Result<Peer> {
    let bin = oneport_bin();
    let bin = Path::new(&bin);
    let port = no_mux_config(pki)?;
    let (server, router) = start_server(pki, bin, port, "server-percon.log").await?;
    let router = crate::wan::front(router).await?;
    let (client, addr) = start_proxy_app(pki, bin, &router.to_string(), &[], "proxy-app-percon.log").await?;
    Ok(Peer { name: "oneport per connection".into(), addr, procs: vec![client, server] })
}

/// The environment variable naming another `oneport` build to measure beside this
/// one, as the peer "oneport baseline" (for before/after figures in one run).
pub const BASELINE_ENV: &str = "BENCH_BASELINE_BIN";

/// The same pair, run from the build named by [`BASELINE_ENV`].
pub async fn baseline_pair(pki: &Pki, bin: &Path) -> Result<Peer> {
    let (server, router) = start_server(pki, bin, free_port()?, "server-baseline.log").await?;
    let router = crate::wan::front(router).await?;
    let (client, addr) = start_proxy_app(pki, bin, &router.to_string(), &[], "proxy-app-baseline.log").await?;
    Ok(Peer { name: "oneport baseline".into(), addr, procs: vec![client, server] })
}

/// `oneport server start` on `port` (the bench's config, moved to that port).
async fn start_server(pki: &Pki, bin: &Path, port: u16, log: &str) -> Result<(Proc, SocketAddr)> {
    let config = pki.path(&format!("server-{port}.yaml"));
    let config = if port == pki.server_port {
        pki.config()
    } else if config.exists() {
        config
    } else {
        write_config(pki, port, pki.backend, &config)?
    };
    let mut cmd = pki.oneport_with(bin);
    cmd.args(["server", "start", "--config"]).arg(config).stdout(Stdio::null());
    let server = Proc::spawn("server", cmd, &pki.path(log))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_port(addr, &pki.path(log)).await?;
    Ok((server, addr))
}

/// Starts `oneport proxy app` against `proxy` and waits for the address it prints.
async fn start_proxy_app(
    pki: &Pki,
    bin: &Path,
    proxy: &str,
    env: &[(&str, &str)],
    log: &str,
) -> Result<(Proc, SocketAddr)> {
    let mut cmd = pki.oneport_with(bin);
    cmd.args(["--proxy", proxy, "--identity"]).arg(pki.identity()).args(["proxy", "app", APP]);
    // One debug line per dial says whether TLS resumed (counted by `oneport_resumption`).
    cmd.env("RUST_LOG", "oneport=info,oneport::client::dial=debug").envs(env.iter().copied()).stdout(Stdio::piped());
    let log = pki.path(log);
    let mut p = Proc::spawn("client", cmd, &log)?;
    let stdout = p.child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(START_LIMIT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(a) = line.split_whitespace().find_map(|w| w.parse::<SocketAddr>().ok()) {
                return Ok(a);
            }
        }
        Err(anyhow!("exited without printing its address; its log: {}", tail(&log)))
    })
    .await
    .map_err(|_| anyhow!("printed no address within {START_LIMIT:?}; its log: {}", tail(&log)))??;
    // Keep draining stdout so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((p, addr))
}

/// The `proxy app` log file of each oneport peer.
pub const CLIENT_LOGS: [(&str, &str); 4] = [
    ("oneport", "proxy-app.log"),
    ("oneport per connection", "proxy-app-percon.log"),
    ("oneport baseline", "proxy-app-baseline.log"),
    ("oneport via nginx (WS)", "proxy-app-upgraded.log"),
];

/// How a proxy app's dials went so far: (resumed, full handshakes) of the routing
/// TLS (through a load balancer: the inner one), from its log file `log`.
pub fn oneport_resumption(pki: &Pki, log: &str) -> (usize, usize) {
    let log = std::fs::read_to_string(pki.path(log)).unwrap_or_default();
    let dials = log.lines().filter(|l| l.contains("dialled"));
    dials.fold((0, 0), |(r, f), l| if l.contains("resumed=Some(Resumed)") { (r + 1, f) } else { (r, f + 1) })
}

/// The stunnel binary, if installed.
pub fn stunnel_bin() -> Option<PathBuf> {
    ["/usr/bin/stunnel4", "/usr/bin/stunnel", "/usr/local/bin/stunnel"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// An stunnel client/server pair between the same endpoints, with the same
/// certificates, mutual TLS, TLS 1.3 only and our cipher suite (rustls with ring
/// negotiates TLS_AES_256_GCM_SHA384 first between two rustls ends).
pub async fn stunnel_pair(pki: &Pki, backend: SocketAddr) -> Result<Peer> {
    let bin = stunnel_bin().ok_or_else(|| anyhow!("stunnel is not installed (apt-get install stunnel4)"))?;
    let (srv_port, cli_port) = (free_port()?, free_port()?);
    // fixtures/bench/stunnel-*.conf: mutual TLS, TLS 1.3 only, our cipher suite,
    // no syslog (see the files for why that matters).
    let (cert, key) = pki.server_cert();
    let (ca, id) = (pki.ca().display().to_string(), pki.identity().display().to_string());
    let srv_log = pki.path("stunnel-server.log").display().to_string();
    let cli_log = pki.path("stunnel-client.log").display().to_string();
    let srv_addr = crate::wan::front(SocketAddr::from(([127, 0, 0, 1], srv_port))).await?.to_string();
    let (srv_port_s, cli_port_s) = (srv_port.to_string(), cli_port.to_string());
    render_to(
        "bench/stunnel-server.conf",
        &[
            ("LOG", &srv_log),
            ("CA", &ca),
            ("CERT", &cert.display().to_string()),
            ("KEY", &key.display().to_string()),
            ("LISTEN_PORT", &srv_port_s),
            ("UPSTREAM", &backend.to_string()),
        ],
        &pki.path("stunnel-server.conf"),
    )?;
    render_to(
        "bench/stunnel-client.conf",
        &[("LOG", &cli_log), ("CA", &ca), ("IDENTITY", &id), ("LISTEN_PORT", &cli_port_s), ("UPSTREAM", &srv_addr)],
        &pki.path("stunnel-client.conf"),
    )?;
    let mut cmd = Command::new(&bin);
    cmd.arg(pki.path("stunnel-server.conf")).stdout(Stdio::null());
    let server = Proc::spawn("server", cmd, &pki.path("stunnel-server.err"))?;
    wait_port(SocketAddr::from(([127, 0, 0, 1], srv_port)), &pki.path("stunnel-server.log")).await?;
    let mut cmd = Command::new(&bin);
    cmd.arg(pki.path("stunnel-client.conf")).stdout(Stdio::null());
    let client = Proc::spawn("client", cmd, &pki.path("stunnel-client.err"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], cli_port));
    wait_port(addr, &pki.path("stunnel-client.log")).await?;
    Ok(Peer { name: "stunnel".into(), addr, procs: vec![client, server] })
}

/// How the stunnel client's sessions went so far: (resumed, full handshakes), read
/// from its log (`debug = 6` prints one line per handshake).
pub fn stunnel_resumption(pki: &Pki) -> (usize, usize) {
    let log = std::fs::read_to_string(pki.path("stunnel-client.log")).unwrap_or_default();
    (log.matches("previous session reused").count(), log.matches("new session negotiated").count())
}

/// The socat binary, if installed.
pub fn socat_bin() -> Option<PathBuf> {
    ["/usr/bin/socat", "/usr/local/bin/socat"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// The no-crypto ceiling: the same three loopback hops as every two-process peer
/// (client → relay → relay → backend) through two plain `socat -b 131072` relays,
/// one process per connection each (`fork`; their CPU is counted with the parent).
pub async fn ceiling(pki: &Pki, backend: SocketAddr) -> Result<Peer> {
    let bin = socat_bin().ok_or_else(|| anyhow!("socat is not installed (apt-get install socat)"))?;
    let (far_port, near_port) = (free_port()?, free_port()?);
    let relay = |role: &'static str, port: u16, to: SocketAddr, log: &str| {
        let mut cmd = Command::new(&bin);
        cmd.args(["-b", "131072"])
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay"))
            .arg(format!("TCP:{to},nodelay"))
            .stdout(Stdio::null());
        Proc::spawn(role, cmd, &pki.path(log))
    };
    let far = SocketAddr::from(([127, 0, 0, 1], far_port));
    let server = relay("server", far_port, backend, "socat-server.log")?;
    wait_port(far, &pki.path("socat-server.log")).await?;
    let near = SocketAddr::from(([127, 0, 0, 1], near_port));
    let client = relay("client", near_port, far, "socat-client.log")?;
    wait_port(near, &pki.path("socat-client.log")).await?;
    Ok(Peer { name: "no-crypto ceiling (socat)".into(), addr: near, procs: vec![client, server] })
}

/// The environment variable naming a wstunnel binary (10.6.2 or later, built from
/// its public source); unset, the wstunnel peers are left out.
pub const WSTUNNEL_ENV: &str = "BENCH_WSTUNNEL_BIN";

/// The wstunnel binary [`WSTUNNEL_ENV`] names, if set.
pub fn wstunnel_bin() -> Option<PathBuf> {
    std::env::var_os(WSTUNNEL_ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// `wstunnel server` on `port` with the server certificate (ECDSA P-256, the very
/// keys every peer uses), restricted to the backend; with `mutual`, it requires a
/// client certificate from the bench's CA.
async fn start_wstunnel_server(pki: &Pki, bin: &Path, port: u16, mutual: bool, log: &str) -> Result<Proc> {
    let (cert, key) = pki.server_cert();
    let mut cmd = Command::new(bin);
    cmd.env_remove("RUST_LOG").args(["server", "--no-color", "--log-lvl", "WARN", "--tls-certificate"]);
    cmd.arg(cert).arg("--tls-private-key").arg(key);
    if mutual {
        cmd.arg("--tls-client-ca-certs").arg(pki.ca());
    }
    cmd.args(["--restrict-to", &pki.backend.to_string(), &format!("wss://127.0.0.1:{port}")]).stdout(Stdio::null());
    let p = Proc::spawn("server", cmd, &pki.path(log))?;
    wait_port(SocketAddr::from(([127, 0, 0, 1], port)), &pki.path(log)).await?;
    Ok(p)
}

/// `wstunnel client -L tcp://127.0.0.1:PORT:BACKEND wss://SERVER`, presenting the
/// bench's identity (certificate and key in one PEM).
async fn start_wstunnel_client(pki: &Pki, bin: &Path, server: SocketAddr, log: &str) -> Result<(Proc, SocketAddr)> {
    let port = free_port()?;
    let id = pki.identity();
    let mut cmd = Command::new(bin);
    cmd.env_remove("RUST_LOG").args(["client", "--no-color", "--log-lvl", "WARN", "--tls-certificate"]);
    cmd.arg(&id).arg("--tls-private-key").arg(&id);
    cmd.args(["-L", &format!("tcp://127.0.0.1:{port}:{}", pki.backend), &format!("wss://{server}")]);
    cmd.stdout(Stdio::null());
    let p = Proc::spawn("client", cmd, &pki.path(log))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_port(addr, &pki.path(log)).await?;
    Ok((p, addr))
}

/// wstunnel client → wstunnel server (WebSocket over mutual TLS), direct.
pub async fn wstunnel_pair(pki: &Pki) -> Result<Peer> {
    let bin = wstunnel_bin().ok_or_else(|| anyhow!("{WSTUNNEL_ENV} is not set"))?;
    let port = free_port()?;
    let server = start_wstunnel_server(pki, &bin, port, true, "wstunnel-server.log").await?;
    let router = crate::wan::front(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let (client, addr) = start_wstunnel_client(pki, &bin, router, "wstunnel-client.log").await?;
    Ok(Peer { name: "wstunnel".into(), addr, procs: vec![client, server] })
}

/// wstunnel client → nginx (TLS terminated, the same `fixtures/lb/nginx.conf` as
/// the upgraded oneport peer, its `location /` passing wstunnel's `/v1/...` upgrade
/// on) → wstunnel server over TLS. nginx does not pass a client certificate on, so
/// this server does not ask for one (the oneport peer's inner TLS still does).
pub async fn wstunnel_via_nginx(pki: &Pki) -> Result<Peer> {
    let bin = wstunnel_bin().ok_or_else(|| anyhow!("{WSTUNNEL_ENV} is not set"))?;
    let port = free_port()?;
    let server = start_wstunnel_server(pki, &bin, port, false, "wstunnel-nginx-server.log").await?;
    let (nginx, lb) = start_nginx(pki, SocketAddr::from(([127, 0, 0, 1], port)), "nginx-wstunnel").await?;
    let lb = crate::wan::front(lb).await?;
    let (client, addr) = start_wstunnel_client(pki, &bin, lb, "wstunnel-nginx-client.log").await?;
    Ok(Peer { name: "wstunnel via nginx (WS)".into(), addr, procs: vec![client, nginx, server] })
}

// ============================================================================
// THE LOAD-BALANCER PATH (the extension point of issue 2, now filled in).
//
// The upgrade of wire.md §5 (TLS to the LB, `GET /webapi/connectionupgrade` with
// `Upgrade: websocket`, then the inner TLS-routing handshake): the bench starts
// nginx as an L7 load balancer in front of its own `oneport server` (TLS
// terminated by nginx, WebSockets passed through) and measures `proxy app`,
// forced to upgrade, through it as the peer "oneport via nginx (WS)". `upgraded`
// takes the load balancer's address: point it at another LB the same way.
// BENCH_UPGRADE=off leaves it out. If it cannot start, the table says why.
// ============================================================================

/// The environment variable that turns the upgraded peer off (`off`) or adds it
/// to a BENCH_PEERS list (`nginx`).
pub const UPGRADE_ENV: &str = "BENCH_UPGRADE";

/// The upgraded peer: its own `oneport server`, nginx in front of it, and
/// `oneport proxy app` through nginx.
pub async fn upgraded_via_nginx(pki: &Pki) -> Result<Peer> {
    let (server, router) = start_server(pki, Path::new(&oneport_bin()), free_port()?, "server-upgraded.log").await?;
    let (nginx, lb) = start_nginx(pki, router, "nginx").await?;
    let mut peer = upgraded(pki, crate::wan::front(lb).await?).await?;
    peer.procs.extend([nginx, server]);
    Ok(peer)
}

/// The same through a server without multiplexed sessions: every connection its own
/// upgrade (what a client gets from an older server, or beyond the session caps).
pub async fn upgraded_percon_via_nginx(pki: &Pki) -> Result<Peer> {
    let port = no_mux_config(pki)?;
    let (server, router) = start_server(pki, Path::new(&oneport_bin()), port, "server-upgraded-percon.log").await?;
    let (nginx, lb) = start_nginx(pki, router, "nginx-percon").await?;
    let mut peer = upgraded(pki, crate::wan::front(lb).await?).await?;
    peer.name = "oneport per connection via nginx (WS)".into();
    peer.procs.extend([nginx, server]);
    Ok(peer)
}

/// Writes the config of a server on a free port with multiplexed sessions off, and
/// returns the port.
fn no_mux_config(pki: &Pki) -> Result<u16> {
    let port = free_port()?;
    let config = pki.path(&format!("server-{port}.yaml"));
    write_config(pki, port, pki.backend, &config)?;
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str("mux: { enabled: false }\n");
    std::fs::write(&config, text)?;
    Ok(port)
}

/// `oneport proxy app` through the load balancer at `lb`, forced to upgrade.
pub async fn upgraded(pki: &Pki, lb: SocketAddr) -> Result<Peer> {
    let env = [("ONEPORT_TLS_ROUTING_CONN_UPGRADE", "true")];
    let bin = oneport_bin();
    let bin = Path::new(&bin);
    let (client, addr) = start_proxy_app(pki, bin, &lb.to_string(), &env, "proxy-app-upgraded.log").await?;
    Ok(Peer { name: "oneport via nginx (WS)".into(), addr, procs: vec![client] })
}

/// nginx as the layer 7 load balancer of real-programs.md, in front of the
/// `oneport server` at `router`. One process (`master_process off`) so that
/// stopping it leaves no worker behind.
async fn start_nginx(pki: &Pki, router: SocketAddr, dir: &str) -> Result<(Proc, SocketAddr)> {
    let port = free_port()?;
    let dir = pki.path(dir);
    std::fs::create_dir_all(&dir)?;
    let (cert, key) = pki.server_cert();
    // As many connections as nginx may open files: a per-connection upgrade takes
    // two, and nginx starts closing connections still waiting for their request
    // once fewer than 1/16 of its worker_connections are free (at 9,000 upgrades
    // and 19,000 that cut the last hundred).
    let worker_connections = crate::measure::raise_nofile(0, "BENCH_CONNS")?.clamp(2048, 1 << 20);
    // The tests' nginx (fixtures/lb/nginx.conf): TLS terminated here, WebSocket and
    // legacy upgrades passed through, no response buffering; long idle timeouts.
    render_to(
        "lb/nginx.conf",
        &[
            ("DIR", &dir.display().to_string()),
            ("LISTEN_PORT", &port.to_string()),
            ("CERT", &cert.display().to_string()),
            ("KEY", &key.display().to_string()),
            ("UPSTREAM", &format!("https://{router}")),
            ("IDLE", "300s"),
            ("WORKER_CONNECTIONS", &worker_connections.to_string()),
            ("EXTRA_LOCATIONS", ""),
        ],
        &dir.join("nginx.conf"),
    )?;
    let mut cmd = Command::new(nginx_bin().ok_or_else(|| anyhow!("nginx is not installed"))?);
    cmd.arg("-c").arg(dir.join("nginx.conf")).arg("-p").arg(&dir).stdout(Stdio::null());
    let p = Proc::spawn("nginx", cmd, &dir.join("stderr.log"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_port(addr, &dir.join("error.log")).await?;
    Ok((p, addr))
}

/// The nginx binary, if installed.
pub fn nginx_bin() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// A free loopback port, for programs that must be told one (never twice).
fn free_port() -> Result<u16> {
    Ok(crate::ports::try_free_port()?)
}

/// Polls until `addr` accepts TCP, or fails with the tail of `log`.
async fn wait_port(addr: SocketAddr, log: &Path) -> Result<()> {
    let end = Instant::now() + START_LIMIT;
    while Instant::now() < end {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listens on {addr} after {START_LIMIT:?}; log: {}", tail(log))
}

/// The last lines of a log file, for error messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("({}: {e})", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
