//! Many connected clients (issue 19) against the real binary: the frame
//! limit, the WebSocket quotas per user and per address, the per-tenant
//! request and run quotas (one tenant's flood never starves another), a
//! client that stops reading, and shutdown with connections open. Each
//! limit is tested on both sides: over it the documented code, under it
//! served.

use crate::chat::{Setup, setup_with};
use crate::support::*;
use crate::ws::{call, connected, open, recv, send};
use exoclaw_providers::fake::Reply;
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// Poll `done` every 50 ms for at most `limit`.
fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metrics(s: &Setup) -> String {
    s.gw.get("/metrics", Some(TOKEN)).body
}

fn refused_metric(limit: &str) -> String {
    format!("exoclaw_connections_refused_total{{limit=\"{limit}\"}}")
}

#[test]
fn a_frame_over_512_kib_closes_with_1009_and_one_under_it_is_served() {
    let s = setup_with("{}", &[]);
    let mut ws = connected(&s.gw);
    // Under the limit: a 400 KiB request is read and answered.
    let pad = "x".repeat(400 * 1024);
    let (r, _) = call(&mut ws, "1", "ping", json!({ "pad": pad }));
    assert_eq!(r["ok"], true, "{r}");
    // Over it: the documented close code.
    let pad = "x".repeat(600 * 1024);
    send(&mut ws, "2", "ping", json!({ "pad": pad }));
    assert_eq!(recv(&mut ws)["closed"], 1009);
}

#[test]
fn websocket_connections_per_user_past_the_quota_get_connection_limit_and_1013() {
    let s = setup_with(r#"{"gateway": {"max_ws_per_user": 2}}"#, &[]);
    let mut first = connected(&s.gw);
    let _second = connected(&s.gw);
    let mut third = open(&s.gw, &[]).unwrap();
    let (r, _) = call(
        &mut third,
        "c",
        "connect",
        json!({"token": TOKEN, "protocol": 1}),
    );
    assert_eq!(r["error"]["code"], "connection.limit", "{r}");
    assert_eq!(recv(&mut third)["closed"], 1013);
    assert!(metrics(&s).contains(&refused_metric("ws_per_user")));
    // Under it again once one closes: served.
    first.close(None).unwrap();
    while first.read().is_ok() {}
    until("a place is freed", Duration::from_secs(10), || {
        let mut ws = open(&s.gw, &[]).unwrap();
        let (r, _) = call(
            &mut ws,
            "c",
            "connect",
            json!({"token": TOKEN, "protocol": 1}),
        );
        r["ok"] == true
    });
}

#[test]
fn websocket_upgrades_per_address_past_the_quota_get_429_connection_limit() {
    let s = setup_with(r#"{"gateway": {"max_ws_per_ip": 2}}"#, &[]);
    let a = open(&s.gw, &[]).unwrap();
    let _b = open(&s.gw, &[]).unwrap();
    match open(&s.gw, &[]) {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            let body =
                String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned();
            assert!(body.contains("connection.limit"), "{body}");
        }
        other => panic!("a third upgrade was not refused: {other:?}"),
    }
    assert!(metrics(&s).contains(&refused_metric("ws_per_ip")));
    drop(a);
    until("a place is freed", Duration::from_secs(10), || {
        open(&s.gw, &[]).is_ok()
    });
}

/// A second tenant with an admin: its key.
fn second_tenant(s: &Setup) -> String {
    let r = request(
        s.gw.addr,
        "POST",
        "/v1/tenants",
        Some(TOKEN),
        Some(&json!({"id": "beta"}).to_string()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let out = run(
        &s.home.path,
        &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)],
        &[
            "users", "add", "b-admin", "--role", "admin", "--tenant", "beta", "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["api_key"].as_str().unwrap().to_owned()
}

/// A chat completion of `user` sent on its own connection, not read yet.
fn start_chat(s: &Setup, key: &str, user: &str, stream: bool) -> TcpStream {
    let mut c = TcpStream::connect(s.gw.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = json!({"model": "default", "stream": stream, "user": user,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    write!(
        c,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    c
}

fn chat_as(s: &Setup, key: &str, user: &str) -> Response {
    request(
        s.gw.addr,
        "POST",
        "/v1/chat/completions",
        Some(key),
        Some(
            &json!({"model": "default", "user": user,
                "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
        ),
    )
}

#[test]
fn one_tenants_flood_of_requests_gets_tenant_busy_and_another_tenant_is_served() {
    let s = setup_with(r#"{"gateway": {"max_requests_per_tenant": 2}}"#, &[]);
    let beta = second_tenant(&s);
    // Two requests of the default tenant held in flight by a slow provider.
    for _ in 0..2 {
        s.fake
            .push(Reply::text("slow").stall_after(1, Duration::from_secs(3)));
    }
    let held: Vec<_> = (0..2)
        .map(|i| start_chat(&s, TOKEN, &format!("flood-{i}"), false))
        .collect();
    until("both in flight", Duration::from_secs(20), || {
        s.fake.pending() == 0
    });
    // Over the quota: refused at once with the documented code.
    let r = chat_as(&s, TOKEN, "flood-3");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "tenant.busy");
    // Another tenant is served meanwhile.
    s.fake.push(Reply::text("hello beta"));
    let r = chat_as(&s, &beta, "b");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("hello beta"));
    // Counted (read once the tenant's held requests are done: /metrics is
    // a request of that tenant too).
    until("the refusal is counted", Duration::from_secs(60), || {
        metrics(&s).contains(&refused_metric("requests_per_tenant"))
    });
    drop(held);
}

#[test]
fn one_tenants_streamed_runs_past_the_quota_get_tenant_busy_and_another_tenant_streams() {
    let s = setup_with(r#"{"gateway": {"max_runs_per_tenant": 1}}"#, &[]);
    let beta = second_tenant(&s);
    s.fake
        .push(Reply::text("slow stream").stall_after(1, Duration::from_secs(20)));
    let mut held = start_chat(&s, TOKEN, "stream-1", true);
    // The stream has begun (the request itself is answered: only the run
    // is still held).
    let mut buf = [0u8; 256];
    assert!(held.read(&mut buf).unwrap() > 0);
    until("the run is in flight", Duration::from_secs(20), || {
        s.fake.pending() == 0
    });
    let r = chat_as(&s, TOKEN, "stream-2");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "tenant.busy");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_runs_per_tenant")
    );
    s.fake.push(Reply::text("beta runs"));
    let r = chat_as(&s, &beta, "b");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(metrics(&s).contains(&refused_metric("runs_per_tenant")));
}

/// An answer of many one-character deltas: tens of MB of events, more than
/// the socket buffers of a client that does not read.
fn flood_reply() -> Reply {
    let text = "x".repeat(200_000);
    Reply::text(text).deltas(200_000)
}

#[test]
fn an_sse_client_that_stops_reading_is_disconnected_and_the_gateway_stays_bounded() {
    let s = setup_with(r#"{"gateway": {"write_stall_timeout_sec": 1}}"#, &[]);
    s.fake.push(flood_reply());
    let mut c = start_chat(&s, TOKEN, "sleepy", true);
    // The client reads nothing until the gateway gives up on it.
    until("the write stall is seen", Duration::from_secs(60), || {
        metrics(&s).contains(&refused_metric("write_stall"))
    });
    // Then what was buffered ends: the stream is cut, not finished.
    let mut all = Vec::new();
    let _ = c.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(!text.contains("[DONE]"), "the stream was cut");
    // The gateway still serves.
    assert_eq!(s.gw.get("/healthz", None).status, 200);
}

#[test]
fn a_websocket_client_that_stops_reading_is_disconnected() {
    let s = setup_with(r#"{"gateway": {"write_stall_timeout_sec": 1}}"#, &[]);
    s.fake.push(flood_reply());
    let mut ws = connected(&s.gw);
    send(
        &mut ws,
        "1",
        "chat.send",
        json!({"agent": "default", "message": "talk a lot"}),
    );
    until("the write stall is seen", Duration::from_secs(60), || {
        metrics(&s).contains(&refused_metric("write_stall"))
    });
    // Reading what was buffered ends in a closed connection, not a done run.
    let mut done = false;
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => done |= t.contains("chat.done"),
            Ok(Message::Close(_)) => {}
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(!done, "the run's events were cut");
}

#[test]
fn shutdown_tells_websockets_going_away_and_drains_the_runs_in_flight() {
    let mut s = setup_with(r#"{"gateway": {"shutdown_grace_sec": 20}}"#, &[]);
    let mut sockets: Vec<_> = (0..20).map(|_| connected(&s.gw)).collect();
    // A streamed run in flight: its answer arrives 2 s into the stream.
    s.fake.push(
        Reply::text("finished after shutdown")
            .deltas(2)
            .stall_after(2, Duration::from_secs(2)),
    );
    let mut c = start_chat(&s, TOKEN, "drain", true);
    let mut buf = [0u8; 256];
    assert!(c.read(&mut buf).unwrap() > 0);
    s.gw.signal("TERM");
    for ws in &mut sockets {
        assert_eq!(recv(ws)["closed"], 1001);
    }
    // The run drains: its stream completes.
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("[DONE]"), "{text}");
    assert!(!text.contains("exoclaw_error"), "{text}");
    let status = s.gw.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn unauthenticated_upgrades_past_the_per_address_limit_displace_the_oldest_with_1013() {
    let s = setup_with(r#"{"gateway": {"max_unauthenticated_per_ip": 3}}"#, &[]);
    // An authenticated socket is never displaced.
    let mut authed = connected(&s.gw);
    let mut strangers: Vec<_> = (0..3).map(|_| open(&s.gw, &[]).unwrap()).collect();
    // One more upgrade (and the HTTP request that makes it) is admitted by
    // closing the oldest stranger.
    let _newest = open(&s.gw, &[]).unwrap();
    assert_eq!(recv(&mut strangers[0])["closed"], 1013);
    // Under the limit: the rest stay open and can still authenticate.
    let (r, _) = call(
        &mut strangers[2],
        "c",
        "connect",
        json!({"token": TOKEN, "protocol": 1}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let (r, _) = call(&mut authed, "p", "ping", json!({}));
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        metrics(&s)
            .contains("exoclaw_connections_displaced_total{limit=\"unauthenticated_per_ip\"}")
    );
}
