//! `HTTPS_PROXY` / `NO_PROXY` for the outer hop, parsed as curl does: the lower-case
//! variable wins, `NO_PROXY` lists host suffixes, IPs and `*`, optionally with a
//! port. Loopback is not exempted implicitly (curl's behaviour, not Go's).

use crate::util::addr::HostPort;
use crate::util::percent;

/// An HTTP proxy to CONNECT through.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpProxy {
    /// Where the proxy listens.
    pub addr: HostPort,
    /// Basic credentials from the URL, percent-decoded.
    pub auth: Option<(String, String)>,
}

impl std::fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProxy").field("addr", &self.addr).field("auth", &self.auth.as_ref().map(|_| "***")).finish()
    }
}

/// The proxy to use for `target`, reading variables through `var`.
///
/// # Errors
/// When `HTTPS_PROXY` is set but not a usable `http://` URL.
pub fn proxy_for(target: &HostPort, var: impl Fn(&str) -> Option<String>) -> Result<Option<HttpProxy>, String> {
    let get = |names: [&str; 2]| names.iter().find_map(|n| var(n).filter(|v| !v.trim().is_empty()));
    let Some(url) = get(["https_proxy", "HTTPS_PROXY"]) else {
        return Ok(None);
    };
    if let Some(no) = get(["no_proxy", "NO_PROXY"]) {
        if no_proxy_matches(&no, target) {
            return Ok(None);
        }
    }
    parse_proxy_url(&url).map(Some)
}

/// Parses `http://[user:pass@]host[:port]` (default port 1080, as curl).
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_proxy_url(url: &str) -> Result<HttpProxy, String> {
    let url = url.trim();
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            let shown = redacted(url);
            return Err(format!("HTTPS_PROXY {shown:?}: only http:// proxies are supported, not {scheme}://"));
        }
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((creds, hp)) => {
            let (u, p) = creds.split_once(':').unwrap_or((creds, ""));
            (Some((percent::decode(u), percent::decode(p))), hp)
        }
        None => (None, rest),
    };
    let addr = HostPort::parse_with_default(hostport, 1080).map_err(|e| format!("HTTPS_PROXY: {e}"))?;
    Ok(HttpProxy { addr, auth })
}

/// The URL with any credentials replaced by `***`, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &url[..s + 3], &url[at + 1..]),
        (None, Some(at)) => format!("***@{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Whether `NO_PROXY` exempts `target`.
pub fn no_proxy_matches(no_proxy: &str, target: &HostPort) -> bool {
    let host = target.host.to_ascii_lowercase();
    no_proxy.split(',').map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let (pattern, port) = match HostPort::parse(entry) {
            Ok(hp) if !entry.starts_with('.') || entry.contains(':') => (hp.host, Some(hp.port)),
            _ => (entry.trim_start_matches('[').trim_end_matches(']').to_string(), None),
        };
        if port.is_some_and(|p| p != target.port) {
            return false;
        }
        let pattern = pattern.to_ascii_lowercase();
        let bare = pattern.trim_start_matches("*.").trim_start_matches('.');
        host == bare || host.ends_with(&format!(".{bare}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn hp(s: &str) -> HostPort {
        HostPort::parse(s).unwrap()
    }

    #[test]
    fn picks_proxy_and_auth() {
        let p = proxy_for(&hp("proxy.example.com:443"), env(&[("HTTPS_PROXY", "http://u%40x:p%3Aw@squid:3128")]))
            .unwrap()
            .unwrap();
        assert_eq!(p.addr, hp("squid:3128"));
        assert_eq!(p.auth, Some(("u@x".into(), "p:w".into())));
        assert!(!format!("{p:?}").contains("p:w"), "credentials must not be printed");
        let p = proxy_for(&hp("a:1"), env(&[("https_proxy", "squid"), ("HTTPS_PROXY", "other:1")])).unwrap().unwrap();
        assert_eq!(p.addr, hp("squid:1080"), "lower case wins; curl's default port");
        assert_eq!(proxy_for(&hp("a:1"), env(&[])).unwrap(), None);
    }

    #[test]
    fn no_proxy_rules() {
        let t = hp("db.corp.example.com:443");
        assert!(no_proxy_matches("*", &t));
        assert!(no_proxy_matches("example.com", &t));
        assert!(no_proxy_matches(".corp.example.com", &t));
        assert!(no_proxy_matches("foo, db.corp.example.com:443", &t));
        assert!(!no_proxy_matches("db.corp.example.com:80", &t));
        assert!(!no_proxy_matches("ample.com", &t));
        assert!(no_proxy_matches("127.0.0.1", &hp("127.0.0.1:3080")));
        let e = env(&[("HTTPS_PROXY", "http://squid:3128"), ("NO_PROXY", "example.com")]);
        assert_eq!(proxy_for(&t, e).unwrap(), None);
    }

    #[test]
    fn rejects_unsupported_urls() {
        assert!(parse_proxy_url("https://squid:3128").unwrap_err().contains("only http://"));
        assert!(parse_proxy_url("socks5://squid:1080").is_err());
        assert!(parse_proxy_url("http://:3128").is_err());
        let err = parse_proxy_url("https://user:secret@squid:3128").unwrap_err();
        assert!(!err.contains("secret") && err.contains("***@squid"), "{err}");
        // Percent signs before multi-byte characters must not panic.
        let p = parse_proxy_url("http://u%a\u{e9}%zz%4@squid:1").unwrap();
        assert_eq!(p.auth.unwrap().0, "u%a\u{e9}%zz%4");
    }
}
