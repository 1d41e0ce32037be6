//! The rules of multi-agent orchestration and teams, above the SQL: what a
//! link, delegation, binding, team, task, comment, mail or handoff must name,
//! how long its texts may be, the words of the delegation enums as stored,
//! task search, and how a refused claim or finish is worded.
//!
//! Sizes (each refused as `Invalid`, naming the field):
//! - a team name or task title: not blank, at most [`TITLE_MAX_CHARS`]
//!   characters;
//! - a task description or result, a comment, a mail text or a handoff
//!   reason: at most [`TEXT_MAX_BYTES`] bytes of UTF-8 (comments and mail
//!   not blank);
//! - a name-like value (channel, account, peer, user id, instance owner,
//!   error code, trace or session id, dependency id): not empty, at most
//!   [`NAME_MAX_BYTES`] bytes;
//! - agent and team ids are slugs (`super::check_slug`);
//! - a task depends on at most [`MAX_BLOCKED_BY`] tasks, a task query has at
//!   most [`MAX_QUERY_WORDS`] words.

use super::check_slug;
use exoclaw_core::AgentId;
use exoclaw_core::store::orchestration::{
    DelegationEnd, DelegationKind, DelegationMode, DelegationStatus, NewAgentLink, NewBinding,
    NewDelegation,
};
use exoclaw_core::store::teams::{
    Handoff, NewTask, NewTeam, Task, TaskComment, TaskOutcome, TaskStatus, TeamUpdate,
};
use exoclaw_core::store::{StoreError, StoreResult};
use std::collections::BTreeSet;

/// The longest team name or task title, in characters.
pub(crate) const TITLE_MAX_CHARS: usize = 200;
/// The longest description, result, comment, mail or reason, in bytes.
pub(crate) const TEXT_MAX_BYTES: usize = 16 * 1024;
/// The longest name-like value, in bytes.
pub(crate) const NAME_MAX_BYTES: usize = 256;
/// The most tasks one task may wait for.
pub(crate) const MAX_BLOCKED_BY: usize = 100;
/// The most words a task query may have.
pub(crate) const MAX_QUERY_WORDS: usize = 8;

fn invalid(message: String) -> StoreError {
    StoreError::Invalid(message)
}

/// A team name or task title: not blank, at most 200 characters.
pub(crate) fn check_title(field: &str, value: &str) -> StoreResult<()> {
    if value.trim().is_empty() {
        return Err(invalid(format!("the {field} must not be blank")));
    }
    let n = value.chars().count();
    if n > TITLE_MAX_CHARS {
        return Err(invalid(format!(
            "the {field} has {n} characters; at most {TITLE_MAX_CHARS} are allowed"
        )));
    }
    Ok(())
}

/// A longer text: at most 16 KiB; `blank` says whether it may be empty.
fn check_text(field: &str, value: &str, blank: Blank) -> StoreResult<()> {
    if blank == Blank::Refused && value.trim().is_empty() {
        return Err(invalid(format!("the {field} must not be blank")));
    }
    if value.len() > TEXT_MAX_BYTES {
        return Err(invalid(format!(
            "the {field} has {} bytes; at most {TEXT_MAX_BYTES} are allowed",
            value.len()
        )));
    }
    Ok(())
}

/// Whether a text may be blank.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Blank {
    Allowed,
    Refused,
}

/// A name-like value: not empty, at most 256 bytes.
pub(crate) fn check_name(field: &str, value: &str) -> StoreResult<()> {
    if value.is_empty() {
        return Err(invalid(format!("the {field} must not be empty")));
    }
    if value.len() > NAME_MAX_BYTES {
        return Err(invalid(format!(
            "the {field} has {} bytes; at most {NAME_MAX_BYTES} are allowed",
            value.len()
        )));
    }
    Ok(())
}

fn check_opt_name(field: &str, value: Option<&str>) -> StoreResult<()> {
    value.map_or(Ok(()), |v| check_name(field, v))
}

fn check_agent(field: &str, agent: &AgentId) -> StoreResult<()> {
    check_slug(field, agent.as_str())
}

/// A link joins two agents (slugs), not one to itself.
pub(crate) fn check_new_link(link: &NewAgentLink) -> StoreResult<()> {
    check_agent("link source agent", &link.source)?;
    check_agent("link target agent", &link.target)?;
    if link.source == link.target {
        return Err(invalid(format!(
            "a link joins two agents; {} cannot link to itself",
            link.source
        )));
    }
    for user in link.users.allow.iter().chain(&link.users.deny) {
        check_name("link user", user.as_str())?;
    }
    Ok(())
}

/// The stored word of a delegation kind.
pub(crate) fn kind_word(kind: DelegationKind) -> &'static str {
    match kind {
        DelegationKind::Spawn => "spawn",
        DelegationKind::Delegate => "delegate",
    }
}

pub(crate) fn parse_kind(word: &str) -> Option<DelegationKind> {
    [DelegationKind::Spawn, DelegationKind::Delegate]
        .into_iter()
        .find(|k| kind_word(*k) == word)
}

/// The stored word of a delegation mode.
pub(crate) fn mode_word(mode: DelegationMode) -> &'static str {
    match mode {
        DelegationMode::Sync => "sync",
        DelegationMode::Async => "async",
    }
}

pub(crate) fn parse_mode(word: &str) -> Option<DelegationMode> {
    [DelegationMode::Sync, DelegationMode::Async]
        .into_iter()
        .find(|m| mode_word(*m) == word)
}

/// A new delegation: agents are slugs, a spawn answers as its caller, the
/// task digest is a SHA-256 in lowercase hex, the names are names.
pub(crate) fn check_new_delegation(new: &NewDelegation) -> StoreResult<()> {
    check_agent("delegation caller agent", &new.caller_agent)?;
    check_agent("delegation target agent", &new.target_agent)?;
    if new.kind == DelegationKind::Spawn && new.caller_agent != new.target_agent {
        return Err(invalid(format!(
            "a spawn is answered by its caller {}, not by {}",
            new.caller_agent, new.target_agent
        )));
    }
    check_name("delegation user id", new.user_id.as_str())?;
    check_name("delegation owner", &new.owner)?;
    check_opt_name(
        "delegation caller session",
        new.caller_session.as_ref().map(|s| s.as_str()),
    )?;
    check_opt_name("delegation parent id", new.parent_id.as_deref())?;
    check_opt_name("delegation parent trace id", new.parent_trace_id.as_deref())?;
    let digest = &new.task_digest;
    if digest.len() != 64
        || !digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid(
            "the delegation task digest must be a SHA-256 in 64 lowercase hex characters"
                .to_owned(),
        ));
    }
    Ok(())
}

/// An end is not `running`; counts are not negative.
pub(crate) fn check_delegation_end(end: &DelegationEnd) -> StoreResult<()> {
    if end.status == DelegationStatus::Running {
        return Err(invalid(
            "a delegation ends as done, failed, cancelled or interrupted, not running".to_owned(),
        ));
    }
    for (field, n) in [
        ("input_tokens", end.input_tokens),
        ("output_tokens", end.output_tokens),
        ("cost_micros", end.cost_micros),
    ] {
        if n < 0 {
            return Err(invalid(format!(
                "the delegation's {field} must not be negative"
            )));
        }
    }
    check_opt_name("delegation child trace id", end.child_trace_id.as_deref())?;
    check_opt_name(
        "delegation child session",
        end.child_session.as_ref().map(|s| s.as_str()),
    )?;
    check_opt_name("delegation error code", end.error_code.as_deref())
}

/// A binding's match fields, when given, are names (never empty: the unique
/// key reads a missing field as ''); its agent is a slug.
pub(crate) fn check_new_binding(new: &NewBinding) -> StoreResult<()> {
    check_opt_name("binding channel", new.channel.as_deref())?;
    check_opt_name("binding account", new.account.as_deref())?;
    check_opt_name("binding peer", new.peer.as_deref())?;
    check_opt_name("binding user id", new.user_id.as_ref().map(|u| u.as_str()))?;
    check_agent("binding agent", &new.agent)
}

/// Members are slugs, listed once, the lead not among them.
fn check_members(lead: Option<&AgentId>, members: &[AgentId]) -> StoreResult<()> {
    let mut seen = BTreeSet::new();
    for m in members {
        check_agent("team member agent", m)?;
        if !seen.insert(m) {
            return Err(invalid(format!("team member {m} is listed twice")));
        }
        if lead == Some(m) {
            return Err(invalid(format!(
                "the lead {m} is listed as a member of its own team"
            )));
        }
    }
    Ok(())
}

/// A new team: a slug id, a name, a lead and members (see `check_members`).
pub(crate) fn check_new_team(team: &NewTeam) -> StoreResult<()> {
    check_slug("team", &team.id)?;
    check_title("team name", &team.name)?;
    check_agent("team lead agent", &team.lead)?;
    check_members(Some(&team.lead), &team.members)
}

/// An update: what it names is checked like a new team. A new lead that is
/// a current member is caught after the update, in its transaction.
pub(crate) fn check_team_update(update: &TeamUpdate) -> StoreResult<()> {
    if let Some(name) = &update.name {
        check_title("team name", name)?;
    }
    if let Some(lead) = &update.lead {
        check_agent("team lead agent", lead)?;
    }
    match &update.members {
        Some(members) => check_members(update.lead.as_ref(), members),
        None => Ok(()),
    }
}

/// A new task: title, description, its creator, and at most 100 distinct
/// dependencies (whether they are tasks of the team is checked against the
/// board).
pub(crate) fn check_new_task(task: &NewTask) -> StoreResult<()> {
    check_title("task title", &task.title)?;
    check_text("task description", &task.description, Blank::Allowed)?;
    check_agent("task creator agent", &task.created_by)?;
    if task.blocked_by.len() > MAX_BLOCKED_BY {
        return Err(invalid(format!(
            "a task may wait for at most {MAX_BLOCKED_BY} tasks, not {}",
            task.blocked_by.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for dep in &task.blocked_by {
        check_name("task blocked_by id", dep)?;
        if !seen.insert(dep) {
            return Err(invalid(format!("task {dep} is listed twice in blocked_by")));
        }
    }
    Ok(())
}

/// What task search matches: title and description, lowercased.
pub(crate) fn task_search(title: &str, description: &str) -> String {
    format!("{}\n{}", title.to_lowercase(), description.to_lowercase())
}

/// The `LIKE` patterns of a task query, one per word (lowercased, `%`, `_`
/// and `\` escaped), `None` for the unused slots. No words: no filter.
pub(crate) fn task_query(query: Option<&str>) -> StoreResult<[Option<String>; MAX_QUERY_WORDS]> {
    let mut patterns: [Option<String>; MAX_QUERY_WORDS] = Default::default();
    let words: Vec<&str> = query.map_or_else(Vec::new, |q| q.split_whitespace().collect());
    if words.len() > MAX_QUERY_WORDS {
        return Err(invalid(format!(
            "a task query has at most {MAX_QUERY_WORDS} words, not {}",
            words.len()
        )));
    }
    for (slot, word) in patterns.iter_mut().zip(words) {
        check_name("task query word", word)?;
        *slot = Some(super::like_pattern(word));
    }
    Ok(patterns)
}

/// A task ends as done or failed, by an agent, with a result.
pub(crate) fn check_task_outcome(outcome: &TaskOutcome) -> StoreResult<()> {
    if !outcome.status.is_finished() {
        return Err(invalid(format!(
            "a task ends as done or failed, not {}",
            outcome.status.as_str()
        )));
    }
    check_agent("task owner agent", &outcome.agent)?;
    check_text("task result", &outcome.result, Blank::Allowed)
}

/// Why a claim lost: the task is not pending (any more).
pub(crate) fn claim_conflict(task: &Task) -> StoreError {
    StoreError::Conflict(match (&task.owner, task.status) {
        (Some(owner), TaskStatus::InProgress) => {
            format!("task {} is in_progress, claimed by {owner}", task.id)
        }
        (_, status) => format!("task {} is {}, not pending", task.id, status.as_str()),
    })
}

/// Why a finish was refused: the task is not in progress, or not the
/// caller's.
pub(crate) fn finish_conflict(task: &Task, agent: &AgentId) -> StoreError {
    StoreError::Conflict(match (&task.owner, task.status) {
        (Some(owner), TaskStatus::InProgress) if owner != agent => {
            format!("task {} is owned by {owner}, not {agent}", task.id)
        }
        (_, status) => format!("task {} is {}, not in_progress", task.id, status.as_str()),
    })
}

/// A comment: by an agent, not blank, at most 16 KiB.
pub(crate) fn check_comment(comment: &TaskComment) -> StoreResult<()> {
    check_agent("comment author agent", &comment.author)?;
    check_text("comment text", &comment.text, Blank::Refused)
}

/// A mail: from an agent to another one (or to all), not blank, at most
/// 16 KiB.
pub(crate) fn check_mail(from: &AgentId, to: Option<&AgentId>, text: &str) -> StoreResult<()> {
    check_agent("mail sender agent", from)?;
    if let Some(to) = to {
        check_agent("mail recipient agent", to)?;
        if to == from {
            return Err(invalid(format!("{from} cannot mail itself")));
        }
    }
    check_text("mail text", text, Blank::Refused)
}

/// A handoff: a conversation (names), from one agent to another, a reason
/// of at most 16 KiB.
pub(crate) fn check_handoff(h: &Handoff) -> StoreResult<()> {
    check_name("handoff channel", &h.channel)?;
    check_name("handoff peer", &h.peer)?;
    check_name("handoff user id", h.user_id.as_str())?;
    check_agent("handoff from agent", &h.from_agent)?;
    check_agent("handoff to agent", &h.to_agent)?;
    if h.from_agent == h.to_agent {
        return Err(invalid(format!(
            "a handoff goes to another agent; {} cannot hand off to itself",
            h.to_agent
        )));
    }
    check_text("handoff reason", &h.reason, Blank::Allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_invalid_naming(r: &StoreResult<()>, field: &str) -> bool {
        matches!(r, Err(StoreError::Invalid(m)) if m.contains(field))
    }

    #[test]
    fn sizes_name_their_field() {
        assert!(check_title("task title", &"t".repeat(TITLE_MAX_CHARS)).is_ok());
        assert!(check_title("task title", &"é".repeat(TITLE_MAX_CHARS)).is_ok());
        assert!(is_invalid_naming(
            &check_title("task title", &"t".repeat(TITLE_MAX_CHARS + 1)),
            "task title"
        ));
        assert!(is_invalid_naming(
            &check_title("team name", " \n"),
            "team name"
        ));
        assert!(check_text("mail text", &"x".repeat(TEXT_MAX_BYTES), Blank::Refused).is_ok());
        assert!(is_invalid_naming(
            &check_text("mail text", &"x".repeat(TEXT_MAX_BYTES + 1), Blank::Refused),
            "mail text"
        ));
        assert!(check_text("task result", "", Blank::Allowed).is_ok());
        assert!(is_invalid_naming(
            &check_text("comment text", " ", Blank::Refused),
            "comment text"
        ));
        assert!(check_name("peer", &"p".repeat(NAME_MAX_BYTES)).is_ok());
        assert!(is_invalid_naming(
            &check_name("peer", &"p".repeat(NAME_MAX_BYTES + 1)),
            "peer"
        ));
        assert!(is_invalid_naming(&check_name("channel", ""), "channel"));
    }

    #[test]
    fn delegation_words_round_trip() {
        for k in [DelegationKind::Spawn, DelegationKind::Delegate] {
            assert_eq!(parse_kind(kind_word(k)), Some(k));
        }
        for m in [DelegationMode::Sync, DelegationMode::Async] {
            assert_eq!(parse_mode(mode_word(m)), Some(m));
        }
        assert_eq!(parse_kind("Spawn"), None);
        assert_eq!(parse_mode(""), None);
    }

    #[test]
    fn query_words_become_escaped_patterns() {
        let p = task_query(Some("  Fix 100%_done\\ ÉTÉ ")).unwrap();
        assert_eq!(p[0].as_deref(), Some("%fix%"));
        assert_eq!(p[1].as_deref(), Some("%100\\%\\_done\\\\%"));
        assert_eq!(p[2].as_deref(), Some("%été%"));
        assert!(p[3..].iter().all(Option::is_none));
        assert!(task_query(Some("   ")).unwrap().iter().all(Option::is_none));
        assert!(task_query(None).unwrap().iter().all(Option::is_none));
        let many = ["w"; MAX_QUERY_WORDS + 1].join(" ");
        assert!(matches!(
            task_query(Some(&many)),
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(task_search("Ship IT", "Ünïcode"), "ship it\nünïcode");
    }
}
