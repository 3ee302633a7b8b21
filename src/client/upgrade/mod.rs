//! The client's way through layer 7 load balancers (docs/protocol.md §7-8): whether an
//! upgrade is needed ([`detect`]), `HTTPS_PROXY` for the outer hop ([`proxy_env`]),
//! and the outer hop's HTTP exchanges: CONNECT and the WebSocket or legacy upgrade
//! ([`http`]). The names both ends use are in [`crate::proto::upgrade`].

pub mod detect;
pub mod http;
pub mod proxy_env;
