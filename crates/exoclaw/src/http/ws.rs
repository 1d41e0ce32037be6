//! `GET /ws`: the WebSocket RPC (docs/protocol.md, version 1). The upgrade
//! is refused for a foreign `Origin`; authentication is the bearer header or
//! the `connect` frame's token; chat runs stream their events as frames.

use super::audit;
use super::conn::{Closing, ConnSlot};
use super::limit::ClientIp;
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exoclaw_core::agent::{AgentEvent, Finish};
use exoclaw_core::model::SessionFilter;
use exoclaw_core::{AgentId, SessionId};
use exoclaw_gateway::access::Permission;
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::runtime::{Turn, TurnEnd};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub const PROTOCOL_VERSION: u64 = exoclaw_gateway::version::PROTOCOL_VERSION as u64;
const MAX_FRAME: usize = 512 * 1024;
const AUTH_WINDOW: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(30);
const IDLE_LIMIT: Duration = Duration::from_secs(90);

/// Who is connecting, for the audit events of the connection.
#[derive(Clone)]
struct Peer {
    ip: std::net::IpAddr,
    request_id: String,
    /// The connection's place in the connection table (absent when the
    /// router is driven in-process).
    slot: Option<Arc<ConnSlot>>,
}

pub async fn upgrade(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    slot: Option<Extension<Arc<ConnSlot>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = Peer {
        ip,
        request_id,
        slot: slot.map(|Extension(s)| s),
    };
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
    if super::auth::has_ambiguous_credentials(&headers) {
        return super::auth::ambiguous_credentials().into_response();
    }
    // A header credential is checked at upgrade; without one, the
    // `connect` frame must carry it.
    let header_who = match super::auth::bearer(&headers) {
        Some(t) => super::auth::authenticate(&state, Some(t), Some(&peer.request_id))
            .await
            .ok()
            .map(|who| Authed {
                who,
                credential: exoclaw_core::Secret::new(t.to_owned()),
            }),
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

async fn serve(state: AppState, socket: WebSocket, header_who: Option<Authed>, peer: Peer) {
    state.runtime.metrics.ws_connections.inc();
    serve_connection(&state, socket, header_who, &peer).await;
    state.runtime.metrics.ws_connections.dec();
}

/// An authenticated connection: who, and the credential they presented,
/// kept to re-check it (see [`recheck`]).
#[derive(Clone)]
struct Authed {
    who: Principal,
    credential: exoclaw_core::Secret,
}

/// Why the loop of a connection ends early.
enum Ending {
    /// The peer closed, or the socket failed.
    Gone,
    /// The credential no longer authenticates: close 4401, stop the runs.
    Revoked,
}

async fn serve_connection(
    state: &AppState,
    socket: WebSocket,
    header_who: Option<Authed>,
    peer: &Peer,
) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(256);
    #[expect(
        clippy::disallowed_methods,
        reason = "the connection's writer: awaited when the connection ends"
    )]
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let closing = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut authed: Option<Authed> = None;
    let mut runs = JoinSet::new();
    // Cancelled when the credential is revoked: every run this connection
    // started stops (see `forward`).
    let stop_runs = CancellationToken::new();
    let mut revocations = state.revocations.subscribe();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut recheck_every = tokio::time::interval(recheck_period(state));
    recheck_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    recheck_every.tick().await;
    let auth_deadline = tokio::time::sleep(AUTH_WINDOW);
    tokio::pin!(auth_deadline);
    let mut last_seen = tokio::time::Instant::now();
    let ending = loop {
        let subject = authed
            .as_ref()
            .map(|a| (a.who.tenant.clone(), a.who.user.clone()));
        let frame = tokio::select! {
            f = stream.next() => f,
            _ = ping.tick() => {
                if last_seen.elapsed() > IDLE_LIMIT {
                    break Ending::Gone;
                }
                let _ = out_tx.send(Message::Ping(Vec::new().into())).await;
                continue;
            }
            _ = recheck_every.tick(), if authed.is_some() => {
                if let Some(a) = authed.as_mut()
                    && recheck(state, a, peer).await.is_err()
                {
                    break Ending::Revoked;
                }
                continue;
            }
            () = async {
                match &subject {
                    Some((tenant, user)) => revocations.concerning(tenant, user).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(a) = authed.as_mut()
                    && recheck(state, a, peer).await.is_err()
                {
                    break Ending::Revoked;
                }
                continue;
            }
            closing = async {
                match &peer.slot {
                    Some(slot) => slot.closing().await,
                    None => std::future::pending().await,
                }
            } => {
                let frame = match closing {
                    Closing::Displaced => close(1013, "too many connections; reconnect and authenticate"),
                    Closing::Shutdown => close(1001, "the gateway is shutting down"),
                };
                let _ = out_tx.send(frame).await;
                break Ending::Gone;
            }
            () = &mut auth_deadline, if authed.is_none() => {
                let _ = out_tx.send(close(4401, "no connect within 10 s")).await;
                break Ending::Gone;
            }
            Some(_) = runs.join_next(), if !runs.is_empty() => continue,
        };
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                if is_too_big(e) {
                    let _ = out_tx
                        .send(close(1009, "message too big (512 KiB at most)"))
                        .await;
                }
                break Ending::Gone;
            }
            None => break Ending::Gone,
        };
        last_seen = tokio::time::Instant::now();
        let text = match frame {
            Message::Text(t) => t,
            Message::Close(_) => break Ending::Gone,
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
            match connect(state, &req, header_who.as_ref(), peer).await {
                Ok((a, result)) => {
                    if let Some(slot) = &peer.slot {
                        slot.mark_authenticated();
                    }
                    authed = Some(a);
                    let _ = out_tx.send(ok(&id, &result)).await;
                }
                Err(Refused::Retry(code, message)) => {
                    let _ = out_tx.send(err(&id, code, &message)).await;
                }
                Err(Refused::Close(code, message)) => {
                    let _ = out_tx.send(err(&id, code, message)).await;
                    let _ = out_tx.send(close(4401, "unauthorized")).await;
                    break Ending::Gone;
                }
            }
            continue;
        }
        let Some(a) = authed.as_mut() else {
            let _ = out_tx
                .send(err(&id, "auth.unauthorized", "send connect first"))
                .await;
            continue;
        };
        // Every method re-checks the credential (a revocation elsewhere
        // must not leave a connected socket serving) and counts against
        // the same per-user and per-address limits as HTTP requests.
        if let Err(failure) = recheck(state, a, peer).await {
            let _ = out_tx
                .send(err(&id, failure.code(), failure.message()))
                .await;
            break Ending::Revoked;
        }
        if let Err((scope, wait)) = limit(state, &a.who, peer) {
            let secs = super::state::note_rate_limited(state, scope, wait);
            let _ = out_tx
                .send(err(
                    &id,
                    "rate_limited",
                    &format!("too many requests (gateway.rate_limit_rpm); retry in {secs}s"),
                ))
                .await;
            continue;
        }
        let reply = match dispatch(state, &a.who, &req, &out_tx, &mut runs, &stop_runs).await {
            Ok(result) => ok(&id, &result),
            Err((code, message)) => err(&id, code, &message),
        };
        if out_tx.send(reply).await.is_err() {
            break Ending::Gone;
        }
    };
    if matches!(ending, Ending::Revoked) {
        tracing::info!(
            event = "ws.revoked",
            "closing a WebSocket whose credential no longer authenticates"
        );
        let _ = out_tx.send(close(4401, "credential revoked")).await;
        stop_runs.cancel();
        // The forwarders cancel their runs and end at once.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while runs.join_next().await.is_some() {}
        })
        .await;
    }
    // Event forwarders die with the connection; the runs themselves go on
    // (or are cancelled, with gateway.cancel_on_disconnect).
    runs.abort_all();
    drop(out_tx);
    let _ = writer.await;
}

/// How often an open connection re-checks its credential.
fn recheck_period(state: &AppState) -> Duration {
    Duration::from_secs(
        state
            .runtime
            .settings
            .config
            .gateway
            .credential_recheck_sec
            .max(1),
    )
}

/// Authenticate again with the credential the connection presented; the
/// principal is replaced (a changed role applies at once). A store outage is
/// not a revocation: the connection keeps its principal.
async fn recheck(
    state: &AppState,
    authed: &mut Authed,
    peer: &Peer,
) -> Result<(), super::auth::AuthFailure> {
    use super::auth::AuthFailure;
    match super::auth::authenticate(
        state,
        Some(authed.credential.expose()),
        Some(&peer.request_id),
    )
    .await
    {
        Ok(who) => {
            authed.who = who;
            Ok(())
        }
        Err(AuthFailure::Unavailable) => Ok(()),
        Err(failure) => Err(failure),
    }
}

/// The per-user and per-address limits of one method call.
fn limit(state: &AppState, who: &Principal, peer: &Peer) -> Result<(), (&'static str, Duration)> {
    state
        .limits
        .check_user(&format!("{}/{}", who.tenant, who.user))
        .map_err(|wait| ("user", wait))?;
    state.limits.check_ip(peer.ip).map_err(|wait| ("ip", wait))
}

/// Whether a read failed because a frame or message was over the limit.
fn is_too_big(e: axum::Error) -> bool {
    e.into_inner()
        .downcast::<tungstenite::Error>()
        .is_ok_and(|e| matches!(*e, tungstenite::Error::Capacity(_)))
}

/// A refused `connect`.
enum Refused {
    /// The connection stays open (a protocol version it may retry).
    Retry(&'static str, String),
    /// Close with 4401.
    Close(&'static str, &'static str),
}

/// Authenticate a `connect` frame (or accept the upgrade's header
/// credential) and agree on the protocol.
async fn connect(
    state: &AppState,
    req: &Request,
    header_who: Option<&Authed>,
    peer: &Peer,
) -> Result<(Authed, Value), Refused> {
    let presented = req.params.get("token").and_then(Value::as_str);
    let authenticated = match header_who {
        Some(a) => Ok(a.clone()),
        None => {
            let rid = Some(peer.request_id.as_str());
            super::auth::authenticate(state, presented, rid)
                .await
                .map(|who| Authed {
                    who,
                    credential: exoclaw_core::Secret::new(presented.unwrap_or_default().to_owned()),
                })
        }
    };
    let authed = match authenticated {
        Ok(a) => a,
        Err(failure) => {
            // audited and logged at warn (security.auth_failure), token never
            if failure.audited_here() {
                let rid = Some(peer.request_id.clone());
                let channel = audit::Channel::WebSocket;
                audit::auth_failure(state, channel, failure.reason(), "/ws", peer.ip, rid).await;
            }
            return Err(Refused::Close(failure.code(), failure.message()));
        }
    };
    let wanted = req
        .params
        .get("protocol")
        .and_then(Value::as_u64)
        .unwrap_or(PROTOCOL_VERSION);
    if wanted != PROTOCOL_VERSION {
        return Err(Refused::Retry(
            "protocol.unsupported",
            format!("this gateway speaks protocol {PROTOCOL_VERSION}"),
        ));
    }
    let rid = Some(peer.request_id.clone());
    let channel = audit::Channel::WebSocket;
    let credential = super::auth::digest(authed.credential.expose());
    audit::auth_success(state, channel, &authed.who, &credential, Some(peer.ip), rid).await;
    let result = json!({
        "protocol": PROTOCOL_VERSION,
        "server": {"name": "exoclaw", "version": exoclaw_gateway::version::VERSION},
    });
    Ok((authed, result))
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
    stop_runs: &CancellationToken,
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
            runs.spawn(forward(
                turn,
                run_id,
                out.clone(),
                cancel_on_disconnect,
                stop_runs.clone(),
            ));
            Ok(result)
        }
        "approvals.list" => {
            let status = super::approvals::parse_status(param(req, "status"))
                .map_err(|e| (e.code, e.message))?;
            let deciders = super::approvals::deciders(state);
            let items =
                exoclaw_gateway::runtime::approval::visible(store.as_ref(), who, deciders, status)
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
            use exoclaw_gateway::runtime::approval::{DecideError, decide_as};
            let deciders = super::approvals::deciders(state);
            match decide_as(store.as_ref(), who, deciders, id, to, None).await {
                Ok(a) => Ok(json!({"approval": a})),
                Err(DecideError::Store(exoclaw_core::store::StoreError::Conflict(m))) => {
                    Err(("conflict", m))
                }
                Err(DecideError::Store(e)) => Err(store_err(e)),
                Err(DecideError::Forbidden(m)) => Err(("auth.forbidden", m.to_owned())),
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

/// Stream one run's events to the connection, then its end. When `revoked`
/// is cancelled (the connection's credential was revoked) the run is
/// cancelled too.
async fn forward(
    mut turn: Turn,
    run_id: String,
    out: mpsc::Sender<Message>,
    cancel_on_disconnect: bool,
    revoked: CancellationToken,
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
    loop {
        let e = tokio::select! {
            e = turn.events.recv() => e,
            () = revoked.cancelled() => {
                turn.cancel.cancel();
                return;
            }
        };
        let Some(e) = e else { break };
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
    let frame = match turn.end().await {
        TurnEnd::Ran(o) => match o.finish {
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
        TurnEnd::Broken { message } => event(
            "chat.error",
            &with(json!({"code": "internal", "message": message})),
        ),
    };
    if let Some(g) = guard {
        g.disarm();
    }
    let _ = out.send(frame).await;
}
