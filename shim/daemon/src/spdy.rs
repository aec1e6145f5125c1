//! SPDY/3.1 framing, as `kubectl port-forward` speaks it (tunnelled in a
//! WebSocket whose binary messages carry the SPDY byte stream, protocol
//! `SPDY/3.1+portforward.k8s.io`). No maintained crate implements SPDY, so
//! this is the small part of the protocol a port-forward server needs:
//! frames are read from a byte stream ([`Decoder`]) and written
//! ([`Encoder`]); header blocks are compressed with zlib and the SPDY/3
//! dictionary, one compression context per direction for the whole
//! connection (`flate2`). Flow control is not enforced (kubectl's SPDY
//! library sends no window updates); `WINDOW_UPDATE` and `SETTINGS` are
//! read and ignored.
//!
//! ```text
//! control: |1| version 3 (15) | type (16) | flags (8) | length (24) | data
//! data:    |0| stream id (31)             | flags (8) | length (24) | data
//! header block (inflated): count (32), then per pair: len (32) name len (32) value
//! ```

use std::sync::OnceLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The largest header block accepted once inflated (a bound on what a
/// client can make the daemon hold).
const MAX_HEADERS: usize = 64 * 1024;
const VERSION: u16 = 3;
/// `FLAG_FIN`: the sender's last frame on the stream.
const FIN: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A new stream, with its headers.
    SynStream {
        /// Its id (odd: opened by the client).
        stream: u32,
        /// Whether the sender closes its side at once.
        fin: bool,
        /// Its headers (names lower-case).
        headers: Vec<(String, String)>,
    },
    /// The answer to a `SynStream`.
    SynReply {
        /// The stream.
        stream: u32,
        /// Whether the sender closes its side at once.
        fin: bool,
        /// Headers.
        headers: Vec<(String, String)>,
    },
    /// A stream ended abnormally.
    RstStream {
        /// The stream.
        stream: u32,
        /// Why.
        status: u32,
    },
    /// A liveness check, answered with the same id.
    Ping {
        /// Its id.
        id: u32,
    },
    /// The end of the session.
    GoAway {
        /// The last stream the sender handled.
        last_stream: u32,
        /// Why.
        status: u32,
    },
    /// More headers for a stream.
    Headers {
        /// The stream.
        stream: u32,
        /// Whether the sender closes its side.
        fin: bool,
        /// Headers.
        headers: Vec<(String, String)>,
    },
    /// Bytes of a stream (`fin`: the sender's side ends after them).
    Data {
        /// The stream.
        stream: u32,
        /// Whether the sender's side ends here.
        fin: bool,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A frame read and ignored (`SETTINGS`, `WINDOW_UPDATE`, unknown
    /// control frames).
    Ignored,
}

/// A malformed stream: the session ends.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpdyError {
    /// A control frame of another SPDY version.
    #[error("SPDY version {0} is not served (3 is)")]
    Version(u16),
    /// A frame too short for its type.
    #[error("a SPDY frame of type {0} is too short")]
    Short(u16),
    /// A header block that does not inflate or parse.
    #[error("a SPDY header block is malformed: {0}")]
    Headers(String),
}

/// The SPDY/3 header compression dictionary (the SPDY/3 specification,
/// section 2.6.10.1): length-prefixed header names and common values, then
/// common text.
pub fn dictionary() -> &'static [u8] {
    static DICTIONARY: OnceLock<Vec<u8>> = OnceLock::new();
    DICTIONARY.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TEXT: &str = concat!(
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
            "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
            "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
            "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct ",
            "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,",
            "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,",
            "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8",
            "charset=iso-8859-1,utf-,*,enq=0.",
        );
        let mut d = Vec::new();
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TEXT.as_bytes());
        d
    })
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads frames from a byte stream pushed in any pieces.
pub struct Decoder {
    buf: Vec<u8>,
    inflate: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            buf: Vec::new(),
            inflate: Decompress::new(true),
        }
    }
}

impl Decoder {
    /// Adds bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if the bytes so far hold one.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SpdyError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let length = (be32(&self.buf[4..8]) & 0x00ff_ffff) as usize;
        if self.buf.len() < 8 + length {
            return Ok(None);
        }
        let head: [u8; 8] = self.buf[..8].try_into().unwrap_or_default();
        let body: Vec<u8> = self.buf[8..8 + length].to_vec();
        self.buf.drain(..8 + length);
        let flags = head[4];
        let fin = flags & FIN != 0;
        if head[0] & 0x80 == 0 {
            return Ok(Some(Frame::Data {
                stream: be32(&head[..4]) & 0x7fff_ffff,
                fin,
                data: body,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        let kind = u16::from_be_bytes([head[2], head[3]]);
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let need = |n: usize| {
            if body.len() < n {
                Err(SpdyError::Short(kind))
            } else {
                Ok(())
            }
        };
        let stream = |b: &[u8]| be32(b) & 0x7fff_ffff;
        Ok(Some(match kind {
            SYN_STREAM => {
                need(10)?;
                Frame::SynStream {
                    stream: stream(&body),
                    fin,
                    headers: self.headers(&body[10..])?,
                }
            }
            SYN_REPLY => {
                need(4)?;
                Frame::SynReply {
                    stream: stream(&body),
                    fin,
                    headers: self.headers(&body[4..])?,
                }
            }
            HEADERS => {
                need(4)?;
                Frame::Headers {
                    stream: stream(&body),
                    fin,
                    headers: self.headers(&body[4..])?,
                }
            }
            RST_STREAM => {
                need(8)?;
                Frame::RstStream {
                    stream: stream(&body),
                    status: be32(&body[4..]),
                }
            }
            PING => {
                need(4)?;
                Frame::Ping { id: be32(&body) }
            }
            GOAWAY => {
                need(8)?;
                Frame::GoAway {
                    last_stream: stream(&body),
                    status: be32(&body[4..]),
                }
            }
            WINDOW_UPDATE => Frame::Ignored,
            _ => Frame::Ignored,
        }))
    }

    /// Inflates and parses a header block (the connection's one zlib
    /// stream, with the SPDY dictionary).
    fn headers(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
        let bad = |m: &str| SpdyError::Headers(m.to_string());
        let mut out = Vec::with_capacity(block.len() * 4);
        let mut input = block;
        while !input.is_empty() {
            if out.len() >= MAX_HEADERS {
                return Err(bad("larger than 64 KiB"));
            }
            out.reserve(4096);
            let (before, produced) = (self.inflate.total_in(), out.len());
            let mut primed = false;
            match self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(dictionary())
                        .map_err(|e| SpdyError::Headers(e.to_string()))?;
                    primed = true;
                }
                Err(e) => return Err(SpdyError::Headers(e.to_string())),
            }
            let used = (self.inflate.total_in() - before) as usize;
            input = &input[used..];
            if used == 0 && out.len() == produced && !primed {
                return Err(bad("no progress"));
            }
        }
        parse_block(&out).ok_or_else(|| bad("truncated"))
    }
}

/// Name-value pairs from an inflated header block.
fn parse_block(b: &[u8]) -> Option<Vec<(String, String)>> {
    let mut at = 0;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = b.get(at..at + n)?;
        at += n;
        Some(s)
    };
    let count = be32(take(4)?);
    let mut pairs = Vec::new();
    for _ in 0..count {
        let n = be32(take(4)?) as usize;
        let name = String::from_utf8_lossy(take(n)?).to_lowercase();
        let n = be32(take(4)?) as usize;
        let value = String::from_utf8_lossy(take(n)?).into_owned();
        // Several values of one name are separated by NUL.
        for v in value.split('\0') {
            pairs.push((name.clone(), v.to_string()));
        }
    }
    Some(pairs)
}

/// Writes frames.
pub struct Encoder {
    deflate: Compress,
    primed: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            deflate: Compress::new(Compression::default(), true),
            primed: false,
        }
    }
}

impl Encoder {
    /// A frame's bytes.
    pub fn encode(&mut self, frame: &Frame) -> Vec<u8> {
        let control = |kind: u16, flags: u8, body: Vec<u8>| {
            let mut out = Vec::with_capacity(8 + body.len());
            out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
            out.extend_from_slice(&kind.to_be_bytes());
            out.extend_from_slice(&(u32::from(flags) << 24 | body.len() as u32).to_be_bytes());
            out.extend_from_slice(&body);
            out
        };
        let flag = |fin: bool| if fin { FIN } else { 0 };
        match frame {
            Frame::SynStream {
                stream,
                fin,
                headers,
            } => {
                let mut body = stream.to_be_bytes().to_vec();
                body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
                body.extend(self.block(headers));
                control(SYN_STREAM, flag(*fin), body)
            }
            Frame::SynReply {
                stream,
                fin,
                headers,
            } => control(SYN_REPLY, flag(*fin), self.stream_block(*stream, headers)),
            Frame::Headers {
                stream,
                fin,
                headers,
            } => control(HEADERS, flag(*fin), self.stream_block(*stream, headers)),
            Frame::RstStream { stream, status } => {
                let mut body = stream.to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                control(RST_STREAM, 0, body)
            }
            Frame::Ping { id } => control(PING, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway {
                last_stream,
                status,
            } => {
                let mut body = last_stream.to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                control(GOAWAY, 0, body)
            }
            Frame::Data { stream, fin, data } => {
                let mut out = Vec::with_capacity(8 + data.len());
                out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(
                    &(u32::from(flag(*fin)) << 24 | data.len() as u32).to_be_bytes(),
                );
                out.extend_from_slice(data);
                out
            }
            Frame::Ignored => Vec::new(),
        }
    }

    /// A stream id, then its header block.
    fn stream_block(&mut self, stream: u32, headers: &[(String, String)]) -> Vec<u8> {
        let mut body = stream.to_be_bytes().to_vec();
        body.extend(self.block(headers));
        body
    }

    /// A header block, deflated in the connection's zlib stream.
    fn block(&mut self, headers: &[(String, String)]) -> Vec<u8> {
        let mut raw = (headers.len() as u32).to_be_bytes().to_vec();
        for (k, v) in headers {
            raw.extend_from_slice(&(k.len() as u32).to_be_bytes());
            raw.extend_from_slice(k.to_lowercase().as_bytes());
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        if !self.primed {
            self.primed = true;
            let _ = self.deflate.set_dictionary(dictionary());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        for _ in 0..1024 {
            out.reserve(256);
            let before = self.deflate.total_in();
            if self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .is_err()
            {
                break;
            }
            input = &input[(self.deflate.total_in() - before) as usize..];
            // Done when all is in and the flush left room unused.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_dictionary_is_the_specifications() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        // Its zlib id (Adler-32), which a peer's FDICT header names.
        let mut a: u32 = 1;
        let mut b: u32 = 0;
        for &byte in d {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!(b << 16 | a, 0xe3c6_a7c2);
    }

    #[test]
    fn frames_round_trip_in_any_pieces_with_one_zlib_stream_per_direction() {
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                fin: false,
                headers: pairs(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynStream {
                stream: 3,
                fin: false,
                headers: pairs(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::Data {
                stream: 3,
                fin: false,
                data: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            },
            Frame::Data {
                stream: 1,
                fin: true,
                data: Vec::new(),
            },
            Frame::Ping { id: 7 },
            Frame::RstStream {
                stream: 3,
                status: 5,
            },
            Frame::SynReply {
                stream: 3,
                fin: false,
                headers: Vec::new(),
            },
            Frame::GoAway {
                last_stream: 3,
                status: 0,
            },
        ];
        let mut enc = Encoder::default();
        let bytes: Vec<u8> = frames.iter().flat_map(|f| enc.encode(f)).collect();
        for piece in [1, 3, 7, 1000] {
            let mut dec = Decoder::default();
            let mut got = Vec::new();
            for chunk in bytes.chunks(piece) {
                dec.push(chunk);
                while let Some(f) = dec.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "pieces of {piece}");
        }
    }

    #[test]
    fn garbage_is_an_error_or_waits_never_a_panic() {
        // A deterministic stream of random-looking bytes, many times over.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..2000 {
            let mut dec = Decoder::default();
            let len = (round % 300) + 1;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            // Sometimes a valid control header with a random body.
            let mut input = if round % 2 == 0 {
                let mut h = vec![0x80, 0x03, 0x00, (round % 10) as u8, 0x00, 0x00, 0x00, 0x00];
                let n = bytes.len() as u32;
                h[5..8].copy_from_slice(&n.to_be_bytes()[1..]);
                h
            } else {
                Vec::new()
            };
            input.extend(bytes);
            dec.push(&input);
            while let Ok(Some(_)) = dec.next_frame() {}
        }
    }
}
