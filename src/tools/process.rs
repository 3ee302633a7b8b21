//! The client programs oneport launches (psql, mysql, kubectl, a shell): finding them
//! on PATH, running them with the terminal passed through while sharing this
//! process's termination signals, their exit code as ours, and POSIX shell quoting
//! for the command lines we print.

use std::path::PathBuf;
use std::process::ExitStatus;

use crate::error::{Error, Result};

/// How a running child shares this process's SIGINT/SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// Ctrl-C in a terminal goes to the whole foreground process group and is meant
    /// for the child (psql cancels the running query, through our proxy), so this
    /// process survives it: SIGINT is caught and ignored while the child runs.
    /// SIGTERM kills the child.
    ChildTakesInterrupt,
    /// A first SIGINT/SIGTERM is left to the child (the terminal sent it there too);
    /// a second one kills it.
    SecondKills,
}

/// Spawns `command` (killed if this future is dropped) and waits for it, handling
/// signals as `signals` says. `what` names it in errors.
///
/// # Errors
/// [`Error::Child`] when it cannot be started or waited for.
pub async fn run(mut command: tokio::process::Command, what: &str, signals: Signals) -> Result<ExitStatus> {
    let failed = |step: &'static str| move |cause| Error::Child { step, what: what.to_string(), cause };
    match signals {
        Signals::ChildTakesInterrupt => {
            // Registered before the child starts, so a Ctrl-C at once is ignored too.
            let signals = ChildSignals::install()?;
            let mut child = command.kill_on_drop(true).spawn().map_err(failed("starting"))?;
            tokio::select! {
                status = child.wait() => status.map_err(failed("waiting for")),
                _ = signals.terminated() => {
                    let _ = child.start_kill();
                    child.wait().await.map_err(failed("waiting for"))
                }
            }
        }
        Signals::SecondKills => {
            let mut child = command.kill_on_drop(true).spawn().map_err(failed("starting"))?;
            let mut seen = 0;
            loop {
                tokio::select! {
                    status = child.wait() => break status.map_err(failed("waiting for")),
                    _ = crate::util::shutdown::signal() => {
                        seen += 1;
                        if seen > 1 {
                            let _ = child.start_kill();
                        }
                    }
                }
            }
        }
    }
}

/// SIGINT ignored, SIGTERM reported, while a child runs.
struct ChildSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl ChildSignals {
    #[cfg(unix)]
    fn install() -> Result<ChildSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        // Registering the handler is what stops SIGINT from ending the process; it
        // happens here, before the child starts, not on first poll.
        let catching = |what: &'static str| move |cause| Error::Child { step: "catching", what: what.into(), cause };
        let mut int = signal(SignalKind::interrupt()).map_err(catching("SIGINT"))?;
        let term = signal(SignalKind::terminate()).map_err(catching("SIGTERM"))?;
        // Bare spawn: swallows SIGINT for the life of the process (the child owns it).
        tokio::spawn(async move { while int.recv().await.is_some() {} });
        Ok(ChildSignals { term })
    }

    #[cfg(not(unix))]
    fn install() -> Result<ChildSignals> {
        // Windows sends Ctrl-C to every process on the console; this one ignores it.
        let mut ctrl_c = tokio::signal::windows::ctrl_c().map_err(|cause| Error::Child {
            step: "catching",
            what: "Ctrl-C".into(),
            cause,
        })?;
        // Bare spawn: swallows Ctrl-C for the life of the process.
        tokio::spawn(async move { while ctrl_c.recv().await.is_some() {} });
        Ok(ChildSignals {})
    }

    #[cfg(unix)]
    async fn terminated(mut self) {
        if self.term.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    #[cfg(not(unix))]
    async fn terminated(self) {
        // Nothing but the child's exit ends the wait here.
        std::future::pending::<()>().await
    }
}

/// Finds an executable `program` on PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &std::path::Path) -> bool {
    p.with_extension("exe").is_file() || p.is_file()
}

/// The exit code to return for a child's status: its own code, 128+N when signal N
/// ended it, 1 otherwise.
pub fn exit_code(status: ExitStatus) -> u8 {
    if let Some(c) = status.code() {
        return u8::try_from(c).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return 128u8.saturating_add(u8::try_from(sig).unwrap_or(0));
        }
    }
    1
}

/// Quotes `s` for a POSIX shell when it holds anything but safe characters.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("postgres://u@127.0.0.1:5432/db"), "postgres://u@127.0.0.1:5432/db");
        assert_eq!(shell_quote("it's here"), r"'it'\''s here'");
        assert_eq!(shell_quote(""), "''");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn runs_a_child_and_reports_why_it_could_not_start() {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg("exit 7");
        let status = run(c, "sh", Signals::SecondKills).await.unwrap();
        assert_eq!(exit_code(status), 7);
        let c = tokio::process::Command::new("/nonexistent/oneport-no-such-program");
        let e = run(c, "no-such-program", Signals::ChildTakesInterrupt).await.unwrap_err();
        assert!(e.to_string().starts_with("starting no-such-program: "), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn codes() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
