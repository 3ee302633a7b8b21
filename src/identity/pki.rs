//! Certificate making with rcgen: the cluster CA, the server certificate (valid for
//! every name the server routes), and client identities (CN = user, O = groups).

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use rcgen::SigningKey;

use crate::error::{Error, Result};

/// Clock skew tolerated on `not_before` (certificates start this long before they
/// are issued).
pub const BACKDATE: Duration = Duration::from_secs(300);
/// How long a CA made by `server init` is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86400);
/// How long a server certificate made by `server init` is valid.
pub const SERVER_VALIDITY: Duration = Duration::from_secs(397 * 86400);

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertAndKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey").field("key_pem", &"***").finish_non_exhaustive()
    }
}

fn rc(e: rcgen::Error) -> Error {
    Error::config(format!("certificate generation failed: {e}"))
}

fn validity(params: &mut CertificateParams, not_before: OffsetDateTime, valid_for: Duration) -> Result<()> {
    let too_long = || Error::config(format!("validity of {} is too long", crate::util::duration::format(valid_for)));
    let valid_for = time::Duration::try_from(valid_for).map_err(|_| too_long())?;
    params.not_before =
        not_before.checked_sub(time::Duration::try_from(BACKDATE).map_err(|_| too_long())?).ok_or_else(too_long)?;
    params.not_after = not_before.checked_add(valid_for).filter(|t| t.year() <= 9999).ok_or_else(too_long)?;
    Ok(())
}

/// Makes a self-signed CA for `cluster`.
///
/// # Errors
/// When rcgen fails (it does not for these parameters).
pub fn make_ca(cluster: &str) -> Result<CertAndKey> {
    let key = KeyPair::generate().map_err(rc)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("oneport CA for {cluster}"));
    dn.push(DnType::OrganizationName, "oneport");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut params, OffsetDateTime::now_utc(), CA_VALIDITY)?;
    let cert = params.self_signed(&key).map_err(rc)?;
    Ok(CertAndKey { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

fn issuer(ca: &CertAndKey) -> Result<Issuer<'static, KeyPair>> {
    let key = KeyPair::from_pem(&ca.key_pem).map_err(|e| Error::config(format!("CA key does not parse: {e}")))?;
    Issuer::from_ca_cert_pem(&ca.cert_pem, key)
        .map_err(|e| Error::config(format!("CA certificate does not parse: {e}")))
}

/// Makes a server certificate signed by `ca` for the DNS names and IPs given.
///
/// # Errors
/// When the CA does not parse or a name is not a valid DNS name.
pub fn make_server_cert(
    ca: &CertAndKey,
    dns_names: &[String],
    ips: &[IpAddr],
    valid_for: Duration,
) -> Result<CertAndKey> {
    let key = KeyPair::generate().map_err(rc)?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, dns_names.first().cloned().unwrap_or_else(|| "oneport".into()));
    for name in dns_names {
        let san = name.clone().try_into().map_err(|e| Error::config(format!("{name:?} is not a DNS name: {e}")))?;
        params.subject_alt_names.push(SanType::DnsName(san));
    }
    params.subject_alt_names.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, OffsetDateTime::now_utc(), valid_for)?;
    let cert = params.signed_by(&key, &issuer(ca)?).map_err(rc)?;
    Ok(CertAndKey { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Makes a client certificate for `user` in `groups`, valid from `not_before` for
/// `valid_for` (tests pass a past `not_before` to make an expired one).
///
/// # Errors
/// When a name is refused by [`crate::identity::check_name`] or longer than 64
/// characters, or the CA does not parse.
pub fn make_client_cert(
    ca: &CertAndKey,
    user: &str,
    groups: &[String],
    not_before: OffsetDateTime,
    valid_for: Duration,
) -> Result<CertAndKey> {
    check_names(user, groups)?;
    make_client_cert_unchecked(ca, user, groups, not_before, valid_for)
}

/// As [`make_client_cert`] without checking the names: what another CA tool could
/// issue. Only for tests that prove the server refuses such certificates.
///
/// # Errors
/// When the CA does not parse or a name cannot be encoded.
#[doc(hidden)]
pub fn make_client_cert_unchecked(
    ca: &CertAndKey,
    user: &str,
    groups: &[String],
    not_before: OffsetDateTime,
    valid_for: Duration,
) -> Result<CertAndKey> {
    let key = KeyPair::generate().map_err(rc)?;
    let params = client_params(user, not_before, valid_for)?;
    let issuer = issuer(ca)?;
    let cert = params.signed_by(&key, &issuer).map_err(rc)?;
    let pem = with_groups(cert.der(), user, groups, &issuer)?;
    Ok(CertAndKey { cert_pem: pem, key_pem: key.serialize_pem() })
}

/// Names a certificate may carry: see [`crate::identity::check_name`], and at most
/// 64 characters.
fn check_names(user: &str, groups: &[String]) -> Result<()> {
    crate::identity::check_name("user", user).map_err(Error::Config)?;
    for g in groups {
        crate::identity::check_name("group", g).map_err(Error::Config)?;
    }
    if user.len() > 64 || groups.iter().any(|g| g.len() > 64) {
        return Err(Error::config("user and group names must be 1 to 64 characters"));
    }
    Ok(())
}

/// The parameters of a client certificate for `user`, with a fresh random serial.
fn client_params(user: &str, not_before: OffsetDateTime, valid_for: Duration) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, user);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    // 16 random bytes, top bit clear (a positive INTEGER) and first byte non-zero
    // (so the DER keeps all 16 and the hex form is stable).
    let mut serial: [u8; 16] = rand::random();
    serial[0] = (serial[0] & 0x7f) | 0x10;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    validity(&mut params, not_before, valid_for)?;
    Ok(params)
}

/// rcgen keeps one value per attribute type, so one O at most; the Kubernetes
/// convention is one O per group. Re-encode the subject and sign again; returns PEM.
fn with_groups(cert_der: &[u8], user: &str, groups: &[String], issuer: &Issuer<'static, KeyPair>) -> Result<String> {
    let der = if groups.is_empty() {
        cert_der.to_vec()
    } else {
        let old = der::name(&[(der::OID_CN, user)]);
        let mut attrs = vec![(der::OID_CN, user)];
        attrs.extend(groups.iter().map(|g| (der::OID_O, g.as_str())));
        der::replace_subject(cert_der, &old, &der::name(&attrs), |tbs| issuer.key().sign(tbs))
            .map_err(|e| Error::config(format!("certificate encoding: {e}")))?
    };
    Ok(pem_encode("CERTIFICATE", &der))
}

/// Signs the public key of a PKCS#10 request (PEM) as a client certificate for
/// `user` in `groups`. Everything in the request except its public key is ignored:
/// who the certificate names comes from the caller, never from the request.
///
/// # Errors
/// When the request does not parse or its signature is wrong, or the CA is unusable.
pub fn sign_csr(
    ca: &CertAndKey,
    csr_pem: &str,
    user: &str,
    groups: &[String],
    not_before: OffsetDateTime,
    valid_for: Duration,
) -> Result<String> {
    check_names(user, groups)?;
    let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| Error::config(format!("the certificate request is not a valid PKCS#10 request: {e}")))?;
    csr.params = client_params(user, not_before, valid_for)?;
    let issuer = issuer(ca)?;
    let cert = csr.signed_by(&issuer).map_err(rc)?;
    with_groups(cert.der(), user, groups, &issuer)
}

/// A fresh key pair (ECDSA P-256) and a PKCS#10 request for it, both PEM. The
/// request's subject is only a hint (`cn`); the server decides who it names.
///
/// # Errors
/// When rcgen fails (it does not for these parameters).
pub fn make_csr(cn: &str) -> Result<(String, String)> {
    let key = KeyPair::generate().map_err(rc)?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    let csr = params.serialize_request(&key).map_err(rc)?;
    Ok((key.serialize_pem(), csr.pem().map_err(rc)?))
}

/// A self-signed certificate for the key `key_pem` (a bootstrap identity that is
/// never presented: the enrollment dialer offers no client certificate).
///
/// # Errors
/// When the key does not parse.
pub fn self_signed_for(key_pem: &str, cn: &str) -> Result<String> {
    let key = KeyPair::from_pem(key_pem).map_err(|e| Error::config(format!("key does not parse: {e}")))?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    validity(&mut params, OffsetDateTime::now_utc(), Duration::from_secs(3600))?;
    Ok(params.self_signed(&key).map_err(rc)?.pem())
}

/// The identity file for a client certificate: certificate, key, then the CA.
pub fn identity_pem(client: &CertAndKey, ca_cert_pem: &str) -> String {
    format!("{}{}{}", client.cert_pem, client.key_pem, ca_cert_pem)
}

/// PEM-encodes `der` under `label` (`CERTIFICATE`, `PRIVATE KEY`, ...).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    format!("-----BEGIN {label}-----\n{}-----END {label}-----\n", wrap64(&b64))
}

fn wrap64(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 1);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Just enough DER to rewrite a certificate's subject: encode a Name, find the old
/// one in the TBS, splice, and rebuild the outer SEQUENCEs around a new signature.
mod der {
    pub(super) const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
    pub(super) const OID_O: &[u8] = &[0x55, 0x04, 0x0a];

    fn len(n: usize) -> Vec<u8> {
        if n < 0x80 {
            vec![n as u8]
        } else {
            let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
            let mut v = vec![0x80 | bytes.len() as u8];
            v.extend(bytes);
            v
        }
    }

    pub(super) fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend(len(body.len()));
        v.extend_from_slice(body);
        v
    }

    /// A Name: one RDN per attribute, each value a UTF8String.
    pub(super) fn name(attrs: &[(&[u8], &str)]) -> Vec<u8> {
        let mut rdns = Vec::new();
        for (oid, value) in attrs {
            let atv = [tlv(0x06, oid), tlv(0x0c, value.as_bytes())].concat();
            rdns.extend(tlv(0x31, &tlv(0x30, &atv)));
        }
        tlv(0x30, &rdns)
    }

    /// Splits one TLV off the front: (tag, body, rest).
    pub(super) fn split(der: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
        let (&tag, rest) = der.split_first().ok_or("empty")?;
        let (&l0, rest) = rest.split_first().ok_or("no length")?;
        let (n, rest) = if l0 < 0x80 {
            (l0 as usize, rest)
        } else {
            let k = (l0 & 0x7f) as usize;
            if k == 0 || k > 4 || rest.len() < k {
                return Err("bad length".into());
            }
            (rest[..k].iter().fold(0usize, |a, b| (a << 8) | *b as usize), &rest[k..])
        };
        if rest.len() < n {
            return Err("truncated".into());
        }
        Ok((tag, &rest[..n], &rest[n..]))
    }

    /// Replaces the subject `old` with `new` in certificate `cert`, signing the new
    /// TBS with `sign`.
    pub(super) fn replace_subject(
        cert: &[u8],
        old: &[u8],
        new: &[u8],
        sign: impl Fn(&[u8]) -> Result<Vec<u8>, rcgen::Error>,
    ) -> Result<Vec<u8>, String> {
        let (_, body, _) = split(cert)?;
        let (_, tbs_body, rest) = split(body)?;
        let (_, alg_body, _) = split(rest)?;
        // The subject is the last occurrence (the issuer comes first and may be equal).
        let at = tbs_body.windows(old.len()).rposition(|w| w == old).ok_or("subject not found")?;
        let new_tbs = tlv(0x30, &[&tbs_body[..at], new, &tbs_body[at + old.len()..]].concat());
        let sig = sign(&new_tbs).map_err(|e| e.to_string())?;
        let bits = [&[0u8][..], &sig].concat();
        Ok(tlv(0x30, &[new_tbs, tlv(0x30, alg_body), tlv(0x03, &bits)].concat()))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn lengths_and_split() {
            for n in [0usize, 5, 127, 128, 255, 256, 70000] {
                let body = vec![1u8; n];
                let enc = tlv(0x30, &body);
                let (tag, b, rest) = split(&enc).unwrap();
                assert_eq!((tag, b.len(), rest.len()), (0x30, n, 0));
            }
            assert!(split(&[0x30, 0x05, 1]).is_err());
            assert!(split(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
            assert!(split(&[]).is_err());
        }
    }
}
