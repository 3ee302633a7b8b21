//! The HTTP body type both ends answer with: an upstream body streamed through, or a
//! small generated one (a Kubernetes `Status`, an error page); and a plain-text
//! answer written straight onto a byte stream ([`plain_response`]).

use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Bytes;

/// A boxed response body.
pub type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// A complete HTTP/1.1 answer with a plain-text `body`, closing the connection.
pub fn plain_response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Whether `buf` holds a whole request head (up to the empty line).
pub fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_response_is_framed_and_closes() {
        assert_eq!(
            plain_response(502, "Bad Gateway", "app web: down\n"),
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 14\r\n\
              connection: close\r\n\r\napp web: down\n"
                .to_vec()
        );
    }

    #[test]
    fn head_complete_needs_the_empty_line() {
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
}
