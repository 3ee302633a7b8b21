//! Shutdown signals: resolves on SIGINT or SIGTERM (Ctrl-C elsewhere), and says which;
//! [`Signals`] receives them one after another (drain, then close at once).
//! Handlers are registered when [`listen`] is called, not when its future is first
//! polled, so a signal that arrives right after start-up is never lost to the
//! default action (which would kill the process without draining).

use std::future::Future;

/// Registers for SIGINT and SIGTERM now; the future resolves on the first of them.
pub fn listen() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM received"),
                        _ = int.recv() => tracing::info!("SIGINT received"),
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C received");
        }
    }
}

/// Waits for SIGINT or SIGTERM (registering now).
pub async fn signal() {
    listen().await
}

/// SIGINT and SIGTERM, registered at [`Signals::register`], received one after the
/// other (the first starts a drain, the second closes at once).
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Registers for SIGINT and SIGTERM now.
    pub fn register() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                (Ok(int), Ok(term)) => Some((int, term)),
                _ => None,
            };
            Signals { streams }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Resolves on the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            match &mut self.streams {
                Some((int, term)) => {
                    tokio::select! {
                        _ = int.recv() => tracing::debug!("SIGINT received"),
                        _ = term.recv() => tracing::debug!("SIGTERM received"),
                    }
                }
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
