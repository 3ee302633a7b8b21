//! The login profile: which proxy, which identity, which CA, and cached facts about
//! the proxy (cluster, routing domain, upgrade decision). Stored as YAML under the
//! XDG config directory (`$ONEPORT_HOME` overrides), identity copies under the data
//! directory, all mode 0600.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::fsutil;

/// Where oneport keeps its files.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// Profiles.
    pub config: PathBuf,
    /// Identity and CA copies.
    pub data: PathBuf,
}

impl Dirs {
    /// `$ONEPORT_HOME` if set (both in one folder), else the XDG directories.
    ///
    /// # Errors
    /// When no home directory can be found.
    pub fn locate() -> Result<Dirs> {
        if let Some(home) = std::env::var_os("ONEPORT_HOME").filter(|h| !h.is_empty()) {
            let home = PathBuf::from(home);
            return Ok(Dirs { config: home.clone(), data: home });
        }
        let pd = directories::ProjectDirs::from("", "", "oneport")
            .ok_or_else(|| Error::config("cannot find a home directory: set ONEPORT_HOME"))?;
        Ok(Dirs { config: pd.config_dir().to_path_buf(), data: pd.data_dir().to_path_buf() })
    }

    /// The profile file.
    pub fn profile_path(&self) -> PathBuf {
        self.config.join("profile.yaml")
    }
}

/// The upgrade decision cached at login (docs/protocol.md §8).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UpgradeCache {
    /// Whether connections must go through the connection upgrade.
    pub required: bool,
    /// Why, in words (`probe: no ALPN negotiated`, …).
    pub reason: String,
}

/// A stored login.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    /// The proxy, `host:port`.
    pub proxy: String,
    /// The cluster name the proxy reported.
    pub cluster: String,
    /// The domain resource SNIs live under.
    pub routing_domain: String,
    /// The stored identity file (0600).
    pub identity: PathBuf,
    /// A CA bundle to trust for the proxy, if not the identity's own CA.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Skip server certificate verification (said loudly on every use).
    #[serde(default)]
    pub insecure: bool,
    /// The user the identity names.
    pub user: String,
    /// The identity's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Identity expiry, seconds since the Unix epoch.
    pub expires: i64,
    /// The cached upgrade decision.
    #[serde(default)]
    pub upgrade: Option<UpgradeCache>,
    /// For identities enrolled by invite: renewals are granted until then (seconds
    /// since the Unix epoch); `None` for identity files from `server issue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewable_until: Option<i64>,
}

impl Profile {
    /// Loads the profile, `None` when not logged in.
    ///
    /// # Errors
    /// When the file exists but does not parse.
    pub fn load(dirs: &Dirs) -> Result<Option<Profile>> {
        let path = dirs.profile_path();
        match std::fs::read(&path) {
            Ok(b) => serde_yaml_ng::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::config(format!("{}: {e} (run `oneport logout` and log in again)", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::file(path, e)),
        }
    }

    /// Saves the profile (0600).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, dirs: &Dirs) -> Result<()> {
        let text = serde_yaml_ng::to_string(self).map_err(|e| Error::config(format!("profile: {e}")))?;
        fsutil::write_private(&dirs.profile_path(), text.as_bytes())
    }

    /// Removes the profile and the stored identity; returns whether there was one.
    ///
    /// # Errors
    /// When a file cannot be removed.
    pub fn remove(dirs: &Dirs) -> Result<bool> {
        let Some(p) = Profile::load(dirs).ok().flatten() else {
            return remove_if_exists(&dirs.profile_path());
        };
        remove_if_exists(&p.identity)?;
        if let Some(ca) = &p.ca {
            if ca.starts_with(&dirs.data) {
                remove_if_exists(ca)?;
            }
        }
        remove_if_exists(&dirs.profile_path())
    }
}

fn remove_if_exists(p: &Path) -> Result<bool> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::file(p, e)),
    }
}
