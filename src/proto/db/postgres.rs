//! The PostgreSQL wire bits the local proxy and the server's backend need, and
//! nothing else: parsing the messages a client sends before the startup completes
//! (`SSLRequest`, `GSSENCRequest`, `CancelRequest`, `StartupMessage`), encoding the
//! `ErrorResponse` that carries a refusal into the client, and the `SSLRequest` the
//! server sends to a database that wants TLS. Pure: no I/O.
//!
//! Reference: PostgreSQL documentation, "Frontend/Backend Protocol", sections
//! "Start-up", "Canceling Requests in Progress" and "Message Formats".

use std::fmt;

/// `SSLRequest` code: 1234 << 16 | 5679.
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// `GSSENCRequest` code: 1234 << 16 | 5680.
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// `CancelRequest` code: 1234 << 16 | 5678.
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// The major protocol version this proxy relays (3.x; the server negotiates the minor).
pub const PROTOCOL_MAJOR: u16 = 3;
/// The longest startup-phase message accepted: PostgreSQL's own
/// `MAX_STARTUP_PACKET_LENGTH`, so anything the real server would take passes.
pub const MAX_STARTUP_LEN: usize = 10_000;
/// Length of a protocol 3.0 `CancelRequest` (length, code, process id, secret key).
const CANCEL_LEN_MIN: usize = 16;
/// Protocol 3.2 (PostgreSQL 18) allows secret keys of up to 256 bytes.
const CANCEL_LEN_MAX: usize = 12 + 256;

/// The answer to `SSLRequest`/`GSSENCRequest` that means "continue in plaintext".
pub const REFUSE_ENCRYPTION: u8 = b'N';
/// The answer to `SSLRequest` that means "start TLS now".
pub const ACCEPT_SSL: u8 = b'S';

/// SQLSTATE `invalid_authorization_specification`: the user may not use the database.
pub const SQLSTATE_DENIED: &str = "28000";
/// SQLSTATE `invalid_catalog_name`: no such database.
pub const SQLSTATE_UNKNOWN_DB: &str = "3D000";
/// SQLSTATE `connection_failure`: the path to the database failed.
pub const SQLSTATE_CONNECTION_FAILURE: &str = "08006";
/// SQLSTATE `sqlclient_unable_to_establish_sqlconnection`: the proxy could not
/// reach the database.
pub const SQLSTATE_UNABLE_TO_CONNECT: &str = "08001";
/// SQLSTATE `protocol_violation`: the client sent something we cannot relay.
pub const SQLSTATE_PROTOCOL_VIOLATION: &str = "08P01";

/// A message a client sends before the normal protocol starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// Asks for TLS; answered [`REFUSE_ENCRYPTION`] on the local hop.
    SslRequest,
    /// Asks for GSSAPI encryption; answered [`REFUSE_ENCRYPTION`].
    GssEncRequest,
    /// Cancels a running query of another connection (sent on a fresh connection).
    Cancel {
        /// The process id of the backend whose query to cancel.
        pid: u32,
    },
    /// The startup proper: protocol version and parameters (`user`, `database`, ...).
    Startup {
        /// The minor protocol version (the major is always 3).
        minor: u16,
        /// The parameters, in the order sent.
        params: Vec<(String, String)>,
    },
}

impl Startup {
    /// The value of startup parameter `key` (for `Startup` messages).
    pub fn param(&self, key: &str) -> Option<&str> {
        match self {
            Startup::Startup { params, .. } => params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()),
            _ => None,
        }
    }
}

/// Why a startup-phase message cannot be relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupError {
    /// The client began a TLS handshake straight away (`sslnegotiation=direct`).
    DirectTls,
    /// The length field is below the 8-byte minimum or above [`MAX_STARTUP_LEN`].
    BadLength(u32),
    /// A request whose length does not fit its code.
    WrongLength {
        /// The request's name.
        what: &'static str,
        /// The length sent.
        len: usize,
    },
    /// A protocol version other than 3.x.
    UnsupportedProtocol {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// The parameter list is not `key\0value\0 ... \0`.
    BadParameters,
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::DirectTls => f.write_str(
                "the client started TLS directly (sslnegotiation=direct); the local hop is plaintext \
                 (oneport encrypts the rest): connect with sslmode=disable",
            ),
            StartupError::BadLength(n) => write!(
                f,
                "startup message length {n} is outside 8..={MAX_STARTUP_LEN}: the client does not speak the PostgreSQL protocol"
            ),
            StartupError::WrongLength { what, len } => write!(f, "{what} with length {len} is malformed"),
            StartupError::UnsupportedProtocol { major, minor } => {
                write!(f, "unsupported frontend protocol {major}.{minor}: the proxy relays protocol 3.x")
            }
            StartupError::BadParameters => f.write_str("startup parameters are not NUL-terminated key/value pairs"),
        }
    }
}

impl std::error::Error for StartupError {}

/// Parses one startup-phase message from the front of `buf`.
///
/// Returns `Ok(None)` while more bytes are needed, or the message and how many
/// bytes it took. Errors are reported as soon as the bytes seen prove them.
///
/// # Errors
/// A [`StartupError`] saying what is wrong.
pub fn parse(buf: &[u8]) -> Result<Option<(Startup, usize)>, StartupError> {
    // A TLS record starts 0x16 0x03; as a length it would be absurd anyway, but the
    // specific message tells the user what to change.
    if buf.first() == Some(&0x16) {
        return Err(StartupError::DirectTls);
    }
    let Some(len) = read_u32(buf, 0) else { return Ok(None) };
    if len < 8 || len as usize > MAX_STARTUP_LEN {
        return Err(StartupError::BadLength(len));
    }
    let len = len as usize;
    let Some(code) = read_u32(buf, 4) else { return Ok(None) };
    check_length(code, len)?;
    if buf.len() < len {
        return Ok(None);
    }
    let body = &buf[8..len];
    let msg = match code {
        SSL_REQUEST_CODE => Startup::SslRequest,
        GSSENC_REQUEST_CODE => Startup::GssEncRequest,
        CANCEL_REQUEST_CODE => Startup::Cancel { pid: read_u32(body, 0).unwrap_or_default() },
        version => Startup::Startup { minor: (version & 0xffff) as u16, params: parse_params(body)? },
    };
    Ok(Some((msg, len)))
}

/// Checks the length against what the code allows, before the body has arrived.
fn check_length(code: u32, len: usize) -> Result<(), StartupError> {
    let fixed = |what, ok: bool| if ok { Ok(()) } else { Err(StartupError::WrongLength { what, len }) };
    match code {
        SSL_REQUEST_CODE => fixed("SSLRequest", len == 8),
        GSSENC_REQUEST_CODE => fixed("GSSENCRequest", len == 8),
        CANCEL_REQUEST_CODE => fixed("CancelRequest", (CANCEL_LEN_MIN..=CANCEL_LEN_MAX).contains(&len)),
        version => {
            let (major, minor) = ((version >> 16) as u16, (version & 0xffff) as u16);
            if major != PROTOCOL_MAJOR {
                return Err(StartupError::UnsupportedProtocol { major, minor });
            }
            // At least the terminating NUL of the parameter list.
            fixed("StartupMessage", len >= 9)
        }
    }
}

/// Parses `key\0value\0 ... \0`.
fn parse_params(body: &[u8]) -> Result<Vec<(String, String)>, StartupError> {
    let Some((&0, list)) = body.split_last() else { return Err(StartupError::BadParameters) };
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let Some((&0, list)) = list.split_last() else { return Err(StartupError::BadParameters) };
    let parts: Vec<&[u8]> = list.split(|b| *b == 0).collect();
    if parts.len() % 2 != 0 {
        return Err(StartupError::BadParameters);
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(parts.chunks(2).map(|kv| (text(kv[0]), text(kv[1]))).collect())
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The `SSLRequest` a client (here: the server's backend) sends to ask for TLS.
pub fn ssl_request() -> [u8; 8] {
    let mut m = [0u8; 8];
    m[..4].copy_from_slice(&8u32.to_be_bytes());
    m[4..].copy_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
    m
}

/// A `StartupMessage` for protocol 3.0 with `params` (for tests and tools).
pub fn startup_message(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = (u32::from(PROTOCOL_MAJOR) << 16).to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    m.extend(body);
    m
}

/// An `ErrorResponse` with severity FATAL, the SQLSTATE `code` and `message`, as the
/// server would send it in place of the authentication request. The client prints
/// it (`psql: error: ... FATAL:  <message>`) and closes.
pub fn error_response(code: &str, message: &str) -> Vec<u8> {
    // Fields are NUL-terminated strings: a NUL inside would end the field early.
    let clean = |s: &str| s.replace('\0', " ");
    let mut fields = Vec::new();
    for (tag, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', &clean(message))] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut m = vec![b'E'];
    m.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
    m.extend(fields);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(code: u32, extra: &[u8]) -> Vec<u8> {
        let mut m = ((8 + extra.len()) as u32).to_be_bytes().to_vec();
        m.extend_from_slice(&code.to_be_bytes());
        m.extend_from_slice(extra);
        m
    }

    /// Every prefix of `input` shorter than the first message is "need more"; the
    /// whole input parses to `want`, consuming exactly the message.
    fn check_all_prefixes(input: &[u8], want: &Startup, msg_len: usize) {
        for cut in 0..msg_len {
            assert_eq!(parse(&input[..cut]), Ok(None), "prefix of {cut} bytes");
        }
        for end in msg_len..=input.len() {
            assert_eq!(parse(&input[..end]), Ok(Some((want.clone(), msg_len))), "input of {end} bytes");
        }
    }

    #[test]
    fn ssl_and_gssenc_requests() {
        check_all_prefixes(&request(SSL_REQUEST_CODE, &[]), &Startup::SslRequest, 8);
        check_all_prefixes(&request(GSSENC_REQUEST_CODE, &[]), &Startup::GssEncRequest, 8);
        assert_eq!(ssl_request().to_vec(), request(SSL_REQUEST_CODE, &[]));
    }

    #[test]
    fn cancel_request() {
        let mut extra = 4242u32.to_be_bytes().to_vec();
        extra.extend_from_slice(&[9, 9, 9, 9]);
        check_all_prefixes(&request(CANCEL_REQUEST_CODE, &extra), &Startup::Cancel { pid: 4242 }, 16);
        // Protocol 3.2's longer keys pass too.
        let long = [&4242u32.to_be_bytes()[..], &[7u8; 32]].concat();
        assert_eq!(parse(&request(CANCEL_REQUEST_CODE, &long)).unwrap().unwrap().1, 44);
    }

    #[test]
    fn startup_message_with_params() {
        let m = startup_message(&[("user", "postgres"), ("database", "app"), ("application_name", "psql")]);
        let want = Startup::Startup {
            minor: 0,
            params: vec![
                ("user".into(), "postgres".into()),
                ("database".into(), "app".into()),
                ("application_name".into(), "psql".into()),
            ],
        };
        check_all_prefixes(&m, &want, m.len());
        assert_eq!(want.param("database"), Some("app"));
        assert_eq!(want.param("options"), None);
        // An empty parameter list is a single NUL.
        assert_eq!(parse(&startup_message(&[])), Ok(Some((Startup::Startup { minor: 0, params: vec![] }, 9))));
    }

    #[test]
    fn every_split_of_a_negotiation_sequence() {
        // What libpq sends with gssencmode and sslmode "prefer": GSSENC, SSL, startup.
        let startup = startup_message(&[("user", "u")]);
        let stream = [request(GSSENC_REQUEST_CODE, &[]), request(SSL_REQUEST_CODE, &[]), startup.clone()].concat();
        for split in 0..=stream.len() {
            // Feed the bytes in two reads split at `split`, draining parsed messages.
            let mut buf = Vec::new();
            let mut got = Vec::new();
            for chunk in [&stream[..split], &stream[split..]] {
                buf.extend_from_slice(chunk);
                while let Some((msg, n)) = parse(&buf).unwrap() {
                    got.push(msg);
                    buf.drain(..n);
                }
            }
            assert_eq!(got.len(), 3, "split at {split}");
            assert_eq!(got[0], Startup::GssEncRequest);
            assert_eq!(got[1], Startup::SslRequest);
            assert_eq!(got[2].param("user"), Some("u"));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn rejects_bad_input_as_soon_as_it_shows() {
        assert_eq!(parse(&[0, 0, 0, 4]), Err(StartupError::BadLength(4)));
        assert_eq!(parse(&[0, 0, 0x27, 0x11]), Err(StartupError::BadLength(10_001)));
        assert_eq!(parse(&[0xff, 0xff, 0xff, 0xff]), Err(StartupError::BadLength(u32::MAX)));
        assert_eq!(parse(&[0x16, 0x03, 0x01]), Err(StartupError::DirectTls));
        let long_ssl = request(SSL_REQUEST_CODE, &[0; 4]);
        assert_eq!(parse(&long_ssl[..8]), Err(StartupError::WrongLength { what: "SSLRequest", len: 12 }));
        let short_cancel = request(CANCEL_REQUEST_CODE, &[0; 4]);
        assert!(matches!(parse(&short_cancel[..8]), Err(StartupError::WrongLength { what: "CancelRequest", .. })));
        let v2 = request(2 << 16, &[0]);
        assert_eq!(parse(&v2[..8]), Err(StartupError::UnsupportedProtocol { major: 2, minor: 0 }));
        // Parameters: missing terminator, odd count.
        assert_eq!(parse(&request(3 << 16, b"user\0u\0x")), Err(StartupError::BadParameters));
        assert_eq!(parse(&request(3 << 16, b"user\0\0")), Err(StartupError::BadParameters));
        for e in [StartupError::DirectTls, StartupError::BadLength(3)] {
            assert!(!e.to_string().is_empty());
        }
        assert!(StartupError::DirectTls.to_string().contains("sslmode=disable"));
    }

    #[test]
    fn error_response_encoding() {
        let m = error_response(SQLSTATE_DENIED, "access to database pg1 denied for user bob");
        assert_eq!(m[0], b'E');
        let len = u32::from_be_bytes([m[1], m[2], m[3], m[4]]) as usize;
        assert_eq!(len, m.len() - 1, "the length covers itself and the fields, not the type byte");
        let fields: Vec<&[u8]> = m[5..m.len() - 1].split(|b| *b == 0).filter(|f| !f.is_empty()).collect();
        let fields: Vec<(char, String)> =
            fields.iter().map(|f| (f[0] as char, String::from_utf8(f[1..].to_vec()).unwrap())).collect();
        assert_eq!(
            fields,
            vec![
                ('S', "FATAL".into()),
                ('V', "FATAL".into()),
                ('C', "28000".into()),
                ('M', "access to database pg1 denied for user bob".into()),
            ]
        );
        assert_eq!(&m[m.len() - 2..], &[0, 0], "last field's NUL, then the list terminator");
        // A NUL in the message cannot cut the field list short.
        let m = error_response(SQLSTATE_UNKNOWN_DB, "a\0b");
        assert!(m.windows(3).any(|w| w == b"a b"));
    }
}
