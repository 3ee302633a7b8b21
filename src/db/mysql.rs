//! The MySQL/MariaDB wire bits the local proxy needs. MySQL is server-first and the
//! proxy relays it untouched; the only thing it ever writes itself is an `ERR`
//! packet in place of the server's greeting when the tunnel is refused, so the
//! client prints the reason (`ERROR 1045 (28000): ...`). Pure: no I/O.
//!
//! Reference: MySQL client/server protocol, "MySQL Packets" and "ERR_Packet".

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

/// An `ERR` packet with sequence id `seq`: `0xff`, the error code, `#` and the
/// five-character SQLSTATE, then the message. Sent with `seq` 0 it takes the place
/// of the server greeting, which clients accept (servers do the same for "host not
/// allowed").
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
        assert_eq!(
            decode(&p),
            (0, 1045, "28000".into(), "access to database my1 denied for user bob".into())
        );
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
        assert_eq!(packet(0, &vec![0; 0x1_0203])[..3], [0x03, 0x02, 0x01]);
    }
}
