//! An in-tree fake of the Telegram Bot API on loopback (std threads,
//! HTTP/1.1 keep-alive): `getMe`, long-polling `getUpdates` (bounded wait,
//! filtered by offset, every offset recorded), `sendMessage` and
//! `editMessageText` (recorded; scripted faults such as 429 with
//! `retry_after`, 5xx or refused markup first), `sendChatAction` and
//! `setMessageReaction`, `setWebhook` and `deleteWebhook` (recorded apart), and 401 for a wrong token.

use serde_json::{Value, json};
use std::collections::VecDeque;
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

fn answer(s: &Shared, path: &str, body: &Value) -> (u16, Value) {
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
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, out) = answer(s, &path, &body);
        let out = out.to_string();
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            out.len()
        );
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}
