//! Session history as the model sees it: stored messages -> chat messages,
//! honouring the latest compaction summary, and a cheap token estimate.

use crate::model::Message;
use crate::provider::{ChatMessage, ChatRole, ContentPart, ToolSpec};

/// Stored role of a compaction summary.
pub const SUMMARY_ROLE: &str = "summary";

/// What the model sees of a session: the latest summary (if any) and the
/// messages after the point it covers.
#[derive(Debug, Default)]
pub struct History {
    pub summary: Option<String>,
    /// Stored `seq` of each message in `messages`.
    pub seqs: Vec<i64>,
    pub messages: Vec<ChatMessage>,
}

/// Build the history from stored messages (oldest first).
pub fn from_stored(stored: &[Message]) -> History {
    let mut h = History::default();
    let mut covered = 0;
    if let Some(s) = stored.iter().rev().find(|m| m.role == SUMMARY_ROLE) {
        covered = s
            .meta
            .get("compacted_through")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(s.seq);
        h.summary = Some(text_of(&s.content));
    }
    for m in stored.iter().filter(|m| m.seq > covered) {
        let role = match m.role.as_str() {
            "user" => ChatRole::User,
            "assistant" => ChatRole::Assistant,
            "tool" => ChatRole::Tool,
            _ => continue,
        };
        let content: Vec<ContentPart> =
            serde_json::from_value(m.content.clone()).unwrap_or_else(|_| {
                vec![ContentPart::Text {
                    text: text_of(&m.content),
                }]
            });
        if content.is_empty() {
            continue;
        }
        h.seqs.push(m.seq);
        h.messages.push(ChatMessage { role, content });
    }
    h
}

fn text_of(content: &serde_json::Value) -> String {
    match serde_json::from_value::<Vec<ContentPart>>(content.clone()) {
        Ok(parts) => ChatMessage {
            role: ChatRole::User,
            content: parts,
        }
        .text(),
        Err(_) => content.as_str().map(str::to_owned).unwrap_or_default(),
    }
}

/// Roughly four characters per token: good enough to decide when to compact.
pub fn estimate_tokens(system: &str, messages: &[ChatMessage], tools: &[ToolSpec]) -> usize {
    let mut chars = system.len();
    for m in messages {
        for p in &m.content {
            chars += match p {
                ContentPart::Text { text } => text.len(),
                ContentPart::ToolCall(c) => c.name.len() + c.arguments.to_string().len(),
                ContentPart::ToolResult { content, .. } => content.len(),
            } + 8;
        }
    }
    for t in tools {
        chars += t.name.len() + t.description.len() + t.parameters.to_string().len();
    }
    chars / 4
}

/// Where to split for compaction: the index of the first message to keep, so
/// that at least `keep` messages stay and the kept part starts with a user's
/// own words (never between a tool call and its result). `None` when there
/// is nothing old enough to summarise.
pub fn split_point(messages: &[ChatMessage], keep: usize) -> Option<usize> {
    let mut i = messages.len().saturating_sub(keep.max(1));
    while i > 0 {
        let m = &messages[i];
        let starts_turn = m.role == ChatRole::User
            && m.content
                .iter()
                .all(|p| matches!(p, ContentPart::Text { .. }));
        if starts_turn {
            return Some(i);
        }
        i -= 1;
    }
    None
}

/// A plain transcript for the summariser.
pub fn transcript(summary: Option<&str>, messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    if let Some(s) = summary {
        out.push_str("Earlier summary:\n");
        out.push_str(s);
        out.push_str("\n\n");
    }
    for m in messages {
        let who = match m.role {
            ChatRole::User => "User",
            ChatRole::Assistant => "Assistant",
            ChatRole::Tool => "Tool",
        };
        for p in &m.content {
            match p {
                ContentPart::Text { text } => out.push_str(&format!("{who}: {text}\n")),
                ContentPart::ToolCall(c) => {
                    out.push_str(&format!("{who} called {}({})\n", c.name, c.arguments));
                }
                ContentPart::ToolResult {
                    content, is_error, ..
                } => {
                    let kind = if *is_error { "error" } else { "result" };
                    let short: String = content.chars().take(2000).collect();
                    out.push_str(&format!("Tool {kind}: {short}\n"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ToolCall;

    fn user(t: &str) -> ChatMessage {
        ChatMessage::user(t)
    }

    #[test]
    fn split_never_separates_a_tool_call_from_its_result() {
        let call = ChatMessage {
            role: ChatRole::Assistant,
            content: vec![ContentPart::ToolCall(ToolCall {
                id: "1".into(),
                name: "read_file".into(),
                arguments: serde_json::json!({}),
            })],
        };
        let result = ChatMessage {
            role: ChatRole::Tool,
            content: vec![ContentPart::ToolResult {
                call_id: "1".into(),
                content: "x".into(),
                is_error: false,
            }],
        };
        let msgs = vec![
            user("a"),
            ChatMessage::assistant("b"),
            user("c"),
            call,
            result,
            ChatMessage::assistant("d"),
        ];
        // Keeping 3 would start at the tool result: move back to "c".
        assert_eq!(split_point(&msgs, 3), Some(2));
        assert_eq!(split_point(&msgs, 6), None);
        assert_eq!(split_point(&msgs[..2], 1), None);
    }
}
