//! `oneport doctor`: walks the path to the proxy layer by layer (identity, DNS,
//! HTTPS_PROXY, TCP, TLS and who signed the certificate, ALPN probe, upgrade, mutual
//! TLS and the web API, resources, and with `--resource` the route, the tunnel and
//! the server's own dial to the backend) and says in plain words where it breaks.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use rustls::client::danger::ServerCertVerifier;

use crate::cli::Global;
use crate::client::context::Context;
use crate::client::dial::{Dialer, PathOptions, Target};
use crate::client::upgrade::detect;
use crate::client::webapi;
use crate::net::tls::{self, Trust};
use crate::proto::db::DbProtocol;
use crate::proto::naming::{AppKind, Kind, Protocol, ResourceRef};
use crate::proto::webapi::Outcome;

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also check one resource, as KIND/NAME (kinds: node, db, app, kube): its route,
    /// its tunnel, and whether the server reaches its backend.
    #[arg(long, value_name = "KIND/NAME")]
    pub resource: Option<String>,
}

struct Report {
    failed: Option<String>,
}

impl Report {
    fn ok(&self, layer: &str, msg: impl AsRef<str>) {
        crate::cli::say!("  [ok]   {layer:<12} {}", msg.as_ref());
    }
    fn info(&self, layer: &str, msg: impl AsRef<str>) {
        crate::cli::say!("  [--]   {layer:<12} {}", msg.as_ref());
    }
    fn fail(&mut self, layer: &str, msg: impl AsRef<str>, hint: &str) {
        crate::cli::say!("  [FAIL] {layer:<12} {}", msg.as_ref());
        if self.failed.is_none() {
            self.failed = Some(format!("{layer}: {hint}"));
        }
    }
}

/// Runs `doctor`; exit code 0 when every layer works, 1 otherwise.
///
/// # Errors
/// Only when no proxy or identity can be resolved at all.
pub async fn run(g: &Global, a: DoctorArgs) -> anyhow::Result<u8> {
    let ctx = Context::resolve_even_expired(&g.overrides())?;
    let dialer = Arc::new(Dialer::new(ctx.clone()));
    let mut r = Report { failed: None };
    crate::cli::say!("oneport doctor: proxy {}", ctx.proxy);
    // A resource that cannot be named fails before anything touches the network.
    let resource = match a.resource.as_deref().map(parse_resource).transpose() {
        Ok(x) => x,
        Err(msg) => {
            r.fail("resource", msg, "use node/web1, db/pg1, app/grafana or kube/dev");
            return Ok(finish(r));
        }
    };

    identity_layer(&mut r, &ctx);
    let Some(opts) = environment_layer(&mut r, &dialer) else { return Ok(finish(r)) };
    if !dns_layer(&mut r, &ctx, &opts).await {
        return Ok(finish(r));
    }
    let Some(io) = tcp_layer(&mut r, &dialer).await else { return Ok(finish(r)) };
    let by_proxy_ca = tls_layer(&mut r, &ctx, io).await;
    upgrade_layer(&mut r, &dialer, by_proxy_ca).await;
    web_api_layer(&mut r, &dialer).await;
    match &resource {
        Some(res) => resource_layer(&mut r, &dialer, res).await,
        None if r.failed.is_none() => r.info(
            "backend",
            "not checked: `oneport doctor --resource KIND/NAME` (e.g. db/pg1) asks the proxy to reach one",
        ),
        None => {}
    }
    Ok(finish(r))
}

/// Who the identity names, and until when; `--insecure` said loudly.
fn identity_layer(r: &mut Report, ctx: &Context) {
    let c = &ctx.identity.caller;
    if let Err(e) = c.check_current() {
        let sentence = e.to_string();
        r.fail("identity", &sentence, &sentence);
    } else {
        r.ok(
            "identity",
            format!(
                "{} (groups: {}), valid for {}",
                c.user,
                c.groups.join(", "),
                crate::util::duration::format(c.remaining())
            ),
        );
    }
    if ctx.trust.insecure {
        r.info("trust", "--insecure: the proxy's certificate is NOT verified");
    }
}

/// The path variables (upgrade override and mode, `HTTPS_PROXY`); `None` when one
/// does not parse.
fn environment_layer(r: &mut Report, dialer: &Dialer) -> Option<PathOptions> {
    match dialer.path_options() {
        Ok(o) => Some(o.clone()),
        Err(e) => {
            r.fail("environment", e.to_string(), "fix the variable named above");
            None
        }
    }
}

/// Resolves the proxy's host (unless an HTTPS proxy does it); false when it fails.
async fn dns_layer(r: &mut Report, ctx: &Context, opts: &PathOptions) -> bool {
    if opts.http_proxy.is_none() {
        match tokio::net::lookup_host((ctx.proxy.host.as_str(), ctx.proxy.port)).await {
            Ok(addrs) => {
                let ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
                r.ok("DNS", format!("{} -> {}", ctx.proxy.host, ips.join(", ")));
            }
            Err(e) => {
                r.fail("DNS", format!("{}: {e}", ctx.proxy.host), "check the proxy's host name");
                return false;
            }
        }
    }
    match &opts.http_proxy {
        Some(p) => r.info("HTTPS_PROXY", format!("CONNECT through {} (DNS is the proxy's job)", p.addr)),
        None => r.info("HTTPS_PROXY", "not set (or NO_PROXY exempts this proxy)"),
    }
    true
}

/// TCP to the proxy (through `HTTPS_PROXY` when set), timed.
async fn tcp_layer(r: &mut Report, dialer: &Dialer) -> Option<crate::net::io::BoxIo> {
    let t = Instant::now();
    match dialer.transport().await {
        Ok(io) => {
            r.ok("TCP", format!("connected in {:.1} ms", t.elapsed().as_secs_f64() * 1000.0));
            Some(io)
        }
        Err(e) => {
            r.fail("TCP", e.to_string(), "is the server running, the port right, a firewall in the way?");
            None
        }
    }
}

/// Whether an upgrade is needed (override or probe) and, if so, whether the load
/// balancer passes it.
/// `by_proxy_ca`: the TLS layer saw a certificate from the proxy CA, which an
/// upgrade verdict shows a load balancer holds.
async fn upgrade_layer(r: &mut Report, dialer: &Dialer, by_proxy_ca: bool) {
    let decision = match dialer.path_options().ok().and_then(|o| o.upgrade_override) {
        Some(v) => {
            r.info("ALPN", format!("probe skipped: {}={v}", detect::OVERRIDE_VAR));
            v
        }
        None => {
            let p = dialer.probe().await;
            r.ok("ALPN", &p.reason);
            p.required
        }
    };
    if decision && by_proxy_ca {
        r.info("TLS", "the certificate from the proxy CA is presented by a load balancer, not the routing server");
    }
    if decision {
        // The upgrade and the TLS inside it: a 101 that opens no tunnel fails here.
        match dialer.dial_upgraded(&Target::web(dialer.context())).await {
            Ok(_) => r.ok("upgrade", "the load balancer passes the connection upgrade"),
            Err(e) => r.fail(
                "upgrade",
                e.to_string(),
                "let the load balancer pass WebSocket upgrades on /webapi/connectionupgrade",
            ),
        }
    } else {
        r.info("upgrade", "not needed: ALPN and SNI reach the server");
    }
}

/// Mutual TLS and the web API: who the proxy sees, and what this identity may use.
async fn web_api_layer(r: &mut Report, dialer: &Dialer) {
    match webapi::ping(dialer).await {
        Ok(ping) => {
            match &ping.caller {
                Some(who) => r.ok(
                    "mTLS",
                    format!(
                        "the proxy knows you as {}; server {}, cluster {}",
                        who.user, ping.server_version, ping.cluster_name
                    ),
                ),
                None => r.fail(
                    "mTLS",
                    "the proxy did not see a client certificate",
                    "the identity is not from this cluster's CA",
                ),
            }
            let names: Vec<String> = ping.resources.iter().map(|x| format!("{} {}", x.kind.noun(), x.name)).collect();
            if names.is_empty() {
                r.info("resources", "none for this identity (ask for a place in an allow-list)");
            } else {
                r.ok("resources", format!("{} available: {}", names.len(), names.join(", ")));
            }
        }
        Err(e) => r.fail("mTLS", e.to_string(), "the identity or the CA does not match this proxy"),
    }
}

/// Who answers TLS on the proxy's address and who signed its certificate; true when
/// the proxy CA did (the routing server, or a load balancer holding such a
/// certificate: the ALPN probe tells which).
async fn tls_layer(r: &mut Report, ctx: &Context, io: crate::net::io::BoxIo) -> bool {
    let look = Trust { insecure: true, ..Trust::default() };
    let Ok(cfg) = tls::client_config(&look, None, vec![]) else { return false };
    let name = match tls::server_name(&ctx.proxy.host) {
        Ok(n) => n,
        Err(e) => {
            r.fail("TLS", e, "fix the proxy address");
            return false;
        }
    };
    let proxy = ctx.proxy.to_string();
    let limit = crate::client::dial::HANDSHAKE_TIMEOUT;
    let tls = match crate::net::connect::tls(io, cfg, name, limit).await {
        Ok(t) => t,
        Err(crate::net::connect::TlsFailure::Failed(e)) => {
            let msg = tls::explain_client_error(&e, &proxy);
            r.fail("TLS", msg, "the port does not speak TLS, or a middlebox cuts it");
            return false;
        }
        Err(timeout @ crate::net::connect::TlsFailure::Timeout(_)) => {
            let timeout = timeout.into_error(crate::error::Layer::Routing, &proxy, |_| String::new());
            let hint = "something accepts TCP but does not speak TLS (a stalled middlebox?)";
            r.fail("TLS", timeout.to_string(), hint);
            return false;
        }
    };
    let chain: Vec<_> = tls.get_ref().1.peer_certificates().map(|c| c.to_vec()).unwrap_or_default();
    let Some((leaf, intermediates)) = chain.split_first() else {
        r.fail("TLS", "no certificate presented", "the server must present a certificate");
        return false;
    };
    let (leaf, intermediates) = (leaf.clone(), intermediates.to_vec());
    let (subject, issuer) = match x509_parser::parse_x509_certificate(&leaf) {
        Ok((_, c)) => (c.subject().to_string(), c.issuer().to_string()),
        Err(_) => ("?".into(), "?".into()),
    };
    let verify = |trust: Trust| {
        let name = tls::server_name(&ctx.domain).ok();
        let leaf = leaf.clone();
        let intermediates = intermediates.clone();
        async move {
            let roots = Arc::new(tls::root_store(&trust).ok()?);
            let verifier =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, tls::provider()).build().ok()?;
            let now = rustls::pki_types::UnixTime::now();
            let host = tls::server_name(&ctx.proxy.host).ok()?;
            let ok_domain =
                name.is_some_and(|n| verifier.verify_server_cert(&leaf, &intermediates, &n, &[], now).is_ok());
            let ok_host = verifier.verify_server_cert(&leaf, &intermediates, &host, &[], now).is_ok();
            Some(ok_domain || ok_host)
        }
    };
    let by_proxy_ca = verify(Trust { ca: ctx.trust.ca.clone(), ..Trust::default() }).await == Some(true);
    let by_lb_ca = !ctx.trust.lb_ca.is_empty()
        && verify(Trust { ca: ctx.trust.lb_ca.clone(), ..Trust::default() }).await == Some(true);
    let by_system = verify(Trust { system: true, ..Trust::default() }).await == Some(true);
    let who = format!("certificate \"{subject}\" issued by \"{issuer}\"");
    if by_proxy_ca {
        r.ok("TLS", format!("{who}: signed by the proxy CA (the routing server, or a load balancer holding a certificate from the cluster CA: the ALPN probe tells which)"));
    } else if by_lb_ca {
        r.ok("TLS", format!("{who}: signed by the --ca CA (a load balancer or TLS proxy answers)"));
    } else if by_system {
        r.ok("TLS", format!("{who}: a publicly trusted certificate (a load balancer or TLS proxy answers)"));
    } else if ctx.trust.insecure {
        r.info("TLS", format!("{who}: not trusted, accepted because of --insecure"));
    } else {
        r.fail(
            "TLS",
            format!("{who}: trusted by neither the proxy CA nor the system roots"),
            "give --ca with the CA that signs this certificate",
        );
    }
    by_proxy_ca
}

/// `KIND/NAME` for `--resource`, checked as the web API would (pure).
///
/// # Errors
/// The sentence saying what is wrong.
fn parse_resource(spec: &str) -> Result<ResourceRef, String> {
    let Some((kind, name)) = spec.split_once('/') else {
        return Err(format!("{spec:?} is not KIND/NAME"));
    };
    let kind = kind.parse::<Kind>().map_err(|_| format!("{spec:?}: {kind:?} is not a kind (node, db, app or kube)"))?;
    webapi::check_name(kind, name).map_err(|e| format!("--resource {spec:?}: {e}"))?;
    Ok(ResourceRef::new(kind, name.to_string()))
}

async fn resource_layer(r: &mut Report, dialer: &Dialer, res_ref: &ResourceRef) {
    let (kind, name) = (res_ref.kind, res_ref.name.clone());
    let res = match webapi::resolve(dialer, res_ref).await {
        Ok(res) if res.outcome == Outcome::Allowed => res,
        Ok(res) => return r.fail("route", res.message.clone(), &res.message),
        Err(e) => return r.fail("route", e.to_string(), "see the error above"),
    };
    r.ok("route", &res.message);
    // Open the route itself, as a client of that kind would.
    let named = res.protocol.as_deref().unwrap_or_default();
    let protocol = match kind {
        Kind::Node => Protocol::ProxySsh,
        Kind::Kube => Protocol::Http1,
        Kind::App => named.parse::<AppKind>().unwrap_or(AppKind::Tcp).protocol(),
        Kind::Db => named.parse::<DbProtocol>().unwrap_or(DbProtocol::Postgres).protocol(),
    };
    let target = Target::resource(dialer.context(), kind, &name, protocol);
    match dialer.dial(&target).await {
        Ok(d) => {
            let alpn = d.alpn.map(|a| a.to_string()).unwrap_or_else(|| "none".into());
            r.ok("tunnel", format!("TLS to {} negotiated ALPN {alpn}", target.sni));
        }
        Err(e) => return r.fail("tunnel", e.to_string(), "the route resolves but the tunnel does not open"),
    }
    // The last hop: the server dials the backend, as a connection would.
    match webapi::reach(dialer, res_ref).await {
        Ok(answer) if answer.ok => r.ok("backend", &answer.message),
        Ok(answer) => r.fail("backend", &answer.message, "the proxy cannot reach the backend: see the sentence above"),
        Err(crate::error::Error::WebApiStatus { status: hyper::StatusCode::NOT_FOUND, .. }) => {
            r.info("backend", "not checked: this server has no /webapi/reach (it is older than this client)")
        }
        Err(e) => r.fail("backend", e.to_string(), "the proxy could not say whether it reaches the backend"),
    }
}

fn finish(r: Report) -> u8 {
    match r.failed {
        None => {
            crate::cli::say!("All checks passed.");
            0
        }
        Some(where_) => {
            crate::cli::say!("Where it breaks: {where_}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_specs_are_checked_before_the_network() {
        assert_eq!(parse_resource("app/grafana"), Ok(ResourceRef::new(Kind::App, "grafana".to_string())));
        assert_eq!(parse_resource("db/pg1").map(|r| r.kind), Ok(Kind::Db));
        assert_eq!(parse_resource("grafana").unwrap_err(), r#""grafana" is not KIND/NAME"#);
        assert_eq!(parse_resource("pod/x").unwrap_err(), r#""pod/x": "pod" is not a kind (node, db, app or kube)"#);
        assert!(parse_resource("app/Bad_Name").unwrap_err().contains("lowercase letters, digits and '-'"));
        assert!(parse_resource("app/").is_err());
    }
}
