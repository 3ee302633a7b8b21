//! Enrollment and renewal over the auth route (wire.md §10), through the one dialer
//! (so load balancers and `HTTPS_PROXY` work as for everything else).
//!
//! Enrollment: the client has no CA yet, only the invite's pin. It reads the
//! cluster name from `/webapi/ping` (nothing else is trusted from that answer; a
//! liar there can only make the next step fail), then opens the auth route with a
//! verifier that accepts the server only if the chain carries a CA whose public key
//! hashes to the pin and the leaf verifies against that CA. The key pair is made
//! here and never leaves the machine: the server gets a CSR. A load balancer in
//! front is trusted by the system roots, `--ca`, or the pinned CA (checked once
//! the routing handshake inside has shown that CA, before the secret is sent).
//!
//! Renewal: the current identity is the client certificate; a fresh key, a CSR, a
//! new certificate written over the identity file, which running dialers pick up.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use tracing::{debug, info, warn};

use crate::client::context::Context;
use crate::client::dial::{Dialer, Target};
use crate::client::webapi;
use crate::error::{Error, Result};
use crate::identity::{pki, Identity};
use crate::net::tls::{self, CertCheck, Trust};
use crate::proto::auth::{self as wire, Issued, Request, Response, Token};
use crate::proto::naming;
use crate::util::addr::HostPort;

/// Deadline for one auth exchange, dial included.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts the server when its chain carries the pinned CA and the leaf verifies
/// against it; remembers what it saw, for the message when it does not.
#[derive(Debug)]
pub struct PinnedVerifier {
    pin: [u8; 32],
    mismatch: Mutex<Option<String>>,
    ca: Mutex<Option<CertificateDer<'static>>>,
}

impl PinnedVerifier {
    /// A verifier for `pin`.
    pub fn new(pin: [u8; 32]) -> PinnedVerifier {
        PinnedVerifier { pin, mismatch: Mutex::new(None), ca: Mutex::new(None) }
    }

    /// The pinned CA, once a server's chain has shown it.
    pub fn ca(&self) -> Option<CertificateDer<'static>> {
        self.ca.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The pins of the certificates the server sent, when none matched.
    pub fn mismatch(&self) -> Option<String> {
        self.mismatch.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl CertCheck for PinnedVerifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates.iter().find(|c| wire::pin_of_cert(c).ok() == Some(self.pin)) else {
            let seen: Vec<String> = intermediates
                .iter()
                .filter_map(|c| wire::pin_of_cert(c).ok())
                .map(|p| format!("sha256:{}", wire::hex(&p)))
                .collect();
            let seen = if seen.is_empty() { "no CA certificate".to_string() } else { seen.join(", ") };
            *self.mismatch.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
            return Err(rustls::Error::General("the proxy's CA does not match the invite's pin".into()));
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), tls::provider())
            .build()
            .map_err(|e| rustls::Error::General(format!("pinned CA: {e}")))?;
        let verified = inner.verify_server_cert(end_entity, &[], server_name, ocsp, now)?;
        *self.ca.lock().unwrap_or_else(|p| p.into_inner()) = Some(ca.clone().into_owned());
        Ok(verified)
    }
}

/// A load balancer's chain that neither the system roots nor `--ca` accept, held
/// until the pinned CA is known.
#[derive(Debug)]
struct Held {
    leaf: CertificateDer<'static>,
    intermediates: Vec<CertificateDer<'static>>,
    name: ServerName<'static>,
    refusal: rustls::Error,
}

/// The load balancer's hop during enrollment: the system roots and `--ca`, or else
/// the CA the invite pins (the cluster CA). The client has only the pin, so a chain
/// the roots refuse is let through and held; `LbHop::settle` checks it against
/// the CA the routing handshake inside showed, before anything is sent.
#[derive(Debug)]
pub struct LbHop {
    roots: Arc<WebPkiServerVerifier>,
    held: Mutex<Option<Held>>,
}

impl LbHop {
    fn new(trust: &Trust) -> Result<LbHop> {
        let roots = WebPkiServerVerifier::builder_with_provider(Arc::new(tls::root_store(trust)?), tls::provider())
            .build()
            .map_err(|e| Error::config(format!("TLS: {e}")))?;
        Ok(LbHop { roots, held: Mutex::new(None) })
    }

    fn take(&self) -> Option<Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Accepts the held chain (if any) when its leaf verifies against `ca`, else
    /// gives the load balancer's refusal, as a dial would have.
    fn settle(&self, ca: Option<&CertificateDer<'static>>, lb: &str) -> Result<()> {
        let Some(held) = self.take() else {
            return Ok(());
        };
        let by_ca = ca.is_some_and(|ca| {
            let mut roots = RootCertStore::empty();
            roots.add(ca.clone()).is_ok()
                && WebPkiServerVerifier::builder_with_provider(Arc::new(roots), tls::provider()).build().is_ok_and(
                    |v| v.verify_server_cert(&held.leaf, &held.intermediates, &held.name, &[], UnixTime::now()).is_ok(),
                )
        });
        if by_ca {
            return Ok(());
        }
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, held.refusal);
        Err(Error::Tls {
            layer: crate::error::Layer::LoadBalancer,
            peer: format!("load balancer at {lb}"),
            reason: tls::explain_lb_error(&io, lb),
        })
    }
}

impl CertCheck for LbHop {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.roots.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Ok(v) => Ok(v),
            Err(refusal) => {
                *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(Held {
                    leaf: end_entity.clone().into_owned(),
                    intermediates: intermediates.iter().map(|c| c.clone().into_owned()).collect(),
                    name: server_name.to_owned(),
                    refusal,
                });
                Ok(ServerCertVerified::assertion())
            }
        }
    }
}

/// A new identity: the identity file's text and what the server said about it.
pub struct Enrolled {
    /// Certificate, key and CA, PEM (write it 0600).
    pub identity_pem: String,
    /// The server's record.
    pub issued: Issued,
}

impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolled").field("issued", &self.issued.serial).finish_non_exhaustive()
    }
}

/// An auth-route exchange that failed before an answer could be used.
fn auth_err(who: &str, reason: impl Into<String>) -> Error {
    Error::WebApi { endpoint: format!("{who} (auth route)"), reason: reason.into() }
}

/// Sends `req` on the auth route of `cluster` and reads the answer.
/// With `lb`, the load balancer's hop is settled against the pinned CA before `req`
/// is sent.
async fn exchange(
    dialer: &Dialer,
    domain: &str,
    cluster: &str,
    req: &Request,
    lb: Option<(&LbHop, &PinnedVerifier)>,
) -> Result<Issued> {
    let proxy = dialer.context().proxy.to_string();
    let target = Target { sni: domain.to_string(), alpn: vec![wire::alpn(cluster).into_bytes()] };
    let work = async {
        if let Some((hop, _)) = lb {
            hop.take();
        }
        let mut dialed = dialer.dial(&target).await?;
        if let Some((hop, pinned)) = lb {
            hop.settle(pinned.ca().as_ref(), &proxy)?;
        }
        wire::write_frame(&mut dialed.stream, req).await.map_err(|e| auth_err(&proxy, e.to_string()))?;
        let resp: Response = wire::read_frame(&mut dialed.stream, wire::MAX_RESPONSE)
            .await
            .map_err(|e| auth_err(&proxy, format!("closed without an answer ({e}); see the proxy's log")))?;
        match resp {
            Response::Issued(i) => Ok(i),
            Response::Refused { message, .. } => Err(Error::Refused(message)),
        }
    };
    crate::error::with_timeout(crate::error::Phase::Request, &proxy, EXCHANGE_TIMEOUT, work).await
}

/// Checks what came back: the certificate is for our key and chains to the CA
/// (the pinned one, for enrollment); returns the identity file's text.
fn assemble(issued: &Issued, key_pem: &str, pin: Option<[u8; 32]>) -> Result<String> {
    let der = |pem: &str| -> Result<Vec<u8>> {
        rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
            .map(|c: CertificateDer<'static>| c.to_vec())
            .map_err(|e| auth_err("the proxy", format!("sent a certificate that does not parse: {e}")))
    };
    let (cert, ca) = (der(&issued.cert)?, der(&issued.ca)?);
    if let Some(pin) = pin {
        if wire::pin_of_cert(&ca).map_err(|e| auth_err("the proxy", e))? != pin {
            return Err(auth_err("the proxy", "sent a CA that does not match the invite's pin"));
        }
    }
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| Error::config(format!("key: {e}")))?;
    let ours = rcgen::PublicKeyData::subject_public_key_info(&key);
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert)
        .map_err(|e| auth_err("the proxy", format!("sent a certificate that does not parse: {e}")))?;
    if parsed.public_key().raw != ours.as_slice() {
        return Err(auth_err("the proxy", "sent a certificate for another key"));
    }
    let pem = format!("{}{key_pem}{}", issued.cert, issued.ca);
    Identity::from_pem(pem.as_bytes())?;
    Ok(pem)
}

/// Enrolls with `token` at `proxy`; `lb_ca` are more anchors (`--ca`) for a load
/// balancer's TLS in front of it, beside the system roots.
///
/// # Errors
/// [`Error::Refused`] with the server's sentence (token unknown, used, expired),
/// a pin mismatch in words, or the dial's own errors.
pub async fn enroll(
    proxy: &HostPort,
    token: &Token,
    lb_ca: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<Enrolled> {
    let (key_pem, csr) = pki::make_csr("oneport-enrollment")?;
    // The dialer wants an identity; this one is never presented (the configs below
    // carry no client certificate) and dies with the process.
    let bootstrap = pki::self_signed_for(&key_pem, "oneport-enrollment")?;
    let identity = Identity::from_pem(format!("{bootstrap}{key_pem}").as_bytes())?;
    let domain = naming::routing_domain(&proxy.host);
    let ctx = Context {
        proxy: proxy.clone(),
        identity,
        trust: Trust::default(),
        domain: domain.clone(),
        cluster: proxy.host.clone(),
        profile: None,
        identity_path: None,
    };
    let pinned = Arc::new(PinnedVerifier::new(token.pin));
    let web = vec![b"http/1.1".to_vec()];
    // The cluster name is public; it is read without verification (see module docs).
    let ping_cfg = tls::client_config(&Trust { insecure: true, ..Trust::default() }, None, web.clone())?;
    // The load balancer's hop: the system roots, `--ca`, or the pinned cluster CA.
    // No resumption: a resumed session would skip the hold that `settle` checks.
    let hop = Arc::new(LbHop::new(&Trust { system: true, lb_ca: lb_ca.to_vec(), ..Trust::default() })?);
    let mut outer = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(tls::Verifier(hop.clone())))
        .with_no_client_auth();
    outer.resumption = rustls::client::Resumption::disabled();
    let outer = Arc::new(outer);
    let ping_dialer = Dialer::with_configs(ctx.clone(), vec![(web, ping_cfg)], outer.clone());
    let ping = webapi::ping(&ping_dialer).await?;
    let alpn = vec![wire::alpn(&ping.cluster_name).into_bytes()];
    let mut auth_cfg = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(tls::Verifier(pinned.clone())))
        .with_no_client_auth();
    auth_cfg.alpn_protocols = alpn.clone();
    let dialer = Dialer::with_configs(ctx, vec![(alpn, Arc::new(auth_cfg))], outer);
    let req = Request::Enroll { secret: wire::hex(&token.secret), csr };
    let issued = match exchange(&dialer, &ping.routing_domain, &ping.cluster_name, &req, Some((&hop, &pinned))).await {
        Ok(i) => i,
        Err(e) => {
            return Err(match pinned.mismatch() {
                Some(seen) => Error::Refused(format!(
                    "the proxy at {proxy} is not the cluster this invite was made for: the invite pins CA sha256:{}, the proxy presented {seen} (another server, or something intercepting TLS); nothing was sent",
                    wire::hex(&token.pin)
                )),
                None => e,
            })
        }
    };
    let identity_pem = assemble(&issued, &key_pem, Some(token.pin))?;
    debug!(serial = %issued.serial, "enrolled");
    Ok(Enrolled { identity_pem, issued })
}

/// Renews the identity `dialer` presents and writes the new one to `out` (0600,
/// atomically replaced).
///
/// # Errors
/// [`Error::Refused`] with the server's sentence (revoked, past renewable-until,
/// not issued by invite), or the dial's own errors.
pub async fn renew(dialer: &Dialer, out: &Path) -> Result<Issued> {
    let (key_pem, csr) = pki::make_csr("oneport-renewal")?;
    let ctx = dialer.context();
    let issued = exchange(dialer, &ctx.domain, &ctx.cluster, &Request::Renew { csr }, None).await?;
    let pem = assemble(&issued, &key_pem, None)?;
    crate::util::fsutil::write_private(out, pem.as_bytes())?;
    Ok(issued)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// When to renew an identity valid from `not_before` to `not_after`: at 2/3 of its
/// lifetime, counted from when it was issued (`not_before` is backdated by
/// [`pki::BACKDATE`] for clock skew, which must not count).
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    let issued = (not_before + pki::BACKDATE.as_secs() as i64).min(not_after);
    issued + (not_after - issued) * 2 / 3
}

/// Renews the identity in `dialer`'s file at 2/3 of its lifetime, for as long as the
/// server grants it, until `shutdown`. The dialer picks each new file up for new
/// connections; open ones keep the certificate they started with. `on_renewed` is
/// told each new certificate (to keep the login profile in step).
pub async fn keep_renewed(
    dialer: Arc<Dialer>,
    shutdown: tokio_util::sync::CancellationToken,
    on_renewed: impl Fn(&Issued) + Send + 'static,
) {
    let Some(path) = dialer.context().identity_path.clone() else { return };
    let mut retry = Duration::from_secs(5);
    loop {
        let caller = dialer.identity().caller;
        let at = renew_at(caller.not_before, caller.not_after);
        // At least a second between attempts, whatever the clocks say.
        let wait = Duration::from_secs((at - now_secs()).max(1) as u64);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        // Renewed by someone else meanwhile? Then wait for the new one's time.
        if dialer.identity().caller.serial != caller.serial {
            continue;
        }
        match renew(&dialer, &path).await {
            Ok(issued) => {
                info!(
                    serial = %issued.serial,
                    expires = %format!("{} UTC", crate::util::utc::format_or_epoch(issued.not_after, "-", " ", ":")),
                    "identity renewed"
                );
                on_renewed(&issued);
                retry = Duration::from_secs(5);
                // The dialer re-reads the file on its next dial; make that now.
                let _ = dialer.identity();
            }
            Err(Error::Refused(why)) => {
                warn!("the identity will not be renewed: {why}");
                return;
            }
            Err(e) => {
                if caller.expired_at(std::time::SystemTime::now()) {
                    warn!(error = %e, "the identity expired before it could be renewed: log in again");
                    return;
                }
                warn!(error = %e, retry_secs = retry.as_secs(), "renewal failed; trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(Duration::from_secs(60));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_at_two_thirds_of_the_real_lifetime() {
        let b = pki::BACKDATE.as_secs() as i64;
        assert_eq!(renew_at(1000 - b, 1030), 1020);
        assert_eq!(renew_at(0, 10), 10); // shorter than the backdate: at expiry
    }

    fn cert_der(pem: &str) -> CertificateDer<'static> {
        rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn pinned_verifier_accepts_the_pinned_ca_only() {
        let ca = pki::make_ca("t").unwrap();
        let leaf =
            pki::make_server_cert(&ca, &["teleport.cluster.local".into()], &[], Duration::from_secs(3600)).unwrap();
        let (ca_der, leaf_der) = (cert_der(&ca.cert_pem), cert_der(&leaf.cert_pem));
        let pin = wire::pin_of_cert(&ca_der).unwrap();
        let name = ServerName::try_from("teleport.cluster.local").unwrap();
        let now = UnixTime::now();
        let v = PinnedVerifier::new(pin);
        assert!(v.check(&leaf_der, std::slice::from_ref(&ca_der), &name, &[], now).is_ok());
        // Wrong name: the leaf is still checked against the CA.
        let other = ServerName::try_from("evil.example").unwrap();
        assert!(v.check(&leaf_der, std::slice::from_ref(&ca_der), &other, &[], now).is_err());
        // No CA sent, or another CA: refused, and the mismatch is remembered.
        assert!(v.check(&leaf_der, &[], &name, &[], now).is_err());
        let v2 = PinnedVerifier::new([0u8; 32]);
        assert!(v2.check(&leaf_der, std::slice::from_ref(&ca_der), &name, &[], now).is_err());
        assert_eq!(v2.mismatch(), Some(format!("sha256:{}", wire::hex(&pin))));
        // A leaf from another CA, with the pinned CA appended: refused.
        let ca2 = pki::make_ca("t").unwrap();
        let leaf2 =
            pki::make_server_cert(&ca2, &["teleport.cluster.local".into()], &[], Duration::from_secs(3600)).unwrap();
        assert!(v.check(&cert_der(&leaf2.cert_pem), &[ca_der], &name, &[], now).is_err());
    }

    #[test]
    fn lb_hop_holds_what_the_roots_refuse_until_the_pinned_ca_settles_it() {
        let ca = pki::make_ca("t").unwrap();
        let leaf = pki::make_server_cert(&ca, &["lb.example".into()], &[], Duration::from_secs(3600)).unwrap();
        let (ca_der, leaf_der) = (cert_der(&ca.cert_pem), cert_der(&leaf.cert_pem));
        let name = ServerName::try_from("lb.example").unwrap();
        let hop = LbHop::new(&Trust { system: true, ..Trust::default() }).unwrap();
        // Nothing held: nothing to settle.
        assert!(hop.settle(None, "lb.example:443").is_ok());
        // Held, then settled by the CA that signed it.
        assert!(hop.check(&leaf_der, &[], &name, &[], UnixTime::now()).is_ok());
        assert!(hop.settle(Some(&ca_der), "lb.example:443").is_ok());
        // Held, and another CA (or none) known: the load balancer's refusal.
        let other = cert_der(&pki::make_ca("t").unwrap().cert_pem);
        for ca in [Some(&other), None] {
            assert!(hop.check(&leaf_der, &[], &name, &[], UnixTime::now()).is_ok());
            let err = hop.settle(ca, "lb.example:443").unwrap_err().to_string();
            assert!(
                err.contains("the load balancer at lb.example:443 presented a certificate no trusted CA signed: give the CA that signs it with --ca FILE"),
                "{err}"
            );
        }
        // `--ca` trusts it outright: nothing is held.
        let hop = LbHop::new(&Trust { system: true, lb_ca: vec![ca_der], ..Trust::default() }).unwrap();
        assert!(hop.check(&leaf_der, &[], &name, &[], UnixTime::now()).is_ok());
        assert!(hop.take().is_none());
    }

    #[test]
    fn assemble_checks_key_and_pin() {
        let ca = pki::make_ca("t").unwrap();
        let (key, csr) = pki::make_csr("x").unwrap();
        let cert = pki::sign_csr(
            &ca,
            &csr,
            "alice",
            &["dev".into()],
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(60),
        )
        .unwrap();
        let pin = wire::pin_of_cert(&cert_der(&ca.cert_pem)).unwrap();
        let issued = Issued {
            cert,
            ca: ca.cert_pem.clone(),
            serial: String::new(),
            user: "alice".into(),
            groups: vec![],
            not_after: 0,
            renewable_until: 0,
        };
        let pem = assemble(&issued, &key, Some(pin)).unwrap();
        let id = Identity::from_pem(pem.as_bytes()).unwrap();
        assert_eq!((id.caller.user.as_str(), id.caller.groups.clone()), ("alice", vec!["dev".to_string()]));
        assert!(assemble(&issued, &key, Some([1u8; 32])).unwrap_err().to_string().contains("pin"));
        let (other_key, _) = pki::make_csr("y").unwrap();
        assert!(assemble(&issued, &other_key, Some(pin)).unwrap_err().to_string().contains("another key"));
    }
}
