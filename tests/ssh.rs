//! SSH end to end: the real OpenSSH client and a real sshd on loopback, with the real
//! `oneport` binary as the ProxyCommand (`proxy ssh`) and the `config ssh` block used
//! verbatim. Covers commands, 32 MiB scp both ways, refusals with the proxy's own
//! sentence, node ports, and the stdio contract (half-close, exit 0 on upstream EOF).
//!
//! Run as root (sshd needs it here): `cargo test --test ssh`.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::lb::{self, LbPki, NginxMode};
use common::sshd::Sshd;
use common::*;
use oneport::client::dial::Target;
use oneport::proto::naming::{self, Protocol};
use oneport::server::config::{Allow, Node};
use oneport::tools::ssh::{quote_word, Shell};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// Deadline for one ssh/scp/oneport run.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn node(name: &str, addr: Option<SocketAddr>, targets: &[&str], users: &[&str]) -> Node {
    Node {
        name: name.into(),
        addr: addr.map(|a| a.to_string()),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        allow: Allow { users: users.iter().map(|u| u.to_string()).collect(), groups: vec![] },
    }
}

/// sshd, a routing server with nodes in front of it, and alice's identity.
struct Setup {
    sshd: Sshd,
    srv: TestServer,
    alice: PathBuf,
    /// A private, empty ONEPORT_HOME.
    home: tempfile::TempDir,
}

/// `None` (a counted skip, only with ONEPORT_TEST_ALLOW_SKIP=1) when OpenSSH is missing.
async fn setup() -> Option<Setup> {
    setup_pinging(FAST_IDLE.pings).await
}

/// [`setup`] with a server pinging every `pings` (`NO_PINGS`: never).
async fn setup_pinging(pings: Duration) -> Option<Setup> {
    if !Sshd::available() {
        return None;
    }
    let sshd = Sshd::start().await;
    let a = sshd.addr;
    let srv = TestServer::start(|c| {
        // Pings only flow on upgraded `alpn-ping` streams (SSH has no ping variant);
        // they keep nginx's idle cut-off at bay in the LB tests.
        c.ping_interval = pings;
        c.nodes.push(node("web1", Some(a), &[], &["alice"]));
        c.nodes.push(node("any", None, &["127.0.0.1:*"], &["alice"]));
        c.nodes.push(node("fixed", Some(a), &[], &["alice"]));
    })
    .await;
    let alice = srv.identity("alice", &[]);
    Some(Setup { sshd, srv, alice, home: tempfile::tempdir().unwrap() })
}

impl Setup {
    /// `"<oneport>" --proxy=PROXY --identity="..." proxy ssh %r@%h:%p`.
    fn proxy_command(&self, proxy: &str, identity: &Path) -> String {
        let q = |p: &Path| quote_word(&p.to_string_lossy(), Shell::Posix, true).unwrap();
        format!(
            "{} --proxy={proxy} --identity={} proxy ssh %r@%h:%p",
            q(Path::new(env!("CARGO_BIN_EXE_oneport"))),
            q(identity)
        )
    }

    /// `program` (ssh or scp) with no ssh_config, the test key, and `proxy ssh`
    /// straight to the routing server.
    fn client(&self, program: &str, identity: &Path) -> Command {
        self.client_via(&self.srv.addr.to_string(), program, identity)
    }

    /// As [`Setup::client`], with `proxy ssh` going to `proxy`.
    fn client_via(&self, proxy: &str, program: &str, identity: &Path) -> Command {
        let mut c = scrubbed(program, self.home.path());
        c.args(["-F", "/dev/null"]).args(self.sshd.client_options());
        c.arg("-o").arg(format!("ProxyCommand={}", self.proxy_command(proxy, identity)));
        c
    }

    fn remote(&self, name: &str) -> PathBuf {
        self.sshd.dir.path().join(name)
    }
}

/// What a finished program did.
#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run(mut cmd: Command) -> Outcome {
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output()).await.expect("program hung").expect("program runs");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_ok(o: &Outcome, sshd: &Sshd) {
    assert_eq!(o.code, Some(0), "{o:?}\nsshd log:\n{}", sshd.log());
}

/// 1. `ssh root@web1 echo ok` through `proxy ssh`; port 22 means the node's own address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_runs_a_command_on_a_node() {
    deadline(async {
        let Some(s) = setup().await else { return };
        let mut c = s.client("ssh", &s.alice);
        c.args(["root@web1", "echo", "ok"]);
        let o = run(c).await;
        assert_ok(&o, &s.sshd);
        assert_eq!(o.stdout, "ok\n");
        assert!(!o.stderr.contains("error"), "{o:?}");

        // `-p 22` is what OpenSSH passes by default: the node's own address (sshd is not on 22).
        let mut c = s.client("ssh", &s.alice);
        c.args(["-p", "22", "root@web1.test", "echo", "$((6*7))"]);
        let o = run(c).await;
        assert_ok(&o, &s.sshd);
        assert_eq!(o.stdout, "42\n");
        s.srv.stop().await;
    })
    .await;
}

/// 2. scp of 32 MiB up, then a different 32 MiB down, each checked by SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_moves_32_mib_each_way() {
    deadline(async {
        let Some(s) = setup().await else { return };
        if !have("scp") {
            return;
        }
        let local = tempfile::tempdir().unwrap();
        let up = random_bytes(32 << 20, 11);
        std::fs::write(local.path().join("up.bin"), &up).unwrap();
        let mut c = s.client("scp", &s.alice);
        c.arg("-q").arg(local.path().join("up.bin")).arg(format!("root@web1:{}", s.remote("up.bin").display()));
        assert_ok(&run(c).await, &s.sshd);
        let landed = std::fs::read(s.remote("up.bin")).unwrap();
        assert_eq!(landed.len(), up.len());
        assert_eq!(sha256(&landed), sha256(&up), "upload changed the bytes");

        let down = random_bytes(32 << 20, 12);
        std::fs::write(s.remote("down.bin"), &down).unwrap();
        let mut c = s.client("scp", &s.alice);
        c.arg("-q").arg(format!("root@web1:{}", s.remote("down.bin").display())).arg(local.path().join("down.bin"));
        assert_ok(&run(c).await, &s.sshd);
        let got = std::fs::read(local.path().join("down.bin")).unwrap();
        assert_eq!(got.len(), down.len());
        assert_eq!(sha256(&got), sha256(&down), "download changed the bytes");
        s.srv.stop().await;
    })
    .await;
}

/// 3. `config ssh` output used verbatim with `ssh -F`: after `login`, and without a
/// login but with --proxy/--identity (an identity path with a space in it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_ssh_block_works_verbatim() {
    deadline(async {
        let Some(s) = setup().await else { return };
        let mut login = oneport(s.home.path());
        login.args(["login", "--proxy", &s.srv.addr.to_string(), "--identity"]).arg(&s.alice);
        let o = run(login).await;
        assert_eq!(o.code, Some(0), "{o:?}");
        let mut cfg = oneport(s.home.path());
        cfg.args(["config", "ssh"]);
        let o = run(cfg).await;
        assert_eq!(o.code, Some(0), "{o:?}");
        let block = o.stdout;
        assert!(block.contains("\nHost *.test !127.0.0.1\n"), "{block}");
        let exe = quote_word(env!("CARGO_BIN_EXE_oneport"), Shell::Posix, true).unwrap();
        assert!(block.contains(&format!("    ProxyCommand {exe} proxy ssh --cluster=test --proxy=")), "{block}");
        assert!(!block.contains("--identity"), "the login profile holds the identity: {block}");
        assert!(block.contains("# It uses the login in ONEPORT_HOME="), "{block}");
        let file = s.home.path().join("ssh_config");
        std::fs::write(&file, &block).unwrap();
        let mut c = scrubbed("ssh", s.home.path());
        c.arg("-F").arg(&file).args(s.sshd.client_options()).args(["root@web1.test", "echo", "ok"]);
        let o = run(c).await;
        assert_ok(&o, &s.sshd);
        assert_eq!(o.stdout, "ok\n");

        // Not logged in: the block carries --proxy and an absolute, quoted --identity.
        let spaced = tempfile::tempdir().unwrap();
        let ids = spaced.path().join("my ids");
        std::fs::create_dir(&ids).unwrap();
        std::fs::copy(&s.alice, ids.join("alice.pem")).unwrap();
        let fresh = tempfile::tempdir().unwrap();
        let mut cfg = oneport(fresh.path());
        cfg.current_dir(&ids).args(["--proxy", &s.srv.addr.to_string(), "--identity", "alice.pem", "config", "ssh"]);
        let o = run(cfg).await;
        assert_eq!(o.code, Some(0), "{o:?}");
        let block = o.stdout;
        let id = quote_word(&ids.join("alice.pem").to_string_lossy(), Shell::Posix, true).unwrap();
        assert!(block.contains(&format!("--identity={id}")), "{block}");
        assert!(block.contains("Host *.test "), "cluster name asked from the proxy: {block}");
        assert!(!block.contains("ONEPORT_HOME"), "no login is used: {block}");
        let file = fresh.path().join("ssh_config");
        std::fs::write(&file, &block).unwrap();
        let empty = tempfile::tempdir().unwrap(); // no profile where ssh runs it
        let mut c = scrubbed("ssh", empty.path());
        c.arg("-F").arg(&file).args(s.sshd.client_options()).args(["root@web1.test", "echo", "ok"]);
        let o = run(c).await;
        assert_ok(&o, &s.sshd);
        assert_eq!(o.stdout, "ok\n");
        s.srv.stop().await;
    })
    .await;
}

/// 4. A denied user and an unknown node: the proxy's sentence on ssh's stderr, non-zero exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_reach_the_user() {
    deadline(async {
        let Some(s) = setup().await else { return };
        let mallory = s.srv.identity("mallory", &["dev"]);
        let mut c = s.client("ssh", &mallory);
        c.args(["root@web1", "echo", "ok"]);
        let o = run(c).await;
        assert_ne!(o.code, Some(0), "{o:?}");
        assert!(o.stderr.contains("error: access to node web1 denied for user mallory"), "{o:?}");
        assert!(o.stdout.is_empty(), "{o:?}");

        let mut c = s.client("ssh", &s.alice);
        c.args(["root@web9.test", "echo", "ok"]);
        let o = run(c).await;
        assert_ne!(o.code, Some(0), "{o:?}");
        let want = format!("error: node web9 is not known to proxy {}; known: any, fixed, web1", s.srv.addr);
        assert!(o.stderr.contains(&want), "{o:?}");

        let mut c = s.client("ssh", &s.alice);
        c.args(["root@web1.other", "echo", "ok"]);
        let o = run(c).await;
        assert_ne!(o.code, Some(0), "{o:?}");
        assert!(o.stderr.contains("does not name a node of cluster"), "{o:?}");
        assert!(!s.sshd.log().contains("Accepted publickey"), "nothing reached sshd: {}", s.sshd.log());
        s.srv.stop().await;
    })
    .await;
}

/// A TCP listener that only counts connections (to prove nothing dialled it).
async fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = loopback_listener().await;
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, n)
}

/// 5. A port: allowed by `targets: ["127.0.0.1:*"]`, refused (before any dial, with
/// the proxy's sentence) on a node whose only address is its `addr`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_follow_the_targets() {
    deadline(async {
        let Some(s) = setup().await else { return };
        let port = s.sshd.addr.port().to_string();
        let mut c = s.client("ssh", &s.alice);
        c.args(["-p", &port, "root@any", "echo", "ok"]);
        let o = run(c).await;
        assert_ok(&o, &s.sshd);
        assert_eq!(o.stdout, "ok\n");

        let (trap, dialled) = counting_listener().await;
        let mut c = s.client("ssh", &s.alice);
        c.args(["-p", &trap.port().to_string(), "root@fixed", "echo", "ok"]);
        let o = run(c).await;
        assert_ne!(o.code, Some(0), "{o:?}");
        let want = format!(
            "error: port {} of node fixed is not allowed by proxy {}; allowed ports: {port}",
            trap.port(),
            s.srv.addr
        );
        assert!(o.stderr.contains(&want), "{o:?}");

        // The wildcard `127.0.0.1:*` never reaches the proxy's own listener.
        let own = s.srv.addr.port().to_string();
        let mut c = s.client("ssh", &s.alice);
        c.args(["-p", &own, "root@any", "echo", "ok"]);
        let o = run(c).await;
        assert_ne!(o.code, Some(0), "{o:?}");
        let want = format!(
            "error: port {own} of node any is not allowed by proxy {}: it is the proxy's own listening address",
            s.srv.addr
        );
        assert!(o.stderr.contains(&want), "{o:?}");

        // The server refuses on its own too (no client-side check): the handshake is
        // denied and the port is never dialled.
        let dialer = s.srv.dialer(&s.alice);
        let sni = naming::node_sni("fixed", Some(trap.port()), &dialer.context().domain);
        let target = Target { sni, alpn: Protocol::ProxySsh.client_offer() };
        let refused = match dialer.dial(&target).await {
            Err(e) => e.to_string(),
            Ok(mut d) => {
                // TLS 1.3: the client learns of the refusal on its first read.
                let _ = d.stream.write_all(b"SSH-2.0-test\r\n").await;
                let mut buf = [0u8; 16];
                match d.stream.read(&mut buf).await {
                    Err(e) => e.to_string(),
                    Ok(n) => panic!("read {n} bytes from a refused port"),
                }
            }
        };
        assert!(refused.contains("AccessDenied") || refused.contains("access denied"), "{refused}");
        assert_eq!(dialled.load(Ordering::SeqCst), 0, "a refused port was dialled");
        s.srv.stop().await;
    })
    .await;
}

/// The stdio contract without ssh: stdout carries only SSH bytes; EOF on stdin
/// half-closes upstream and the reply still arrives; upstream EOF exits 0 even
/// while stdin stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_ssh_stdio_contract() {
    deadline(async {
        let Some(s) = setup().await else { return };
        let start = |s: &Setup| {
            let mut c = oneport(s.home.path());
            c.args(["--proxy", &s.srv.addr.to_string(), "--identity"]).arg(&s.alice);
            c.args(["proxy", "ssh", "root@web1:22"]).stdin(Stdio::piped()).stdout(Stdio::piped());
            c.stderr(Stdio::piped()).spawn().unwrap()
        };

        // Half-close: send our banner and close stdin; sshd still answers, then closes.
        let mut child = start(&s);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"SSH-2.0-oneport_test\r\n").await.unwrap();
        drop(stdin);
        let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output()).await.unwrap().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("SSH-2.0-OpenSSH"), "stdout must carry only SSH: {stdout:?}");
        assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));

        // Upstream EOF with stdin still open: sshd drops a peer that sends garbage.
        let mut child = start(&s);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"this is not ssh\r\n").await.unwrap();
        stdin.flush().await.unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut got = Vec::new();
        let exited = async {
            stdout.read_to_end(&mut got).await.unwrap();
            child.wait().await.unwrap()
        };
        let status = tokio::time::timeout(Duration::from_secs(30), exited)
            .await
            .expect("proxy ssh must exit when the node closes, even with stdin open");
        assert_eq!(status.code(), Some(0));
        assert!(got.starts_with(b"SSH-2.0-OpenSSH"), "{:?}", String::from_utf8_lossy(&got));
        drop(stdin);
        s.srv.stop().await;
    })
    .await;
}

/// 6. Through nginx terminating TLS (idle cut-off 1 s), with no flag given: `proxy ssh`
/// detects the load balancer and upgrades (`alpn-ping`). A command runs, and a
/// session left idle for 3 s (three cut-offs; pings every 300 ms) still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_through_nginx_and_idle_sessions_survive() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        let Some(s) = setup().await else { return };
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, s.srv.addr, NginxMode::PassUpgrades, false, FAST_IDLE.lb).await;
        let proxy = nginx.addr.to_string();

        let mut c = s.client_via(&proxy, "ssh", &s.alice);
        c.env("SSL_CERT_FILE", &pki.ca).args(["root@web1", "echo", "ok"]);
        let o = run(c).await;
        assert_ok(&o, &s.sshd);
        assert_eq!(o.stdout, "ok\n");

        let reply = idle_session(&s, &proxy, &pki).await;
        assert_eq!(reply.as_deref(), Ok("got hello"), "the load balancer cut the idle session");
        drop(nginx);
        s.srv.stop().await;
    })
    .await;
}

/// 6b. The negative control of 6: the same path, cut-off and idle window, but a
/// server that never pings: nginx cuts the idle session, and ssh gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_through_nginx_idle_session_is_cut_without_pings() {
    if !have("nginx") {
        return;
    }
    deadline(async {
        let Some(s) = setup_pinging(NO_PINGS).await else { return };
        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, s.srv.addr, NginxMode::PassUpgrades, false, FAST_IDLE.lb).await;
        let reply = idle_session(&s, &nginx.addr.to_string(), &pki).await;
        assert!(reply.is_err(), "the session survived without pings, so pings are not what keeps it up: {reply:?}");
        drop(nginx);
        s.srv.stop().await;
    })
    .await;
}

/// An ssh session through `proxy` that says `ready`, idles `FAST_IDLE.window`, then
/// is sent a line: what it answered, or where the session was cut (without pings a
/// loaded machine may already stall past the cut-off before the greeting).
async fn idle_session(s: &Setup, proxy: &str, pki: &LbPki) -> Result<String, &'static str> {
    let mut c = s.client_via(proxy, "ssh", &s.alice);
    c.env("SSL_CERT_FILE", &pki.ca).args(["root@web1", "echo ready; read line; echo got $line"]);
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(RUN_LIMIT, lines.next_line()).await.expect("no greeting and no end").unwrap();
    if first.is_none() {
        return Err("cut before the greeting");
    }
    assert_eq!(first.as_deref(), Some("ready"));
    tokio::time::sleep(FAST_IDLE.window).await; // idling is the thing under test
    let _ = stdin.write_all(b"hello\n").await; // may fail once the session is gone
    let _ = stdin.flush().await;
    let reply = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("no answer and no end within 10 s after idling")
        .ok()
        .flatten();
    drop(stdin);
    let status = tokio::time::timeout(RUN_LIMIT, child.wait()).await.unwrap().unwrap();
    let reply = reply.ok_or("cut while idle")?;
    assert_eq!(status.code(), Some(0));
    Ok(reply)
}

/// `oneport ssh`: the system ssh with the ProxyCommand set; output, ssh's options,
/// the cluster suffix and the remote command's exit code pass through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneport_ssh_wraps_the_system_ssh() {
    deadline(async {
        let Some(s) = setup().await else { return };
        let proxy = s.srv.addr.to_string();
        let oneport_ssh = |args: &[&str]| {
            let mut c = oneport(s.home.path());
            c.args(["--proxy", &proxy, "--identity"]).arg(&s.alice).arg("ssh");
            c.args(["-F", "/dev/null"]).args(s.sshd.client_options()).args(args);
            c
        };
        let o = run(oneport_ssh(&["root@web1", "echo hi"])).await;
        assert_ok(&o, &s.sshd);
        assert_eq!(o.stdout, "hi\n");
        let o = run(oneport_ssh(&["root@web1.test", "exit 3"])).await;
        assert_eq!(o.code, Some(3), "{o:?}");
        // -l and -p are ssh's: port 22 is the node's own address.
        let o = run(oneport_ssh(&["-l", "root", "-p", "22", "web1.test", "echo", "$((6*7))"])).await;
        assert_ok(&o, &s.sshd);
        assert_eq!(o.stdout, "42\n");
        // After `--` everything is ssh's, its -v included; -tt gives the command a terminal.
        let mut c = oneport(s.home.path());
        c.args(["--proxy", &proxy, "--identity"]).arg(&s.alice).args(["ssh", "--", "-F", "/dev/null"]);
        c.args(s.sshd.client_options()).args(["-tt", "-v", "root@web1", "tty >/dev/null && echo terminal"]);
        let o = run(c).await;
        assert_ok(&o, &s.sshd);
        assert_eq!(o.stdout.trim_end(), "terminal", "{o:?}");
        assert!(o.stderr.contains("debug1:"), "ssh's own -v: {o:?}");
        // A refused node: the proxy's sentence on stderr, ssh's 255.
        let o = run(oneport_ssh(&["root@web9", "true"])).await;
        assert_eq!(o.code, Some(255), "{o:?}");
        assert!(o.stderr.contains("node web9 is not known to proxy"), "{o:?}");
        s.srv.stop().await;
    })
    .await;
}

/// `config ssh --control-master`: the second ssh reuses the first one's connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_ssh_control_master_reuses_one_connection() {
    deadline(async {
        let Some(s) = setup().await else { return };
        let mut cfg = oneport(s.home.path());
        cfg.args(["--proxy", &s.srv.addr.to_string(), "--identity"]).arg(&s.alice);
        cfg.args(["config", "ssh", "--control-master"]);
        let o = run(cfg).await;
        assert_eq!(o.code, Some(0), "{o:?}");
        let dir = s.home.path().join("ssh");
        let want = format!("    ControlMaster auto\n    ControlPath {}/%C\n    ControlPersist 10m\n", dir.display());
        assert!(o.stdout.ends_with(&want), "{}", o.stdout);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let file = s.home.path().join("ssh_config");
        std::fs::write(&file, &o.stdout).unwrap();
        let ssh = |args: &[&str]| {
            let mut c = scrubbed("ssh", s.home.path());
            c.arg("-F").arg(&file).args(s.sshd.client_options()).args(args);
            c
        };
        // The master goes to the background and keeps the ProxyCommand's stderr:
        // this run's stderr is a file, so waiting for it does not wait for the master.
        let log = s.home.path().join("first.log");
        let mut first = ssh(&["root@web1.test", "echo", "first"]);
        first.stderr(std::fs::File::create(&log).unwrap());
        let o = run(first).await;
        assert_eq!(o.code, Some(0), "{o:?} {}", std::fs::read_to_string(&log).unwrap_or_default());
        assert_eq!(o.stdout, "first\n");
        let o = run(ssh(&["-O", "check", "root@web1.test"])).await;
        assert_eq!(o.code, Some(0), "{o:?}");
        assert!(o.stderr.starts_with("Master running (pid="), "{o:?}");
        let o = run(ssh(&["root@web1.test", "echo", "second"])).await;
        assert_ok(&o, &s.sshd);
        assert_eq!(o.stdout, "second\n");
        let o = run(ssh(&["-O", "exit", "root@web1.test"])).await;
        assert_eq!(o.code, Some(0), "{o:?}");
        let o = run(ssh(&["-O", "check", "root@web1.test"])).await;
        assert_ne!(o.code, Some(0), "the master is gone: {o:?}");
        s.srv.stop().await;
    })
    .await;
}
