//! What a subagent knows: a short system prompt of its own (it is a clone
//! working on one task, not the agent talking to the user) and the
//! parent's conversation so far as context, read from the parent's session
//! (the subagent never writes there: its turn has its own session, so the
//! parent's history is never interleaved).

use exoclaw_core::SessionId;
use exoclaw_core::TenantId;
use exoclaw_core::model::{Agent, Message};
use exoclaw_core::store::{SessionStore, StoreError};

/// Most messages of the parent's conversation a subagent sees.
const CONTEXT_MESSAGES: usize = 20;
/// Most bytes of that context.
const CONTEXT_BYTES: usize = 12 * 1024;

/// The subagent's system prompt.
pub fn system_prompt(agent: &Agent, context: &str) -> String {
    let mut prompt = format!(
        "You are a subagent of {}: a temporary copy working on one task for it. Do the task with \
         the tools you have and answer with the result only; your answer goes back to {}, not to \
         the user.",
        agent.display_name, agent.display_name
    );
    if !context.is_empty() {
        prompt.push_str("\n\n## The conversation so far (for context)\n");
        prompt.push_str(context);
    }
    prompt
}

/// The newest text of the parent's session, oldest first, at most
/// [`CONTEXT_MESSAGES`] messages and [`CONTEXT_BYTES`] bytes.
pub async fn parent_context<S: SessionStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    session: Option<&SessionId>,
) -> Result<String, StoreError> {
    let Some(session) = session else {
        return Ok(String::new());
    };
    let messages = store.list_messages(tenant, session, 0, 0).await?;
    Ok(transcript(&messages))
}

fn transcript(messages: &[Message]) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut size = 0;
    for m in messages.iter().rev() {
        if !matches!(m.role.as_str(), "user" | "assistant" | "summary") {
            continue;
        }
        let text = text_of(&m.content);
        if text.trim().is_empty() {
            continue;
        }
        let line = format!("{}: {}", m.role, text.trim());
        size += line.len();
        if size > CONTEXT_BYTES || lines.len() == CONTEXT_MESSAGES {
            break;
        }
        lines.push(line);
    }
    lines.reverse();
    lines.join("\n")
}

/// The text parts of a stored message body.
fn text_of(content: &serde_json::Value) -> String {
    match content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(serde_json::Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(seq: i64, role: &str, content: serde_json::Value) -> Message {
        Message {
            id: format!("m{seq}").into(),
            tenant_id: "t".into(),
            session_id: "s".into(),
            seq,
            role: role.into(),
            content,
            meta: json!({}),
            created_at: 0,
        }
    }

    #[test]
    fn the_context_is_the_newest_text_in_order() {
        let mut ms = vec![
            message(1, "user", json!([{"type": "text", "text": "first"}])),
            message(
                2,
                "tool",
                json!([{"type": "tool_result", "content": "noise"}]),
            ),
            message(3, "assistant", json!([{"type": "text", "text": "answer"}])),
        ];
        assert_eq!(transcript(&ms), "user: first\nassistant: answer");
        for i in 4..60 {
            ms.push(message(
                i,
                "user",
                json!([{"type": "text", "text": format!("m{i}")}]),
            ));
        }
        let t = transcript(&ms);
        assert_eq!(t.lines().count(), CONTEXT_MESSAGES);
        assert!(t.ends_with("user: m59"), "{t}");
    }
}
