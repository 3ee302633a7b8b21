//! The client side: the login profiles, one per proxy ([`profile`]), and the context resolved from them
//! and the flags ([`context`]), the one dialer ([`dial`]) with its way through load
//! balancers and HTTPS proxies ([`upgrade`]), the web API client ([`webapi`]), enrollment and renewal over
//! the auth route ([`enroll`]), the kept-warm multiplexed session per resource ([`session`]), and the local
//! listeners for client tools ([`local`]). It never imports the server.

pub mod context;
pub mod dial;
pub mod enroll;
pub mod local;
pub mod profile;
pub mod session;
pub mod upgrade;
pub mod webapi;
