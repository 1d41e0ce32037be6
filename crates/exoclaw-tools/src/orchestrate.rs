//! The orchestration tools: `spawn` (a subagent: an anonymous clone of the
//! calling agent on a task), `delegate` (a named agent, over a permission
//! link) and `delegate_search` (which agents are reachable, ranked by the
//! gateway's hybrid search when it has an embedder, else by keywords). They only parse, ask the [`AgentCalls`] port the gateway puts
//! in the [`ToolContext`], and word the answer for the model; links, limits,
//! depth, history and announcements are the gateway's.
//!
//! The answer of a run that read untrusted content comes back as an
//! untrusted output, so the policy path marks it and taints the caller's run
//! like any web page.

use crate::args::parse;
use async_trait::async_trait;
use exoclaw_core::tool::{
    AgentAnswer, AgentCall, AgentCalls, AgentCard, AgentTarget, CallMode, Check, Tool, ToolContext,
    ToolEffect, ToolError, ToolOutput,
};
use exoclaw_core::{AgentId, id::is_valid_slug};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Longest task text a caller may hand over.
pub const MAX_TASK_BYTES: usize = 32 * 1024;

/// The three tools.
pub fn tools() -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(Spawn),
        Arc::new(Delegate),
        Arc::new(DelegateSearch),
    ]
}

fn port(ctx: &ToolContext) -> Result<&Arc<dyn AgentCalls>, ToolError> {
    ctx.agents.as_ref().ok_or_else(|| {
        ToolError::new(
            "delegation.unavailable",
            "other agents cannot be reached from here (only agent runs delegate)",
        )
    })
}

fn task(text: &str) -> Result<String, ToolError> {
    if text.trim().is_empty() {
        return Err(ToolError::invalid_args("task: say what to do"));
    }
    if text.len() > MAX_TASK_BYTES {
        return Err(ToolError::invalid_args(format!(
            "task: at most {MAX_TASK_BYTES} bytes"
        )));
    }
    Ok(text.to_owned())
}

fn mode_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["sync", "async"],
        "default": "sync",
        "description": "sync: wait for the answer; async: continue now, the answer arrives later in this conversation"
    })
}

/// The model's view of an answer.
fn output(who: &str, answer: AgentAnswer) -> ToolOutput {
    match answer {
        AgentAnswer::Done { text, tainted, .. } if tainted => ToolOutput::untrusted(text),
        AgentAnswer::Done { text, .. } => ToolOutput::text(text),
        AgentAnswer::Started { delegation_id } => ToolOutput::text(format!(
            "Started {who} as delegation {delegation_id}. Its answer will arrive in this \
             conversation as a new message when it is ready; do not wait for it or ask again."
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpawnArgs {
    task: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default = "sync")]
    mode: CallMode,
}

fn sync() -> CallMode {
    CallMode::Sync
}

/// `spawn`: a subagent.
pub struct Spawn;

#[async_trait]
impl Tool for Spawn {
    fn spec(&self) -> exoclaw_core::provider::ToolSpec {
        exoclaw_core::provider::ToolSpec {
            name: "spawn".into(),
            description:
                "Run a subagent: a copy of yourself that works on one task with your tools \
                 and returns its answer. Several spawns in one step run in parallel."
                    .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "task": {"type": "string", "description": "the complete task; the subagent sees this and the conversation so far"},
                    "model": {"type": "string", "description": "another model of your provider (default: yours)"},
                    "mode": mode_schema()
                },
                "required": ["task"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: SpawnArgs = parse(args)?;
        task(&a.task)?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: SpawnArgs = parse(args)?;
        let call = AgentCall {
            target: AgentTarget::Clone {
                model: a.model.filter(|m| !m.trim().is_empty()),
            },
            task: task(&a.task)?,
            mode: a.mode,
        };
        let answer = port(ctx)?.call_agent(ctx, call).await?;
        Ok(output("a subagent", answer))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelegateArgs {
    agent: String,
    task: String,
    #[serde(default = "sync")]
    mode: CallMode,
}

/// `delegate`: a named agent, over a permission link.
pub struct Delegate;

#[async_trait]
impl Tool for Delegate {
    fn spec(&self) -> exoclaw_core::provider::ToolSpec {
        exoclaw_core::provider::ToolSpec {
            name: "delegate".into(),
            description: "Ask another agent to do a task. It works with its own tools and \
                 knowledge in a separate conversation and answers you; it does not see this \
                 conversation, so put everything it needs in the task."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "agent": {"type": "string", "description": "the agent's id"},
                    "task": {"type": "string", "description": "the complete, self-contained task"},
                    "mode": mode_schema()
                },
                "required": ["agent", "task"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: DelegateArgs = parse(args)?;
        agent_id(&a.agent)?;
        task(&a.task)?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: DelegateArgs = parse(args)?;
        let agent = agent_id(&a.agent)?;
        let who = format!("agent {agent}");
        let call = AgentCall {
            target: AgentTarget::Agent(agent),
            task: task(&a.task)?,
            mode: a.mode,
        };
        let answer = port(ctx)?.call_agent(ctx, call).await?;
        Ok(output(&who, answer))
    }
}

fn agent_id(id: &str) -> Result<AgentId, ToolError> {
    if !is_valid_slug(id) {
        return Err(ToolError::invalid_args(
            "agent: an agent id (lowercase letters, digits, '-' or '_')",
        ));
    }
    Ok(AgentId::new(id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    5
}

/// `delegate_search`: the reachable agents that fit a need.
pub struct DelegateSearch;

#[async_trait]
impl Tool for DelegateSearch {
    fn spec(&self) -> exoclaw_core::provider::ToolSpec {
        exoclaw_core::provider::ToolSpec {
            name: "delegate_search".into(),
            description: "Find the agents you can delegate to that fit a need (by their \
                 descriptions). Use it before `delegate` when you do not know the agent's id."
                .into(),
            parameters: crate::args::Query::schema("what the agent should be able to do", 20),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let _: SearchArgs = parse(args)?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: SearchArgs = parse(args)?;
        let cards = port(ctx)?.reachable(ctx).await?;
        if cards.is_empty() {
            return Ok(ToolOutput::text(
                "You cannot delegate to any agent (no permission link reaches one).",
            ));
        }
        let limit = a.limit.clamp(1, 20);
        let hybrid = port(ctx)?.rank(ctx, &a.query, &cards, limit).await;
        let ranked: Vec<&AgentCard> = match &hybrid {
            Some(found) => found.iter().collect(),
            None => rank(&a.query, &cards, limit),
        };
        if ranked.is_empty() {
            return Ok(ToolOutput::text(format!(
                "No reachable agent matches {:?}; {} agents are reachable, try other words.",
                a.query,
                cards.len()
            )));
        }
        let lines: Vec<String> = ranked.iter().map(|c| card_line(c)).collect();
        Ok(ToolOutput::text(lines.join("\n")))
    }
}

/// `- id (name): description`, one line.
pub fn card_line(c: &AgentCard) -> String {
    let description = c
        .description
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if description.is_empty() {
        format!("- {} ({})", c.id, c.name)
    } else {
        format!("- {} ({}): {description}", c.id, c.name)
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1)
        .map(str::to_lowercase)
        .collect()
}

/// Keyword ranking: each query word found in the id or name counts 3, in
/// the description 1 (words of 4+ letters match when one starts with the
/// other, so "invoice" finds "invoices"); ties keep id order. Cards that
/// match nothing are left out.
pub fn rank<'a>(query: &str, cards: &'a [AgentCard], limit: usize) -> Vec<&'a AgentCard> {
    let query = words(query);
    let hit = |w: &str, hay: &[String]| {
        hay.iter().any(|h| {
            h == w
                || (w.len() >= 4 && h.len() >= 4 && (h.starts_with(w) || w.starts_with(h.as_str())))
        })
    };
    let mut scored: Vec<(usize, &AgentCard)> = cards
        .iter()
        .map(|c| {
            let title = words(&format!("{} {}", c.id, c.name));
            let body = words(&c.description);
            let score = query
                .iter()
                .map(|w| 3 * usize::from(hit(w, &title)) + usize::from(hit(w, &body)))
                .sum();
            (score, c)
        })
        .filter(|(score, _)| *score > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    scored.into_iter().take(limit).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(id: &str, name: &str, description: &str) -> AgentCard {
        AgentCard {
            id: id.into(),
            name: name.into(),
            description: description.into(),
        }
    }

    #[test]
    fn ranking_prefers_names_then_descriptions_and_drops_misses() {
        let cards = [
            card(
                "billing",
                "Billing",
                "Answers questions about invoices and refunds",
            ),
            card(
                "research",
                "Research",
                "Searches the web and summarises sources",
            ),
            card(
                "writer",
                "Writer",
                "Drafts articles; can research a topic briefly",
            ),
        ];
        let ids = |q: &str| -> Vec<String> {
            rank(q, &cards, 5)
                .iter()
                .map(|c| c.id.to_string())
                .collect()
        };
        assert_eq!(ids("research a topic"), ["research", "writer"]);
        assert_eq!(ids("invoice refund"), ["billing"]);
        assert!(ids("astronomy").is_empty());
        assert_eq!(rank("a", &cards, 5).len(), 0, "one-letter words are noise");
        assert_eq!(rank("research", &cards, 1).len(), 1);
    }

    #[test]
    fn a_card_is_one_line() {
        assert_eq!(
            card_line(&card("a", "A", "does\nthings   well")),
            "- a (A): does things well"
        );
        assert_eq!(card_line(&card("a", "A", "")), "- a (A)");
    }
}
