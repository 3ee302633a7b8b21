//! Kubernetes on the client side and the pieces both ends share.
//!
//! - [`status`]: Kubernetes-style `Status` error bodies (what kubectl prints).
//! - [`forward`]: HTTP/1.1 forwarding with a small connection pool per upstream and
//!   upgrades (exec, attach, port-forward) relayed both ways. The server's
//!   impersonating backend (`server::kube`) and the local proxy both use it.
//! - [`kubeconfig`]: which kubeconfig file kubectl reads and writes, and editing it
//!   without disturbing other entries (`kube login`).
//! - [`credentials`]: the `ExecCredential` that kubectl's exec plugin reads.
//! - [`proxy`]: the local HTTPS proxy for kubectl (`proxy kube`).

pub mod credentials;
pub mod forward;
pub mod kubeconfig;
pub mod proxy;
pub mod status;

/// The name `kube login` gives the cluster, user and context entries of kube cluster
/// `kube` behind proxy cluster `cluster` (`<cluster>-<kube>`, as the reference does).
pub fn entry_name(cluster: &str, kube: &str) -> String {
    format!("{cluster}-{kube}")
}
