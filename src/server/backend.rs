//! Reaching a routed resource: dial the backend the config names (never anything
//! else), then relay. Protocol-specific backends (the Kubernetes impersonation
//! proxy) plug in here.

use std::sync::Arc;

use tokio::net::TcpStream;
use tracing::{debug, info};

use crate::error::{with_timeout, Error, Phase};
use crate::identity::Caller;
use crate::io::BoxIo;
use crate::relay::relay;
use crate::server::routes::{ResourceRoute, Target};
use crate::server::Server;

/// Serves one authorized connection to its resource.
pub async fn serve(srv: Arc<Server>, mut client: BoxIo, route: ResourceRoute, caller: Caller) {
    let addr = match &route.target {
        // Chosen by the routing table from the node's `addr`/`targets` only.
        Target::Node { addr, .. } => addr.clone(),
        Target::Database(d) => d.addr.clone(),
        Target::App(a) => a.addr.clone(),
        Target::Kube(_) => return crate::server::kube::serve(srv, client, route, caller).await,
    };
    let mut backend = match dial(&srv, &addr).await {
        Ok(s) => s,
        Err(e) => return info!(error = %e, resource = %route.name, "backend unreachable"),
    };
    match relay(&mut client, &mut backend).await {
        Ok(c) => debug!(to_backend = c.a_to_b, to_client = c.b_to_a, "connection closed"),
        Err(e) => debug!(error = %e, "connection ended with an error"),
    }
}

/// Dials a backend address under the connect deadline.
///
/// # Errors
/// [`Error::Connect`] or [`Error::Timeout`].
pub async fn dial(srv: &Server, addr: &str) -> crate::Result<TcpStream> {
    with_timeout(Phase::Connect, addr, srv.cfg.connect_timeout, async {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|source| Error::Connect { target: addr.to_string(), cause: source })?;
        let _ = s.set_nodelay(true);
        Ok(s)
    })
    .await
}
