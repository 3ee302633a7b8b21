//! Small helpers with no network: `host:port` parsing ([`addr`]), IP networks
//! ([`cidr`]), human durations ([`duration`]), the open-files limit ([`fdlimit`]),
//! private file writes ([`fsutil`]), `%XX` decoding ([`percent`]) and shutdown
//! signals ([`shutdown`]).

pub mod addr;
pub mod cidr;
pub mod duration;
pub mod fdlimit;
pub mod fsutil;
pub mod percent;
pub mod shutdown;
