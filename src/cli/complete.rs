//! `oneport __complete KIND` (hidden): the names of the proxy's resources of one
//! kind, one per line, for the shell completion scripts (`cli::docs` adds the shell
//! side). Quick and silent: nothing but names on stdout, exit 0 on any failure.

use std::time::Duration;

use clap::Args;

use crate::cli::Global;
use crate::client::context::Context;
use crate::client::dial::Dialer;
use crate::client::webapi;
use crate::proto::naming::Kind;

/// The longest a completion may wait for the proxy (a shell is waiting on it).
const LIMIT: Duration = Duration::from_secs(2);

/// Arguments of `__complete`.
#[derive(Debug, Clone, Args)]
pub struct CompleteArgs {
    /// app, db, kube or node.
    pub kind: String,
    /// Only names starting with this.
    #[arg(default_value = "")]
    pub prefix: String,
}

/// The kind a completion asks for.
fn kind(word: &str) -> Option<Kind> {
    match word {
        "app" => Some(Kind::App),
        "db" => Some(Kind::Db),
        "kube" => Some(Kind::Kube),
        "node" => Some(Kind::Node),
        _ => None,
    }
}

/// Prints the names; never fails (a completion that cannot ask offers nothing).
///
/// # Errors
/// None: every failure means no names.
pub async fn run(g: &Global, a: CompleteArgs) -> anyhow::Result<u8> {
    let Some(kind) = kind(&a.kind) else { return Ok(0) };
    let Ok(ctx) = Context::resolve(&g.overrides()) else { return Ok(0) };
    let dialer = Dialer::new(ctx);
    let Ok(Ok(ping)) = tokio::time::timeout(LIMIT, webapi::ping(&dialer)).await else { return Ok(0) };
    let mut names: Vec<&str> = ping
        .resources
        .iter()
        .filter(|r| r.kind == kind && r.name.starts_with(&a.prefix))
        .map(|r| r.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    for n in names {
        crate::cli::say!("{n}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn kinds() {
        use crate::proto::naming::Kind;
        assert_eq!(super::kind("db"), Some(Kind::Db));
        assert_eq!(super::kind("node"), Some(Kind::Node));
        assert_eq!(super::kind("pods"), None);
    }
}
