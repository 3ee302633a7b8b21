//! Small helpers with no network: `host:port` parsing ([`addr`]), IP networks
//! ([`cidr`]), human durations ([`duration`]), the open-files limit ([`fdlimit`]),
//! private file writes ([`fsutil`]), `%XX` decoding ([`percent`]), shutdown
//! signals ([`shutdown`]) and UTC timestamps ([`utc`]).

pub mod addr;
pub mod cidr;
pub mod duration;
pub mod fdlimit;
pub mod fsutil;
pub mod percent;
pub mod shutdown;
pub mod utc;
