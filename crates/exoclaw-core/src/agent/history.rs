//! Session history as the model sees it: stored messages -> chat messages,
//! honouring the latest compaction summary, and a cheap token estimate.

use crate::derived::Covered;
use crate::model::Message;
use crate::provider::{ChatMessage, ChatRole, ContentPart, ToolSpec};
use serde::Deserialize;

/// Stored role of a compaction summary.
pub const SUMMARY_ROLE: &str = "summary";

/// What the model sees of a session: the latest summary (if any) and the
/// messages after the point it covers.
#[derive(Debug, Default)]
pub struct History {
    pub summary: Option<String>,
    /// Stored `seq` of each message in `messages`.
    pub seqs: Vec<i64>,
    /// Shared with the requests made from it (see `ChatRequest::messages`).
    pub messages: std::sync::Arc<Vec<ChatMessage>>,
    /// Sums over the messages counted so far ([`History::tally`]): a turn
    /// counts only the messages appended since; after a compaction, which
    /// moves the message it ended at, the count starts over.
    pub(crate) tally: Option<Covered<Sums>>,
    /// What providers keep about the leading messages, handed to every
    /// request made from this history (cleared when it drops messages).
    pub prefix: crate::derived::Prefix,
}

/// Per message, what a decoded message costs beyond its text (counted
/// twice: the decoded text and the wire encoding a provider keeps in the
/// history's [`Prefix`](crate::derived::Prefix)): the `ChatMessage` and its
/// `seq` (48 bytes, up to twice that in a growing `Vec`), the parts'
/// allocation (an 88-byte `ContentPart`, in a 96-byte size class), what
/// providers keep with it (a 32-byte allocation) and the text's own
/// allocation's rounding.
const MESSAGE_OVERHEAD: usize = 300;

/// Sums over a window's messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sums {
    /// Characters as [`History::estimate_tokens`] counts them.
    pub(crate) chars: usize,
    /// Bytes as the window cache estimates them (`window.rs`).
    pub(crate) bytes: usize,
}

impl Sums {
    fn of(m: &ChatMessage) -> Self {
        let mut s = Self {
            chars: 0,
            bytes: MESSAGE_OVERHEAD,
        };
        for p in &m.content {
            s.chars += 8 + match p {
                ContentPart::Text { text } => text.len(),
                ContentPart::ToolCall(c) => c.name.len() + c.arguments.to_string().len(),
                ContentPart::ToolResult { content, .. } => content.len(),
            };
            // The decoded text, and its wire encoding (kept with the
            // history once sent) about as long again.
            s.bytes += 2 * match p {
                ContentPart::Text { text } => text.len(),
                ContentPart::ToolCall(c) => c.id.len() + c.name.len() + 64,
                ContentPart::ToolResult {
                    call_id, content, ..
                } => call_id.len() + content.len(),
            };
        }
        s
    }
}

/// The last `seq` a summary stored at `seq` with `meta` replaces: the
/// messages after it are what the model sees.
pub fn covered_by(seq: i64, meta: &serde_json::Value) -> i64 {
    meta.get("compacted_through")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(seq)
}

/// Build the history from stored messages (oldest first).
pub fn from_stored(stored: &[Message]) -> History {
    let mut h = History::default();
    let mut covered = 0;
    if let Some(s) = stored.iter().rev().find(|m| m.role == SUMMARY_ROLE) {
        covered = covered_by(s.seq, &s.meta);
        h.summary = Some(text_of(&s.content));
    }
    for m in stored.iter().filter(|m| m.seq > covered) {
        h.push_stored(m);
    }
    h
}

impl History {
    /// Roughly four characters per token: good enough to decide when to
    /// compact. Counts only the messages added since it was last asked.
    pub fn estimate_tokens(&mut self, system: &str, tools: &std::sync::Arc<[ToolSpec]>) -> usize {
        (system.len() + self.tally().chars + crate::provider::tools_chars(tools)) / 4
    }

    /// The sums over every message, counting only those added since the
    /// last call (all of them after a compaction).
    pub(crate) fn tally(&mut self) -> Sums {
        let messages = self.messages.as_slice();
        let (from, mut sums) = self
            .tally
            .as_ref()
            .and_then(|t| t.of(messages))
            .unwrap_or_default();
        for m in &messages[from..] {
            let s = Sums::of(m);
            sums.chars += s.chars;
            sums.bytes += s.bytes;
        }
        if from < messages.len() {
            self.tally = Covered::new(messages, sums);
        }
        sums
    }

    /// Add messages stored after the ones this history holds (oldest
    /// first). False, and nothing added, when they include a summary: then
    /// the history must be read again ([`from_stored`]).
    pub fn extend_stored(&mut self, newer: &[Message]) -> bool {
        if newer.iter().any(|m| m.role == SUMMARY_ROLE) {
            return false;
        }
        for m in newer {
            self.push_stored(m);
        }
        true
    }

    fn push_stored(&mut self, m: &Message) {
        let role = match m.role.as_str() {
            "user" => ChatRole::User,
            "assistant" => ChatRole::Assistant,
            "tool" => ChatRole::Tool,
            _ => return,
        };
        let content: Vec<ContentPart> =
            Vec::<ContentPart>::deserialize(&m.content).unwrap_or_else(|_| {
                vec![ContentPart::Text {
                    text: text_of(&m.content),
                }]
            });
        self.push(m.seq, role, content);
    }

    /// Drop the oldest `n` messages (a compaction summarised them).
    pub fn drop_oldest(&mut self, n: usize) {
        std::sync::Arc::make_mut(&mut self.messages).drain(..n);
        self.seqs.drain(..n);
        self.prefix.clear();
    }

    /// Add one message as the model sees it: empty ones are left out, as
    /// they are when read back from the store.
    pub fn push(&mut self, seq: i64, role: ChatRole, content: Vec<ContentPart>) {
        if content.is_empty() {
            return;
        }
        self.seqs.push(seq);
        std::sync::Arc::make_mut(&mut self.messages).push(ChatMessage::new(role, content));
    }
}

fn text_of(content: &serde_json::Value) -> String {
    match Vec::<ContentPart>::deserialize(content) {
        Ok(parts) => ChatMessage::new(ChatRole::User, parts).text(),
        Err(_) => content.as_str().map(str::to_owned).unwrap_or_default(),
    }
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
        let call = ChatMessage::new(
            ChatRole::Assistant,
            vec![ContentPart::ToolCall(ToolCall {
                id: "1".into(),
                name: "read_file".into(),
                arguments: serde_json::json!({}),
            })],
        );
        let result = ChatMessage::new(
            ChatRole::Tool,
            vec![ContentPart::ToolResult {
                call_id: "1".into(),
                content: "x".into(),
                is_error: false,
            }],
        );
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

    /// The sums over `h`'s messages counted from scratch.
    fn recount(h: &History) -> Sums {
        h.messages
            .iter()
            .map(Sums::of)
            .fold(Sums::default(), |a, s| Sums {
                chars: a.chars + s.chars,
                bytes: a.bytes + s.bytes,
            })
    }

    #[test]
    fn the_tally_counts_new_messages_and_starts_over_after_a_compaction() {
        let mut h = History::default();
        for i in 0..10 {
            h.push(
                i,
                ChatRole::User,
                vec![ContentPart::Text {
                    text: "x".repeat(i as usize),
                }],
            );
        }
        assert_eq!(h.tally(), recount(&h));
        assert_eq!(h.tally.as_ref().map(|t| t.n), Some(10));
        h.push(
            10,
            ChatRole::Assistant,
            vec![ContentPart::Text {
                text: "answer".into(),
            }],
        );
        assert_eq!(h.tally(), recount(&h), "one message added");
        // A compaction drops the oldest: the message the tally ended at is
        // no longer at its index, so it counts again from scratch.
        h.drop_oldest(4);
        assert_eq!(h.tally(), recount(&h));
        // Dropped back to the same length with other messages: still
        // recounted (the last counted message is not at its index).
        std::sync::Arc::make_mut(&mut h.messages).drain(..3);
        for i in 0..3 {
            h.push(
                20 + i,
                ChatRole::User,
                vec![ContentPart::Text {
                    text: "y".repeat(50),
                }],
            );
        }
        assert_eq!(h.messages.len(), 7);
        assert_eq!(h.tally(), recount(&h));
        let tools: std::sync::Arc<[ToolSpec]> = std::sync::Arc::from([]);
        assert_eq!(
            h.estimate_tokens("sys!", &tools),
            (4 + recount(&h).chars) / 4
        );
    }
}
