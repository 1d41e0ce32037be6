//! The evaluate loop: the `evaluate_loop` tool has a generator agent answer
//! a task and an evaluator agent judge the answer against the pass
//! criteria (`APPROVED`, or `REJECTED` with feedback); a rejected answer
//! goes back to the generator with the feedback, up to `max_rounds` (3 by
//! default, at most 5). After the last round the last answer comes back
//! with a warning. Every round is two sync delegations of the calling
//! agent, so links, limits, the history and the trace apply to each.

use super::super::Late;
use super::super::gates::{Verdict, verdict};
use super::run;
use async_trait::async_trait;
use exoclaw_core::AgentId;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{
    AgentAnswer, AgentCall, AgentTarget, CallMode, Check, Tool, ToolContext, ToolEffect, ToolError,
    ToolOutput,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Rounds unless asked, and at most.
const DEFAULT_ROUNDS: u32 = 3;
const MAX_ROUNDS: u32 = 5;
/// Longest task and criteria, in bytes.
const MAX_TEXT: usize = 32 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    generator: String,
    evaluator: String,
    task: String,
    pass_criteria: String,
    #[serde(default)]
    max_rounds: Option<u32>,
}

struct Loop {
    generator: AgentId,
    evaluator: AgentId,
    task: String,
    criteria: String,
    rounds: u32,
}

fn parse(args: &Value) -> Result<Loop, ToolError> {
    let a: Args =
        serde_json::from_value(args.clone()).map_err(|e| ToolError::invalid_args(e.to_string()))?;
    for (field, id) in [("generator", &a.generator), ("evaluator", &a.evaluator)] {
        if !is_valid_slug(id) {
            return Err(ToolError::invalid_args(format!("{field}: an agent id")));
        }
    }
    for (field, text) in [("task", &a.task), ("pass_criteria", &a.pass_criteria)] {
        if text.trim().is_empty() || text.len() > MAX_TEXT {
            return Err(ToolError::invalid_args(format!(
                "{field}: 1 to {MAX_TEXT} bytes"
            )));
        }
    }
    let rounds = a.max_rounds.unwrap_or(DEFAULT_ROUNDS);
    if !(1..=MAX_ROUNDS).contains(&rounds) {
        return Err(ToolError::invalid_args(format!(
            "max_rounds: 1 to {MAX_ROUNDS}"
        )));
    }
    Ok(Loop {
        generator: AgentId::new(a.generator),
        evaluator: AgentId::new(a.evaluator),
        task: a.task,
        criteria: a.pass_criteria,
        rounds,
    })
}

/// The `evaluate_loop` tool (see the module docs).
pub struct EvaluateLoop(pub Late);

#[async_trait]
impl Tool for EvaluateLoop {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "evaluate_loop".into(),
            description: "Have one agent (the generator) do a task and another (the evaluator) check the answer \
                 against pass criteria; a rejected answer is revised with the evaluator's feedback, up to \
                 max_rounds. Returns the approved answer, or the last one with a warning."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "generator": {"type": "string", "description": "the agent that answers"},
                    "evaluator": {"type": "string", "description": "the agent that judges"},
                    "task": {"type": "string"},
                    "pass_criteria": {"type": "string", "description": "what an answer must do to pass"},
                    "max_rounds": {"type": "integer", "minimum": 1, "maximum": MAX_ROUNDS, "default": DEFAULT_ROUNDS}
                },
                "required": ["generator", "evaluator", "task", "pass_criteria"],
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
        let l = parse(args)?;
        let rt = self
            .0
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or_else(|| ToolError::new("delegation.unavailable", "the gateway is stopping"))?;
        let mut tainted = false;
        let ask = |agent: &AgentId, task: String| {
            let rt = rt.clone();
            let call = AgentCall {
                target: AgentTarget::Agent(agent.clone()),
                task,
                mode: CallMode::Sync,
            };
            async move { run::call(rt, ctx, call).await }
        };
        let mut answer = String::new();
        let mut feedback = String::new();
        for round in 1..=l.rounds {
            let task = if round == 1 {
                l.task.clone()
            } else {
                format!(
                    "{}\n\nYour previous answer:\n{answer}\n\nIt was rejected with this feedback; revise it:\n{feedback}",
                    l.task
                )
            };
            answer = match ask(&l.generator, task).await? {
                AgentAnswer::Done {
                    text, tainted: t, ..
                } => {
                    tainted |= t;
                    text
                }
                AgentAnswer::Started { .. } => unreachable_async()?,
            };
            let judge = format!(
                "Judge an answer to a task against the pass criteria. Reply with APPROVED or REJECTED as the \
                 first word; after REJECTED, say exactly what must change.\n\nTask:\n{}\n\nPass criteria:\n{}\n\n\
                 Answer (round {round} of {}):\n{answer}",
                l.task, l.criteria, l.rounds
            );
            let reply = match ask(&l.evaluator, judge).await? {
                AgentAnswer::Done {
                    text, tainted: t, ..
                } => {
                    tainted |= t;
                    text
                }
                AgentAnswer::Started { .. } => unreachable_async()?,
            };
            match verdict(&reply) {
                Verdict::Approved => {
                    let text = format!("APPROVED by {} in round {round}:\n{answer}", l.evaluator);
                    return Ok(output(text, tainted));
                }
                Verdict::Rejected(f) => feedback = f,
            }
        }
        let text = format!(
            "WARNING: not approved after {} round(s); {}'s last feedback: {feedback}\n\nThe last answer:\n{answer}",
            l.rounds, l.evaluator
        );
        Ok(output(text, tainted))
    }
}

fn output(text: String, tainted: bool) -> ToolOutput {
    if tainted {
        ToolOutput::untrusted(text)
    } else {
        ToolOutput::text(text)
    }
}

fn unreachable_async() -> Result<String, ToolError> {
    Err(ToolError::failed(
        "a sync delegation answered asynchronously",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_word_decides() {
        assert_eq!(verdict("APPROVED"), Verdict::Approved);
        assert_eq!(verdict("  approved. Nice."), Verdict::Approved);
        assert_eq!(
            verdict("REJECTED: cite a source"),
            Verdict::Rejected("cite a source".into())
        );
        assert_eq!(
            verdict("Looks fine to me"),
            Verdict::Rejected("Looks fine to me".into()),
            "no verdict is no approval"
        );
    }

    #[test]
    fn arguments_are_checked() {
        let ok = json!({"generator": "w", "evaluator": "r", "task": "t", "pass_criteria": "c"});
        assert_eq!(parse(&ok).unwrap().rounds, 3);
        for bad in [
            json!({"generator": "w", "evaluator": "r", "task": "t", "pass_criteria": "c", "max_rounds": 6}),
            json!({"generator": "w", "evaluator": "r", "task": " ", "pass_criteria": "c"}),
            json!({"generator": "W W", "evaluator": "r", "task": "t", "pass_criteria": "c"}),
            json!({"generator": "w", "task": "t", "pass_criteria": "c"}),
        ] {
            assert_eq!(
                parse(&bad).err().unwrap().code,
                "tool.invalid_args",
                "{bad}"
            );
        }
    }
}
