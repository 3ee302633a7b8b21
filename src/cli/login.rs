//! `login`, `logout`, `status`, `ls`.

use anyhow::Context as _;

use crate::cli::Global;
use crate::client::context::Context;
use crate::client::dial::Dialer;
use crate::client::profile::{Dirs, Profile};
use crate::client::webapi;
use crate::util::addr::HostPort;
use crate::util::fsutil;

/// `oneport login`.
///
/// # Errors
/// When the proxy cannot be reached or does not accept the identity.
pub async fn login(g: &Global) -> anyhow::Result<u8> {
    let over = g.overrides();
    if over.proxy.is_none() || over.identity.is_none() {
        anyhow::bail!("login needs --proxy HOST:PORT and --identity FILE (from `oneport server issue`)");
    }
    let ctx = Context::build(&over, None)?;
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
    let left = p.expires - now;
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

/// `oneport ls`.
///
/// # Errors
/// When the proxy cannot be reached.
pub async fn ls(g: &Global) -> anyhow::Result<u8> {
    let ctx = Context::resolve(&g.overrides())?;
    let dialer = Dialer::new(ctx);
    let ping = webapi::ping(&dialer).await?;
    if ping.resources.is_empty() {
        println!("No resources on {} for this identity.", ping.public_addr);
        return Ok(0);
    }
    println!("{:<14} {:<24} PROTOCOL", "KIND", "NAME");
    for r in &ping.resources {
        println!("{:<14} {:<24} {}", r.kind.noun(), r.name, r.protocol);
    }
    Ok(0)
}
