//! The two gates that may need an operator: a tool's own check asking for
//! approval (the shell policy in `ask` mode), and the provenance gate — once
//! untrusted content entered a run, a side-effecting call, or an external
//! one to a destination the run has not seen, is approved by an operator
//! (`ask`), refused (`deny`) or let through (`allow`), per
//! `tools.untrusted_content_policy`. The gate is the policy, not the model's
//! good behaviour. Approvals go through the [`Approvals`] port; each binds
//! to the exact call.

use super::audit;
use super::call::Call;
use super::policy::{Guards, UntrustedPolicy};
use exoclaw_core::store::AuditStore;
use exoclaw_core::tool::{ApprovalNeed, Approvals, Tool, ToolContext, ToolEffect, ToolError};
use exoclaw_guard::scrub;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// Whether a call is a dry run (never waits for an operator) or acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    DryRun,
    Act,
}

fn approvals(guards: &Guards) -> Result<&Arc<dyn Approvals>, ToolError> {
    guards.approvals.as_ref().ok_or_else(|| {
        ToolError::new(
            "security.approval_unavailable",
            "this call needs an operator's approval, and no approvals are configured",
        )
    })
}

/// Obtain `need` (already approved, or asked now when acting). `Ok` carries
/// the binding the call may act with.
pub(super) async fn approve(
    guards: &Guards,
    ctx: &ToolContext,
    need: &ApprovalNeed,
    stage: Stage,
) -> Result<String, ToolError> {
    let approvals = approvals(guards)?;
    if approvals.is_approved(ctx, need).await? {
        return Ok(need.binding.clone());
    }
    match stage {
        Stage::DryRun => Err(ToolError::new(
            "security.approval_required",
            format!(
                "{}; in ask mode an operator must approve it (exoclaw approvals)",
                need.rule
            ),
        )),
        Stage::Act => {
            approvals.request(ctx, need, guards.approval_wait).await?;
            Ok(need.binding.clone())
        }
    }
}

/// Whether this call is one the provenance gate stops once the run is
/// tainted.
fn is_gated(tool: &dyn Tool, ctx: &ToolContext, args: &Value) -> bool {
    match tool.effect() {
        ToolEffect::ReadOnly => false,
        ToolEffect::SideEffect => true,
        ToolEffect::External => tool.destination(args).is_none_or(|d| !ctx.run.has_seen(&d)),
    }
}

/// The provenance gate (see the module docs). `Ok(Some(binding))` when an
/// operator approved this very call.
pub(super) async fn provenance(
    guards: &Guards,
    store: Option<&Arc<dyn AuditStore>>,
    call: Call<'_>,
    stage: Stage,
) -> Result<Option<String>, ToolError> {
    let Call {
        ctx,
        name,
        tool,
        args,
    } = call;
    if !ctx.run.is_tainted() || !is_gated(tool, ctx, args) {
        return Ok(None);
    }
    match guards.untrusted {
        UntrustedPolicy::Allow => Ok(None),
        UntrustedPolicy::Deny => {
            audit::untrusted_denied(store, ctx, name).await;
            Err(ToolError::new(
                "security.untrusted_content",
                format!(
                    "{name} is refused: untrusted content entered this run and \
                     tools.untrusted_content_policy is deny"
                ),
            ))
        }
        UntrustedPolicy::Ask => {
            let rendered = format!("{name} {args}");
            let binding = hex::encode(Sha256::digest(
                format!(
                    "untrusted\0{}\0{}\0{rendered}",
                    ctx.tenant,
                    ctx.session.as_ref().map_or("", |s| s.as_str())
                )
                .as_bytes(),
            ));
            let need = ApprovalNeed {
                rule: "security.untrusted_content".to_owned(),
                shown: scrub::global()
                    .scrub_for(ctx.tenant.as_str(), &rendered)
                    .into_owned(),
                cwd: ctx.workspace.display().to_string(),
                binding,
            };
            approve(guards, ctx, &need, stage).await.map(Some)
        }
    }
}
