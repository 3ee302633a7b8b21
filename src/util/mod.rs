//! Small helpers with no network: `host:port` parsing ([`addr`]), human durations
//! ([`duration`]), private file writes ([`fsutil`]) and shutdown signals ([`shutdown`]).

pub mod addr;
pub mod duration;
pub mod fsutil;
pub mod shutdown;
