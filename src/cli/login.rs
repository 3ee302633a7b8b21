//! `login`, `logout`, `status`.

use anyhow::Context as _;

use crate::cli::Global;
use crate::client::context::Context;
use crate::client::dial::Dialer;
use crate::client::profile::{Dirs, Profile};
use crate::client::webapi;
use crate::util::addr::HostPort;
use crate::util::fsutil;

/// Arguments of `oneport login`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// The invite token from `oneport server invite` (single use). It pins the
    /// cluster's CA, so no CA file is needed.
    #[arg(long, env = "ONEPORT_TOKEN", value_name = "TOKEN", conflicts_with_all = ["renew"])]
    pub token: Option<String>,
    /// Renew the current identity now (same user and groups, a fresh key pair),
    /// as long as the invite's renewable period lasts.
    #[arg(long)]
    pub renew: bool,
}

/// `oneport login`.
///
/// # Errors
/// When the proxy cannot be reached or does not accept the identity.
pub async fn login(g: &Global, a: LoginArgs) -> anyhow::Result<u8> {
    if let Some(token) = &a.token {
        return login_token(g, token).await;
    }
    if a.renew {
        return renew(g).await;
    }
    let over = g.overrides();
    if over.proxy.is_none() || over.identity.is_none() {
        anyhow::bail!(
            "login needs --proxy HOST:PORT and --token TOKEN (from `oneport server invite`) or --identity FILE (from `oneport server issue`)"
        );
    }
    store_login(g, over, None).await
}

/// `login --token`: enroll, write the identity, then log in with it.
async fn login_token(g: &Global, token: &str) -> anyhow::Result<u8> {
    if g.identity.is_some() {
        anyhow::bail!("--token makes a new identity: leave out --identity");
    }
    let proxy_text = g.proxy.clone().ok_or_else(|| anyhow::anyhow!("login --token needs --proxy HOST:PORT"))?;
    let proxy = HostPort::parse_with_default(&proxy_text, 3080).map_err(|e| anyhow::anyhow!("--proxy {e}"))?;
    let token = crate::proto::auth::Token::parse(token).map_err(|e| anyhow::anyhow!(e))?;
    let enrolled = crate::client::enroll::enroll(&proxy, &token)
        .await
        .with_context(|| format!("enrolling with the invite at {proxy}"))?;
    let dirs = Dirs::locate()?;
    let id_copy = dirs.data.join(format!("identity-{}.pem", sanitize(&proxy)));
    fsutil::write_private(&id_copy, enrolled.identity_pem.as_bytes())?;
    println!("Enrolled: a key pair made on this machine, certificate {} signed by the proxy.", enrolled.issued.serial);
    let mut over = g.overrides();
    over.proxy = Some(proxy.to_string());
    over.identity = Some(id_copy);
    store_login(g, over, Some(enrolled.issued.renewable_until)).await
}

/// `login --renew`: a fresh key and certificate for the profile's identity.
async fn renew(g: &Global) -> anyhow::Result<u8> {
    let dirs = Dirs::locate()?;
    let Some(mut profile) = Profile::load(&dirs)? else {
        anyhow::bail!("not logged in: `oneport login --proxy HOST:PORT --token TOKEN` first");
    };
    let ctx = Context::resolve(&g.overrides())?;
    let out = ctx.identity_path.clone().unwrap_or_else(|| profile.identity.clone());
    let dialer = Dialer::new(ctx);
    let issued = crate::client::enroll::renew(&dialer, &out).await.context("renewing the identity")?;
    profile.expires = issued.not_after;
    profile.renewable_until = Some(issued.renewable_until);
    profile.save(&dirs)?;
    println!(
        "Renewed: certificate {} for {}, valid for {}; renewable until {}.",
        issued.serial,
        who(&issued.user, &issued.groups),
        crate::util::duration::format(std::time::Duration::from_secs((issued.not_after - now()).max(0) as u64)),
        when(issued.renewable_until)
    );
    Ok(0)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Epoch seconds as RFC 3339 UTC.
pub fn when(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Keeps the login profile's expiry in step with background renewals.
pub fn profile_follows(issued: &crate::proto::auth::Issued) {
    if let Ok(dirs) = Dirs::locate() {
        if let Ok(Some(mut p)) = Profile::load(&dirs) {
            if p.user == issued.user {
                p.expires = issued.not_after;
                let _ = p.save(&dirs);
            }
        }
    }
}

/// Renews the profile's identity before a command uses it, when it was enrolled by
/// invite and is past its renewal time but not expired (so short-lived commands
/// such as `db connect` keep it alive too). Best effort: a failure is a warning.
pub async fn renew_if_due(g: &Global) {
    if g.identity.is_some() {
        return; // a file the user manages
    }
    let Ok(dirs) = Dirs::locate() else { return };
    let Ok(Some(mut profile)) = Profile::load(&dirs) else { return };
    if profile.renewable_until.is_none_or(|u| u < now()) {
        return;
    }
    let Ok(id) = crate::identity::Identity::load(&profile.identity) else { return };
    let c = &id.caller;
    if now() < crate::client::enroll::renew_at(c.not_before, c.not_after) || c.expired_at(std::time::SystemTime::now())
    {
        return;
    }
    let Ok(ctx) = Context::resolve(&g.overrides()) else { return };
    if ctx.identity_path.as_ref() != Some(&profile.identity) {
        return;
    }
    let out = profile.identity.clone();
    match crate::client::enroll::renew(&Dialer::new(ctx), &out).await {
        Ok(issued) => {
            tracing::info!(serial = %issued.serial, "identity renewed");
            profile.expires = issued.not_after;
            let _ = profile.save(&dirs);
        }
        Err(e) => tracing::warn!("the identity could not be renewed now: {e}"),
    }
}

/// Starts background renewal for a long-running local proxy, when its identity
/// is the profile's and was enrolled by invite.
pub fn spawn_renewal(dialer: &std::sync::Arc<Dialer>, shutdown: tokio_util::sync::CancellationToken) {
    let ctx = dialer.context();
    let Some(p) = ctx.profile.as_ref() else { return };
    if p.renewable_until.is_none() || ctx.identity_path.as_ref() != Some(&p.identity) {
        return;
    }
    tokio::spawn(crate::client::enroll::keep_renewed(dialer.clone(), shutdown, profile_follows));
}

async fn store_login(
    g: &Global,
    over: crate::client::context::Overrides,
    renewable_until: Option<i64>,
) -> anyhow::Result<u8> {
    let _ = g;
    let ctx = Context::build(&over, None)?;
    ctx.identity.caller.check_current()?;
    let dialer = Dialer::new(ctx.clone());
    let ping = webapi::ping(&dialer).await.with_context(|| format!("checking the identity against {}", ctx.proxy))?;
    let caller = ping.caller.clone().ok_or_else(|| {
        anyhow::anyhow!("{} did not accept the identity's certificate (no caller reported)", ctx.proxy)
    })?;
    let mut upgrade = dialer.upgrade_decision().await?;
    if upgrade.reason.starts_with(crate::client::upgrade::detect::OVERRIDE_VAR) {
        // Cache what the path really needs, not what the variable forces today.
        upgrade = dialer.probe().await;
    }
    let dirs = Dirs::locate()?;
    let tag = sanitize(&ctx.proxy);
    let id_copy = dirs.data.join(format!("identity-{tag}.pem"));
    let id_src = over.identity.as_ref().map(|p| fsutil::read(p)).transpose()?.unwrap_or_default();
    fsutil::write_private(&id_copy, &id_src)?;
    let ca = match &over.ca {
        Some(p) => {
            let copy = dirs.data.join(format!("ca-{tag}.pem"));
            fsutil::write_private(&copy, &fsutil::read(p)?)?;
            Some(copy)
        }
        None => None,
    };
    let profile = Profile {
        proxy: ctx.proxy.to_string(),
        cluster: ping.cluster_name.clone(),
        routing_domain: ping.routing_domain.clone(),
        identity: id_copy,
        ca,
        insecure: over.insecure,
        user: caller.user.clone(),
        groups: caller.groups.clone(),
        expires: caller.not_after,
        upgrade: Some(upgrade.clone()),
        renewable_until,
    };
    profile.save(&dirs)?;
    println!(
        "Logged in to {} (cluster {}, server {}) as {}",
        ctx.proxy,
        ping.cluster_name,
        ping.server_version,
        who(&caller.user, &caller.groups)
    );
    println!("Identity valid for {}.", crate::util::duration::format(caller.remaining()));
    if let Some(r) = renewable_until {
        println!("Renewed automatically by long-running proxies (or `oneport login --renew`) until {}.", when(r));
    }
    if upgrade.required {
        println!(
            "A layer 7 load balancer is in front: connections are tunnelled through {} ({}).",
            crate::proto::upgrade::PATH,
            upgrade.reason
        );
    }
    println!("{} resource(s) available: run `oneport ls`.", ping.resources.len());
    Ok(0)
}

fn sanitize(hp: &HostPort) -> String {
    format!("{hp}").chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

fn who(user: &str, groups: &[String]) -> String {
    if groups.is_empty() {
        user.to_string()
    } else {
        format!("{user} (groups: {})", groups.join(", "))
    }
}

/// `oneport logout`.
///
/// # Errors
/// When the profile cannot be removed.
pub fn logout() -> anyhow::Result<u8> {
    let dirs = Dirs::locate()?;
    let proxy = Profile::load(&dirs).ok().flatten().map(|p| p.proxy);
    if Profile::remove(&dirs)? {
        println!("Logged out{}.", proxy.map(|p| format!(" of {p}")).unwrap_or_default());
    } else {
        println!("Not logged in.");
    }
    Ok(0)
}

/// `oneport status`.
///
/// # Errors
/// When the profile does not parse.
pub fn status(g: &Global) -> anyhow::Result<u8> {
    let dirs = Dirs::locate()?;
    let Some(p) = Profile::load(&dirs)? else {
        println!("Not logged in. Run: oneport login --proxy HOST:PORT --identity FILE");
        return Ok(1);
    };
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    // The identity file is the truth: renewals replace it.
    let expires = crate::identity::Identity::load(&p.identity).map(|i| i.caller.not_after).unwrap_or(p.expires);
    let left = expires - now;
    println!("Proxy:     {}", p.proxy);
    println!("Cluster:   {}", p.cluster);
    println!("User:      {}", who(&p.user, &p.groups));
    if left > 0 {
        println!("Valid for: {}", crate::util::duration::format(std::time::Duration::from_secs(left as u64)));
    } else {
        println!(
            "Valid for: EXPIRED {} ago: get a new identity and log in again",
            crate::util::duration::format(std::time::Duration::from_secs((-left) as u64))
        );
    }
    println!("Identity:  {}", p.identity.display());
    if let Some(until) = p.renewable_until {
        let id = crate::identity::Identity::load(&p.identity).ok();
        if let Some(c) = id.as_ref().map(|i| &i.caller) {
            println!("Renews at: {}", when(crate::client::enroll::renew_at(c.not_before, c.not_after)));
        }
        println!("Renewable until: {}", when(until));
    }
    if p.insecure || g.insecure {
        println!("TLS:       NOT verified (--insecure)");
    }
    if let Ok(v) = std::env::var(crate::client::upgrade::detect::OVERRIDE_VAR) {
        println!("Upgrade:   {}={v} overrides the cached decision", crate::client::upgrade::detect::OVERRIDE_VAR);
    }
    match &p.upgrade {
        Some(u) => println!("Upgrade:   {} ({})", if u.required { "required" } else { "not required" }, u.reason),
        None => println!("Upgrade:   not probed (direct TLS routing)"),
    }
    Ok(if left > 0 { 0 } else { 1 })
}
