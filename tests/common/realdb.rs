//! Real databases on loopback: PostgreSQL 15 (run as the `postgres` user, which it
//! insists on) and MariaDB, each in its own temporary directory on a port picked at
//! start (retried on the rare collision), stopped when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use oneport::server::config::{Allow, Database, DbProtocol};
use tokio::process::{Child, Command};

use super::{free_port, have, oneport, poll_until, TestServer};

/// Where Debian puts the PostgreSQL 15 server programs.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Attempts at a free port before giving up.
const PORT_ATTEMPTS: usize = 5;

/// Whether PostgreSQL and psql are installed (see [`have`]: missing fails the test).
pub fn have_postgres() -> bool {
    have("psql") && have(&format!("{PG_BIN}/initdb")) && have("runuser")
}

/// Whether MariaDB and its client are installed.
pub fn have_mariadb() -> bool {
    have("mariadbd") && have("mariadb-install-db") && have("mysql")
}

/// TLS for a test PostgreSQL.
pub struct PgTls {
    /// Server certificate, PEM.
    pub cert_pem: String,
    /// Its key, PEM.
    pub key_pem: String,
}

/// A PostgreSQL server with trust authentication for user `postgres`.
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

async fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.stdin(Stdio::null()).output().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn as_postgres(program: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")]);
    c
}

impl Postgres {
    /// initdb and start, plaintext only.
    pub async fn start() -> Postgres {
        Postgres::start_with(None).await
    }

    /// initdb and start; with `tls`, `ssl=on` and only `hostssl` TCP connections.
    pub async fn start_with(tls: Option<PgTls>) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run_ok(Command::new("chown").arg("postgres").arg(d), "chown").await;
        let data = d.join("data");
        run_ok(
            as_postgres("initdb").arg("-D").arg(&data).args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]),
            "initdb",
        )
        .await;
        let mut opts = format!("-k {} -c listen_addresses=127.0.0.1 -c fsync=off", d.display());
        if let Some(t) = tls {
            std::fs::write(d.join("server.crt"), t.cert_pem).unwrap();
            std::fs::write(d.join("server.key"), t.key_pem).unwrap();
            run_ok(Command::new("chown").arg("postgres").arg(d.join("server.crt")).arg(d.join("server.key")), "chown")
                .await;
            run_ok(Command::new("chmod").arg("600").arg(d.join("server.key")), "chmod").await;
            std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
                .unwrap();
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                d.display()
            ));
        }
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let log = d.join("log");
            let out = as_postgres("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-w", "-t", "60", "-o", &format!("{opts} -p {port}"), "-l"])
                .arg(&log)
                .arg("start")
                .stdin(Stdio::null())
                .output()
                .await
                .unwrap();
            if out.status.success() {
                return Postgres { dir, port };
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(text.contains("already in use"), "PostgreSQL did not start:\n{text}");
        }
        panic!("PostgreSQL found no free port in {PORT_ATTEMPTS} attempts");
    }

    /// The server's direct address (not through oneport).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A query over a direct connection; panics unless psql succeeds. Unaligned,
    /// tuples only.
    pub async fn query(&self, sql: &str) -> String {
        let out = psql(self.addr(), "postgres").args(["-c", sql]).output().await.unwrap();
        assert!(out.status.success(), "psql -c {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/pg_ctl"), "-D"])
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// psql against `addr` as `user` on database `postgres`: no psqlrc, never a
/// password prompt, unaligned tuples only, 10 s connect timeout.
pub fn psql(addr: SocketAddr, user: &str) -> Command {
    let mut c = Command::new("psql");
    c.args(["-X", "-w", "-A", "-t", "-h", &addr.ip().to_string(), "-p", &addr.port().to_string(), "-U", user])
        .args(["-d", "postgres"])
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSSLMODE")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// pgbench against `addr` as `postgres` on database `postgres`, with `args`
/// (`-i -q`, `-c 8 -j 2 -t 20`): no TLS, a 10 s connect timeout, stdin from /dev/null.
pub fn pgbench(addr: SocketAddr, args: &[&str]) -> Command {
    let mut c = Command::new("pgbench");
    c.args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string(), "-U", "postgres"])
        .args(args)
        .arg("postgres")
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSSLMODE")
        .stdin(Stdio::null());
    c
}

/// A MariaDB server; `root` logs in without a password over TCP.
pub struct Mariadb {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Mariadb {
    /// Installs a data directory and starts `mariadbd` in the foreground.
    pub async fn start() -> Mariadb {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // A temporary directory of its own: servers sharing /tmp have collided on
        // their temporary table files ("Error on delete of '/tmp/#sql-temptable-...'").
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        run_ok(
            Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .args(["--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"]),
            "mariadb-install-db",
        )
        .await;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let err_log = dir.path().join(format!("err-{port}.log"));
            let mut child = mariadbd(dir.path(), &data, port, &err_log);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let up = poll_until(Duration::from_secs(60), "mariadbd to answer", || {
                let exited = child.try_wait().ok().flatten().is_some();
                async move {
                    if exited {
                        return Some(false);
                    }
                    let ok =
                        mysql(addr, "root").args(["-e", "select 1"]).output().await.is_ok_and(|o| o.status.success());
                    ok.then_some(true)
                }
            })
            .await;
            if up {
                return Mariadb { dir, port, child };
            }
            let text = std::fs::read_to_string(&err_log).unwrap_or_default();
            assert!(text.contains("already in use"), "mariadbd did not start:\n{text}");
        }
        panic!("mariadbd found no free port in {PORT_ATTEMPTS} attempts");
    }

    /// The server's direct address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

fn mariadbd(dir: &Path, data: &Path, port: u16, err_log: &Path) -> Child {
    Command::new("mariadbd")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
        .args(["--user=root", "--bind-address=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--log-error={}", err_log.display()))
        .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start mariadbd")
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The mysql client against `addr` as `user` over TCP: batch mode, no column names.
pub fn mysql(addr: SocketAddr, user: &str) -> Command {
    let mut c = Command::new("mysql");
    c.args(["--no-defaults", "--protocol=TCP", "--batch", "--skip-column-names", "--connect-timeout=10"])
        .args(["-h", &addr.ip().to_string(), "-P", &addr.port().to_string(), "-u", user])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// A running `oneport proxy db`.
pub struct ProxyDb {
    pub child: Child,
    /// The local address from the first stdout line.
    pub addr: SocketAddr,
    /// Stdout up to and including "Press Ctrl-C to stop.".
    pub lines: Vec<String>,
    /// Stderr so far, a line each (for `wait_line`).
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts `oneport ... proxy db ...` and reads its settings block. `Err` carries
/// stderr when it exits first (a refused database, a taken port).
pub async fn start_proxy_db(mut cmd: Command) -> Result<ProxyDb, String> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start oneport");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log_lines = log.clone();
    // Keep draining stderr (echoed for debugging) so the child never blocks on it.
    tokio::spawn(async move {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let mut line_start = 0;
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            eprint!("{}", String::from_utf8_lossy(&buf[..n]));
            all.extend_from_slice(&buf[..n]);
            while let Some(end) = all[line_start..].iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&all[line_start..line_start + end]).into_owned();
                log_lines.lock().unwrap().push(line);
                line_start += end + 1;
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&all).into_owned());
    });
    let mut seen = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if line.starts_with("Press Ctrl-C") {
                return true;
            }
        }
        false
    })
    .await
    .expect("proxy db printed nothing within 60s");
    if !done {
        let _ = child.wait().await;
        return Err(rx.await.unwrap_or_default());
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr = super::find_loopback_addr(&seen[0]).unwrap_or_else(|| panic!("no address on the first line: {seen:?}"));
    Ok(ProxyDb { child, addr, lines: seen, log })
}

/// A database entry for the server's config, allowing `users`.
pub fn db(name: &str, protocol: DbProtocol, addr: &str, users: &[&str]) -> Database {
    Database {
        name: name.into(),
        protocol,
        addr: addr.into(),
        tls: None,
        allow: Allow { users: users.iter().map(|s| s.to_string()).collect(), groups: vec![] },
    }
}

/// The set-up the database tests share: a server routing database `name` to `addr`
/// for alice, her identity, and a private home.
pub async fn serve_db(name: &str, protocol: DbProtocol, addr: SocketAddr) -> (TestServer, PathBuf, tempfile::TempDir) {
    let srv = TestServer::start(|c| c.databases.push(db(name, protocol, &addr.to_string(), &["alice"]))).await;
    let id = srv.identity("alice", &[]);
    (srv, id, tempfile::tempdir().unwrap())
}

/// The binary with `--proxy` and `--identity` for `id`.
pub fn as_user(srv: &TestServer, id: &Path, home: &Path) -> Command {
    let mut cmd = oneport(home);
    cmd.args(["--proxy", &srv.addr.to_string(), "--identity"]).arg(id);
    cmd
}

/// Runs to completion with output captured (stdin is null: nothing may prompt).
pub async fn output(mut cmd: Command) -> std::process::Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    tokio::time::timeout(Duration::from_secs(90), cmd.output()).await.expect("command hung").unwrap()
}

/// Bytes as text, lossily.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `proxy db NAME` plus `args` as `id`, started and read; panics unless it starts.
pub async fn proxy_db(srv: &TestServer, id: &Path, home: &Path, name: &str, args: &[&str]) -> ProxyDb {
    let mut cmd = as_user(srv, id, home);
    cmd.args(["proxy", "db", name]).args(args);
    start_proxy_db(cmd).await.unwrap_or_else(|e| panic!("proxy db {name} did not start: {e}"))
}
