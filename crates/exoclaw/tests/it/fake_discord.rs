//! An in-tree fake of Discord on loopback (std threads; the Gateway and
//! REST share one port, like one origin): the Gateway over WebSocket
//! (HELLO, IDENTIFY → READY with `session_id` and `resume_gateway_url`,
//! RESUME → the missed dispatches then RESUMED, heartbeats and their ACKs,
//! `MESSAGE_CREATE` dispatches with `s` and `t`), scripted faults on the
//! live connection (op 7, op 9, a close code, ACKs withheld, a dropped
//! connection) and a wrong token closed with 4004; and the REST API (`GET
//! /gateway/bot`, messages sent as JSON or multipart, edits, typing,
//! reactions, attachments served), recording every call, answering
//! scripted 429 `retry_after` or 5xx first, honouring `nonce` +
//! `enforce_nonce`, and echoing the bot's own messages back as dispatches
//! like Discord does.

use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

pub const BOT_ID: &str = "900";
pub const BOT_NAME: &str = "exo";

/// What the live Gateway connection is told to do next.
#[derive(Clone, Copy, Debug)]
enum Command {
    Reconnect,
    Invalidate(bool),
    Close(u16),
    Drop,
}

/// One REST call as received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// Without the `/api/v10` prefix.
    pub path: String,
    /// The JSON body, or for multipart `{"payload_json": .., "files": [..]}`.
    pub body: Value,
    pub content_type: String,
    /// Answered with an existing message (the same `nonce`).
    pub repeat: bool,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    seq: u64,
    /// Dispatch frames of the current session, by sequence number.
    events: Vec<(u64, Value)>,
    session: Option<String>,
    sessions: u64,
    identifies: u32,
    /// (session id, seq) of every RESUME.
    resumes: Vec<(String, Option<u64>)>,
    heartbeats: u32,
    acks_to_skip: u32,
    connections: u32,
    commands: VecDeque<Command>,
    calls: Vec<Call>,
    next_id: u64,
    faults: VecDeque<(u16, Value)>,
    nonces: HashMap<String, String>,
    /// The `resume_gateway_url` READY names (default: this fake).
    resume_url: Option<String>,
    attachments: HashMap<String, Vec<u8>>,
    /// Attachments downloaded, by name, in order.
    fetched: Vec<String>,
}

struct Shared {
    token: String,
    heartbeat_ms: u64,
    ws_url: String,
    state: Mutex<State>,
}

pub struct FakeDiscord {
    pub rest: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeDiscord {
    /// A fake that accepts `token`, with heartbeats every `heartbeat_ms`.
    pub fn start(token: &str, heartbeat_ms: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            heartbeat_ms,
            ws_url: format!("ws://{addr}"),
            state: Mutex::new(State {
                next_id: 5000,
                ..State::default()
            }),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Self { rest: addr, shared }
    }

    pub fn api_base(&self) -> String {
        format!("http://{}/api/v10", self.rest)
    }

    pub fn gateway_url(&self) -> String {
        self.shared.ws_url.clone()
    }

    /// The URL an attachment named `name` is served at.
    pub fn attachment_url(&self, name: &str) -> String {
        format!("http://{}/attachments/{name}", self.rest)
    }

    pub fn add_attachment(&self, name: &str, bytes: &[u8]) {
        self.state()
            .attachments
            .insert(name.to_owned(), bytes.to_vec());
    }

    /// The attachments downloaded so far, by name.
    pub fn fetched(&self) -> Vec<String> {
        self.state().fetched.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }

    /// Dispatch a `MESSAGE_CREATE` with `d` (`id` filled in when missing);
    /// its sequence number. With no live connection it waits in the
    /// session's log for a RESUME.
    pub fn push_message(&self, mut d: Value) -> u64 {
        let mut st = self.state();
        if d.get("id").is_none() {
            st.next_id += 1;
            d["id"] = json!(st.next_id.to_string());
        }
        dispatch(&mut st, "MESSAGE_CREATE", d)
    }

    pub fn reconnect(&self) {
        self.state().commands.push_back(Command::Reconnect);
    }

    pub fn invalidate(&self, resumable: bool) {
        self.state()
            .commands
            .push_back(Command::Invalidate(resumable));
    }

    pub fn close(&self, code: u16) {
        self.state().commands.push_back(Command::Close(code));
    }

    pub fn drop_connection(&self) {
        self.state().commands.push_back(Command::Drop);
    }

    /// Name `url` as the `resume_gateway_url` of the next READY.
    pub fn set_resume_url(&self, url: &str) {
        self.state().resume_url = Some(url.to_owned());
    }

    /// Leave the next `n` heartbeats without an ACK.
    pub fn skip_acks(&self, n: u32) {
        self.state().acks_to_skip = n;
    }

    pub fn fail_next_send(&self, status: u16, body: Value) {
        self.state().faults.push_back((status, body));
    }

    pub fn identifies(&self) -> u32 {
        self.state().identifies
    }

    pub fn resumes(&self) -> Vec<(String, Option<u64>)> {
        self.state().resumes.clone()
    }

    pub fn heartbeats(&self) -> u32 {
        self.state().heartbeats
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The messages created (not repeats), in order.
    pub fn sent(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path.ends_with("/messages") && !c.repeat)
            .collect()
    }

    /// Wait (bounded) until `pred` holds, returning what it last saw.
    pub fn wait<T>(
        &self,
        limit: Duration,
        what: impl Fn(&Self) -> T,
        pred: impl Fn(&T) -> bool,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            let got = what(self);
            if pred(&got) || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (bounded) until at least `n` messages were created.
    pub fn wait_sent(&self, n: usize) -> Vec<Call> {
        self.wait(Duration::from_secs(30), Self::sent, |s| s.len() >= n)
    }
}

/// Append a dispatch to the session's log; its sequence number.
fn dispatch(st: &mut State, t: &str, d: Value) -> u64 {
    st.seq += 1;
    let s = st.seq;
    st.events
        .push((s, json!({"op": 0, "t": t, "s": s, "d": d})));
    s
}

/// The Gateway on a connection whose request asked for a WebSocket with
/// `key` (any request before it was REST, as on a pooled connection).
fn serve_ws(mut stream: TcpStream, key: &str, s: &Shared) {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut ws =
        tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Server, None);
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let me = {
        let mut st = s.state.lock().unwrap();
        st.connections += 1;
        st.connections
    };
    let send = |ws: &mut tungstenite::WebSocket<TcpStream>, v: &Value| {
        ws.send(Message::text(v.to_string())).is_ok()
    };
    if !send(
        &mut ws,
        &json!({"op": 10, "d": {"heartbeat_interval": s.heartbeat_ms}}),
    ) {
        return;
    }
    // Dispatches up to this sequence number went out on this connection;
    // `None` until READY or RESUMED.
    let mut delivered: Option<u64> = None;
    loop {
        let (command, due) = {
            let mut st = s.state.lock().unwrap();
            if st.connections != me {
                return; // a newer connection took over
            }
            let command = st.commands.pop_front();
            let due: Vec<Value> = match delivered {
                Some(d) => st
                    .events
                    .iter()
                    .filter(|(seq, _)| *seq > d)
                    .map(|(_, e)| e.clone())
                    .collect(),
                None => Vec::new(),
            };
            if let Some(last) = due.last() {
                delivered = last["s"].as_u64();
            }
            (command, due)
        };
        for e in &due {
            if !send(&mut ws, e) {
                return;
            }
        }
        match command {
            Some(Command::Reconnect) => {
                send(&mut ws, &json!({"op": 7, "d": null}));
            }
            Some(Command::Invalidate(resumable)) => {
                if !resumable {
                    s.state.lock().unwrap().session = None;
                }
                send(&mut ws, &json!({"op": 9, "d": resumable}));
            }
            Some(Command::Close(code)) => {
                let _ = ws.close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: "fake".into(),
                }));
                let _ = ws.flush();
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
            Some(Command::Drop) => {
                let _ = ws.get_mut().shutdown(std::net::Shutdown::Both);
                return;
            }
            None => {}
        }
        let text = match ws.read() {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) => return,
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let token_ok = v["d"]["token"].as_str() == Some(s.token.as_str());
        match v["op"].as_u64() {
            Some(1) => {
                let ack = {
                    let mut st = s.state.lock().unwrap();
                    st.heartbeats += 1;
                    if st.acks_to_skip > 0 {
                        st.acks_to_skip -= 1;
                        false
                    } else {
                        true
                    }
                };
                if ack && !send(&mut ws, &json!({"op": 11})) {
                    return;
                }
            }
            Some(2) if !token_ok => {
                let _ = ws.close(Some(CloseFrame {
                    code: CloseCode::from(4004),
                    reason: "Authentication failed.".into(),
                }));
                let _ = ws.flush();
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
            Some(2) => {
                let mut st = s.state.lock().unwrap();
                st.identifies += 1;
                st.sessions += 1;
                let id = format!("session-{}", st.sessions);
                st.session = Some(id.clone());
                st.events.clear();
                st.seq = 0;
                let resume_url = st.resume_url.clone().unwrap_or_else(|| s.ws_url.clone());
                dispatch(
                    &mut st,
                    "READY",
                    json!({"v": 10, "session_id": id, "resume_gateway_url": resume_url,
                        "user": {"id": BOT_ID, "username": BOT_NAME, "bot": true}, "guilds": []}),
                );
                delivered = Some(0);
            }
            Some(6) => {
                let asked = v["d"]["seq"].as_u64();
                let id = v["d"]["session_id"].as_str().unwrap_or_default().to_owned();
                let mut st = s.state.lock().unwrap();
                st.resumes.push((id.clone(), asked));
                if token_ok && st.session.as_deref() == Some(id.as_str()) {
                    delivered = Some(asked.unwrap_or(0));
                    dispatch(&mut st, "RESUMED", json!({}));
                } else {
                    drop(st);
                    send(&mut ws, &json!({"op": 9, "d": false}));
                }
            }
            _ => {}
        }
    }
}

/// A multipart body as `{"payload_json": .., "files": [{name, filename,
/// content_type, bytes}]}`.
fn parse_multipart(content_type: &str, body: &[u8]) -> Value {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap_or_default()
        .trim();
    let sep = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut out = json!({"files": []});
    for part in text.split(sep.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let Some((head, data)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let data = data.strip_suffix("\r\n").unwrap_or(data);
        let field = |key: &str| {
            head.split(';')
                .find_map(|p| p.trim().strip_prefix(&format!("{key}=\"")))
                .map(|v| {
                    v.trim_end_matches('"')
                        .split('"')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
        };
        let ctype = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .unwrap_or_default();
        let name = field("name").unwrap_or_default();
        if name == "payload_json" {
            out["payload_json"] = serde_json::from_str(data).unwrap_or(Value::Null);
        } else {
            out["files"].as_array_mut().unwrap().push(json!({
                "name": name, "filename": field("filename"), "content_type": ctype, "bytes": data,
            }));
        }
    }
    out
}

/// (status, body) of one REST call.
fn answer(
    s: &Shared,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Value,
    ctype: &str,
) -> (u16, Value) {
    if let Some(name) = path.strip_prefix("/attachments/") {
        let mut st = s.state.lock().unwrap();
        st.fetched.push(name.to_owned());
        return match st.attachments.get(name) {
            Some(b) => (200, Value::String(String::from_utf8_lossy(b).into_owned())),
            None => (404, json!({"message": "404: Not Found", "code": 0})),
        };
    }
    let Some(path) = path.strip_prefix("/api/v10") else {
        return (404, json!({"message": "404: Not Found", "code": 0}));
    };
    if auth != Some(format!("Bot {}", s.token).as_str()) {
        return (401, json!({"message": "401: Unauthorized", "code": 0}));
    }
    let mut st = s.state.lock().unwrap();
    let is_send = method == "POST" && path.ends_with("/messages");
    if (is_send || method == "PATCH")
        && let Some(f) = st.faults.pop_front()
    {
        return f;
    }
    let mut call = Call {
        method: method.to_owned(),
        path: path.to_owned(),
        body: body.clone(),
        content_type: ctype.to_owned(),
        repeat: false,
        at: Instant::now(),
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let reply = match (method, parts.as_slice()) {
        ("GET", ["gateway", "bot"]) => (200, json!({"url": s.ws_url, "shards": 1})),
        ("POST", ["channels", channel, "messages"]) => {
            let payload = if body.get("payload_json").is_some() {
                &body["payload_json"]
            } else {
                &body
            };
            let nonce = payload["nonce"].as_str().map(str::to_owned);
            let known = nonce.as_ref().and_then(|n| st.nonces.get(n).cloned());
            let id = match known {
                Some(id) => {
                    call.repeat = true;
                    id
                }
                None => {
                    st.next_id += 1;
                    let id = st.next_id.to_string();
                    if let Some(n) = nonce {
                        st.nonces.insert(n, id.clone());
                    }
                    id
                }
            };
            let msg = json!({"id": id, "channel_id": channel, "content": payload["content"],
                "author": {"id": BOT_ID, "username": BOT_NAME, "bot": true}});
            if !call.repeat {
                // Discord dispatches the bot's own messages too.
                dispatch(&mut st, "MESSAGE_CREATE", msg.clone());
            }
            (200, msg)
        }
        ("PATCH", ["channels", channel, "messages", id]) => (
            200,
            json!({"id": id, "channel_id": channel, "content": body["content"]}),
        ),
        ("POST", ["channels", _, "typing"])
        | ("PUT", ["channels", _, "messages", _, "reactions", _, "@me"]) => (204, Value::Null),
        _ => (404, json!({"message": "404: Not Found", "code": 0})),
    };
    st.calls.push(call);
    reply
}

fn serve(conn: TcpStream, s: &Shared) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or_default().to_owned();
        let path = words.next().unwrap_or_default().to_owned();
        let (mut len, mut auth, mut ctype) = (0usize, None, String::new());
        let mut ws_key = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                match k.as_str() {
                    "content-length" => len = v.parse().unwrap_or(0),
                    "authorization" => auth = Some(v.to_owned()),
                    "content-type" => ctype = v.to_owned(),
                    "sec-websocket-key" => ws_key = Some(v.to_owned()),
                    _ => {}
                }
            }
        }
        if let Some(key) = ws_key {
            // Nothing follows the upgrade request until it is answered, so
            // the reader holds nothing more.
            serve_ws(conn, &key, s);
            return;
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = if ctype.starts_with("multipart/form-data") {
            parse_multipart(&ctype, &body)
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        let (status, out) = answer(s, &method, &path, auth.as_deref(), body, &ctype);
        let (out, kind) = match out {
            Value::Null => (String::new(), "application/json"),
            Value::String(raw) if path.starts_with("/attachments/") => {
                (raw, "application/octet-stream")
            }
            v => (v.to_string(), "application/json"),
        };
        let head = if status == 204 {
            "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
        } else {
            format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
                out.len()
            )
        };
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}
