//! `host:port` parsing for flags and configs (IPv6 in brackets), a pure parser.

use std::fmt;

/// A host and port as a user wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HostPort {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port`, `[v6]:port`.
    ///
    /// # Errors
    /// A message saying what is missing.
    pub fn parse(s: &str) -> Result<HostPort, String> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest.split_once(']').ok_or_else(|| format!("{s:?}: missing ']'"))?;
            (h, p.strip_prefix(':').ok_or_else(|| format!("{s:?}: expected host:port"))?)
        } else {
            s.rsplit_once(':').ok_or_else(|| format!("{s:?}: expected host:port"))?
        };
        if host.is_empty() {
            return Err(format!("{s:?}: empty host"));
        }
        if host.contains(':') && !s.starts_with('[') {
            return Err(format!("{s:?}: put IPv6 addresses in brackets, [::1]:3080"));
        }
        let port = port.parse::<u16>().map_err(|_| format!("{s:?}: port must be a number from 1 to 65535"))?;
        if port == 0 {
            return Err(format!("{s:?}: port must be a number from 1 to 65535"));
        }
        Ok(HostPort { host: host.to_string(), port })
    }

    /// Parses `host[:port]`, using `default_port` when none is given.
    ///
    /// # Errors
    /// As [`HostPort::parse`].
    pub fn parse_with_default(s: &str, default_port: u16) -> Result<HostPort, String> {
        let has_port = if s.starts_with('[') { s.contains("]:") } else { s.contains(':') };
        if has_port {
            HostPort::parse(s)
        } else {
            HostPort::parse(&format!("{s}:{default_port}"))
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl std::str::FromStr for HostPort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        HostPort::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(HostPort::parse("a.b:443").unwrap(), HostPort { host: "a.b".into(), port: 443 });
        assert_eq!(HostPort::parse("[::1]:80").unwrap().host, "::1");
        assert_eq!(HostPort::parse("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert_eq!(HostPort::parse_with_default("a.b", 3080).unwrap().port, 3080);
        assert_eq!(HostPort::parse_with_default("[::1]", 22).unwrap().port, 22);
    }

    #[test]
    fn rejects() {
        assert!(HostPort::parse("a.b").unwrap_err().contains("host:port"));
        assert!(HostPort::parse(":80").unwrap_err().contains("empty host"));
        assert!(HostPort::parse("a:0").is_err());
        assert!(HostPort::parse("a:99999").is_err());
        assert!(HostPort::parse("::1:80").unwrap_err().contains("brackets"));
    }
}
