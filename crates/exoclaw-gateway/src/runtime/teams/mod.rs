//! Agent teams, the gateway's side: the operations on a team's task board
//! and mailbox that the team tools (through the [`TeamBoard`] port,
//! `board.rs`), the HTTP routes and the WebSocket methods all call, with
//! one set of refusals ([`TeamError`], a stable code each); the end of a
//! task ([`on_task_completed`], the one place that hears of it); and the
//! inbox a member is shown at its next turn (`inbox.rs`).
//!
//! The store does the hard parts atomically (claims, unblocking, cycle
//! refusal); this module checks who may act (an agent acts only on teams
//! it leads or is a member of) before anything is written.
//!
//! [`TeamBoard`]: exoclaw_core::tool::TeamBoard

mod board;
pub mod inbox;

pub use board::Board;

use super::Runtime;
use exoclaw_core::store::teams::{
    Mail, NewTask, Task, TaskComment, TaskFilter, TaskOutcome, TaskStatus, Team,
};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, TenantId, UserId, now_ms};
use std::sync::Arc;

/// Why a team operation was refused (each with a stable code).
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("no team {0:?}")]
    NoTeam(String),
    #[error("agent {agent} is not a member of team {team}")]
    NotMember { agent: AgentId, team: String },
    #[error("agent {agent} is not a member of team {team}")]
    UnknownMember { agent: AgentId, team: String },
    #[error("no task {task:?} on the board of team {team}")]
    NoTask { task: String, team: String },
    /// A claim of a task that is not pending, a finish by another agent or
    /// of a task not in progress.
    #[error("{0}")]
    Conflict(String),
    /// A `blocked_by` that names no task of the team.
    #[error("{0}")]
    Dependency(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the team store cannot be reached right now; try again")]
    Unavailable,
    /// A blocking quality gate refused a completion (the feedback inside).
    #[error("{0}")]
    GateRejected(String),
    /// A store failure without a meaning here (logged where it is made).
    #[error("internal error; see the gateway log")]
    Internal,
}

impl TeamError {
    /// The stable code (`team.*`; the HTTP table has each).
    pub fn code(&self) -> &'static str {
        match self {
            TeamError::NoTeam(_) => "team.not_found",
            TeamError::NotMember { .. } => "team.not_member",
            TeamError::UnknownMember { .. } => "team.unknown_member",
            TeamError::NoTask { .. } => "team.task_not_found",
            TeamError::Conflict(_) => "team.task_conflict",
            TeamError::Dependency(_) => "team.invalid_dependency",
            TeamError::Invalid(_) => "request.invalid",
            TeamError::Unavailable => "team.unavailable",
            TeamError::GateRejected(_) => "gate.rejected",
            TeamError::Internal => "internal",
        }
    }

    /// A store failure with no more specific meaning here.
    fn store(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => TeamError::Unavailable,
            StoreError::Invalid(m) => TeamError::Invalid(m),
            StoreError::Conflict(m) => TeamError::Conflict(m),
            other => {
                tracing::error!(error = %other, "team store failure");
                TeamError::Internal
            }
        }
    }
}

type TeamResult<T> = Result<T, TeamError>;

/// The team `id` of `tenant`.
pub async fn team(store: &dyn Store, tenant: &TenantId, id: &str) -> TeamResult<Team> {
    if !exoclaw_core::id::is_valid_slug(id) {
        return Err(TeamError::NoTeam(id.to_owned()));
    }
    store
        .get_team(tenant, id)
        .await
        .map_err(TeamError::store)?
        .ok_or_else(|| TeamError::NoTeam(id.to_owned()))
}

/// The team `id`, when `agent` leads it or is a member.
pub async fn team_of_member(
    store: &dyn Store,
    tenant: &TenantId,
    id: &str,
    agent: &AgentId,
) -> TeamResult<Team> {
    let team = team(store, tenant, id).await?;
    if !team.includes(agent) {
        return Err(TeamError::NotMember {
            agent: agent.clone(),
            team: team.id,
        });
    }
    Ok(team)
}

/// The teams `agent` leads or is a member of, by id.
pub async fn teams_of(
    store: &dyn Store,
    tenant: &TenantId,
    agent: &AgentId,
) -> TeamResult<Vec<Team>> {
    Ok(store
        .list_teams(tenant)
        .await
        .map_err(TeamError::store)?
        .into_iter()
        .filter(|t| t.includes(agent))
        .collect())
}

/// A new task on `team`'s board, by a member (`task.created_by`).
pub async fn create_task(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    task: &NewTask,
) -> TeamResult<Task> {
    let t = team_of_member(store, tenant, team, &task.created_by).await?;
    store
        .create_task(tenant, &t.id, task, now_ms())
        .await
        .map_err(|e| match e {
            StoreError::Invalid(m) => TeamError::Dependency(m),
            StoreError::NotFound => TeamError::NoTeam(t.id.clone()),
            other => TeamError::store(other),
        })
}

fn task_error(team: &str, id: &str) -> impl FnOnce(StoreError) -> TeamError {
    let (team, id) = (team.to_owned(), id.to_owned());
    move |e| match e {
        StoreError::NotFound => TeamError::NoTask { task: id, team },
        other => TeamError::store(other),
    }
}

/// One task with its comments.
pub async fn get_task(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    id: &str,
) -> TeamResult<Task> {
    store
        .get_task(tenant, team, id)
        .await
        .map_err(TeamError::store)?
        .ok_or_else(|| TeamError::NoTask {
            task: id.to_owned(),
            team: team.to_owned(),
        })
}

/// The board, filtered.
pub async fn list_tasks(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    filter: &TaskFilter,
) -> TeamResult<Vec<Task>> {
    store
        .list_tasks(tenant, team, filter)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => TeamError::NoTeam(team.to_owned()),
            other => TeamError::store(other),
        })
}

/// `agent` claims a pending task: of concurrent claimers exactly one wins
/// (also across gateways on one database); the others are
/// `team.task_conflict`.
pub async fn claim_task(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    id: &str,
    agent: &AgentId,
) -> TeamResult<Task> {
    let t = team_of_member(store, tenant, team, agent).await?;
    store
        .claim_task(tenant, &t.id, id, agent, now_ms())
        .await
        .map_err(task_error(&t.id, id))
}

/// Its owner ends a task (`Done` or `Failed`), on behalf of `user`; the
/// store unblocks the tasks that waited only on it in the same
/// transaction. Every surface finishes tasks here, so
/// [`on_task_completed`] hears of each end once.
///
/// A task completed `Done` first passes the owner's `team_task.completed`
/// quality gates: a blocking gate that fails refuses the completion
/// (`gate.rejected`, the feedback also left as a comment by
/// [`GATE_AUTHOR`], the task still the owner's to revise), and after the
/// gate's retries the task fails with the feedback; a failing
/// non-blocking gate completes it with a warning in the result.
pub async fn finish_task(
    rt: &Arc<Runtime>,
    tenant: &TenantId,
    user: &UserId,
    team: &str,
    id: &str,
    outcome: &TaskOutcome,
) -> TeamResult<Task> {
    if !outcome.status.is_finished() {
        return Err(TeamError::Invalid(
            "status: a task ends done or failed".to_owned(),
        ));
    }
    let t = team_of_member(rt.store.as_ref(), tenant, team, &outcome.agent).await?;
    let mut outcome = outcome.clone();
    if outcome.status == TaskStatus::Done {
        gate_completion(rt, tenant, user, &t, id, &mut outcome).await?;
    }
    let task = rt
        .store
        .finish_task(tenant, &t.id, id, &outcome, now_ms())
        .await
        .map_err(task_error(&t.id, id))?;
    on_task_completed(rt, &t, &task).await;
    Ok(task)
}

/// Who the comments of a quality gate are by.
pub const GATE_AUTHOR: &str = "quality-gate";

/// The owner's `team_task.completed` gates over `outcome` (see
/// [`finish_task`]); may turn it into a failure or add a warning.
async fn gate_completion(
    rt: &Arc<Runtime>,
    tenant: &TenantId,
    user: &UserId,
    team: &Team,
    id: &str,
    outcome: &mut TaskOutcome,
) -> TeamResult<()> {
    use super::gates::{Outcome, warning};
    let owner = match rt.store.get_agent(tenant, &outcome.agent).await {
        Ok(Some(a)) => a,
        Ok(None) => return Ok(()),
        Err(e) => return Err(TeamError::store(e)),
    };
    let gates = super::gates::of(&owner, super::agent_settings::GateEvent::TeamTaskCompleted);
    if gates.is_empty() {
        return Ok(());
    }
    // Only the owner of a task in progress may complete it: checked before
    // a gate runs, so a gate never runs for a refused completion.
    let task = get_task(rt.store.as_ref(), tenant, &team.id, id).await?;
    if task.status != TaskStatus::InProgress || task.owner.as_ref() != Some(&outcome.agent) {
        return Ok(());
    }
    match rt
        .check_gates(tenant, user, &outcome.agent, &gates, &outcome.result)
        .await
    {
        Outcome::Passed => Ok(()),
        Outcome::Failed {
            gate,
            feedback,
            block: false,
            ..
        } => {
            outcome.result.push_str(&warning(&gate, &feedback));
            Ok(())
        }
        Outcome::Failed {
            gate,
            feedback,
            retries,
            ..
        } => {
            let refused = task
                .comments
                .iter()
                .filter(|c| c.author.as_str() == GATE_AUTHOR)
                .count();
            if u32::try_from(refused).unwrap_or(u32::MAX) >= retries {
                outcome.status = TaskStatus::Failed;
                outcome.result = format!(
                    "did not pass the quality gate {gate} after {refused} revision(s): {feedback}\n\n\
                     The last result:\n{}",
                    outcome.result
                );
                return Ok(());
            }
            let comment = TaskComment {
                author: AgentId::new(GATE_AUTHOR),
                text: format!("[quality gate {gate}] {feedback}"),
                at: now_ms(),
            };
            rt.store
                .comment_task(tenant, &team.id, id, &comment)
                .await
                .map_err(task_error(&team.id, id))?;
            Err(TeamError::GateRejected(format!(
                "the result did not pass the quality gate {gate}; revise it and complete the task again \
                 ({} of {retries} revision(s) used). Feedback: {feedback}",
                refused + 1
            )))
        }
    }
}

/// A task has just ended (done or failed), once per task, whichever
/// surface ended it: the place for what follows a task's end (the
/// `team_task.completed` event; quality gates hook in here).
pub async fn on_task_completed(rt: &Runtime, team: &Team, task: &Task) {
    let _ = rt;
    tracing::info!(
        event = "team_task.completed",
        tenant = %task.tenant_id,
        team = %team.id,
        task = %task.id,
        status = task.status.as_str(),
        owner = ?task.owner.as_ref().map(AgentId::as_str),
        "team task ended"
    );
}

/// A member comments on a task.
pub async fn comment_task(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    id: &str,
    author: &AgentId,
    text: &str,
) -> TeamResult<()> {
    let t = team_of_member(store, tenant, team, author).await?;
    let comment = TaskComment {
        author: author.clone(),
        text: text.to_owned(),
        at: now_ms(),
    };
    store
        .comment_task(tenant, &t.id, id, &comment)
        .await
        .map_err(task_error(&t.id, id))
}

/// A member sends a message to another member, or (`to: None`) to all.
pub async fn send_mail(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    from: &AgentId,
    to: Option<&AgentId>,
    text: &str,
) -> TeamResult<Mail> {
    let t = team_of_member(store, tenant, team, from).await?;
    if let Some(to) = to
        && (!t.includes(to) || to == from)
    {
        return Err(if to == from {
            TeamError::Invalid("to: a message goes to another member".to_owned())
        } else {
            TeamError::UnknownMember {
                agent: to.clone(),
                team: t.id,
            }
        });
    }
    store
        .send_mail(tenant, &t.id, from, to, text, now_ms())
        .await
        .map_err(TeamError::store)
}

/// `agent`'s unread messages of `team` (now read).
pub async fn read_mail(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    agent: &AgentId,
    limit: u32,
) -> TeamResult<Vec<Mail>> {
    let t = team_of_member(store, tenant, team, agent).await?;
    store
        .take_unread(tenant, &t.id, agent, limit)
        .await
        .map_err(TeamError::store)
}
