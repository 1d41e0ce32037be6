//! The WebSocket's methods once a connection is authenticated: each with
//! its permission ([`METHODS`]), answered by [`dispatch`]; `chat.send`
//! streams its run's events ([`forward`]).

use super::super::error::{ApiError, ErrorCode};
use super::super::state::AppState;
use super::frame::{self, Request};
use axum::extract::ws::Message;
use exoclaw_core::agent::{AgentEvent, Finish};
use exoclaw_core::model::SessionFilter;
use exoclaw_core::store::StoreError;
use exoclaw_core::{AgentId, SessionId};
use exoclaw_gateway::access::{Permission, Principal};
use exoclaw_gateway::runtime::turn::Inbound;
use exoclaw_gateway::runtime::{Turn, TurnEnd};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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
    ("chat.stopall", Permission::Chat),
    ("approvals.list", Permission::ApprovalsDecide),
    ("approvals.approve", Permission::ApprovalsDecide),
    ("approvals.deny", Permission::ApprovalsDecide),
    ("agents.links.list", Permission::AgentsRead),
    ("agents.links.create", Permission::AgentsWrite),
    ("agents.links.delete", Permission::AgentsWrite),
    ("delegations.list", Permission::SessionsRead),
    ("delegations.get", Permission::SessionsRead),
    ("bindings.list", Permission::AgentsRead),
    ("bindings.create", Permission::AgentsWrite),
    ("bindings.delete", Permission::AgentsWrite),
    ("teams.list", Permission::AgentsRead),
    ("teams.get", Permission::AgentsRead),
    ("teams.create", Permission::AgentsWrite),
    ("teams.update", Permission::AgentsWrite),
    ("teams.delete", Permission::AgentsWrite),
    ("teams.tasks.list", Permission::AgentsRead),
    ("teams.tasks.get", Permission::AgentsRead),
    ("teams.tasks.create", Permission::AgentsWrite),
    ("teams.tasks.claim", Permission::AgentsWrite),
    ("teams.tasks.complete", Permission::AgentsWrite),
    ("teams.tasks.fail", Permission::AgentsWrite),
    ("teams.tasks.comment", Permission::AgentsWrite),
    ("cron.list", Permission::SessionsRead),
    ("cron.get", Permission::SessionsRead),
    ("cron.runs", Permission::SessionsRead),
    ("cron.create", Permission::Chat),
    ("cron.update", Permission::Chat),
    ("cron.delete", Permission::Chat),
    ("cron.run", Permission::Chat),
];

fn method_permission(method: &str) -> Option<Permission> {
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, p)| *p)
}

/// A store failure as the WebSocket answers it: `not_found`, or `internal`
/// (logged).
fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(),
        other => {
            tracing::error!(error = %other, "store error in a WebSocket method");
            ApiError::new(ErrorCode::Internal, "internal error; see the gateway log")
        }
    }
}

fn required(what: &str) -> ApiError {
    ApiError::invalid(format!("{what}: required"))
}

fn unknown(method: &str) -> ApiError {
    ApiError::new(
        ErrorCode::RequestUnknownMethod,
        format!("no method {method:?}"),
    )
}

/// Answer one request of an authenticated connection: the `res` frame.
pub async fn dispatch(
    state: &AppState,
    who: &Principal,
    req: &Request,
    id: &Value,
    out: &mpsc::Sender<Message>,
    runs: &mut JoinSet<()>,
    stop_runs: &CancellationToken,
) -> Result<Message, ApiError> {
    let Some(perm) = method_permission(&req.method) else {
        return Err(unknown(&req.method));
    };
    if !who.can(perm) {
        tracing::warn!(
            event = "security.forbidden",
            actor = %who.actor,
            permission = %perm,
            method = %req.method,
            "permission denied"
        );
        return Err(ApiError::forbidden(format!(
            "this credential lacks the permission {perm}"
        )));
    }
    let store = &state.store;
    match req.method.as_str() {
        "ping" => Ok(frame::ok(id, &frame::Empty {})),
        m if super::orchestration::handles(m) => {
            super::orchestration::answer(state, who, req, id).await
        }
        m if super::teams::handles(m) => super::teams::answer(state, who, req, id).await,
        m if super::cron::handles(m) => super::cron::answer(state, who, req, id).await,
        "agents.list" => {
            let agents = store.list_agents(&who.tenant).await.map_err(store_err)?;
            Ok(frame::ok(id, &super::super::agents::AgentList::of(&agents)))
        }
        "sessions.list" => {
            let filter = SessionFilter {
                agent_id: req.param("agent").map(AgentId::new),
                user_id: Some(who.user.clone()),
                ..Default::default()
            };
            let sessions = store
                .list_sessions(&who.tenant, &filter)
                .await
                .map_err(store_err)?;
            Ok(frame::ok(
                id,
                &super::super::sessions::SessionList::of(sessions),
            ))
        }
        "sessions.history" | "sessions.reset" | "chat.stop" | "chat.stopall" => {
            let session_id = req
                .param("session_id")
                .ok_or_else(|| required("session_id"))?;
            let session = store
                .get_session(&who.tenant, &SessionId::new(session_id))
                .await
                .map_err(store_err)?
                .filter(|s| s.user_id == who.user)
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such session"))?;
            match req.method.as_str() {
                "chat.stop" | "chat.stopall" => {
                    let all = req.method == "chat.stopall";
                    let s = state.runtime.stop(&session.id, all);
                    Ok(frame::ok(
                        id,
                        &frame::Stopped {
                            session_id: &session.id,
                            stopped: s.runs,
                            delegations: s.delegations,
                        },
                    ))
                }
                "sessions.reset" => {
                    state.runtime.runs.stop(&session.id);
                    store
                        .delete_session(&who.tenant, &session.id)
                        .await
                        .map_err(store_err)?;
                    Ok(frame::ok(id, &frame::Empty {}))
                }
                _ => {
                    let after = req.params.get("after").and_then(Value::as_i64).unwrap_or(0);
                    let limit = match req.params.get("limit").and_then(Value::as_u64) {
                        None | Some(0) => 500,
                        Some(n) => u32::try_from(n.min(1000)).unwrap_or(1000),
                    };
                    let mut messages = store
                        .list_messages(&who.tenant, &session.id, after, limit + 1)
                        .await
                        .map_err(store_err)?;
                    let more = messages.len() > limit as usize;
                    messages.truncate(limit as usize);
                    let next_after = more.then(|| messages.last().map(|m| m.seq)).flatten();
                    let messages = messages.into_iter().map(Into::into).collect();
                    Ok(frame::ok(
                        id,
                        &frame::History {
                            messages,
                            next_after,
                        },
                    ))
                }
            }
        }
        "chat.send" => {
            let message = req
                .param("message")
                .filter(|m| !m.trim().is_empty())
                .ok_or_else(|| required("message"))?;
            let peer = req.param("peer").unwrap_or("ws");
            // Without `agent`, the tenant's bindings decide (channel `ws`,
            // this peer, this user); with none that matches, `default`.
            let agent = match req.param("agent") {
                Some(a) => AgentId::new(a),
                None => exoclaw_gateway::runtime::bindings::resolve(
                    store.as_ref(),
                    &who.tenant,
                    "ws",
                    None,
                    peer,
                    &who.user,
                )
                .await
                .map_err(store_err)?,
            };
            let quota = &state.quotas.runs_per_tenant;
            let run_place = quota
                .try_hold(who.tenant.as_str())
                .ok_or_else(|| super::super::state::quota_refused(state, quota))?;
            let inbound = state
                .runtime
                .receive(who, agent.as_str(), "ws", peer, message.to_owned(), None)
                .await
                .map_err(super::super::openai::start_error)?;
            let turn = match inbound {
                Inbound::Turn(t) => t,
                Inbound::Stopped(s) => {
                    return Ok(frame::ok(
                        id,
                        &frame::Stopped {
                            session_id: &s.session,
                            stopped: s.runs,
                            delegations: s.delegations,
                        },
                    ));
                }
                Inbound::Replied(text) => {
                    return Ok(frame::ok(id, &frame::Replied { text: &text }));
                }
            };
            let run_id = new_run_id();
            let reply = frame::ok(
                id,
                &frame::Started {
                    session_id: &turn.session.id,
                    run_id: &run_id,
                },
            );
            let cancel_on_disconnect = state.runtime.settings.config.gateway.cancel_on_disconnect;
            runs.spawn(forward(
                turn,
                run_id,
                out.clone(),
                cancel_on_disconnect,
                stop_runs.clone(),
                run_place,
            ));
            Ok(reply)
        }
        "approvals.list" => {
            let status = super::super::approvals::parse_status(req.param("status"))?;
            let deciders = super::super::approvals::deciders(state);
            let items =
                exoclaw_gateway::runtime::approval::visible(store.as_ref(), who, deciders, status)
                    .await
                    .map_err(store_err)?;
            Ok(frame::ok(
                id,
                &super::super::approvals::ApprovalList::of(items),
            ))
        }
        "approvals.approve" | "approvals.deny" => {
            let approval = req.param("id").ok_or_else(|| required("id"))?;
            let to = if req.method == "approvals.approve" {
                exoclaw_core::store::ApprovalStatus::Approved
            } else {
                exoclaw_core::store::ApprovalStatus::Denied
            };
            use exoclaw_gateway::runtime::approval::{DecideError, decide_as};
            let deciders = super::super::approvals::deciders(state);
            match decide_as(store.as_ref(), who, deciders, approval, to, None).await {
                Ok(a) => Ok(frame::ok(
                    id,
                    &super::super::approvals::Decided { approval: a.into() },
                )),
                Err(DecideError::Store(StoreError::Conflict(m))) => {
                    Err(ApiError::new(ErrorCode::Conflict, m))
                }
                Err(DecideError::Store(e)) => Err(store_err(e)),
                Err(DecideError::Forbidden(m)) => Err(ApiError::forbidden(m)),
            }
        }
        other => Err(unknown(other)),
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
    run_place: super::super::quota::Held,
) {
    use frame::RunEvent;
    let guard = cancel_on_disconnect.then(|| turn.cancel.clone().drop_guard());
    let session_id = turn.session.id.clone();
    let with = |body| RunEvent {
        run_id: &run_id,
        session_id: &session_id,
        body,
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
            AgentEvent::TextDelta(text) => frame::event("chat.delta", &with(frame::Delta { text })),
            AgentEvent::ToolStarted { id, name } => frame::event(
                "tool.started",
                &RunEvent {
                    run_id: &run_id,
                    session_id: &session_id,
                    body: frame::ToolStarted { call_id: id, name },
                },
            ),
            AgentEvent::ToolFinished {
                id,
                name,
                ok,
                error_code,
            } => frame::event(
                "tool.finished",
                &RunEvent {
                    run_id: &run_id,
                    session_id: &session_id,
                    body: frame::ToolFinished {
                        call_id: id,
                        name,
                        ok,
                        error_code,
                    },
                },
            ),
            AgentEvent::Notice { code, message } => frame::event(
                "chat.notice",
                &RunEvent {
                    run_id: &run_id,
                    session_id: &session_id,
                    body: frame::Notice { code, message },
                },
            ),
        };
        if out.send(frame).await.is_err() {
            return; // connection gone: the guard (if any) cancels the run
        }
    }
    let failed = |failure: frame::Failed<'_>| {
        frame::event(
            "chat.error",
            &RunEvent {
                run_id: &run_id,
                session_id: &session_id,
                body: failure,
            },
        )
    };
    let ended = turn.end().await;
    drop(run_place);
    let frame = match ended {
        TurnEnd::Ran(o) => match &o.finish {
            Finish::Complete => frame::event(
                "chat.done",
                &RunEvent {
                    run_id: &run_id,
                    session_id: &session_id,
                    body: frame::Done {
                        text: o.text,
                        usage: o.usage.into(),
                        cost_micros: o.cost_micros,
                        trace_id: o.trace_id,
                    },
                },
            ),
            Finish::Cancelled => failed(frame::Failed {
                code: "cancelled",
                message: "the run was cancelled",
                trace_id: Some(&o.trace_id),
            }),
            Finish::Failed { code, message } => failed(frame::Failed {
                code,
                message,
                trace_id: Some(&o.trace_id),
            }),
        },
        TurnEnd::Broken { code, message } => failed(frame::Failed {
            code,
            message: &message,
            trace_id: None,
        }),
    };
    if let Some(g) = guard {
        g.disarm();
    }
    let _ = out.send(frame).await;
}
