//! asciicast v2 (wire.md §11), the format `asciinema play` and `asciinema cat` read:
//! a JSON header line, then one `[seconds, "o" | "i" | "r", data]` line per event.
//!
//! [`Writer`] writes incrementally: the header goes out with the first event (so it
//! can carry the terminal size kubectl sends first), and every line is whole before
//! the next begins, so a crash leaves a playable prefix. Bytes split inside a UTF-8
//! character are carried over to the next event; bytes that are not UTF-8 become
//! U+FFFD (asciicast events are JSON strings). [`read_header`] and [`parse_event`] read
//! a file back for `recordings ls` and `recordings play`.
//!
//! The event path is the recorder's hot loop (50 MiB of `cat` output is 50 MiB of
//! JSON string): valid UTF-8 is not copied, the string is escaped eight bytes at a
//! time where nothing needs escaping (the same bytes `serde_json` writes), and each
//! line goes to the writer in one call.

use std::io::{self, BufRead, Read, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The size written when the session never said (80x24, a terminal's default).
pub const DEFAULT_SIZE: (u16, u16) = (80, 24);
/// The longest header line [`read_header`] accepts.
const MAX_HEADER: u64 = 1 << 20;

/// Who and what a recording is of: the header's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The session id (also in the file name).
    pub session_id: String,
    /// `exec` or `attach`.
    pub kind: String,
    /// The caller.
    pub user: String,
    /// The caller's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The kube cluster (config name).
    pub cluster: String,
    /// Namespace of the pod.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container, when the request named one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// The command (exec), one element per argument.
    #[serde(default)]
    pub command: Vec<String>,
    /// Whether a terminal was asked for.
    #[serde(default)]
    pub tty: bool,
    /// The WebSocket subprotocol the session spoke.
    #[serde(default)]
    pub protocol: String,
}

/// The header line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always 2.
    pub version: u32,
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
    /// Start, seconds since the Unix epoch.
    pub timestamp: i64,
    /// A one-line description for players.
    #[serde(default)]
    pub title: String,
    /// Our metadata, flattened into the header object.
    #[serde(flatten)]
    pub meta: Meta,
}

/// An event's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Output (`"o"`): stdout and stderr.
    Output,
    /// Input (`"i"`): stdin.
    Input,
}

/// Writes one recording.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    header: Option<Header>,
    /// Incomplete UTF-8 tails of output and input.
    carry: [Vec<u8>; 2],
    /// The line being built.
    line: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// A writer for a session that started at `timestamp` (Unix seconds).
    pub fn new(out: W, timestamp: i64, meta: Meta) -> Writer<W> {
        let title = title(&meta);
        let (width, height) = DEFAULT_SIZE;
        let header = Header { version: 2, width, height, timestamp, title, meta };
        Writer { out, header: Some(header), carry: [Vec::new(), Vec::new()], line: Vec::new() }
    }

    fn header_out(&mut self, size: Option<(u16, u16)>) -> io::Result<bool> {
        let Some(mut h) = self.header.take() else { return Ok(false) };
        if let Some((w, r)) = size {
            (h.width, h.height) = (w, r);
        }
        serde_json::to_writer(&mut self.out, &h)?;
        self.out.write_all(b"\n")?;
        Ok(true)
    }

    /// Replaces the metadata of a header not written yet.
    pub fn set_meta(&mut self, meta: Meta) {
        if let Some(h) = self.header.as_mut() {
            h.title = title(&meta);
            h.meta = meta;
        }
    }

    /// Writes the header now if no event has (a session that produced nothing).
    ///
    /// # Errors
    /// The underlying write error.
    pub fn ensure_header(&mut self) -> io::Result<()> {
        self.header_out(None).map(drop)
    }

    /// Records `data` on `stream` at `at` since the start.
    ///
    /// # Errors
    /// The underlying write error.
    pub fn data(&mut self, at: Duration, stream: Stream, data: &[u8]) -> io::Result<()> {
        self.header_out(None)?;
        let carry = &mut self.carry[stream as usize];
        let text = take_utf8(carry, data);
        let text: &str = &text;
        if text.is_empty() {
            return Ok(());
        }
        let kind = match stream {
            Stream::Output => "o",
            Stream::Input => "i",
        };
        self.line(at, kind, text)
    }

    /// Records a terminal size: the header's size if nothing came before, else an
    /// `"r"` event (`COLSxROWS`).
    ///
    /// # Errors
    /// The underlying write error.
    pub fn resize(&mut self, at: Duration, width: u16, height: u16) -> io::Result<()> {
        if self.header_out(Some((width, height)))? {
            return Ok(());
        }
        self.line(at, "r", &format!("{width}x{height}"))
    }

    /// Records a marker (`"m"`), e.g. the exit status; players skip it.
    ///
    /// # Errors
    /// The underlying write error.
    pub fn marker(&mut self, at: Duration, label: &str) -> io::Result<()> {
        self.header_out(None)?;
        self.line(at, "m", label)
    }

    fn line(&mut self, at: Duration, kind: &str, text: &str) -> io::Result<()> {
        let line = &mut self.line;
        line.clear();
        write!(line, "[{:.6}, \"{kind}\", \"", at.as_secs_f64())?;
        escape_json(line, text);
        line.extend_from_slice(b"\"]\n");
        self.out.write_all(line)?;
        if line.capacity() > 1 << 20 {
            *line = Vec::new(); // an unusually large event: give the memory back
        }
        Ok(())
    }

    /// Flushes the underlying writer.
    ///
    /// # Errors
    /// The underlying write error.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

/// `alice@prod: exec default/web-1 -- sh`.
fn title(m: &Meta) -> String {
    let mut t = format!("{}@{}: {} {}/{}", m.user, m.cluster, m.kind, m.namespace, m.pod);
    if !m.command.is_empty() {
        t.push_str(" -- ");
        t.push_str(&m.command.join(" "));
    }
    t
}

/// Appends `s` as the inside of a JSON string, escaped as `serde_json` does:
/// `\"`, `\\`, `\b \f \n \r \t`, other control characters as `\u00XX`.
fn escape_json(out: &mut Vec<u8>, s: &str) {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    /// The high bit of each byte of `w` (little-endian) that is below 0x20, `"` or
    /// `\`; the lowest bit set marks the first such byte exactly (the borrows of
    /// the subtractions only run upwards).
    fn specials(w: u64) -> u64 {
        let zero = |v: u64| v.wrapping_sub(LOW) & !v & HIGH;
        (w.wrapping_sub(LOW * 0x20) & !w & HIGH)
            | zero(w ^ (LOW * u64::from(b'"')))
            | zero(w ^ (LOW * u64::from(b'\\')))
    }
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    let (mut i, mut start) = (0, 0);
    while i < b.len() {
        if let Some(chunk) = b.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let m = specials(u64::from_le_bytes(w));
            if m == 0 {
                i += 8;
                continue;
            }
            i += (m.trailing_zeros() / 8) as usize;
        } else if b[i] >= 0x20 && b[i] != b'"' && b[i] != b'\\' {
            i += 1;
            continue;
        }
        let c = b[i];
        out.extend_from_slice(&b[start..i]);
        let short = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            _ => 0,
        };
        if short != 0 {
            out.extend_from_slice(&[b'\\', short]);
        } else {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
}

/// `carry` + `data` as text, keeping an incomplete trailing character in `carry`
/// (valid UTF-8 with nothing carried, the common case, is borrowed, not copied).
fn take_utf8<'a>(carry: &mut Vec<u8>, data: &'a [u8]) -> std::borrow::Cow<'a, str> {
    if carry.is_empty() {
        if let Ok(s) = std::str::from_utf8(data) {
            return s.into();
        }
    }
    let joined: std::borrow::Cow<'_, [u8]> = if carry.is_empty() {
        data.into()
    } else {
        let mut v = std::mem::take(carry);
        v.extend_from_slice(data);
        v.into()
    };
    // A character is at most 4 bytes: only the last 3 can be an incomplete start.
    let cut = match std::str::from_utf8(&joined) {
        Ok(_) => joined.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => {
            // Invalid bytes somewhere: look at the tail only.
            let tail_start = joined.len().saturating_sub(3);
            (tail_start..joined.len())
                .find(|&i| {
                    let b = joined[i];
                    b >= 0xc0 && std::str::from_utf8(&joined[i..]).is_err_and(|e| e.error_len().is_none())
                })
                .unwrap_or(joined.len())
        }
    };
    carry.extend_from_slice(&joined[cut..]);
    String::from_utf8_lossy(&joined[..cut]).into_owned().into()
}

/// Reads the header line of a recording.
///
/// # Errors
/// When the first line is missing, too long, or not an asciicast v2 header.
pub fn read_header(r: &mut impl BufRead) -> Result<Header, String> {
    let mut line = String::new();
    Read::take(&mut *r, MAX_HEADER).read_line(&mut line).map_err(|e| format!("cannot read the header: {e}"))?;
    if !line.ends_with('\n') && line.len() as u64 >= MAX_HEADER {
        return Err("the header line is too long".into());
    }
    let h: Header = serde_json::from_str(line.trim_end()).map_err(|e| format!("not an asciicast v2 header: {e}"))?;
    if h.version != 2 {
        return Err(format!("asciicast version {} (only 2 is read)", h.version));
    }
    Ok(h)
}

/// One event read back.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    /// Seconds since the start.
    pub at: f64,
    /// `o`, `i`, `r` or `m`.
    pub kind: String,
    /// The data.
    pub data: String,
}

/// Parses one event line; `None` for a line that is not one (a torn last line).
pub fn parse_event(line: &str) -> Option<EventLine> {
    let (at, kind, data): (f64, String, String) = serde_json::from_str(line).ok()?;
    Some(EventLine { at, kind, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            session_id: "s1".into(),
            kind: "exec".into(),
            user: "alice".into(),
            groups: vec!["dev".into()],
            cluster: "prod".into(),
            namespace: "default".into(),
            pod: "web-1".into(),
            container: String::new(),
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            tty: true,
            protocol: "v5.channel.k8s.io".into(),
        }
    }

    #[test]
    fn writes_a_header_then_events() {
        let mut w = Writer::new(Vec::new(), 1_700_000_000, meta());
        w.resize(Duration::from_millis(1), 120, 40).unwrap();
        w.data(Duration::from_millis(1500), Stream::Output, b"$ ").unwrap();
        w.data(Duration::from_millis(2000), Stream::Input, b"ls\r").unwrap();
        w.resize(Duration::from_millis(2500), 100, 30).unwrap();
        w.data(Duration::from_millis(3000), Stream::Output, "caf\u{e9} \"q\"\n\x1b[0m".as_bytes()).unwrap();
        w.marker(Duration::from_secs(4), "exit 0").unwrap();
        let text = String::from_utf8(w.out).unwrap();
        let mut lines = text.lines();
        let h = read_header(&mut lines.next().unwrap().as_bytes()).unwrap();
        assert_eq!((h.version, h.width, h.height, h.timestamp), (2, 120, 40, 1_700_000_000));
        assert_eq!(h.meta, meta());
        assert_eq!(h.title, "alice@prod: exec default/web-1 -- sh -c echo hi");
        let events: Vec<EventLine> = lines.map(|l| parse_event(l).unwrap()).collect();
        let kinds: Vec<(&str, &str)> = events.iter().map(|e| (e.kind.as_str(), e.data.as_str())).collect();
        assert_eq!(
            kinds,
            [("o", "$ "), ("i", "ls\r"), ("r", "100x30"), ("o", "caf\u{e9} \"q\"\n\x1b[0m"), ("m", "exit 0")]
        );
        assert_eq!(events[0].at, 1.5);
        assert!(text.ends_with("]\n"));
    }

    #[test]
    fn header_defaults_when_output_comes_first() {
        let mut w = Writer::new(Vec::new(), 1, meta());
        w.data(Duration::ZERO, Stream::Output, b"x").unwrap();
        w.resize(Duration::from_secs(1), 10, 5).unwrap();
        let text = String::from_utf8(w.out).unwrap();
        let h = read_header(&mut text.as_bytes()).unwrap();
        assert_eq!((h.width, h.height), DEFAULT_SIZE);
        assert!(text.contains("[1.000000, \"r\", \"10x5\"]"), "{text}");
        let mut w = Writer::new(Vec::new(), 1, meta());
        w.ensure_header().unwrap();
        w.ensure_header().unwrap();
        assert_eq!(String::from_utf8(w.out).unwrap().lines().count(), 1);
    }

    #[test]
    fn utf8_split_across_events_and_invalid_bytes() {
        let mut carry = Vec::new();
        let euro = "\u{20ac}".as_bytes(); // 3 bytes
        assert_eq!(take_utf8(&mut carry, &euro[..1]), "");
        assert_eq!(take_utf8(&mut carry, &euro[1..2]), "");
        assert_eq!(take_utf8(&mut carry, &[euro[2], b'!']), "\u{20ac}!");
        assert!(carry.is_empty());
        assert_eq!(take_utf8(&mut carry, b"a\xffb"), "a\u{fffd}b");
        // Invalid bytes and then an incomplete character at the end.
        assert_eq!(take_utf8(&mut carry, &[b'\xff', b'x', euro[0], euro[1]]), "\u{fffd}x");
        assert_eq!(take_utf8(&mut carry, &euro[2..]), "\u{20ac}");
        let mut w = Writer::new(Vec::new(), 1, meta());
        w.data(Duration::ZERO, Stream::Output, &[0, 7, 0x1b]).unwrap();
        let text = String::from_utf8(w.out).unwrap();
        assert_eq!(parse_event(text.lines().nth(1).unwrap()).unwrap().data, "\0\x07\x1b");
    }

    #[test]
    fn escaping_matches_serde_json() {
        let mut all: String = (0u8..=0x7f).map(char::from).collect();
        all.push_str("caf\u{e9} \u{20ac} \u{1f600} \"q\" back\\slash");
        let long = "0123456789abcdef".repeat(9) + "\n";
        let cases = [
            "",
            "a",
            "plain text that is longer than eight bytes",
            "\"",
            "1234567\"",
            "12345678\\",
            "\x1b[0m\x7f",
            all.as_str(),
            long.as_str(),
        ];
        for s in cases {
            let mut mine = Vec::new();
            escape_json(&mut mine, s);
            let theirs = serde_json::to_string(s).unwrap();
            assert_eq!(String::from_utf8(mine).unwrap(), theirs[1..theirs.len() - 1], "{s:?}");
        }
    }

    #[test]
    fn bad_files() {
        assert!(read_header(&mut &b""[..]).is_err());
        assert!(read_header(&mut &b"{\"version\":1,\"width\":1,\"height\":1}\n"[..]).is_err());
        assert!(read_header(&mut &b"[1.0, \"o\", \"x\"]\n"[..]).is_err());
        assert_eq!(parse_event("[1.0, \"o\", \"tor"), None);
    }
}
