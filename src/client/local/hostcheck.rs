//! DNS-rebinding protection for local HTTP listeners: the first request on a
//! connection must name the listener by an IP literal or `localhost`, never by a
//! domain (a web page that rebinds its own domain to 127.0.0.1 would otherwise read
//! the app with the user's identity). A pure parser over the request head.

/// The verdict on a request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// More bytes are needed.
    Partial,
    /// The Host is acceptable; the head is this many bytes long.
    Allowed(usize),
    /// Refused, with the reason.
    Refused(String),
}

/// The longest request head read before deciding.
pub const MAX_HEAD: usize = 64 * 1024;

/// Judges the request head in `buf` for a listener on `port`.
pub fn check(buf: &[u8], port: u16) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Verdict::Partial,
        Ok(httparse::Status::Partial) => return Verdict::Refused("request head larger than 64 KiB".into()),
        Err(e) => return Verdict::Refused(format!("not an HTTP/1 request ({e})")),
    };
    let hosts: Vec<&[u8]> =
        req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("host")).map(|h| h.value).collect();
    let [host] = hosts.as_slice() else {
        return Verdict::Refused("the request must carry exactly one Host header".into());
    };
    let host = String::from_utf8_lossy(host).trim().to_ascii_lowercase();
    match host_allowed(&host, port) {
        Ok(()) => Verdict::Allowed(len),
        Err(why) => Verdict::Refused(why),
    }
}

fn host_allowed(host: &str, port: u16) -> Result<(), String> {
    let (name, p) = match crate::util::addr::HostPort::parse(host) {
        Ok(hp) => (hp.host, Some(hp.port)),
        Err(_) => (host.trim_start_matches('[').trim_end_matches(']').to_string(), None),
    };
    if p.is_some_and(|p| p != port) {
        return Err(format!("Host {host:?} names another port than this listener's ({port})"));
    }
    if name == "localhost" || name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    Err(format!(
        "Host {host:?} is a domain name; use http://127.0.0.1:{port}/ (requests naming a domain are refused to stop DNS rebinding)"
    ))
}

/// The answer sent to a refused request.
pub fn refusal(why: &str) -> Vec<u8> {
    let body = format!("oneport: {why}\n");
    format!(
        "HTTP/1.1 421 Misdirected Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str) -> Vec<u8> {
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\nBODY").into_bytes()
    }

    #[test]
    fn loopback_names_pass() {
        for h in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST", "10.1.2.3:8080"] {
            let r = req(h);
            assert_eq!(check(&r, 8080), Verdict::Allowed(r.len() - 4), "{h}");
        }
    }

    #[test]
    fn domains_other_ports_and_junk_are_refused() {
        for (h, want) in
            [("evil.example:8080", "domain name"), ("127.0.0.1:9999", "another port"), ("attacker.test", "domain")]
        {
            match check(&req(h), 8080) {
                Verdict::Refused(why) => assert!(why.contains(want), "{why}"),
                other => panic!("{h}: {other:?}"),
            }
        }
        assert!(matches!(check(b"GET / HTTP/1.1\r\n\r\n", 1), Verdict::Refused(w) if w.contains("exactly one Host")));
        assert!(matches!(check(b"\x16\x03\x01garbage\r\n\r\n", 1), Verdict::Refused(w) if w.contains("not an HTTP/1")));
        assert_eq!(check(b"GET / HTTP/1.1\r\nHost: 127.0.0.1", 1), Verdict::Partial);
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; MAX_HEAD]].concat();
        assert!(matches!(check(&huge, 1), Verdict::Refused(_)));
    }

    #[test]
    fn every_prefix_is_partial_until_complete() {
        let r = req("127.0.0.1:80");
        let end = r.len() - 4;
        for cut in 0..end {
            assert_eq!(check(&r[..cut], 80), Verdict::Partial, "cut {cut}");
        }
        assert_eq!(check(&r[..end], 80), Verdict::Allowed(end));
    }
}
