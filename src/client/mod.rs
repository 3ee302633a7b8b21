//! Client-side state: the login profile, the resolved context, and the web API client.

pub mod context;
pub mod profile;
pub mod webapi;
