//! Just enough HTTP/1.1 for the proxy benchmarks, std-only: a keep-alive client connection
//! ([`Conn`]) that reconnects when the server closes, and pure parsers for message heads and
//! whole responses (`Content-Length`, `chunked`, or read-until-close bodies) shared with the fake
//! provider ([`super::fake_llm`]).
//!
//! The parsers work on a byte buffer and answer "incomplete" instead of blocking, so they are
//! unit-tested without sockets; the socket code only reads more bytes until they answer.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Longest accepted message head (status or request line plus headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest accepted body: benchmark answers are a few hundred bytes.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A parsed start line plus headers (names lowercased, values trimmed).
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    /// Bytes of the head including the blank line that ends it.
    pub len: usize,
}

impl Head {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether a comma-separated header (`Connection`, `Transfer-Encoding`) lists `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    }

    /// `Content-Length`, if present; an unparsable one is an error.
    pub fn content_length(&self) -> Result<Option<usize>, String> {
        self.header("content-length")
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| format!("bad Content-Length {value:?}"))
            })
            .transpose()
    }
}

/// The head at the start of `buf`: `Ok(None)` while the blank line has not arrived yet.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(format!("message head longer than {MAX_HEAD} bytes"));
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "message head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let start_line = lines.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header line without a colon: {line:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Some(Head {
        start_line,
        headers,
        len: end + 4,
    }))
}

/// One HTTP response.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub head: Head,
    pub body: Vec<u8>,
    /// The server closes the connection after this response.
    pub close: bool,
}

/// The response at the start of `buf` and how many bytes it took; `Ok(None)` while incomplete.
/// `eof` says the peer closed the connection: only a body without framing may end there.
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<(Response, usize)>, String> {
    let Some(head) = parse_head(buf)? else {
        return if eof && !buf.is_empty() {
            Err("connection closed inside the response head".to_owned())
        } else {
            Ok(None)
        };
    };
    let status = status_code(&head.start_line)
        .ok_or_else(|| format!("not an HTTP/1.x status line: {:?}", head.start_line))?;
    let http10 = head.start_line.starts_with("HTTP/1.0");
    let mut close = head.has_token("connection", "close")
        || (http10 && !head.has_token("connection", "keep-alive"));
    let rest = &buf[head.len..];
    let (body, used) = if status < 200 || status == 204 || status == 304 {
        (Vec::new(), 0)
    } else if head.has_token("transfer-encoding", "chunked") {
        match dechunk(rest)? {
            Some(done) => done,
            None if eof => return Err("connection closed inside a chunked body".to_owned()),
            None => return Ok(None),
        }
    } else if let Some(len) = head.content_length()? {
        if len > MAX_BODY {
            return Err(format!("body of {len} bytes is too large"));
        }
        if rest.len() < len {
            return if eof {
                Err(format!(
                    "connection closed after {} of {len} body bytes",
                    rest.len()
                ))
            } else {
                Ok(None)
            };
        }
        (rest[..len].to_vec(), len)
    } else {
        // No framing: the body runs until the server closes.
        if !eof {
            return Ok(None);
        }
        close = true;
        (rest.to_vec(), rest.len())
    };
    let consumed = head.len + used;
    Ok(Some((
        Response {
            status,
            head,
            body,
            close,
        },
        consumed,
    )))
}

/// The status code of `HTTP/1.x NNN reason`.
fn status_code(line: &str) -> Option<u16> {
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

/// A complete chunked body at the start of `buf` (chunk extensions and trailers skipped):
/// the decoded bytes and how many bytes of `buf` it took; `Ok(None)` while incomplete.
pub fn dechunk(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line_end) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[at..at + line_end]).map_err(|_| "bad chunk size")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if body.len() + size > MAX_BODY {
            return Err("chunked body is too large".to_owned());
        }
        at += line_end + 2;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                let Some(end) = find(&buf[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += end + 2;
                if end == 0 {
                    return Ok(Some((body, at)));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".to_owned());
        }
        at += size + 2;
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A client connection that stays open between requests and reconnects when the server closed it.
pub struct Conn {
    addr: SocketAddr,
    timeout: Duration,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Connections opened so far (1 when keep-alive held throughout).
    pub connections: u64,
}

impl Conn {
    /// No connection is made until the first request. Every read and write waits at most `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            timeout,
            stream: None,
            buf: Vec::with_capacity(8192),
            connections: 0,
        }
    }

    /// Sends `request` (a whole HTTP/1.1 request) and reads the response. A request that fails
    /// on a reused connection before any byte of the answer arrived is retried once on a new one
    /// (the server may have closed it while it was idle).
    pub fn send(&mut self, request: &[u8]) -> io::Result<Response> {
        let reused = self.stream.is_some();
        match self.try_send(request) {
            Err((_, false)) if reused => self.try_send(request),
            result => result,
        }
        .map_err(|(err, _)| err)
    }

    /// The response, or the error and whether any byte of an answer had arrived.
    fn try_send(&mut self, request: &[u8]) -> Result<Response, (io::Error, bool)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, self.timeout)
                .and_then(|stream| {
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(self.timeout))?;
                    stream.set_write_timeout(Some(self.timeout))?;
                    Ok(stream)
                })
                .map_err(|err| (err, false))?;
            self.buf.clear();
            self.stream = Some(stream);
            self.connections += 1;
        }
        let stream = self.stream.as_mut().expect("connected above");
        let result = stream
            .write_all(request)
            .and_then(|()| read_response(stream, &mut self.buf));
        match result {
            Ok(response) => {
                if response.close {
                    self.stream = None;
                }
                Ok(response)
            }
            Err(err) => {
                let answered = !self.buf.is_empty();
                self.stream = None;
                Err((err, answered))
            }
        }
    }
}

/// Reads from `stream` into `buf` until it holds a whole response; leaves any bytes after it.
pub fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Response> {
    let mut chunk = [0u8; 16 * 1024];
    let mut eof = false;
    loop {
        match parse_response(buf, eof) {
            Ok(Some((response, used))) => {
                buf.drain(..used);
                return Ok(response);
            }
            Ok(None) if eof => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                ));
            }
            Ok(None) => {}
            Err(message) => return Err(io::Error::new(io::ErrorKind::InvalidData, message)),
        }
        match stream.read(&mut chunk)? {
            0 => eof = true,
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A `POST` with a JSON body, as bytes ready to write.
pub fn post_json(host: SocketAddr, path: &str, bearer: Option<&str>, body: &str) -> Vec<u8> {
    let auth = bearer.map_or_else(String::new, |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(raw: &[u8]) -> (Response, usize) {
        parse_response(raw, false).unwrap().expect("complete")
    }

    #[test]
    fn content_length_body_and_pipelined_rest() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloHTTP/1.1 204";
        let (response, used) = complete(raw);
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello");
        assert_eq!(response.head.header("x-a"), Some("b"));
        assert!(!response.close);
        assert_eq!(&raw[used..], b"HTTP/1.1 204");
    }

    #[test]
    fn incomplete_until_every_byte_arrived() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        for cut in 0..raw.len() {
            assert_eq!(parse_response(&raw[..cut], false).unwrap(), None, "{cut}");
            // At EOF a cut response is an error; nothing at all is "no response" (the caller's call).
            let at_eof = parse_response(&raw[..cut], true);
            assert!(
                if cut == 0 {
                    at_eof == Ok(None)
                } else {
                    at_eof.is_err()
                },
                "{cut}"
            );
        }
        assert_eq!(complete(raw).1, raw.len());
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: t\r\n\r\nNEXT";
        let (response, used) = complete(raw);
        assert_eq!(response.body, b"hello, world");
        assert_eq!(&raw[used..], b"NEXT");
        for cut in 0..used {
            assert_eq!(parse_response(&raw[..cut], false).unwrap(), None, "{cut}");
        }
        assert!(dechunk(b"zz\r\n").is_err());
        assert!(dechunk(b"2\r\nabXX0\r\n\r\n").is_err());
    }

    #[test]
    fn close_delimited_and_bodyless_responses() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\nuntil close";
        assert_eq!(parse_response(raw, false).unwrap(), None);
        let (response, _) = parse_response(raw, true).unwrap().unwrap();
        assert_eq!(
            (response.body.as_slice(), response.close),
            (&b"until close"[..], true)
        );

        let (response, used) = complete(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((response.status, response.body.len(), used), (204, 0, 27));
        let (response, _) =
            complete(b"HTTP/1.1 429 Too Many\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((response.status, response.close), (429, true));
    }

    #[test]
    fn malformed_heads_are_errors() {
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 20 OK\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }

    #[test]
    fn request_heads_parse_too() {
        let raw = post_json(
            "127.0.0.1:9".parse().unwrap(),
            "/v1/chat/completions",
            Some("tok"),
            "{}",
        );
        let head = parse_head(&raw).unwrap().unwrap();
        assert_eq!(head.start_line, "POST /v1/chat/completions HTTP/1.1");
        assert_eq!(head.header("authorization"), Some("Bearer tok"));
        assert_eq!(head.content_length(), Ok(Some(2)));
        assert_eq!(&raw[head.len..], b"{}");
    }
}
