//! Session recording of `kubectl exec` and `attach` (docs/recording.md), end to end
//! with the real kubectl against the API-server double: through `kube login` and
//! `proxy kube`, direct and behind nginx; an interactive `kubectl exec -it` driven
//! through tmux; `asciinema cat` on the files; fail closed (`required`) and fail open
//! (`best_effort`) when the recordings directory is unusable, at the start and in the
//! middle of a session; SPDY refused or passed; and `oneport server recordings`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::kube_api::{KubeApi, POD};
use common::lb::{self, LbPki, NginxMode};
use common::*;
use oneport::server::config::{Allow, Kube};
use oneport::server::recording::{Mode, Recording};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const KUBECTL: &str = "/usr/bin/kubectl";
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(90);

// ---- the server's log, captured (this test binary's only subscriber) ----

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything the server logged at info and above so far, in this test binary.
fn server_log() -> String {
    static LOG: OnceLock<Captured> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        let c = Captured::default();
        let w = c.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("oneport=info")
            .with_ansi(false)
            .with_writer(move || w.clone())
            .try_init();
        c
    });
    String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned()
}

/// Waits for a server log line that `pred` accepts.
async fn log_line(pred: impl Fn(&str) -> bool) -> String {
    let found = poll_until(Duration::from_secs(30), "a server log line", || {
        let l = server_log().lines().find(|l| pred(l)).map(str::to_string);
        async move { l }
    });
    match tokio::time::timeout(Duration::from_secs(31), found).await {
        Ok(l) => l,
        Err(_) => panic!("no such log line in:\n{}", server_log()),
    }
}

fn cluster(api: &KubeApi, name: &str, mode: Mode, dir: &Path) -> Kube {
    Kube {
        name: name.into(),
        api_server: api.url.clone(),
        ca: Some(api.ca_path.clone()),
        token_file: Some(api.token_path.clone()),
        client_cert: None,
        client_key: None,
        allow: Allow { users: vec![], groups: vec!["dev".into()] },
        recording: Recording { mode, dir: Some(dir.to_path_buf()), groups: vec![] },
    }
}

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
    fn oneport_via(&self, proxy: &str, id: &Path, kubeconfig: &str) -> Command {
        let mut c = oneport(self.path());
        c.env("HOME", self.path()).env("KUBECONFIG", kubeconfig);
        c.args(["--proxy", proxy, "--identity"]).arg(id);
        c
    }
    fn kubectl(&self, kubeconfig: &str) -> Command {
        let mut c = Command::new(KUBECTL);
        c.env("HOME", self.path())
            .env("KUBECONFIG", kubeconfig)
            .env("ONEPORT_HOME", self.path())
            .env_remove("KUBECTL_REMOTE_COMMAND_WEBSOCKETS")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }
}

async fn output(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    tokio::time::timeout(KUBECTL_TIMEOUT, cmd.output()).await.expect("command timed out").expect("command starts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn ok(cmd: Command, what: &str) -> String {
    let out = output(cmd).await;
    assert!(out.status.success(), "{what} failed ({}):\n{}\n{}", out.status, text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// `kube login` into a kubeconfig in `home`; returns its path.
async fn kube_login(home: &Home, srv: &TestServer, id: &Path, name: &str) -> String {
    let kc = home.path().join("kubeconfig").to_str().unwrap().to_string();
    let mut c = home.oneport_via(&srv.addr.to_string(), id, &kc);
    c.args(["kube", "login", name]);
    ok(c, "oneport kube login").await;
    kc
}

/// A running `proxy kube` and its throwaway kubeconfig.
struct KubeProxy {
    _child: tokio::process::Child,
    kubeconfig: String,
}

async fn proxy_kube(mut c: Command, name: &str) -> KubeProxy {
    c.args(["proxy", "kube", name]).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let kubeconfig = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("proxy kube printed no export line");
            if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
                return path.to_string();
            }
        }
    })
    .await
    .expect("proxy kube did not start within 60s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    KubeProxy { _child: child, kubeconfig }
}

/// `kubectl exec -i POD -- cat` with `payload` on stdin; returns the output.
async fn exec_cat(home: &Home, kubeconfig: &str, payload: &[u8]) -> Output {
    let mut c = home.kubectl(kubeconfig);
    c.args(["exec", "-i", POD, "--", "cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = payload.to_vec();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&data).await;
        let _ = stdin.shutdown().await;
    });
    let out = tokio::time::timeout(KUBECTL_TIMEOUT, child.wait_with_output()).await.unwrap().unwrap();
    writer.await.unwrap();
    out
}

/// A recording read back: header and events.
struct Cast {
    path: PathBuf,
    header: serde_json::Value,
    events: Vec<(f64, String, String)>,
}

impl Cast {
    fn read(path: &Path) -> Cast {
        let t = std::fs::read_to_string(path).unwrap();
        let mut lines = t.lines();
        let header: serde_json::Value = serde_json::from_str(lines.next().expect("no header")).unwrap();
        let events =
            lines.map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event {l:?}: {e}"))).collect();
        Cast { path: path.to_path_buf(), header, events }
    }
    fn joined(&self, kind: &str) -> String {
        self.events.iter().filter(|e| e.1 == kind).map(|e| e.2.as_str()).collect()
    }
}

/// Waits for recording number `before + 1` in `dir` to be complete (the server
/// ends its side of a session just after kubectl exits): its last line is the
/// end marker.
async fn finished_cast(dir: &Path, before: usize) -> Cast {
    let path = poll_until(Duration::from_secs(30), "the recording to be complete", || async {
        let files = casts(dir);
        let p = files.get(before)?.clone();
        let t = std::fs::read_to_string(&p).ok()?;
        let last = t.lines().last()?;
        (t.ends_with('\n') && last.starts_with('[') && last.contains("\"m\"")).then_some(p)
    })
    .await;
    Cast::read(&path)
}

/// The recordings in `dir`, oldest first.
fn casts(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "cast")).collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

/// Runs a shell command line inside a detached tmux session (a terminal, which
/// `asciinema cat` needs) and returns what it wrote to stdout and its exit code.
async fn in_tmux(socket: &Path, line: &str) -> (String, i32) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let rc = dir.path().join("rc");
    let script = format!(
        "({line}) > {} 2>&1; echo $? > {}.tmp && mv {}.tmp {}",
        out.display(),
        rc.display(),
        rc.display(),
        rc.display()
    );
    let mut c = Command::new("tmux");
    c.arg("-S").arg(socket).args(["new-session", "-d", "-x", "120", "-y", "40", &script]);
    ok(c, "tmux new-session").await;
    let code = poll_until(Duration::from_secs(60), "the command in tmux to finish", || {
        let rc = rc.clone();
        async move { std::fs::read_to_string(&rc).ok().and_then(|s| s.trim().parse::<i32>().ok()) }
    })
    .await;
    (std::fs::read_to_string(&out).unwrap_or_default(), code)
}

/// Checks `kubectl exec -i cat` through `kubeconfig` round-trips a text payload and
/// that the newest recording holds it as input and as output.
async fn recorded_cat(home: &Home, kubeconfig: &str, dir: &Path, how: &str) -> Cast {
    let before = casts(dir).len();
    let payload: String = common::hex(&random_bytes(256 * 1024, 7)).chars().collect::<String>() + "\nend\n";
    let out = exec_cat(home, kubeconfig, payload.as_bytes()).await;
    assert!(out.status.success(), "{how}: kubectl exec failed: {}", text(&out.stderr));
    assert_eq!(sha256(&out.stdout), sha256(payload.as_bytes()), "{how}: bytes changed");
    let cast = finished_cast(dir, before).await;
    assert_eq!(casts(dir).len(), before + 1, "{how}: one new recording in {}", dir.display());
    assert_eq!(cast.joined("i"), payload, "{how}: recorded input");
    assert_eq!(cast.joined("o"), payload, "{how}: recorded output");
    assert_eq!(cast.header["version"], 2);
    assert_eq!(cast.header["user"], "alice");
    assert_eq!(cast.header["cluster"], "prod");
    assert_eq!(cast.header["pod"], POD);
    assert_eq!(cast.header["namespace"], "default");
    assert_eq!(cast.header["command"], serde_json::json!(["cat"]));
    assert_eq!(cast.header["protocol"], "v5.channel.k8s.io");
    let id = cast.header["session_id"].as_str().unwrap().to_string();
    let name = cast.path.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.ends_with(&format!("-{id}.cast")), "{name}");
    assert_eq!(cast.events.last().unwrap().1, "m");
    assert_eq!(cast.events.last().unwrap().2, "exit 0");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&cast.path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir).unwrap().permissions().mode() & 0o777, 0o700);
    }
    // The audit line names the recording.
    let audit = log_line(|l| l.contains("kube session ended") && l.contains(&id)).await;
    assert!(audit.contains("recorded=true") && audit.contains(&name) && audit.contains("user=alice"), "{audit}");
    assert!(audit.contains("exit=exit 0") && audit.contains("command=cat"), "{audit}");
    cast
}

/// `kubectl exec -i cat` round-trips and is recorded through `kube login` and
/// `proxy kube` (direct), and through `proxy kube` behind nginx; `asciinema cat`
/// prints a recording; `recordings ls` lists them and `recordings play` plays one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_is_recorded_through_every_path() {
    if !have(KUBECTL) || !have("tmux") || !have("asciinema") || !have("nginx") {
        return;
    }
    deadline(async {
        server_log();
        let api = KubeApi::start().await;
        let rec = tempfile::tempdir().unwrap();
        let dir = rec.path().join("recordings");
        let srv = TestServer::start(|c| c.kube.push(cluster(&api, "prod", Mode::Required, &dir))).await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let kc = kube_login(&home, &srv, &id, "prod").await;
        recorded_cat(&home, &kc, &dir, "kube login").await;
        let p = proxy_kube(home.oneport_via(&srv.addr.to_string(), &id, "/nonexistent"), "prod").await;
        recorded_cat(&home, &p.kubeconfig, &dir, "proxy kube").await;

        let pki = LbPki::new();
        let nginx = lb::nginx(&pki, srv.addr, NginxMode::PassUpgrades, false, Duration::from_secs(5)).await;
        let via = nginx.addr.to_string();
        let mut c = home.oneport_via(&via, &id, "/nonexistent");
        c.env("SSL_CERT_FILE", &pki.ca).arg("login");
        ok(c, "oneport login through nginx").await;
        let mut c = home.oneport_via(&via, &id, "/nonexistent");
        c.env("SSL_CERT_FILE", &pki.ca);
        let behind = proxy_kube(c, "prod").await;
        recorded_cat(&home, &behind.kubeconfig, &dir, "proxy kube behind nginx").await;
        assert_eq!(api.execs(), 3);

        // A short one for asciinema (it prints the output events).
        let before = casts(&dir).len();
        let out = exec_cat(&home, &kc, b"hello from the pod\n").await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let newest = finished_cast(&dir, before).await.path;
        let sock = home.path().join("tmux.sock");
        let (printed, code) = in_tmux(&sock, &format!("asciinema cat {}", newest.display())).await;
        assert_eq!(code, 0, "asciinema cat failed: {printed}");
        assert!(printed.contains("hello from the pod"), "{printed:?}");

        // recordings ls and play.
        let mut c = oneport(home.path());
        c.args(["server", "recordings", "ls", "--config"]).arg(&srv.config_path);
        let ls = ok(c, "recordings ls").await;
        assert_eq!(ls.lines().count(), 5, "{ls}");
        assert!(
            ls.lines().next().unwrap().contains("SESSION") && ls.contains("alice") && ls.contains("default/web-1"),
            "{ls}"
        );
        let cast = Cast::read(&newest);
        let sid = cast.header["session_id"].as_str().unwrap();
        let mut c = oneport(home.path());
        c.args(["server", "recordings", "play", &sid[..8], "--speed", "50", "--config"]).arg(&srv.config_path);
        assert_eq!(ok(c, "recordings play").await, "hello from the pod\n");
        let mut c = oneport(home.path());
        c.args(["server", "recordings", "play", "nope", "--config"]).arg(&srv.config_path);
        let out = output(c).await;
        assert!(!out.status.success() && text(&out.stderr).contains("no recording \"nope\""), "{}", text(&out.stderr));
        let _ = Command::new("tmux").arg("-S").arg(&sock).arg("kill-server").output().await;
        drop(nginx);
        srv.stop().await;
    })
    .await;
}

/// Sends keys to a tmux session.
async fn send_keys(sock: &Path, keys: &[&str]) {
    let mut c = Command::new("tmux");
    c.arg("-S").arg(sock).args(["send-keys", "-t", "kube"]).args(keys);
    ok(c, "tmux send-keys").await;
}

/// The visible text of the tmux session.
async fn pane(sock: &Path) -> String {
    let mut c = Command::new("tmux");
    c.arg("-S").arg(sock).args(["capture-pane", "-p", "-t", "kube"]);
    output(c).await.stdout.iter().map(|&b| b as char).collect()
}

/// An interactive `kubectl exec -it POD -- sh` (and `kubectl attach -it`) in tmux:
/// the typed command and its output are recorded, the terminal size is in the
/// header, the exit status comes back, and `asciinema cat` prints the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_exec_and_attach_are_recorded() {
    if !have(KUBECTL) || !have("tmux") || !have("asciinema") {
        return;
    }
    deadline(async {
        server_log();
        let api = KubeApi::start().await;
        let rec = tempfile::tempdir().unwrap();
        let dir = rec.path().join("rec");
        let srv = TestServer::start(|c| c.kube.push(cluster(&api, "prod", Mode::Required, &dir))).await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let kc = kube_login(&home, &srv, &id, "prod").await;
        let sock = home.path().join("tmux.sock");
        let rc = home.path().join("rc");
        for (what, args) in [("exec", format!("exec -it {POD} -- sh")), ("attach", format!("attach -it {POD}"))] {
            let _ = std::fs::remove_file(&rc);
            let line = format!(
                "env HOME={} KUBECONFIG={kc} {KUBECTL} {args}; echo $? > {}",
                home.path().display(),
                rc.display()
            );
            let mut c = Command::new("tmux");
            c.arg("-S").arg(&sock).args(["new-session", "-d", "-s", "kube", "-x", "100", "-y", "30", &line]);
            ok(c, "tmux new-session").await;
            let end = tokio::time::Instant::now() + Duration::from_secs(60);
            while !pane(&sock).await.lines().any(|l| l.starts_with('$')) {
                assert!(
                    tokio::time::Instant::now() < end,
                    "{what}: no shell prompt; the terminal shows:\n{}",
                    pane(&sock).await
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            send_keys(&sock, &["echo typed-through-tmux", "Enter"]).await;
            poll_until(Duration::from_secs(30), "the echo output", || async {
                let p = pane(&sock).await;
                (p.matches("typed-through-tmux").count() >= 2).then_some(())
            })
            .await;
            send_keys(&sock, &["exit 3", "Enter"]).await;
            let code = poll_until(Duration::from_secs(30), "kubectl to exit", || async {
                std::fs::read_to_string(&rc).ok().and_then(|s| s.trim().parse::<i32>().ok())
            })
            .await;
            assert_eq!(code, 3, "{what}: kubectl passes the exit status");
            let cast = finished_cast(&dir, if what == "exec" { 0 } else { 1 }).await;
            assert_eq!(cast.header["kind"], what);
            assert_eq!(cast.header["tty"], true);
            // The terminal's size: in the header, or (kubectl attach first sends one
            // row and column more, to make the program redraw) the last resize event.
            let size = cast
                .events
                .iter()
                .rev()
                .find(|e| e.1 == "r")
                .map(|e| e.2.clone())
                .unwrap_or_else(|| format!("{}x{}", cast.header["width"], cast.header["height"]));
            assert_eq!(size, "100x30", "{what}: {}", cast.header);
            let input = cast.joined("i");
            assert!(input.contains("echo typed-through-tmux\r") && input.contains("exit 3\r"), "{what}: {input:?}");
            let out = cast.joined("o");
            assert!(out.contains("$ echo typed-through-tmux\r\ntyped-through-tmux\r\n$ "), "{what}: {out:?}");
            assert_eq!(cast.events.last().unwrap().2, "exit 3", "{what}");
            let (printed, code) =
                in_tmux(&home.path().join("tmux2.sock"), &format!("asciinema cat {}", cast.path.display())).await;
            assert_eq!(code, 0, "{printed}");
            assert!(printed.contains("typed-through-tmux"), "{printed:?}");
            assert!(api.resizes().contains(&(100, 30)), "{:?}", api.resizes());
        }
        let _ = Command::new("tmux").arg("-S").arg(&sock).arg("kill-server").output().await;
        let _ = Command::new("tmux").arg("-S").arg(home.path().join("tmux2.sock")).arg("kill-server").output().await;
        srv.stop().await;
    })
    .await;
}

/// An unusable recordings directory: `required` refuses with the sentence kubectl
/// prints and nothing reaches the API server; `best_effort` runs the session and
/// the server logs why it was not recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_directory_fails_closed_or_open() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        server_log();
        let api = KubeApi::start().await;
        let open_api = KubeApi::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let bad = file.join("recordings");
        let srv = TestServer::start(|c| {
            c.kube.push(cluster(&api, "prod", Mode::Required, &bad));
            c.kube.push(cluster(&open_api, "lenient", Mode::BestEffort, &bad));
        })
        .await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let kc = kube_login(&home, &srv, &id, "prod").await;
        let out = exec_cat(&home, &kc, b"x\n").await;
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        let sentence = "exec sessions on kube cluster prod must be recorded, but the recording could not be started: \
                        cannot use the recordings directory";
        assert!(stderr.contains(sentence), "{stderr}");
        assert!(stderr.contains("Not a directory"), "{stderr}");
        assert_eq!(api.execs(), 0);
        assert!(api.requests().iter().all(|r| !r.path.ends_with("/exec")), "an exec request reached the API server");

        let kc2 = home.path().join("kubeconfig2").to_str().unwrap().to_string();
        let mut c = home.oneport_via(&srv.addr.to_string(), &id, &kc2);
        c.args(["kube", "login", "lenient"]);
        ok(c, "kube login stage").await;
        let out = exec_cat(&home, &kc2, b"runs anyway\n").await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(out.stdout, b"runs anyway\n");
        let log = server_log();
        let line = log
            .lines()
            .find(|l| l.contains("kube=lenient") && l.contains("not recorded (best_effort)"))
            .unwrap_or_else(|| panic!("no best_effort log line:\n{log}"));
        assert!(line.contains("Not a directory"), "{line}");
        let audit = log_line(|l| l.contains("kube session ended") && l.contains("kube=lenient")).await;
        assert!(audit.contains("recorded=false") && audit.contains("could not be started"), "{audit}");
        srv.stop().await;
    })
    .await;
}

/// The recordings directory removed during a session: `required` ends it with a
/// message on the error channel that kubectl prints; `best_effort` keeps it going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_removed_mid_session() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        server_log();
        let api = KubeApi::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let (closed, open) = (tmp.path().join("closed"), tmp.path().join("open"));
        let srv = TestServer::start(|c| {
            c.kube.push(cluster(&api, "prod", Mode::Required, &closed));
            c.kube.push(cluster(&api, "midway", Mode::BestEffort, &open));
        })
        .await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        for (name, dir) in [("prod", &closed), ("midway", &open)] {
            let kc = home.path().join(format!("kc-{name}")).to_str().unwrap().to_string();
            let mut c = home.oneport_via(&srv.addr.to_string(), &id, &kc);
            c.args(["kube", "login", name]);
            ok(c, "kube login").await;
            let mut c = home.kubectl(&kc);
            c.args(["exec", "-i", POD, "--", "cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            stdin.write_all(b"before\n").await.unwrap();
            let mut got = vec![0u8; 7];
            tokio::time::timeout(Duration::from_secs(30), stdout.read_exact(&mut got)).await.unwrap().unwrap();
            assert_eq!(got, b"before\n");
            poll_until(Duration::from_secs(10), "the input to be recorded", || async {
                casts(dir).first().map(|p| std::fs::read_to_string(p).unwrap_or_default().contains("before")).filter(|b| *b)
            })
            .await;
            std::fs::remove_dir_all(dir).unwrap();
            // The next events find the file gone.
            let _ = stdin.write_all(b"after\n").await;
            let _ = stdin.write_all(b"more\n").await;
            if name == "prod" {
                let out = tokio::time::timeout(KUBECTL_TIMEOUT, child.wait_with_output()).await.unwrap().unwrap();
                assert!(!out.status.success());
                let stderr = text(&out.stderr);
                assert!(
                    stderr.contains("exec session on kube cluster prod ended: it must be recorded, and the recording failed: the recording file"),
                    "{stderr}"
                );
                assert!(stderr.contains("was the recordings directory removed?"), "{stderr}");
            } else {
                let mut rest = vec![0u8; 11];
                tokio::time::timeout(Duration::from_secs(30), stdout.read_exact(&mut rest)).await.unwrap().unwrap();
                assert_eq!(rest, b"after\nmore\n");
                drop(stdin);
                let out = tokio::time::timeout(KUBECTL_TIMEOUT, child.wait_with_output()).await.unwrap().unwrap();
                assert!(out.status.success(), "{}", text(&out.stderr));
                let log = server_log();
                assert!(log.lines().any(|l| l.contains("the recording failed mid-session (best_effort)")), "{log}");
            }
        }
        srv.stop().await;
    })
    .await;
}

/// The throwaway CA, server URL, TLS server name, client certificate and key of a
/// `proxy kube` kubeconfig.
fn kubeconfig_parts(path: &str) -> (Vec<u8>, String, String, Vec<u8>, Vec<u8>) {
    use base64::Engine;
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let b64 = |v: &serde_yaml_ng::Value| base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
    let c = &doc["clusters"][0]["cluster"];
    let u = &doc["users"][0]["user"];
    (
        b64(&c["certificate-authority-data"]),
        c["server"].as_str().unwrap().to_string(),
        c["tls-server-name"].as_str().unwrap().to_string(),
        b64(&u["client-certificate-data"]),
        b64(&u["client-key-data"]),
    )
}

/// A raw SPDY/3.1 exec upgrade through `proxy kube` (kubectl 1.32 no longer sends
/// SPDY for exec unless told to; this is the request it sent): returns the
/// response head and what followed it.
async fn raw_spdy_exec(kubeconfig: &str) -> String {
    let (mut tls, addr) = proxy_tls(kubeconfig).await;
    let req = format!(
        "POST /api/v1/namespaces/default/pods/{POD}/exec?command=cat&stdin=true&stdout=true HTTP/1.1\r\n\
         Host: {addr}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\
         Content-Length: 0\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await.unwrap();
    // Up to the SPDY marker line, or the end of a Status body (the connection stays
    // open for keep-alive after a refusal).
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let n = tls.read(&mut buf).await.unwrap_or(0);
            got.extend_from_slice(&buf[..n]);
            let t = text(&got);
            if n == 0 || t.contains("spdy-session-started\n") || (t.contains("\r\n\r\n") && t.ends_with('}')) {
                return;
            }
        }
    })
    .await;
    text(&got)
}

/// A TLS connection to the local end of a `proxy kube` with its kubeconfig's client
/// certificate, and the address it goes to.
async fn proxy_tls(kubeconfig: &str) -> (tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String) {
    let (ca, server, sni, cert, key) = kubeconfig_parts(kubeconfig);
    let addr = server.trim_start_matches("https://").to_string();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    use rustls::pki_types::pem::PemObject;
    let cfg = rustls::ClientConfig::builder_with_provider(oneport::net::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            rustls::pki_types::CertificateDer::pem_slice_iter(&cert).collect::<Result<Vec<_>, _>>().unwrap(),
            rustls::pki_types::PrivateKeyDer::from_pem_slice(&key).unwrap(),
        )
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(sni).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.unwrap();
    (tls, addr)
}

/// SPDY: `required` refuses it with the sentence (kubectl told to use SPDY, and a
/// raw upgrade); `best_effort` passes it through unrecorded and logs that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdy_is_refused_when_required_and_passed_when_best_effort() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        server_log();
        let api = KubeApi::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let srv = TestServer::start(|c| {
            c.kube.push(cluster(&api, "prod", Mode::Required, &tmp.path().join("a")));
            c.kube.push(cluster(&api, "stage", Mode::BestEffort, &tmp.path().join("b")));
        })
        .await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let kc = kube_login(&home, &srv, &id, "prod").await;
        let mut c = home.kubectl(&kc);
        c.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false").args(["exec", "-i", POD, "--", "cat"]);
        let out = output(c).await;
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("exec sessions on kube cluster prod must be recorded, but the recording could not be started: this client speaks SPDY/3.1"),
            "{stderr}"
        );
        assert!(stderr.contains("kubectl >= 1.30"), "{stderr}");
        assert_eq!(api.execs(), 0);

        let p = proxy_kube(home.oneport_via(&srv.addr.to_string(), &id, "/nonexistent"), "prod").await;
        let answer = raw_spdy_exec(&p.kubeconfig).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(answer.contains("this client speaks SPDY/3.1"), "{answer}");
        assert_eq!(api.execs(), 0);

        let p = proxy_kube(home.oneport_via(&srv.addr.to_string(), &id, "/nonexistent"), "stage").await;
        let answer = raw_spdy_exec(&p.kubeconfig).await;
        assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
        assert!(answer.contains("spdy-session-started"), "{answer}");
        assert_eq!(api.execs(), 1);
        assert!(casts(&tmp.path().join("b")).is_empty());
        let log = server_log();
        assert!(
            log.lines().any(|l| l.contains("kube=stage") && l.contains("not recorded (best_effort)") && l.contains("SPDY/3.1")),
            "{log}"
        );
        srv.stop().await;
    })
    .await;
}

/// kubectl 1.32 offers only `v5.channel.k8s.io` over WebSocket; an API server that
/// speaks only v4 makes it fall back to SPDY/3.1 (with v4 inside), which `required`
/// refuses with the SPDY sentence, before anything reaches the API server's exec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_falls_back_to_spdy_from_a_v4_only_api_server() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        server_log();
        let api = KubeApi::start().await;
        api.set_protocols(&["v4.channel.k8s.io"]);
        let rec = tempfile::tempdir().unwrap();
        let dir = rec.path().join("recordings");
        let srv = TestServer::start(|c| c.kube.push(cluster(&api, "prod", Mode::Required, &dir))).await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let kc = kube_login(&home, &srv, &id, "prod").await;
        let out = exec_cat(&home, &kc, b"x\n").await;
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("exec sessions on kube cluster prod must be recorded, but the recording could not be started: this client speaks SPDY/3.1"),
            "{stderr}"
        );
        let offers: Vec<String> = api
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/exec"))
            .map(|r| r.all("sec-websocket-protocol").join(","))
            .collect();
        assert_eq!(offers, ["v5.channel.k8s.io"], "what kubectl offered the API server");
        assert_eq!(api.execs(), 0);
        assert!(casts(&dir).is_empty());
        srv.stop().await;
    })
    .await;
}

/// The subprotocols kubectl 1.32 does not offer, from a raw WebSocket client through
/// `proxy kube`: `v4.channel.k8s.io` (binary, channel byte first) and the base64
/// variants (text: the channel as a digit, then base64). Each session is relayed
/// unchanged and recorded decoded: input, output and the exit status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_and_base64_exec_sessions_are_recorded() {
    use base64::Engine;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let b64 = base64::engine::general_purpose::STANDARD;
    deadline(async {
        server_log();
        let api = KubeApi::start().await;
        let protocols = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io", "base64.channel.k8s.io"];
        api.set_protocols(&protocols);
        let rec = tempfile::tempdir().unwrap();
        let dir = rec.path().join("recordings");
        let srv = TestServer::start(|c| c.kube.push(cluster(&api, "prod", Mode::Required, &dir))).await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let p = proxy_kube(home.oneport_via(&srv.addr.to_string(), &id, "/nonexistent"), "prod").await;
        for (n, protocol) in protocols.into_iter().enumerate() {
            let base64 = protocol.contains("base64");
            let (tls, addr) = proxy_tls(&p.kubeconfig).await;
            let url =
                format!("wss://{addr}/api/v1/namespaces/default/pods/{POD}/exec?command=sh&stdin=true&stdout=true");
            let mut req = url.into_client_request().unwrap();
            req.headers_mut().insert("sec-websocket-protocol", protocol.parse().unwrap());
            let (mut ws, resp) =
                tokio::time::timeout(Duration::from_secs(30), tokio_tungstenite::client_async(req, tls))
                    .await
                    .expect("the WebSocket handshake timed out")
                    .unwrap_or_else(|e| panic!("{protocol}: the upgrade failed: {e}"));
            assert_eq!(resp.headers()["sec-websocket-protocol"], protocol);
            let typed = b"echo recorded-too\nexit 5\n";
            let stdin = if base64 {
                Message::Text(format!("0{}", b64.encode(typed)).into())
            } else {
                Message::Binary([&[0u8][..], typed].concat().into())
            };
            ws.send(stdin).await.unwrap();
            let (mut stdout, mut status) = (Vec::new(), String::new());
            let read = async {
                while let Some(Ok(m)) = ws.next().await {
                    let (channel, data) = match m {
                        Message::Text(t) if base64 => (t.as_bytes()[0] - b'0', b64.decode(&t.as_bytes()[1..]).unwrap()),
                        Message::Binary(b) if !base64 => (b[0], b[1..].to_vec()),
                        _ => continue,
                    };
                    match channel {
                        1 => stdout.extend_from_slice(&data),
                        3 => status = text(&data),
                        c => panic!("{protocol}: output on channel {c}"),
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(30), read).await.expect("the session did not end");
            assert_eq!(text(&stdout), "$ echo recorded-too\r\nrecorded-too\r\n$ exit 5\r\n", "{protocol}");
            assert!(status.contains("\"NonZeroExitCode\""), "{protocol}: {status}");
            let cast = finished_cast(&dir, n).await;
            assert_eq!(cast.header["protocol"], protocol);
            assert_eq!(cast.joined("i"), text(typed), "{protocol}");
            assert_eq!(cast.joined("o"), text(&stdout), "{protocol}");
            assert_eq!(cast.events.last().unwrap().2, "exit 5", "{protocol}");
            let sid = cast.header["session_id"].as_str().unwrap().to_string();
            let audit = log_line(|l| l.contains("kube session ended") && l.contains(&sid)).await;
            assert!(audit.contains(&format!("protocol={protocol}")) && audit.contains("recorded=true"), "{audit}");
        }
        srv.stop().await;
    })
    .await;
}

/// `kubectl port-forward` through the server: the API double accepts the upgrade
/// (kubectl >= 1.31 tunnels SPDY in WebSocket) and kubectl listens; when it ends,
/// the server logs the audit line; nothing is recorded, even under `required`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_is_logged_not_recorded() {
    if !have(KUBECTL) {
        return;
    }
    deadline(async {
        server_log();
        let api = KubeApi::start().await;
        let rec = tempfile::tempdir().unwrap();
        let dir = rec.path().join("recordings");
        let srv = TestServer::start(|c| c.kube.push(cluster(&api, "prod", Mode::Required, &dir))).await;
        let id = srv.identity("alice", &["dev"]);
        let home = Home::new();
        let kc = kube_login(&home, &srv, &id, "prod").await;
        let mut c = home.kubectl(&kc);
        c.args(["port-forward", POD, ":8080"]).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(KUBECTL_TIMEOUT, lines.next_line())
            .await
            .expect("kubectl port-forward printed nothing")
            .unwrap()
            .unwrap_or_default();
        assert!(line.starts_with("Forwarding from 127.0.0.1:") && line.ends_with(" -> 8080"), "{line:?}");
        assert_eq!(api.port_forwards(), 1);
        let pf = api.requests().into_iter().find(|r| r.path.ends_with("/portforward")).unwrap();
        assert_eq!(pf.all("sec-websocket-protocol").join(","), "SPDY/3.1+portforward.k8s.io");
        child.kill().await.unwrap();
        let audit = log_line(|l| l.contains("kube session ended") && l.contains("kind=port-forward")).await;
        for want in
            ["user=alice", "kube=prod", "pod=web-1", "recorded=false", "reason=port-forward is not a terminal session"]
        {
            assert!(audit.contains(want), "{want} not in {audit}");
        }
        assert!(casts(&dir).is_empty(), "a port-forward was recorded");
        srv.stop().await;
    })
    .await;
}
