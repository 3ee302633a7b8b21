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

/// As [`resolve_path`], with `via`: the proxy address as the client dialled it
/// (typed or from its login profile), so the answer's sentences name that rather
/// than the server's `public_addr` (another name for it behind a load balancer, a
/// tunnel or a port forward).
pub fn resolve_path_via(r: &ResourceRef, via: &str) -> String {
    let via: String = via
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{}&via={via}", resolve_path(r))
}

/// The `via` of a `/webapi/resolve` query (see [`resolve_path_via`]), when it is a
/// plain `host:port` (letters, digits, `.`, `-`, `:` and IPv6 brackets, at most 262
/// characters); anything else is ignored, and the server names itself as usual.
pub fn parse_via(query: &str) -> Option<String> {
    let raw = query.split('&').find_map(|p| p.strip_prefix("via="))?;
    let via = crate::util::percent::decode(raw);
    let plain = via.len() <= 262
        && via.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    (plain && crate::util::addr::HostPort::parse(&via).is_ok()).then_some(via)
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

/// The sentence for a name asked for as one kind that the caller may use as other
/// `kinds` (`db connect web` when web is an app): what it is and the command for it.
/// `None` when `kinds` is empty. The caller must pass only kinds it may see.
pub fn other_kind_hint(name: &str, kinds: &[Kind]) -> Option<String> {
    let uses: Vec<String> = kinds
        .iter()
        .map(|k| {
            let (article, command) = match k {
                Kind::Node => ("a", format!("ssh -o \"ProxyCommand oneport proxy ssh %r@%h:%p\" USER@{name}")),
                Kind::Db => ("a", format!("oneport db connect {name}")),
                Kind::App => ("an", format!("oneport proxy app {name}")),
                Kind::Kube => ("a", format!("oneport kube login {name}")),
            };
            format!("{article} {}: {command}", k.noun())
        })
        .collect();
    if uses.is_empty() {
        return None;
    }
    Some(format!("{name} is {}", uses.join("; it is also ")))
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
    /// Server ping interval in whole seconds, rounded up (kept for older clients;
    /// a sub-second interval reads 1, never 0).
    pub ping_interval_secs: u64,
    /// Server ping interval in milliseconds (absent from servers before 0.1.1).
    #[serde(default)]
    pub ping_interval_ms: u64,
    /// The caller, when a client certificate was presented.
    pub caller: Option<Caller>,
    /// The resources the caller may use (empty without a certificate).
    pub resources: Vec<ResourceInfo>,
    /// Why the caller may use nothing at all (its identity was revoked), when so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
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
    fn via_names_the_address_dialled() {
        let r = ResourceRef::new(Kind::App, "web");
        assert_eq!(resolve_path_via(&r, "localhost:13080"), "/webapi/resolve?kind=app&name=web&via=localhost:13080");
        let path = resolve_path_via(&r, "[::1]:3080");
        assert_eq!(path, "/webapi/resolve?kind=app&name=web&via=%5B::1%5D:3080");
        let query = path.split_once('?').unwrap().1;
        assert_eq!(parse_via(query).as_deref(), Some("[::1]:3080"));
        assert_eq!(parse_resolve_query(query), Ok(r));
        assert_eq!(parse_via("kind=app&name=web"), None);
        for bad in ["via=a%20b:1", "via=%3Cb%3E:1", "via=host", "via=host:0", "via=%0a:1"] {
            assert_eq!(parse_via(bad), None, "{bad}");
        }
        assert_eq!(parse_via(&format!("via={}:1", "a".repeat(300))), None);
    }

    #[test]
    fn other_kind_hints_name_the_command() {
        assert_eq!(other_kind_hint("web", &[]), None);
        assert_eq!(other_kind_hint("web", &[Kind::App]).unwrap(), "web is an app: oneport proxy app web");
        assert_eq!(other_kind_hint("pg1", &[Kind::Db]).unwrap(), "pg1 is a database: oneport db connect pg1");
        assert_eq!(other_kind_hint("dev", &[Kind::Kube]).unwrap(), "dev is a kube cluster: oneport kube login dev");
        assert_eq!(
            other_kind_hint("web1", &[Kind::Node]).unwrap(),
            r#"web1 is a node: ssh -o "ProxyCommand oneport proxy ssh %r@%h:%p" USER@web1"#
        );
        assert_eq!(
            other_kind_hint("x", &[Kind::Db, Kind::App]).unwrap(),
            "x is a database: oneport db connect x; it is also an app: oneport proxy app x"
        );
    }

    #[test]
    fn resolve_query_errors_say_what_is_wrong() {
        assert_eq!(parse_resolve_query("kind=db&name=pg1&port=5432").unwrap_err(), "only nodes take a port");
        assert!(parse_resolve_query("kind=node&name=a&port=0").unwrap_err().contains("from 1 to 65535"));
        assert!(parse_resolve_query("kind=database&name=a").unwrap_err().starts_with("resolve needs"));
        assert!(parse_resolve_query("name=a").unwrap_err().starts_with("resolve needs"));
    }
}
