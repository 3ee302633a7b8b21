//! The file store: one JSON file per record under `<server dir>/state/`, mode 0600.
//! Safe against several writers on one machine without a lock: every file is
//! written to a temporary name and then linked (`link(2)` fails if the name exists,
//! so "first writer wins" is atomic) or renamed into place, so a reader never sees
//! half a record. Using a token is creating `used/<hash>` exclusively.
//!
//! ```text
//! state/schema_version        "1"
//! state/invites/<hash>.json   an Invite (the token's hash, never the token)
//! state/used/<hash>           when it was used (seconds since the epoch)
//! state/issued/<serial>.json  an IssuedRecord
//! state/revoked/<serial>.json a Revocation (the first reason wins)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{unavailable, Invite, IssuedRecord, Redeem, Revocation, Selector, Store};
use crate::error::{Error, Result};

/// The folder under the server directory.
pub const DIR: &str = "state";
/// The schema this build writes.
const VERSION: u32 = 1;

/// Files under one directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// A store rooted at `root` (created by [`Store::migrate`]).
    pub fn new(root: PathBuf) -> FileStore {
        FileStore { root }
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        unavailable(&self.describe(), e)
    }

    fn path(&self, kind: &str, key: &str, ext: &str) -> Result<PathBuf> {
        // Keys are hex (hashes and serials): nothing can climb out of the folder.
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::config(format!("{key:?} is not a hex serial or hash")));
        }
        Ok(self.root.join(kind).join(format!("{}{ext}", key.to_ascii_lowercase())))
    }

    fn read<T: DeserializeOwned>(&self, path: &Path) -> Result<Option<T>> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| self.err(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(format!("{}: {e}", path.display()))),
        }
    }

    fn list<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>> {
        let dir = self.root.join(kind);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(format!("{}: {e}", dir.display()))),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| self.err(e))?.path();
            if path.extension().is_some_and(|x| x == "json") {
                out.extend(self.read(&path)?);
            }
        }
        Ok(out)
    }

    /// Writes `bytes` to a temporary file beside `path`; returns it.
    fn temp(&self, path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
        let dir = path.parent().ok_or_else(|| self.err("no parent folder"))?;
        crate::util::fsutil::create_private_dir(dir).map_err(|e| self.err(e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(|e| self.err(format!("{}: {e}", dir.display())))?;
        tmp.write_all(bytes).and_then(|_| tmp.as_file().sync_all()).map_err(|e| self.err(e))?;
        Ok(tmp)
    }

    /// Puts `value` at `path`, replacing what was there.
    fn put<T: Serialize>(&self, path: &Path, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| self.err(e))?;
        self.temp(path, &bytes)?.persist(path).map_err(|e| self.err(format!("{}: {e}", path.display())))?;
        Ok(())
    }

    /// Puts `bytes` at `path` unless something is there; returns whether it did.
    fn create(&self, path: &Path, bytes: &[u8]) -> Result<bool> {
        let tmp = self.temp(path, bytes)?;
        match std::fs::hard_link(tmp.path(), path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.err(format!("{}: {e}", path.display()))),
        }
    }

    fn migrate_sync(&self) -> Result<()> {
        crate::util::fsutil::create_private_dir(&self.root).map_err(|e| self.err(e))?;
        let path = self.root.join("schema_version");
        match std::fs::read_to_string(&path) {
            Ok(v) => match v.trim().parse::<u32>() {
                Ok(v) if v <= VERSION => Ok(()),
                _ => Err(self.err(format!(
                    "{} says schema {:?}, newer than this oneport ({VERSION}): upgrade oneport",
                    path.display(),
                    v.trim()
                ))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.create(&path, VERSION.to_string().as_bytes()).map(drop)
            }
            Err(e) => Err(self.err(format!("{}: {e}", path.display()))),
        }
    }

    fn redeem_sync(&self, hash: &str, now: i64) -> Result<Redeem> {
        let Some(invite) = self.read::<Invite>(&self.path("invites", hash, ".json")?)? else {
            return Ok(Redeem::Unknown);
        };
        let used = self.path("used", hash, "")?;
        let used_at = || -> Result<i64> {
            let text = std::fs::read_to_string(&used).map_err(|e| self.err(e))?;
            Ok(text.trim().parse().unwrap_or(0))
        };
        if used.exists() {
            return Ok(Redeem::Used(used_at()?));
        }
        if now > invite.expires {
            return Ok(Redeem::Expired(invite.expires));
        }
        if self.create(&used, now.to_string().as_bytes())? {
            Ok(Redeem::Redeemed(invite))
        } else {
            Ok(Redeem::Used(used_at()?))
        }
    }

    fn revoke_sync(&self, sel: Selector, reason: &str, now: i64) -> Result<Vec<Revocation>> {
        let targets: Vec<IssuedRecord> = match &sel {
            Selector::Serial(s) => match self.read::<IssuedRecord>(&self.path("issued", s, ".json")?)? {
                Some(r) => vec![r],
                None => return Err(Error::config(format!("no identity with serial {s} in {}", self.describe()))),
            },
            Selector::User(u) => {
                let all: Vec<IssuedRecord> =
                    self.list::<IssuedRecord>("issued")?.into_iter().filter(|r| &r.user == u).collect();
                if all.is_empty() {
                    return Err(Error::config(format!("no identity was issued to {u:?} (see `server identities ls`)")));
                }
                all
            }
        };
        let mut out = Vec::new();
        for t in targets {
            let path = self.path("revoked", &t.serial, ".json")?;
            let rev =
                Revocation { serial: t.serial.clone(), user: t.user.clone(), reason: reason.to_string(), at: now };
            let bytes = serde_json::to_vec_pretty(&rev).map_err(|e| self.err(e))?;
            self.create(&path, &bytes)?;
            out.extend(self.read::<Revocation>(&path)?);
        }
        Ok(out)
    }
}

impl Store for FileStore {
    fn describe(&self) -> String {
        format!("files in {}", self.root.display())
    }
    fn migrate(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.migrate_sync() })
    }
    fn add_invite(&self, invite: Invite) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let path = self.path("invites", &invite.hash, ".json")?;
            let bytes = serde_json::to_vec_pretty(&invite).map_err(|e| self.err(e))?;
            if self.create(&path, &bytes)? {
                Ok(())
            } else {
                Err(self.err("an invite with this hash exists already"))
            }
        })
    }
    fn redeem(&self, hash: String, now: i64) -> BoxFuture<'_, Result<Redeem>> {
        Box::pin(async move { self.redeem_sync(&hash, now) })
    }
    fn record_issued(&self, rec: IssuedRecord) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.put(&self.path("issued", &rec.serial, ".json")?, &rec) })
    }
    fn issued(&self, serial: String) -> BoxFuture<'_, Result<Option<IssuedRecord>>> {
        Box::pin(async move { self.read(&self.path("issued", &serial, ".json")?) })
    }
    fn list_issued(&self) -> BoxFuture<'_, Result<Vec<IssuedRecord>>> {
        Box::pin(async move {
            let mut all: Vec<IssuedRecord> = self.list("issued")?;
            all.sort_by(|a, b| (a.issued, &a.serial).cmp(&(b.issued, &b.serial)));
            Ok(all)
        })
    }
    fn revoke(&self, sel: Selector, reason: String, now: i64) -> BoxFuture<'_, Result<Vec<Revocation>>> {
        Box::pin(async move { self.revoke_sync(sel, &reason, now) })
    }
    fn revocations(&self) -> BoxFuture<'_, Result<Vec<Revocation>>> {
        Box::pin(async move { self.list("revoked") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conforms() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::new(dir.path().join("state"));
        crate::server::store::tests::conformance(&s).await;
        assert!(s.path("issued", "../x", ".json").is_err());
    }

    #[tokio::test]
    async fn one_winner_among_racing_redeemers() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(FileStore::new(dir.path().join("state")));
        s.migrate().await.unwrap();
        let inv = Invite {
            hash: "ab".into(),
            user: "a".into(),
            groups: vec![],
            ttl_secs: 1,
            renewable_for_secs: 1,
            created: 0,
            expires: 100,
        };
        s.add_invite(inv).await.unwrap();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || s.redeem_sync("ab", 1).unwrap())
            })
            .collect();
        let wins = handles.into_iter().map(|h| h.join().unwrap()).filter(|r| matches!(r, Redeem::Redeemed(_))).count();
        assert_eq!(wins, 1);
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        std::fs::write(dir.path().join("state/schema_version"), "9").unwrap();
        let err = FileStore::new(dir.path().join("state")).migrate().await.unwrap_err().to_string();
        assert!(err.contains("upgrade oneport"), "{err}");
    }
}
