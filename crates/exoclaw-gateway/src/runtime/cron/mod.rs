//! Cron jobs: an agent's scheduled messages. A job sends its message to its
//! agent at every occurrence of its schedule (`at`, `every`, or a cron
//! expression with a time zone: [`exoclaw_core::schedule`]), as a turn in
//! the `cron` lane started through [`Runtime::launch`], and the answer goes
//! where the job says ([`Delivery`]): a session of the agent, the session a
//! channel peer has with it (channel adapters deliver from there once they
//! run), or a webhook (POSTed through the egress policy).
//!
//! - [`scheduler`]: the supervised task that waits for the next due job,
//!   claims each occurrence exactly once across gateways sharing a database
//!   (the job store's claim), applies the missed-run policy and jitter.
//! - [`fire`]: one occurrence: the run, its delivery, its record in the run
//!   history (status and trace id); a job whose agent was deleted is
//!   disabled and reported.
//! - [`tool`]: the `cron` tool, an agent's own jobs.
//!
//! This file holds what the API, the CLI, the WebSocket and the tool share:
//! validating a job ([`JobRequest`]; a bad schedule or time zone is refused
//! with the reason), creating it within `cron.max_jobs_per_agent`, and
//! changing, listing and deleting jobs as their owner may.

pub mod fire;
pub mod scheduler;
pub mod tool;

use super::Runtime;
use crate::access::Principal;
use exoclaw_core::schedule::{Schedule, ScheduleError};
use exoclaw_core::store::cron::{CronJob, CronJobUpdate, Delivery, MissedPolicy, NewCronJob};
use exoclaw_core::store::{JobRun, StoreError};
use exoclaw_core::{AgentId, UnixMillis, now_ms};
use std::sync::Arc;
use tokio::sync::Notify;

/// The longest jitter a job may ask for.
pub const MAX_JITTER_SEC: u64 = 3600;

/// What the runtime keeps for cron: the scheduler's wake-up (a job was
/// created or changed here) and the webhook client.
pub struct CronState {
    pub(crate) wake: Arc<Notify>,
    pub(crate) webhooks: exoclaw_egress::EgressClient,
}

impl CronState {
    pub fn new(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        Ok(Self {
            wake: Arc::new(Notify::new()),
            webhooks: crate::egress::webhook_client(settings)?,
        })
    }

    /// Tell this gateway's scheduler that jobs changed.
    pub fn nudge(&self) {
        self.wake.notify_one();
    }
}

/// Why a cron request was refused; [`CronError::code`] is its stable code.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// The schedule text is not a schedule; the reason says why.
    #[error("{0}")]
    InvalidSchedule(String),
    /// The schedule names a time zone that does not exist.
    #[error("{0}")]
    InvalidTimeZone(String),
    /// The schedule has no occurrence after now (an `at` in the past).
    #[error("{0}")]
    NoNextRun(String),
    /// Where the answer should go is not usable.
    #[error("{0}")]
    InvalidDelivery(String),
    /// Other input (name, message, jitter, missed-run policy).
    #[error("{0}")]
    Invalid(String),
    /// The agent has `cron.max_jobs_per_agent` jobs already.
    #[error("{0}")]
    Limit(String),
    #[error("no cron job {0:?}")]
    NotFound(String),
    #[error("no agent {0:?}")]
    NoAgent(String),
    #[error(transparent)]
    Store(StoreError),
}

impl CronError {
    /// The stable code (the HTTP API's and the `cron` tool's).
    pub fn code(&self) -> &'static str {
        match self {
            CronError::InvalidSchedule(_) => "cron.invalid_schedule",
            CronError::InvalidTimeZone(_) => "cron.invalid_timezone",
            CronError::NoNextRun(_) => "cron.no_next_run",
            CronError::InvalidDelivery(_) => "cron.invalid_delivery",
            CronError::Invalid(_) => "cron.invalid",
            CronError::Limit(_) => "cron.limit",
            CronError::NotFound(_) => "cron.not_found",
            CronError::NoAgent(_) => "agent.unknown",
            CronError::Store(_) => "internal",
        }
    }
}

impl From<StoreError> for CronError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => CronError::Invalid(m),
            StoreError::Conflict(m) => CronError::Limit(m),
            other => CronError::Store(other),
        }
    }
}

/// A schedule text parsed, with the reason when it is refused.
pub fn parse_schedule(text: &str) -> Result<Schedule, CronError> {
    text.parse::<Schedule>().map_err(|e| match e {
        ScheduleError::TimeZone(_) => CronError::InvalidTimeZone(e.to_string()),
        other => CronError::InvalidSchedule(other.to_string()),
    })
}

/// A job as asked for (API, CLI, WebSocket, tool), before validation.
#[derive(Clone, Debug, Default)]
pub struct JobRequest {
    pub agent: String,
    /// Defaults to the start of the message.
    pub name: Option<String>,
    pub schedule: String,
    pub message: String,
    /// Defaults to the job's own session.
    pub delivery: Option<Delivery>,
    pub missed: Option<MissedPolicy>,
    pub jitter_sec: Option<u64>,
}

/// A change to a job as asked for; `None` leaves a field.
#[derive(Clone, Debug, Default)]
pub struct JobChange {
    pub name: Option<String>,
    pub schedule: Option<String>,
    pub message: Option<String>,
    pub delivery: Option<Delivery>,
    pub missed: Option<MissedPolicy>,
    pub jitter_sec: Option<u64>,
    pub enabled: Option<bool>,
}

/// A job's occurrence as the history shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub due_at: UnixMillis,
    pub owner: String,
    pub started_at: UnixMillis,
    /// `running`, `ok`, `failed`, `skipped`.
    pub status: String,
    pub trace_id: Option<String>,
    /// Why it failed or was skipped (a stable code, `missed:<n>`).
    pub error: Option<String>,
    pub finished_at: Option<UnixMillis>,
}

impl From<JobRun> for RunRecord {
    fn from(r: JobRun) -> Self {
        let (trace_id, error) = parse_detail(r.detail.as_deref());
        Self {
            due_at: r.due_at,
            owner: r.owner,
            started_at: r.started_at,
            status: r.status,
            trace_id,
            error,
            finished_at: r.finished_at,
        }
    }
}

/// A run's `detail` in the job store: `trace=<id>` and `error=<code>`,
/// space-separated, either may be missing.
pub(crate) fn detail(trace: Option<&str>, error: Option<&str>) -> Option<String> {
    let parts: Vec<String> = trace
        .map(|t| format!("trace={t}"))
        .into_iter()
        .chain(error.map(|e| format!("error={e}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn parse_detail(d: Option<&str>) -> (Option<String>, Option<String>) {
    let (mut trace, mut error) = (None, None);
    for part in d.unwrap_or_default().split_whitespace() {
        if let Some(t) = part.strip_prefix("trace=") {
            trace = Some(t.to_owned());
        } else if let Some(e) = part.strip_prefix("error=") {
            error = Some(e.to_owned());
        }
    }
    (trace, error)
}

/// The job's schedule with its first occurrence after `now`, refused when
/// there is none.
fn schedule_with_next(text: &str, now: UnixMillis) -> Result<(Schedule, UnixMillis), CronError> {
    let schedule = parse_schedule(text)?;
    let next = schedule.next_after(now).ok_or_else(|| {
        CronError::NoNextRun(format!(
            "schedule `{schedule}` has no occurrence after now; give a time in the future"
        ))
    })?;
    Ok((schedule, next))
}

fn jitter_ms(sec: u64) -> Result<i64, CronError> {
    if sec > MAX_JITTER_SEC {
        return Err(CronError::Invalid(format!(
            "jitter is {sec} s, at most {MAX_JITTER_SEC}"
        )));
    }
    Ok(i64::try_from(sec * 1000).unwrap_or(i64::MAX))
}

impl Runtime {
    /// Create a job for `who` (its runs are `who`'s turns). `created_by`:
    /// `api`, `cli`, `agent:<id>`.
    pub async fn create_cron_job(
        &self,
        who: &Principal,
        req: JobRequest,
        created_by: &str,
    ) -> Result<CronJob, CronError> {
        let agent = self
            .store
            .get_agent(&who.tenant, &AgentId::new(&req.agent))
            .await?
            .ok_or_else(|| CronError::NoAgent(req.agent.clone()))?;
        if req.message.trim().is_empty() {
            return Err(CronError::Invalid(
                "the message must not be blank: it is what the agent is told at each run"
                    .to_owned(),
            ));
        }
        let now = now_ms();
        let (schedule, next) = schedule_with_next(&req.schedule, now)?;
        let delivery = req.delivery.unwrap_or(Delivery::Session { session: None });
        // A channel peer mapped to a user is that user's conversation: the
        // job runs as them (only they, or who sees every user, may ask).
        let user = self
            .check_delivery(who, &agent.id, &delivery)
            .await?
            .unwrap_or_else(|| who.user.clone());
        let name = req
            .name
            .unwrap_or_else(|| req.message.chars().take(40).collect::<String>());
        let job = NewCronJob {
            agent_id: agent.id,
            user_id: user,
            name: name.trim().to_owned(),
            schedule: schedule.to_string(),
            message: req.message,
            delivery,
            missed: req.missed.unwrap_or_default(),
            jitter_ms: jitter_ms(req.jitter_sec.unwrap_or(0))?,
            next_run_at: Some(next),
            created_by: created_by.to_owned(),
        };
        let max = self.settings.config.cron.max_jobs_per_agent;
        let created = self
            .store
            .create_cron_job(&who.tenant, &job, max, now)
            .await?;
        tracing::info!(
            event = "cron.created",
            tenant = %who.tenant,
            job = %created.id,
            agent = %created.agent_id,
            schedule = %created.schedule,
            "cron job created"
        );
        self.audit(who, "cron.create", &created).await;
        self.cron.nudge();
        Ok(created)
    }

    /// A job `who` may see: their own, or any of the tenant's for those
    /// who see every user's data.
    pub async fn cron_job(&self, who: &Principal, id: &str) -> Result<CronJob, CronError> {
        self.store
            .get_cron_job(&who.tenant, id)
            .await?
            .filter(|j| j.user_id == who.user || who.sees_all_users())
            .ok_or_else(|| CronError::NotFound(id.to_owned()))
    }

    /// The jobs `who` may see (of one agent).
    pub async fn cron_jobs(
        &self,
        who: &Principal,
        agent: Option<&str>,
    ) -> Result<Vec<CronJob>, CronError> {
        let agent = agent.map(AgentId::new);
        let mut jobs = self
            .store
            .list_cron_jobs(&who.tenant, agent.as_ref())
            .await?;
        jobs.retain(|j| j.user_id == who.user || who.sees_all_users());
        Ok(jobs)
    }

    /// Change a job. A new schedule, or enabling, computes its next
    /// occurrence from now.
    pub async fn change_cron_job(
        &self,
        who: &Principal,
        id: &str,
        change: JobChange,
    ) -> Result<CronJob, CronError> {
        let job = self.cron_job(who, id).await?;
        let now = now_ms();
        let mut update = CronJobUpdate {
            name: change.name.map(|n| n.trim().to_owned()),
            message: change.message,
            missed: change.missed,
            enabled: change.enabled,
            ..CronJobUpdate::default()
        };
        if let Some(sec) = change.jitter_sec {
            update.jitter_ms = Some(jitter_ms(sec)?);
        }
        if let Some(d) = change.delivery {
            let user = self.check_delivery(who, &job.agent_id, &d).await?;
            if user.as_ref().is_some_and(|u| *u != job.user_id) {
                return Err(CronError::InvalidDelivery(
                    "that channel peer is another user's conversation than this job's; create a job for it instead"
                        .to_owned(),
                ));
            }
            update.delivery = Some(d);
        }
        let enabling = change.enabled == Some(true);
        if let Some(text) = change.schedule.as_deref() {
            let (schedule, next) = schedule_with_next(text, now)?;
            update.schedule = Some(schedule.to_string());
            update.next_run_at = Some(Some(next));
        } else if enabling && !job.enabled {
            // Occurrences while it was off are not runs missed.
            let (_, next) = schedule_with_next(&job.schedule, now)?;
            update.next_run_at = Some(Some(next));
        }
        if enabling
            && self
                .store
                .get_agent(&who.tenant, &job.agent_id)
                .await?
                .is_none()
        {
            return Err(CronError::NoAgent(job.agent_id.to_string()));
        }
        let changed = self
            .store
            .update_cron_job(&who.tenant, id, &update, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => CronError::NotFound(id.to_owned()),
                e => e.into(),
            })?;
        self.audit(who, "cron.update", &changed).await;
        self.cron.nudge();
        Ok(changed)
    }

    pub async fn delete_cron_job(&self, who: &Principal, id: &str) -> Result<(), CronError> {
        let job = self.cron_job(who, id).await?;
        self.store
            .delete_cron_job(&who.tenant, id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => CronError::NotFound(id.to_owned()),
                e => e.into(),
            })?;
        tracing::info!(event = "cron.deleted", tenant = %who.tenant, job = %id, "cron job deleted");
        self.audit(who, "cron.delete", &job).await;
        Ok(())
    }

    /// The newest runs of a job, newest first.
    pub async fn cron_runs(
        &self,
        who: &Principal,
        id: &str,
        limit: u32,
    ) -> Result<Vec<RunRecord>, CronError> {
        let job = self.cron_job(who, id).await?;
        Ok(self
            .store
            .list_job_runs(&who.tenant, &job.run_key(), limit)
            .await?
            .into_iter()
            .map(RunRecord::from)
            .collect())
    }

    /// Run a job now, outside its schedule, and wait for the run's end.
    pub async fn run_cron_job_now(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<RunRecord, CronError> {
        let job = self.cron_job(who, id).await?;
        let due = now_ms();
        let owner = self.delegations.owner().to_owned();
        if !self
            .store
            .claim_job_run(&who.tenant, &job.run_key(), due, &owner, due)
            .await?
        {
            return Err(CronError::Invalid(
                "this job was just started; try again".to_owned(),
            ));
        }
        self.audit(who, "cron.run", &job).await;
        fire::fire(self, &job, due).await;
        self.store
            .list_job_runs(&who.tenant, &job.run_key(), 1)
            .await?
            .into_iter()
            .find(|r| r.due_at == due)
            .map(RunRecord::from)
            .ok_or_else(|| CronError::NotFound(id.to_owned()))
    }

    /// The audit event of a change to a job (`cron.create`, `cron.update`,
    /// `cron.delete`, `cron.run`): its schedule and where it answers, never
    /// its message or a webhook's URL.
    async fn audit(&self, who: &Principal, action: &str, job: &CronJob) {
        let mut event = exoclaw_core::model::NewAuditEvent::new(
            who.tenant.clone(),
            who.actor.clone(),
            action,
            format!("cron/{}", job.id),
            "allow",
        );
        event.agent_id = Some(job.agent_id.clone());
        event.detail = serde_json::json!({
            "schedule": job.schedule,
            "delivery": job.delivery.kind(),
            "enabled": job.enabled,
            "user": job.user_id,
        });
        crate::audit::record(self.store.as_ref(), &event).await;
    }

    /// Where an answer goes must be usable by this agent and user. For a
    /// channel peer already mapped to a user, that user (the job runs as
    /// them): refused unless it is `who` or `who` sees every user.
    async fn check_delivery(
        &self,
        who: &Principal,
        agent: &AgentId,
        d: &Delivery,
    ) -> Result<Option<exoclaw_core::UserId>, CronError> {
        let bad = |m: &str| Err(CronError::InvalidDelivery(m.to_owned()));
        match d {
            Delivery::Session { session: None } => Ok(None),
            Delivery::Session { session: Some(id) } => {
                let s = self
                    .store
                    .get_session(&who.tenant, &exoclaw_core::SessionId::new(id))
                    .await?;
                match s {
                    Some(s) if &s.agent_id == agent && s.user_id == who.user => Ok(None),
                    _ => bad(&format!(
                        "no session {id} of yours with agent {agent}; name one of yours (GET /v1/sessions) or leave it out for the job's own session"
                    )),
                }
            }
            Delivery::Channel { channel, peer } => {
                if !exoclaw_core::id::is_valid_slug(channel) {
                    return bad(
                        "the channel must be a channel name such as `telegram` (lowercase letters, digits, `-`, `_`)",
                    );
                }
                if peer.trim().is_empty() || peer.len() > 256 {
                    return bad("the peer must be the channel's id of the chat, 1 to 256 bytes");
                }
                let mapped = self
                    .store
                    .get_channel_sender(&who.tenant, channel, peer)
                    .await?;
                match mapped {
                    Some(m) if m.user_id != who.user && !who.sees_all_users() => bad(
                        "that channel peer is another user's conversation; only they (or an admin) may schedule into it",
                    ),
                    Some(m) => Ok(Some(m.user_id)),
                    None => Ok(None),
                }
            }
            Delivery::Webhook { url } => {
                match url::Url::parse(url) {
                    Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
                    _ => return bad("the webhook must be an http or https URL"),
                }
                if let Err(r) = self.cron.webhooks.check_url(url) {
                    return Err(CronError::InvalidDelivery(format!(
                        "the egress policy refuses this webhook ({})",
                        r.rule
                    )));
                }
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_schedules_and_zones_are_refused_with_the_reason() {
        let e = parse_schedule("cron 0 9 * * * in Mars/Olympus").unwrap_err();
        assert_eq!(e.code(), "cron.invalid_timezone");
        assert!(e.to_string().contains("Mars/Olympus"), "{e}");
        let e = parse_schedule("cron 61 * * * *").unwrap_err();
        assert_eq!(e.code(), "cron.invalid_schedule");
        assert!(e.to_string().contains("61"), "{e}");
        let e = parse_schedule("every 5s").unwrap_err();
        assert_eq!(e.code(), "cron.invalid_schedule");
        let e = schedule_with_next("at 2001-01-01T00:00:00Z", now_ms()).unwrap_err();
        assert_eq!(e.code(), "cron.no_next_run");
        assert!(schedule_with_next("cron 0 9 * * MON-FRI in Europe/Berlin", now_ms()).is_ok());
        assert!(schedule_with_next("0 0 29 2 *", now_ms()).is_ok());
    }

    #[test]
    fn run_details_read_back() {
        for (t, e) in [
            (Some("abc"), None),
            (None, Some("agent_deleted")),
            (Some("abc"), Some("webhook.failed")),
            (None, None),
        ] {
            let d = detail(t, e);
            assert_eq!(
                parse_detail(d.as_deref()),
                (t.map(str::to_owned), e.map(str::to_owned))
            );
        }
    }
}
