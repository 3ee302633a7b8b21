//! Browser protection for local HTTP listeners (`proxy app`), applied to every
//! request on a connection, not only the first:
//! - DNS rebinding: the request must name the listener by an IP literal or
//!   `localhost`, never by a domain (a web page that rebinds its own domain to
//!   127.0.0.1 would otherwise read the app with the user's identity): 421.
//! - Cross-site requests: an `Origin` that is not the listener itself
//!   (`http://127.0.0.1:PORT`, `http://localhost:PORT`, or the address the request
//!   named), and `Sec-Fetch-Site: cross-site`, are refused: 403. A page elsewhere
//!   may not POST into the app with the user's identity either.
//!
//! [`Framer`] follows request boundaries (`Content-Length`, chunked bodies) so each
//! head is judged; bytes pass through unchanged. Pure: no I/O here.

/// The verdict on a request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// More bytes are needed.
    Partial,
    /// Acceptable: the head is `len` bytes long and its body is framed by `body`.
    Allowed {
        /// Length of the head.
        len: usize,
        /// How the body after it ends.
        body: Body,
    },
    /// Refused.
    Refused(Refusal),
}

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `Content-Length` bytes (0: none).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// An upgrade (WebSocket) or CONNECT: the rest of the connection is not HTTP.
    Tunnel,
}

/// A refused request: the status to answer and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 421 (DNS rebinding), 403 (cross-site, or the proxy refused), 400 (unreadable
    /// request), 401 (the identity expired), or 502 (the proxy cannot be reached).
    pub status: u16,
    /// The sentence for the user.
    pub why: String,
}

impl Refusal {
    fn new(status: u16, why: impl Into<String>) -> Refusal {
        Refusal { status, why: why.into() }
    }
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
        Ok(httparse::Status::Partial) => return Verdict::Refused(Refusal::new(431, "request head larger than 64 KiB")),
        Err(e) => return Verdict::Refused(Refusal::new(400, format!("not an HTTP/1 request ({e})"))),
    };
    let all = |name: &str| -> Vec<String> {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
            .collect()
    };
    let hosts = all("host");
    let [host] = hosts.as_slice() else {
        return Verdict::Refused(Refusal::new(421, "the request must carry exactly one Host header"));
    };
    let host = host.to_ascii_lowercase();
    if let Err(why) = host_allowed(&host, port) {
        return Verdict::Refused(Refusal::new(421, why));
    }
    if let Err(why) = same_site(&all("origin"), &all("sec-fetch-site"), &host, port) {
        return Verdict::Refused(Refusal::new(403, why));
    }
    match body_of(req.method.unwrap_or(""), &all) {
        Ok(body) => Verdict::Allowed { len, body },
        Err(why) => Verdict::Refused(Refusal::new(400, why)),
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

/// The cross-site rule: `Sec-Fetch-Site: cross-site` is refused, and an `Origin`, when
/// sent, must be this listener: `http://` and port `port`, on `localhost`, a
/// loopback address, or the host the request named (`host`, already checked).
fn same_site(origins: &[String], fetch_site: &[String], host: &str, port: u16) -> Result<(), String> {
    if fetch_site.iter().any(|v| v.eq_ignore_ascii_case("cross-site")) {
        return Err(format!(
            "cross-site request refused (Sec-Fetch-Site: cross-site): a page on another site may not use your \
             identity; open http://127.0.0.1:{port}/ yourself"
        ));
    }
    let origin = match origins {
        [] => return Ok(()),
        [one] => one.to_ascii_lowercase(),
        _ => return Err("cross-site request refused: the request carries more than one Origin header".into()),
    };
    let ours = || -> Option<()> {
        let rest = origin.strip_prefix("http://")?;
        let hp = crate::util::addr::HostPort::parse(rest).ok();
        let (name, p) = match hp {
            Some(hp) => (hp.host, hp.port),
            None => (rest.trim_start_matches('[').trim_end_matches(']').to_string(), 80),
        };
        let loopback = name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let named = crate::util::addr::HostPort::parse(host).map(|h| h.host).unwrap_or_else(|_| host.to_string());
        let named = named.trim_start_matches('[').trim_end_matches(']');
        (p == port && (loopback || name == named)).then_some(())
    };
    match ours() {
        Some(()) => Ok(()),
        None => Err(format!(
            "cross-site request refused: Origin {origin:?} is not this listener (http://127.0.0.1:{port}); a page \
             on another site may not use your identity"
        )),
    }
}

/// How the body of a request with `method` and headers `all(name)` ends (RFC 9112
/// §6.3); ambiguous framing, the stuff of request smuggling, is refused.
fn body_of(method: &str, all: &dyn Fn(&str) -> Vec<String>) -> Result<Body, String> {
    let te = all("transfer-encoding");
    let cl = all("content-length");
    let upgrade = !all("upgrade").is_empty()
        && all("connection")
            .iter()
            .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()).collect::<Vec<_>>())
            .any(|t| t == "upgrade");
    if method.eq_ignore_ascii_case("CONNECT") || upgrade {
        return Ok(Body::Tunnel);
    }
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err("the request has both Transfer-Encoding and Content-Length".into());
        }
        let last = te.iter().flat_map(|v| v.split(',')).map(str::trim).next_back().unwrap_or("");
        return if last.eq_ignore_ascii_case("chunked") {
            Ok(Body::Chunked)
        } else {
            Err(format!("the request's Transfer-Encoding {:?} does not end in chunked", te.join(", ")))
        };
    }
    let mut len = None;
    for v in cl.iter().flat_map(|v| v.split(',')).map(str::trim) {
        let n = v
            .parse::<u64>()
            .ok()
            .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("the request's Content-Length {v:?} is not a number"))?;
        if len.is_some_and(|l| l != n) {
            return Err("the request has conflicting Content-Length values".into());
        }
        len = Some(n);
    }
    Ok(Body::Length(len.unwrap_or(0)))
}

/// The answer sent to a refused request.
pub fn refusal(r: &Refusal) -> Vec<u8> {
    let reason = match r.status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        _ => "Refused",
    };
    let body = format!("oneport: {}\n", r.why);
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        r.status,
        body.len()
    )
    .into_bytes()
}

/// Where the framer is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head.
    Head,
    /// This many body bytes left.
    Body(u64),
    /// A chunk-size line.
    ChunkSize,
    /// This many chunk bytes left, then CRLF.
    ChunkData(u64),
    /// The CRLF after a chunk (bytes of it left).
    ChunkEnd(u8),
    /// Trailer lines after the last chunk, up to an empty line.
    Trailers,
    /// Not HTTP any more (after an upgrade or CONNECT).
    Tunnel,
}

/// What one [`Framer::feed`] call decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// Bytes that may go on to the app, in order, unchanged.
    pub forward: Vec<u8>,
    /// A request was refused: nothing from it (or after it) is forwarded.
    pub refused: Option<Refusal>,
}

/// Follows the requests on one client connection and judges each head with
/// [`check`]; see the module docs.
#[derive(Debug)]
pub struct Framer {
    port: u16,
    state: State,
    pending: Vec<u8>,
    allowed: u64,
}

/// The longest chunk-size line or trailer section accepted.
const MAX_CHUNK_LINE: usize = 16 * 1024;

impl Framer {
    /// A framer for a listener on `port`.
    pub fn new(port: u16) -> Framer {
        Framer { port, state: State::Head, pending: Vec::new(), allowed: 0 }
    }

    /// How many request heads have been allowed so far.
    pub fn allowed(&self) -> u64 {
        self.allowed
    }

    /// Takes the next bytes from the client.
    pub fn feed(&mut self, input: &[u8]) -> Fed {
        let mut out = Fed::default();
        self.pending.extend_from_slice(input);
        let mut at = 0;
        let data = std::mem::take(&mut self.pending);
        while at < data.len() {
            let rest = &data[at..];
            match self.state {
                State::Tunnel => {
                    out.forward.extend_from_slice(rest);
                    at = data.len();
                }
                State::Body(n) => {
                    let k = (rest.len() as u64).min(n) as usize;
                    out.forward.extend_from_slice(&rest[..k]);
                    at += k;
                    self.state = if n == k as u64 { State::Head } else { State::Body(n - k as u64) };
                }
                State::ChunkData(n) => {
                    let k = (rest.len() as u64).min(n) as usize;
                    out.forward.extend_from_slice(&rest[..k]);
                    at += k;
                    self.state = if n == k as u64 { State::ChunkEnd(2) } else { State::ChunkData(n - k as u64) };
                }
                State::ChunkEnd(left) => {
                    let want: &[u8] = if left == 2 { b"\r\n" } else { b"\n" };
                    let k = rest.len().min(left as usize);
                    if rest[..k] != want[..k] {
                        out.refused = Some(Refusal::new(400, "a chunk of the request body does not end in CRLF"));
                        return out;
                    }
                    out.forward.extend_from_slice(&rest[..k]);
                    at += k;
                    let left = left - k as u8;
                    self.state = if left == 0 { State::ChunkSize } else { State::ChunkEnd(left) };
                }
                State::ChunkSize | State::Trailers | State::Head => {
                    let step = match self.state {
                        State::Head => self.head(rest),
                        State::ChunkSize => chunk_size(rest),
                        _ => trailers(rest),
                    };
                    match step {
                        Step::More if rest.len() > MAX_HEAD.max(MAX_CHUNK_LINE) => {
                            out.refused = Some(Refusal::new(400, "a request line, chunk size or trailer is too long"));
                            return out;
                        }
                        Step::More => {
                            self.pending = rest.to_vec();
                            return out;
                        }
                        Step::Done(len, next) => {
                            out.forward.extend_from_slice(&rest[..len]);
                            at += len;
                            self.state = next;
                        }
                        Step::Refused(r) => {
                            out.refused = Some(r);
                            return out;
                        }
                    }
                }
            }
        }
        out
    }

    fn head(&mut self, buf: &[u8]) -> Step {
        match check(buf, self.port) {
            Verdict::Partial => Step::More,
            Verdict::Refused(r) => Step::Refused(r),
            Verdict::Allowed { len, body } => {
                self.allowed += 1;
                let next = match body {
                    Body::Length(0) => State::Head,
                    Body::Length(n) => State::Body(n),
                    Body::Chunked => State::ChunkSize,
                    Body::Tunnel => State::Tunnel,
                };
                Step::Done(len, next)
            }
        }
    }
}

enum Step {
    More,
    Done(usize, State),
    Refused(Refusal),
}

fn chunk_size(buf: &[u8]) -> Step {
    match httparse::parse_chunk_size(buf) {
        Ok(httparse::Status::Complete((len, 0))) => Step::Done(len, State::Trailers),
        Ok(httparse::Status::Complete((len, n))) => Step::Done(len, State::ChunkData(n)),
        Ok(httparse::Status::Partial) => Step::More,
        Err(_) => Step::Refused(Refusal::new(400, "a chunk size of the request body is not hexadecimal")),
    }
}

fn trailers(buf: &[u8]) -> Step {
    if buf.starts_with(b"\r\n") {
        return Step::Done(2, State::Head);
    }
    match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => Step::Done(i + 4, State::Head),
        None => Step::More,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str) -> Vec<u8> {
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\nBODY").into_bytes()
    }

    fn refused(v: Verdict) -> Refusal {
        match v {
            Verdict::Refused(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn loopback_names_pass() {
        for h in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST", "10.1.2.3:8080"] {
            let r = req(h);
            assert_eq!(check(&r, 8080), Verdict::Allowed { len: r.len() - 4, body: Body::Length(0) }, "{h}");
        }
    }

    #[test]
    fn domains_other_ports_and_junk_are_refused() {
        for (h, want) in
            [("evil.example:8080", "domain name"), ("127.0.0.1:9999", "another port"), ("attacker.test", "domain")]
        {
            let r = refused(check(&req(h), 8080));
            assert_eq!(r.status, 421);
            assert!(r.why.contains(want), "{}", r.why);
        }
        assert!(refused(check(b"GET / HTTP/1.1\r\n\r\n", 1)).why.contains("exactly one Host"));
        assert!(refused(check(b"\x16\x03\x01garbage\r\n\r\n", 1)).why.contains("not an HTTP/1"));
        assert_eq!(check(b"GET / HTTP/1.1\r\nHost: 127.0.0.1", 1), Verdict::Partial);
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; MAX_HEAD]].concat();
        assert_eq!(refused(check(&huge, 1)).status, 431);
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let with = |extra: &str| format!("POST /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{extra}\r\n").into_bytes();
        for ok in [
            "Origin: http://127.0.0.1:8080\r\n",
            "Origin: http://localhost:8080\r\n",
            "Origin: http://[::1]:8080\r\n",
            "Sec-Fetch-Site: same-origin\r\n",
            "Sec-Fetch-Site: none\r\n",
            "Sec-Fetch-Site: same-site\r\n",
            "",
        ] {
            assert!(matches!(check(&with(ok), 8080), Verdict::Allowed { .. }), "{ok}");
        }
        let r = refused(check(&with("Origin: http://evil.example\r\n"), 8080));
        assert_eq!(r.status, 403);
        assert_eq!(
            r.why,
            "cross-site request refused: Origin \"http://evil.example\" is not this listener (http://127.0.0.1:8080); \
             a page on another site may not use your identity"
        );
        for bad in [
            "Origin: null\r\n",
            "Origin: http://127.0.0.1:9999\r\n",
            "Origin: https://127.0.0.1:8080\r\n",
            "Origin: http://127.0.0.1\r\n",
            "Origin: http://10.0.0.9:8080\r\n",
            "Origin: http://127.0.0.1:8080\r\nOrigin: http://127.0.0.1:8080\r\n",
        ] {
            assert_eq!(refused(check(&with(bad), 8080)).status, 403, "{bad}");
        }
        // The address the request named is its own origin (a --bind-addr listener).
        let lan = b"POST / HTTP/1.1\r\nHost: 10.0.0.9:8080\r\nOrigin: http://10.0.0.9:8080\r\n\r\n";
        assert!(matches!(check(lan, 8080), Verdict::Allowed { .. }));
        let r = refused(check(&with("Sec-Fetch-Site: cross-site\r\n"), 8080));
        assert_eq!(r.status, 403);
        assert_eq!(
            r.why,
            "cross-site request refused (Sec-Fetch-Site: cross-site): a page on another site may not use your \
             identity; open http://127.0.0.1:8080/ yourself"
        );
    }

    #[test]
    fn body_framing() {
        let h = |extra: &str| format!("POST / HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n").into_bytes();
        let body = |extra: &str| match check(&h(extra), 80) {
            Verdict::Allowed { body, .. } => Ok(body),
            Verdict::Refused(r) => Err(r.why),
            Verdict::Partial => panic!("partial"),
        };
        assert_eq!(body("Content-Length: 12\r\n"), Ok(Body::Length(12)));
        assert_eq!(body("Content-Length: 12\r\nContent-Length: 12\r\n"), Ok(Body::Length(12)));
        assert_eq!(body("Transfer-Encoding: gzip, chunked\r\n"), Ok(Body::Chunked));
        assert_eq!(body("Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"), Ok(Body::Tunnel));
        assert!(body("Content-Length: 1\r\nTransfer-Encoding: chunked\r\n").unwrap_err().contains("both"));
        assert!(body("Content-Length: 1\r\nContent-Length: 2\r\n").unwrap_err().contains("conflicting"));
        assert!(body("Content-Length: +1\r\n").unwrap_err().contains("not a number"));
        assert!(body("Transfer-Encoding: chunked, gzip\r\n").unwrap_err().contains("does not end in chunked"));
    }

    #[test]
    fn framer_judges_every_request_on_a_connection() {
        let ok1 = b"POST /a HTTP/1.1\r\nHost: 127.0.0.1:80\r\nContent-Length: 5\r\n\r\nhello";
        let ok2 = b"POST /b HTTP/1.1\r\nHost: 127.0.0.1:80\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n";
        let ok3 = b"GET /c HTTP/1.1\r\nHost: localhost:80\r\n\r\n";
        let bad =
            b"POST /d HTTP/1.1\r\nHost: 127.0.0.1:80\r\nOrigin: http://evil.example\r\nContent-Length: 1\r\n\r\nX";
        let stream = [&ok1[..], ok2, ok3, bad].concat();
        let good_len = ok1.len() + ok2.len() + ok3.len();
        // Whatever the segmentation, exactly the three good requests pass.
        for cut in [1, 2, 3, 7, 64, stream.len()] {
            let mut f = Framer::new(80);
            let mut forwarded = Vec::new();
            let mut refusal = None;
            for piece in stream.chunks(cut) {
                let fed = f.feed(piece);
                forwarded.extend(fed.forward);
                if fed.refused.is_some() {
                    refusal = fed.refused;
                    break;
                }
            }
            assert_eq!(forwarded, &stream[..good_len], "cut {cut}");
            assert_eq!(f.allowed(), 3);
            assert_eq!(refusal.unwrap().status, 403, "cut {cut}");
        }
        // A body that looks like a request head is body, not a request.
        let tricky = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 40\r\n\r\nGET / HTTP/1.1\r\nHost: evil.example\r\n\r\n";
        let mut f = Framer::new(80);
        assert_eq!(f.feed(tricky), Fed { forward: tricky.to_vec(), refused: None });
        // After an upgrade the bytes are not HTTP.
        let ws =
            b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
        let mut f = Framer::new(80);
        assert_eq!(f.feed(ws).forward, ws.to_vec());
        assert_eq!(f.feed(b"\x00\x01garbage").forward, b"\x00\x01garbage".to_vec());
        // A malformed chunked body ends the connection.
        let mut f = Framer::new(80);
        let fed = f.feed(b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert_eq!(fed.refused.unwrap().status, 400);
        let mut f = Framer::new(80);
        let fed = f.feed(b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXY");
        assert_eq!(fed.refused.unwrap().why, "a chunk of the request body does not end in CRLF");
    }

    #[test]
    fn every_prefix_is_partial_until_complete() {
        let r = req("127.0.0.1:80");
        let end = r.len() - 4;
        for cut in 0..end {
            assert_eq!(check(&r[..cut], 80), Verdict::Partial, "cut {cut}");
        }
        assert_eq!(check(&r[..end], 80), Verdict::Allowed { len: end, body: Body::Length(0) });
    }

    #[test]
    fn refusal_answers() {
        let a = String::from_utf8(refusal(&Refusal::new(403, "no"))).unwrap();
        assert!(a.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{a}");
        assert!(a.ends_with("connection: close\r\n\r\noneport: no\n"), "{a}");
    }
}
