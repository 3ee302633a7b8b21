//! A real OpenSSH server on loopback for tests: host and user keys made with
//! ssh-keygen in a temporary directory, key-only root login, run in the foreground
//! (`sshd -D -e`) as a child killed on drop; plus the common `ssh`/`scp` options.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Where Debian installs sshd.
pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd.
pub struct Sshd {
    /// Keys, config, log, and a scratch area the tests copy files into.
    pub dir: tempfile::TempDir,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The private key `root` logs in with.
    pub user_key: PathBuf,
    child: Child,
}

impl Sshd {
    /// Whether sshd, ssh and ssh-keygen are installed (see `have`).
    pub fn available() -> bool {
        super::have(SSHD) && super::have("ssh") && super::have("ssh-keygen")
    }

    /// Starts sshd on a free loopback port and waits until it greets (retrying on
    /// the rare port collision).
    pub async fn start() -> Sshd {
        let mut dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        for key in ["hostkey", "userkey"] {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "oneport-test", "-f"])
                .arg(d.join(key))
                .status()
                .expect("run ssh-keygen");
            assert!(st.success(), "ssh-keygen failed");
        }
        std::fs::copy(d.join("userkey.pub"), d.join("authorized_keys")).unwrap();
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd (privilege separation; tests run as root)");
        for attempt in 0..5 {
            let port = super::free_port();
            let config = d.join("sshd_config");
            std::fs::write(&config, sshd_config(&d, port)).unwrap();
            let log = std::fs::File::create(d.join("sshd.log")).unwrap();
            let child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd");
            let mut sshd =
                Sshd { addr: SocketAddr::from(([127, 0, 0, 1], port)), user_key: d.join("userkey"), child, dir };
            if sshd.wait_ready().await {
                return sshd;
            }
            eprintln!("sshd on port {port} did not start (attempt {attempt}): {}", sshd.log());
            dir = sshd.take_dir();
        }
        panic!("sshd did not start in 5 attempts");
    }

    /// Polls (up to 20 s) until sshd sends its banner; false if it exited.
    async fn wait_ready(&mut self) -> bool {
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < end {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(self.addr).await {
                let mut buf = [0u8; 8];
                let read = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await;
                if matches!(read, Ok(Ok(_))) && &buf == b"SSH-2.0-" {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Swap in a throwaway so Drop has something to own.
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The options every `ssh`/`scp` run needs: no system or user config, this
    /// server's user key only, no host key prompts, never ask for a password.
    pub fn client_options(&self) -> Vec<String> {
        let mut v: Vec<String> = vec!["-i".into(), self.user_key.display().to_string()];
        for o in [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "GlobalKnownHostsFile=/dev/null",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
            "LogLevel=ERROR",
            "ConnectTimeout=30",
        ] {
            v.push("-o".into());
            v.push(o.into());
        }
        v
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd_config(d: &Path, port: u16) -> String {
    format!(
        "Port {port}
ListenAddress 127.0.0.1
HostKey {d}/hostkey
AuthorizedKeysFile {d}/authorized_keys
PidFile {d}/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
StrictModes no
UsePAM no
UseDNS no
LogLevel VERBOSE
Subsystem sftp internal-sftp
",
        d = d.display()
    )
}
