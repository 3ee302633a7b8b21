//! Identities: the client's identity file (certificate, key, CA in one PEM), and the
//! caller identity the server reads from a verified client certificate
//! (CN = user, O = groups).

pub mod pki;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// Who a certificate says the caller is.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Caller {
    /// The user (certificate CN).
    pub user: String,
    /// The groups (certificate O entries).
    pub groups: Vec<String>,
    /// The end of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// The start of validity, seconds since the Unix epoch.
    #[serde(default)]
    pub not_before: i64,
    /// The certificate's serial, lowercase hex without leading zeros.
    #[serde(default)]
    pub serial: String,
}

impl Caller {
    /// Reads user, groups and expiry from a DER certificate.
    ///
    /// # Errors
    /// When the certificate does not parse, has no CN, or names a user or group that
    /// [`check_name`] refuses (blank, padded, control characters).
    pub fn from_der(der: &[u8]) -> Result<Caller> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Error::config(format!("certificate does not parse: {e}")))?;
        let subject = cert.subject();
        let user = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or_else(|| Error::config("certificate has no common name (the user)"))?
            .to_string();
        check_name("user", &user).map_err(|e| Error::config(format!("the certificate's {e}")))?;
        let mut groups = Vec::new();
        for o in subject.iter_organization() {
            let g = o.as_str().map_err(|_| Error::config("the certificate has a group (O) that is not a string"))?;
            check_name("group", g).map_err(|e| Error::config(format!("the certificate's {e}")))?;
            groups.push(g.to_string());
        }
        let serial = cert.raw_serial().iter().skip_while(|b| **b == 0).map(|b| format!("{b:02x}")).collect();
        Ok(Caller {
            user,
            groups,
            not_after: cert.validity().not_after.timestamp(),
            not_before: cert.validity().not_before.timestamp(),
            serial,
        })
    }

    /// Whether the certificate has expired at `now`.
    pub fn expired_at(&self, now: SystemTime) -> bool {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64;
        now > self.not_after
    }

    /// The one sentence every command says for an identity that has expired by
    /// `now` (seconds since the epoch): when, how long ago, and what to do.
    pub fn expired_sentence(&self, now: i64) -> String {
        let ago = Duration::from_secs(now.saturating_sub(self.not_after).max(0) as u64);
        // The clock time alone reads best within the day; older ones need the date.
        let at = if ago < Duration::from_secs(86400) {
            crate::util::utc::format(self.not_after, "-", " ", ":").map(|t| t[11..].to_string())
        } else {
            crate::util::utc::format(self.not_after, "-", " ", ":")
        }
        .unwrap_or_else(|| self.not_after.to_string());
        format!(
            "the identity for {} expired at {at} UTC ({} ago): get a new one and run `oneport login`",
            self.user,
            crate::util::duration::words(ago)
        )
    }

    /// [`Caller::expired_sentence`] when the certificate has expired now, else `None`.
    /// The client (before it dials) and the server (on every stream and request)
    /// both say this, so a connection made in the second of expiry reads the same
    /// whichever side noticed first.
    pub fn expired_now(&self) -> Option<String> {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64;
        self.expired_at(now).then(|| self.expired_sentence(secs))
    }

    /// Refuses an identity that has expired, before anything is dialled with it.
    ///
    /// # Errors
    /// [`Error::Config`] with [`Caller::expired_sentence`] when it has expired.
    pub fn check_current(&self) -> Result<()> {
        match self.expired_now() {
            Some(sentence) => Err(Error::config(sentence)),
            None => Ok(()),
        }
    }

    /// The time left until expiry (zero when expired).
    pub fn remaining(&self) -> Duration {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64;
        Duration::from_secs((self.not_after - now).max(0) as u64)
    }
}

/// Checks a user or group name (`what` is "user" or "group"): refuses an empty or
/// whitespace-only name, leading or trailing whitespace, and control characters.
/// Allow-lists compare names exactly while Kubernetes trims header values, so
/// `"bob "` and `"bob"` would be two names here and one there; an empty
/// `Impersonate-User` would mean no impersonation at all.
///
/// # Errors
/// A sentence naming the fault, e.g. `user name " " is blank`.
pub fn check_name(what: &str, name: &str) -> std::result::Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("{what} name {name:?} is blank"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{what} name {name:?} contains a control character"));
    }
    if name.trim() != name {
        return Err(format!("{what} name {name:?} has leading or trailing whitespace"));
    }
    Ok(())
}

/// A loaded identity: what a client presents, and the CA it trusts.
pub struct Identity {
    /// The client certificate (first) and any intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
    /// The CA certificates found in the file (trusted for the server).
    pub ca: Vec<CertificateDer<'static>>,
    /// Who the certificate names.
    pub caller: Caller,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("caller", &self.caller).field("key", &"***").finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            ca: self.ca.clone(),
            caller: self.caller.clone(),
        }
    }
}

impl Identity {
    /// Loads an identity file (see the module docs).
    ///
    /// # Errors
    /// When the file cannot be read or lacks a certificate or key.
    pub fn load(path: &Path) -> Result<Identity> {
        let pem = crate::util::fsutil::read(path)?;
        Identity::from_pem(&pem).map_err(|e| Error::config(format!("identity file {}: {e}", path.display())))
    }

    /// Parses an identity from PEM bytes: the first certificate is the client's; a
    /// self-signed certificate later in the file is a CA.
    ///
    /// # Errors
    /// When there is no certificate or no private key.
    pub fn from_pem(pem: &[u8]) -> Result<Identity> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::config(format!("bad PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| Error::config(format!("no private key: {e}")))?;
        let mut certs = certs.into_iter();
        let leaf = certs.next().ok_or_else(|| Error::config("no certificate"))?;
        let (mut chain, mut ca) = (vec![leaf], Vec::new());
        for c in certs {
            if is_self_signed(&c) {
                ca.push(c);
            } else {
                chain.push(c);
            }
        }
        let caller = Caller::from_der(&chain[0])?;
        Ok(Identity { chain, key, ca, caller })
    }
}

fn is_self_signed(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der).map(|(_, c)| c.subject() == c.issuer()).unwrap_or(false)
}

/// Loads every certificate in a PEM file (a CA bundle).
///
/// # Errors
/// When the file cannot be read or holds no certificate.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = crate::util::fsutil::read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::config(format!("{}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::config(format!("{}: no certificate found", path.display())));
    }
    Ok(certs)
}

/// Loads a private key from a PEM file.
///
/// # Errors
/// When the file cannot be read or holds no key.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = crate::util::fsutil::read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| Error::config(format!("{}: no private key: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::pki;

    #[test]
    fn identity_round_trip() {
        let ca = pki::make_ca("test").unwrap();
        let client = pki::make_client_cert(
            &ca,
            "alice",
            &["dev".into(), "ops".into()],
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(3600),
        )
        .unwrap();
        let id = Identity::from_pem(pki::identity_pem(&client, &ca.cert_pem).as_bytes()).unwrap();
        assert_eq!(id.caller.user, "alice");
        assert_eq!(id.caller.groups, vec!["dev", "ops"]);
        assert_eq!(id.chain.len(), 1);
        assert_eq!(id.ca.len(), 1);
        assert!(!id.caller.expired_at(SystemTime::now()));
        assert!(id.caller.remaining() > Duration::from_secs(3000));
        assert!(format!("{id:?}").contains("***"));
    }

    #[test]
    fn the_expired_sentence_says_when_and_what_to_do() {
        // 2026-12-01 20:15:23 UTC
        let c = Caller { user: "carol".into(), not_after: 1_796_156_123, ..Caller::default() };
        assert_eq!(
            c.expired_sentence(c.not_after + 12 * 60 + 5),
            "the identity for carol expired at 20:15:23 UTC (12 minutes ago): get a new one and run `oneport login`"
        );
        assert_eq!(
            c.expired_sentence(c.not_after + 3 * 3600),
            "the identity for carol expired at 20:15:23 UTC (3 hours ago): get a new one and run `oneport login`"
        );
        assert_eq!(
            c.expired_sentence(c.not_after + 2 * 86400 + 60),
            "the identity for carol expired at 2026-12-01 20:15:23 UTC (2 days ago): get a new one and run `oneport login`"
        );
        assert!(c.check_current().unwrap_err().to_string().starts_with("the identity for carol expired at "));
        let fresh = Caller { not_after: i64::MAX / 2, ..c };
        assert!(fresh.check_current().is_ok());
    }

    #[test]
    fn names_must_be_clean() {
        assert_eq!(check_name("user", "alice"), Ok(()));
        assert_eq!(check_name("group", "system:masters"), Ok(()));
        assert_eq!(check_name("user", "bob smith"), Ok(()), "inner spaces are fine");
        assert_eq!(check_name("user", "").unwrap_err(), r#"user name "" is blank"#);
        assert_eq!(check_name("user", " ").unwrap_err(), r#"user name " " is blank"#);
        assert_eq!(check_name("user", "\t\u{a0}").unwrap_err(), r#"user name "\t\u{a0}" is blank"#);
        assert_eq!(check_name("user", "bob ").unwrap_err(), r#"user name "bob " has leading or trailing whitespace"#);
        assert_eq!(
            check_name("group", " system:masters").unwrap_err(),
            r#"group name " system:masters" has leading or trailing whitespace"#
        );
        assert_eq!(check_name("group", "a\nb").unwrap_err(), r#"group name "a\nb" contains a control character"#);
        assert_eq!(check_name("user", "a\u{7f}").unwrap_err(), r#"user name "a\u{7f}" contains a control character"#);
    }

    /// A certificate made outside `server issue` (by another CA tool) with a padded
    /// or blank name is refused when read, so no handshake accepts it.
    #[test]
    fn certificates_with_padded_names_are_refused() {
        let ca = pki::make_ca("test").unwrap();
        for (user, groups, want) in [
            (" ", vec![], r#"the certificate's user name " " is blank"#),
            ("bob ", vec![], r#"the certificate's user name "bob " has leading or trailing whitespace"#),
            (
                "bob",
                vec!["system:masters ".to_string()],
                r#"the certificate's group name "system:masters " has leading or trailing whitespace"#,
            ),
        ] {
            let c = pki::make_client_cert_unchecked(
                &ca,
                user,
                &groups,
                time::OffsetDateTime::now_utc(),
                Duration::from_secs(60),
            )
            .unwrap();
            let der = CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap();
            assert_eq!(Caller::from_der(&der).unwrap_err().to_string(), want);
            let refused =
                pki::make_client_cert(&ca, user, &groups, time::OffsetDateTime::now_utc(), Duration::from_secs(60));
            assert!(refused.unwrap_err().to_string().contains(want.trim_start_matches("the certificate's ")));
        }
    }

    #[test]
    fn rejects_incomplete_files() {
        let ca = pki::make_ca("test").unwrap();
        let err = Identity::from_pem(ca.cert_pem.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("no private key"), "{err}");
        let err = Identity::from_pem(ca.key_pem.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("no certificate"), "{err}");
        assert!(Identity::from_pem(b"garbage").is_err());
    }
}
