//! A std-only HTTP/1.1 server for the channel benchmark's fakes (the webhook's callback
//! receiver, the Telegram Bot API): one thread per connection, keep-alive, each request
//! answered by a handler given the parsed request and the instant its last byte arrived.
//! A handler may block (a long poll holds its connection's thread, as it would a socket).
//!
//! Dropping the [`FakeServer`] stops the accept loop; connection threads notice within
//! [`POLL`] and end.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::http::{Head, dechunk, parse_head};
use crate::error::{Context, Result};

/// How often a connection thread wakes up to check for shutdown.
const POLL: Duration = Duration::from_millis(500);
const MAX_BODY: usize = 8 * 1024 * 1024;

/// One request, as the handler sees it.
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub head: Head,
    pub body: Vec<u8>,
    /// When its last byte was read.
    pub arrived: Instant,
}

type Handler = dyn Fn(&Request) -> Vec<u8> + Send + Sync;

pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Listens on `127.0.0.1:0`; `handler` returns each whole response (see [`response`]).
    pub fn start(name: &str, handler: Arc<Handler>) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .with_context(|| format!("binding the fake {name}"))?;
        let addr = listener
            .local_addr()
            .with_context(|| format!("binding the fake {name}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let accept_stop = stop.clone();
        let accept = thread::Builder::new()
            .name(format!("fake-{name}-accept"))
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (handler, stop) = (handler.clone(), accept_stop.clone());
                    let spawned =
                        thread::Builder::new()
                            .name("fake-conn".to_owned())
                            .spawn(move || {
                                let _ = serve(stream, handler.as_ref(), &stop);
                            });
                    if spawned.is_err() {
                        thread::sleep(Duration::from_millis(10));
                    }
                }
            })
            .with_context(|| format!("starting the fake {name}"))?;
        Ok(Self {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve(mut stream: TcpStream, handler: &Handler, stop: &AtomicBool) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if let Some((request, used, close)) = parse_request(&buf)? {
            buf.drain(..used);
            let request = Request {
                arrived: Instant::now(),
                ..request
            };
            stream.write_all(&handler(&request))?;
            if close {
                break;
            }
            continue;
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

/// The request at the start of `buf`, the bytes it took and whether the client closes after
/// it; `None` while incomplete.
fn parse_request(buf: &[u8]) -> io::Result<Option<(Request, usize, bool)>> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidData, message);
    let Some(head) = parse_head(buf).map_err(invalid)? else {
        return Ok(None);
    };
    let mut parts = head.start_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {:?}", head.start_line)));
    };
    let (method, path) = (
        method.to_owned(),
        target.split('?').next().unwrap_or_default().to_owned(),
    );
    let close = head.has_token("connection", "close")
        || (version == "HTTP/1.0" && !head.has_token("connection", "keep-alive"));
    let rest = &buf[head.len..];
    let (body, used) = if head.has_token("transfer-encoding", "chunked") {
        match dechunk(rest).map_err(invalid)? {
            Some(done) => done,
            None => return Ok(None),
        }
    } else {
        let len = head.content_length().map_err(invalid)?.unwrap_or(0);
        if len > MAX_BODY {
            return Err(invalid(format!("request body of {len} bytes")));
        }
        if rest.len() < len {
            return Ok(None);
        }
        (rest[..len].to_vec(), len)
    };
    let used = head.len + used;
    Ok(Some((
        Request {
            method,
            path,
            head,
            body,
            arrived: Instant::now(),
        },
        used,
        close,
    )))
}

/// A whole response with a JSON (or empty) body.
pub fn response(status: u16, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Status",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The string value of `"key":"..."` in a JSON text (escapes kept as written), read textually:
/// the benchmark is std only and its fakes' JSON is flat.
pub fn json_str<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let start = json.find(&format!(r#""{key}":"#))? + key.len() + 3;
    let rest = json[start..].trim_start().strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(&rest[..i]),
            _ => escaped = false,
        }
    }
    None
}

/// The integer value of `"key":N` in a JSON text (or `"key":"N"`), read textually.
pub fn json_int(json: &str, key: &str) -> Option<i64> {
    if let Some(text) = json_str(json, key) {
        return text.parse().ok();
    }
    let start = json.find(&format!(r#""{key}":"#))? + key.len() + 3;
    let rest = json[start..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::http::{Conn, post_json};
    use super::*;

    #[test]
    fn json_fields_are_read_textually() {
        let body = r#"{"event_id":"reply:e-7","conversation_id": "s-7","text":"say \"hi\"","n":-42,"m":"17"}"#;
        assert_eq!(json_str(body, "event_id"), Some("reply:e-7"));
        assert_eq!(json_str(body, "conversation_id"), Some("s-7"));
        assert_eq!(json_str(body, "text"), Some(r#"say \"hi\""#));
        assert_eq!(json_str(body, "n"), None);
        assert_eq!(json_str(body, "missing"), None);
        assert_eq!(json_str(r#"{"a":"unterminated"#, "a"), None);
        assert_eq!(json_int(body, "n"), Some(-42));
        assert_eq!(json_int(body, "m"), Some(17));
        assert_eq!(json_int(body, "text"), None);
        assert_eq!(json_int(r#"{"offset":5,"timeout":30}"#, "offset"), Some(5));
    }

    #[test]
    fn serves_keep_alive_requests_to_the_handler() {
        let server = FakeServer::start(
            "test",
            Arc::new(|r: &Request| {
                response(
                    200,
                    &format!(
                        r#"{{"path":"{}","len":{}}}"#,
                        r.path,
                        String::from_utf8_lossy(&r.body).len()
                    ),
                )
            }),
        )
        .unwrap();
        let mut conn = Conn::new(server.addr(), Duration::from_secs(5));
        for body in ["{}", r#"{"a":1}"#] {
            let r = conn
                .send(&post_json(server.addr(), "/x?q=1", None, body))
                .unwrap();
            assert_eq!(r.status, 200);
            let text = String::from_utf8(r.body).unwrap();
            assert_eq!(json_str(&text, "path"), Some("/x"));
            assert_eq!(json_int(&text, "len"), Some(body.len() as i64));
        }
        assert_eq!(conn.connections, 1);
    }
}
