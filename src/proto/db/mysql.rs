//! The MySQL/MariaDB wire bits the local proxy needs. MySQL is server-first and the
//! proxy relays it untouched. When the tunnel is refused before the server said
//! anything, the proxy plays a server just long enough to refuse: a greeting, the
//! client's handshake response (read and dropped), then an `ERR` packet, so the
//! client prints the reason as `ERROR 1045 (28000): ...`. Pure: no I/O.
//!
//! Why not an `ERR` in place of the greeting: before a greeting no capabilities are
//! agreed, so clients ignore the SQLSTATE (Oracle's prints `(HY000): #28000...`),
//! and MariaDB's, which prefers TLS by default, wraps any error that arrives before
//! TLS as "authenticity cannot be verified". After a greeting without the SSL
//! capability, both print the error as a server's.
//!
//! Reference: MySQL client/server protocol, "MySQL Packets", "Protocol::HandshakeV10"
//! and "ERR_Packet".

/// `ER_ACCESS_DENIED_ERROR`: the user may not use the database.
pub const ER_ACCESS_DENIED: u16 = 1045;
/// `ER_BAD_DB_ERROR`: no such database.
pub const ER_BAD_DB: u16 = 1049;
/// `ER_UNKNOWN_ERROR`: anything else on the path to the database.
pub const ER_UNKNOWN: u16 = 1105;
/// SQLSTATE of [`ER_ACCESS_DENIED`].
pub const SQLSTATE_DENIED: &str = "28000";
/// SQLSTATE of [`ER_BAD_DB`].
pub const SQLSTATE_BAD_DB: &str = "42000";
/// SQLSTATE of [`ER_UNKNOWN`].
pub const SQLSTATE_GENERAL: &str = "HY000";

/// The largest handshake response the refusal reads (real ones are under 1 KiB).
pub const MAX_HANDSHAKE_RESPONSE: usize = 64 * 1024;

const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
/// What the refusal greeting offers. Not `CLIENT_SSL`: the local hop is plaintext,
/// and a client that merely prefers TLS then goes on without it.
const GREETING_CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH;
/// The version the refusal greeting shows.
const GREETING_VERSION: &str = "5.7.0-oneport";
const AUTH_PLUGIN: &str = "mysql_native_password";

/// The largest payload one packet carries (a 3-byte length).
const MAX_PAYLOAD: usize = 0xff_ffff;
/// Messages are cut to this many bytes; clients print them on one line.
const MAX_MESSAGE: usize = 1024;

/// One packet: 3-byte little-endian payload length, sequence id, payload.
///
/// # Panics
/// Never for payloads built here; a payload over 16 MiB is a bug in the caller.
pub fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= MAX_PAYLOAD, "a single MySQL packet holds at most 16 MiB - 1");
    let len = (payload.len() as u32).to_le_bytes();
    let mut p = vec![len[0], len[1], len[2], seq];
    p.extend_from_slice(payload);
    p
}

/// Reads a packet header: (payload length, sequence id).
pub fn header(h: [u8; 4]) -> (usize, u8) {
    (u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize, h[3])
}

/// A `HandshakeV10` greeting (sequence id 0) with a 20-byte auth `scramble`, which
/// must hold no NUL byte (part of it is sent NUL-terminated).
pub fn greeting(scramble: &[u8; 20]) -> Vec<u8> {
    let caps = GREETING_CAPABILITIES.to_le_bytes();
    let mut p = vec![10]; // protocol version
    p.extend_from_slice(GREETING_VERSION.as_bytes());
    p.push(0);
    p.extend_from_slice(&0u32.to_le_bytes()); // connection id
    p.extend_from_slice(&scramble[..8]);
    p.push(0); // filler
    p.extend_from_slice(&caps[..2]);
    p.push(0x21); // utf8_general_ci
    p.extend_from_slice(&0x0002u16.to_le_bytes()); // SERVER_STATUS_AUTOCOMMIT
    p.extend_from_slice(&caps[2..]);
    p.push(21); // length of the whole scramble, with its NUL
    p.extend_from_slice(&[0; 10]); // reserved
    p.extend_from_slice(&scramble[8..]);
    p.push(0);
    p.extend_from_slice(AUTH_PLUGIN.as_bytes());
    p.push(0);
    packet(0, &p)
}

/// An `ERR` packet with sequence id `seq`: `0xff`, the error code, `#` and the
/// five-character SQLSTATE, then the message. The SQLSTATE is only read by
/// clients once the 4.1 protocol is agreed, i.e. after a greeting.
pub fn err_packet(seq: u8, code: u16, sqlstate: &str, message: &str) -> Vec<u8> {
    let mut payload = vec![0xff];
    payload.extend_from_slice(&code.to_le_bytes());
    payload.push(b'#');
    // Exactly five characters, as the format demands.
    let state: Vec<u8> = sqlstate.bytes().chain(std::iter::repeat(b'0')).take(5).collect();
    payload.extend_from_slice(&state);
    payload.extend_from_slice(truncate(message, MAX_MESSAGE).as_bytes());
    packet(seq, &payload)
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes an ERR packet the way clients do: (seq, code, sqlstate, message).
    fn decode(p: &[u8]) -> (u8, u16, String, String) {
        let len = u32::from_le_bytes([p[0], p[1], p[2], 0]) as usize;
        assert_eq!(len, p.len() - 4, "length field covers the payload only");
        let payload = &p[4..];
        assert_eq!(payload[0], 0xff);
        assert_eq!(payload[3], b'#');
        let state = String::from_utf8(payload[4..9].to_vec()).unwrap();
        (p[3], u16::from_le_bytes([payload[1], payload[2]]), state, String::from_utf8(payload[9..].to_vec()).unwrap())
    }

    #[test]
    fn err_packet_encoding() {
        let p = err_packet(0, ER_ACCESS_DENIED, SQLSTATE_DENIED, "access to database my1 denied for user bob");
        assert_eq!(&p[..4], &[51, 0, 0, 0], "1 + 2 + 1 + 5 + 42 payload bytes, sequence 0");
        assert_eq!(&p[4..7], &[0xff, 0x15, 0x04], "0xff then 1045 little-endian");
        assert_eq!(decode(&p), (0, 1045, "28000".into(), "access to database my1 denied for user bob".into()));
        assert_eq!(decode(&err_packet(2, ER_BAD_DB, SQLSTATE_BAD_DB, "x")), (2, 1049, "42000".into(), "x".into()));
        // A short SQLSTATE is padded, a long one cut: the field is always five bytes.
        assert_eq!(decode(&err_packet(0, ER_UNKNOWN, "HY", "m")).2, "HY000");
        assert_eq!(decode(&err_packet(0, ER_UNKNOWN, "HY0001", "m")).2, "HY000");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let msg = "é".repeat(MAX_MESSAGE);
        let (_, _, _, got) = decode(&err_packet(0, ER_UNKNOWN, SQLSTATE_GENERAL, &msg));
        assert!(got.len() <= MAX_MESSAGE && got.len() >= MAX_MESSAGE - 1);
        assert!(msg.starts_with(&got));
    }

    #[test]
    fn packet_header() {
        let p = packet(7, &[1, 2, 3]);
        assert_eq!(p, vec![3, 0, 0, 7, 1, 2, 3]);
        assert_eq!(header([3, 0, 0, 7]), (3, 7));
        let big = packet(1, &vec![0; 0x1_0203]);
        assert_eq!(big[..4], [0x03, 0x02, 0x01, 1]);
        assert_eq!(header([big[0], big[1], big[2], big[3]]), (0x1_0203, 1));
    }

    /// Walks a greeting field by field, as a client parses it.
    #[test]
    fn greeting_layout() {
        let scramble = *b"abcdefghijklmnopqrst";
        let g = greeting(&scramble);
        assert_eq!(header([g[0], g[1], g[2], g[3]]), (g.len() - 4, 0));
        let p = &g[4..];
        assert_eq!(p[0], 10, "protocol version");
        let nul = p.iter().position(|b| *b == 0).unwrap();
        assert_eq!(&p[1..nul], GREETING_VERSION.as_bytes());
        let mut at = nul + 1 + 4; // version's NUL, connection id
        assert_eq!(&p[at..at + 8], b"abcdefgh");
        at += 8;
        assert_eq!(p[at], 0, "filler");
        let caps_lo = u16::from_le_bytes([p[at + 1], p[at + 2]]) as u32;
        at += 3;
        assert_eq!(p[at], 0x21, "charset");
        at += 3; // charset, status
        let caps = caps_lo | (u16::from_le_bytes([p[at], p[at + 1]]) as u32) << 16;
        assert_eq!(caps, GREETING_CAPABILITIES);
        assert_eq!(caps & 0x800, 0, "no CLIENT_SSL: the local hop is plaintext");
        assert_ne!(caps & CLIENT_PROTOCOL_41, 0, "4.1 protocol: clients then read the SQLSTATE");
        at += 2;
        assert_eq!(p[at], 21, "scramble length");
        at += 11;
        assert_eq!(&p[at..at + 12], b"ijklmnopqrst");
        assert_eq!(p[at + 12], 0);
        assert_eq!(&p[at + 13..], b"mysql_native_password\0");
    }
}
