//! kubectl glue, client side and without sockets: which kubeconfig kubectl reads and
//! writes and how `kube login` edits it without disturbing other entries
//! ([`kubeconfig`]), and the `ExecCredential` kubectl's exec plugin reads
//! ([`credentials`]). The local HTTPS endpoint is [`crate::client::local::kube`].

pub mod credentials;
pub mod kubeconfig;

/// The name `kube login` gives the cluster, user and context entries of kube cluster
/// `kube` behind proxy cluster `cluster` (`<cluster>-<kube>`, as the reference does).
pub fn entry_name(cluster: &str, kube: &str) -> String {
    format!("{cluster}-{kube}")
}
