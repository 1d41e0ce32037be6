//! Stores of agent teams: the team itself ([`TeamStore`]), its shared task
//! board ([`TaskStore`], with atomic claims and `blocked_by` dependencies),
//! its mailbox ([`MailStore`]), and conversation handoffs
//! ([`HandoffStore`]). All tenant-scoped.

use super::error::StoreResult;
use crate::{AgentId, TenantId, UnixMillis, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A team: a lead agent and members, all of one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// A slug, unique in the tenant.
    pub id: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub lead: AgentId,
    /// The members besides the lead, in name order.
    pub members: Vec<AgentId>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl Team {
    /// Whether `agent` is the lead or a member.
    pub fn includes(&self, agent: &AgentId) -> bool {
        self.lead == *agent || self.members.contains(agent)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTeam {
    pub id: String,
    pub name: String,
    pub lead: AgentId,
    pub members: Vec<AgentId>,
}

/// What to change in a team (`None`: unchanged).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamUpdate {
    pub name: Option<String>,
    pub lead: Option<AgentId>,
    pub members: Option<Vec<AgentId>>,
}

/// Teams. Deleting a team deletes its board and mailbox.
#[async_trait]
pub trait TeamStore: Send + Sync {
    /// `Conflict` for a taken id; `NotFound` when an agent does not exist in
    /// the tenant; `Invalid` for a bad id or the lead listed as a member.
    async fn create_team(&self, tenant: &TenantId, team: &NewTeam) -> StoreResult<Team>;
    async fn get_team(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Team>>;
    /// The tenant's teams, by id.
    async fn list_teams(&self, tenant: &TenantId) -> StoreResult<Vec<Team>>;
    /// `NotFound` for an unknown team or agent; `Invalid` when the lead
    /// would be listed as a member.
    async fn update_team(
        &self,
        tenant: &TenantId,
        id: &str,
        update: &TeamUpdate,
    ) -> StoreResult<Team>;
    /// `NotFound` when unknown.
    async fn delete_team(&self, tenant: &TenantId, id: &str) -> StoreResult<()>;
}

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for an agent to claim it.
    Pending,
    /// Waiting for the tasks in its `blocked_by` to be done.
    Blocked,
    InProgress,
    Done,
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Blocked => "blocked",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            TaskStatus::Pending,
            TaskStatus::Blocked,
            TaskStatus::InProgress,
            TaskStatus::Done,
            TaskStatus::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    pub fn is_finished(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Failed)
    }
}

/// A comment on a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskComment {
    pub author: AgentId,
    pub text: String,
    pub at: UnixMillis,
}

/// A task on a team's board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub tenant_id: TenantId,
    pub team_id: String,
    pub title: String,
    pub description: String,
    pub status: TaskStatus,
    /// The agent that claimed it.
    pub owner: Option<AgentId>,
    /// Tasks of the same team that must be done first.
    pub blocked_by: Vec<String>,
    /// What the owner reported when done (or why it failed).
    pub result: Option<String>,
    pub created_by: AgentId,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    /// Oldest first (filled by `get_task`; empty in listings).
    pub comments: Vec<TaskComment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTask {
    pub title: String,
    pub description: String,
    pub blocked_by: Vec<String>,
    pub created_by: AgentId,
}

/// How its owner ends a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskOutcome {
    /// The owner.
    pub agent: AgentId,
    /// `Done` or `Failed` (`Invalid` otherwise).
    pub status: TaskStatus,
    pub result: String,
}

/// Which tasks to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub owner: Option<AgentId>,
    /// Words that must all occur in the title or description (case
    /// insensitive).
    pub query: Option<String>,
    /// At most this many (0: 100; never more than 1,000), oldest first.
    pub limit: u32,
    /// Only tasks after this one in board order (`created_at`, then id):
    /// the last task of the previous page, to list the next one. Tasks of
    /// one millisecond are never skipped.
    pub after: Option<(UnixMillis, String)>,
}

/// A team's task board.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// A task, `pending`, or `blocked` while any of `blocked_by` is not
    /// done. `NotFound` for an unknown team; `Invalid` for a `blocked_by`
    /// id that is not a task of the team (so no dependency can loop).
    async fn create_task(
        &self,
        tenant: &TenantId,
        team: &str,
        task: &NewTask,
        now: UnixMillis,
    ) -> StoreResult<Task>;
    /// With its comments.
    async fn get_task(&self, tenant: &TenantId, team: &str, id: &str) -> StoreResult<Option<Task>>;
    /// `NotFound` for an unknown team.
    async fn list_tasks(
        &self,
        tenant: &TenantId,
        team: &str,
        filter: &TaskFilter,
    ) -> StoreResult<Vec<Task>>;
    /// Claim a `pending` task for `agent`, atomically: of concurrent
    /// claimers (also on other gateways sharing the database) exactly one
    /// wins; the others get `Conflict` naming the status or owner.
    async fn claim_task(
        &self,
        tenant: &TenantId,
        team: &str,
        id: &str,
        agent: &AgentId,
        now: UnixMillis,
    ) -> StoreResult<Task>;
    /// Finish an `in_progress` task owned by `outcome.agent` as `Done` or
    /// `Failed` with its result. Completing one makes every `blocked` task whose
    /// `blocked_by` are now all done `pending`, in the same transaction.
    /// `Conflict` when not in progress or owned by another agent.
    async fn finish_task(
        &self,
        tenant: &TenantId,
        team: &str,
        id: &str,
        outcome: &TaskOutcome,
        now: UnixMillis,
    ) -> StoreResult<Task>;
    /// `NotFound` for an unknown task.
    async fn comment_task(
        &self,
        tenant: &TenantId,
        team: &str,
        id: &str,
        comment: &TaskComment,
    ) -> StoreResult<()>;
}

/// A message of a team's mailbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub id: String,
    pub tenant_id: TenantId,
    pub team_id: String,
    pub from: AgentId,
    /// `None`: to every member but the sender (a broadcast).
    pub to: Option<AgentId>,
    pub text: String,
    pub sent_at: UnixMillis,
}

/// A team's mailbox: each member reads each message once.
#[async_trait]
pub trait MailStore: Send + Sync {
    async fn send_mail(
        &self,
        tenant: &TenantId,
        team: &str,
        from: &AgentId,
        to: Option<&AgentId>,
        text: &str,
        now: UnixMillis,
    ) -> StoreResult<Mail>;
    /// Messages to `agent` (direct or broadcast, not its own) it has not
    /// read, oldest first, at most `limit` (0: 100; never more than 1,000);
    /// they are marked read for it. `NotFound` for an unknown team.
    async fn take_unread(
        &self,
        tenant: &TenantId,
        team: &str,
        agent: &AgentId,
        limit: u32,
    ) -> StoreResult<Vec<Mail>>;
    /// How many unread messages `agent` has (without reading them).
    /// `NotFound` for an unknown team.
    async fn count_unread(
        &self,
        tenant: &TenantId,
        team: &str,
        agent: &AgentId,
    ) -> StoreResult<u64>;
}

/// A conversation whose messages go to another agent than its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    pub tenant_id: TenantId,
    /// The conversation: channel, peer and user.
    pub channel: String,
    pub peer: String,
    pub user_id: UserId,
    /// The agent the conversation belonged to.
    pub from_agent: AgentId,
    /// The agent it goes to now.
    pub to_agent: AgentId,
    pub reason: String,
    pub created_at: UnixMillis,
    /// Renewed by every message; the handoff ends after the configured idle
    /// time.
    pub last_active_at: UnixMillis,
}

/// Conversation handoffs: at most one per conversation.
#[async_trait]
pub trait HandoffStore: Send + Sync {
    /// Set (or replace) the handoff of its conversation. `NotFound` when
    /// either agent does not exist in the tenant; `Invalid` for a handoff
    /// to the agent itself.
    async fn set_handoff(&self, handoff: &Handoff) -> StoreResult<()>;
    /// Whether any conversation of the tenant is handed over (true when
    /// the backend cannot tell cheaply).
    async fn any_handoff(&self, tenant: &TenantId) -> StoreResult<bool> {
        let _ = tenant;
        Ok(true)
    }
    /// The handoff of a conversation, if any.
    async fn get_handoff(
        &self,
        tenant: &TenantId,
        channel: &str,
        peer: &str,
        user: &UserId,
    ) -> StoreResult<Option<Handoff>>;
    /// Renew its `last_active_at`. `NotFound` when there is none.
    async fn touch_handoff(
        &self,
        tenant: &TenantId,
        channel: &str,
        peer: &str,
        user: &UserId,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// `true` when there was one.
    async fn clear_handoff(
        &self,
        tenant: &TenantId,
        channel: &str,
        peer: &str,
        user: &UserId,
    ) -> StoreResult<bool>;
    /// The tenant's handoffs, most recently active first, at most 1,000.
    async fn list_handoffs(&self, tenant: &TenantId) -> StoreResult<Vec<Handoff>>;
}
