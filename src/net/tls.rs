//! TLS configuration for both ends, on the aws-lc-rs crypto provider (faster bulk
//! AES-GCM than ring, measured in docs/benchmarks.md; it builds with `cc` alone
//! here, no cmake; see README).
//!
//! Client: trusts the proxy CA (plus, for the outer hop through a load balancer, the
//! `--ca` anchors and the system roots), presents the identity, keeps one session-resumption store per
//! process so repeated connections resume instead of doing full handshakes.
//! Server: one certificate for every routed name, client certificates verified
//! against the cluster CA, and a per-connection verifier that also applies the
//! resource's allow-list, so a denied caller gets the `access_denied` alert.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::error::{Error, Result};
use crate::identity::{Caller, Identity};

/// How many bytes of TLS records a connection may hold unsent (rustls defaults to
/// 64 KiB). A write larger than what is left is cut there, and tokio-rustls sends
/// each cut as its own system call: a 64 KiB relay write behind a 4-byte ping
/// header, or an HTTP/2 frame behind its 9-byte head, cost a second system call and
/// a TLS record of a few bytes each time. Room for the largest HTTP/2 frame
/// ([`crate::net::mux::MAX_FRAME`], 256 KiB) with its head and the records' overhead
/// makes each such write one record run and one system call. This bounds memory only while the socket is not
/// taking bytes; nothing is held once written.
pub const SEND_BUFFER_LIMIT: usize = 512 * 1024;

/// The crypto provider every config uses.
pub fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())).clone()
}

/// How many server names one client config keeps tickets for (rustls keeps up to
/// eight TLS 1.3 tickets per name).
const SESSIONS_PER_CONFIG: usize = 64;

/// Which certificates a client trusts for the server.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The proxy CA(s): the only anchors of the TLS-routing handshake.
    pub ca: Vec<CertificateDer<'static>>,
    /// More anchors for the outer TLS to a load balancer only (`--ca`), counted only
    /// with `system` (which only that hop sets): a corporate CA there must not be
    /// able to sign for the routing server.
    pub lb_ca: Vec<CertificateDer<'static>>,
    /// Also trust the system roots (webpki roots and the OS store): for the outer
    /// TLS to a load balancer with a public certificate.
    pub system: bool,
    /// Verify nothing (`--insecure`). The CLI warns loudly when this is set.
    pub insecure: bool,
}

/// Builds a client config.
///
/// # Errors
/// When a CA certificate or the identity's key is unusable.
pub fn client_config(trust: &Trust, identity: Option<&Identity>, alpn: Vec<Vec<u8>>) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS: {e}")))?;
    let builder = if trust.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(Verifier(Arc::new(NoVerify))))
    } else {
        builder.with_root_certificates(root_store(trust)?)
    };
    let mut cfg = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| Error::config(format!("identity key is unusable: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn;
    // Each config has its own ticket store. rustls keys tickets by server name only
    // and resumes a ticket only in a config with the same verifier and client
    // certificate (the same `Arc`s), so it drops one taken by any other config. A
    // store shared by every config in the process let a connection to the same name
    // from another config (another route's ALPN, another identity, another port on
    // the same host) take and waste the newest ticket: the next connection did a full
    // handshake. Callers keep a config for as long as they dial with it.
    cfg.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(SESSIONS_PER_CONFIG)));
    Ok(Arc::new(cfg))
}

/// The roots a [`Trust`] stands for.
///
/// # Errors
/// When a CA is unusable or nothing is trusted.
pub fn root_store(trust: &Trust) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in &trust.ca {
        roots.add(c.clone()).map_err(|e| Error::config(format!("CA certificate is unusable: {e}")))?;
    }
    if trust.system {
        for c in &trust.lb_ca {
            roots.add(c.clone()).map_err(|e| Error::config(format!("--ca certificate is unusable: {e}")))?;
        }
        add_system_roots(&mut roots);
    }
    if roots.is_empty() {
        return Err(Error::config(
            "no CA to verify the proxy with: give --ca, or an identity file that includes the CA",
        ));
    }
    Ok(roots)
}

/// Adds the system roots: the Mozilla set shipped with the binary, plus the OS store
/// (which adds corporate roots; its errors, such as unreadable files, are not fatal).
pub fn add_system_roots(roots: &mut RootCertStore) {
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    let _ = roots.add_parsable_certificates(native.certs);
}

/// The TLS server name for a host: an IP address (IPv6 with or without brackets),
/// or a DNS name.
///
/// # Errors
/// A sentence saying the host is neither; callers prefix where the host came from.
pub fn server_name(host: &str) -> std::result::Result<ServerName<'static>, String> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    match h.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(h.to_string()).map_err(|_| format!("{host:?} is not a host name or IP address")),
    }
}

/// A server-certificate check of our own (the pinned CA at enrollment, none under
/// `--insecure`). [`Verifier`] turns it into a rustls verifier, adding the
/// handshake-signature checks, which every such verifier does the same way.
pub trait CertCheck: std::fmt::Debug + Send + Sync {
    /// Accepts or refuses the server's chain, as
    /// [`ServerCertVerifier::verify_server_cert`] does.
    ///
    /// # Errors
    /// The reason the chain is refused.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error>;
}

/// A [`CertCheck`] plus the handshake-signature checks of [`provider`].
#[derive(Debug)]
pub struct Verifier<C>(pub Arc<C>);

impl<C: CertCheck> ServerCertVerifier for Verifier<C> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.0.check(end_entity, intermediates, server_name, ocsp, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

/// The `--insecure` check: accepts any server certificate ([`Verifier`] still
/// checks signatures, so the handshake is well-formed).
#[derive(Debug)]
struct NoVerify;

impl CertCheck for NoVerify {
    fn check(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
}

// === server side ===

/// How a server connection treats client certificates.
#[derive(Clone)]
pub enum ClientAuth {
    /// Asked for, verified if given, not required (web API, upgrade probe).
    Optional,
    /// Required, verified, and passed through `check` (the route's allow-list).
    Required(Arc<dyn Fn(&Caller) -> bool + Send + Sync>),
}

/// What the server needs to make a per-connection config.
pub struct ServerTls {
    cert: Arc<CertifiedKey>,
    /// The chain followed by the client CA: presented on the auth route, whose
    /// clients know only the CA's pin and need the CA itself to verify the leaf.
    cert_with_ca: Arc<CertifiedKey>,
    required: Arc<dyn ClientCertVerifier>,
    optional: Arc<dyn ClientCertVerifier>,
    ticketer: Arc<dyn rustls::server::ProducesTickets>,
    sessions: Arc<dyn rustls::server::StoresServerSessions + Send + Sync>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Builds from the server certificate chain and key and the client CA.
    ///
    /// # Errors
    /// When the key or a certificate is unusable.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_ca: &[CertificateDer<'static>],
    ) -> Result<ServerTls> {
        let p = provider();
        let signing =
            p.key_provider.load_private_key(key).map_err(|e| Error::config(format!("server key is unusable: {e}")))?;
        let mut roots = RootCertStore::empty();
        for c in client_ca {
            roots.add(c.clone()).map_err(|e| Error::config(format!("client CA is unusable: {e}")))?;
        }
        let roots = Arc::new(roots);
        let verr = |e| Error::config(format!("client CA: {e}"));
        let required = WebPkiClientVerifier::builder_with_provider(roots.clone(), p.clone()).build().map_err(verr)?;
        let optional = WebPkiClientVerifier::builder_with_provider(roots, p.clone())
            .allow_unauthenticated()
            .build()
            .map_err(verr)?;
        let ticketer =
            rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| Error::config(format!("TLS tickets: {e}")))?;
        let mut with_ca = chain.clone();
        with_ca.extend(client_ca.iter().filter(|c| !chain.contains(c)).cloned());
        Ok(ServerTls {
            cert_with_ca: Arc::new(CertifiedKey::new(with_ca, signing.clone())),
            cert: Arc::new(CertifiedKey::new(chain, signing)),
            required,
            optional,
            ticketer,
            sessions: rustls::server::ServerSessionMemoryCache::new(4096),
        })
    }

    /// A config that negotiates exactly `alpn` (an empty list: anything the client
    /// offers is refused with `no_application_protocol` when `refuse_all` is used).
    pub fn config(&self, alpn: Vec<Vec<u8>>, auth: ClientAuth) -> Arc<ServerConfig> {
        let verifier: Arc<dyn ClientCertVerifier> = match auth {
            ClientAuth::Optional => self.optional.clone(),
            ClientAuth::Required(check) => Arc::new(Authorizing { inner: self.required.clone(), check }),
        };
        self.build(verifier, self.cert.clone(), alpn)
    }

    /// The auth route's config: client certificate optional (enrollment has none,
    /// renewal presents the current one), and the CA sent after the chain.
    pub fn auth_config(&self, alpn: Vec<u8>) -> Arc<ServerConfig> {
        self.build(self.optional.clone(), self.cert_with_ca.clone(), vec![alpn])
    }

    fn build(
        &self,
        verifier: Arc<dyn ClientCertVerifier>,
        cert: Arc<CertifiedKey>,
        alpn: Vec<Vec<u8>>,
    ) -> Arc<ServerConfig> {
        // Building the config cannot fail: the provider's defaults are consistent and
        // the versions are the provider's own.
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the crypto provider supports the default protocol versions");
        let mut cfg = builder.with_client_cert_verifier(verifier).with_cert_resolver(Arc::new(OneCert(cert)));
        cfg.alpn_protocols = alpn;
        cfg.ticketer = self.ticketer.clone();
        cfg.session_storage = self.sessions.clone();
        Arc::new(cfg)
    }
}

#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Verifies the chain with the inner verifier, then applies the route's check. A
/// failed check is `ApplicationVerificationFailure`, which rustls sends as the
/// `access_denied` alert.
struct Authorizing {
    inner: Arc<dyn ClientCertVerifier>,
    check: Arc<dyn Fn(&Caller) -> bool + Send + Sync>,
}

impl std::fmt::Debug for Authorizing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorizing")
    }
}

impl ClientCertVerifier for Authorizing {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let ok = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        match Caller::from_der(end_entity) {
            Ok(caller) if (self.check)(&caller) => Ok(ok),
            Ok(_) => Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)),
            Err(e) => {
                tracing::info!(reason = %e, "refused: the client certificate names no usable identity");
                Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
            }
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS alert a client received, if that is what `err` is.
pub fn alert_of(err: &std::io::Error) -> Option<rustls::AlertDescription> {
    match err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(a)) => Some(*a),
        _ => None,
    }
}

/// Maps an I/O error on a client TLS stream to the library error: `access_denied`
/// becomes [`crate::Error::AccessDenied`], anything else is explained in words.
pub fn client_error(err: &std::io::Error, proxy: &str, peer: &str) -> crate::Error {
    if alert_of(err) == Some(rustls::AlertDescription::AccessDenied) {
        return crate::Error::AccessDenied { proxy: proxy.to_string() };
    }
    crate::Error::Tls {
        layer: crate::error::Layer::Routing,
        peer: peer.to_string(),
        reason: explain_client_error(err, proxy),
    }
}

/// Whether a client handshake error suggests something between us and the router
/// (a load balancer answering TLS itself), which the other dial path may fix.
pub fn is_path_error(err: &std::io::Error) -> bool {
    use rustls::AlertDescription as A;
    match err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(A::NoApplicationProtocol)) => true,
        // Apache's mod_ssl answers an ALPN it does not know with `http/1.1`.
        Some(rustls::Error::PeerMisbehaved(rustls::PeerMisbehaved::SelectedUnofferedApplicationProtocol)) => true,
        Some(rustls::Error::InvalidCertificate(c)) => matches!(
            c,
            CertificateError::UnknownIssuer
                | CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. }
        ),
        Some(_) => false,
        // EOF or reset during the handshake: an L7 device dropping a hello it cannot parse.
        None => matches!(err.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset),
    }
}

/// As [`explain_client_error`], for the outer TLS to the load balancer `lb`.
pub fn explain_lb_error(err: &std::io::Error, lb: &str) -> String {
    match err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => format!(
            "the load balancer at {lb} presented a certificate no trusted CA signed: give the CA that signs it with --ca FILE (trusted for the load balancer only, beside the system roots and the cluster CA)"
        ),
        _ => explain_client_error(err, lb),
    }
}

/// Whether a client handshake ended with the connection cut (EOF or reset) before
/// the peer said anything in TLS.
pub fn is_cut(err: &std::io::Error) -> bool {
    err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()).is_none()
        && matches!(err.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset)
}

/// Turns a rustls error seen by a client into plain words with a hint.
pub fn explain_client_error(err: &std::io::Error, proxy: &str) -> String {
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    use rustls::AlertDescription as A;
    match inner {
        Some(rustls::Error::AlertReceived(A::NoApplicationProtocol)) => format!(
            "{proxy} does not route this protocol (TLS alert no_application_protocol); if a layer 7 load balancer sits in front, set ONEPORT_TLS_ROUTING_CONN_UPGRADE=true"
        ),
        Some(rustls::Error::AlertReceived(A::AccessDenied)) => format!("{proxy} refused the connection (access denied)"),
        Some(rustls::Error::PeerMisbehaved(rustls::PeerMisbehaved::SelectedUnofferedApplicationProtocol)) => format!(
            "{proxy} answered with an ALPN protocol we never offered: a layer 7 load balancer terminates TLS in front of the proxy; set ONEPORT_TLS_ROUTING_CONN_UPGRADE=true"
        ),
        Some(rustls::Error::AlertReceived(A::UnknownCA)) => {
            format!("{proxy} does not trust the client certificate (unknown CA): the identity was issued by another cluster")
        }
        Some(rustls::Error::AlertReceived(A::DecryptError)) => not_verified(proxy, "decrypt_error"),
        Some(rustls::Error::AlertReceived(A::BadCertificate)) => not_verified(proxy, "bad_certificate"),
        Some(rustls::Error::AlertReceived(A::CertificateExpired)) => {
            format!("{proxy} rejected the client certificate as expired: get a new identity and `oneport login` again")
        }
        Some(rustls::Error::AlertReceived(A::CertificateRequired)) => {
            format!("{proxy} requires a client certificate: give --identity or `oneport login`")
        }
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => format!(
            "the certificate presented by {proxy} is not signed by the expected CA (the CA of the identity's cluster): the identity belongs to another cluster, or something else answers on that address"
        ),
        Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { expected, presented })) => {
            format!("{proxy} presented a certificate for {} (we asked for {expected:?})", presented.join(", "))
        }
        Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)) => {
            format!("the certificate presented by {proxy} is not valid for the name we asked for: {err}")
        }
        Some(rustls::Error::InvalidCertificate(CertificateError::Expired))
        | Some(rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })) => {
            format!("the certificate presented by {proxy} has expired")
        }
        Some(e) => format!("TLS error with {proxy}: {e}"),
        // tokio-rustls's own text for this names a docs URL; say what it means.
        None if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("the connection to {proxy} was cut without a TLS close (the proxy closed it, stopped or restarted, or something on the way dropped it)")
        }
        None => format!("{err}"),
    }
}

fn not_verified(proxy: &str, alert: &str) -> String {
    format!(
        "{proxy} could not verify the client certificate (TLS alert {alert}): the identity was issued by another cluster's CA"
    )
}

/// Says in words why a TLS handshake the server made towards a backend (`who`:
/// "the API server", "the database") failed, with what to configure (pure). The
/// webpki names (`CaUsedAsEndEntity`, `UnknownIssuer`, ...) become sentences; no
/// library URL ever reaches the user.
pub fn explain_backend_error(err: &std::io::Error, who: &str) -> String {
    use rustls::AlertDescription as A;
    use CertificateError as C;
    let Some(inner) = err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return match err.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                format!("{who} closed the connection during the TLS handshake: is that port speaking TLS?")
            }
            _ => format!("TLS handshake with {who} failed: {}", strip_urls(&err.to_string())),
        };
    };
    match inner {
        rustls::Error::InvalidCertificate(c) => match c {
            // webpki's own errors come through as text (`Other`).
            C::Other(o) if o.to_string().contains("CaUsedAsEndEntity") => {
                format!("{who} presents a CA certificate as its own; configure the CA that signed it")
            }
            C::Other(o) if o.to_string().contains("EndEntityUsedAsCa") => {
                format!("{who}'s certificate chain uses a server certificate as a CA; configure the real CA")
            }
            C::Other(o) if o.to_string().contains("RequiredEkuNotFound") => {
                format!("{who}'s certificate is not meant for TLS servers (no serverAuth extended key usage)")
            }
            C::UnknownIssuer => {
                format!("{who} presents a certificate not signed by the configured CA; configure the CA that signed it")
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "{who}'s certificate is not valid for the name the server checks (the host of its address, or its configured server name); use a name the certificate carries"
            ),
            C::Expired | C::ExpiredContext { .. } => format!("{who}'s certificate has expired; renew it"),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("{who}'s certificate is not valid yet; check the clocks of both machines")
            }
            C::Revoked => format!("{who}'s certificate has been revoked"),
            C::BadSignature | C::UnsupportedSignatureAlgorithmContext { .. } => {
                format!("{who}'s certificate has a bad or unsupported signature")
            }
            C::BadEncoding => format!("{who}'s certificate does not parse"),
            other => format!("{who}'s certificate is refused ({})", strip_urls(&format!("{other:?}"))),
        },
        rustls::Error::AlertReceived(A::CertificateRequired) => {
            format!("{who} requires a client certificate; configure one for the server to present")
        }
        rustls::Error::AlertReceived(A::BadCertificate | A::UnknownCA | A::CertificateUnknown) => {
            format!("{who} refused the server's client certificate; configure one it trusts")
        }
        rustls::Error::AlertReceived(a) => format!("{who} ended the TLS handshake (alert {a:?})"),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!("{who} does not speak TLS on that port")
        }
        rustls::Error::NoApplicationProtocol | rustls::Error::PeerIncompatible(_) => {
            format!("{who} and the server share no TLS version, cipher or protocol")
        }
        other => format!("TLS handshake with {who} failed: {}", strip_urls(&other.to_string())),
    }
}

/// `text` without any `https://...` word (library messages point at their docs).
fn strip_urls(text: &str) -> String {
    text.split(' ')
        .filter(|w| !w.starts_with("https://"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(':')
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn backend_tls_errors_in_words() {
        use rustls::{AlertDescription as A, CertificateError as C, Error as E, OtherError};
        let io = |e: E| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        // What rustls wraps webpki's `CaUsedAsEndEntity` in (webpki's Display is its Debug).
        #[derive(Debug)]
        struct CaUsedAsEndEntity;
        impl std::fmt::Display for CaUsedAsEndEntity {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{self:?}")
            }
        }
        impl std::error::Error for CaUsedAsEndEntity {}
        let ca_as_leaf = io(E::InvalidCertificate(C::Other(OtherError(std::sync::Arc::new(CaUsedAsEndEntity)))));
        assert_eq!(
            super::explain_backend_error(&ca_as_leaf, "the API server"),
            "the API server presents a CA certificate as its own; configure the CA that signed it"
        );
        assert_eq!(
            super::explain_backend_error(&io(E::InvalidCertificate(C::UnknownIssuer)), "the API server"),
            "the API server presents a certificate not signed by the configured CA; configure the CA that signed it"
        );
        assert_eq!(
            super::explain_backend_error(&io(E::InvalidCertificate(C::Expired)), "the database"),
            "the database's certificate has expired; renew it"
        );
        assert_eq!(
            super::explain_backend_error(&io(E::AlertReceived(A::CertificateRequired)), "the API server"),
            "the API server requires a client certificate; configure one for the server to present"
        );
        let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "peer closed: https://docs.rs/x");
        let m = super::explain_backend_error(&eof, "the database");
        assert_eq!(m, "the database closed the connection during the TLS handshake: is that port speaking TLS?");
        let other = std::io::Error::other("odd: https://docs.rs/rustls");
        assert!(!super::explain_backend_error(&other, "x").contains("https://"));
    }

    #[test]
    fn a_cut_connection_is_explained_without_a_url() {
        // What tokio-rustls reports when the server goes away mid-session (found by
        // tests/faults.rs: the user saw a docs.rs URL).
        let e = std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify: https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof",
        );
        let m = super::explain_client_error(&e, "proxy.example.com:3080");
        assert!(m.contains("connection to proxy.example.com:3080 was cut without a TLS close"), "{m}");
        assert!(!m.contains("https://"), "{m}");
    }
}
