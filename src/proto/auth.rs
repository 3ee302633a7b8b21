//! The auth route's vocabulary, shared by `oneport login --token/--renew` and the
//! server (wire.md §10): the ALPN name, the invite token format with its CA pin, and
//! the one-request, one-answer exchange (length-prefixed JSON, docs/protocol.md).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest CSR the server reads, PEM.
pub const MAX_CSR: usize = 16 * 1024;
/// The largest request frame (a CSR, a token and JSON around them).
pub const MAX_REQUEST: usize = MAX_CSR + 4096;
/// The largest answer frame a client reads (a certificate and the CA, PEM).
pub const MAX_RESPONSE: usize = 64 * 1024;
/// What every invite token starts with (the format's version).
pub const TOKEN_PREFIX: &str = "op1";

/// The auth route's ALPN for `cluster`: `teleport-auth@<hex(cluster)>.teleport.cluster.local`.
pub fn alpn(cluster: &str) -> String {
    format!("teleport-auth@{}.{}", hex(cluster.as_bytes()), crate::proto::naming::INTERNAL_DOMAIN)
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The pin of a CA: SHA-256 of its DER SubjectPublicKeyInfo (kubeadm's discovery hash).
///
/// # Errors
/// When `cert_der` is not a certificate.
pub fn pin_of_cert(cert_der: &[u8]) -> Result<[u8; 32], String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| format!("certificate does not parse: {e}"))?;
    Ok(Sha256::digest(cert.public_key().raw).into())
}

/// The SHA-256 of an invite secret, as the store keeps it (hex).
pub fn secret_hash(secret: &[u8]) -> String {
    hex(&Sha256::digest(secret))
}

/// An invite token: the CA pin and the one-time secret. Printed as
/// `op1.<64 hex: pin>.<32 hex: secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// SHA-256 of the cluster CA's SubjectPublicKeyInfo.
    pub pin: [u8; 32],
    /// 16 random bytes; the server keeps only their hash.
    pub secret: [u8; 16],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("pin", &hex(&self.pin)).field("secret", &"***").finish()
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{TOKEN_PREFIX}.{}.{}", hex(&self.pin), hex(&self.secret))
    }
}

impl Token {
    /// Parses a token as printed by `oneport server invite`.
    ///
    /// # Errors
    /// A sentence saying what is wrong with it.
    pub fn parse(text: &str) -> Result<Token, String> {
        let bad =
            |why: &str| format!("the invite token is malformed ({why}); copy it again from `oneport server invite`");
        let mut parts = text.trim().split('.');
        match parts.next() {
            Some(TOKEN_PREFIX) => {}
            _ => return Err(bad(&format!("it must start with {TOKEN_PREFIX}."))),
        }
        let pin = parts.next().and_then(unhex).ok_or_else(|| bad("the CA pin is not 64 hex digits"))?;
        let secret = parts.next().and_then(unhex).ok_or_else(|| bad("the secret is not 32 hex digits"))?;
        if parts.next().is_some() {
            return Err(bad("too many parts"));
        }
        Ok(Token {
            pin: pin.try_into().map_err(|_| bad("the CA pin is not 64 hex digits"))?,
            secret: secret.try_into().map_err(|_| bad("the secret is not 32 hex digits"))?,
        })
    }

    /// A fresh token for a CA with pin `pin`.
    pub fn generate(pin: [u8; 32]) -> Token {
        Token { pin, secret: rand::random() }
    }

    /// The hash the store keeps.
    pub fn hash(&self) -> String {
        secret_hash(hex(&self.secret).as_bytes())
    }
}

/// Names of users and groups in invites: 1 to 64 characters, no whitespace or
/// control characters anywhere (so nothing is padded or invisible).
///
/// # Errors
/// A sentence naming the field and the problem.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the {what} name is empty"));
    }
    if name.chars().count() > 64 {
        return Err(format!("the {what} name {name:?} is longer than 64 characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("the {what} name {name:?} contains whitespace or control characters"));
    }
    Ok(())
}

/// A request on the auth route.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Enrollment: no client certificate; the invite's secret (hex) and a CSR.
    Enroll {
        /// The token's secret, hex.
        secret: String,
        /// A PKCS#10 request, PEM, for a key the client generated.
        csr: String,
    },
    /// Renewal: the current certificate is the TLS client certificate.
    Renew {
        /// A PKCS#10 request, PEM, for a fresh key.
        csr: String,
    },
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Enroll { .. } => f.write_str("Enroll { secret: ***, .. }"),
            Request::Renew { .. } => f.write_str("Renew { .. }"),
        }
    }
}

/// Why the server refused, for programs; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The token is not known.
    TokenUnknown,
    /// The token was used before.
    TokenUsed,
    /// The token's deadline passed.
    TokenExpired,
    /// The CSR is malformed or too large.
    BadRequest,
    /// The identity presented was revoked.
    Revoked,
    /// Renewal past `renewable_until`, or of an identity not issued by invite.
    NotRenewable,
    /// Renewal without a client certificate.
    CertificateRequired,
    /// The state store cannot be reached, or the server cannot sign.
    Unavailable,
}

/// A certificate the server issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// The client certificate, PEM.
    pub cert: String,
    /// The cluster CA, PEM.
    pub ca: String,
    /// The serial, lowercase hex.
    pub serial: String,
    /// The user it names.
    pub user: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// Renewals are refused after this, seconds since the Unix epoch.
    pub renewable_until: i64,
}

/// The answer on the auth route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// A certificate.
    Issued(Issued),
    /// A refusal with its sentence.
    Refused {
        /// Why, for programs.
        code: Refusal,
        /// Why, in words.
        message: String,
    },
}

/// Encodes one frame: a big-endian u32 length, then the JSON.
///
/// # Errors
/// Only if serialization fails (it does not for these types).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, String> {
    let body = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend(body);
    Ok(out)
}

/// Writes one frame and flushes.
///
/// # Errors
/// I/O errors.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> std::io::Result<()> {
    let bytes = encode(msg).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    w.write_all(&bytes).await?;
    w.flush().await
}

/// Reads one frame of at most `max` bytes of JSON. The length is checked before
/// anything is allocated, so a peer cannot make us hold more than `max`.
///
/// # Errors
/// `InvalidData` for an oversized frame or JSON that is not a `T`; I/O errors.
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
    max: usize,
) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    if len > max {
        return Err(invalid(format!("the message is {len} bytes, more than the {max} allowed")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(|e| invalid(format!("the message is not understood: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_is_hex_of_the_cluster() {
        assert_eq!(alpn("ab"), "teleport-auth@6162.teleport.cluster.local");
    }

    #[test]
    fn token_round_trip_and_errors() {
        let t = Token::generate([7u8; 32]);
        let text = t.to_string();
        assert!(text.starts_with("op1.0707"));
        assert_eq!(text.len(), 3 + 1 + 64 + 1 + 32);
        assert_eq!(Token::parse(&text).unwrap(), t);
        assert_eq!(Token::parse(&format!("  {text}\n")).unwrap(), t);
        assert!(!format!("{t:?}").contains(&hex(&t.secret)));
        let err = |s: &str| Token::parse(s).unwrap_err();
        assert!(err("op2.aa.bb").contains("must start with op1."));
        assert!(err("op1.zz.00").contains("CA pin"));
        assert!(err(&format!("op1.{}.00", "a".repeat(62))).contains("CA pin"));
        assert!(err(&format!("op1.{}.0g", "a".repeat(64))).contains("secret"));
        assert!(err(&format!("op1.{}.{}", "a".repeat(64), "b".repeat(30))).contains("secret"));
        assert!(err(&format!("op1.{}.{}.x", "a".repeat(64), "b".repeat(32))).contains("too many"));
        assert!(err(&format!("op1.{}.{}", "A".repeat(64), "b".repeat(32))).contains("CA pin"));
        assert!(err("").contains("must start"));
    }

    #[test]
    fn pin_is_the_spki_hash() {
        let ca = crate::identity::pki::make_ca("t").unwrap();
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(ca.cert_pem.as_bytes())
            .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
            .unwrap();
        let key = rcgen::KeyPair::from_pem(&ca.key_pem).unwrap();
        let want: [u8; 32] = Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key)).into();
        assert_eq!(pin_of_cert(&der).unwrap(), want);
        let other = crate::identity::pki::make_ca("t").unwrap();
        let other = rustls::pki_types::pem::PemObject::from_pem_slice(other.cert_pem.as_bytes())
            .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
            .unwrap();
        assert_ne!(pin_of_cert(&other).unwrap(), want);
        assert!(pin_of_cert(b"junk").is_err());
    }

    #[test]
    fn names() {
        assert!(check_name("user", "alice").is_ok());
        assert!(check_name("user", "").unwrap_err().contains("empty"));
        assert!(check_name("user", " alice").unwrap_err().contains("whitespace"));
        assert!(check_name("group", "a\u{7}b").unwrap_err().contains("control"));
        assert!(check_name("user", &"x".repeat(65)).unwrap_err().contains("64"));
    }

    #[tokio::test]
    async fn frames_are_bounded() {
        let req = Request::Renew { csr: "x".into() };
        let bytes = encode(&req).unwrap();
        let got: Request = read_frame(&mut &bytes[..], MAX_REQUEST).await.unwrap();
        assert_eq!(got, req);
        let huge = (u32::MAX).to_be_bytes();
        let err = read_frame::<_, Request>(&mut &huge[..], MAX_REQUEST).await.unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        let junk = [&3u32.to_be_bytes()[..], b"{x}"].concat();
        assert!(read_frame::<_, Request>(&mut &junk[..], MAX_REQUEST).await.is_err());
        assert!(format!("{:?}", Request::Enroll { secret: "s3cr3t".into(), csr: String::new() }).contains("***"));
    }
}
