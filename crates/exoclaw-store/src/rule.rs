//! Business rules both backends apply the same way, above the SQL: which ids
//! and names are valid, what a pairing request must name, which decisions
//! are allowed, page sizes, and what "deleted" takes with it. The rules of
//! orchestration and teams (sizes, what a link, delegation, team, task, mail
//! or handoff must name) are in [`orchestration`]. The port bodies
//! (`crate::port`) call these before or after their statements; nothing
//! here touches a database.

pub(crate) mod channel;
pub(crate) mod cron;
pub(crate) mod memory;
pub(crate) mod orchestration;
pub(crate) mod skill;

use crate::DEFAULT_AUDIT_LIMIT;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::model::{NewPairingRequest, PairingDecision, PairingKind, PairingStatus};
use exoclaw_core::store::{ApprovalStatus, SeedOutcome, StoreError, StoreResult};
use exoclaw_core::{AgentId, UserId};

/// How long failed pairing attempts are kept (the lockout window is much
/// shorter).
pub(crate) const PAIRING_FAILURES_KEPT_MS: i64 = 24 * 3600 * 1000;

/// A tenant or agent id: a slug.
pub(crate) fn check_slug(kind: &str, id: &str) -> StoreResult<()> {
    if is_valid_slug(id) {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "{kind} id {id:?} must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a \
         letter or digit"
    )))
}

/// A user name: anything but blank.
pub(crate) fn check_user_name(name: &str) -> StoreResult<()> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid(
            "a user name must not be empty".to_owned(),
        ));
    }
    Ok(())
}

/// The owner of a user's own secrets. Deleting a user deletes them, the
/// user's sessions (whose messages cascade) and the handoffs of the user's
/// conversations: `sessions.user_id` and `handoffs.user_id` are not foreign
/// keys (the gateway token's owner may not be a users row), so the cascade
/// is spelled out in `delete_user`. Delegations keep the user id as a
/// record; bindings naming the user stay (an operator's configuration).
pub(crate) fn user_secret_owner(user: &UserId) -> String {
    format!("user:{user}")
}

/// Deleting the lead of a team is refused: the team (its board and mailbox)
/// does not vanish with one agent. `team` is one it leads, when found.
pub(crate) fn lead_conflict(agent: &AgentId, team: Option<&str>) -> StoreError {
    StoreError::Conflict(format!(
        "agent {agent} leads team {}; give the team another lead or delete it first",
        team.unwrap_or("(unknown)")
    ))
}

/// A `LIKE ... ESCAPE '\'` pattern matching text that contains `text`
/// (lowercased; `%`, `_` and `\` escaped): compare it with `lower(column)`.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `NotFound` when a statement that names one row changed none.
pub(crate) fn found(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// The `LIMIT` of `list_messages`: 0 is everything.
pub(crate) fn message_limit(limit: u32, no_limit: Option<i64>) -> Option<i64> {
    if limit == 0 {
        no_limit
    } else {
        Some(i64::from(limit))
    }
}

/// The `LIMIT` of `list_audit`: 0 is the default page.
pub(crate) fn audit_limit(limit: u32) -> i64 {
    i64::from(if limit == 0 {
        DEFAULT_AUDIT_LIMIT
    } else {
        limit
    })
}

/// The requester's identity columns must match the kind: a user for a
/// device, a channel and sender for a channel.
pub(crate) fn check_new_request(new: &NewPairingRequest) -> StoreResult<()> {
    let ok = match new.kind {
        PairingKind::Device => {
            new.user_id.is_some() && new.channel.is_none() && new.sender_id.is_none()
        }
        PairingKind::Channel => {
            new.user_id.is_none() && new.channel.is_some() && new.sender_id.is_some()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "a device request names a user, a channel request a channel and sender".into(),
        ))
    }
}

/// The status a pairing decision moves to, and the user an approval binds.
pub(crate) fn pairing_outcome(decision: &PairingDecision) -> (PairingStatus, Option<&str>) {
    match decision {
        PairingDecision::Approve { user } => (PairingStatus::Approved, Some(user.as_str())),
        PairingDecision::Deny => (PairingStatus::Denied, None),
    }
}

/// A decision moves an approval out of `pending`, never back.
pub(crate) fn check_approval_decision(to: ApprovalStatus) -> StoreResult<()> {
    if to == ApprovalStatus::Pending {
        return Err(StoreError::Invalid(
            "an approval cannot be decided back to pending".into(),
        ));
    }
    Ok(())
}

/// The status of a claimed job occurrence until it is finished.
pub(crate) const JOB_RUNNING: &str = "running";
/// How a job occurrence may end.
const JOB_OUTCOMES: [&str; 3] = ["ok", "failed", "skipped"];
/// The page of a listing with a `limit` when the caller says 0, and the
/// most it returns whatever the caller asks for (job runs, delegations,
/// tasks, unread mail).
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// A job id and the claiming instance must be named.
pub(crate) fn check_job_claim(job: &str, owner: &str) -> StoreResult<()> {
    if job.trim().is_empty() {
        return Err(StoreError::Invalid("a job id must not be empty".to_owned()));
    }
    if owner.trim().is_empty() {
        return Err(StoreError::Invalid(
            "the owner of a job run must not be empty".to_owned(),
        ));
    }
    Ok(())
}

/// A finished occurrence is `ok`, `failed` or `skipped` (`running` is what
/// a claim writes).
pub(crate) fn check_job_outcome(status: &str) -> StoreResult<()> {
    if JOB_OUTCOMES.contains(&status) {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "a job run ends as ok, failed or skipped, not {status:?}"
    )))
}

/// The `LIMIT` of a paged listing: 0 is the default page (100), at most
/// 1000.
pub(crate) fn page_limit(limit: u32) -> i64 {
    i64::from(if limit == 0 {
        DEFAULT_PAGE
    } else {
        limit.min(MAX_PAGE)
    })
}

/// Seeding a gateway token that is already stored (`existing` is its
/// `expires_at`): a retired token is never revived. `None` when it is new.
pub(crate) fn seed_outcome(existing: Option<Option<i64>>, now: i64) -> Option<SeedOutcome> {
    match existing {
        Some(Some(until)) if until <= now => Some(SeedOutcome::Retired),
        Some(_) => Some(SeedOutcome::Known),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_names() {
        assert!(check_slug("agent", "a-1").is_ok());
        let e = check_slug("tenant", "Bad Id").unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid(ref m) if m.contains("tenant id")),
            "{e}"
        );
        assert!(check_user_name("alice").is_ok());
        assert!(matches!(
            check_user_name(" \t"),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn limits() {
        assert_eq!(message_limit(0, Some(-1)), Some(-1));
        assert_eq!(message_limit(0, None), None);
        assert_eq!(message_limit(7, None), Some(7));
        assert_eq!(audit_limit(0), i64::from(DEFAULT_AUDIT_LIMIT));
        assert_eq!(audit_limit(u32::MAX), i64::from(u32::MAX));
    }

    #[test]
    fn job_runs() {
        assert!(check_job_claim("backup.daily", "gw-1").is_ok());
        assert!(matches!(
            check_job_claim(" ", "gw-1"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            check_job_claim("j", ""),
            Err(StoreError::Invalid(_))
        ));
        for ok in ["ok", "failed", "skipped"] {
            assert!(check_job_outcome(ok).is_ok(), "{ok}");
        }
        for bad in [JOB_RUNNING, "", "OK", "error"] {
            assert!(
                matches!(check_job_outcome(bad), Err(StoreError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(page_limit(0), 100);
        assert_eq!(page_limit(3), 3);
        assert_eq!(page_limit(u32::MAX), 1000);
    }

    #[test]
    fn seeding_never_revives() {
        assert!(seed_outcome(None, 5).is_none());
        assert_eq!(seed_outcome(Some(None), 5), Some(SeedOutcome::Known));
        assert_eq!(seed_outcome(Some(Some(6)), 5), Some(SeedOutcome::Known));
        assert_eq!(seed_outcome(Some(Some(5)), 5), Some(SeedOutcome::Retired));
    }
}
