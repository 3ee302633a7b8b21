//! Collects the figures (keeping the best of the rounds: on a shared machine, noise
//! only ever slows a run down) and prints the compact table, with the aims of
//! issue 2 and the goals of issue 11 checked at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::measure::{ConnRate, Rate, Rss};
use crate::wan::{Contention, Rtts};
use crate::Dir;

/// The stunnel and oneport peer names, as the table shows them.
const STUNNEL: &str = "stunnel";
const ONEPORT: &str = "oneport";
const PLAIN: &str = "plain TCP";
const UPGRADED: &str = "oneport via nginx (WS)";
const CEILING: &str = "no-crypto ceiling (socat)";
const WSTUNNEL: &str = "wstunnel";
const WSTUNNEL_NGINX: &str = "wstunnel via nginx (WS)";
const PERCON: &str = "oneport per connection";
const UPGRADED_PERCON: &str = "oneport per connection via nginx (WS)";

/// Where the CPU went during one throughput figure.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// CPU seconds of each of the peer's processes, by role.
    pub roles: Vec<(&'static str, f64)>,
    /// CPU seconds of the benchmark itself (load, sink and backend).
    pub own: f64,
    /// How busy the whole machine was meanwhile, 0 to 1.
    pub busy: f64,
    /// GiB moved.
    pub gib: f64,
}

/// Everything measured, by peer name.
#[derive(Debug, Default)]
pub struct Results {
    header: String,
    failures: Vec<(String, String)>,
    throughput: BTreeMap<(String, bool), Rate>,
    cpu_per_gib: BTreeMap<(String, bool), f64>,
    split: BTreeMap<(String, bool), Split>,
    conns: BTreeMap<(String, usize), ConnRate>,
    resumption: Vec<(String, (usize, usize))>,
    idle: BTreeMap<(String, usize), Vec<Rss>>,
    rtts: BTreeMap<String, Rtts>,
    contention: BTreeMap<String, Contention>,
}

/// One line about the machine and the run.
pub fn machine(_peers: &[crate::Kind], secs: Duration, rounds: usize) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let stunnel = crate::peers::stunnel_bin()
        .and_then(|b| std::process::Command::new(b).arg("-version").output().ok())
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stderr).into_owned();
            let v = text.lines().find(|l| l.starts_with("stunnel ")).unwrap_or("").split(" on ").next().unwrap_or("");
            let ssl = text.lines().find(|l| l.starts_with("Running  with")).unwrap_or("").replace("Running  with ", "");
            format!("{v} ({ssl})")
        })
        .unwrap_or_else(|| "stunnel not installed".into());
    // The machine's congestion control sets every figure: BBR paces each socket
    // (loopback has no fq qdisc, so the kernel does it with a timer per socket).
    // oneport's own loopback sockets leave it (net/connect.rs); the peers' and this
    // benchmark's keep it.
    let cc = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control").unwrap_or_default();
    let cc = match cc.trim() {
        "" => "TCP congestion control unknown".to_string(),
        c if c.starts_with("bbr") => {
            format!("TCP congestion control {c}: paced on loopback, except oneport's own sockets (they use cubic)")
        }
        c => format!("TCP congestion control {c}"),
    };
    format!(
        "{cpu}, {cores} cores, load {} at start, Linux {}; oneport {} (release); {stunnel}\n{cc}\n{} s per figure, best of {rounds} rounds",
        load.join(" "),
        kernel.trim(),
        env!("CARGO_PKG_VERSION"),
        secs.as_secs_f64(),
    )
}

impl Results {
    /// Empty results under `header`.
    pub fn new(header: String) -> Results {
        Results { header, ..Default::default() }
    }

    /// A peer that could not be measured.
    pub fn failed(&mut self, peer: &str, why: String) {
        self.failures.push((peer.to_string(), why));
    }

    /// A throughput run (the best of the rounds is kept).
    pub fn throughput(&mut self, peer: &str, dir: Dir, r: Result<Rate, String>) {
        match r {
            Ok(rate) => {
                let key = (peer.to_string(), dir == Dir::Up);
                let e = self.throughput.entry(key.clone()).or_insert(rate);
                if rate.mib_s() > e.mib_s() {
                    *e = rate;
                }
                if let Some(c) = rate.cpu_per_gib() {
                    let e = self.cpu_per_gib.entry(key).or_insert(c);
                    *e = e.min(c);
                }
            }
            Err(e) => self.failed(peer, format!("throughput {dir:?}: {e}")),
        }
    }

    /// A throughput run with where its CPU went: the split of the round whose
    /// figure is kept.
    pub fn throughput_split(&mut self, peer: &str, dir: Dir, r: Result<(Rate, Split), String>) {
        if let Ok((rate, split)) = &r {
            let key = (peer.to_string(), dir == Dir::Up);
            if self.throughput.get(&key).is_none_or(|best| rate.mib_s() > best.mib_s()) {
                self.split.insert(key, split.clone());
            }
        }
        self.throughput(peer, dir, r.map(|(rate, _)| rate));
    }

    /// A connection-rate run (the best of the rounds is kept).
    pub fn conn_rate(&mut self, peer: &str, concurrency: usize, r: Result<ConnRate, String>) {
        match r {
            Ok(c) => {
                let e = self.conns.entry((peer.to_string(), concurrency)).or_insert_with(|| c.clone());
                if c.per_sec > e.per_sec {
                    *e = c;
                }
            }
            Err(e) => self.failed(peer, format!("new connections (concurrency {concurrency}): {e}")),
        }
    }

    /// How a peer's client handshakes went: (resumed, full).
    pub fn resumption(&mut self, peer: &str, counts: (usize, usize)) {
        if counts != (0, 0) {
            self.resumption.push((peer.to_string(), counts));
        }
    }

    /// An idle-memory run (`bulk`: bytes each connection moved each way first).
    pub fn idle(&mut self, peer: &str, bulk: usize, r: Result<Vec<Rss>, String>) {
        match r {
            Ok(v) => {
                self.idle.insert((peer.to_string(), bulk), v);
            }
            Err(e) => self.failed(peer, format!("idle memory ({} KiB each way first): {e}", bulk / 1024)),
        }
    }

    /// A round-trip run.
    pub fn rtts(&mut self, peer: &str, r: Result<Rtts, String>) {
        match r {
            Ok(v) => {
                self.rtts.insert(peer.to_string(), v);
            }
            Err(e) => self.failed(peer, format!("round trips: {e}")),
        }
    }

    /// An echo-latency run.
    pub fn contention(&mut self, peer: &str, r: Result<Contention, String>) {
        match r {
            Ok(v) => {
                self.contention.insert(peer.to_string(), v);
            }
            Err(e) => self.failed(peer, format!("echo latency: {e}")),
        }
    }

    fn print_wan(&self, o: &mut String, peers: &[String]) {
        if !self.rtts.is_empty() {
            let _ = writeln!(
                o,
                "Round trips from a local connect to the backend's first answer (delay relay in front of the server)"
            );
            let _ = writeln!(o, "  {:<37} {:>10} {:>10}", "peer", "first", "Nth (median)");
            for p in peers {
                if let Some(r) = self.rtts.get(p) {
                    let _ = writeln!(o, "  {p:<37} {:>7.2} RTT {:>7.2} RTT", r.first, r.nth);
                }
            }
            let _ = writeln!(o);
        }
        if !self.contention.is_empty() {
            let _ = writeln!(o, "One-byte echo latency, ms: alone, and while another connection of the path downloads");
            let _ = writeln!(
                o,
                "  {:<37} {:>9} {:>9} {:>11} {:>11} {:>10}",
                "peer", "alone p50", "p99", "loaded p50", "p99", "bulk MiB/s"
            );
            for p in peers {
                if let Some(c) = self.contention.get(p) {
                    let _ = writeln!(
                        o,
                        "  {p:<37} {:>9.2} {:>9.2} {:>11.2} {:>11.2} {:>10.0}",
                        c.alone.0, c.alone.1, c.loaded.0, c.loaded.1, c.bulk_mib_s
                    );
                }
            }
            let _ = writeln!(o);
        }
    }

    fn rate(&self, peer: &str, up: bool) -> Option<f64> {
        self.throughput.get(&(peer.to_string(), up)).map(Rate::mib_s)
    }

    fn ratio(a: Option<f64>, b: Option<f64>) -> String {
        match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".into(),
        }
    }

    /// Prints the table to stdout.
    pub fn print(&self, peers: &[String], n_idle: usize, concurrency: usize) {
        let mut o = String::new();
        let _ = writeln!(o, "\n== oneport benchmark ==\n{}\n", self.header);
        self.print_throughput(&mut o, peers);
        self.print_split(&mut o, peers);
        self.print_conns(&mut o, peers, concurrency);
        self.print_idle(&mut o, peers, n_idle);
        self.print_wan(&mut o, peers);
        self.print_goals(&mut o, n_idle);
        self.print_goals_12(&mut o, concurrency);
        for (peer, why) in &self.failures {
            let _ = writeln!(o, "FAILED {peer}: {why}");
        }
        print!("{o}");
    }

    fn print_throughput(&self, o: &mut String, peers: &[String]) {
        if self.throughput.is_empty() {
            return;
        }
        let _ = writeln!(o, "Throughput, MiB/s (one connection, every byte checked); CPU s/GiB = CPU time of the path's processes per GiB moved");
        let _ = writeln!(
            o,
            "  {:<37} {:>7} {:>8} {:>14} {:>14} {:>14} {:>13}",
            "peer", "upload", "download", "vs plain u/d", "vs ceiling u/d", "vs stunnel u/d", "CPU s/GiB u/d"
        );
        for p in peers {
            let (up, down) = (self.rate(p, true), self.rate(p, false));
            if up.is_none() && down.is_none() {
                continue;
            }
            let f = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
            let vs = |base: &str| {
                format!("{} / {}", Self::ratio(up, self.rate(base, true)), Self::ratio(down, self.rate(base, false)))
            };
            let cpu = |up: bool| self.cpu_per_gib.get(&(p.clone(), up)).map(|c| format!("{c:.2}"));
            let cpu = match (cpu(true), cpu(false)) {
                (Some(u), Some(d)) => format!("{u} / {d}"),
                _ => "-".into(),
            };
            let _ = writeln!(
                o,
                "  {:<37} {:>7} {:>8} {:>14} {:>14} {:>14} {:>13}",
                p,
                f(up),
                f(down),
                vs(PLAIN),
                vs(CEILING),
                vs(STUNNEL),
                cpu
            );
        }
        let _ = writeln!(o);
    }

    /// CPU s/GiB by process for each figure above, the benchmark's own share, and
    /// how busy the machine was: a path that leaves the machine idle waits on
    /// something; one that fills it is as fast as its CPU per byte lets it be.
    fn print_split(&self, o: &mut String, peers: &[String]) {
        if self.split.is_empty() {
            return;
        }
        let _ = writeln!(o, "Where the CPU went (s/GiB by process, in the round whose MiB/s is kept above; the CPU column above is the lowest of the rounds; bench = this benchmark's load, sink and backend; busy = the whole machine)");
        for p in peers {
            for (up, dir) in [(true, "up"), (false, "down")] {
                let Some(s) = self.split.get(&(p.clone(), up)) else { continue };
                let gib = s.gib.max(1e-9);
                let roles: Vec<String> = s.roles.iter().map(|(r, c)| format!("{r} {:.2}", c / gib)).collect();
                let _ = writeln!(
                    o,
                    "  {:<37} {:<5} {:<40} bench {:.2}   busy {:>3.0}%",
                    p,
                    dir,
                    roles.join("  "),
                    s.own / gib,
                    s.busy * 100.0
                );
            }
        }
        let _ = writeln!(o);
    }

    fn print_conns(&self, o: &mut String, peers: &[String], concurrency: usize) {
        if self.conns.is_empty() {
            return;
        }
        let _ = writeln!(o, "New connections per second (connect, 1-byte round trip, close)");
        let _ = writeln!(
            o,
            "  {:<37} {:>10} {:>8} {:>10} {:>8} {:>8} {:>16} {:>12}",
            "peer",
            "sequential",
            "p50 ms",
            format!("{concurrency} at once"),
            "p50 ms",
            "p99 ms",
            "vs stunnel s/c",
            "CPU ms/conn"
        );
        for p in peers {
            let (seq, par) = (self.conns.get(&(p.clone(), 1)), self.conns.get(&(p.clone(), concurrency)));
            if seq.is_none() && par.is_none() {
                continue;
            }
            let rate = |c: Option<&ConnRate>| c.map(|c| format!("{:.0}", c.per_sec)).unwrap_or_else(|| "-".into());
            let ms = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
            let st = |c: usize| self.conns.get(&(STUNNEL.to_string(), c)).map(|c| c.per_sec);
            let vs = format!(
                "{} / {}",
                Self::ratio(seq.map(|c| c.per_sec), st(1)),
                Self::ratio(par.map(|c| c.per_sec), st(concurrency))
            );
            let cpu = [seq, par].iter().filter_map(|c| c.and_then(ConnRate::cpu_ms_per_conn)).reduce(f64::min);
            let _ = writeln!(
                o,
                "  {:<37} {:>10} {:>8} {:>10} {:>8} {:>8} {:>16} {:>12}",
                p,
                rate(seq),
                ms(seq.map(|c| c.p50_ms)),
                rate(par),
                ms(par.map(|c| c.p50_ms)),
                ms(par.map(|c| c.p99_ms)),
                vs,
                ms(cpu)
            );
        }
        for (peer, (r, f)) in &self.resumption {
            let _ = writeln!(o, "  {peer}: client TLS handshakes in this stage: {r} resumed, {f} full");
        }
        let _ = writeln!(o);
    }

    fn print_idle(&self, o: &mut String, peers: &[String], n: usize) {
        if self.idle.is_empty() {
            return;
        }
        let _ = writeln!(
            o,
            "Resident memory per idle connection ({n} connections, fresh processes; VmRSS after - before, / {n})"
        );
        let _ = writeln!(
            o,
            "  {:<37} {:<8} {:<20} {:>11} {:>11} {:>10}",
            "peer", "process", "before idling", "before MiB", "after MiB", "KiB/conn"
        );
        let mut bulks: Vec<usize> = self.idle.keys().map(|k| k.1).collect();
        bulks.sort_unstable();
        bulks.dedup();
        for p in peers {
            for &b in &bulks {
                let what = if b == 0 { "1-byte round trip".to_string() } else { format!("{} KiB each way", b / 1024) };
                for r in self.idle.get(&(p.clone(), b)).into_iter().flatten() {
                    let _ = writeln!(
                        o,
                        "  {:<37} {:<8} {:<20} {:>11.1} {:>11.1} {:>10.1}",
                        p,
                        r.role,
                        what,
                        r.before_kib as f64 / 1024.0,
                        r.after_kib as f64 / 1024.0,
                        r.per_conn_kib(n)
                    );
                }
            }
        }
        let _ = writeln!(o);
    }

    /// The goals of issue 12, as ratios within this run.
    fn print_goals_12(&self, o: &mut String, concurrency: usize) {
        let _ = writeln!(o, "\nGoals of issue 12 (multiplexed sessions; within this run)");
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        for (peer, floor) in [(ONEPORT, PLAIN), (UPGRADED, PLAIN)] {
            match (self.rtts.get(peer), self.rtts.get(floor)) {
                (Some(r), Some(f)) => {
                    let _ = writeln!(
                        o,
                        "  {peer}: a new connection (Nth) reaches the backend's answer in {:.2} RTT, plain TCP in {:.2} (its handshake + the exchange), goal <= 1.25 RTT (the exchange alone): {}",
                        r.nth,
                        f.nth,
                        verdict(r.nth <= 1.25)
                    );
                }
                _ => {
                    let _ = writeln!(o, "  {peer}: round trips not measured in this run (the rtt stage, with plain)");
                }
            }
        }
        let ws = [1, concurrency].map(|c| {
            self.conns
                .get(&(ONEPORT.to_string(), c))
                .zip(self.conns.get(&(WSTUNNEL.to_string(), c)))
                .map(|(a, b)| a.per_sec / b.per_sec)
        });
        match ws {
            [Some(a), Some(b)] => {
                let _ = writeln!(
                    o,
                    "  new connections per second >= 1.5x wstunnel: sequential {a:.2}x, {concurrency} at once {b:.2}x: {}",
                    verdict(a >= 1.5 && b >= 1.5)
                );
            }
            _ => {
                let _ = writeln!(o, "  new connections per second >= 1.5x wstunnel: not measured in this run (needs BENCH_WSTUNNEL_BIN)");
            }
        }
        let rate = |p: &str, up: bool| self.rate(p, up);
        let cpu = |p: &str, up: bool| self.cpu(p, up);
        let pair = |a: Option<f64>, b: Option<f64>| a.zip(b);
        goal_line(
            o,
            "one stream on the multiplexed session >= 0.9x a dedicated connection (mux off)",
            [true, false].map(|up| pair(rate(ONEPORT, up), rate(PERCON, up))),
            &|r| r >= 0.9,
            "the percon peer",
        );
        let _ = writeln!(
            o,
            "  CPU s/GiB, multiplexed vs dedicated (no goal): upload {}, download {}",
            Self::ratio(cpu(ONEPORT, true), cpu(PERCON, true)),
            Self::ratio(cpu(ONEPORT, false), cpu(PERCON, false))
        );
        for p in [ONEPORT, PERCON] {
            if let Some(c) = self.contention.get(p) {
                let _ = writeln!(
                    o,
                    "  {p}: echo p99 {:.2} ms beside a download ({:.0} MiB/s) against {:.2} ms alone (no goal: a stream stays responsive)",
                    c.loaded.1, c.bulk_mib_s, c.alone.1
                );
            }
        }
    }

    fn cpu(&self, peer: &str, up: bool) -> Option<f64> {
        self.cpu_per_gib.get(&(peer.to_string(), up)).copied()
    }

    /// The goals of issue 11, as ratios within this run: each direction must meet
    /// its goal; a goal whose figures were not measured says so.
    fn print_goals(&self, o: &mut String, n: usize) {
        let _ = writeln!(o, "\nGoals of issue 11 (ratios within this run; each direction must meet them)");
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        // The faster (throughput) and the leaner (CPU) of stunnel and wstunnel, per direction.
        let best = |up: bool, f: &dyn Fn(&str, bool) -> Option<f64>, pick: fn(f64, f64) -> f64| match (
            f(STUNNEL, up),
            f(WSTUNNEL, up),
        ) {
            (Some(a), Some(b)) => Some(pick(a, b)),
            _ => None,
        };
        let rate = |p: &str, up: bool| self.rate(p, up);
        let cpu = |p: &str, up: bool| self.cpu(p, up);
        let pair = |a: Option<f64>, b: Option<f64>| a.zip(b);
        let both = "stunnel and wstunnel (BENCH_WSTUNNEL_BIN)";
        goal_line(
            o,
            "direct throughput >= 1.05x the faster of stunnel and wstunnel",
            [true, false].map(|up| pair(rate(ONEPORT, up), best(up, &rate, f64::max))),
            &|r| r >= 1.05,
            both,
        );
        goal_line(
            o,
            "direct throughput >= 0.9x the no-crypto ceiling",
            [true, false].map(|up| pair(rate(ONEPORT, up), rate(CEILING, up))),
            &|r| r >= 0.9,
            "socat",
        );
        goal_line(
            o,
            "direct CPU s/GiB <= 0.95x the leaner of stunnel and wstunnel",
            [true, false].map(|up| pair(cpu(ONEPORT, up), best(up, &cpu, f64::min))),
            &|r| r <= 0.95,
            both,
        );
        goal_line(
            o,
            "upgraded throughput >= 1.1x wstunnel through the same nginx",
            [true, false].map(|up| pair(rate(UPGRADED, up), rate(WSTUNNEL_NGINX, up))),
            &|r| r >= 1.1,
            "nginx and BENCH_WSTUNNEL_BIN",
        );
        let _ = writeln!(
            o,
            "  upgraded CPU s/GiB vs wstunnel through nginx (no goal; nginx included): upload {}, download {}",
            Self::ratio(cpu(UPGRADED, true), cpu(WSTUNNEL_NGINX, true)),
            Self::ratio(cpu(UPGRADED, false), cpu(WSTUNNEL_NGINX, false))
        );
        // Idle memory: every oneport process, direct and upgraded, on a session and
        // per connection, fresh and after bulk.
        let mut worst: Option<(f64, String)> = None;
        for ((peer, bulk), v) in &self.idle {
            if ![ONEPORT, UPGRADED, PERCON, UPGRADED_PERCON].contains(&peer.as_str()) {
                continue;
            }
            for r in v.iter().filter(|r| r.role != "nginx") {
                let k = r.per_conn_kib(n);
                if worst.as_ref().is_none_or(|w| k > w.0) {
                    worst = Some((k, format!("{peer} {} after {} KiB each way", r.role, bulk / 1024)));
                }
            }
        }
        match worst {
            Some((k, what)) => {
                let _ = writeln!(
                    o,
                    "  <= 64 KiB per idle connection (goal at 9,000: BENCH_CONNS=9000; here {n}), every oneport process, direct and upgraded, on a session and per connection, after bulk too: worst {k:.1} KiB ({what}): {}",
                    verdict(k <= 64.0)
                );
            }
            None => {
                let _ = writeln!(o, "  <= 64 KiB per idle connection: not measured in this run");
            }
        }
    }
}

/// One goal's line: the ratio of each direction (`r`: the value and its reference,
/// upload then download) and the verdict, or what the run lacked to measure it.
fn goal_line(o: &mut String, goal: &str, r: [Option<(f64, f64)>; 2], ok: &dyn Fn(f64) -> bool, needs: &str) {
    match r {
        [Some((u, ub)), Some((d, db))] => {
            let (ru, rd) = (u / ub, d / db);
            let verdict = if ok(ru) && ok(rd) { "met" } else { "MISSED" };
            let _ = writeln!(o, "  {goal}: upload {ru:.2}x, download {rd:.2}x: {verdict}");
        }
        _ => {
            let _ = writeln!(o, "  {goal}: not measured in this run (needs {needs})");
        }
    }
}
