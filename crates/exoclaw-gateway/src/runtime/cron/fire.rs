//! One occurrence of a cron job, already claimed by this gateway: the job's
//! message becomes a turn of its agent for its user, in the `cron` lane,
//! through [`Runtime::launch`]; the answer lands in the session the
//! delivery names (the job's own, a given one, a channel peer's) and, for a
//! webhook, is POSTed through the egress client; the run is recorded in the
//! job store as `ok` or `failed` with its trace id (and a code when it
//! failed). A job whose agent was deleted is disabled with the reason
//! `agent_deleted` and reported at warn (`cron.job_disabled`).

use super::super::launch::{HandedOver, Launch};
use super::super::{Runtime, TurnEnd, lanes::Lane};
use crate::access::Principal;
use exoclaw_core::agent::Finish;
use exoclaw_core::model::{Role, Session, SessionScope};
use exoclaw_core::store::cron::{CronJob, DISABLED_AGENT_DELETED, Delivery};
use exoclaw_core::tool::Lineage;
use exoclaw_core::{SessionId, UnixMillis, now_ms};
use serde_json::json;
use std::time::Duration;

/// The channel of a job's own session (its peer is the job id).
pub const OWN_CHANNEL: &str = "cron";

/// One webhook request.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per webhook delivery.
const WEBHOOK_ATTEMPTS: u32 = 3;

/// How an occurrence ended, before it is recorded.
struct Outcome {
    status: &'static str,
    trace: Option<String>,
    error: Option<String>,
}

impl Outcome {
    fn failed(error: &str) -> Self {
        Self {
            status: "failed",
            trace: None,
            error: Some(error.to_owned()),
        }
    }
}

/// Run occurrence `due` of `job` (claimed already) and record how it ended.
pub async fn fire(rt: &Runtime, job: &CronJob, due: UnixMillis) {
    let outcome = run(rt, job, due).await;
    tracing::info!(
        event = "cron.ran",
        tenant = %job.tenant_id,
        job = %job.id,
        agent = %job.agent_id,
        due_at = due,
        status = outcome.status,
        trace_id = outcome.trace.as_deref().unwrap_or(""),
        error = outcome.error.as_deref().unwrap_or(""),
        "cron job ran"
    );
    let detail = super::detail(outcome.trace.as_deref(), outcome.error.as_deref());
    if let Err(e) = rt
        .store
        .finish_job_run(
            &job.tenant_id,
            &job.run_key(),
            due,
            outcome.status,
            detail.as_deref(),
            now_ms(),
        )
        .await
    {
        tracing::warn!(error = %e, job = %job.id, "cannot record a cron run's outcome");
    }
}

async fn run(rt: &Runtime, job: &CronJob, due: UnixMillis) -> Outcome {
    let agent = match rt.store.get_agent(&job.tenant_id, &job.agent_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            disable_orphan(rt, job).await;
            return Outcome::failed(DISABLED_AGENT_DELETED);
        }
        Err(e) => {
            tracing::warn!(error = %e, job = %job.id, "cannot read a cron job's agent");
            return Outcome::failed("internal");
        }
    };
    let session = match session_of(rt, job).await {
        Ok(Some(s)) => s,
        Ok(None) => return Outcome::failed("cron.session_gone"),
        Err(e) => {
            tracing::warn!(error = %e, job = %job.id, "cannot open a cron job's session");
            return Outcome::failed("internal");
        }
    };
    let who = Principal {
        actor: format!("cron:{}", job.id),
        role: Role::User,
        tenant: job.tenant_id.clone(),
        user: job.user_id.clone(),
        scopes: None,
    };
    // The message is screened like a person's (`gateway.injection_action`).
    let screened = match rt.tool_context(&who, &agent, Some(session.id.clone()), None) {
        Ok(ctx) => rt.screen_input(&ctx, &job.message).await,
        Err(e) => Err(e),
    };
    if let Err(e) = screened {
        tracing::warn!(error = %e, job = %job.id, "a cron run could not start");
        return Outcome::failed(match e {
            super::super::StartError::InjectionBlocked(_) => "security.injection_blocked",
            _ => "internal",
        });
    }
    let launched = rt
        .launch(Launch {
            who,
            agent,
            session,
            input: job.message.clone(),
            input_meta: json!({"cron": job.id, "due_at": due}),
            request_id: None,
            lineage: Lineage::default(),
            parent_cancel: None,
            tainted: false,
            trace_name: "cron",
            clone: None,
            lane: Lane::Cron,
            handed_over: HandedOver::Unknown,
            directory: None,
        })
        .await;
    let mut turn = match launched {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, job = %job.id, "a cron run could not start");
            return Outcome::failed(match e {
                super::super::StartError::Disabled(_) => "agent.disabled",
                super::super::StartError::NoProvider(_) => "provider.not_configured",
                _ => "internal",
            });
        }
    };
    while turn.events.recv().await.is_some() {}
    let ran = match turn.end().await {
        TurnEnd::Ran(o) => o,
        TurnEnd::Broken { code, .. } => return Outcome::failed(code),
    };
    let mut outcome = match &ran.finish {
        Finish::Complete => Outcome {
            status: "ok",
            trace: Some(ran.trace_id.clone()),
            error: None,
        },
        Finish::Cancelled => Outcome {
            status: "failed",
            trace: Some(ran.trace_id.clone()),
            error: Some("cancelled".to_owned()),
        },
        Finish::Failed { code, .. } => Outcome {
            status: "failed",
            trace: Some(ran.trace_id.clone()),
            error: Some(code.clone()),
        },
    };
    if let Delivery::Webhook { url } = &job.delivery
        && outcome.status == "ok"
    {
        let body = json!({
            "job": job.id,
            "name": job.name,
            "agent": job.agent_id,
            "due_at": due,
            "trace_id": ran.trace_id,
            "text": ran.text,
        });
        if let Err(reason) = post(rt, url, &body).await {
            tracing::warn!(
                event = "cron.webhook_failed",
                job = %job.id,
                reason = %reason,
                "cannot deliver a cron job's answer to its webhook"
            );
            outcome.status = "failed";
            outcome.error = Some("cron.webhook_failed".to_owned());
        }
    }
    if let Delivery::Channel { channel, peer } = &job.delivery
        && outcome.status == "ok"
        && !ran.text.is_empty()
        && let Err(reason) = to_channel(rt, job, due, channel, peer, &ran.text).await
    {
        tracing::warn!(
            event = "cron.channel_failed",
            job = %job.id,
            channel = %channel,
            reason = %reason,
            "cannot queue a cron job's answer to its channel"
        );
        outcome.status = "failed";
        outcome.error = Some("cron.channel_failed".to_owned());
    }
    outcome
}

/// Queue the answer to the channel peer in the durable outbox (once per
/// job and occurrence), when the channel runs here: channels are the
/// default tenant's, configured with a `type`. Otherwise the answer stays
/// in the peer's session only.
async fn to_channel(
    rt: &Runtime,
    job: &CronJob,
    due: i64,
    channel: &str,
    peer: &str,
    text: &str,
) -> Result<(), String> {
    let runs_here = job.tenant_id.as_str() == exoclaw_core::DEFAULT_TENANT
        && rt
            .settings
            .config
            .channels
            .get(channel)
            .is_some_and(|c| c.kind.is_some());
    if !runs_here {
        return Ok(());
    }
    let msg = exoclaw_core::store::channel::NewOutbound {
        channel: channel.to_owned(),
        peer: peer.to_owned(),
        text: text.to_owned(),
        idempotency_key: format!("cron:{}:{due}", job.id),
        file: None,
    };
    rt.store
        .enqueue_outbound(&job.tenant_id, &msg, exoclaw_core::now_ms())
        .await
        .map_err(|e| e.to_string())?;
    rt.outbox_queued.notify_waiters();
    Ok(())
}

/// The session the run happens in; `None` when a named one is gone (or a
/// channel peer is now another user's).
async fn session_of(
    rt: &Runtime,
    job: &CronJob,
) -> Result<Option<Session>, exoclaw_core::store::StoreError> {
    let scope = |channel: &str, peer: &str| SessionScope {
        agent_id: job.agent_id.clone(),
        user_id: job.user_id.clone(),
        channel: channel.to_owned(),
        peer: peer.to_owned(),
    };
    let scope = match &job.delivery {
        Delivery::Session { session: Some(id) } => {
            return rt
                .store
                .get_session(&job.tenant_id, &SessionId::new(id))
                .await;
        }
        Delivery::Session { session: None } | Delivery::Webhook { .. } => {
            scope(OWN_CHANNEL, &job.id)
        }
        Delivery::Channel { channel, peer } => {
            // The peer became another user's conversation after the job was
            // made: the job does not write into it.
            let mapped = rt
                .store
                .get_channel_sender(&job.tenant_id, channel, peer)
                .await?;
            if mapped.is_some_and(|m| m.user_id != job.user_id) {
                return Ok(None);
            }
            scope(channel, peer)
        }
    };
    rt.store
        .get_or_create_session(&job.tenant_id, &scope)
        .await
        .map(Some)
}

async fn disable_orphan(rt: &Runtime, job: &CronJob) {
    tracing::warn!(
        event = "cron.job_disabled",
        tenant = %job.tenant_id,
        job = %job.id,
        agent = %job.agent_id,
        reason = DISABLED_AGENT_DELETED,
        "a cron job's agent was deleted; the job is disabled"
    );
    if let Err(e) = rt
        .store
        .disable_cron_job(&job.tenant_id, &job.id, DISABLED_AGENT_DELETED, now_ms())
        .await
    {
        tracing::warn!(error = %e, job = %job.id, "cannot disable a cron job");
        return;
    }
    let mut event = exoclaw_core::model::NewAuditEvent::new(
        job.tenant_id.clone(),
        "gateway",
        "cron.disable",
        format!("cron/{}", job.id),
        "allow",
    );
    event.reason = DISABLED_AGENT_DELETED.to_owned();
    event.agent_id = Some(job.agent_id.clone());
    crate::audit::record(rt.store.as_ref(), &event).await;
}

/// POST `body` to the job's webhook through the egress client; the reason
/// when it could not be delivered (never the URL: it may carry a token).
async fn post(rt: &Runtime, url: &str, body: &serde_json::Value) -> Result<(), String> {
    let bytes = body.to_string();
    let mut last = String::new();
    for attempt in 1..=WEBHOOK_ATTEMPTS {
        let request = rt
            .cron
            .webhooks
            .request(exoclaw_egress::Method::POST, url)
            .map_err(|r| format!("refused by the egress policy ({})", r.rule))?;
        match request
            .header(exoclaw_egress::header::CONTENT_TYPE, "application/json")
            .timeout(WEBHOOK_TIMEOUT)
            .body(bytes.clone())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                return Err(format!("the webhook answered {}", r.status().as_u16()));
            }
            Ok(r) => last = format!("the webhook answered {}", r.status().as_u16()),
            Err(e) if e.is_timeout() => last = "the webhook timed out".to_owned(),
            Err(_) => last = "cannot reach the webhook".to_owned(),
        }
        if attempt < WEBHOOK_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }
    Err(last)
}
