//! `proxy app` and the routing server end to end: bulk transfers checked by hash,
//! half-close, ping framing, and every refusal with its specific error.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use oneport::dial::Target;
use oneport::naming::{Kind, Protocol};
use oneport::server::config::{Allow, App, AppKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn tcp_app(name: &str, addr: std::net::SocketAddr, users: &[&str]) -> App {
    App {
        name: name.into(),
        kind: AppKind::Tcp,
        addr: addr.to_string(),
        allow: Allow { users: users.iter().map(|s| s.to_string()).collect(), groups: vec![] },
    }
}

/// 64 MiB each way through the real binary's `proxy app`, checked by hash on both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_app_moves_64_mib_each_way() {
    deadline(async {
        let (echo, accepted) = spawn_echo().await;
        let srv = TestServer::start(|c| c.apps.push(tcp_app("echo", echo, &["alice"]))).await;
        let id = srv.identity("alice", &[]);
        let home = tempfile::tempdir().unwrap();
        let mut cmd = oneport(home.path());
        cmd.args(["--proxy", &srv.addr.to_string(), "--identity"]).arg(&id).args(["proxy", "app", "echo"]);
        let run = start_and_wait_addr(cmd).await;
        assert!(run.stdout.iter().any(|l| l.contains("TCP app")), "{:?}", run.stdout);

        let payload = Arc::new(random_bytes(64 << 20, 7));
        let want = sha256(&payload);
        let s = TcpStream::connect(run.addr).await.unwrap();
        let back = send_and_collect(s, payload.clone()).await;
        assert_eq!(back.len(), payload.len());
        assert_eq!(sha256(&back), want, "bytes changed on the way");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        srv.stop().await;
    })
    .await;
}
