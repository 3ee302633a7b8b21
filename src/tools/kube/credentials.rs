//! kubectl's exec credential plugin: the kubeconfig `exec` stanza `kube login` writes
//! (calling `oneport kube credentials`), and the `ExecCredential` that command prints
//! (client certificate, key and expiry from the identity file).
//!
//! Why exec rather than certificate data in the kubeconfig: the private key stays in
//! the one 0600 identity file instead of being copied into a file other tools read
//! and sync, and a renewed identity (`oneport login` again) reaches kubectl without
//! running `kube login` again. The price is that the `oneport` binary must stay at
//! the absolute path recorded in the kubeconfig.

use std::path::Path;

use rustls::pki_types::PrivateKeyDer;
use serde_yaml_ng::{Mapping, Value};

use crate::identity::pki;
use crate::identity::Identity;

/// The exec credential API version (kubectl ≥ 1.22).
pub const API_VERSION: &str = "client.authentication.k8s.io/v1";

/// The `ExecCredential` JSON for `id`.
pub fn exec_credential(id: &Identity) -> serde_json::Value {
    let chain: String = id.chain.iter().map(|c| pki::pem_encode("CERTIFICATE", c)).collect();
    serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": chain,
            "clientKeyData": key_pem(&id.key),
            "expirationTimestamp": rfc3339(id.caller.not_after),
        },
    })
}

fn key_pem(key: &PrivateKeyDer<'_>) -> String {
    let label = match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    pki::pem_encode(label, key.secret_der())
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2025-01-31T12:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    format!("{}Z", crate::util::utc::format_or_epoch(unix, "-", "T", ":"))
}

/// The kubeconfig `user` body that runs `binary ARGS...` as the exec plugin, with
/// `env` set for it.
pub fn exec_user(binary: &Path, args: &[String], env: &[(String, String)]) -> Mapping {
    let mut exec = Mapping::new();
    exec.insert("apiVersion".into(), API_VERSION.into());
    exec.insert("command".into(), binary.to_string_lossy().into_owned().into());
    exec.insert("args".into(), Value::Sequence(args.iter().map(|a| a.as_str().into()).collect()));
    if !env.is_empty() {
        let list = env
            .iter()
            .map(|(k, v)| {
                let mut m = Mapping::new();
                m.insert("name".into(), k.as_str().into());
                m.insert("value".into(), v.as_str().into());
                Value::Mapping(m)
            })
            .collect();
        exec.insert("env".into(), Value::Sequence(list));
    }
    // v1 requires interactiveMode; the plugin never prompts.
    exec.insert("interactiveMode".into(), "Never".into());
    exec.insert("provideClusterInfo".into(), false.into());
    let mut user = Mapping::new();
    user.insert("exec".into(), Value::Mapping(exec));
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn credential_carries_the_identity() {
        let ca = pki::make_ca("t").unwrap();
        let c = pki::make_client_cert(
            &ca,
            "alice",
            &["dev".into()],
            time::OffsetDateTime::now_utc(),
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
        let id = Identity::from_pem(pki::identity_pem(&c, &ca.cert_pem).as_bytes()).unwrap();
        let v = exec_credential(&id);
        assert_eq!(v["apiVersion"], API_VERSION);
        assert_eq!(v["kind"], "ExecCredential");
        let cert = v["status"]["clientCertificateData"].as_str().unwrap();
        let back = Identity::from_pem(format!("{cert}{}", v["status"]["clientKeyData"].as_str().unwrap()).as_bytes());
        assert_eq!(back.unwrap().caller.user, "alice", "cert and key round-trip");
        assert!(!cert.contains(ca.cert_pem.trim()), "the CA is not part of the client chain");
        assert_eq!(v["status"]["expirationTimestamp"], rfc3339(id.caller.not_after));
    }

    #[test]
    fn exec_stanza() {
        let u = exec_user(Path::new("/usr/bin/oneport"), &["kube".into(), "credentials".into()], &[]);
        let e = &u["exec"];
        assert_eq!(e["command"], "/usr/bin/oneport");
        assert_eq!(e["args"][1], "credentials");
        assert_eq!(e["interactiveMode"], "Never");
        assert!(e.get("env").is_none());
    }
}
