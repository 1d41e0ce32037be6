//! `GET /ws`: the WebSocket RPC (docs/protocol.md, version 1). The upgrade
//! is refused for a foreign `Origin`; authentication is the bearer header or
//! the `connect` frame's token; chat runs stream their events as frames.

use super::auth::Principal;
use super::limit::ClientIp;
use super::{AppState, RequestId, audit};
use crate::access::Permission;
use crate::runtime::Turn;
use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exoclaw_core::agent::{AgentEvent, Finish};
use exoclaw_core::model::SessionFilter;
use exoclaw_core::{AgentId, SessionId};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub const PROTOCOL_VERSION: u64 = crate::version::PROTOCOL_VERSION as u64;
const MAX_FRAME: usize = 512 * 1024;
const AUTH_WINDOW: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(30);
const IDLE_LIMIT: Duration = Duration::from_secs(90);

/// Who is connecting, for the audit events of the connection.
#[derive(Clone)]
struct Peer {
    ip: std::net::IpAddr,
    request_id: String,
}

pub async fn upgrade(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = Peer { ip, request_id };
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
        let allowed = &state.runtime.settings.config.gateway.allowed_origins;
        if !allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
            // audited and logged at warn as security.origin_refused
            audit::origin_refused(&state, origin, peer.ip, Some(peer.request_id)).await;
            return super::error::ApiError::new(
                StatusCode::FORBIDDEN,
                "auth.origin_refused",
                "this Origin is not in gateway.allowed_origins",
            )
            .into_response();
        }
    }
    // A header credential is checked at upgrade; without one, the
    // `connect` frame must carry it.
    let header_who = match super::auth::bearer(&headers) {
        Some(t) => super::auth::authenticate(&state, Some(t), Some(&peer.request_id))
            .await
            .ok()
            .map(|p| (p, super::auth::digest(t))),
        None => None,
    };
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| serve(state, socket, header_who, peer))
}

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    kind: String,
    id: Option<Value>,
    method: String,
    #[serde(default)]
    params: Value,
}

fn ok(id: &Value, result: &Value) -> Message {
    Message::Text(
        json!({"type": "res", "id": id, "ok": true, "result": result})
            .to_string()
            .into(),
    )
}

fn err(id: &Value, code: &str, message: &str) -> Message {
    Message::Text(
        json!({"type": "res", "id": id, "ok": false, "error": {"code": code, "message": message}})
            .to_string()
            .into(),
    )
}

fn event(name: &str, params: &Value) -> Message {
    Message::Text(
        json!({"type": "event", "event": name, "params": params})
            .to_string()
            .into(),
    )
}

async fn serve(
    state: AppState,
    socket: WebSocket,
    header_who: Option<(Principal, [u8; 32])>,
    peer: Peer,
) {
    state.runtime.metrics.ws_connections.inc();
    serve_connection(&state, socket, header_who, &peer).await;
    state.runtime.metrics.ws_connections.dec();
}

async fn serve_connection(
    state: &AppState,
    socket: WebSocket,
    header_who: Option<(Principal, [u8; 32])>,
    peer: &Peer,
) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(256);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let closing = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut who: Option<Principal> = None;
    let mut connected = false;
    let mut runs = JoinSet::new();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let auth_deadline = tokio::time::sleep(AUTH_WINDOW);
    tokio::pin!(auth_deadline);
    let mut last_seen = tokio::time::Instant::now();
    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            _ = ping.tick() => {
                if last_seen.elapsed() > IDLE_LIMIT {
                    break;
                }
                let _ = out_tx.send(Message::Ping(Vec::new().into())).await;
                continue;
            }
            () = &mut auth_deadline, if !connected => {
                let _ = out_tx.send(close(4401, "no connect within 10 s")).await;
                break;
            }
            Some(_) = runs.join_next(), if !runs.is_empty() => continue,
        };
        let Some(Ok(frame)) = frame else { break };
        last_seen = tokio::time::Instant::now();
        let text = match frame {
            Message::Text(t) => t,
            Message::Close(_) => break,
            Message::Binary(_) => {
                let _ = out_tx
                    .send(err(
                        &Value::Null,
                        "request.invalid",
                        "binary frames are not used",
                    ))
                    .await;
                continue;
            }
            _ => continue,
        };
        let req: Request = match serde_json::from_str::<Request>(&text) {
            Ok(r) if r.kind == "req" => r,
            Ok(_) => {
                let _ = out_tx
                    .send(err(
                        &Value::Null,
                        "request.invalid",
                        "expected {\"type\": \"req\", ...}",
                    ))
                    .await;
                continue;
            }
            Err(e) => {
                let _ = out_tx
                    .send(err(&Value::Null, "request.invalid_json", &e.to_string()))
                    .await;
                continue;
            }
        };
        let id = req.id.clone().unwrap_or(Value::Null);
        if req.method == "connect" {
            let presented = req.params.get("token").and_then(Value::as_str);
            let authenticated = match &header_who {
                Some(p) => Ok(p.clone()),
                None => {
                    let rid = Some(peer.request_id.as_str());
                    super::auth::authenticate(state, presented, rid)
                        .await
                        .map(|p| (p, super::auth::digest(presented.unwrap_or_default())))
                }
            };
            let (principal, credential) = match authenticated {
                Ok(p) => p,
                Err(failure) => {
                    // audited and logged at warn (security.auth_failure), token never
                    if failure.audited_here() {
                        let rid = Some(peer.request_id.clone());
                        let channel = audit::Channel::WebSocket;
                        audit::auth_failure(state, channel, failure.reason(), "/ws", peer.ip, rid)
                            .await;
                    }
                    let _ = out_tx
                        .send(err(&id, failure.code(), failure.message()))
                        .await;
                    let _ = out_tx.send(close(4401, "unauthorized")).await;
                    break;
                }
            };
            let wanted = req
                .params
                .get("protocol")
                .and_then(Value::as_u64)
                .unwrap_or(PROTOCOL_VERSION);
            if wanted != PROTOCOL_VERSION {
                let _ = out_tx
                    .send(err(
                        &id,
                        "protocol.unsupported",
                        &format!("this gateway speaks protocol {PROTOCOL_VERSION}"),
                    ))
                    .await;
                continue;
            }
            connected = true;
            let rid = Some(peer.request_id.clone());
            let channel = audit::Channel::WebSocket;
            audit::auth_success(state, channel, &principal, &credential, Some(peer.ip), rid).await;
            who = Some(principal);
            let _ = out_tx
                .send(ok(&id, &json!({"protocol": PROTOCOL_VERSION, "server": {"name": "exoclaw", "version": crate::version::VERSION}})))
                .await;
            continue;
        }
        let Some(who) = who.as_ref() else {
            let _ = out_tx
                .send(err(&id, "auth.unauthorized", "send connect first"))
                .await;
            continue;
        };
        let reply = match dispatch(state, who, &req, &out_tx, &mut runs).await {
            Ok(result) => ok(&id, &result),
            Err((code, message)) => err(&id, code, &message),
        };
        if out_tx.send(reply).await.is_err() {
            break;
        }
    }
    // Event forwarders die with the connection; the runs themselves go on
    // (or are cancelled, with gateway.cancel_on_disconnect).
    runs.abort_all();
    drop(out_tx);
    let _ = writer.await;
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

type RpcResult = Result<Value, (&'static str, String)>;

fn param<'a>(req: &'a Request, key: &str) -> Option<&'a str> {
    req.params.get(key).and_then(Value::as_str)
}

fn store_err(e: exoclaw_core::store::StoreError) -> (&'static str, String) {
    match e {
        exoclaw_core::store::StoreError::NotFound => ("not_found", "no such resource".into()),
        other => {
            tracing::error!(error = %other, "store error in a WebSocket method");
            ("internal", "internal error; see the gateway log".into())
        }
    }
}

/// Every WebSocket method with the permission it requires (`connect` is
/// the authentication itself). `exoclaw routes` lists them.
pub const METHODS: &[(&str, Permission)] = &[
    ("ping", Permission::Status),
    ("agents.list", Permission::AgentsRead),
    ("sessions.list", Permission::SessionsRead),
    ("sessions.history", Permission::SessionsRead),
    ("sessions.reset", Permission::SessionsWrite),
    ("chat.send", Permission::Chat),
    ("chat.stop", Permission::Chat),
    ("approvals.list", Permission::ApprovalsDecide),
    ("approvals.approve", Permission::ApprovalsDecide),
    ("approvals.deny", Permission::ApprovalsDecide),
];

fn method_permission(method: &str) -> Option<Permission> {
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, p)| *p)
}

async fn dispatch(
    state: &AppState,
    who: &Principal,
    req: &Request,
    out: &mpsc::Sender<Message>,
    runs: &mut JoinSet<()>,
) -> RpcResult {
    let Some(perm) = method_permission(&req.method) else {
        return Err((
            "request.unknown_method",
            format!("no method {:?}", req.method),
        ));
    };
    if !who.can(perm) {
        tracing::warn!(
            event = "security.forbidden",
            actor = %who.actor,
            permission = %perm,
            method = %req.method,
            "permission denied"
        );
        return Err((
            "auth.forbidden",
            format!("this credential lacks the permission {perm}"),
        ));
    }
    let store = &state.store;
    match req.method.as_str() {
        "ping" => Ok(json!({})),
        "agents.list" => {
            let agents = store.list_agents(&who.tenant).await.map_err(store_err)?;
            Ok(json!({"agents": agents.iter().map(super::agents::agent_json).collect::<Vec<_>>()}))
        }
        "sessions.list" => {
            let filter = SessionFilter {
                agent_id: param(req, "agent").map(AgentId::new),
                user_id: Some(who.user.clone()),
            };
            let sessions = store
                .list_sessions(&who.tenant, &filter)
                .await
                .map_err(store_err)?;
            Ok(json!({"sessions": sessions}))
        }
        "sessions.history" | "sessions.reset" | "chat.stop" => {
            let id = param(req, "session_id")
                .ok_or(("request.invalid", "session_id: required".to_owned()))?;
            let session = store
                .get_session(&who.tenant, &SessionId::new(id))
                .await
                .map_err(store_err)?
                .filter(|s| s.user_id == who.user)
                .ok_or(("not_found", "no such session".to_owned()))?;
            match req.method.as_str() {
                "chat.stop" => Ok(json!({"stopped": state.runtime.runs.stop(&session.id)})),
                "sessions.reset" => {
                    state.runtime.runs.stop(&session.id);
                    store
                        .delete_session(&who.tenant, &session.id)
                        .await
                        .map_err(store_err)?;
                    Ok(json!({}))
                }
                _ => {
                    let after = req.params.get("after").and_then(Value::as_i64).unwrap_or(0);
                    let limit = req
                        .params
                        .get("limit")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                        .min(1000);
                    let messages = store
                        .list_messages(
                            &who.tenant,
                            &session.id,
                            after,
                            u32::try_from(limit).unwrap_or(1000),
                        )
                        .await
                        .map_err(store_err)?;
                    Ok(json!({"messages": messages}))
                }
            }
        }
        "chat.send" => {
            let message = param(req, "message")
                .filter(|m| !m.trim().is_empty())
                .ok_or(("request.invalid", "message: required".to_owned()))?;
            let agent = param(req, "agent").unwrap_or("default");
            let peer = param(req, "peer").unwrap_or("ws");
            let turn = state
                .runtime
                .start_turn(who, agent, "ws", peer, message.to_owned(), None)
                .await
                .map_err(|e| {
                    let api = super::openai::start_error(e);
                    (api.code, api.message)
                })?;
            let run_id = new_run_id();
            let result = json!({"session_id": turn.session.id, "run_id": run_id});
            let cancel_on_disconnect = state.runtime.settings.config.gateway.cancel_on_disconnect;
            runs.spawn(forward(turn, run_id, out.clone(), cancel_on_disconnect));
            Ok(result)
        }
        "approvals.list" => {
            let status = super::approvals::parse_status(param(req, "status"))
                .map_err(|e| (e.code, e.message))?;
            let items = crate::runtime::approval::visible(store.as_ref(), who, status)
                .await
                .map_err(store_err)?;
            Ok(json!({"approvals": items}))
        }
        "approvals.approve" | "approvals.deny" => {
            let id = param(req, "id").ok_or(("request.invalid", "id: required".to_owned()))?;
            let to = if req.method == "approvals.approve" {
                exoclaw_core::store::ApprovalStatus::Approved
            } else {
                exoclaw_core::store::ApprovalStatus::Denied
            };
            match crate::runtime::approval::decide_as(store.as_ref(), who, id, to, None).await {
                Ok(a) => Ok(json!({"approval": a})),
                Err(exoclaw_core::store::StoreError::Conflict(m)) => Err(("conflict", m)),
                Err(e) => Err(store_err(e)),
            }
        }
        other => Err(("request.unknown_method", format!("no method {other:?}"))),
    }
}

fn new_run_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

/// Stream one run's events to the connection, then its end.
async fn forward(
    mut turn: Turn,
    run_id: String,
    out: mpsc::Sender<Message>,
    cancel_on_disconnect: bool,
) {
    let guard = cancel_on_disconnect.then(|| turn.cancel.clone().drop_guard());
    let session_id = turn.session.id.clone();
    let base = json!({"run_id": run_id, "session_id": session_id});
    let with = |extra: Value| {
        let mut p = base.clone();
        if let (Value::Object(p), Value::Object(e)) = (&mut p, extra) {
            p.extend(e);
        }
        p
    };
    while let Some(e) = turn.events.recv().await {
        let frame = match e {
            AgentEvent::TextDelta(text) => event("chat.delta", &with(json!({"text": text}))),
            AgentEvent::ToolStarted { id, name } => {
                event("tool.started", &with(json!({"call_id": id, "name": name})))
            }
            AgentEvent::ToolFinished {
                id,
                name,
                ok,
                error_code,
            } => event(
                "tool.finished",
                &with(json!({"call_id": id, "name": name, "ok": ok, "error_code": error_code})),
            ),
            AgentEvent::Notice { code, message } => event(
                "chat.notice",
                &with(json!({"code": code, "message": message})),
            ),
        };
        if out.send(frame).await.is_err() {
            return; // connection gone: the guard (if any) cancels the run
        }
    }
    let frame = match (&mut turn.outcome).await {
        Ok(Ok(Ok(o))) => match o.finish {
            Finish::Complete => event(
                "chat.done",
                &with(
                    json!({"text": o.text, "usage": o.usage, "cost_micros": o.cost_micros, "trace_id": o.trace_id}),
                ),
            ),
            Finish::Cancelled => event(
                "chat.error",
                &with(
                    json!({"code": "cancelled", "message": "the run was cancelled", "trace_id": o.trace_id}),
                ),
            ),
            Finish::Failed { code, message } => event(
                "chat.error",
                &with(json!({"code": code, "message": message, "trace_id": o.trace_id})),
            ),
        },
        Ok(Ok(Err(e))) => {
            tracing::error!(error = %e, "store failure during a run");
            event(
                "chat.error",
                &with(
                    json!({"code": "internal", "message": "internal error; see the gateway log"}),
                ),
            )
        }
        Ok(Err(m)) => event(
            "chat.error",
            &with(json!({"code": "internal", "message": m})),
        ),
        Err(_) => event(
            "chat.error",
            &with(json!({"code": "internal", "message": "the run ended without a result"})),
        ),
    };
    if let Some(g) = guard {
        g.disarm();
    }
    let _ = out.send(frame).await;
}
