//! `login`, `logout`, `status`.

use std::io::IsTerminal as _;

use anyhow::Context as _;

use crate::cli::Global;
use crate::client::context::Context;
use crate::client::dial::Dialer;
use crate::client::profile::{self, Dirs, Profile};
use crate::client::webapi;
use crate::tools::kube::kubeconfig::{self, Written};
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
    /// With --identity: replace an enrolled, renewable identity stored for this
    /// proxy (another user's or another key's) instead of refusing.
    #[arg(long, conflicts_with_all = ["renew", "token"])]
    pub force: bool,
}

/// Arguments of `oneport logout`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogoutArgs {
    /// Log out of every stored proxy, not only the active one (or --proxy's).
    #[arg(long)]
    pub all: bool,
    /// Also remove the kubeconfig entries `oneport kube login` wrote for those
    /// proxies, without asking.
    #[arg(long, short)]
    pub yes: bool,
}

/// How `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    /// For people.
    Text,
    /// One JSON object (docs/json.md).
    Json,
}

/// Arguments of `oneport status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
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
    let mut over = g.overrides();
    let Some(proxy) = over.proxy.clone() else {
        anyhow::bail!(
            "login needs --proxy HOST:PORT and --token TOKEN (from `oneport server invite`) or --identity FILE (from `oneport server issue`)"
        );
    };
    let mut renewable_until = None;
    if let Some(given) = &over.identity {
        renewable_until = check_replacing(&proxy, given, a.force)?;
    }
    if over.identity.is_none() {
        // `login --proxy B` alone: switch to B's stored profile (checked again).
        let dirs = Dirs::locate()?;
        let Some(stored) = Profile::select(&dirs, Some(&proxy))? else {
            anyhow::bail!(
                "no stored profile for proxy {proxy}: log in with --token TOKEN (from `oneport server invite`) or --identity FILE (from `oneport server issue`)"
            );
        };
        over.identity = Some(stored.identity.clone());
        over.ca = over.ca.or(stored.ca.clone());
        if stored.insecure && !over.insecure {
            crate::cli::warn_insecure(); // the profile says so; say it as for the flag
            over.insecure = true;
        }
        renewable_until = stored.renewable_until;
    }
    store_login(g, over, renewable_until).await
}

/// Refuses `login --identity given` (unless `force`) when `proxy`'s stored profile
/// holds an enrolled identity that can still be renewed and `given` is another key;
/// a file that does not load is left to the login's own error. `Some` is the
/// renewable-until to keep: `given` is the stored identity's key again.
fn check_replacing(proxy: &str, given: &std::path::Path, force: bool) -> anyhow::Result<Option<i64>> {
    let dirs = Dirs::locate()?;
    let Some(stored) = Profile::select(&dirs, Some(proxy))? else { return Ok(None) };
    let Some(until) = stored.renewable_until.filter(|u| *u > now()) else { return Ok(None) };
    let key_of = |p: &std::path::Path| {
        crate::identity::Identity::load(p)
            .ok()
            .and_then(|id| id.chain.first().and_then(|c| crate::proto::auth::pin_of_cert(c).ok()))
    };
    let (Some(old), Some(new)) = (key_of(&stored.identity), key_of(given)) else { return Ok(None) };
    if old == new {
        return Ok(Some(until));
    }
    if force {
        return Ok(None);
    }
    anyhow::bail!(
        "the profile for {p} holds {user}'s renewable identity (renewable until {until}); `oneport login --proxy {p} --identity {file} --force` replaces it, or `oneport logout --proxy {p}` first",
        p = stored.proxy,
        user = stored.user,
        until = when(until),
        file = given.display(),
    )
}

/// `login --token`: enroll, write the identity, then log in with it.
async fn login_token(g: &Global, token: &str) -> anyhow::Result<u8> {
    if g.identity.is_some() {
        anyhow::bail!("--token makes a new identity: leave out --identity");
    }
    let proxy_text = g.proxy.clone().ok_or_else(|| anyhow::anyhow!("login --token needs --proxy HOST:PORT"))?;
    let proxy = HostPort::parse_with_default(&proxy_text, 3080).map_err(|e| anyhow::anyhow!("--proxy {e}"))?;
    let token = crate::proto::auth::Token::parse(token).map_err(|e| anyhow::anyhow!(e))?;
    let lb_ca = g.ca.as_deref().map(crate::identity::load_certs).transpose()?.unwrap_or_default();
    let enrolled = crate::client::enroll::enroll(&proxy, &token, &lb_ca)
        .await
        .with_context(|| format!("enrolling with the invite at {proxy}"))?;
    let dirs = Dirs::locate()?;
    let id_copy = dirs.identity_copy(&proxy);
    fsutil::write_private(&id_copy, enrolled.identity_pem.as_bytes())?;
    crate::cli::say!(
        "Enrolled: a key pair made on this machine, certificate {} signed by the proxy.",
        enrolled.issued.serial
    );
    let mut over = g.overrides();
    over.proxy = Some(proxy.to_string());
    over.identity = Some(id_copy);
    store_login(g, over, Some(enrolled.issued.renewable_until)).await
}

/// `login --renew`: a fresh key and certificate for the profile's identity.
async fn renew(g: &Global) -> anyhow::Result<u8> {
    let dirs = Dirs::locate()?;
    let Some(mut profile) = Profile::select(&dirs, g.proxy.as_deref())? else {
        anyhow::bail!("not logged in: `oneport login --proxy HOST:PORT --token TOKEN` first");
    };
    let ctx = Context::resolve(&g.overrides())?;
    let out = ctx.identity_path.clone().unwrap_or_else(|| profile.identity.clone());
    let dialer = Dialer::new(ctx);
    let issued = crate::client::enroll::renew(&dialer, &out).await.context("renewing the identity")?;
    profile.expires = issued.not_after;
    profile.renewable_until = Some(issued.renewable_until);
    profile.save(&dirs)?;
    crate::cli::say!(
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

/// Keeps `proxy`'s login profile's expiry in step with background renewals.
pub fn profile_follows(proxy: HostPort) -> impl Fn(&crate::proto::auth::Issued) + Send + 'static {
    move |issued| {
        if let Ok(dirs) = Dirs::locate() {
            if let Ok(Some(mut p)) = Profile::load_for(&dirs, &proxy) {
                if p.user == issued.user {
                    p.expires = issued.not_after;
                    let _ = p.save(&dirs);
                }
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
    let Ok(Some(mut profile)) = Profile::select(&dirs, g.proxy.as_deref()) else { return };
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
    let follow = profile_follows(ctx.proxy.clone());
    tokio::spawn(crate::client::enroll::keep_renewed(dialer.clone(), shutdown, follow));
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
    let id_copy = dirs.identity_copy(&ctx.proxy);
    let id_src = over.identity.as_ref().map(|p| fsutil::read(p)).transpose()?.unwrap_or_default();
    fsutil::write_private(&id_copy, &id_src)?;
    let ca = match &over.ca {
        Some(p) => {
            let copy = dirs.ca_copy(&ctx.proxy);
            fsutil::write_private(&copy, &fsutil::read(p)?)?;
            Some(copy)
        }
        None => None,
    };
    // Logging in again keeps the record of what `kube login` wrote for this proxy.
    let kube_entries = Profile::load_for(&dirs, &ctx.proxy).ok().flatten().map(|p| p.kube_entries).unwrap_or_default();
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
        kube_entries,
    };
    profile.save(&dirs)?;
    profile.activate(&dirs)?;
    crate::cli::say!(
        "Logged in to {} (cluster {}, server {}) as {}",
        ctx.proxy,
        ping.cluster_name,
        ping.server_version,
        who(&caller.user, &caller.groups)
    );
    crate::cli::say!("Identity valid for {}.", crate::util::duration::format(caller.remaining()));
    if let Some(r) = renewable_until {
        crate::cli::say!(
            "Renewed automatically by long-running proxies (or `oneport login --renew`) until {}, as long as \
             it has not expired: renewal presents the current certificate, so one that lapsed (a laptop closed \
             past its expiry) needs a new invite.",
            when(r)
        );
    }
    if upgrade.required {
        crate::cli::say!(
            "A layer 7 load balancer is in front: connections are tunnelled through {} ({}).",
            crate::proto::upgrade::PATH,
            upgrade.reason
        );
    }
    crate::cli::say!("{} resource(s) available: run `oneport ls`.", ping.resources.len());
    Ok(0)
}

fn who(user: &str, groups: &[String]) -> String {
    if groups.is_empty() {
        user.to_string()
    } else {
        format!("{user} (groups: {})", groups.join(", "))
    }
}

/// `oneport logout [--all] [--yes]`: removes the profile `--proxy` names (else the
/// active one), or every profile, with their identity copies; offers to remove the
/// kubeconfig entries `kube login` wrote for them.
///
/// # Errors
/// When a file cannot be removed.
pub fn logout(g: &Global, a: LogoutArgs) -> anyhow::Result<u8> {
    let dirs = Dirs::locate()?;
    let legacy = dirs.legacy_profile_path();
    if legacy.exists() && Profile::load(&dirs).is_err() {
        // A profile.yaml of an older version that does not parse cannot be migrated.
        profile::remove_broken(&legacy)?;
        say!("Removed {}, which does not parse.", legacy.display());
    }
    let targets: Vec<Profile> = if a.all {
        let mut all = Vec::new();
        for (path, p) in Profile::list(&dirs)? {
            match p {
                Ok(p) => all.push(p),
                Err(_) => {
                    profile::remove_broken(&path)?;
                    say!("Removed {}, which does not parse.", path.display());
                }
            }
        }
        if all.is_empty() && profile::active_proxy(&dirs)?.is_some() {
            let _ = std::fs::remove_file(dirs.active_path());
        }
        all
    } else {
        Profile::select(&dirs, g.proxy.as_deref())?.into_iter().collect()
    };
    if targets.is_empty() {
        let stored: Vec<String> =
            Profile::list(&dirs)?.into_iter().filter_map(|(_, p)| p.ok()).map(|p| p.proxy).collect();
        match &g.proxy {
            Some(p) if !a.all => say!("Not logged in to {p}."),
            _ if !stored.is_empty() => say!(
                "No profile is active. Still stored: {}; `oneport logout --proxy HOST:PORT` removes one, `oneport logout --all` all.",
                stored.join(", ")
            ),
            _ => say!("Not logged in."),
        }
        return Ok(0);
    }
    for p in &targets {
        p.remove(&dirs)?;
        say!("Logged out of {} ({}): its profile and identity copy are removed.", p.proxy, p.user);
        kube_cleanup(p, a.yes)?;
    }
    if !a.all {
        let left: Vec<String> =
            Profile::list(&dirs)?.into_iter().filter_map(|(_, p)| p.ok()).map(|p| p.proxy).collect();
        if !left.is_empty() && profile::active_proxy(&dirs)?.is_none() {
            say!(
                "No profile is active now. Still stored: {}; `oneport login --proxy HOST:PORT` makes one active, `oneport logout --all` removes them.",
                left.join(", ")
            );
        }
    }
    Ok(0)
}

/// Removes (with `yes`, or when the user says so on a terminal) the kubeconfig
/// entries `kube login` wrote for `p`; otherwise says what was left and how to
/// remove it.
fn kube_cleanup(p: &Profile, yes: bool) -> anyhow::Result<()> {
    if p.kube_entries.is_empty() {
        return Ok(());
    }
    let what = describe(&p.kube_entries);
    let remove = yes
        || (std::io::stdin().is_terminal()
            && ask(&format!("Remove the kubeconfig entries oneport wrote for {} ({what})? [y/N] ", p.proxy)));
    if remove {
        let gone = kubeconfig::remove(&p.kube_entries)?;
        if gone.is_empty() {
            say!("The kubeconfig entries oneport wrote for {} were already gone.", p.proxy);
        } else {
            say!("Removed the kubeconfig entries oneport wrote for {}: {}.", p.proxy, describe(&gone));
        }
    } else {
        say!("Left the kubeconfig entries oneport wrote for {}: {what}. Remove them with:", p.proxy);
        for e in &p.kube_entries {
            say!("  {}", e.kubectl_delete());
        }
    }
    Ok(())
}

/// `context x, cluster x, user x in FILE; ...`.
fn describe(entries: &[Written]) -> String {
    let mut files: Vec<&std::path::Path> = Vec::new();
    for e in entries {
        if !files.contains(&e.file.as_path()) {
            files.push(&e.file);
        }
    }
    let parts: Vec<String> = files
        .iter()
        .map(|f| {
            let names: Vec<String> =
                entries.iter().filter(|e| e.file == *f).map(|e| format!("{} {}", e.kind.noun(), e.name)).collect();
            format!("{} in {}", names.join(", "), f.display())
        })
        .collect();
    parts.join("; ")
}

/// Asks `question` on the terminal; yes only for `y` or `yes`.
fn ask(question: &str) -> bool {
    use std::io::Write as _;
    let mut out = std::io::stdout();
    let _ = out.write_all(question.as_bytes());
    let _ = out.flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// One stored profile as `status` lists it.
#[derive(Debug, serde::Serialize)]
struct Listed {
    proxy: String,
    cluster: String,
    user: String,
    valid_until: String,
    expired: bool,
    active: bool,
}

/// What the next command will use, as `status --format json` prints it.
#[derive(Debug, serde::Serialize)]
struct StatusJson {
    logged_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_from: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile_active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renews_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renewable_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    insecure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upgrade: Option<crate::client::profile::UpgradeCache>,
    profiles: Vec<Listed>,
}

/// `oneport status`: what the next command will use (`--proxy`, `--identity` and
/// the stored profiles, resolved as every command resolves them), then the stored
/// profiles with the active one marked.
///
/// # Errors
/// When a profile or the identity does not load.
pub fn status(g: &Global, a: StatusArgs) -> anyhow::Result<u8> {
    let dirs = Dirs::locate()?;
    let now = now();
    let active = profile::active_proxy(&dirs)?;
    let mut listed = Vec::new();
    let mut broken = Vec::new();
    for (path, p) in Profile::list(&dirs)? {
        match p {
            Ok(p) => {
                let expires =
                    crate::identity::Identity::load(&p.identity).map(|i| i.caller.not_after).unwrap_or(p.expires);
                listed.push(Listed {
                    active: p.host_port().ok() == active,
                    proxy: p.proxy,
                    cluster: p.cluster,
                    user: p.user,
                    valid_until: when(expires),
                    expired: expires <= now,
                })
            }
            Err(e) => broken.push(format!("{}: {e}", path.display())),
        }
    }
    let selected = Profile::select(&dirs, g.proxy.as_deref())?;
    if selected.is_none() && g.identity.is_none() {
        let why = match &g.proxy {
            Some(p) => format!("Not logged in to {p}. Run: oneport login --proxy {p} --identity FILE"),
            None => "Not logged in. Run: oneport login --proxy HOST:PORT --identity FILE".to_string(),
        };
        match a.format {
            StatusFormat::Json => say!("{}", json(&StatusJson::empty(listed))),
            StatusFormat::Text => {
                say!("{why}");
                print_list(&listed, &broken);
            }
        }
        return Ok(1);
    }
    let ctx = Context::build(&g.overrides(), selected)?;
    let c = &ctx.identity.caller;
    let left = c.not_after - now;
    let from_flag = g.identity.is_some();
    let id_path = ctx.identity_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let p = ctx.profile.as_ref();
    let profile_active = p.map(|p| p.is_active(&dirs));
    // Renewal applies to the profile's own identity only.
    let renewable = p.and_then(|p| p.renewable_until).filter(|_| !from_flag);
    let renews_at = renewable.map(|_| when(crate::client::enroll::renew_at(c.not_before, c.not_after)));
    let insecure = ctx.trust.insecure;
    let upgrade = p.and_then(|p| p.upgrade.clone());
    if a.format == StatusFormat::Json {
        let out = StatusJson {
            logged_in: true,
            proxy: Some(ctx.proxy.to_string()),
            cluster: Some(ctx.cluster.clone()),
            user: Some(c.user.clone()),
            groups: Some(c.groups.clone()),
            valid_until: Some(when(c.not_after)),
            expired: Some(left <= 0),
            identity: Some(id_path),
            identity_from: Some(if from_flag { "--identity" } else { "profile" }),
            profile_active,
            renews_at,
            renewable_until: renewable.map(when),
            insecure: Some(insecure),
            upgrade,
            profiles: listed,
        };
        say!("{}", json(&out));
        return Ok(if left > 0 { 0 } else { 1 });
    }
    let proxy_note = match (p, profile_active) {
        (Some(_), Some(true)) => " (active profile)".to_string(),
        (Some(_), _) => match &active {
            Some(a) => format!(" (chosen by --proxy; the active profile is {a})"),
            None => " (chosen by --proxy; no profile is active)".to_string(),
        },
        (None, _) => " (no stored profile for it)".to_string(),
    };
    say!("Proxy:     {}{proxy_note}", ctx.proxy);
    say!("Cluster:   {}", ctx.cluster);
    say!("User:      {}", who(&c.user, &c.groups));
    let until = when(c.not_after);
    if left > 0 {
        say!(
            "Valid for: {} (until {until})",
            crate::util::duration::format(std::time::Duration::from_secs(left as u64))
        );
    } else {
        say!(
            "Valid for: EXPIRED {} ago (at {until}): get a new identity and log in again",
            crate::util::duration::format(std::time::Duration::from_secs((-left) as u64))
        );
    }
    let id_note = if from_flag { " (from --identity / ONEPORT_IDENTITY, not the profile's)" } else { "" };
    say!("Identity:  {id_path}{id_note}");
    if let (Some(at), Some(until)) = (&renews_at, renewable) {
        say!("Renews at: {at}");
        say!("Renewable until: {} (while the certificate is valid; a lapsed one needs a new invite)", when(until));
    }
    if insecure {
        say!("TLS:       NOT verified (--insecure)");
    }
    if let Ok(v) = std::env::var(crate::client::upgrade::detect::OVERRIDE_VAR) {
        say!("Upgrade:   {}={v} overrides the cached decision", crate::client::upgrade::detect::OVERRIDE_VAR);
    }
    match &upgrade {
        Some(u) => say!("Upgrade:   {} ({})", if u.required { "required" } else { "not required" }, u.reason),
        None => say!("Upgrade:   not probed (direct TLS routing)"),
    }
    print_list(&listed, &broken);
    Ok(if left > 0 { 0 } else { 1 })
}

impl StatusJson {
    fn empty(profiles: Vec<Listed>) -> StatusJson {
        StatusJson {
            logged_in: false,
            proxy: None,
            cluster: None,
            user: None,
            groups: None,
            valid_until: None,
            expired: None,
            identity: None,
            identity_from: None,
            profile_active: None,
            renews_at: None,
            renewable_until: None,
            insecure: None,
            upgrade: None,
            profiles,
        }
    }
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The stored profiles, `*` marking the active one.
fn print_list(listed: &[Listed], broken: &[String]) {
    if listed.is_empty() && broken.is_empty() {
        return;
    }
    say!("");
    say!("Profiles (* = active):");
    let width = listed.iter().map(|l| l.proxy.len()).max().unwrap_or(0);
    for l in listed {
        let mark = if l.active { '*' } else { ' ' };
        let valid =
            if l.expired { format!("EXPIRED at {}", l.valid_until) } else { format!("valid until {}", l.valid_until) };
        say!("{mark} {:<width$}  cluster {}  user {}  {valid}", l.proxy, l.cluster, l.user);
    }
    for b in broken {
        say!("  {b}");
    }
}
