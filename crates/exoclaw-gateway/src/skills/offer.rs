//! The "Skills available" section of a turn's system prompt: the active
//! skills most relevant to the user's message (the same hybrid search as
//! `skill_search`), by name and description, at most `skills.offer_top_k`
//! of them and within `skills.offer_max_tokens` (estimated at four bytes a
//! token). Quarantined skills are never offered; a tenant without any
//! active skill costs no search (`SkillLibrary::has_active`, re-read every
//! 10 s). A failed search leaves
//! the section out (logged): offering never fails a turn.

use super::SkillLibrary;
use exoclaw_core::TenantId;

/// Bytes per token, for the budget.
const BYTES_PER_TOKEN: usize = 4;

/// The prompt section for `input` (empty when nothing is offered).
pub async fn section(library: &SkillLibrary, tenant: &TenantId, input: &str) -> String {
    let cfg = library.config();
    if input.trim().is_empty() || cfg.offer_top_k == 0 || !library.has_active(tenant).await {
        return String::new();
    }
    let found = match library.search(tenant, input, cfg.offer_top_k).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "skill offer failed; the turn goes on without it");
            return String::new();
        }
    };
    let budget = usize::try_from(cfg.offer_max_tokens)
        .unwrap_or(usize::MAX)
        .saturating_mul(BYTES_PER_TOKEN);
    let mut used = 0;
    let mut lines = Vec::new();
    for h in &found.hits {
        let line = format!("- {}: {}", h.skill.name, h.skill.description);
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
        "\n\n## Skills available\nInstalled skills that may help with this message (read one \
         with skill_read, find others with skill_search):\n{}",
        lines.join("\n")
    )
}
