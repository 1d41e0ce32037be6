//! An in-tree fake of the Telegram Bot API on loopback (std threads,
//! HTTP/1.1 keep-alive): `getMe`, long-polling `getUpdates` (bounded wait,
//! filtered by offset, every offset recorded), `sendMessage` and
//! `editMessageText` (recorded; scripted faults such as 429 with
//! `retry_after`, 5xx or refused markup first), `sendChatAction` and
//! `setMessageReaction`, `setWebhook` and `deleteWebhook` (recorded apart), and 401 for a wrong token.
//! Like the real one it answers 409 Conflict to a `getUpdates` while another
//! is in progress (counted); sends can be held (a stalled platform), and a
//! held send whose client hung up meanwhile is dropped unprocessed.
//! Files: `getFile` for the files a test added (every call recorded; the
//! announced size may lie), their download at `/file/bot<token>/<path>`
//! (recorded), and `sendDocument` / `sendPhoto` as `multipart/form-data`
//! (parsed and recorded: fields, file name, bytes).

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const BOT_ID: i64 = 999;
pub const BOT_NAME: &str = "exo_bot";

#[derive(Default)]
struct State {
    updates: Vec<Value>,
    next_update: i64,
    next_message: i64,
    /// (method, body) of every send and edit.
    sent: Vec<(String, Value)>,
    /// (method, body) of every typing indicator and reaction.
    actions: Vec<(String, Value)>,
    offsets: Vec<i64>,
    /// Answers for the next sends, before any succeeds: (status, body).
    faults: VecDeque<(u16, Value)>,
    /// file_id -> (file_path, announced size, bytes).
    files: HashMap<String, (String, u64, Vec<u8>)>,
    /// The file_id of every `getFile`.
    get_file: Vec<String>,
    /// The path of every download.
    downloads: Vec<String>,
    uploads: Vec<Upload>,
    /// Paths whose download answers 404 (`getFile` still knows them).
    gone: Vec<String>,
    /// `getUpdates` calls being answered now.
    polling: usize,
    /// `getUpdates` calls answered 409 because another was in progress.
    conflicts: usize,
    /// How many more sends and edits may pass; the rest wait (a stalled
    /// platform). `None`: no limit.
    allowance: Option<usize>,
    /// Sends and edits waiting now.
    waiting: usize,
}

/// One `sendDocument` or `sendPhoto`.
#[derive(Clone, Debug)]
pub struct Upload {
    pub method: String,
    /// The text parts.
    pub fields: BTreeMap<String, String>,
    pub file_field: String,
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

struct Shared {
    token: String,
    state: Mutex<State>,
    changed: Condvar,
}

pub struct FakeTelegram {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeTelegram {
    pub fn start(token: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            state: Mutex::new(State {
                next_update: 100,
                next_message: 1,
                ..State::default()
            }),
            changed: Condvar::new(),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Self { addr, shared }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queue an update carrying `message`; its `update_id`.
    pub fn push_message(&self, message: Value) -> i64 {
        let mut st = self.shared.state.lock().unwrap();
        let id = st.next_update;
        st.next_update += 1;
        st.updates
            .push(json!({"update_id": id, "message": message}));
        self.shared.changed.notify_all();
        id
    }

    /// Offer a file as `file_id` (its `getFile` announces its true size).
    pub fn add_file(&self, file_id: &str, bytes: &[u8]) {
        self.add_file_announcing(file_id, bytes, bytes.len() as u64);
    }

    /// Offer a file whose `getFile` announces `announced` bytes.
    pub fn add_file_announcing(&self, file_id: &str, bytes: &[u8], announced: u64) {
        let path = format!("documents/file_{}.bin", file_id.len());
        self.shared.state.lock().unwrap().files.insert(
            file_id.to_owned(),
            (format!("{path}-{file_id}"), announced, bytes.to_vec()),
        );
    }

    /// Offer a file that `getFile` knows but whose download is gone (404).
    pub fn add_file_gone(&self, file_id: &str) {
        self.add_file(file_id, b"gone");
        let mut st = self.shared.state.lock().unwrap();
        let path = st.files[file_id].0.clone();
        st.gone.push(path);
    }

    /// The file_id of every `getFile` so far.
    pub fn get_file_calls(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().get_file.clone()
    }

    /// The path of every download so far.
    pub fn downloads(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().downloads.clone()
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.shared.state.lock().unwrap().uploads.clone()
    }

    /// Wait (bounded) until at least `n` uploads arrived.
    pub fn wait_uploads(&self, n: usize, limit: Duration) -> Vec<Upload> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.uploads();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `getUpdates` calls refused with 409 Conflict (two at once).
    pub fn conflicts(&self) -> usize {
        self.shared.state.lock().unwrap().conflicts
    }

    /// Stall sends and edits (`true`) or let them through: a held request
    /// whose client went away meanwhile is dropped unprocessed.
    pub fn hold_sends(&self, held: bool) {
        self.shared.state.lock().unwrap().allowance = held.then_some(0);
        self.shared.changed.notify_all();
    }

    /// Let `n` more sends or edits through, then hold the rest again.
    pub fn let_through(&self, n: usize) {
        let mut st = self.shared.state.lock().unwrap();
        st.allowance = Some(st.allowance.unwrap_or(0) + n);
        drop(st);
        self.shared.changed.notify_all();
    }

    /// Sends and edits held now.
    pub fn held(&self) -> usize {
        self.shared.state.lock().unwrap().waiting
    }

    /// Drop the faults not yet answered.
    pub fn clear_faults(&self) {
        self.shared.state.lock().unwrap().faults.clear();
    }

    pub fn fail_next_send(&self, status: u16, body: Value) {
        self.shared
            .state
            .lock()
            .unwrap()
            .faults
            .push_back((status, body));
    }

    /// The sends and edits so far (method, body).
    pub fn sent(&self) -> Vec<(String, Value)> {
        self.shared.state.lock().unwrap().sent.clone()
    }

    pub fn actions(&self) -> Vec<(String, Value)> {
        self.shared.state.lock().unwrap().actions.clone()
    }

    pub fn offsets(&self) -> Vec<i64> {
        self.shared.state.lock().unwrap().offsets.clone()
    }

    /// Wait (bounded) until at least `n` sends or edits arrived.
    pub fn wait_sent(&self, n: usize, limit: Duration) -> Vec<(String, Value)> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.sent();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (bounded) until a poll asked for `offset` or more.
    pub fn wait_offset(&self, offset: i64, limit: Duration) -> Vec<i64> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.offsets();
            if got.iter().any(|o| *o >= offset) || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A download: the file's bytes, or 404.
fn download(s: &Shared, path: &str) -> (u16, Vec<u8>) {
    let Some((token, file_path)) = path
        .strip_prefix("/file/bot")
        .and_then(|r| r.split_once('/'))
    else {
        return (404, b"not found".to_vec());
    };
    if token != s.token {
        return (401, b"unauthorized".to_vec());
    }
    let mut st = s.state.lock().unwrap();
    st.downloads.push(file_path.to_owned());
    if st.gone.iter().any(|g| g == file_path) {
        return (404, b"not found".to_vec());
    }
    match st.files.values().find(|(p, _, _)| p == file_path) {
        Some((_, _, bytes)) => (200, bytes.clone()),
        None => (404, b"not found".to_vec()),
    }
}

/// The parts of a `multipart/form-data` body: (headers, bytes) each.
fn parts(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return Vec::new();
    };
    let delim = format!("--{boundary}").into_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    let find = |from: usize, pat: &[u8]| {
        body[from..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|i| i + from)
    };
    while let Some(start) = find(pos, &delim) {
        let after = start + delim.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        let head_start = after + 2;
        let Some(head_end) = find(head_start, b"\r\n\r\n") else {
            break;
        };
        let next = find(head_end, &delim).unwrap_or(body.len());
        let headers = String::from_utf8_lossy(&body[head_start..head_end]).into_owned();
        // The part ends with CRLF before the next delimiter.
        let value = body[head_end + 4..next.saturating_sub(2)].to_vec();
        out.push((headers, value));
        pos = next;
    }
    out
}

fn upload(s: &Shared, method: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let mut up = Upload {
        method: method.to_owned(),
        fields: BTreeMap::new(),
        file_field: String::new(),
        file_name: String::new(),
        content_type: String::new(),
        bytes: Vec::new(),
    };
    for (headers, value) in parts(content_type, body) {
        let attr = |key: &str| {
            headers
                .split(&format!("{key}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_owned)
        };
        let name = attr("name").unwrap_or_default();
        match attr("filename") {
            Some(file) => {
                up.file_field = name;
                up.file_name = file;
                up.content_type = headers
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Type: "))
                    .unwrap_or_default()
                    .to_owned();
                up.bytes = value;
            }
            None => {
                up.fields
                    .insert(name, String::from_utf8_lossy(&value).into_owned());
            }
        }
    }
    let mut st = s.state.lock().unwrap();
    if let Some(f) = st.faults.pop_front() {
        return f;
    }
    st.next_message += 1;
    let id = st.next_message;
    st.uploads.push(up);
    (200, json!({"ok": true, "result": {"message_id": id}}))
}

/// Whether the client of `conn` hung up.
fn hung_up(conn: &TcpStream) -> bool {
    if conn.set_nonblocking(true).is_err() {
        return true;
    }
    let r = conn.peek(&mut [0u8; 1]);
    let _ = conn.set_nonblocking(false);
    match r {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

fn answer(s: &Shared, path: &str, body: &Value, conn: &TcpStream) -> Option<(u16, Value)> {
    if path.ends_with("/sendMessage") || path.ends_with("/editMessageText") {
        let mut st = s.state.lock().unwrap();
        st.waiting += 1;
        while st.allowance == Some(0) {
            st = s.changed.wait(st).unwrap();
        }
        if let Some(n) = st.allowance.as_mut() {
            *n -= 1;
        }
        st.waiting -= 1;
        drop(st);
        if hung_up(conn) {
            return None;
        }
    }
    if path.ends_with("/getUpdates") {
        {
            let mut st = s.state.lock().unwrap();
            if st.polling > 0 {
                st.conflicts += 1;
                return Some((
                    409,
                    json!({"ok": false, "error_code": 409, "description":
                        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}),
                ));
            }
            st.polling += 1;
        }
        let r = respond(s, path, body);
        s.state.lock().unwrap().polling -= 1;
        return Some(r);
    }
    Some(respond(s, path, body))
}

fn respond(s: &Shared, path: &str, body: &Value) -> (u16, Value) {
    let Some(rest) = path.strip_prefix("/bot") else {
        return (
            404,
            json!({"ok": false, "error_code": 404, "description": "Not Found"}),
        );
    };
    let Some((token, method)) = rest.split_once('/') else {
        return (
            404,
            json!({"ok": false, "error_code": 404, "description": "Not Found"}),
        );
    };
    if token != s.token {
        return (
            401,
            json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
        );
    }
    match method {
        "getMe" => (
            200,
            json!({"ok": true, "result": {"id": BOT_ID, "is_bot": true, "username": BOT_NAME}}),
        ),
        "getUpdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            let wait = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0).min(5));
            let deadline = Instant::now() + wait;
            let mut st = s.state.lock().unwrap();
            st.offsets.push(offset);
            loop {
                let due: Vec<Value> = st
                    .updates
                    .iter()
                    .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                    .cloned()
                    .collect();
                let left = deadline.saturating_duration_since(Instant::now());
                if !due.is_empty() || left.is_zero() {
                    return (200, json!({"ok": true, "result": due}));
                }
                st = s.changed.wait_timeout(st, left).unwrap().0;
            }
        }
        "sendMessage" | "editMessageText" => {
            let mut st = s.state.lock().unwrap();
            if let Some(f) = st.faults.pop_front() {
                return f;
            }
            st.sent.push((method.to_owned(), body.clone()));
            let id = if method == "sendMessage" {
                st.next_message += 1;
                st.next_message
            } else {
                body["message_id"].as_i64().unwrap_or(0)
            };
            (
                200,
                json!({"ok": true, "result": {"message_id": id, "chat": {"id": body["chat_id"]}}}),
            )
        }
        "getFile" => {
            let id = body["file_id"].as_str().unwrap_or_default().to_owned();
            let mut st = s.state.lock().unwrap();
            st.get_file.push(id.clone());
            match st.files.get(&id) {
                Some((path, size, _)) => (
                    200,
                    json!({"ok": true, "result": {"file_id": id, "file_size": size, "file_path": path}}),
                ),
                None => (
                    400,
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"}),
                ),
            }
        }
        "sendChatAction" | "setMessageReaction" | "setWebhook" | "deleteWebhook" => {
            let mut st = s.state.lock().unwrap();
            st.actions.push((method.to_owned(), body.clone()));
            s.changed.notify_all();
            (200, json!({"ok": true, "result": true}))
        }
        _ => (200, json!({"ok": true, "result": true})),
    }
}

fn serve(conn: TcpStream, s: &Shared) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut len = 0usize;
        let mut content_type = String::new();
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
                if k.trim().eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if k.trim().eq_ignore_ascii_case("content-type") {
                    content_type = v.trim().to_owned();
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, kind, out) = if path.starts_with("/file/") {
            let (status, bytes) = download(s, &path);
            (status, "application/octet-stream", bytes)
        } else if content_type.starts_with("multipart/form-data") {
            let method = path.rsplit('/').next().unwrap_or_default().to_owned();
            let token_ok = path
                .strip_prefix("/bot")
                .and_then(|r| r.split_once('/'))
                .is_some_and(|(t, _)| t == s.token);
            let (status, v) = if token_ok {
                upload(s, &method, &content_type, &body)
            } else {
                (
                    401,
                    json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
                )
            };
            (status, "application/json", v.to_string().into_bytes())
        } else {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let Some((status, out)) = answer(s, &path, &body, &conn) else {
                return;
            };
            (status, "application/json", out.to_string().into_bytes())
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
            out.len()
        );
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(&out).is_err() {
            return;
        }
    }
}
