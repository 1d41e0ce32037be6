//! Announcing async results: when an async delegation or spawn ends (or a
//! restart finds it interrupted; one stopped by `/stopall` is not told
//! about), its result enters the caller's session as
//! a new turn of the caller, which may then tell the user; the caller's
//! reply goes out to whoever listens ([`Announcement`]: the WebSocket
//! forwards it to the session's user; channel adapters deliver it on their
//! channel). Exactly once: the history's `announced` flag is claimed
//! first ([`exoclaw_core::store::DelegationStore::mark_announced`]), so two
//! gateways, or a retry, never announce one result twice.

use super::super::launch::Launch;
use super::super::{Runtime, TurnEnd};
use crate::access::Principal;
use exoclaw_core::model::Role;
use exoclaw_core::store::orchestration::{Delegation, DelegationStatus};
use exoclaw_core::tool::Lineage;
use exoclaw_core::{AgentId, SessionId, TenantId, UserId};
use serde_json::json;

/// What an ended async delegation brings back.
pub enum Result {
    Answer(String),
    Failure {
        status: DelegationStatus,
        detail: String,
    },
}

/// A result announced into a caller's session, with the caller's reply.
#[derive(Clone, Debug)]
pub struct Announcement {
    pub tenant: TenantId,
    pub user: UserId,
    pub session: SessionId,
    /// The agent whose session it is (the caller).
    pub agent: AgentId,
    pub delegation_id: String,
    pub status: DelegationStatus,
    /// The caller's reply to the result (what the user should read).
    pub text: String,
}

/// Announce `d`'s result into its caller's session (see the module docs).
pub async fn announce(rt: &Runtime, d: &Delegation, result: Result, tainted: bool) {
    let Some(session_id) = d.caller_session.clone() else {
        return;
    };
    match rt.store.mark_announced(&d.tenant_id, &d.id).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!(error = %e, delegation = %d.id, "cannot claim an announcement");
            return;
        }
    }
    let session = match rt.store.get_session(&d.tenant_id, &session_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::info!(delegation = %d.id, "the caller's session is gone; nothing to announce into");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, delegation = %d.id, "cannot read the caller's session");
            return;
        }
    };
    let caller = match rt.store.get_agent(&d.tenant_id, &d.caller_agent).await {
        Ok(Some(a)) => a,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, delegation = %d.id, "cannot read the calling agent");
            return;
        }
    };
    let who = match kind_of(d) {
        "subagent" => format!("your subagent (delegation {})", d.id),
        _ => format!("agent {} (delegation {})", d.target_agent, d.id),
    };
    let (status, body) = match result {
        Result::Answer(text) => {
            let text = if tainted {
                exoclaw_guard::markers::wrap(&format!("delegation:{}", d.id), &text)
            } else {
                text
            };
            (
                DelegationStatus::Done,
                format!("[{who} finished the task you gave it; its answer follows]\n{text}"),
            )
        }
        Result::Failure { status, detail } => (
            status,
            format!(
                "[{who} did not finish the task you gave it ({}): {detail}]",
                status.as_str()
            ),
        ),
    };
    let input = format!(
        "{body}\n[This is an automatic message, not from the user. Tell the user what they need to know from it, briefly.]"
    );
    let launched = rt
        .launch(Launch {
            who: Principal {
                actor: format!("agent:{}", d.target_agent),
                role: Role::User,
                tenant: d.tenant_id.clone(),
                user: d.user_id.clone(),
                scopes: None,
            },
            agent: caller,
            session,
            input,
            input_meta: json!({"announce": d.id, "status": status.as_str()}),
            request_id: None,
            lineage: Lineage::default(),
            parent_cancel: None,
            tainted,
            trace_name: "announce",
            clone: None,
            lane: super::super::lanes::Lane::Main,
            handed_over: super::super::launch::HandedOver::Unknown,
            directory: None,
        })
        .await;
    let mut turn = match launched {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, delegation = %d.id, "cannot announce a delegation result");
            return;
        }
    };
    while turn.events.recv().await.is_some() {}
    let text = match turn.end().await {
        TurnEnd::Ran(o) => o.text,
        TurnEnd::Broken { message, .. } => {
            tracing::warn!(delegation = %d.id, %message, "the announcement turn broke");
            return;
        }
    };
    // Nobody listening is fine: the reply is in the session.
    let _ = rt.delegations.announcements.send(Announcement {
        tenant: d.tenant_id.clone(),
        user: d.user_id.clone(),
        session: session_id,
        agent: d.caller_agent.clone(),
        delegation_id: d.id.clone(),
        status,
        text,
    });
}

fn kind_of(d: &Delegation) -> &'static str {
    match d.kind {
        exoclaw_core::store::orchestration::DelegationKind::Spawn => "subagent",
        exoclaw_core::store::orchestration::DelegationKind::Delegate => "delegate",
    }
}
