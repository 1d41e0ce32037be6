//! At start-up, what the last process of this instance left behind: runs
//! still `running` (it was killed, or stopped before they ended) and
//! delegations still `running`. Runs become `interrupted` in their trace,
//! and their session says so: unanswered tool calls get an `interrupted`
//! result, and a marked note ends the turn, so the user and the next turn
//! both see what happened. Delegations become `interrupted` in the history,
//! and the callers of async ones are told (a turn in the caller's session,
//! as for any async result). Only this instance's (`owner`) work is
//! touched: another gateway on the same database keeps its own.

use super::Runtime;
use super::delegation::announce;
use exoclaw_core::model::NewMessage;
use exoclaw_core::provider::ContentPart;
use exoclaw_core::store::orchestration::{DelegationMode, DelegationStatus};
use exoclaw_core::store::{SessionStore, StoreError};
use exoclaw_core::{SessionId, TenantId, now_ms};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// The note that ends an interrupted turn in its session.
pub const INTERRUPTED_NOTE: &str = "[This answer was interrupted: the gateway stopped while it was being written. Ask again if you still need it.]";

/// What a start-up found and marked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub runs: usize,
    pub delegations: usize,
}

impl Runtime {
    /// See the module docs. The announcements to callers go on in the
    /// background.
    pub async fn recover_interrupted(self: &Arc<Self>) -> anyhow::Result<Recovered> {
        let owner = self.delegations.owner().to_owned();
        let now = now_ms();
        let runs = self.store.interrupt_running_traces(&owner, now).await?;
        for t in &runs {
            if let Some(session) = &t.session_id
                && let Err(e) =
                    mark_session(self.store.as_ref(), &t.tenant_id, session, &t.id).await
            {
                tracing::warn!(error = %e, trace = %t.id, "cannot mark an interrupted turn in its session");
            }
        }
        let delegations = self.store.interrupt_running(&owner, now).await?;
        let found = Recovered {
            runs: runs.len(),
            delegations: delegations.len(),
        };
        if found != Recovered::default() {
            tracing::warn!(
                runs = found.runs,
                delegations = found.delegations,
                "runs and delegations interrupted by the last stop were marked; telling the callers of async ones"
            );
        }
        let rt = self.clone();
        self.supervisor.detach("delegation.recover", async move {
            for d in delegations.iter().filter(|d| d.mode == DelegationMode::Async) {
                let result = announce::Result::Failure {
                    status: DelegationStatus::Interrupted,
                    detail: "the gateway stopped before it finished; the task was not completed, ask again if it is still needed".into(),
                };
                announce::announce(&rt, d, result, false).await;
            }
            Ok(())
        });
        Ok(found)
    }
}

/// End an interrupted turn in `session`: an `interrupted` result for each
/// tool call of the last assistant message that has none, then the note.
async fn mark_session<S: SessionStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    session: &SessionId,
    trace: &str,
) -> Result<(), StoreError> {
    let messages = store.list_messages(tenant, session, 0, 0).await?;
    let Some(last) = messages.iter().rposition(|m| m.role == "assistant") else {
        return append_note(store, tenant, session, trace).await;
    };
    let parts = |m: &exoclaw_core::model::Message| -> Vec<ContentPart> {
        serde_json::from_value(m.content.clone()).unwrap_or_default()
    };
    let answered: HashSet<String> = messages[last + 1..]
        .iter()
        .filter(|m| m.role == "tool")
        .flat_map(parts)
        .filter_map(|p| match p {
            ContentPart::ToolResult { call_id, .. } => Some(call_id),
            _ => None,
        })
        .collect();
    let results: Vec<ContentPart> = parts(&messages[last])
        .into_iter()
        .filter_map(|p| match p {
            ContentPart::ToolCall(c) if !answered.contains(&c.id) => {
                Some(ContentPart::ToolResult {
                    call_id: c.id,
                    content: "error [interrupted]: the gateway stopped before this call finished"
                        .into(),
                    is_error: true,
                })
            }
            _ => None,
        })
        .collect();
    if !results.is_empty() {
        store
            .append_message(
                tenant,
                session,
                &NewMessage {
                    role: "tool".into(),
                    content: serde_json::to_value(&results)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                    meta: json!({"reason": "interrupted", "trace_id": trace}),
                },
            )
            .await?;
    }
    append_note(store, tenant, session, trace).await
}

async fn append_note<S: SessionStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    session: &SessionId,
    trace: &str,
) -> Result<(), StoreError> {
    let content = serde_json::to_value([ContentPart::Text {
        text: INTERRUPTED_NOTE.into(),
    }])
    .map_err(|e| StoreError::Invalid(e.to_string()))?;
    store
        .append_message(
            tenant,
            session,
            &NewMessage {
                role: "assistant".into(),
                content,
                meta: json!({"partial": true, "reason": "interrupted", "trace_id": trace}),
            },
        )
        .await
        .map(drop)
}
