//! Passive reading of Kubernetes exec/attach streams over WebSocket (wire.md §11):
//! a WebSocket frame parser that watches a relayed byte stream without changing it
//! ([`FrameParser`]), and the channel demultiplexer of `v5.channel.k8s.io`,
//! `v4.channel.k8s.io` and the base64 variants `v4.base64.channel.k8s.io` and
//! `base64.channel.k8s.io` on top of it ([`ChannelDecoder`]).
//!
//! Memory is bounded whatever the peer sends: payloads are handed on in the pieces
//! they arrived in (never buffered whole), and only the small JSON messages of the
//! error (3) and resize (4) channels are collected, up to [`MAX_CONTROL_MESSAGE`].
//! Frames from the client are masked (RFC 6455 §5.3); the parser unmasks a copy.
//! In the base64 variants a message is the channel as an ASCII digit (`'1'`), then
//! the data in standard base64; it is decoded piece by piece too (a quad split
//! across pieces waits for its end).

use base64::Engine;

/// The subprotocols whose framing [`ChannelDecoder`] understands.
pub const PARSED_PROTOCOLS: [&str; 4] =
    ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "base64.channel.k8s.io"];

/// The largest error or resize message kept (they are a few hundred bytes).
pub const MAX_CONTROL_MESSAGE: usize = 64 * 1024;

/// Channel numbers.
pub mod channel {
    /// Standard input (client to server).
    pub const STDIN: u8 = 0;
    /// Standard output.
    pub const STDOUT: u8 = 1;
    /// Standard error.
    pub const STDERR: u8 = 2;
    /// The error channel: a JSON `Status` carrying the exit status.
    pub const ERROR: u8 = 3;
    /// Terminal size, `{"Width":..,"Height":..}`.
    pub const RESIZE: u8 = 4;
    /// v5 only: close the channel named by the next byte.
    pub const CLOSE: u8 = 255;
}

/// WebSocket opcodes we tell apart.
mod opcode {
    pub(super) const CONTINUATION: u8 = 0;
    pub(super) const TEXT: u8 = 1;
    pub(super) const BINARY: u8 = 2;
    pub(super) const CLOSE: u8 = 8;
}

/// What the frame parser reports, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A frame header: `fin`, its opcode and payload length.
    Start {
        /// Last frame of its message.
        fin: bool,
        /// RFC 6455 opcode.
        opcode: u8,
        /// Payload length.
        len: u64,
    },
    /// A piece of the current frame's payload, unmasked.
    Payload(&'a [u8]),
    /// The current frame is complete.
    End,
}

/// The stream is not WebSocket as we can read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Reserved bits set: an extension (compression) we did not negotiate.
    #[error("a WebSocket frame uses an extension (reserved bits set), which cannot be read")]
    Extension,
    /// A length the protocol forbids.
    #[error("a WebSocket frame has an invalid length")]
    Length,
    /// Masking that does not fit the direction.
    #[error("a WebSocket frame is {0} where it must not be")]
    Masking(&'static str),
    /// Continuation without a message, or a new message inside one.
    #[error("WebSocket fragments are out of order")]
    Fragments,
    /// A base64-protocol message that is not a channel digit and base64 text.
    #[error("a base64 channel message is not a channel digit followed by base64 text")]
    Base64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Collecting header bytes (2 to 14).
    Header,
    /// Inside a payload: bytes left, and where in the mask we are.
    Payload { left: u64, mask: Option<[u8; 4]>, offset: usize },
}

/// A streaming WebSocket frame parser for one direction of a connection.
#[derive(Debug)]
pub struct FrameParser {
    /// Frames in this direction are masked (client to server).
    masked: bool,
    state: State,
    header: [u8; 14],
    have: usize,
    scratch: Vec<u8>,
    /// Inside a fragmented data message.
    in_message: bool,
}

impl FrameParser {
    /// A parser for frames sent by the client (`masked`) or by the server.
    pub fn new(masked: bool) -> FrameParser {
        FrameParser { masked, state: State::Header, header: [0; 14], have: 0, scratch: Vec::new(), in_message: false }
    }

    /// Whether the bytes seen so far end exactly where a data message ends (no frame
    /// and no fragmented message open): a point where a new message may be put.
    pub fn at_message_boundary(&self) -> bool {
        matches!(self.state, State::Header) && self.have == 0 && !self.in_message
    }

    /// Reads `data`, calling `on` for each event. With `stop_at_boundary`, returns as
    /// soon as a data message has ended; the count says how many bytes were consumed
    /// (all of them otherwise).
    ///
    /// # Errors
    /// [`ParseError`] when the bytes are not a WebSocket stream we can read; the
    /// parser should not be fed again.
    pub fn feed(
        &mut self,
        data: &[u8],
        stop_at_boundary: bool,
        on: &mut dyn FnMut(Frame<'_>),
    ) -> Result<usize, ParseError> {
        let mut at = 0;
        while at < data.len() {
            match self.state {
                State::Header => {
                    let need = self.header_len();
                    let take = (need - self.have).min(data.len() - at);
                    self.header[self.have..self.have + take].copy_from_slice(&data[at..at + take]);
                    self.have += take;
                    at += take;
                    if self.have == 2 || self.have == need {
                        // The length bytes may say that more header follows.
                        if self.have < self.header_len() {
                            continue;
                        }
                        self.start_frame(on)?;
                        if stop_at_boundary && self.at_message_boundary() {
                            return Ok(at);
                        }
                    }
                }
                State::Payload { left, mask, offset } => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len() - at);
                    let piece = &data[at..at + take];
                    match mask {
                        Some(key) => {
                            unmask_into(&mut self.scratch, piece, key, offset);
                            on(Frame::Payload(&self.scratch));
                        }
                        None => on(Frame::Payload(piece)),
                    }
                    at += take;
                    let left = left - take as u64;
                    if left == 0 {
                        self.state = State::Header;
                        on(Frame::End);
                        if stop_at_boundary && self.at_message_boundary() {
                            return Ok(at);
                        }
                    } else {
                        self.state = State::Payload { left, mask, offset: (offset + take) % 4 };
                    }
                }
            }
        }
        Ok(at)
    }

    /// The header length the bytes so far call for.
    fn header_len(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        let ext = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + mask
    }

    fn start_frame(&mut self, on: &mut dyn FnMut(Frame<'_>)) -> Result<(), ParseError> {
        let h = &self.header;
        let fin = h[0] & 0x80 != 0;
        if h[0] & 0x70 != 0 {
            return Err(ParseError::Extension);
        }
        let op = h[0] & 0x0f;
        let masked = h[1] & 0x80 != 0;
        if masked != self.masked {
            return Err(ParseError::Masking(if masked { "masked" } else { "unmasked" }));
        }
        let (len, rest) = match h[1] & 0x7f {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&h[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(ParseError::Length);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        let control = op >= 8;
        if control && (len > 125 || !fin) {
            return Err(ParseError::Length);
        }
        if !control {
            match (op == opcode::CONTINUATION, self.in_message) {
                (true, false) | (false, true) => return Err(ParseError::Fragments),
                _ => {}
            }
            self.in_message = !fin;
        }
        let mask = masked.then(|| [h[rest], h[rest + 1], h[rest + 2], h[rest + 3]]);
        self.have = 0;
        on(Frame::Start { fin, opcode: op, len });
        if len == 0 {
            on(Frame::End);
        } else {
            self.state = State::Payload { left: len, mask, offset: 0 };
        }
        Ok(())
    }
}

/// What one direction of an exec or attach stream carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Bytes on channel 0, 1 or 2 (a message may come in several pieces).
    Data {
        /// The channel.
        channel: u8,
        /// The bytes.
        data: &'a [u8],
    },
    /// A whole message on the error channel (a JSON `Status`).
    Status(&'a [u8]),
    /// A terminal size.
    Resize {
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
    /// v5: the peer closed a channel.
    CloseChannel(u8),
    /// A WebSocket close frame.
    Closed,
}

/// Turns one direction's frames into channel events.
#[derive(Debug)]
pub struct ChannelDecoder {
    frames: FrameParser,
    v5: bool,
    /// Channel of the message being read; `None` until its first payload byte.
    current: Option<u8>,
    /// In a data message (as opposed to a control frame, or between messages).
    in_data: bool,
    /// The frame being read is a close frame.
    in_close: bool,
    /// The frame being read ends its message.
    fin: bool,
    /// Collected bytes of an error, resize or close message.
    small: Vec<u8>,
    /// The base64 variants: the decoder of the current message.
    base64: Option<Base64>,
}

/// Piecewise decoding of one message's base64 text.
#[derive(Debug, Default)]
struct Base64 {
    /// The start of a quad that the next piece completes.
    carry: [u8; 4],
    have: usize,
    /// The decoded bytes of the last piece.
    out: Vec<u8>,
}

impl Base64 {
    /// Decodes `text` after what came before in this message.
    fn decode(&mut self, mut text: &[u8]) -> Result<&[u8], ParseError> {
        let engine = &base64::engine::general_purpose::STANDARD;
        self.out.clear();
        if self.have > 0 {
            let take = (4 - self.have).min(text.len());
            self.carry[self.have..self.have + take].copy_from_slice(&text[..take]);
            self.have += take;
            text = &text[take..];
            if self.have < 4 {
                return Ok(&self.out);
            }
            engine.decode_vec(self.carry, &mut self.out).map_err(|_| ParseError::Base64)?;
            self.have = 0;
        }
        let whole = text.len() / 4 * 4;
        engine.decode_vec(&text[..whole], &mut self.out).map_err(|_| ParseError::Base64)?;
        let rest = &text[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.have = rest.len();
        Ok(&self.out)
    }
}

impl ChannelDecoder {
    /// A decoder for `protocol` (one of [`PARSED_PROTOCOLS`]); `from_client` says
    /// which direction (the client's frames are masked). `None` for a protocol whose
    /// framing this module does not read.
    pub fn new(protocol: &str, from_client: bool) -> Option<ChannelDecoder> {
        let (v5, base64) = match protocol {
            "v5.channel.k8s.io" => (true, false),
            "v4.channel.k8s.io" => (false, false),
            "v4.base64.channel.k8s.io" | "base64.channel.k8s.io" => (false, true),
            _ => return None,
        };
        Some(ChannelDecoder {
            frames: FrameParser::new(from_client),
            v5,
            current: None,
            in_data: false,
            in_close: false,
            fin: false,
            small: Vec::new(),
            base64: base64.then(Base64::default),
        })
    }

    /// See [`FrameParser::at_message_boundary`].
    pub fn at_message_boundary(&self) -> bool {
        self.frames.at_message_boundary()
    }

    /// Reads `data` (see [`FrameParser::feed`] for `stop_at_boundary`), calling `on`
    /// for each event.
    ///
    /// # Errors
    /// [`ParseError`] from the frame layer.
    pub fn feed(
        &mut self,
        data: &[u8],
        stop_at_boundary: bool,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<usize, ParseError> {
        let v5 = self.v5;
        let (current, in_data, in_close, fin_frame, small, base64) = (
            &mut self.current,
            &mut self.in_data,
            &mut self.in_close,
            &mut self.fin,
            &mut self.small,
            &mut self.base64,
        );
        let mut bad = None;
        let used = self.frames.feed(data, stop_at_boundary, &mut |f| match f {
            _ if bad.is_some() => {}
            Frame::Start { opcode: op, fin, .. } => {
                if op == opcode::TEXT || op == opcode::BINARY {
                    *current = None;
                    small.clear();
                    if let Some(b) = base64.as_mut() {
                        b.have = 0;
                    }
                }
                *in_data = op < 8;
                *in_close = op == opcode::CLOSE;
                *fin_frame = fin;
            }
            Frame::Payload(mut p) => {
                if !*in_data {
                    return;
                }
                if current.is_none() {
                    let Some((&c, rest)) = p.split_first() else { return };
                    let c = match base64 {
                        None => c,
                        Some(_) if c.is_ascii_digit() => c - b'0',
                        Some(_) => {
                            bad = Some(ParseError::Base64);
                            return;
                        }
                    };
                    *current = Some(c);
                    p = rest;
                }
                if let Some(b) = base64.as_mut() {
                    match b.decode(p) {
                        Ok(d) => p = d,
                        Err(e) => {
                            bad = Some(e);
                            return;
                        }
                    }
                }
                match *current {
                    Some(channel::STDIN | channel::STDOUT | channel::STDERR) if p.is_empty() => {}
                    Some(c @ (channel::STDIN | channel::STDOUT | channel::STDERR)) => {
                        on(Event::Data { channel: c, data: p });
                    }
                    Some(_) => {
                        let room = MAX_CONTROL_MESSAGE.saturating_sub(small.len());
                        small.extend_from_slice(&p[..p.len().min(room)]);
                    }
                    None => {}
                }
            }
            Frame::End => {
                if *in_close {
                    *in_close = false;
                    on(Event::Closed);
                    return;
                }
                if !*in_data {
                    return;
                }
                *in_data = false;
                if *fin_frame {
                    if base64.as_ref().is_some_and(|b| b.have > 0) {
                        bad = Some(ParseError::Base64);
                        return;
                    }
                    if let Some(c) = current.take() {
                        finish(c, v5, small, on);
                    }
                    small.clear();
                }
            }
        })?;
        match bad {
            Some(e) => Err(e),
            None => Ok(used),
        }
    }
}

fn finish(c: u8, v5: bool, small: &[u8], on: &mut dyn FnMut(Event<'_>)) {
    match c {
        channel::ERROR => on(Event::Status(small)),
        channel::RESIZE => {
            if let Some((width, height)) = parse_resize(small) {
                on(Event::Resize { width, height });
            }
        }
        channel::CLOSE if v5 => {
            if let Some(&which) = small.first() {
                on(Event::CloseChannel(which));
            }
        }
        _ => {}
    }
}

/// Reads `{"Width":W,"Height":H}`.
pub fn parse_resize(json: &[u8]) -> Option<(u16, u16)> {
    #[derive(serde::Deserialize)]
    struct Size {
        #[serde(rename = "Width")]
        width: u16,
        #[serde(rename = "Height")]
        height: u16,
    }
    let s: Size = serde_json::from_slice(json).ok()?;
    Some((s.width, s.height))
}

/// The exit code an error-channel `Status` reports: 0 for `Success`, the code of a
/// `NonZeroExitCode` failure, `None` for any other failure.
pub fn exit_code(status: &[u8]) -> Option<i32> {
    let v: serde_json::Value = serde_json::from_slice(status).ok()?;
    if v["status"] == "Success" {
        return Some(0);
    }
    if v["reason"] != "NonZeroExitCode" {
        return None;
    }
    v["details"]["causes"]
        .as_array()?
        .iter()
        .find(|c| c["reason"] == "ExitCode")
        .and_then(|c| c["message"].as_str())
        .and_then(|m| m.parse().ok())
}

/// One unmasked binary WebSocket frame from the server on `channel` (used to put a
/// `Status` on the error channel).
pub fn server_frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(data.len() + 1);
    payload.push(channel);
    payload.extend_from_slice(data);
    raw_frame(opcode::BINARY, &payload)
}

/// An unmasked close frame from the server with `code`.
pub fn server_close(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(120)]);
    raw_frame(opcode::CLOSE, &payload)
}

fn raw_frame(op: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | op];
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// `out` = `piece` unmasked with `key`, where `piece` starts `offset` bytes into the
/// frame's payload (RFC 6455 §5.3: byte i is XORed with key[i % 4]). Eight bytes at
/// a time: stdin of a recorded session goes through here.
fn unmask_into(out: &mut Vec<u8>, piece: &[u8], key: [u8; 4], offset: usize) {
    let k: [u8; 4] = std::array::from_fn(|i| key[(offset + i) % 4]);
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    out.clear();
    out.extend_from_slice(piece);
    let mut chunks = out.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, so its byte i takes k[i % 4].
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmasking_eight_bytes_at_a_time_matches_the_rfc() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
        let mut out = Vec::new();
        for offset in 0..9 {
            for len in [0, 1, 3, 7, 8, 9, 15, 16, 17, 100 - offset] {
                let piece = &data[offset..offset + len];
                unmask_into(&mut out, piece, key, offset);
                let want: Vec<u8> = piece.iter().enumerate().map(|(i, b)| b ^ key[(offset + i) % 4]).collect();
                assert_eq!(out, want, "offset {offset}, length {len}");
            }
        }
    }

    /// A frame as a client sends it: masked with `key`.
    fn client_frame(fin: bool, op: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | op];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Data(u8, Vec<u8>),
        Status(String),
        Resize(u16, u16),
        Close(u8),
        Closed,
    }

    /// Feeds `bytes` in pieces of `step` and collects merged events.
    fn decode(protocol: &str, from_client: bool, bytes: &[u8], step: usize) -> Vec<Owned> {
        let mut d = ChannelDecoder::new(protocol, from_client).unwrap();
        let mut out: Vec<Owned> = Vec::new();
        for piece in bytes.chunks(step) {
            let n = d
                .feed(piece, false, &mut |e| {
                    let e = match e {
                        Event::Data { channel, data } => {
                            if let Some(Owned::Data(c, v)) = out.last_mut() {
                                if *c == channel {
                                    v.extend_from_slice(data);
                                    return;
                                }
                            }
                            Owned::Data(channel, data.to_vec())
                        }
                        Event::Status(s) => Owned::Status(String::from_utf8_lossy(s).into_owned()),
                        Event::Resize { width, height } => Owned::Resize(width, height),
                        Event::CloseChannel(c) => Owned::Close(c),
                        Event::Closed => Owned::Closed,
                    };
                    out.push(e);
                })
                .unwrap();
            assert_eq!(n, piece.len());
        }
        out
    }

    #[test]
    fn client_frames_masked_split_anywhere() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut s = client_frame(true, 2, b"\x04{\"Width\":120,\"Height\":40}", key);
        s.extend(client_frame(true, 2, b"\x00ls -l\r", key));
        // A ping between the fragments of one message.
        s.extend(client_frame(false, 2, b"\x00hel", key));
        s.extend(client_frame(true, 9, b"ping", key));
        s.extend(client_frame(true, 0, b"lo", key));
        s.extend(client_frame(true, 2, b"\xff\x00", key));
        s.extend(client_frame(true, 8, &1000u16.to_be_bytes(), key));
        let want =
            vec![Owned::Resize(120, 40), Owned::Data(0, b"ls -l\rhello".to_vec()), Owned::Close(0), Owned::Closed];
        for step in [1, 2, 3, 7, 64, s.len()] {
            assert_eq!(decode("v5.channel.k8s.io", true, &s, step), want, "step {step}");
        }
    }

    #[test]
    fn server_frames_and_exit_status() {
        let status = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"#;
        let big = vec![b'x'; 70_000]; // a 64-bit length
        let mut s = server_frame(1, b"out");
        s.extend(server_frame(2, b"err"));
        s.extend(server_frame(1, &big));
        s.extend(server_frame(3, status));
        s.extend(server_close(1000, ""));
        let got = decode("v4.channel.k8s.io", false, &s, 4096);
        assert_eq!(got[0], Owned::Data(1, b"out".to_vec()));
        assert_eq!(got[1], Owned::Data(2, b"err".to_vec()));
        assert_eq!(got[2], Owned::Data(1, big));
        let Owned::Status(st) = &got[3] else { panic!("{got:?}") };
        assert_eq!(exit_code(st.as_bytes()), Some(7));
        assert_eq!(got[4], Owned::Closed);
        assert_eq!(exit_code(br#"{"metadata":{},"status":"Success"}"#), Some(0));
        assert_eq!(exit_code(br#"{"status":"Failure","reason":"InternalError"}"#), None);
        // v4 has no close channel: 255 is just ignored.
        assert_eq!(decode("v4.channel.k8s.io", false, &server_frame(255, &[0]), 1), vec![]);
    }

    fn b64(channel: char, data: &[u8]) -> Vec<u8> {
        format!("{channel}{}", base64::engine::general_purpose::STANDARD.encode(data)).into_bytes()
    }

    #[test]
    fn base64_variants_both_directions() {
        let status = br#"{"metadata":{},"status":"Success"}"#;
        // Binary output, every byte value, long enough for a 64-bit frame length.
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 256) as u8).collect();
        let mut s = raw_frame(opcode::TEXT, &b64('1', b"out\xff"));
        s.extend(raw_frame(opcode::TEXT, &b64('2', b"e"))); // "2ZQ==": padding
        s.extend(raw_frame(opcode::TEXT, &b64('1', &big)));
        s.extend(raw_frame(opcode::TEXT, &b64('3', status)));
        s.extend(server_close(1000, ""));
        let key = [9, 8, 7, 6];
        let mut c = client_frame(true, 1, &b64('4', br#"{"Width":80,"Height":20}"#), key);
        // One stdin message in two fragments, split inside a base64 quad.
        let hello = b64('0', b"hello"); // "0aGVsbG8="
        c.extend(client_frame(false, 1, &hello[..4], key));
        c.extend(client_frame(true, 0, &hello[4..], key));
        for protocol in ["v4.base64.channel.k8s.io", "base64.channel.k8s.io"] {
            for step in [1, 3, 5, 4096, s.len()] {
                let got = decode(protocol, false, &s, step);
                assert_eq!(got.len(), 5, "{protocol} step {step}: {got:?}");
                assert_eq!(got[0], Owned::Data(1, b"out\xff".to_vec()));
                assert_eq!(got[1], Owned::Data(2, b"e".to_vec()));
                assert_eq!(got[2], Owned::Data(1, big.clone()));
                assert_eq!(got[3], Owned::Status(String::from_utf8_lossy(status).into_owned()));
                assert_eq!(got[4], Owned::Closed);
                let got = decode(protocol, true, &c, step);
                assert_eq!(got, vec![Owned::Resize(80, 20), Owned::Data(0, b"hello".to_vec())], "{protocol} {step}");
            }
        }
        let bad = |payload: &[u8]| {
            let mut d = ChannelDecoder::new("v4.base64.channel.k8s.io", false).unwrap();
            d.feed(&raw_frame(opcode::TEXT, payload), false, &mut |_| {})
        };
        assert_eq!(bad(b"xaGk="), Err(ParseError::Base64)); // no channel digit
        assert_eq!(bad(b"1aGk"), Err(ParseError::Base64)); // a quad cut short at the end
        assert_eq!(bad(b"1a!k="), Err(ParseError::Base64)); // not base64
        assert_eq!(bad(b"1aGk=").map(drop), Ok(())); // "hi"
    }

    #[test]
    fn stops_at_message_boundaries() {
        let mut s = server_frame(1, b"first");
        let first = s.len();
        s.extend(server_frame(1, b"second"));
        let mut d = ChannelDecoder::new("v5.channel.k8s.io", false).unwrap();
        let n = d.feed(&s, true, &mut |_| {}).unwrap();
        assert_eq!(n, first);
        assert!(d.at_message_boundary());
        let n = d.feed(&s[first..first + 3], true, &mut |_| {}).unwrap();
        assert_eq!(n, 3);
        assert!(!d.at_message_boundary());
    }

    #[test]
    fn bad_streams_are_errors_not_panics() {
        let mut p = FrameParser::new(true);
        assert_eq!(p.feed(&server_frame(1, b"x"), false, &mut |_| {}), Err(ParseError::Masking("unmasked")));
        let mut p = FrameParser::new(false);
        assert_eq!(p.feed(&[0xc2, 0x01, 0x00], false, &mut |_| {}), Err(ParseError::Extension));
        let mut p = FrameParser::new(false);
        assert_eq!(p.feed(&[0x00, 0x01, 0x00], false, &mut |_| {}), Err(ParseError::Fragments));
        let mut p = FrameParser::new(false);
        assert_eq!(p.feed(&[0x89, 0x7e, 0x01, 0x00], false, &mut |_| {}), Err(ParseError::Length));
        let mut p = FrameParser::new(false);
        let huge = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(p.feed(&huge, false, &mut |_| {}), Err(ParseError::Length));
        assert!(ChannelDecoder::new("channel.k8s.io", false).is_none());
        assert!(ChannelDecoder::new("v3.channel.k8s.io", false).is_none());
        assert_eq!(parse_resize(b"{\"Width\":-1}"), None);
    }
}
