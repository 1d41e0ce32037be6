//! The WebSocket RPC (docs/protocol.md) against the real binary, with the
//! `tungstenite` client.

use crate::chat::{setup, setup_with};
use crate::support::*;
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::Reply;
use serde_json::{Value, json};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest as _;
use tungstenite::{Message, WebSocket};

pub type Ws = WebSocket<TcpStream>;

pub fn open(gw: &Gateway, headers: &[(&str, &str)]) -> Result<Ws, tungstenite::Error> {
    let stream = TcpStream::connect(gw.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = format!("ws://{}/ws", gw.addr)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    match tungstenite::client(req, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            panic!("blocking handshake interrupted")
        }
    }
}

pub fn send(ws: &mut Ws, id: &str, method: &str, params: Value) {
    let frame = json!({"type": "req", "id": id, "method": method, "params": params});
    ws.send(Message::Text(frame.to_string().into())).unwrap();
}

/// The next JSON frame (pings skipped).
pub fn recv(ws: &mut Ws) -> Value {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => return json!({"closed": c.map(|c| u16::from(c.code))}),
            _ => {}
        }
    }
}

/// The response to request `id`, collecting events seen before it.
pub fn call(ws: &mut Ws, id: &str, method: &str, params: Value) -> (Value, Vec<Value>) {
    send(ws, id, method, params);
    let mut events = Vec::new();
    loop {
        let f = recv(ws);
        if f["type"] == "res" && f["id"] == id {
            return (f, events);
        }
        events.push(f);
    }
}

pub fn connected(gw: &Gateway) -> Ws {
    let mut ws = open(gw, &[]).unwrap();
    let (r, _) = call(
        &mut ws,
        "c",
        "connect",
        json!({"token": TOKEN, "protocol": 1, "client": {"name": "test"}}),
    );
    assert_eq!(r["ok"], true, "{r}");
    ws
}

/// Events until (and including) the run's chat.done / chat.error.
fn run_events(ws: &mut Ws, mut seen: Vec<Value>) -> Vec<Value> {
    while !seen
        .iter()
        .any(|e| e["event"] == "chat.done" || e["event"] == "chat.error")
    {
        seen.push(recv(ws));
    }
    seen
}

#[test]
fn handshake_authentication_and_origin() {
    let s = setup_with(
        r#"{"gateway": {"allowed_origins": ["https://dash.example.com"]}}"#,
        &[],
    );
    let refused = open(&s.gw, &[("Origin", "https://evil.example.com")]);
    match refused {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("foreign origin was not refused: {other:?}"),
    }
    assert!(
        open(&s.gw, &[("Origin", "https://dash.example.com")]).is_ok(),
        "listed origin works"
    );

    // Nothing but connect works before authentication.
    let mut ws = open(&s.gw, &[]).unwrap();
    let (r, _) = call(&mut ws, "1", "agents.list", json!({}));
    assert_eq!(r["error"]["code"], "auth.unauthorized");
    let (r, _) = call(
        &mut ws,
        "2",
        "connect",
        json!({"token": "wrong-token-wrong-token-wrong-token", "protocol": 1}),
    );
    assert_eq!(r["error"]["code"], "auth.unauthorized");
    assert_eq!(recv(&mut ws)["closed"], 4401);

    // The bearer header authenticates the upgrade; connect still negotiates.
    let auth = format!("Bearer {TOKEN}");
    let mut ws = open(&s.gw, &[("Authorization", &auth)]).unwrap();
    let (r, _) = call(&mut ws, "1", "connect", json!({"protocol": 1}));
    assert_eq!(r["result"]["protocol"], 1);
    let (r, _) = call(&mut ws, "2", "connect", json!({"protocol": 99}));
    assert_eq!(r["error"]["code"], "protocol.unsupported");
    // Bad frames get an error and the connection stays usable.
    ws.send(Message::Text("{not json".into())).unwrap();
    assert_eq!(recv(&mut ws)["error"]["code"], "request.invalid_json");
    let (r, _) = call(&mut ws, "3", "ping", json!({}));
    assert_eq!(r["ok"], true);
    let (r, _) = call(&mut ws, "4", "nope.method", json!({}));
    assert_eq!(r["error"]["code"], "request.unknown_method");

    // Every connect is audited (a failure without its token), and so is
    // the refused origin.
    let audit = s.gw.get("/v1/audit", Some(TOKEN)).json();
    assert!(!audit.to_string().contains("wrong-token"), "{audit}");
    let ws_events: Vec<(&str, &str)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["channel"] == "ws" || e["resource"] == "route:/ws")
        .map(|e| (e["action"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ws_events,
        [
            ("auth.success", ""),
            ("auth.failure", "invalid"),
            (
                "security.origin_refused",
                "origin not in gateway.allowed_origins"
            ),
        ],
        "{audit}"
    );
}

#[test]
fn chat_send_streams_deltas_tool_events_and_done() {
    let s = setup();
    s.fake.push(Reply::tool_calls([ToolCall {
        id: "t1".into(),
        name: "list_files".into(),
        arguments: json!({}),
    }]));
    s.fake.push(Reply::text("Nothing here yet").deltas(3));
    let mut ws = connected(&s.gw);
    let (r, early) = call(&mut ws, "1", "chat.send", json!({"message": "what files?"}));
    assert_eq!(r["ok"], true, "{r}");
    let session = r["result"]["session_id"].as_str().unwrap().to_owned();
    let events = run_events(&mut ws, early);
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        names.contains(&"tool.started") && names.contains(&"tool.finished"),
        "{names:?}"
    );
    let text: String = events
        .iter()
        .filter(|e| e["event"] == "chat.delta")
        .filter_map(|e| e["params"]["text"].as_str())
        .collect();
    assert_eq!(text, "Nothing here yet");
    let done = events.iter().find(|e| e["event"] == "chat.done").unwrap();
    assert_eq!(done["params"]["text"], "Nothing here yet");
    assert_eq!(done["params"]["session_id"], session.as_str());

    let (r, _) = call(&mut ws, "2", "sessions.list", json!({}));
    assert_eq!(r["result"]["sessions"][0]["id"], session.as_str());
    let (r, _) = call(
        &mut ws,
        "3",
        "sessions.history",
        json!({"session_id": session}),
    );
    assert_eq!(r["result"]["messages"].as_array().unwrap().len(), 4);
    let (r, _) = call(&mut ws, "4", "agents.list", json!({}));
    assert_eq!(r["result"]["agents"][0]["id"], "default");
    let (r, _) = call(
        &mut ws,
        "5",
        "sessions.reset",
        json!({"session_id": session}),
    );
    assert_eq!(r["ok"], true);
    let (r, _) = call(
        &mut ws,
        "6",
        "sessions.history",
        json!({"session_id": session}),
    );
    assert_eq!(r["error"]["code"], "not_found");
}

#[test]
fn chat_stop_cancels_and_keeps_the_partial_answer() {
    let s = setup();
    s.fake.push(
        Reply::text("partial words then silence")
            .deltas(4)
            .stall_after(2, Duration::from_secs(30)),
    );
    let mut ws = connected(&s.gw);
    let (r, mut events) = call(&mut ws, "1", "chat.send", json!({"message": "go"}));
    let session = r["result"]["session_id"].as_str().unwrap().to_owned();
    while !events.iter().any(|e| e["event"] == "chat.delta") {
        events.push(recv(&mut ws));
    }
    let (r, more) = call(&mut ws, "2", "chat.stop", json!({"session_id": session}));
    assert_eq!(r["result"]["stopped"], 1);
    events.extend(more);
    let events = run_events(&mut ws, events);
    let end = events.iter().find(|e| e["event"] == "chat.error").unwrap();
    assert_eq!(end["params"]["code"], "cancelled");
    let (r, _) = call(
        &mut ws,
        "3",
        "sessions.history",
        json!({"session_id": session}),
    );
    let last = r["result"]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["meta"]["partial"], true);
}

#[test]
fn oversized_frames_close_the_connection() {
    let s = setup();
    let mut ws = connected(&s.gw);
    let big = "x".repeat(600 * 1024);
    let _ = ws.send(Message::Text(big.into()));
    let mut closed = false;
    for _ in 0..5 {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed, "a 600 KiB frame must close the connection");
    // The gateway is fine.
    assert_eq!(s.gw.get("/healthz", None).status, 200);
}

/// A dashboard page's WebSocket: the gateway's own origin is admitted
/// without being listed, and the page's session cookie authenticates the
/// upgrade (no token in `connect`); a foreign origin is refused with the
/// same cookie, and a cookie that is no session authenticates nothing.
#[test]
fn a_dashboard_page_connects_with_its_session_cookie_from_its_own_origin() {
    use std::io::{Read as _, Write as _};
    let s = setup_with("{}", &[]);
    let addr = s.gw.addr;
    let own = format!("http://{addr}");
    // Sign in as the form does; the answer sets the cookie.
    let body = format!("token={TOKEN}&next=%2Fui%2F");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /ui/signin HTTP/1.1\r\nHost: {addr}\r\nOrigin: {own}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let cookie = raw
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: exoclaw_ui="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let session = format!("exoclaw_ui={cookie}");

    let mut ws = open(&s.gw, &[("Origin", &own), ("Cookie", &session)])
        .expect("the gateway's own origin is admitted");
    let (r, _) = call(&mut ws, "1", "connect", json!({"protocol": 1}));
    assert_eq!(r["result"]["protocol"], 1, "{r}");
    let (r, _) = call(&mut ws, "2", "agents.list", json!({}));
    assert_eq!(r["ok"], true, "{r}");

    // Another origin with the same cookie is still refused.
    match open(
        &s.gw,
        &[("Origin", "http://evil.example"), ("Cookie", &session)],
    ) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("a foreign origin was not refused: {other:?}"),
    }
    // A cookie of the right shape that is no session authenticates nothing.
    let forged = format!("exoclaw_ui={}", "A".repeat(43));
    let mut other = open(&s.gw, &[("Origin", &own), ("Cookie", &forged)]).unwrap();
    let (r, _) = call(&mut other, "1", "connect", json!({"protocol": 1}));
    assert_eq!(r["error"]["code"], "auth.unauthorized", "{r}");
}
