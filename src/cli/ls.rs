//! `oneport ls`: the resources the proxy offers to this identity, as a table or as
//! JSON (schema in docs/json.md), optionally of one kind.

use anyhow::Context as _;

use crate::cli::Global;
use crate::client::context::Context;
use crate::client::dial::Dialer;
use crate::client::webapi;
use crate::proto::naming::Kind;

/// Arguments of `oneport ls`.
#[derive(Debug, Clone, clap::Args)]
pub struct LsArgs {
    /// Only this kind: node (or ssh), db (or database), app, kube (or k8s,
    /// kubernetes); plurals work too.
    #[arg(value_name = "KIND", value_parser = parse_kind)]
    pub kind: Option<Kind>,
    /// Output format: a table, or JSON (the schema is in docs/json.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// How `ls` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Text,
    /// One JSON object for programs (docs/json.md).
    Json,
}

/// Reads a kind as a user types it: the wire names (`node`, `db`, `app`, `kube`),
/// their plurals, and the obvious other words.
///
/// # Errors
/// A sentence listing the kinds, for anything else.
pub fn parse_kind(s: &str) -> Result<Kind, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "node" | "nodes" | "ssh" => Ok(Kind::Node),
        "db" | "dbs" | "database" | "databases" => Ok(Kind::Db),
        "app" | "apps" | "application" | "applications" => Ok(Kind::App),
        "kube" | "kubes" | "k8s" | "kubernetes" | "cluster" | "clusters" => Ok(Kind::Kube),
        _ => Err(format!("{s:?} is not a resource kind: use node (or ssh), db, app or kube")),
    }
}

/// The `ls --format json` document (docs/json.md): field names and meanings are
/// kept; new fields may be added.
#[derive(Debug, serde::Serialize)]
struct Listing<'a> {
    /// The proxy as dialled (what was typed or stored at login), host:port.
    proxy: String,
    /// The cluster name the proxy reports.
    cluster: &'a str,
    /// The user the proxy knows the identity as.
    user: &'a str,
    /// The kind asked for, or null for all.
    kind: Option<&'static str>,
    /// The resources, in the proxy's order.
    resources: Vec<Entry<'a>>,
}

#[derive(Debug, serde::Serialize)]
struct Entry<'a> {
    kind: &'static str,
    name: &'a str,
    protocol: &'a str,
}

/// `oneport ls`.
///
/// # Errors
/// When the proxy cannot be reached or does not accept the identity.
pub async fn run(g: &Global, a: LsArgs) -> anyhow::Result<u8> {
    let ctx = Context::resolve(&g.overrides())?;
    let proxy = ctx.proxy.to_string();
    let dialer = Dialer::new(ctx);
    let ping = webapi::ping(&dialer).await.context("listing the resources")?;
    let Some(caller) = &ping.caller else {
        anyhow::bail!(
            "proxy {proxy} did not accept the identity (it answered as to a client without one): check that the \
             identity was issued by this proxy's cluster and that both clocks are right"
        );
    };
    if let Some(sentence) = &ping.refused {
        anyhow::bail!("{sentence}");
    }
    let resources: Vec<Entry<'_>> = ping
        .resources
        .iter()
        .filter(|r| a.kind.is_none_or(|k| k == r.kind))
        .map(|r| Entry { kind: r.kind.as_str(), name: &r.name, protocol: &r.protocol })
        .collect();
    if a.format == Format::Json {
        let doc = Listing {
            proxy,
            cluster: &ping.cluster_name,
            user: &caller.user,
            kind: a.kind.map(Kind::as_str),
            resources,
        };
        crate::cli::say!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    if resources.is_empty() {
        match a.kind {
            Some(k) => crate::cli::say!(
                "No {} on proxy {proxy} for {} (`oneport ls` lists every kind).",
                plural(k),
                caller.user
            ),
            None => crate::cli::say!("No resources on proxy {proxy} for {}.", caller.user),
        }
        return Ok(0);
    }
    crate::cli::say!("{:<6} {:<24} PROTOCOL", "KIND", "NAME");
    for r in &resources {
        crate::cli::say!("{:<6} {:<24} {}", r.kind, r.name, r.protocol);
    }
    Ok(0)
}

fn plural(k: Kind) -> &'static str {
    match k {
        Kind::Node => "nodes",
        Kind::Db => "databases",
        Kind::App => "apps",
        Kind::Kube => "kube clusters",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_their_aliases() {
        for (words, kind) in [
            (&["node", "nodes", "ssh", "NODE"][..], Kind::Node),
            (&["db", "dbs", "database", "databases", " db "], Kind::Db),
            (&["app", "apps", "application", "applications"], Kind::App),
            (&["kube", "kubes", "k8s", "kubernetes", "cluster", "clusters"], Kind::Kube),
        ] {
            for w in words {
                assert_eq!(parse_kind(w), Ok(kind), "{w}");
            }
        }
        for bad in ["", "s", "pod", "server", "sshs", "kubernete", "dbss"] {
            assert_eq!(
                parse_kind(bad).unwrap_err(),
                format!("{bad:?} is not a resource kind: use node (or ssh), db, app or kube")
            );
        }
    }
}
