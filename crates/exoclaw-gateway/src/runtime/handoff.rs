//! Handoff: an agent hands the conversation over to another agent. The
//! `handoff` tool sets a routing override for the conversation (its channel,
//! peer and user): every following message addressed to the agent that
//! handed over goes to the target instead, which starts with the
//! conversation so far (its summary and recent turns) in its instructions.
//! `handoff {"action": "clear"}` (from either agent) or the user's
//! `/handoff clear` returns the conversation to the original agent; an
//! override idle for `agents.defaults.handoff.idle_sec` lapses by itself.
//! A handoff needs the same permission as a delegation (a link, or a team);
//! the overrides are listed by `GET /v1/handoffs`.

use super::delegation::{directory, spawn};
use super::launch::HandedOver;
use super::{Late, Runtime, StartError};
use crate::access::Principal;
use async_trait::async_trait;
use exoclaw_core::model::Session;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::store::teams::Handoff;
use exoclaw_core::tool::{Check, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use exoclaw_core::{AgentId, TenantId, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

/// Longest reason a handoff keeps.
const MAX_REASON: usize = 2_000;

/// The agent a message to `agent` on (`channel`, `peer`) goes to: the
/// handoff target while an override of that conversation is live (with
/// the override), else `agent` itself. A lapsed override is cleared on the
/// way.
pub(crate) async fn route(
    rt: &Runtime,
    dir: &super::directory::Directory,
    who: &Principal,
    agent: &str,
    channel: &str,
    peer: &str,
) -> Result<(String, Option<Handoff>), StartError> {
    if !dir.any_handoff().await? {
        return Ok((agent.to_owned(), None));
    }
    let Some(h) = rt
        .store
        .get_handoff(&who.tenant, channel, peer, &who.user)
        .await?
    else {
        return Ok((agent.to_owned(), None));
    };
    if h.from_agent.as_str() != agent {
        return Ok((agent.to_owned(), None));
    }
    let idle_ms = i64::try_from(rt.settings.config.agents.defaults.handoff.idle_sec)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let now = now_ms();
    if now.saturating_sub(h.last_active_at) > idle_ms {
        rt.store
            .clear_handoff(&who.tenant, channel, peer, &who.user)
            .await?;
        tracing::info!(from = %h.from_agent, to = %h.to_agent, "a handoff lapsed after its idle time");
        return Ok((agent.to_owned(), None));
    }
    rt.store
        .touch_handoff(&who.tenant, channel, peer, &who.user, now)
        .await?;
    Ok((h.to_agent.to_string(), Some(h)))
}

/// `/handoff clear`: the conversation goes back to its original agent.
/// Returns that agent, when there was a handoff.
pub(crate) async fn clear(
    rt: &Runtime,
    who: &Principal,
    channel: &str,
    peer: &str,
) -> Result<Option<AgentId>, StartError> {
    let Some(h) = rt
        .store
        .get_handoff(&who.tenant, channel, peer, &who.user)
        .await?
    else {
        return Ok(None);
    };
    rt.store
        .clear_handoff(&who.tenant, channel, peer, &who.user)
        .await?;
    Ok(Some(h.from_agent))
}

/// The instructions' section for an agent a conversation was handed to:
/// who handed it over, why, and the conversation so far. Empty otherwise.
pub(crate) async fn context_for(
    rt: &Runtime,
    dir: &super::directory::Directory,
    tenant: &TenantId,
    session: &Session,
    handed_over: HandedOver,
) -> String {
    let handoff = match handed_over {
        HandedOver::Known(h) => h,
        HandedOver::Unknown if !dir.any_handoff().await.unwrap_or(true) => None,
        HandedOver::Unknown => rt
            .store
            .get_handoff(tenant, &session.channel, &session.peer, &session.user_id)
            .await
            .ok()
            .flatten(),
    };
    let handoff = match handoff {
        Some(h) if h.to_agent == session.agent_id => h,
        _ => return String::new(),
    };
    let scope = exoclaw_core::model::SessionScope {
        agent_id: handoff.from_agent.clone(),
        user_id: session.user_id.clone(),
        channel: session.channel.clone(),
        peer: session.peer.clone(),
    };
    let earlier = match rt.store.get_or_create_session(tenant, &scope).await {
        Ok(s) => spawn::parent_context(rt.store.as_ref(), tenant, Some(&s.id))
            .await
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    format!(
        "\n\n## Handed over to you\nAgent {} handed this conversation over to you{}. You now answer the user \
         here until the conversation is handed back (the `handoff` tool with action `clear`).{}",
        handoff.from_agent,
        if handoff.reason.is_empty() {
            String::new()
        } else {
            format!(" because: {}", handoff.reason)
        },
        if earlier.is_empty() {
            String::new()
        } else {
            format!("\n\nThe conversation so far:\n{earlier}")
        }
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

enum Asked {
    To { agent: AgentId, reason: String },
    Clear,
}

fn parse(args: &Value) -> Result<Asked, ToolError> {
    let a: Args =
        serde_json::from_value(args.clone()).map_err(|e| ToolError::invalid_args(e.to_string()))?;
    match (a.action.as_deref(), a.agent) {
        (Some("clear"), None) => Ok(Asked::Clear),
        (Some("clear"), Some(_)) => Err(ToolError::invalid_args(
            "give either `agent` (hand over) or `action: clear` (hand back), not both",
        )),
        (Some(other), _) => Err(ToolError::invalid_args(format!(
            "action: only \"clear\", not {other:?}"
        ))),
        (None, Some(agent)) if exoclaw_core::id::is_valid_slug(&agent) => {
            let reason = a.reason.unwrap_or_default();
            if reason.len() > MAX_REASON {
                return Err(ToolError::invalid_args(format!(
                    "reason: at most {MAX_REASON} bytes"
                )));
            }
            Ok(Asked::To {
                agent: AgentId::new(agent),
                reason,
            })
        }
        (None, Some(_)) => Err(ToolError::invalid_args("agent: an agent id")),
        (None, None) => Err(ToolError::invalid_args(
            "give `agent` to hand the conversation over, or `action: clear` to hand it back",
        )),
    }
}

/// The `handoff` tool (see the module docs).
pub struct HandoffTool(pub Late);

#[async_trait]
impl Tool for HandoffTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "handoff".into(),
            description: "Hand this conversation over to another agent: from now on the user's messages go to it \
                 (with the conversation so far), until it or you hand it back with action \"clear\". Use it when \
                 another agent should take over, not for one question (use `delegate` for that)."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "agent": {"type": "string", "description": "the agent that takes over"},
                    "reason": {"type": "string", "description": "why, for the agent taking over"},
                    "action": {"type": "string", "enum": ["clear"], "description": "clear: hand the conversation back to its original agent"}
                },
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        parse(args).map(|_| Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let asked = parse(args)?;
        let rt = self
            .0
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or_else(|| ToolError::new("handoff.unavailable", "the gateway is stopping"))?;
        let store_err = |e: exoclaw_core::store::StoreError| {
            tracing::error!(error = %e, "store failure in a handoff");
            ToolError::failed("the handoff could not be recorded; see the gateway log")
        };
        let Some(session) = ctx.session.as_ref() else {
            return Err(ToolError::new(
                "handoff.no_conversation",
                "there is no conversation to hand over here",
            ));
        };
        let session = rt
            .store
            .get_session(&ctx.tenant, session)
            .await
            .map_err(store_err)?
            .ok_or_else(|| ToolError::new("handoff.no_conversation", "the conversation is gone"))?;
        if ctx.lineage.depth > 0 {
            return Err(ToolError::new(
                "handoff.not_here",
                "only the agent talking to the user can hand the conversation over (this run was delegated)",
            ));
        }
        let (channel, peer, user) = (&session.channel, &session.peer, &session.user_id);
        let current = rt
            .store
            .get_handoff(&ctx.tenant, channel, peer, user)
            .await
            .map_err(store_err)?;
        match asked {
            Asked::Clear => {
                let Some(h) = current else {
                    return Ok(ToolOutput::text(
                        "The conversation was not handed over; nothing to clear.",
                    ));
                };
                rt.store
                    .clear_handoff(&ctx.tenant, channel, peer, user)
                    .await
                    .map_err(store_err)?;
                Ok(ToolOutput::text(format!(
                    "Handed back: the user's next messages go to {} again.",
                    h.from_agent
                )))
            }
            Asked::To { agent, reason } => {
                if agent == ctx.agent {
                    return Err(ToolError::new(
                        "handoff.self",
                        "the conversation is already yours",
                    ));
                }
                let reachable =
                    directory::reachable(rt.store.as_ref(), &ctx.tenant, &ctx.agent, user)
                        .await
                        .map_err(store_err)?;
                if !reachable.iter().any(|c| c.id == agent) {
                    return Err(ToolError::new(
                        "handoff.not_allowed",
                        format!(
                            "{} may not hand over to {agent}: a permission link (or a shared team) is needed, as for `delegate`",
                            ctx.agent
                        ),
                    ));
                }
                // The conversation's home stays the agent it was first
                // addressed to: `clear` always goes back there.
                let from = current.map_or_else(|| ctx.agent.clone(), |h| h.from_agent);
                if from == agent {
                    rt.store
                        .clear_handoff(&ctx.tenant, channel, peer, user)
                        .await
                        .map_err(store_err)?;
                    return Ok(ToolOutput::text(format!(
                        "Handed back: the user's next messages go to {agent} again."
                    )));
                }
                let now = now_ms();
                rt.store
                    .set_handoff(&Handoff {
                        tenant_id: ctx.tenant.clone(),
                        channel: channel.clone(),
                        peer: peer.clone(),
                        user_id: user.clone(),
                        from_agent: from,
                        to_agent: agent.clone(),
                        reason,
                        created_at: now,
                        last_active_at: now,
                    })
                    .await
                    .map_err(store_err)?;
                Ok(ToolOutput::text(format!(
                    "Handed over: the user's next messages go to {agent}, with this conversation. Tell the user, briefly."
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_ask_for_one_thing() {
        assert!(matches!(
            parse(&json!({"agent": "billing", "reason": "invoice"})),
            Ok(Asked::To { .. })
        ));
        assert!(matches!(
            parse(&json!({"action": "clear"})),
            Ok(Asked::Clear)
        ));
        for bad in [
            json!({}),
            json!({"action": "clear", "agent": "x"}),
            json!({"action": "later"}),
            json!({"agent": "Not Valid"}),
            json!({"agent": "a", "extra": 1}),
        ] {
            assert_eq!(
                parse(&bad).err().map(|e| e.code),
                Some("tool.invalid_args".into()),
                "{bad}"
            );
        }
    }
}
