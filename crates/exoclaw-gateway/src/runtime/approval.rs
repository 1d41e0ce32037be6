//! Exec approvals (`tools.exec_approval.security = ask`): a flagged command
//! waits here until an operator approves or denies it (CLI, HTTP API or
//! WebSocket), or the wait times out. An approval covers exactly one command
//! hash (resolved argv, cwd and environment), so a wrapper such as `env` or
//! `sh -c` never inherits it; it stays valid for a day.

use crate::config::file::ApprovalDeciders;
use async_trait::async_trait;
use exoclaw_core::TenantId;
use exoclaw_core::model::Role;
use exoclaw_core::store::{
    Approval, ApprovalStatus, ApprovalStore, AuditStore, NewApproval, Store, StoreError,
};
use exoclaw_core::tool::{ApprovalNeed, Approvals, ToolContext, ToolError};
use std::sync::Arc;
use std::time::Duration;

/// How long an approval covers its command.
pub const VALID_FOR: Duration = Duration::from_secs(24 * 3600);
/// How often a waiting command looks for a decision (works across gateway
/// instances sharing one database).
const POLL: Duration = Duration::from_millis(250);

pub use exoclaw_core::now_ms;

/// Decide a pending approval (audited). `Conflict` if already decided.
pub async fn decide(
    store: &(impl ApprovalStore + AuditStore + ?Sized),
    tenant: &TenantId,
    id: &str,
    to: ApprovalStatus,
    by: &str,
    request_id: Option<String>,
) -> Result<Approval, StoreError> {
    let a = store.decide_approval(tenant, id, to, by, now_ms()).await?;
    let mut event = audit_event(tenant, by, id, to, request_id);
    event.agent_id = Some(a.agent_id.clone());
    event.session_id = a.session_id.clone();
    crate::audit::record(store, &event).await;
    tracing::info!(
        approval = id,
        decision = to.as_str(),
        by,
        "approval decided"
    );
    Ok(a)
}

/// Why `who` may not decide an approval they can see.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Seen but not theirs to decide (`tools.exec_approval.deciders`).
    #[error("{0}")]
    Forbidden(&'static str),
}

/// Whether `who` holds a rank that decides the tenant's approvals.
fn is_operator(who: &crate::access::Principal) -> bool {
    who.role <= Role::Operator
}

/// Decide as `who`, per `deciders`: approvals `who` cannot see are
/// `NotFound`, like ones that do not exist; seen but not theirs to decide
/// is `Forbidden`.
pub async fn decide_as(
    store: &(impl ApprovalStore + AuditStore + ?Sized),
    who: &crate::access::Principal,
    deciders: ApprovalDeciders,
    id: &str,
    to: ApprovalStatus,
    request_id: Option<String>,
) -> Result<Approval, DecideError> {
    let Some(approval) = store.get_approval(&who.tenant, id).await? else {
        return Err(StoreError::NotFound.into());
    };
    if !sees(who, deciders, &approval) {
        return Err(StoreError::NotFound.into());
    }
    let own = approval.user_id == who.user;
    let refusal = match deciders {
        ApprovalDeciders::Requester => None,
        ApprovalDeciders::Operator => (!is_operator(who))
            .then_some("approvals are decided by an operator, admin or owner (tools.exec_approval.deciders)"),
        ApprovalDeciders::AnotherOperator if !is_operator(who) => {
            Some("approvals are decided by an operator, admin or owner (tools.exec_approval.deciders)")
        }
        ApprovalDeciders::AnotherOperator => own.then_some(
            "approvals are decided by another person than the one whose run asked (tools.exec_approval.deciders = another_operator)",
        ),
    };
    if let Some(reason) = refusal {
        tracing::warn!(
            event = "security.forbidden",
            actor = %who.actor,
            approval = id,
            "refused deciding an approval"
        );
        return Err(DecideError::Forbidden(reason));
    }
    Ok(decide(store, &who.tenant, id, to, &who.actor, request_id).await?)
}

/// Whether `who` sees `approval`: their own always; the tenant's when they
/// may decide others' (admins, and operators unless only requesters decide).
fn sees(who: &crate::access::Principal, deciders: ApprovalDeciders, approval: &Approval) -> bool {
    approval.user_id == who.user
        || who.sees_all_users()
        || (deciders != ApprovalDeciders::Requester && is_operator(who) && who.scopes.is_none())
}

/// The approvals `who` may see (see [`decide_as`]).
pub async fn visible(
    store: &(impl ApprovalStore + AuditStore + ?Sized),
    who: &crate::access::Principal,
    deciders: ApprovalDeciders,
    status: Option<ApprovalStatus>,
) -> Result<Vec<Approval>, StoreError> {
    let mut items = store.list_approvals(&who.tenant, status).await?;
    items.retain(|a| sees(who, deciders, a));
    Ok(items)
}

/// The approvals port of the tool policy path, kept in the store: every
/// gateway instance on one database sees the same decisions.
pub struct StoreApprovals(pub Arc<dyn Store>);

impl StoreApprovals {
    fn request_of(ctx: &ToolContext, need: &ApprovalNeed) -> NewApproval {
        NewApproval {
            tenant_id: ctx.tenant.clone(),
            agent_id: ctx.agent.clone(),
            user_id: ctx.user.clone(),
            session_id: ctx.session.clone(),
            command: need.shown.clone(),
            cwd: need.cwd.clone(),
            command_hash: need.binding.clone(),
            rule: need.rule.clone(),
        }
    }
}

#[async_trait]
impl Approvals for StoreApprovals {
    async fn is_approved(&self, ctx: &ToolContext, need: &ApprovalNeed) -> Result<bool, ToolError> {
        let since = now_ms() - i64::try_from(VALID_FOR.as_millis()).unwrap_or(i64::MAX);
        self.0
            .is_approved(&ctx.tenant, &need.binding, since)
            .await
            .map_err(unavailable)
    }

    async fn request(
        &self,
        ctx: &ToolContext,
        need: &ApprovalNeed,
        wait: Duration,
    ) -> Result<(), ToolError> {
        await_approval(self.0.as_ref(), Self::request_of(ctx, need), wait).await
    }
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "used as map_err(unavailable)"
)]
fn unavailable(e: StoreError) -> ToolError {
    ToolError::new(
        "security.approval_unavailable",
        format!("approvals cannot be read: {e}"),
    )
}

/// Wait (bounded) for an operator's decision on `request`. `Ok(())` when the
/// command may run.
pub async fn await_approval(
    store: &(impl ApprovalStore + AuditStore + ?Sized),
    request: NewApproval,
    timeout: Duration,
) -> Result<(), ToolError> {
    let tenant = request.tenant_id.clone();
    let since = now_ms() - i64::try_from(VALID_FOR.as_millis()).unwrap_or(i64::MAX);
    let store_err = unavailable;
    if store
        .is_approved(&tenant, &request.command_hash, since)
        .await
        .map_err(store_err)?
    {
        return Ok(());
    }
    let pending = store
        .request_approval(&request, now_ms())
        .await
        .map_err(store_err)?;
    tracing::warn!(
        event = "security.approval_required",
        approval = %pending.id,
        rule = %pending.rule,
        "a flagged command waits for approval: exoclaw approvals approve {}",
        pending.id
    );
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        tokio::time::sleep(POLL).await;
        let current = store
            .get_approval(&tenant, &pending.id)
            .await
            .map_err(store_err)?;
        match current.map(|a| a.status) {
            Some(ApprovalStatus::Approved) => return Ok(()),
            Some(ApprovalStatus::Denied) => {
                return Err(ToolError::new(
                    "security.approval_denied",
                    format!("an operator denied this command (approval {})", pending.id),
                ));
            }
            Some(ApprovalStatus::Expired) | None => {
                return Err(ToolError::new(
                    "security.approval_timeout",
                    format!("approval {} expired", pending.id),
                ));
            }
            Some(ApprovalStatus::Pending) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = store
                .decide_approval(
                    &tenant,
                    &pending.id,
                    ApprovalStatus::Expired,
                    "system",
                    now_ms(),
                )
                .await;
            return Err(ToolError::new(
                "security.approval_timeout",
                format!(
                    "no operator decided approval {} within {}s",
                    pending.id,
                    timeout.as_secs()
                ),
            ));
        }
    }
}

/// The audit event of a decision.
pub fn audit_event(
    tenant: &exoclaw_core::TenantId,
    by: &str,
    id: &str,
    to: ApprovalStatus,
    request_id: Option<String>,
) -> exoclaw_core::model::NewAuditEvent {
    exoclaw_core::model::NewAuditEvent {
        tenant_id: tenant.clone(),
        actor: by.to_owned(),
        action: format!("approval.{}", to.as_str()),
        resource: format!("approval:{id}"),
        decision: if to == ApprovalStatus::Approved {
            "allow"
        } else {
            "deny"
        }
        .to_owned(),
        reason: String::new(),
        request_id,
        agent_id: None,
        session_id: None,
        detail: serde_json::json!({}),
    }
}
