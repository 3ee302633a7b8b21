//! The auth route on the wire: one length-prefixed JSON request, one answer, then
//! close (docs/protocol.md). The whole exchange runs under the handshake deadline
//! and reads at most [`wire::MAX_REQUEST`] bytes, whoever the peer is.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tracing::{debug, info};

use crate::identity::Caller;
use crate::net::io::BoxIo;
use crate::proto::auth::{self as wire, Refusal, Request, Response};
use crate::server::Server;

/// Serves one auth-route connection.
pub async fn serve(srv: Arc<Server>, mut io: BoxIo, caller: Option<Caller>) {
    let limit = srv.cfg.handshake_timeout;
    let work = async {
        let answer = match wire::read_frame::<_, Request>(&mut io, wire::MAX_REQUEST).await {
            Ok(req) => answer(&srv, caller.as_ref(), req).await,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                info!(error = %e, "auth request refused");
                Response::Refused { code: Refusal::BadRequest, message: format!("the auth request was refused: {e}") }
            }
            Err(e) => return debug!(error = %e, "auth client left before its request"),
        };
        let _ = wire::write_frame(&mut io, &answer).await;
        let _ = io.shutdown().await;
    };
    if tokio::time::timeout(limit, work).await.is_err() {
        info!(secs = limit.as_secs(), "auth exchange not complete before the deadline; closed");
    }
}

async fn answer(srv: &Server, caller: Option<&Caller>, req: Request) -> Response {
    let result = match &req {
        Request::Enroll { secret, csr } => srv.auth.enroll(secret, csr).await,
        Request::Renew { csr } => srv.auth.renew(caller, csr).await,
    };
    match result {
        Ok(issued) => Response::Issued(issued),
        Err(r) => {
            info!(request = ?req, code = ?r.code, reason = %r.message, "auth request refused");
            Response::Refused { code: r.code, message: r.message }
        }
    }
}
