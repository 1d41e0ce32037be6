//! What a skill must be before it is stored (the install pipeline's caps,
//! checks and quarantine are the gateway's; these are the store's own
//! invariants): a slug name, a 64-hex pin, a `SKILL.md`, unique relative
//! paths in order, and a bounded whole.

use exoclaw_core::id::is_valid_slug;
use exoclaw_core::store::skill::{NewSkill, SkillQuery};
use exoclaw_core::store::{StoreError, StoreResult};

/// Most hits one search returns.
pub(crate) const MAX_HITS: u32 = 100;
/// The store's own ceiling on a skill's files (the configured caps are
/// lower).
pub(crate) const MAX_FILES: usize = 10_000;
/// The store's own ceiling on a skill's bytes.
pub(crate) const MAX_BYTES: usize = 64 * 1024 * 1024;

pub(crate) fn check_new(new: &NewSkill) -> StoreResult<()> {
    let invalid = |m: String| Err(StoreError::Invalid(m));
    if !is_valid_slug(&new.name) {
        return invalid(format!(
            "skill name {:?} must be 1-64 characters of a-z, 0-9, '-' or '_'",
            new.name
        ));
    }
    if new.sha256.len() != 64 || !new.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return invalid("a skill's sha256 is 64 hex digits".to_owned());
    }
    if !new.files.iter().any(|f| f.path == "SKILL.md") {
        return invalid(format!("skill {:?} has no SKILL.md", new.name));
    }
    if new.files.len() > MAX_FILES {
        return invalid(format!("a skill has at most {MAX_FILES} files"));
    }
    if new.files.iter().map(|f| f.content.len()).sum::<usize>() > MAX_BYTES {
        return invalid(format!("a skill is at most {MAX_BYTES} bytes"));
    }
    for pair in new.files.windows(2) {
        if pair[0].path >= pair[1].path {
            return invalid("a skill's files are sorted by path, each once".to_owned());
        }
    }
    for f in &new.files {
        if f.path.is_empty()
            || f.path.starts_with('/')
            || f.path.contains('\\')
            || f.path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return invalid(format!("skill file path {:?} is not relative", f.path));
        }
    }
    Ok(())
}

pub(crate) fn check_query(q: &SkillQuery) -> StoreResult<i64> {
    if q.limit == 0 || q.limit > MAX_HITS {
        return Err(StoreError::Invalid(format!(
            "a search returns 1 to {MAX_HITS} skills (asked for {})",
            q.limit
        )));
    }
    Ok(i64::from(q.limit))
}
