//! What the server must remember, behind one small interface: invite token hashes
//! and their use (single use, atomic), the certificates issued by invite or by
//! `server issue`, and revocations. Two implementations: [`file::FileStore`] (files
//! in the server directory; the default, safe for several processes on one machine)
//! and [`postgres::PgStore`] (`state: postgres://...`, shared by several servers).
//! Nothing else on the server keeps state another instance would miss.

pub mod file;
pub mod postgres;

use std::path::Path;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An invite, as stored (the token itself never is: only its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// SHA-256 of the token's secret, hex.
    pub hash: String,
    /// The user the certificate will name.
    pub user: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// Validity of each certificate, seconds.
    pub ttl_secs: u64,
    /// How long after enrollment renewals are granted, seconds.
    pub renewable_for_secs: u64,
    /// When it was made, seconds since the Unix epoch.
    pub created: i64,
    /// The token's deadline, seconds since the Unix epoch.
    pub expires: i64,
}

/// A certificate the server issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedRecord {
    /// Serial, lowercase hex.
    pub serial: String,
    /// The user it names.
    pub user: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// Issued at, seconds since the Unix epoch.
    pub issued: i64,
    /// Expires at.
    pub expires: i64,
    /// Renewals are refused after this (equal to `issued` when not renewable).
    pub renewable_until: i64,
}

/// A revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Serial, lowercase hex.
    pub serial: String,
    /// The user it named.
    pub user: String,
    /// Why, as the operator said it.
    pub reason: String,
    /// When, seconds since the Unix epoch.
    pub at: i64,
}

impl Revocation {
    /// The sentence callers of a revoked identity see.
    pub fn sentence(&self) -> String {
        format!("identity {} for {} was revoked: {}", self.serial, self.user, self.reason)
    }
}

/// What redeeming a token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeem {
    /// The invite, now used.
    Redeemed(Invite),
    /// No such token.
    Unknown,
    /// Used before, at this time.
    Used(i64),
    /// Past its deadline.
    Expired(i64),
}

/// Which certificates a revocation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Every certificate issued to this user.
    User(String),
    /// One serial (lowercase hex).
    Serial(String),
}

/// The store interface. Every method is one atomic step.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where the state lives, for messages (no password).
    fn describe(&self) -> String;
    /// Creates the schema if needed; checks its version.
    fn migrate(&self) -> BoxFuture<'_, Result<()>>;
    /// Records a new invite.
    fn add_invite(&self, invite: Invite) -> BoxFuture<'_, Result<()>>;
    /// Marks the invite with `hash` used, if it exists, is unused and not expired at
    /// `now`; exactly one caller ever gets [`Redeem::Redeemed`] for a hash.
    fn redeem(&self, hash: String, now: i64) -> BoxFuture<'_, Result<Redeem>>;
    /// Records an issued certificate.
    fn record_issued(&self, rec: IssuedRecord) -> BoxFuture<'_, Result<()>>;
    /// The record of `serial`.
    fn issued(&self, serial: String) -> BoxFuture<'_, Result<Option<IssuedRecord>>>;
    /// Every issued certificate, oldest first.
    fn list_issued(&self) -> BoxFuture<'_, Result<Vec<IssuedRecord>>>;
    /// Revokes what `sel` names (already revoked ones keep their first reason);
    /// returns the revocations now in force for it.
    fn revoke(&self, sel: Selector, reason: String, now: i64) -> BoxFuture<'_, Result<Vec<Revocation>>>;
    /// Every revocation.
    fn revocations(&self) -> BoxFuture<'_, Result<Vec<Revocation>>>;
}

/// Opens the store named by a config's `state:` (`None`: files in `dir/state`).
///
/// # Errors
/// When `state` is neither empty nor a `postgres://` URL.
pub fn open(state: Option<&str>, dir: &Path) -> Result<Arc<dyn Store>> {
    match state.map(str::trim).filter(|s| !s.is_empty()) {
        None | Some("file") => Ok(Arc::new(file::FileStore::new(dir.join(file::DIR)))),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(postgres::PgStore::new(url)?))
        }
        Some(path) if path.starts_with("file:") => {
            let p = Path::new(path.trim_start_matches("file:"));
            Ok(Arc::new(file::FileStore::new(if p.is_absolute() { p.to_path_buf() } else { dir.join(p) })))
        }
        Some(other) => Err(Error::config(format!(
            "state: {other:?} is not understood: leave it out (files in the server directory), or give postgres://USER@HOST/DB or file:DIR"
        ))),
    }
}

/// The error of a store that cannot do its work.
pub(crate) fn unavailable(store: &str, why: impl std::fmt::Display) -> Error {
    Error::config(format!("the state store ({store}) is unavailable: {why}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn invite(hash: &str, expires: i64) -> Invite {
        Invite {
            hash: hash.into(),
            user: "alice".into(),
            groups: vec!["dev".into()],
            ttl_secs: 60,
            renewable_for_secs: 600,
            created: 0,
            expires,
        }
    }

    /// The behaviour every store must have.
    pub(crate) async fn conformance(s: &dyn Store) {
        s.migrate().await.unwrap();
        s.migrate().await.unwrap(); // idempotent
        s.add_invite(invite("a1", 100)).await.unwrap();
        s.add_invite(invite("a2", 10)).await.unwrap();
        assert_eq!(s.redeem("0e".into(), 50).await.unwrap(), Redeem::Unknown);
        assert_eq!(s.redeem("a2".into(), 50).await.unwrap(), Redeem::Expired(10));
        assert!(matches!(s.redeem("a1".into(), 50).await.unwrap(), Redeem::Redeemed(i) if i.user == "alice"));
        assert_eq!(s.redeem("a1".into(), 60).await.unwrap(), Redeem::Used(50));
        let rec = |serial: &str, user: &str| IssuedRecord {
            serial: serial.into(),
            user: user.into(),
            groups: vec!["dev".into()],
            issued: 1,
            expires: 2,
            renewable_until: 3,
        };
        s.record_issued(rec("aa", "alice")).await.unwrap();
        s.record_issued(rec("bb", "alice")).await.unwrap();
        s.record_issued(rec("cc", "bob")).await.unwrap();
        assert_eq!(s.issued("bb".into()).await.unwrap(), Some(rec("bb", "alice")));
        assert_eq!(s.issued("ff".into()).await.unwrap(), None);
        assert_eq!(s.list_issued().await.unwrap().len(), 3);
        let r = s.revoke(Selector::Serial("cc".into()), "left".into(), 5).await.unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].sentence(), "identity cc for bob was revoked: left");
        let r = s.revoke(Selector::User("alice".into()), "laptop lost".into(), 6).await.unwrap();
        assert_eq!(r.len(), 2);
        let again = s.revoke(Selector::Serial("aa".into()), "other".into(), 7).await.unwrap();
        assert_eq!(again[0].reason, "laptop lost");
        assert!(s.revoke(Selector::Serial("ff".into()), "x".into(), 7).await.is_err());
        assert!(s.revoke(Selector::User("nobody".into()), "x".into(), 7).await.is_err());
        let mut all: Vec<String> = s.revocations().await.unwrap().into_iter().map(|r| r.serial).collect();
        all.sort();
        assert_eq!(all, vec!["aa", "bb", "cc"]);
    }
}
