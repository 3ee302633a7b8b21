//! The web API's answers, as both ends read and write them: `GET /webapi/ping` (who
//! the server is and what the caller may use) and `GET /webapi/resolve` (why a
//! resource cannot be reached, for client error messages).

use serde::{Deserialize, Serialize};

use crate::identity::Caller;
use crate::proto::naming::Kind;

/// The `/webapi/ping` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingResponse {
    /// The server's version.
    pub server_version: String,
    /// The cluster name.
    pub cluster_name: String,
    /// The public address.
    pub public_addr: String,
    /// The domain resource SNIs live under.
    pub routing_domain: String,
    /// Server ping interval in seconds.
    pub ping_interval_secs: u64,
    /// The caller, when a client certificate was presented.
    pub caller: Option<Caller>,
    /// The resources the caller may use (empty without a certificate).
    pub resources: Vec<ResourceInfo>,
}

/// A resource in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceInfo {
    /// The kind.
    pub kind: Kind,
    /// The name.
    pub name: String,
    /// `ssh`, the database protocol, `http`/`tcp` for apps, `kubernetes`.
    pub protocol: String,
}

/// The `/webapi/resolve` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveResponse {
    /// `allowed`, `denied` or `unknown`.
    pub outcome: String,
    /// A sentence for the user.
    pub message: String,
    /// The resource's protocol (as in [`ResourceInfo`]) when it is allowed.
    #[serde(default)]
    pub protocol: Option<String>,
}
