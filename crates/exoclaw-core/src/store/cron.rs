//! Cron jobs ([`CronStore`]): an agent's scheduled messages, tenant-scoped
//! and bounded per agent. A job names its schedule in the text form of
//! [`crate::schedule::Schedule`], the message it sends, where the answer
//! goes ([`Delivery`]) and what happens to runs missed while no gateway was
//! up ([`MissedPolicy`]). The occurrences a job ran (its run history) are
//! the job store's (`JobStore`, under [`CronJob::run_key`]), where each
//! occurrence is claimed once across gateways.
//!
//! A job outlives its agent on purpose: the scheduler finds the agent gone,
//! disables the job with the reason [`DISABLED_AGENT_DELETED`] and reports
//! it, so the owner sees what happened instead of a job that vanished.

use super::error::StoreResult;
use crate::{AgentId, TenantId, UnixMillis, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Why the scheduler disabled a job: its agent was deleted.
pub const DISABLED_AGENT_DELETED: &str = "agent_deleted";

/// The longest message a job sends.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// The longest job name.
pub const MAX_NAME_BYTES: usize = 128;
/// The longest delivery target (a URL, a channel peer, a session id).
pub const MAX_TARGET_BYTES: usize = 2048;

/// Where a job's answer goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Delivery {
    /// Into a session of the job's agent and user: `session` names one, or
    /// `None` for the job's own session (channel `cron`, peer the job id).
    Session {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// Into the session a channel peer has with the agent (channel and peer
    /// as a channel adapter names them); the answer is stored there and,
    /// when the channel runs in the gateway, queued in its durable outbox.
    Channel { channel: String, peer: String },
    /// The run happens in the job's own session; its answer is POSTed to
    /// this URL (through the egress policy).
    Webhook { url: String },
}

impl Delivery {
    /// The stored kind word.
    pub fn kind(&self) -> &'static str {
        match self {
            Delivery::Session { .. } => "session",
            Delivery::Channel { .. } => "channel",
            Delivery::Webhook { .. } => "webhook",
        }
    }

    /// The stored target: the session id, `channel:peer`, or the URL.
    pub fn target(&self) -> Option<String> {
        match self {
            Delivery::Session { session } => session.clone(),
            Delivery::Channel { channel, peer } => Some(format!("{channel}:{peer}")),
            Delivery::Webhook { url } => Some(url.clone()),
        }
    }

    /// From the stored kind and target; `None` when they do not fit.
    pub fn from_parts(kind: &str, target: Option<&str>) -> Option<Self> {
        match (kind, target) {
            ("session", t) => Some(Delivery::Session {
                session: t.map(str::to_owned),
            }),
            ("channel", Some(t)) => {
                let (channel, peer) = t.split_once(':')?;
                Some(Delivery::Channel {
                    channel: channel.to_owned(),
                    peer: peer.to_owned(),
                })
            }
            ("webhook", Some(url)) => Some(Delivery::Webhook {
                url: url.to_owned(),
            }),
            _ => None,
        }
    }
}

/// What happens to the occurrences a job missed while no gateway ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// Recorded as skipped; the job waits for its next occurrence.
    #[default]
    Skip,
    /// One run now for all of them, then the next occurrence.
    RunOnce,
}

impl MissedPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            MissedPolicy::Skip => "skip",
            MissedPolicy::RunOnce => "run_once",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "skip" => Some(MissedPolicy::Skip),
            "run_once" => Some(MissedPolicy::RunOnce),
            _ => None,
        }
    }
}

/// A job to create. The gateway validates the schedule and the delivery
/// before it gets here; the store checks sizes and the bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCronJob {
    pub agent_id: AgentId,
    /// On whose behalf the job runs (its sessions and budgets).
    pub user_id: UserId,
    pub name: String,
    /// The canonical text form of the schedule.
    pub schedule: String,
    pub message: String,
    pub delivery: Delivery,
    pub missed: MissedPolicy,
    /// The most a run is delayed past its time (0: none).
    pub jitter_ms: i64,
    /// The first occurrence, or `None` when there is none.
    pub next_run_at: Option<UnixMillis>,
    /// Who created it: `api`, `cli`, `agent:<id>`.
    pub created_by: String,
}

/// A stored job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronJob {
    pub tenant_id: TenantId,
    pub id: String,
    pub agent_id: AgentId,
    pub user_id: UserId,
    pub name: String,
    pub schedule: String,
    pub message: String,
    pub delivery: Delivery,
    pub missed: MissedPolicy,
    pub jitter_ms: i64,
    pub enabled: bool,
    /// Why the gateway disabled it (e.g. [`DISABLED_AGENT_DELETED`]); `None`
    /// when enabled or disabled by a person.
    pub disabled_reason: Option<String>,
    /// The next occurrence to run; `None` when there is none (a one-shot
    /// that ran).
    pub next_run_at: Option<UnixMillis>,
    /// The latest occurrence that was handled (ran, skipped or failed).
    pub last_run_at: Option<UnixMillis>,
    pub created_by: String,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl CronJob {
    /// The job store key its occurrences are claimed under.
    pub fn run_key(&self) -> String {
        run_key(&self.id)
    }
}

/// The job store key of cron job `id`'s occurrences.
pub fn run_key(id: &str) -> String {
    format!("cron:{id}")
}

/// A change to a job; `None` leaves a field as it is. Changing the schedule
/// comes with its new `next_run_at`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CronJobUpdate {
    pub name: Option<String>,
    pub schedule: Option<String>,
    pub message: Option<String>,
    pub delivery: Option<Delivery>,
    pub missed: Option<MissedPolicy>,
    pub jitter_ms: Option<i64>,
    /// Enabling clears `disabled_reason`.
    pub enabled: Option<bool>,
    /// Set with a new schedule or when enabling: `Some(None)` clears it.
    pub next_run_at: Option<Option<UnixMillis>>,
}

/// Cron jobs (see the module docs).
#[async_trait]
pub trait CronStore: Send + Sync {
    /// Create a job for `job.agent_id`, refused with `Conflict` when that
    /// agent already has `max_per_agent` jobs (counted under a lock, so two
    /// gateways cannot both take the last place).
    async fn create_cron_job(
        &self,
        tenant: &TenantId,
        job: &NewCronJob,
        max_per_agent: u32,
        now: UnixMillis,
    ) -> StoreResult<CronJob>;
    async fn get_cron_job(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<CronJob>>;
    /// The tenant's jobs (of one agent), by creation time.
    async fn list_cron_jobs(
        &self,
        tenant: &TenantId,
        agent: Option<&AgentId>,
    ) -> StoreResult<Vec<CronJob>>;
    /// `NotFound` when it is not the tenant's.
    async fn update_cron_job(
        &self,
        tenant: &TenantId,
        id: &str,
        update: &CronJobUpdate,
        now: UnixMillis,
    ) -> StoreResult<CronJob>;
    /// `NotFound` when it is not the tenant's. Its run history stays.
    async fn delete_cron_job(&self, tenant: &TenantId, id: &str) -> StoreResult<()>;
    /// After occurrence `handled` was dealt with: `last_run_at` becomes it
    /// (never going back) and `next_run_at` becomes `next` unless another
    /// gateway already moved it further.
    async fn advance_cron_job(
        &self,
        tenant: &TenantId,
        id: &str,
        handled: UnixMillis,
        next: Option<UnixMillis>,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// Disable a job for `reason` (the gateway's doing, shown to its owner).
    async fn disable_cron_job(
        &self,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// Every tenant's enabled jobs with a next occurrence, soonest first,
    /// at most `limit`: what the scheduler waits for.
    async fn due_cron_jobs(&self, limit: u32) -> StoreResult<Vec<CronJob>>;
}
