//! The cost of recording as a kubectl user feels it (issue 13's figure): `kubectl
//! exec -i POD -- cat` with BENCH_MIB (default 50) MiB of text on stdin, through the
//! routing server to the Kubernetes API double (tests/common/kube_api.rs), against
//! two clusters of the same server that differ only in their `recording` block:
//! `off` and `required` (an asciicast file in a temporary directory, both
//! directions recorded). The payload comes back on stdout and is checked by hash.
//!
//! Two paths, each with and without recording: `kube login` (kubectl to the server
//! directly, routed by SNI) and `proxy kube` (kubectl to the local proxy, which
//! carries its connection on a multiplexed session).
//!
//! Run:
//!
//!     cargo bench --bench recording_kubectl
//!     BENCH_MIB=100 BENCH_ROUNDS=7 cargo bench --bench recording_kubectl
//!
//! Each round runs the four ways in turn; printed are the median wall time and
//! rate of each, the median of the per-round slowdowns of recorded against not
//! recorded on the same path (the figure to quote on a shared machine), and the CPU
//! time per run of this process (the server and the API double: user + system from
//! /proc/self/stat) and of kubectl (the children waited for: cutime + cstime; the
//! `proxy kube` process runs throughout and is not in it). kubectl must be
//! installed (scripts/install-deps).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::kube_api::{KubeApi, POD};
use common::{oneport, scrubbed, sha256, TestServer};
use oneport::server::config::{Allow, Kube};
use oneport::server::recording::{Mode, Recording};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const KUBECTL: &str = "kubectl";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
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

/// User + system CPU seconds from /proc/self/stat: of this process, or (`children`)
/// of its children that were waited for (cutime + cstime).
fn cpu_secs(children: bool) -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the command name (in parentheses): utime, stime, cutime, cstime
    // are the 14th to 17th of the line.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    let i = if children { 13 } else { 11 };
    (ticks(i) + ticks(i + 1)) / 100.0
}

/// kubectl with `home` as HOME and `kubeconfig`.
fn kubectl(home: &Path, kubeconfig: &str) -> Command {
    let mut c = scrubbed(KUBECTL, home);
    c.env("HOME", home).env("KUBECONFIG", kubeconfig);
    c
}

/// `kube login NAME` into a kubeconfig of its own; returns its path.
async fn kube_login(home: &Path, srv: &TestServer, id: &Path, name: &str) -> String {
    let kc = home.join(format!("kubeconfig-{name}")).to_str().unwrap().to_string();
    let mut c = oneport(home);
    c.env("HOME", home).env("KUBECONFIG", &kc).args(["--proxy", &srv.addr.to_string(), "--identity"]).arg(id);
    c.args(["kube", "login", name]);
    let out = c.output().await.unwrap();
    assert!(out.status.success(), "kube login {name}: {}", String::from_utf8_lossy(&out.stderr));
    kc
}

/// A running `proxy kube NAME`: the child and its kubeconfig.
async fn proxy_kube(home: &Path, srv: &TestServer, id: &Path, name: &str) -> (tokio::process::Child, String) {
    let mut c = oneport(home);
    c.env("HOME", home).args(["--proxy", &srv.addr.to_string(), "--identity"]).arg(id);
    c.args(["proxy", "kube", name]).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let kc = tokio::time::timeout(Duration::from_secs(60), async {
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
    (child, kc)
}

/// One `kubectl exec -i POD -- cat` of `payload`: its wall time, the output checked.
async fn exec_cat(home: &Path, kubeconfig: &str, payload: &std::sync::Arc<Vec<u8>>, want: &str) -> Duration {
    let mut c = kubectl(home, kubeconfig);
    c.args(["exec", "-i", POD, "--", "cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let data = payload.clone();
    let writer = tokio::spawn(async move {
        stdin.write_all(&data).await.unwrap();
        stdin.shutdown().await.unwrap();
    });
    let mut got = Vec::with_capacity(payload.len());
    stdout.read_to_end(&mut got).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output()).await.unwrap().unwrap();
    let took = start.elapsed();
    writer.await.unwrap();
    assert!(out.status.success(), "kubectl exec: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256(&got), want, "the bytes came back changed");
    took
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mib = env("BENCH_MIB", 50);
    let rounds = env("BENCH_ROUNDS", 5).max(1);
    assert!(common::which(KUBECTL).is_some(), "kubectl is not installed (scripts/install-deps installs it)");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let api = KubeApi::start().await;
        let recordings = tempfile::tempdir().unwrap();
        let rec_dir: PathBuf = recordings.path().join("recordings");
        let srv = TestServer::start(|c| {
            c.kube.push(cluster(&api, "plain", Mode::Off, &rec_dir));
            c.kube.push(cluster(&api, "rec", Mode::Required, &rec_dir));
        })
        .await;
        let id = srv.identity("alice", &["dev"]);
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        // Printable text in 80-column lines, as `cat` of a log file sends.
        let line: Vec<u8> = (0..80u8).map(|i| if i == 79 { b'\n' } else { b'a' + i % 26 }).collect();
        let payload: Vec<u8> = line.iter().copied().cycle().take(mib << 20).collect();
        let want = sha256(&payload);
        let payload = std::sync::Arc::new(payload);
        let login_plain = kube_login(h, &srv, &id, "plain").await;
        let login_rec = kube_login(h, &srv, &id, "rec").await;
        let (_p1, proxy_plain) = proxy_kube(h, &srv, &id, "plain").await;
        let (_p2, proxy_rec) = proxy_kube(h, &srv, &id, "rec").await;
        let ways = [
            ("kube login, not recorded", &login_plain),
            ("kube login, recorded", &login_rec),
            ("proxy kube, not recorded", &proxy_plain),
            ("proxy kube, recorded", &proxy_rec),
        ];
        // One warm-up of each (kubectl's discovery cache, the sessions).
        for (_, kc) in &ways {
            exec_cat(h, kc, &payload, &want).await;
        }
        println!("recording through kubectl: exec -i {POD} -- cat of {mib} MiB, {rounds} rounds");
        let mut times: [Vec<f64>; 4] = Default::default();
        let mut cpu = [(0.0f64, 0.0f64); 4];
        let mut slow: [Vec<f64>; 2] = Default::default();
        for _ in 0..rounds {
            let mut t = [0.0f64; 4];
            for (i, (_, kc)) in ways.iter().enumerate() {
                let (s0, c0) = (cpu_secs(false), cpu_secs(true));
                t[i] = exec_cat(h, kc, &payload, &want).await.as_secs_f64();
                cpu[i].0 += cpu_secs(false) - s0;
                cpu[i].1 += cpu_secs(true) - c0;
                times[i].push(t[i]);
            }
            slow[0].push(t[1] / t[0] - 1.0);
            slow[1].push(t[3] / t[2] - 1.0);
            // Keep the disk use of a long run bounded.
            for e in std::fs::read_dir(&rec_dir).into_iter().flatten().flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        println!(
            "  {:<28} {:>9} {:>11} {:>12} {:>20} {:>17}",
            "", "median s", "MiB/s", "vs unrecorded", "server CPU ms/run", "kubectl CPU ms/run"
        );
        for (i, (name, _)) in ways.iter().enumerate() {
            let m = median(&mut times[i].clone());
            let vs = if i % 2 == 1 { format!("{:+.1}%", median(&mut slow[i / 2].clone()) * 100.0) } else { "".into() };
            println!(
                "  {name:<28} {m:>9.3} {:>11.1} {vs:>12} {:>20.0} {:>17.0}",
                mib as f64 / m,
                cpu[i].0 * 1000.0 / rounds as f64,
                cpu[i].1 * 1000.0 / rounds as f64
            );
        }
        for (path, s) in ["kube login", "proxy kube"].iter().zip(&slow) {
            let m = median(&mut s.clone()) * 100.0;
            let verdict = if m <= 20.0 { "met" } else { "missed" };
            println!("  issue 13 goal, {path}: recording slows the session by {m:+.1}% (goal <= +20%): {verdict}");
        }
        srv.stop().await;
    });
}
