//! The login profiles, one per proxy (like tsh): which proxy, which identity, which
//! CA, cached facts about the proxy (cluster, routing domain, upgrade decision) and
//! the kubeconfig entries `kube login` wrote for it. Stored as YAML under the XDG
//! config directory (`$ONEPORT_HOME` overrides) in `profiles/HOST_PORT.yaml`, the
//! active proxy's name in `active-profile`, identity copies under the data
//! directory, all mode 0600. A single `profile.yaml` of older versions is migrated
//! on first use.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tools::kube::kubeconfig::Written;
use crate::util::addr::HostPort;
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

    /// The folder of per-proxy profiles.
    pub fn profiles_dir(&self) -> PathBuf {
        self.config.join("profiles")
    }

    /// The profile file of `proxy`.
    pub fn profile_path(&self, proxy: &HostPort) -> PathBuf {
        self.profiles_dir().join(format!("{}.yaml", tag(proxy)))
    }

    /// The file naming the active proxy.
    pub fn active_path(&self) -> PathBuf {
        self.config.join("active-profile")
    }

    /// The single profile file of versions before per-proxy profiles.
    pub fn legacy_profile_path(&self) -> PathBuf {
        self.config.join("profile.yaml")
    }

    /// Where `login` keeps its copy of `proxy`'s identity.
    pub fn identity_copy(&self, proxy: &HostPort) -> PathBuf {
        self.data.join(format!("identity-{}.pem", tag(proxy)))
    }

    /// Where `login` keeps its copy of the `--ca` given for `proxy`.
    pub fn ca_copy(&self, proxy: &HostPort) -> PathBuf {
        self.data.join(format!("ca-{}.pem", tag(proxy)))
    }
}

/// `host:port` as a file name part (`127.0.0.1_3080`).
pub fn tag(hp: &HostPort) -> String {
    format!("{hp}").chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
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
    /// The kubeconfig entries `kube login` wrote for this proxy (removed, after
    /// asking, by `logout`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kube_entries: Vec<Written>,
}

impl Profile {
    /// The profile's proxy, parsed.
    ///
    /// # Errors
    /// When the stored proxy does not parse.
    pub fn host_port(&self) -> Result<HostPort> {
        HostPort::parse(&self.proxy).map_err(|e| Error::config(format!("profile proxy {e}")))
    }

    /// The active profile, `None` when not logged in (or no profile is active).
    ///
    /// # Errors
    /// When a file exists but does not parse.
    pub fn load(dirs: &Dirs) -> Result<Option<Profile>> {
        migrate(dirs)?;
        match active_proxy(dirs)? {
            Some(p) => Profile::load_for(dirs, &p),
            None => Ok(None),
        }
    }

    /// The stored profile of `proxy`, `None` when there is none.
    ///
    /// # Errors
    /// When the file exists but does not parse.
    pub fn load_for(dirs: &Dirs, proxy: &HostPort) -> Result<Option<Profile>> {
        migrate(dirs)?;
        read_profile(&dirs.profile_path(proxy))
    }

    /// The profile a command uses: `proxy`'s (from `--proxy`) when given, else the
    /// active one.
    ///
    /// # Errors
    /// When `proxy` does not parse, or a file does not.
    pub fn select(dirs: &Dirs, proxy: Option<&str>) -> Result<Option<Profile>> {
        match proxy {
            Some(text) => {
                let hp = HostPort::parse_with_default(text, 3080).map_err(|e| Error::config(format!("--proxy {e}")))?;
                Profile::load_for(dirs, &hp)
            }
            None => Profile::load(dirs),
        }
    }

    /// Every stored profile, by proxy name; files that do not parse are returned as
    /// their path and error (so `logout --all` can still remove them).
    ///
    /// # Errors
    /// When the folder cannot be read.
    pub fn list(dirs: &Dirs) -> Result<Vec<(PathBuf, Result<Profile>)>> {
        migrate(dirs)?;
        let dir = dirs.profiles_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::file(&dir, e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let path = e.map_err(|e| Error::file(&dir, e))?.path();
            if path.extension().and_then(|x| x.to_str()) != Some("yaml") {
                continue;
            }
            let p = read_profile(&path).and_then(|p| p.ok_or_else(|| Error::config("vanished")));
            out.push((path, p));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Saves the profile in its proxy's file (0600); the active profile is unchanged.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, dirs: &Dirs) -> Result<()> {
        let text = serde_yaml_ng::to_string(self).map_err(|e| Error::config(format!("profile: {e}")))?;
        fsutil::write_private(&dirs.profile_path(&self.host_port()?), text.as_bytes())
    }

    /// Makes this the active profile.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn activate(&self, dirs: &Dirs) -> Result<()> {
        fsutil::write_private(&dirs.active_path(), format!("{}\n", self.host_port()?).as_bytes())
    }

    /// Whether this is the active profile.
    pub fn is_active(&self, dirs: &Dirs) -> bool {
        let ours = self.host_port().ok();
        ours.is_some() && active_proxy(dirs).ok().flatten() == ours
    }

    /// Removes the profile, its identity and CA copies (the kubeconfig entries are
    /// the caller's business), and the active mark when it was active.
    ///
    /// # Errors
    /// When a file cannot be removed.
    pub fn remove(&self, dirs: &Dirs) -> Result<()> {
        let hp = self.host_port()?;
        for copy in [Some(&self.identity), self.ca.as_ref()].into_iter().flatten() {
            // Only oneport's own copies; a file the user named stays.
            if copy.starts_with(&dirs.data) {
                remove_if_exists(copy)?;
            }
        }
        if self.is_active(dirs) {
            remove_if_exists(&dirs.active_path())?;
        }
        remove_if_exists(&dirs.profile_path(&hp))?;
        Ok(())
    }
}

/// The proxy `active-profile` names, `None` when there is none.
///
/// # Errors
/// When the file cannot be read.
pub fn active_proxy(dirs: &Dirs) -> Result<Option<HostPort>> {
    let path = dirs.active_path();
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(HostPort::parse(t.trim()).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::file(path, e)),
    }
}

/// Removes a profile file that does not parse (for `logout`).
///
/// # Errors
/// When it cannot be removed.
pub fn remove_broken(path: &Path) -> Result<bool> {
    remove_if_exists(path)
}

fn read_profile(path: &Path) -> Result<Option<Profile>> {
    match std::fs::read(path) {
        Ok(b) => serde_yaml_ng::from_slice(&b).map(Some).map_err(|e| {
            Error::config(format!("{}: {e} (run `oneport logout --all` and log in again)", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::file(path, e)),
    }
}

/// Moves a `profile.yaml` of older versions into the per-proxy layout, as the active
/// profile unless another one is active. One that does not parse is left for
/// `logout` to remove.
fn migrate(dirs: &Dirs) -> Result<()> {
    let legacy = dirs.legacy_profile_path();
    let Some(p) = read_profile(&legacy)? else { return Ok(()) };
    let hp = p.host_port()?;
    if !dirs.profile_path(&hp).exists() {
        p.save(dirs)?;
    }
    if active_proxy(dirs)?.is_none() {
        p.activate(dirs)?;
    }
    remove_if_exists(&legacy)?;
    Ok(())
}

fn remove_if_exists(p: &Path) -> Result<bool> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::file(p, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(proxy: &str, dirs: &Dirs) -> Profile {
        let hp = HostPort::parse(proxy).unwrap();
        Profile {
            proxy: proxy.into(),
            cluster: "test".into(),
            routing_domain: "teleport.cluster.local".into(),
            identity: dirs.identity_copy(&hp),
            ca: None,
            insecure: false,
            user: "alice".into(),
            groups: vec![],
            expires: 0,
            upgrade: None,
            renewable_until: None,
            kube_entries: vec![],
        }
    }

    #[test]
    fn tags_are_file_names() {
        assert_eq!(tag(&HostPort::parse("127.0.0.1:3080").unwrap()), "127.0.0.1_3080");
        assert_eq!(tag(&HostPort::parse("[::1]:443").unwrap()), "___1__443");
        assert_eq!(tag(&HostPort::parse("proxy.example.com:3080").unwrap()), "proxy.example.com_3080");
    }

    #[test]
    fn one_profile_per_proxy_and_the_old_single_file_is_migrated() {
        let home = tempfile::tempdir().unwrap();
        let dirs = Dirs { config: home.path().into(), data: home.path().into() };
        let a = profile("a.example:3080", &dirs);
        // An older version's profile.yaml becomes a's profile, and the active one.
        std::fs::write(dirs.legacy_profile_path(), serde_yaml_ng::to_string(&a).unwrap()).unwrap();
        assert_eq!(Profile::load(&dirs).unwrap(), Some(a.clone()));
        assert!(!dirs.legacy_profile_path().exists());
        assert!(a.is_active(&dirs));

        let b = profile("b.example:3080", &dirs);
        b.save(&dirs).unwrap();
        std::fs::write(&b.identity, "x").unwrap();
        assert!(a.is_active(&dirs), "saving does not switch");
        assert_eq!(Profile::select(&dirs, Some("b.example")).unwrap(), Some(b.clone()), "default port 3080");
        assert_eq!(Profile::select(&dirs, Some("c.example:1")).unwrap(), None);
        let listed: Vec<String> = Profile::list(&dirs).unwrap().into_iter().map(|(_, p)| p.unwrap().proxy).collect();
        assert_eq!(listed, ["a.example:3080", "b.example:3080"]);

        b.activate(&dirs).unwrap();
        assert_eq!(Profile::load(&dirs).unwrap(), Some(b.clone()));
        b.remove(&dirs).unwrap();
        assert!(!b.identity.exists() && !dirs.profile_path(&b.host_port().unwrap()).exists());
        assert_eq!(Profile::load(&dirs).unwrap(), None, "no profile is active after removing the active one");
        assert_eq!(active_proxy(&dirs).unwrap(), None);
        assert_eq!(Profile::select(&dirs, Some("a.example:3080")).unwrap(), Some(a));

        std::fs::write(dirs.profiles_dir().join("broken.yaml"), "proxy: [").unwrap();
        let broken = Profile::list(&dirs).unwrap().into_iter().find(|(p, _)| p.ends_with("broken.yaml")).unwrap();
        let err = broken.1.unwrap_err().to_string();
        assert!(err.contains("broken.yaml") && err.contains("run `oneport logout --all` and log in again"), "{err}");
    }
}
