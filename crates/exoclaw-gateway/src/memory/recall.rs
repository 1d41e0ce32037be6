//! Automatic recall: before a turn of an agent that recalls
//! (`memory.recall.enabled`, or the agent's `memory_recall` setting), the
//! memories most relevant to the user's message go into the system prompt,
//! at most `memory.recall.top_k` of them and within
//! `memory.recall.max_tokens` (estimated at four bytes a token). A memory
//! that came from untrusted content is put inside untrusted markers. A
//! failed search leaves the section out (logged): recall never fails a
//! turn.

use super::{MemoryBank, Reader};

/// Bytes per token, for the budget.
const BYTES_PER_TOKEN: usize = 4;

/// The prompt section for `input` (empty when nothing is recalled).
pub async fn section(bank: &MemoryBank, who: &Reader<'_>, input: &str) -> String {
    if input.trim().is_empty() {
        return String::new();
    }
    let cfg = &bank.config.recall;
    let found = match bank.search(who, input, cfg.top_k).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, agent = %who.agent, "memory recall failed; the turn goes on without it");
            return String::new();
        }
    };
    let budget = usize::try_from(cfg.max_tokens)
        .unwrap_or(usize::MAX)
        .saturating_mul(BYTES_PER_TOKEN);
    let mut used = 0;
    let mut lines = Vec::new();
    for h in &found.hits {
        let m = &h.memory;
        let text = if m.untrusted {
            exoclaw_guard::markers::wrap("memory", &m.content)
        } else {
            m.content.clone()
        };
        let line = format!(
            "- [{}]{} {text}",
            m.id,
            if m.is_shared() { " (shared)" } else { "" }
        );
        if used + line.len() > budget {
            break;
        }
        used += line.len();
        lines.push(line);
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\n\n## What you remember\nMemories from earlier sessions that may be relevant \
         (search for more with memory_search):\n{}",
        lines.join("\n")
    )
}
