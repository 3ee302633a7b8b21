//! The certificate authority behind the auth route (wire.md §10): invites,
//! enrollment, renewal and revocation. It signs with the cluster CA, remembers
//! through the [`Store`] and keeps one thing in memory: the revocation list, read
//! from the store every `state_refresh` so that every instance enforces a
//! revocation within seconds. When the store is unreachable it says so in the log
//! and refuses enrollment and renewal; identities already issued keep working
//! against the last list it read.

pub mod route;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::identity::pki::{self, CertAndKey};
use crate::identity::Caller;
use crate::proto::auth::{self as wire, Issued, Refusal, Token};
use crate::server::store::{self, Invite, IssuedRecord, Redeem, Revocation, Selector, Store};

/// What `server invite` asks for.
#[derive(Debug, Clone)]
pub struct InviteOptions {
    /// The user.
    pub user: String,
    /// The groups.
    pub groups: Vec<String>,
    /// Validity of each certificate.
    pub ttl: Duration,
    /// How long renewals are granted after enrollment.
    pub renewable_for: Duration,
    /// How long the token may be used.
    pub expires_in: Duration,
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Formats epoch seconds as RFC 3339 UTC.
pub fn when(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// A refusal on the auth route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why, for programs.
    pub code: Refusal,
    /// Why, in words.
    pub message: String,
}

fn refused(code: Refusal, message: impl Into<String>) -> Refused {
    Refused { code, message: message.into() }
}

/// The authority.
#[derive(Debug)]
pub struct Authority {
    ca: Option<CertAndKey>,
    store: Arc<dyn Store>,
    revoked: RwLock<HashMap<String, Revocation>>,
    healthy: AtomicBool,
    migrated: AtomicBool,
    refresh: Duration,
    proxy: String,
}

impl Authority {
    /// An authority signing with `ca` (`None`: this server holds no CA key and
    /// refuses to issue), remembering through `store`.
    pub fn new(ca: Option<CertAndKey>, store: Arc<dyn Store>, refresh: Duration, proxy: &str) -> Authority {
        Authority {
            ca,
            store,
            revoked: RwLock::new(HashMap::new()),
            healthy: AtomicBool::new(false),
            migrated: AtomicBool::new(false),
            refresh,
            proxy: proxy.to_string(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The revocation of `caller`'s certificate, if it is revoked (from memory).
    pub fn revocation(&self, caller: &Caller) -> Option<Revocation> {
        if caller.serial.is_empty() {
            return None;
        }
        self.revoked.read().unwrap_or_else(|p| p.into_inner()).get(&caller.serial).cloned()
    }

    /// Reads the revocation list once.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn refresh_once(&self) -> Result<usize> {
        let list = self.store.revocations().await?;
        let n = list.len();
        *self.revoked.write().unwrap_or_else(|p| p.into_inner()) =
            list.into_iter().map(|r| (r.serial.clone(), r)).collect();
        Ok(n)
    }

    fn set_health(&self, ok: bool, why: Option<&Error>) {
        let was = self.healthy.swap(ok, Ordering::SeqCst);
        if ok && !was {
            info!(store = %self.store.describe(), "state store reachable");
        }
        if let (false, Some(e)) = (ok, why) {
            let cached = self.revoked.read().map(|m| m.len()).unwrap_or(0);
            warn!(
                store = %self.store.describe(), error = %e, revocations = cached,
                "state store unreachable: enrollment and renewal are refused; issued identities keep working against the last revocation list"
            );
        }
    }

    /// One step of the refresher: migrate (once), then read the revocation list.
    async fn step(&self) -> Result<usize> {
        if !self.migrated.load(Ordering::SeqCst) {
            self.store.migrate().await?;
            self.migrated.store(true, Ordering::SeqCst);
        }
        self.refresh_once().await
    }

    /// The first step, before the server accepts connections: migrations, and the
    /// revocation list in memory. Returns whether the store answered.
    pub async fn start(&self) -> bool {
        match self.step().await {
            Ok(n) => {
                self.set_health(true, None);
                info!(revocations = n, "revocation list loaded");
                true
            }
            Err(e) => {
                self.set_health(false, Some(&e));
                false
            }
        }
    }

    /// Re-reads the revocation list every `refresh` until `shutdown` (migrating
    /// first if the store was down at start). Failures are logged once per outage.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut down = !self.healthy.load(Ordering::SeqCst);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.refresh) => {}
            }
            match self.step().await {
                Ok(_) => {
                    down = false;
                    self.set_health(true, None);
                }
                Err(e) => {
                    self.set_health(false, (!down).then_some(&e));
                    down = true;
                }
            }
        }
    }

    fn unavailable(&self, e: &Error) -> Refused {
        self.healthy.store(false, Ordering::SeqCst);
        warn!(error = %e, "state store failed during an auth request");
        refused(
            Refusal::Unavailable,
            format!(
                "proxy {} cannot reach its state store, so it cannot enroll or renew identities right now; try again later or tell the operator ({e})",
                self.proxy
            ),
        )
    }

    fn ca(&self) -> std::result::Result<&CertAndKey, Refused> {
        self.ca.as_ref().ok_or_else(|| {
            refused(
                Refusal::Unavailable,
                format!("proxy {} holds no CA key, so it cannot issue identities", self.proxy),
            )
        })
    }

    /// Signs `csr` for a record and stores it.
    async fn issue(
        &self,
        csr: &str,
        user: &str,
        groups: &[String],
        ttl: Duration,
        renewable_until: i64,
    ) -> std::result::Result<Issued, Refused> {
        let ca = self.ca()?;
        let pem = pki::sign_csr(ca, csr, user, groups, time::OffsetDateTime::now_utc(), ttl)
            .map_err(|e| refused(Refusal::BadRequest, e.to_string()))?;
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
            .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
            .map_err(|e| refused(Refusal::Unavailable, format!("issued certificate does not parse: {e}")))?;
        let c = Caller::from_der(&der).map_err(|e| refused(Refusal::Unavailable, e.to_string()))?;
        let rec = IssuedRecord {
            serial: c.serial.clone(),
            user: user.to_string(),
            groups: groups.to_vec(),
            issued: now(),
            expires: c.not_after,
            renewable_until,
        };
        self.store.record_issued(rec).await.map_err(|e| self.unavailable(&e))?;
        Ok(Issued {
            cert: pem,
            ca: ca.cert_pem.clone(),
            serial: c.serial,
            user: user.to_string(),
            groups: groups.to_vec(),
            not_after: c.not_after,
            renewable_until,
        })
    }

    fn check_csr(csr: &str) -> std::result::Result<(), Refused> {
        if csr.len() > wire::MAX_CSR {
            return Err(refused(
                Refusal::BadRequest,
                format!("the certificate request is {} bytes, more than the {} allowed", csr.len(), wire::MAX_CSR),
            ));
        }
        rcgen::CertificateSigningRequestParams::from_pem(csr).map(drop).map_err(|e| {
            refused(Refusal::BadRequest, format!("the certificate request is not a valid PKCS#10 request: {e}"))
        })
    }

    /// Enrollment: redeems the token whose secret is `secret_hex` and signs `csr`
    /// for the invite's user and groups.
    ///
    /// # Errors
    /// A [`Refused`] with the sentence for the client.
    pub async fn enroll(&self, secret_hex: &str, csr: &str) -> std::result::Result<Issued, Refused> {
        // Check the request before using the token, so a bad CSR does not burn it.
        Self::check_csr(csr)?;
        self.ca()?;
        let hash = wire::secret_hash(secret_hex.trim().as_bytes());
        let stale = "ask the operator for a new invite (`oneport server invite`)";
        let invite = match self.store.redeem(hash, now()).await.map_err(|e| self.unavailable(&e))? {
            Redeem::Redeemed(i) => i,
            Redeem::Unknown => {
                return Err(refused(
                    Refusal::TokenUnknown,
                    format!(
                        "the invite token is not known to proxy {} (mistyped, or made for another cluster): {stale}",
                        self.proxy
                    ),
                ))
            }
            Redeem::Used(at) => {
                return Err(refused(
                    Refusal::TokenUsed,
                    format!("the invite token was already used at {}: invites work once; {stale}", when(at)),
                ))
            }
            Redeem::Expired(at) => {
                return Err(refused(
                    Refusal::TokenExpired,
                    format!("the invite token expired at {}: {stale}", when(at)),
                ))
            }
        };
        let renewable_until = now().saturating_add(invite.renewable_for_secs as i64);
        let issued = self
            .issue(csr, &invite.user, &invite.groups, Duration::from_secs(invite.ttl_secs), renewable_until)
            .await?;
        info!(user = %issued.user, serial = %issued.serial, "identity enrolled by invite");
        Ok(issued)
    }

    /// Renewal for the holder of `caller`'s certificate: same user and groups, the
    /// same lifetime, a fresh key, until the record's `renewable_until`.
    ///
    /// # Errors
    /// A [`Refused`] with the sentence for the client.
    pub async fn renew(&self, caller: Option<&Caller>, csr: &str) -> std::result::Result<Issued, Refused> {
        let Some(caller) = caller else {
            return Err(refused(
                Refusal::CertificateRequired,
                "renewal needs the current identity as the client certificate: `oneport login --renew` while logged in",
            ));
        };
        Self::check_csr(csr)?;
        if let Some(r) = self.revocation(caller) {
            return Err(refused(Refusal::Revoked, r.sentence()));
        }
        let rec = self.store.issued(caller.serial.clone()).await.map_err(|e| self.unavailable(&e))?;
        let Some(rec) = rec else {
            return Err(refused(
                Refusal::NotRenewable,
                format!(
                    "identity {} for {} was not issued by invite, so it cannot be renewed: ask for an invite",
                    caller.serial, caller.user
                ),
            ));
        };
        // The store may know a revocation this instance has not read yet.
        if let Ok(list) = self.store.revocations().await {
            if let Some(r) = list.into_iter().find(|r| r.serial == rec.serial) {
                return Err(refused(Refusal::Revoked, r.sentence()));
            }
        }
        if now() > rec.renewable_until {
            return Err(refused(
                Refusal::NotRenewable,
                format!(
                    "identity for {} could be renewed until {}: get a new invite (`oneport server invite`) and log in with it",
                    rec.user,
                    when(rec.renewable_until)
                ),
            ));
        }
        let ttl = Duration::from_secs((rec.expires - rec.issued).max(1) as u64);
        let issued = self.issue(csr, &rec.user, &rec.groups, ttl, rec.renewable_until).await?;
        info!(user = %issued.user, serial = %issued.serial, previous = %rec.serial, "identity renewed");
        Ok(issued)
    }
}

/// Makes an invite in the store and returns the token to hand to the user.
///
/// # Errors
/// Bad names or durations, or a store that cannot be written.
pub async fn invite(store: &dyn Store, ca_cert_pem: &str, o: &InviteOptions) -> Result<Token> {
    wire::check_name("user", &o.user).map_err(Error::config)?;
    for g in &o.groups {
        wire::check_name("group", g).map_err(Error::config)?;
    }
    for (flag, d) in [("--ttl", o.ttl), ("--expires-in", o.expires_in)] {
        if d < Duration::from_secs(1) {
            return Err(Error::config(format!("{flag} must be at least 1s")));
        }
    }
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(ca_cert_pem.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
        .map_err(|e| Error::config(format!("CA certificate does not parse: {e}")))?;
    let pin = wire::pin_of_cert(&der).map_err(Error::config)?;
    let token = Token::generate(pin);
    let created = now();
    store.migrate().await?;
    store
        .add_invite(Invite {
            hash: token.hash(),
            user: o.user.clone(),
            groups: o.groups.clone(),
            ttl_secs: o.ttl.as_secs(),
            renewable_for_secs: o.renewable_for.as_secs(),
            created,
            expires: created.saturating_add(o.expires_in.as_secs() as i64),
        })
        .await?;
    Ok(token)
}

/// Records a certificate issued outside the auth route (`server issue`), so it can
/// be listed and revoked. Not renewable.
///
/// # Errors
/// When the certificate does not parse or the store cannot be written.
pub async fn record_cert(store: &dyn Store, cert_pem: &str) -> Result<Caller> {
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
        .map_err(|e| Error::config(format!("certificate does not parse: {e}")))?;
    let c = Caller::from_der(&der)?;
    store.migrate().await?;
    let issued = now();
    store
        .record_issued(IssuedRecord {
            serial: c.serial.clone(),
            user: c.user.clone(),
            groups: c.groups.clone(),
            issued,
            expires: c.not_after,
            renewable_until: issued,
        })
        .await?;
    Ok(c)
}

/// Revokes what `sel` names.
///
/// # Errors
/// An empty reason, nothing matching, or a store that cannot be written.
pub async fn revoke(store: &dyn Store, sel: Selector, reason: &str) -> Result<Vec<Revocation>> {
    if reason.chars().any(char::is_control) || reason.len() > 200 {
        return Err(Error::config("--reason must be one line of at most 200 characters"));
    }
    let sel = match sel {
        Selector::Serial(s) => {
            Selector::Serial(s.trim().trim_start_matches("0x").to_ascii_lowercase().replace(':', ""))
        }
        other => other,
    };
    store.migrate().await?;
    store.revoke(sel, reason.to_string(), now()).await
}

/// Opens the store a config names.
///
/// # Errors
/// As [`store::open`].
pub fn open_store(cfg: &crate::server::Config) -> Result<Arc<dyn Store>> {
    store::open(cfg.state.as_deref(), &cfg.state_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::file::FileStore;

    async fn setup() -> (tempfile::TempDir, Authority, CertAndKey) {
        let dir = tempfile::tempdir().unwrap();
        let ca = pki::make_ca("t").unwrap();
        let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().join("state")));
        let a = Authority::new(Some(ca.clone()), store, Duration::from_secs(1), "proxy:1");
        assert!(a.start().await);
        (dir, a, ca)
    }

    fn opts(ttl: u64, expires_in: u64) -> InviteOptions {
        InviteOptions {
            user: "alice".into(),
            groups: vec!["dev".into(), "ops".into()],
            ttl: Duration::from_secs(ttl),
            renewable_for: Duration::from_secs(600),
            expires_in: Duration::from_secs(expires_in),
        }
    }

    fn caller_of(pem: &str) -> Caller {
        let der: rustls::pki_types::CertificateDer<'static> =
            rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
        Caller::from_der(&der).unwrap()
    }

    #[tokio::test]
    async fn enroll_takes_names_from_the_invite_and_works_once() {
        let (_d, a, ca) = setup().await;
        let token = invite(a.store().as_ref(), &ca.cert_pem, &opts(60, 60)).await.unwrap();
        let secret = wire::hex(&token.secret);
        // A malformed or oversized CSR is refused and does not use the token.
        let bad =
            a.enroll(&secret, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n").await;
        assert!(bad.unwrap_err().message.contains("not a valid PKCS#10"));
        let big = "x".repeat(wire::MAX_CSR + 1);
        assert!(a.enroll(&secret, &big).await.unwrap_err().message.contains("more than the 16384"));
        // A CSR naming root in group admin: the certificate names alice in dev, ops.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name.push(rcgen::DnType::CommonName, "root");
        p.distinguished_name.push(rcgen::DnType::OrganizationName, "admin");
        let csr = p.serialize_request(&key).unwrap().pem().unwrap();
        let issued = a.enroll(&secret, &csr).await.unwrap();
        let c = caller_of(&issued.cert);
        assert_eq!((c.user.as_str(), c.groups.clone()), ("alice", vec!["dev".to_string(), "ops".to_string()]));
        assert_eq!(c.serial, issued.serial);
        let again = a.enroll(&secret, &csr).await.unwrap_err();
        assert_eq!(again.code, Refusal::TokenUsed);
        assert!(again.message.contains("already used"), "{}", again.message);
        let unknown = a.enroll(&wire::hex(&[9u8; 16]), &csr).await.unwrap_err();
        assert_eq!(unknown.code, Refusal::TokenUnknown);
        assert!(unknown.message.contains("not known"));
        // Renewal: same names, new serial; then revoked: refused with the sentence.
        let (_, csr2) = pki::make_csr("whatever").unwrap();
        let renewed = a.renew(Some(&c), &csr2).await.unwrap();
        assert_eq!(renewed.user, "alice");
        assert_ne!(renewed.serial, issued.serial);
        assert_eq!(renewed.renewable_until, issued.renewable_until);
        assert_eq!(a.renew(None, &csr2).await.unwrap_err().code, Refusal::CertificateRequired);
        revoke(a.store().as_ref(), Selector::User("alice".into()), "laptop lost").await.unwrap();
        let r = a.renew(Some(&c), &csr2).await.unwrap_err();
        assert_eq!(r.message, format!("identity {} for alice was revoked: laptop lost", c.serial));
        assert!(a.revocation(&c).is_none(), "not read yet");
        a.refresh_once().await.unwrap();
        assert!(a.revocation(&c).is_some());
    }

    #[tokio::test]
    async fn expired_tokens_and_bad_names() {
        let (_d, a, ca) = setup().await;
        let mut o = opts(60, 1);
        o.expires_in = Duration::from_secs(1);
        let token = invite(a.store().as_ref(), &ca.cert_pem, &o).await.unwrap();
        // Waiting past the token's deadline is what is tested here.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let (_, csr) = pki::make_csr("x").unwrap();
        let e = a.enroll(&wire::hex(&token.secret), &csr).await.unwrap_err();
        assert_eq!(e.code, Refusal::TokenExpired);
        assert!(e.message.contains("expired at"));
        for bad in ["", " alice", "al ice", "a\u{1b}b"] {
            let mut o = opts(60, 60);
            o.user = bad.into();
            assert!(invite(a.store().as_ref(), &ca.cert_pem, &o).await.is_err(), "{bad:?}");
        }
        let mut o = opts(60, 60);
        o.groups = vec!["dev ".into()];
        assert!(invite(a.store().as_ref(), &ca.cert_pem, &o).await.is_err());
        // Renewable for 0s: renewal after that second is refused, naming what to do.
        let mut o = opts(60, 60);
        o.renewable_for = Duration::ZERO;
        let token = invite(a.store().as_ref(), &ca.cert_pem, &o).await.unwrap();
        let issued = a.enroll(&wire::hex(&token.secret), &csr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await; // past renewable_until
        let e = a.renew(Some(&caller_of(&issued.cert)), &csr).await.unwrap_err();
        assert_eq!(e.code, Refusal::NotRenewable);
        assert!(e.message.contains("get a new invite"), "{}", e.message);
    }

    #[tokio::test]
    async fn an_unreachable_store_refuses_enrollment_in_words() {
        let ca = pki::make_ca("t").unwrap();
        let store: Arc<dyn Store> = Arc::new(store::postgres::PgStore::new("postgres://u@127.0.0.1:1/db").unwrap());
        let a = Authority::new(Some(ca), store, Duration::from_secs(1), "proxy:1");
        assert!(!a.start().await);
        let (_, csr) = pki::make_csr("x").unwrap();
        let e = a.enroll(&wire::hex(&[1u8; 16]), &csr).await.unwrap_err();
        assert_eq!(e.code, Refusal::Unavailable);
        assert!(e.message.contains("cannot reach its state store"), "{}", e.message);
    }
}
