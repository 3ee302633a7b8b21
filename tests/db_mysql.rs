//! MariaDB through oneport with the real binary, a real MariaDB server and the
//! mysql client: `proxy db` (queries, a 10 MB result), `db connect` (output, exit
//! code, missing client), and refusals shown by mysql as `ERROR 1045 (28000)`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::realdb::{as_user, db, have_mariadb, mysql, output, proxy_db, serve_db, start_proxy_db, text, Mariadb};
use common::*;
use oneport::server::config::DbProtocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

/// `db connect NAME` as database user root, with client arguments `extra`.
fn db_connect(srv: &TestServer, id: &Path, home: &Path, name: &str, extra: &[&str]) -> Command {
    let mut cmd = as_user(srv, id, home);
    cmd.args(["db", "connect", name, "--db-user", "root", "--"]).args(extra);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_through_proxy_db_and_db_connect() {
    if !have_mariadb() {
        return;
    }
    deadline(async {
        let maria = Mariadb::start().await;
        let (srv, id, home) = serve_db("my1", DbProtocol::Mysql, maria.addr()).await;

        let proxy = proxy_db(&srv, &id, home.path(), "my1", &["--db-user", "root", "--db-name", "mysql"]).await;
        let settings = proxy.lines.join("\n");
        let port = proxy.addr.port();
        let want = format!("--user root --database mysql --host 127.0.0.1 --port {port} --protocol TCP");
        assert!(settings.contains(&want), "{settings}");
        assert!(settings.contains(&format!("{want} -p\n")), "the suggested line asks for the password: {settings}");

        let out = mysql(proxy.addr, "root").args(["-e", "select 6 * 7"]).output().await.unwrap();
        assert_eq!(text(&out.stdout).trim(), "42", "stderr: {}", text(&out.stderr));
        // A 10 MB result, hashed on both sides of the relay.
        let sql = "select repeat('0123456789', 1000000), sha2(repeat('0123456789', 1000000), 256)";
        let out = mysql(proxy.addr, "root").args(["-e", sql]).output().await.unwrap();
        let stdout = text(&out.stdout);
        let (value, hash) = stdout.trim_end().split_once('\t').expect("two columns");
        assert_eq!(value.len(), 10_000_000, "stderr: {}", text(&out.stderr));
        assert_eq!(sha256(value.as_bytes()), hash);

        let out = output(db_connect(&srv, &id, home.path(), "my1", &["--batch", "-e", "select 1 + 1 as answer"])).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "answer\n2\n");
        let out = output(db_connect(&srv, &id, home.path(), "my1", &["-e", "select nonsense"])).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("Unknown column 'nonsense'"), "{}", text(&out.stderr));
        srv.stop().await;
    })
    .await;
}

/// Talks to a refusing local proxy as a client would: reads the greeting, sends a
/// handshake response, and returns the ERR packet's (code, SQLSTATE, message).
async fn raw_refusal(addr: std::net::SocketAddr) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await.unwrap();
    let mut greeting = vec![0u8; u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize];
    s.read_exact(&mut greeting).await.unwrap();
    assert_eq!((h[3], greeting[0]), (0, 10), "expected a HandshakeV10 greeting");
    let response = [&[0u8; 32][..], b"root\0\0"].concat();
    let len = (response.len() as u32).to_le_bytes();
    s.write_all(&[&[len[0], len[1], len[2], 1][..], &response].concat()).await.unwrap();
    let mut p = Vec::new();
    s.read_to_end(&mut p).await.unwrap();
    assert_eq!(u32::from_le_bytes([p[0], p[1], p[2], 0]) as usize, p.len() - 4);
    assert_eq!((p[3], p[4], p[7]), (2, 0xff, b'#'), "{p:?}");
    (u16::from_le_bytes([p[5], p[6]]), text(&p[8..13]), text(&p[13..]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_reach_mysql_as_error_packets() {
    if !have("mysql") {
        return;
    }
    deadline(async {
        let srv =
            TestServer::start(|c| c.databases.push(db("my1", DbProtocol::Mysql, "127.0.0.1:1", &["alice"]))).await;
        let (alice, bob) = (srv.identity("alice", &[]), srv.identity("bob", &[]));
        let home = tempfile::tempdir().unwrap();

        let denied = "access to database my1 denied for user bob";
        let proxy = proxy_db(&srv, &bob, home.path(), "my1", &["--protocol", "mysql"]).await;
        let out = mysql(proxy.addr, "root").args(["-e", "select 1"]).output().await.unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains(&format!("ERROR 1045 (28000): {denied}")), "{}", text(&out.stderr));
        assert_eq!(raw_refusal(proxy.addr).await, (1045, "28000".into(), denied.into()));

        let unknown = format!("database nope is not known to proxy {}; known: my1", srv.addr);
        let proxy = proxy_db(&srv, &alice, home.path(), "nope", &["--protocol", "mysql"]).await;
        let out = mysql(proxy.addr, "root").args(["-e", "select 1"]).output().await.unwrap();
        assert!(text(&out.stderr).contains(&format!("ERROR 1049 (42000): {unknown}")), "{}", text(&out.stderr));
        assert_eq!(raw_refusal(proxy.addr).await, (1049, "42000".into(), unknown.clone()));

        // Allowed, but nothing listens at the database's address: the server refuses
        // in the MySQL protocol.
        let proxy = proxy_db(&srv, &alice, home.path(), "my1", &[]).await;
        let out = mysql(proxy.addr, "root").args(["-e", "select 1"]).output().await.unwrap();
        let down =
            format!("ERROR 1105 (HY000): database my1 is unreachable from proxy {} (Connection refused", srv.addr);
        assert!(text(&out.stderr).contains(&down), "{}", text(&out.stderr));

        // db connect says the same before starting the client.
        let out = output(db_connect(&srv, &bob, home.path(), "my1", &[])).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains(denied), "{}", text(&out.stderr));

        // No client installed: say which package to install.
        let empty = home.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let mut cmd = db_connect(&srv, &alice, home.path(), "my1", &[]);
        cmd.env("PATH", &empty);
        let out = output(cmd).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("mariadb-client"), "{}", text(&out.stderr));

        // --protocol must agree with the server when the server answers.
        let mut cmd = as_user(&srv, &alice, home.path());
        cmd.args(["proxy", "db", "my1", "--protocol", "postgres"]);
        let err = start_proxy_db(cmd).await.err().expect("started with the wrong protocol");
        assert!(err.contains("database my1 speaks mysql, not postgres"), "{err}");
        srv.stop().await;
    })
    .await;
}

/// `db connect -p` to an account with a password: mariadb asks for it (in a real
/// terminal, tmux), and the query runs with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_connect_p_asks_for_the_password() {
    if !have_mariadb() || !have("tmux") {
        return;
    }
    deadline(async {
        let maria = Mariadb::start().await;
        let sql = "create user pw@'%' identified by 's3cret-pw'; grant select on mysql.* to pw@'%'";
        let out = mysql(maria.addr(), "root").args(["-e", sql]).output().await.unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let (srv, id, home) = serve_db("my1", DbProtocol::Mysql, maria.addr()).await;
        // Without -p mariadb sends no password: the server's refusal comes through.
        let mut cmd = as_user(&srv, &id, home.path());
        cmd.args(["db", "connect", "my1", "--db-user", "pw", "--", "-e", "select 1"]);
        let out = output(cmd).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("Access denied for user 'pw'"), "{}", text(&out.stderr));

        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("tmux.sock");
        let (out_file, rc_file) = (tmp.path().join("out"), tmp.path().join("rc"));
        let q = |p: &Path| format!("'{}'", p.display());
        let line = format!(
            "env -i PATH=\"$PATH\" ONEPORT_HOME={home} NO_COLOR=1 {exe} --proxy {proxy} --identity {id} \
             db connect my1 --db-user pw -p -- --batch --skip-column-names -e 'select current_user()' > {out}; \
             echo $? > {rc}.tmp && mv {rc}.tmp {rc}",
            home = q(home.path()),
            exe = q(Path::new(env!("CARGO_BIN_EXE_oneport"))),
            proxy = srv.addr,
            id = q(&id),
            out = q(&out_file),
            rc = q(&rc_file),
        );
        let tmux = |args: &[&str]| {
            let mut c = Command::new("tmux");
            c.arg("-S").arg(&socket).args(args).kill_on_drop(true);
            c
        };
        let st = tmux(&["new-session", "-d", "-x", "150", "-y", "40", &line]).status().await.unwrap();
        assert!(st.success(), "tmux new-session");
        let pane = || async {
            let out = tmux(&["capture-pane", "-p"]).output().await.ok()?;
            Some(text(&out.stdout))
        };
        poll_until(Duration::from_secs(60), "mariadb to ask for the password", || async {
            pane().await.filter(|p| p.contains("Enter password:"))
        })
        .await;
        assert!(tmux(&["send-keys", "s3cret-pw", "Enter"]).status().await.unwrap().success());
        let rc = poll_until(Duration::from_secs(60), "db connect to finish", || async {
            std::fs::read_to_string(&rc_file).ok().and_then(|s| s.trim().parse::<i32>().ok())
        })
        .await;
        let shown = pane().await.unwrap_or_default();
        assert_eq!(rc, 0, "{shown}");
        assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "pw@%\n", "{shown}");
        let _ = tmux(&["kill-server"]).status().await;
        srv.stop().await;
    })
    .await;
}
