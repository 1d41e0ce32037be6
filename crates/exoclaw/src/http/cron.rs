//! Cron jobs over HTTP: `GET|POST /v1/cron`, `GET|PATCH|DELETE
//! /v1/cron/{id}`, `POST /v1/cron/{id}/run` (run now, answer when it
//! ended) and `GET /v1/cron/{id}/runs` (the run history: status and trace
//! id per occurrence). The shapes here are also the WebSocket's (`cron.*`)
//! and the CLI's `--json`. A job runs as its creator's turns: owners and
//! admins see the tenant's jobs, everyone else their own. Reading needs
//! `sessions.read`, changing (and running) `chat`: a job is a chat message
//! sent later. A bad schedule or time zone is refused with the reason
//! (`cron.invalid_schedule`, `cron.invalid_timezone`).

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{Body, Path, Query};
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::store::cron::{CronJob, Delivery, MissedPolicy};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::runtime::Runtime;
use exoclaw_gateway::runtime::cron::{CronError, JobChange, JobRequest, RunRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Where a job's answer goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeliveryView {
    /// Into a session of the job's agent and user: `session` names one of
    /// them; without it, the job's own session (channel `cron`, peer the
    /// job id).
    Session {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// Into the session the channel peer has with the agent (`channel` as
    /// configured, `peer` the channel's chat id); channel adapters deliver
    /// it from there.
    Channel { channel: String, peer: String },
    /// The run happens in the job's own session and its answer is POSTed
    /// as JSON (`job`, `name`, `agent`, `due_at`, `trace_id`, `text`) to
    /// this URL, through the egress policy (public addresses only).
    Webhook { url: String },
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        match d {
            Delivery::Session { session } => Self::Session { session },
            Delivery::Channel { channel, peer } => Self::Channel { channel, peer },
            Delivery::Webhook { url } => Self::Webhook { url },
        }
    }
}

impl From<DeliveryView> for Delivery {
    fn from(d: DeliveryView) -> Self {
        match d {
            DeliveryView::Session { session } => Self::Session { session },
            DeliveryView::Channel { channel, peer } => Self::Channel { channel, peer },
            DeliveryView::Webhook { url } => Self::Webhook { url },
        }
    }
}

/// Runs missed while no gateway ran: `skip` (recorded as skipped) or
/// `run_once` (one run at start-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissedView {
    Skip,
    RunOnce,
}

impl From<MissedPolicy> for MissedView {
    fn from(m: MissedPolicy) -> Self {
        match m {
            MissedPolicy::Skip => Self::Skip,
            MissedPolicy::RunOnce => Self::RunOnce,
        }
    }
}

impl From<MissedView> for MissedPolicy {
    fn from(m: MissedView) -> Self {
        match m {
            MissedView::Skip => Self::Skip,
            MissedView::RunOnce => Self::RunOnce,
        }
    }
}

/// A cron job.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CronJobView {
    pub id: String,
    pub name: String,
    pub agent: String,
    /// The user the job runs for.
    pub user_id: String,
    /// The schedule in its canonical text form (`at ...`, `every ...`,
    /// `cron ... in <zone>`).
    pub schedule: String,
    pub message: String,
    pub delivery: DeliveryView,
    pub missed: MissedView,
    /// A run is delayed by up to this many seconds.
    pub jitter_sec: u64,
    pub enabled: bool,
    /// `scheduled`, `done` (a one-shot that ran) or `disabled`.
    pub state: String,
    /// Why the gateway disabled it: `agent_deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Unix milliseconds of the next occurrence.
    pub next_run_at: Option<i64>,
    /// Unix milliseconds of the latest occurrence handled.
    pub last_run_at: Option<i64>,
    /// `api`, `ws`, `cli` or `agent:<id>` (the `cron` tool).
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<CronJob> for CronJobView {
    fn from(j: CronJob) -> Self {
        let state = if !j.enabled {
            "disabled"
        } else if j.next_run_at.is_none() {
            "done"
        } else {
            "scheduled"
        };
        Self {
            id: j.id,
            name: j.name,
            agent: j.agent_id.to_string(),
            user_id: j.user_id.to_string(),
            schedule: j.schedule,
            message: j.message,
            delivery: j.delivery.into(),
            missed: j.missed.into(),
            jitter_sec: u64::try_from(j.jitter_ms / 1000).unwrap_or(0),
            enabled: j.enabled,
            state: state.to_owned(),
            disabled_reason: j.disabled_reason,
            next_run_at: j.next_run_at,
            last_run_at: j.last_run_at,
            created_by: j.created_by,
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CronJobList {
    pub jobs: Vec<CronJobView>,
}

/// A job to create.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCronJob {
    /// The agent the message goes to.
    pub agent: String,
    /// Defaults to the start of the message.
    #[serde(default)]
    pub name: Option<String>,
    /// `at 2026-05-01T09:00:00Z`, `at 2026-05-01T09:00 in Europe/Berlin`,
    /// `every 15m`, `every 1h from 2026-05-01T09:00:00Z`,
    /// `cron 0 9 * * MON-FRI in Europe/Berlin` (5 or 6 fields), `@daily`.
    pub schedule: String,
    pub message: String,
    /// Defaults to the job's own session.
    #[serde(default)]
    pub delivery: Option<DeliveryView>,
    /// Defaults to `skip`.
    #[serde(default)]
    pub missed: Option<MissedView>,
    /// Up to 3600; defaults to 0.
    #[serde(default)]
    pub jitter_sec: Option<u64>,
}

/// A change to a job: the fields given change. A new schedule, or
/// enabling, computes the next occurrence from now.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCronJob {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub delivery: Option<DeliveryView>,
    #[serde(default)]
    pub missed: Option<MissedView>,
    #[serde(default)]
    pub jitter_sec: Option<u64>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// One occurrence of a job.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CronRunView {
    /// Unix milliseconds the occurrence was due (or the run-now time).
    pub due_at: i64,
    /// `running`, `ok`, `failed`, `skipped`.
    pub status: String,
    /// The run's trace (`GET /v1/traces/{id}`).
    pub trace_id: Option<String>,
    /// Why it failed or was skipped: an error code, `agent_deleted`,
    /// `missed:<n>`.
    pub error: Option<String>,
    /// The gateway instance that ran it.
    pub owner: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

impl From<RunRecord> for CronRunView {
    fn from(r: RunRecord) -> Self {
        Self {
            due_at: r.due_at,
            status: r.status,
            trace_id: r.trace_id,
            error: r.error,
            owner: r.owner,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CronRunList {
    pub runs: Vec<CronRunView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CronQuery {
    /// Only this agent's jobs.
    agent: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// The most runs, newest first (default 100, at most 1000).
    limit: Option<u32>,
}

/// A refusal of the cron runtime as an API error.
pub fn api_error(e: CronError) -> ApiError {
    let code = match &e {
        CronError::InvalidSchedule(_) => ErrorCode::CronInvalidSchedule,
        CronError::InvalidTimeZone(_) => ErrorCode::CronInvalidTimezone,
        CronError::NoNextRun(_) => ErrorCode::CronNoNextRun,
        CronError::InvalidDelivery(_) => ErrorCode::CronInvalidDelivery,
        CronError::Invalid(_) => ErrorCode::CronInvalid,
        CronError::Limit(_) => ErrorCode::CronLimit,
        CronError::NotFound(_) => ErrorCode::CronNotFound,
        CronError::NoAgent(_) => ErrorCode::AgentUnknown,
        CronError::Store(_) => ErrorCode::Internal,
    };
    match e {
        CronError::Store(s) => s.into(),
        other => ApiError::new(code, other.to_string()),
    }
}

/// The operations the HTTP handlers, the WebSocket methods and the CLI
/// share, with their answers as the API shapes them.
pub mod ops {
    use super::*;

    pub async fn list(
        rt: &Runtime,
        who: &Principal,
        agent: Option<&str>,
    ) -> Result<CronJobList, ApiError> {
        let jobs = rt.cron_jobs(who, agent).await.map_err(api_error)?;
        Ok(CronJobList {
            jobs: jobs.into_iter().map(CronJobView::from).collect(),
        })
    }

    pub async fn create(
        rt: &Runtime,
        who: &Principal,
        b: CreateCronJob,
        created_by: &str,
    ) -> Result<CronJobView, ApiError> {
        let req = JobRequest {
            agent: b.agent,
            name: b.name,
            schedule: b.schedule,
            message: b.message,
            delivery: b.delivery.map(Delivery::from),
            missed: b.missed.map(MissedPolicy::from),
            jitter_sec: b.jitter_sec,
        };
        rt.create_cron_job(who, req, created_by)
            .await
            .map(CronJobView::from)
            .map_err(api_error)
    }

    pub async fn get(rt: &Runtime, who: &Principal, id: &str) -> Result<CronJobView, ApiError> {
        rt.cron_job(who, id)
            .await
            .map(CronJobView::from)
            .map_err(api_error)
    }

    pub async fn update(
        rt: &Runtime,
        who: &Principal,
        id: &str,
        b: UpdateCronJob,
    ) -> Result<CronJobView, ApiError> {
        let change = JobChange {
            name: b.name,
            schedule: b.schedule,
            message: b.message,
            delivery: b.delivery.map(Delivery::from),
            missed: b.missed.map(MissedPolicy::from),
            jitter_sec: b.jitter_sec,
            enabled: b.enabled,
        };
        rt.change_cron_job(who, id, change)
            .await
            .map(CronJobView::from)
            .map_err(api_error)
    }

    pub async fn delete(rt: &Runtime, who: &Principal, id: &str) -> Result<(), ApiError> {
        rt.delete_cron_job(who, id).await.map_err(api_error)
    }

    pub async fn run(rt: &Runtime, who: &Principal, id: &str) -> Result<CronRunView, ApiError> {
        rt.run_cron_job_now(who, id)
            .await
            .map(CronRunView::from)
            .map_err(api_error)
    }

    pub async fn runs(
        rt: &Runtime,
        who: &Principal,
        id: &str,
        limit: u32,
    ) -> Result<CronRunList, ApiError> {
        let runs = rt.cron_runs(who, id, limit).await.map_err(api_error)?;
        Ok(CronRunList {
            runs: runs.into_iter().map(CronRunView::from).collect(),
        })
    }
}

/// List the cron jobs the caller may see, oldest first.
#[utoipa::path(get, path = "/v1/cron", tag = "cron", params(CronQuery),
    responses((status = 200, description = "The jobs", body = CronJobList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<CronQuery>,
) -> Result<Json<CronJobList>, ApiError> {
    Ok(Json(
        ops::list(&state.runtime, &who, q.agent.as_deref()).await?,
    ))
}

/// Create a cron job for the caller.
#[utoipa::path(post, path = "/v1/cron", tag = "cron", request_body = CreateCronJob,
    responses(
        (status = 201, description = "The new job", body = CronJobView),
        (status = 400, description = "A bad schedule (`cron.invalid_schedule`), time zone \
            (`cron.invalid_timezone`), a schedule without a future occurrence \
            (`cron.no_next_run`), a bad delivery (`cron.invalid_delivery`) or other field \
            (`cron.invalid`); the message says why", body = ErrorBody),
        (status = 409, description = "The agent has `cron.max_jobs_per_agent` jobs (`cron.limit`)", body = ErrorBody),
        (status = 422, description = "No such agent (`agent.unknown`)", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Body(b): Body<CreateCronJob>,
) -> Result<(StatusCode, Json<CronJobView>), ApiError> {
    let job = ops::create(&state.runtime, &who, b, "api").await?;
    Ok((StatusCode::CREATED, Json(job)))
}

/// One cron job.
#[utoipa::path(get, path = "/v1/cron/{id}", tag = "cron",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = CronJobView),
        (status = 404, description = "No such job of the caller's (`cron.not_found`)", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<CronJobView>, ApiError> {
    Ok(Json(ops::get(&state.runtime, &who, &id).await?))
}

/// Change a cron job; `{"enabled": false}` disables it, `{"enabled": true}`
/// enables it again from its next occurrence.
#[utoipa::path(patch, path = "/v1/cron/{id}", tag = "cron", request_body = UpdateCronJob,
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job as changed", body = CronJobView),
        (status = 400, description = "A bad schedule, time zone, delivery or field", body = ErrorBody),
        (status = 404, description = "No such job of the caller's (`cron.not_found`)", body = ErrorBody),
        (status = 422, description = "Enabling a job whose agent was deleted (`agent.unknown`)", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Body(b): Body<UpdateCronJob>,
) -> Result<Json<CronJobView>, ApiError> {
    Ok(Json(ops::update(&state.runtime, &who, &id, b).await?))
}

/// Delete a cron job (its run history stays in the store).
#[utoipa::path(delete, path = "/v1/cron/{id}", tag = "cron",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such job of the caller's (`cron.not_found`)", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::delete(&state.runtime, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a cron job now, outside its schedule, in the `cron` lane; answers
/// when the run ended, with its record.
#[utoipa::path(post, path = "/v1/cron/{id}/run", tag = "cron",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The run as recorded (`ok` or `failed`, its trace id)", body = CronRunView),
        (status = 404, description = "No such job of the caller's (`cron.not_found`)", body = ErrorBody),
    ))]
pub async fn run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<CronRunView>, ApiError> {
    Ok(Json(ops::run(&state.runtime, &who, &id).await?))
}

/// A cron job's runs, newest first: status and trace id per occurrence.
#[utoipa::path(get, path = "/v1/cron/{id}/runs", tag = "cron", params(
        ("id" = String, Path, description = "The job's id"), RunsQuery),
    responses(
        (status = 200, description = "The runs", body = CronRunList),
        (status = 404, description = "No such job of the caller's (`cron.not_found`)", body = ErrorBody),
    ))]
pub async fn runs(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<CronRunList>, ApiError> {
    Ok(Json(
        ops::runs(&state.runtime, &who, &id, q.limit.unwrap_or(0)).await?,
    ))
}
