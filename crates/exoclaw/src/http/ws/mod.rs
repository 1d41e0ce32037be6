//! `GET /ws`: the WebSocket RPC (docs/protocol.md, version 1). The upgrade
//! is refused for a foreign `Origin`; authentication is the bearer header or
//! the `connect` frame's token; chat runs stream their events as frames.
//! This file holds the connection (upgrade, authentication, the loop);
//! `dispatch.rs` the methods, `frame.rs` the frames' types.

mod cron;
mod dispatch;
mod frame;
mod orchestration;
mod teams;

pub use dispatch::METHODS;

use super::audit;
use super::conn::{Closing, ConnSlot};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::limit::ClientIp;
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use exoclaw_gateway::access::Principal;
use frame::Request;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub const PROTOCOL_VERSION: u64 = exoclaw_gateway::version::PROTOCOL_VERSION as u64;
const MAX_FRAME: usize = 512 * 1024;
/// The read buffer a connection starts with: the common frame (a request,
/// a ping) fits; a bigger one grows it on demand, up to [`MAX_FRAME`].
/// tungstenite's default (128 KiB, allocated and zeroed eagerly) was most
/// of an idle connection's memory (issue 19).
const READ_BUFFER: usize = 4 * 1024;
/// Frames are written as they are sent (no batching buffer kept per
/// connection); what a peer that stops reading leaves unwritten is bounded
/// by this (a full frame and a half), then the send fails and the
/// connection closes.
const MAX_WRITE_BUFFER: usize = MAX_FRAME + MAX_FRAME / 2;
/// Frames queued for a connection's writer, at most.
const OUT_QUEUE: usize = 32;
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

/// The WebSocket RPC (docs/protocol.md): upgrade, then authenticate with
/// the bearer header or the first `connect` frame.
#[utoipa::path(get, path = "/ws", tag = "websocket",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol (docs/protocol.md)"),
        (status = 400, description = "Not a WebSocket upgrade, or ambiguous credentials", body = ErrorBody),
        (status = 403, description = "The `Origin` is not in `gateway.allowed_origins`", body = ErrorBody),
        (status = 429, description = "The address holds `gateway.max_ws_per_ip` WebSocket connections (`connection.limit`)", body = ErrorBody),
    ))]
pub async fn upgrade(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    slot: Option<Extension<Arc<ConnSlot>>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let peer = Peer {
        ip,
        request_id,
        slot: slot.map(|Extension(s)| s),
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
        let allowed = &state.runtime.settings.config.gateway.allowed_origins;
        // The dashboard's own pages (same origin) are always admitted.
        let own = super::ui::session::origin_matches(&headers);
        if !own && !allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
            // audited and logged at warn as security.origin_refused
            audit::origin_refused(&state, origin, peer.ip, Some(peer.request_id)).await;
            return ApiError::new(
                ErrorCode::AuthOriginRefused,
                "this Origin is not in gateway.allowed_origins",
            )
            .into_response();
        }
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => {
            let why = r.body_text();
            return ApiError::invalid(format!("expected a WebSocket upgrade: {why}"))
                .into_response();
        }
    };
    if super::auth::has_ambiguous_credentials(&headers) {
        return super::auth::ambiguous_credentials().into_response();
    }
    // A header credential is checked at upgrade; without one, the
    // `connect` frame must carry it.
    // A dashboard page's connection brings its session cookie instead.
    let header_who = match super::auth::bearer(&headers) {
        Some(t) => super::auth::authenticate(&state, Some(t), Some(&peer.request_id))
            .await
            .ok()
            .map(|who| Authed::token(who, t)),
        None => match super::ui::session::cookie_secret(&headers) {
            Some(secret) => super::ui::session::resume(&state, secret, Some(&peer.request_id))
                .await
                .ok()
                .map(|(who, credential, _)| Authed {
                    who,
                    digest: credential.digest,
                    presented: Presented::Dashboard(exoclaw_core::Secret::new(secret.to_owned())),
                }),
            None => None,
        },
    };
    // Counted from the upgrade, for the connection's life.
    let quota = &state.quotas.ws_per_ip;
    let Some(ip_place) = quota.try_hold(&peer.ip.to_string()) else {
        return super::state::quota_response(&state, quota);
    };
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| serve(state, socket, header_who, peer, ip_place))
}

async fn serve(
    state: AppState,
    socket: WebSocket,
    header_who: Option<Authed>,
    peer: Peer,
    ip_place: super::quota::Held,
) {
    state.runtime.metrics.ws_connections.inc();
    serve_connection(&state, socket, header_who, &peer).await;
    state.runtime.metrics.ws_connections.dec();
    drop(ip_place);
}

/// An authenticated connection: who, and the credential they presented,
/// kept to re-check it (see [`recheck`]).
#[derive(Clone)]
struct Authed {
    who: Principal,
    presented: Presented,
    /// The credential's SHA-256 (what the audit log's dedup keys on).
    digest: [u8; 32],
}

/// What a connection authenticated with.
#[derive(Clone)]
enum Presented {
    /// A bearer credential (header or `connect` frame).
    Token(exoclaw_core::Secret),
    /// A dashboard page's session cookie (its secret), re-checked as the
    /// session (expiry, sign-out) and the credential behind it.
    Dashboard(exoclaw_core::Secret),
}

impl Authed {
    fn token(who: Principal, token: &str) -> Self {
        Self {
            who,
            digest: super::auth::digest(token),
            presented: Presented::Token(exoclaw_core::Secret::new(token.to_owned())),
        }
    }
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
    // Frames waiting for the writer: a small bound, so a client that stops
    // reading holds back the runs it follows (their events wait in their
    // own bounded channels) until the write-stall timeout closes it.
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUT_QUEUE);
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
    // The connection's place under `gateway.max_ws_per_user`, from connect.
    let mut user_place: Option<super::quota::Held> = None;
    let mut runs = JoinSet::new();
    // Cancelled when the credential is revoked: every run this connection
    // started stops (see `forward`).
    let stop_runs = CancellationToken::new();
    let mut revocations = state.revocations.subscribe();
    let mut announcements = Some(state.runtime.delegations.subscribe());
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
            // The writer ended (the socket failed, or the client stopped
            // reading past gateway.write_stall_timeout_sec).
            () = out_tx.closed() => break Ending::Gone,
            a = async {
                match announcements.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            }, if authed.is_some() => {
                use tokio::sync::broadcast::error::RecvError;
                match a {
                    Ok(a) if subject.as_ref().is_some_and(|(t, u)| *t == a.tenant && *u == a.user) => {
                        let event = frame::event(
                            "chat.announce",
                            &frame::Announce {
                                session_id: &a.session,
                                agent: &a.agent,
                                delegation_id: &a.delegation_id,
                                status: a.status.as_str(),
                                text: &a.text,
                            },
                        );
                        let _ = out_tx.send(event).await;
                    }
                    Ok(_) => {}
                    // Too slow to keep up: the replies are in the sessions.
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "a connection missed announcements");
                    }
                    Err(RecvError::Closed) => announcements = None,
                }
                continue;
            }
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
                let refused = ApiError::invalid("binary frames are not used");
                let _ = out_tx.send(frame::err(&Value::Null, refused)).await;
                continue;
            }
            _ => continue,
        };
        let req: Request = match serde_json::from_str::<Request>(&text) {
            Ok(r) if r.kind == "req" => r,
            Ok(_) => {
                let refused = ApiError::invalid("expected {\"type\": \"req\", ...}");
                let _ = out_tx.send(frame::err(&Value::Null, refused)).await;
                continue;
            }
            Err(e) => {
                let refused = ApiError::new(ErrorCode::RequestInvalidJson, e.to_string());
                let _ = out_tx.send(frame::err(&Value::Null, refused)).await;
                continue;
            }
        };
        let id = req.id.clone().unwrap_or(Value::Null);
        if req.method == "connect" {
            match connect(state, &req, header_who.as_ref(), peer).await {
                Ok((a, result)) => {
                    if user_place.is_none() {
                        let quota = &state.quotas.ws_per_user;
                        let key = format!("{}/{}", a.who.tenant, a.who.user);
                        match quota.try_hold(&key) {
                            Some(place) => user_place = Some(place),
                            None => {
                                let refused = super::state::quota_refused(state, quota);
                                let _ = out_tx.send(frame::err(&id, refused)).await;
                                let _ = out_tx
                                    .send(close(
                                        1013,
                                        "too many WebSocket connections for this user",
                                    ))
                                    .await;
                                break Ending::Gone;
                            }
                        }
                    }
                    if let Some(slot) = &peer.slot {
                        slot.mark_authenticated();
                    }
                    authed = Some(a);
                    let _ = out_tx.send(frame::ok(&id, &result)).await;
                }
                Err(Refused::Retry(e)) => {
                    let _ = out_tx.send(frame::err(&id, e)).await;
                }
                Err(Refused::Close(e)) => {
                    let _ = out_tx.send(frame::err(&id, e)).await;
                    let _ = out_tx.send(close(4401, "unauthorized")).await;
                    break Ending::Gone;
                }
            }
            continue;
        }
        let Some(a) = authed.as_mut() else {
            let refused = ApiError::new(ErrorCode::AuthUnauthorized, "send connect first");
            let _ = out_tx.send(frame::err(&id, refused)).await;
            continue;
        };
        // Every method re-checks the credential (a revocation elsewhere
        // must not leave a connected socket serving) and counts against
        // the same per-user and per-address limits as HTTP requests.
        if let Err(failure) = recheck(state, a, peer).await {
            let _ = out_tx.send(frame::err(&id, failure.into_error())).await;
            break Ending::Revoked;
        }
        if let Err((scope, wait)) = limit(state, &a.who, peer) {
            let secs = super::state::note_rate_limited(state, scope, wait);
            let refused = ApiError::new(
                ErrorCode::RateLimited,
                format!("too many requests (gateway.rate_limit_rpm); retry in {secs}s"),
            );
            let _ = out_tx.send(frame::err(&id, refused)).await;
            continue;
        }
        let quota = &state.quotas.requests_per_tenant;
        let Some(in_flight) = quota.try_hold(a.who.tenant.as_str()) else {
            let refused = super::state::quota_refused(state, quota);
            let _ = out_tx.send(frame::err(&id, refused)).await;
            continue;
        };
        let answer =
            dispatch::dispatch(state, &a.who, &req, &id, &out_tx, &mut runs, &stop_runs).await;
        drop(in_flight);
        let reply = answer.unwrap_or_else(|e| frame::err(&id, e));
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
    drop(user_place);
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
    let rid = Some(peer.request_id.as_str());
    let again = match &authed.presented {
        Presented::Token(t) => super::auth::authenticate(state, Some(t.expose()), rid).await,
        Presented::Dashboard(secret) => super::ui::session::resume(state, secret.expose(), rid)
            .await
            .map(|(who, _, _)| who),
    };
    match again {
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
    Retry(ApiError),
    /// Close with 4401.
    Close(ApiError),
}

/// Authenticate a `connect` frame (or accept the upgrade's header
/// credential) and agree on the protocol.
async fn connect(
    state: &AppState,
    req: &Request,
    header_who: Option<&Authed>,
    peer: &Peer,
) -> Result<(Authed, frame::Connected), Refused> {
    let presented = req.params.get("token").and_then(Value::as_str);
    let authenticated = match header_who {
        Some(a) => Ok(a.clone()),
        None => {
            let rid = Some(peer.request_id.as_str());
            super::auth::authenticate(state, presented, rid)
                .await
                .map(|who| Authed::token(who, presented.unwrap_or_default()))
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
            return Err(Refused::Close(failure.into_error()));
        }
    };
    let wanted = req
        .params
        .get("protocol")
        .and_then(Value::as_u64)
        .unwrap_or(PROTOCOL_VERSION);
    if wanted != PROTOCOL_VERSION {
        return Err(Refused::Retry(ApiError::new(
            ErrorCode::ProtocolUnsupported,
            format!("this gateway speaks protocol {PROTOCOL_VERSION}"),
        )));
    }
    let rid = Some(peer.request_id.clone());
    let channel = audit::Channel::WebSocket;
    audit::auth_success(
        state,
        channel,
        &authed.who,
        &authed.digest,
        Some(peer.ip),
        rid,
    )
    .await;
    let result = frame::Connected {
        protocol: PROTOCOL_VERSION,
        server: frame::Server {
            name: "exoclaw",
            version: exoclaw_gateway::version::VERSION,
        },
    };
    Ok((authed, result))
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}
