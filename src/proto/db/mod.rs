//! Database wire vocabulary both ends share: which protocol a database speaks
//! ([`DbProtocol`]), the Postgres and MySQL codecs ([`postgres`], [`mysql`]) and the
//! first exchanges of a session over any byte stream ([`handshake`]).

pub mod handshake;
pub mod mysql;
pub mod postgres;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::proto::naming;

/// Database wire protocols.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DbProtocol {
    /// PostgreSQL.
    Postgres,
    /// MySQL / MariaDB.
    Mysql,
    /// MongoDB (relayed as is).
    Mongodb,
    /// Redis (relayed as is).
    Redis,
}

impl DbProtocol {
    /// Every protocol, in the order they are listed to users.
    pub const ALL: [DbProtocol; 4] = [DbProtocol::Postgres, DbProtocol::Mysql, DbProtocol::Mongodb, DbProtocol::Redis];

    /// The ALPN family of this protocol.
    pub fn protocol(self) -> naming::Protocol {
        match self {
            DbProtocol::Postgres => naming::Protocol::Postgres,
            DbProtocol::Mysql => naming::Protocol::Mysql,
            DbProtocol::Mongodb => naming::Protocol::Mongodb,
            DbProtocol::Redis => naming::Protocol::Redis,
        }
    }

    /// The protocol's name as the server and the config spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            DbProtocol::Postgres => "postgres",
            DbProtocol::Mysql => "mysql",
            DbProtocol::Mongodb => "mongodb",
            DbProtocol::Redis => "redis",
        }
    }
}

impl std::fmt::Display for DbProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DbProtocol {
    type Err = Error;

    /// Parses a protocol name (`postgres`, `mysql`, `mongodb`, `redis`).
    fn from_str(s: &str) -> Result<DbProtocol, Error> {
        DbProtocol::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            Error::config(format!("unknown database protocol {s:?}: use postgres, mysql, mongodb or redis"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in DbProtocol::ALL {
            assert_eq!(p.as_str().parse::<DbProtocol>().unwrap(), p);
            // The same spelling as the server's config and /webapi/resolve.
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        let e = "oracle".parse::<DbProtocol>().unwrap_err().to_string();
        assert!(e.contains("unknown database protocol \"oracle\""), "{e}");
    }
}
