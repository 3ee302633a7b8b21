//! Wire vocabulary both ends share, with no sockets: ALPN and SNI names
//! ([`naming`]), the HTTP body type ([`http`]), the web API's request and answer types ([`webapi`]), the upgrade's
//! names ([`upgrade`]), the auth route's token and messages ([`auth`]), the database codecs ([`db`]), Kubernetes `Status` bodies
//! ([`kube_status`]) and the exec/attach channel framing ([`k8s_channel`]). The client and the server both import it; it imports neither.

pub mod auth;
pub mod db;
pub mod http;
pub mod k8s_channel;
pub mod kube_status;
pub mod naming;
pub mod upgrade;
pub mod webapi;
