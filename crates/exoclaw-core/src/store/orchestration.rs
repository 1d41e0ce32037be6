//! Stores of multi-agent orchestration: permission links between agents
//! ([`LinkStore`]), the history of delegations and subagent spawns
//! ([`DelegationStore`]), and bindings that pick the agent answering a
//! channel, peer or user ([`BindingStore`]). All tenant-scoped.

use super::error::StoreResult;
use crate::{AgentId, SessionId, TenantId, UnixMillis, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Which way a link lets delegation go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkDirection {
    /// The source may delegate to the target.
    Outbound,
    /// The target may delegate to the source.
    Inbound,
    /// Both ways.
    Bidirectional,
}

impl LinkDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkDirection::Outbound => "outbound",
            LinkDirection::Inbound => "inbound",
            LinkDirection::Bidirectional => "bidirectional",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "outbound" => Some(LinkDirection::Outbound),
            "inbound" => Some(LinkDirection::Inbound),
            "bidirectional" => Some(LinkDirection::Bidirectional),
            _ => None,
        }
    }
}

/// Whose conversations may use a link: empty `allow` means everyone not
/// denied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkUsers {
    pub allow: Vec<UserId>,
    pub deny: Vec<UserId>,
}

impl LinkUsers {
    pub fn admits(&self, user: &UserId) -> bool {
        !self.deny.contains(user) && (self.allow.is_empty() || self.allow.contains(user))
    }
}

/// A permission link between two agents of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentLink {
    pub tenant_id: TenantId,
    pub source: AgentId,
    pub target: AgentId,
    pub direction: LinkDirection,
    /// Delegations running over this link at once; `None`: no limit of its
    /// own.
    pub max_concurrent: Option<u32>,
    pub users: LinkUsers,
    pub created_at: UnixMillis,
}

impl AgentLink {
    /// Whether this link lets `from` delegate to `to`.
    pub fn permits(&self, from: &AgentId, to: &AgentId) -> bool {
        match self.direction {
            LinkDirection::Outbound => self.source == *from && self.target == *to,
            LinkDirection::Inbound => self.target == *from && self.source == *to,
            LinkDirection::Bidirectional => {
                (self.source == *from && self.target == *to)
                    || (self.target == *from && self.source == *to)
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAgentLink {
    pub source: AgentId,
    pub target: AgentId,
    pub direction: LinkDirection,
    pub max_concurrent: Option<u32>,
    pub users: LinkUsers,
}

/// Permission links. One link per ordered (source, target) pair.
#[async_trait]
pub trait LinkStore: Send + Sync {
    /// `Conflict` when the pair is linked already; `NotFound` when either
    /// agent does not exist in the tenant; `Invalid` for a link to itself.
    async fn create_link(&self, tenant: &TenantId, link: &NewAgentLink) -> StoreResult<AgentLink>;
    /// Links of the tenant; with `agent`, those it is the source or target
    /// of. Ordered by source, then target.
    async fn list_links(
        &self,
        tenant: &TenantId,
        agent: Option<&AgentId>,
    ) -> StoreResult<Vec<AgentLink>>;
    /// `NotFound` when there is no link from `source` to `target`.
    async fn delete_link(
        &self,
        tenant: &TenantId,
        source: &AgentId,
        target: &AgentId,
    ) -> StoreResult<()>;
}

/// A subagent clone or a delegation to a named agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegationKind {
    Spawn,
    Delegate,
}

/// Whether the caller waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegationMode {
    Sync,
    Async,
}

/// Where a delegation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegationStatus {
    Running,
    Done,
    Failed,
    Cancelled,
    /// The gateway running it stopped or crashed first.
    Interrupted,
}

impl DelegationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DelegationStatus::Running => "running",
            DelegationStatus::Done => "done",
            DelegationStatus::Failed => "failed",
            DelegationStatus::Cancelled => "cancelled",
            DelegationStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DelegationStatus::Running,
            DelegationStatus::Done,
            DelegationStatus::Failed,
            DelegationStatus::Cancelled,
            DelegationStatus::Interrupted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One delegation or spawn, as the history records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub id: String,
    pub tenant_id: TenantId,
    pub kind: DelegationKind,
    pub mode: DelegationMode,
    /// The agent whose turn asked.
    pub caller_agent: AgentId,
    /// The user whose conversation it is.
    pub user_id: UserId,
    /// The caller's session (where an async result is announced).
    pub caller_session: Option<SessionId>,
    /// The agent that answers (for a spawn: the caller's own id).
    pub target_agent: AgentId,
    /// The delegation that started this one's caller turn, if any (a chain).
    pub parent_id: Option<String>,
    /// SHA-256 of the task text (the text itself stays in the sessions).
    pub task_digest: String,
    pub status: DelegationStatus,
    pub parent_trace_id: Option<String>,
    pub child_trace_id: Option<String>,
    pub child_session: Option<SessionId>,
    /// The gateway instance running it.
    pub owner: String,
    pub started_at: UnixMillis,
    pub finished_at: Option<UnixMillis>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
    /// A stable code when it failed (`delegation.timeout`, ...).
    pub error_code: Option<String>,
    /// The async result was announced into the caller's session.
    pub announced: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelegation {
    pub kind: DelegationKind,
    pub mode: DelegationMode,
    pub caller_agent: AgentId,
    pub user_id: UserId,
    pub caller_session: Option<SessionId>,
    pub target_agent: AgentId,
    pub parent_id: Option<String>,
    pub task_digest: String,
    pub parent_trace_id: Option<String>,
    pub owner: String,
}

/// How a delegation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegationEnd {
    pub status: DelegationStatus,
    pub child_trace_id: Option<String>,
    pub child_session: Option<SessionId>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
    pub error_code: Option<String>,
}

/// What to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DelegationFilter {
    pub caller_agent: Option<AgentId>,
    pub target_agent: Option<AgentId>,
    pub user_id: Option<UserId>,
    pub status: Option<DelegationStatus>,
    pub kind: Option<DelegationKind>,
    /// Only those started before this (paging backwards in time).
    pub before: Option<UnixMillis>,
    /// With `before`: those started at exactly `before` whose id is below
    /// this count too (the previous page's last row; nothing of one
    /// millisecond is skipped).
    pub before_id: Option<String>,
    /// At most this many (0: 100; never more than 1,000), newest first.
    pub limit: u32,
}

/// The delegation history.
#[async_trait]
pub trait DelegationStore: Send + Sync {
    /// A new delegation, `running`, started `now`.
    async fn create_delegation(
        &self,
        tenant: &TenantId,
        new: &NewDelegation,
        now: UnixMillis,
    ) -> StoreResult<Delegation>;
    /// Record how a running delegation ended. `NotFound` when unknown;
    /// `Conflict` when it had already ended (the first end stands).
    async fn finish_delegation(
        &self,
        tenant: &TenantId,
        id: &str,
        end: &DelegationEnd,
        now: UnixMillis,
    ) -> StoreResult<Delegation>;
    async fn get_delegation(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Delegation>>;
    async fn list_delegations(
        &self,
        tenant: &TenantId,
        filter: &DelegationFilter,
    ) -> StoreResult<Vec<Delegation>>;
    /// Mark an async result announced, once: `true` for the one call that
    /// marked it (exactly-once announcements). `NotFound` when unknown.
    async fn mark_announced(&self, tenant: &TenantId, id: &str) -> StoreResult<bool>;
    /// Every tenant's delegations still `running` under `owner` (a gateway
    /// that stopped without finishing them), marked `interrupted` at `now`
    /// and returned.
    async fn interrupt_running(&self, owner: &str, now: UnixMillis)
    -> StoreResult<Vec<Delegation>>;
}

/// Which agent answers a conversation: the most specific binding that
/// matches wins (see [`Binding::specificity`]); none: the tenant's default
/// agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub id: String,
    pub tenant_id: TenantId,
    /// A channel name (`telegram`, `ws`, `api`); `None` matches any.
    pub channel: Option<String>,
    /// The channel account (a bot of several); `None` matches any.
    pub account: Option<String>,
    /// A peer or group id on the channel; `None` matches any.
    pub peer: Option<String>,
    /// A user; `None` matches any.
    pub user_id: Option<UserId>,
    pub agent: AgentId,
    pub created_at: UnixMillis,
}

impl Binding {
    /// Whether it applies to a conversation.
    pub fn matches(&self, channel: &str, account: Option<&str>, peer: &str, user: &UserId) -> bool {
        self.channel.as_deref().is_none_or(|c| c == channel)
            && self.account.as_deref().is_none_or(|a| Some(a) == account)
            && self.peer.as_deref().is_none_or(|p| p == peer)
            && self.user_id.as_ref().is_none_or(|u| u == user)
    }

    /// How specific it is: a peer outweighs a user, a user an account, an
    /// account a channel.
    pub fn specificity(&self) -> u8 {
        u8::from(self.peer.is_some()) * 8
            + u8::from(self.user_id.is_some()) * 4
            + u8::from(self.account.is_some()) * 2
            + u8::from(self.channel.is_some())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBinding {
    pub channel: Option<String>,
    pub account: Option<String>,
    pub peer: Option<String>,
    pub user_id: Option<UserId>,
    pub agent: AgentId,
}

/// Bindings.
#[async_trait]
pub trait BindingStore: Send + Sync {
    /// `Conflict` when a binding with the same match exists; `NotFound`
    /// when the agent does not exist in the tenant.
    async fn create_binding(&self, tenant: &TenantId, new: &NewBinding) -> StoreResult<Binding>;
    /// The tenant's bindings, oldest first.
    async fn list_bindings(&self, tenant: &TenantId) -> StoreResult<Vec<Binding>>;
    /// `NotFound` when unknown.
    async fn delete_binding(&self, tenant: &TenantId, id: &str) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(direction: LinkDirection) -> AgentLink {
        AgentLink {
            tenant_id: "t".into(),
            source: "a".into(),
            target: "b".into(),
            direction,
            max_concurrent: None,
            users: LinkUsers::default(),
            created_at: 0,
        }
    }

    #[test]
    fn directions_permit_what_they_say() {
        let (a, b): (AgentId, AgentId) = ("a".into(), "b".into());
        assert!(link(LinkDirection::Outbound).permits(&a, &b));
        assert!(!link(LinkDirection::Outbound).permits(&b, &a));
        assert!(link(LinkDirection::Inbound).permits(&b, &a));
        assert!(!link(LinkDirection::Inbound).permits(&a, &b));
        assert!(link(LinkDirection::Bidirectional).permits(&a, &b));
        assert!(link(LinkDirection::Bidirectional).permits(&b, &a));
        let users = LinkUsers {
            allow: vec![],
            deny: vec!["eve".into()],
        };
        assert!(users.admits(&"bob".into()) && !users.admits(&"eve".into()));
    }

    #[test]
    fn the_most_specific_binding_is_the_strongest() {
        let b = |peer: Option<&str>, user: Option<&str>, channel: Option<&str>| Binding {
            id: String::new(),
            tenant_id: "t".into(),
            channel: channel.map(str::to_owned),
            account: None,
            peer: peer.map(str::to_owned),
            user_id: user.map(UserId::new),
            agent: "x".into(),
            created_at: 0,
        };
        assert!(
            b(Some("p"), None, None).specificity() > b(None, Some("u"), Some("c")).specificity()
        );
        assert!(b(None, Some("u"), None).specificity() > b(None, None, Some("c")).specificity());
        assert!(b(None, None, Some("telegram")).matches("telegram", None, "p", &"u".into()));
        assert!(!b(None, None, Some("telegram")).matches("discord", None, "p", &"u".into()));
    }
}
