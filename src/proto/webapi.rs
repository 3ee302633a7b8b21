//! The web API's answers, as both ends read and write them: `GET /webapi/ping` (who
//! the server is and what the caller may use) and `GET /webapi/resolve` (why a
//! resource cannot be reached, for client error messages) and `GET /webapi/reach`
//! (whether the server reaches the resource's backend now, for `doctor`).

use serde::{Deserialize, Serialize};

use crate::identity::Caller;
use crate::proto::naming::{Kind, ResourceRef};

/// The verdict of `/webapi/resolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The caller may use the resource.
    Allowed,
    /// The resource exists but the caller may not use it (or not on that port).
    Denied,
    /// No resource of that kind and name (that the caller may see).
    Unknown,
}

impl Outcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The web route's answer (401) to a request that needs a client certificate and
/// came without one.
pub const CERT_REQUIRED: &str = "a client certificate is required";

/// The request path of `/webapi/resolve` for `r`.
pub fn resolve_path(r: &ResourceRef) -> String {
    let port = r.port.map(|p| format!("&port={p}")).unwrap_or_default();
    format!("/webapi/resolve?kind={}&name={}{port}", r.kind.as_str(), r.name)
}

/// Parses the query of `/webapi/resolve` (`kind=K&name=N[&port=P]`); the error is
/// the sentence for a 400 answer.
///
/// # Errors
/// A missing kind or name, a bad port, or a port for something other than a node.
pub fn parse_resolve_query(query: &str) -> Result<ResourceRef, String> {
    let (mut kind, mut name, mut port) = (None, None, None);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("kind", v)) => kind = v.parse::<Kind>().ok(),
            Some(("name", v)) => name = Some(v.to_string()),
            Some(("port", v)) => match v.parse::<u16>() {
                Ok(p) if p > 0 => port = Some(p),
                _ => return Err(format!("port {v:?} is not a number from 1 to 65535")),
            },
            _ => {}
        }
    }
    let (Some(kind), Some(name)) = (kind, name) else {
        return Err("resolve needs kind=node|db|app|kube and name=NAME (and port=N for nodes)".into());
    };
    if port.is_some() && kind != Kind::Node {
        return Err("only nodes take a port".into());
    }
    Ok(ResourceRef { kind, name, port })
}

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
    pub outcome: Outcome,
    /// A sentence for the user.
    pub message: String,
    /// The resource's protocol (as in [`ResourceInfo`]) when it is allowed.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// The request path of `/webapi/reach` for `r` (same query as resolve).
pub fn reach_path(r: &ResourceRef) -> String {
    resolve_path(r).replacen("/webapi/resolve", "/webapi/reach", 1)
}

/// The `/webapi/reach` answer: whether the server could reach the resource's
/// backend just now, and the sentence saying so (or why not).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReachResponse {
    /// The backend answered (or the resource needs no backend dial).
    pub ok: bool,
    /// A sentence for the user: what was reached, or the server's reason.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_keeps_its_wire_spelling() {
        for (o, s) in [(Outcome::Allowed, "allowed"), (Outcome::Denied, "denied"), (Outcome::Unknown, "unknown")] {
            assert_eq!(serde_json::to_value(o).unwrap(), s);
            assert_eq!(o.as_str(), s);
        }
        let r: ResolveResponse = serde_json::from_str(r#"{"outcome":"denied","message":"no"}"#).unwrap();
        assert_eq!(r.outcome, Outcome::Denied);
    }

    #[test]
    fn reach_path_takes_the_resolve_query() {
        let r = ResourceRef::new(Kind::App, "grafana");
        assert_eq!(reach_path(&r), "/webapi/reach?kind=app&name=grafana");
        let back: ReachResponse = serde_json::from_str(r#"{"ok":false,"message":"down"}"#).unwrap();
        assert_eq!(back, ReachResponse { ok: false, message: "down".into() });
    }

    #[test]
    fn resolve_query_round_trips() {
        let r = ResourceRef::new(Kind::Node, "web1").at(Some(2222));
        let path = resolve_path(&r);
        assert_eq!(path, "/webapi/resolve?kind=node&name=web1&port=2222");
        assert_eq!(parse_resolve_query(path.split_once('?').unwrap().1), Ok(r));
        let db = ResourceRef::new(Kind::Db, "pg1");
        assert_eq!(parse_resolve_query("kind=db&name=pg1"), Ok(db));
    }

    #[test]
    fn resolve_query_errors_say_what_is_wrong() {
        assert_eq!(parse_resolve_query("kind=db&name=pg1&port=5432").unwrap_err(), "only nodes take a port");
        assert!(parse_resolve_query("kind=node&name=a&port=0").unwrap_err().contains("from 1 to 65535"));
        assert!(parse_resolve_query("kind=database&name=a").unwrap_err().starts_with("resolve needs"));
        assert!(parse_resolve_query("name=a").unwrap_err().starts_with("resolve needs"));
    }
}
