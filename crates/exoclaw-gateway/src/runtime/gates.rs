//! Quality gates: checks an agent's settings hang on its outputs. On an
//! event (`run.completed`: an answer of the agent; `delegation.completed`:
//! an answer the agent got from a delegation; `team_task.completed`: a team
//! task the agent completes), each gate runs:
//!
//! - `command`: a shell command in the sandbox, through the one tool path
//!   (`exec`, under the shell policy), with the output on its stdin; exit 0
//!   passes, anything else fails with the command's output as feedback;
//! - `agent`: a reviewer agent reads the output and answers `APPROVED` or
//!   `REJECTED` with feedback (its own runs skip their gates: no
//!   recursion).
//!
//! A failing gate with `block_on_failure` holds the output back: the
//! producer revises it with the feedback, up to `max_retries` times, then
//! the output fails clearly (`gate.failed`). A failing gate without it
//! passes the output on with a warning.

use super::agent_settings::{AgentSettings, GateEvent, GateKind, GateSpec};
use super::{Runtime, TurnEnd};
use crate::access::Principal;
use exoclaw_core::model::{Agent, Role, SessionScope};
use exoclaw_core::tool::{Lineage, RunState, ToolContext};
use exoclaw_core::{AgentId, TenantId, UserId};
use exoclaw_tools::{InvokeMode, ToolPolicy};
use serde_json::json;
use std::sync::Arc;

/// Longest feedback a failed gate hands back, in bytes.
const MAX_FEEDBACK: usize = 4 * 1024;

/// A reviewer's (an agent gate's, the evaluate loop's evaluator's) verdict: the first word decides; the rest is feedback.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Approved,
    Rejected(String),
}

pub(crate) fn verdict(reply: &str) -> Verdict {
    let trimmed = reply.trim_start();
    let word: String = trimmed
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    let rest = trimmed[word.len().min(trimmed.len())..]
        .trim_start_matches([':', '.', '-', ' ', '\n'])
        .trim()
        .to_owned();
    match word.as_str() {
        "APPROVED" => Verdict::Approved,
        "REJECTED" => Verdict::Rejected(rest),
        // An answer that is neither is not an approval.
        _ => Verdict::Rejected(reply.trim().to_owned()),
    }
}

/// What the gates of one event said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every gate passed (or there were none).
    Passed,
    /// A gate failed. `block`: the output must be held back and revised.
    Failed {
        gate: String,
        feedback: String,
        block: bool,
        retries: u32,
    },
}

/// The gates of `agent` for `event`.
pub fn of(agent: &Agent, event: GateEvent) -> Vec<GateSpec> {
    AgentSettings::from_stored(agent.id.as_str(), &agent.config)
        .gates
        .into_iter()
        .filter(|g| g.event == event)
        .collect()
}

/// The note a passed-through output carries after a failed, non-blocking
/// gate.
pub fn warning(gate: &str, feedback: &str) -> String {
    format!("\n\n[quality gate {gate} did not pass: {feedback}]")
}

/// The message a producer revises with.
pub fn revise_with(gate: &str, feedback: &str) -> String {
    format!(
        "[Automatic message: your answer did not pass the quality gate {gate}. Feedback:\n{feedback}\n\
         Revise your answer; reply with the whole revised answer.]"
    )
}

impl Runtime {
    /// Run `gates` (of `owner`, an agent of `tenant`, for `user`) over
    /// `output`; the first failure decides. A gate that cannot run at all
    /// (a missing reviewer, a refused command) fails with the reason.
    ///
    /// Boxed: an agent gate starts a run, whose own gates would call this
    /// again; the box breaks that cycle of future types.
    pub(crate) fn check_gates<'a>(
        self: &'a Arc<Self>,
        tenant: &'a TenantId,
        user: &'a UserId,
        owner: &'a AgentId,
        gates: &'a [GateSpec],
        output: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Outcome> {
        Box::pin(self.check_gates_inner(tenant, user, owner, gates, output))
    }

    async fn check_gates_inner(
        self: &Arc<Self>,
        tenant: &TenantId,
        user: &UserId,
        owner: &AgentId,
        gates: &[GateSpec],
        output: &str,
    ) -> Outcome {
        for (i, gate) in gates.iter().enumerate() {
            let name = gate
                .name
                .clone()
                .unwrap_or_else(|| format!("{}#{}", gate.event.as_str(), i + 1));
            let result = match gate.kind {
                GateKind::Command => self.command_gate(tenant, user, owner, gate, output).await,
                GateKind::Agent => self.agent_gate(tenant, user, gate, output).await,
            };
            if let Err(feedback) = result {
                let mut feedback = feedback;
                if feedback.len() > MAX_FEEDBACK {
                    let mut cut = MAX_FEEDBACK;
                    while !feedback.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    feedback.truncate(cut);
                    feedback.push_str(" [...]");
                }
                tracing::info!(agent = %owner, gate = %name, block = gate.block_on_failure, "a quality gate failed");
                return Outcome::Failed {
                    gate: name,
                    feedback,
                    block: gate.block_on_failure,
                    retries: gate.max_retries,
                };
            }
        }
        Outcome::Passed
    }

    /// `command`: the output on stdin, exit 0 passes.
    async fn command_gate(
        &self,
        tenant: &TenantId,
        user: &UserId,
        owner: &AgentId,
        gate: &GateSpec,
        output: &str,
    ) -> Result<(), String> {
        let command = gate.command.as_deref().unwrap_or_default();
        let workspace = super::context::user_workspace(&self.home, tenant.as_str(), user.as_str());
        let dir = workspace.join(".exoclaw-gates");
        super::create_private_dirs(&dir).map_err(|e| format!("cannot prepare the gate: {e}"))?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| format!("no randomness: {e}"))?;
        let name = format!("input-{}.txt", hex::encode(id));
        let input = dir.join(&name);
        std::fs::write(&input, output).map_err(|e| format!("cannot prepare the gate: {e}"))?;
        let mut ctx = ToolContext::new(tenant.clone(), user.clone(), owner.clone(), workspace);
        // A person's check, not a model's: scrubbed, not marked.
        ctx.run = Arc::new(RunState::direct());
        let policy = ToolPolicy {
            rate_limit_per_hour: 0,
            ..ToolPolicy::default()
        };
        let args = json!({"command": format!("( {command} ) < .exoclaw-gates/{name}")});
        let result = self
            .tools
            .invoke(&ctx, &policy, "exec", &args, InvokeMode::Execute)
            .await;
        let _ = std::fs::remove_file(&input);
        let out = result
            .map_err(|e| format!("the gate command could not run: [{}] {}", e.code, e.message))?;
        let parsed: serde_json::Value = serde_json::from_str(&out.content).unwrap_or_default();
        match parsed.get("exit_code").and_then(serde_json::Value::as_i64) {
            Some(0) => Ok(()),
            code => {
                let text = |k: &str| {
                    parsed
                        .get(k)
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                };
                let said = [text("stdout"), text("stderr")]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n");
                Err(format!(
                    "the check `{command}` failed ({}){}",
                    code.map_or_else(|| "no exit code".to_owned(), |c| format!("exit {c}")),
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {said}")
                    }
                ))
            }
        }
    }

    /// `agent`: a reviewer answers APPROVED or REJECTED.
    async fn agent_gate(
        self: &Arc<Self>,
        tenant: &TenantId,
        user: &UserId,
        gate: &GateSpec,
        output: &str,
    ) -> Result<(), String> {
        let reviewer = gate.agent.as_deref().unwrap_or_default();
        let who = Principal {
            actor: "gate".to_owned(),
            role: Role::User,
            tenant: tenant.clone(),
            user: user.clone(),
            scopes: None,
        };
        let agent = self
            .agent(&who, reviewer)
            .await
            .map_err(|e| format!("the reviewer cannot run: {e}"))?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| format!("no randomness: {e}"))?;
        let session = self
            .store
            .get_or_create_session(
                tenant,
                &SessionScope {
                    agent_id: agent.id.clone(),
                    user_id: user.clone(),
                    channel: "gate".into(),
                    peer: hex::encode(id),
                },
            )
            .await
            .map_err(|e| format!("the reviewer cannot run: {e}"))?;
        let criteria = gate
            .criteria
            .as_deref()
            .unwrap_or("correct, complete and safe to send");
        let input = format!(
            "Review this output against the criteria. Reply with APPROVED or REJECTED as the first word; after \
             REJECTED, say exactly what must change.\n\nCriteria: {criteria}\n\nOutput:\n{output}"
        );
        let launched = self
            .launch(super::launch::Launch {
                who,
                agent,
                session,
                input,
                input_meta: json!({"gate": gate.name}),
                request_id: None,
                lineage: Lineage {
                    gate: true,
                    ..Lineage::default()
                },
                parent_cancel: None,
                tainted: false,
                trace_name: "gate",
                clone: None,
                lane: super::lanes::Lane::Delegate,
                handed_over: super::launch::HandedOver::Known(None),
                directory: None,
            })
            .await;
        let mut turn = launched.map_err(|e| format!("the reviewer cannot run: {e}"))?;
        while turn.events.recv().await.is_some() {}
        match turn.end().await {
            TurnEnd::Ran(o) if o.finish == exoclaw_core::agent::Finish::Complete => {
                match verdict(&o.text) {
                    Verdict::Approved => Ok(()),
                    Verdict::Rejected(feedback) => Err(format!("{reviewer}: {feedback}")),
                }
            }
            TurnEnd::Ran(o) => Err(format!("the reviewer did not finish: {:?}", o.finish)),
            TurnEnd::Broken { message, .. } => {
                Err(format!("the reviewer did not finish: {message}"))
            }
        }
    }
}
