//! `exoclaw cron list|add|remove|enable|disable|run|runs`: the terminal side
//! of `/v1/cron` (`http::cron`: the same operations and checks, the same
//! JSON with `--json`). The CLI acts as an owner of the tenant it names
//! (whoever can run it can read the data dir), on the store directly; the
//! gateway may be running, and its scheduler sees the changes within
//! `cron.rescan_sec`. `run` runs the job in this process (claimed in the
//! store like every occurrence) and prints how it ended.

use crate::cli::CronCommand;
use crate::config::Settings;
use crate::http::auth::OWNER_USER;
use crate::http::cron::{
    CreateCronJob, CronJobView, CronRunView, DeliveryView, MissedView, UpdateCronJob, ops,
};
use crate::http::error::ApiError;
use crate::serve::refuse_unsafe_home;
use anyhow::bail;
use exoclaw_core::model::Role;
use exoclaw_core::{TenantId, UserId};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::clock::rfc3339;
use exoclaw_gateway::db;
use exoclaw_gateway::runtime::Runtime;
use std::time::Duration;

use super::table::{Table, print_json};

/// A refusal of the API as the CLI's error line (the code in brackets).
fn refused(e: ApiError) -> anyhow::Error {
    let ApiError { code, message } = e;
    anyhow::anyhow!("{message} [{code}]")
}

fn tenant_of(cmd: &CronCommand) -> &str {
    match cmd {
        CronCommand::Add(a) => &a.tenant,
        CronCommand::List { tenant, .. }
        | CronCommand::Remove { tenant, .. }
        | CronCommand::Enable { tenant, .. }
        | CronCommand::Disable { tenant, .. }
        | CronCommand::Run { tenant, .. }
        | CronCommand::Runs { tenant, .. } => tenant,
    }
}

pub async fn run(cmd: &CronCommand, settings: &Settings) -> anyhow::Result<()> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    if !inspection.exists {
        bail!("there is no store yet; start `exoclaw serve` once");
    }
    if !inspection.status.is_current() {
        bail!(
            "the store schema is not current (version {} of {}); run `exoclaw upgrade` first",
            inspection.status.current,
            inspection.status.latest
        );
    }
    let db = db::open(settings).await?;
    let store = db.store();
    let result = async {
        let (rt, supervisor) = super::agent::local_runtime(settings, store.clone()).await?;
        let who = Principal {
            actor: "cli".to_owned(),
            role: Role::Owner,
            tenant: TenantId::new(tenant_of(cmd)),
            user: UserId::new(OWNER_USER),
            scopes: None,
        };
        let result = command(&rt, &who, cmd).await;
        rt.flush_queues(Duration::from_secs(5)).await;
        supervisor.shutdown(Duration::from_secs(1)).await;
        result
    }
    .await;
    db.close().await;
    result
}

async fn command(rt: &Runtime, who: &Principal, cmd: &CronCommand) -> anyhow::Result<()> {
    match cmd {
        CronCommand::List { agent, json, .. } => {
            let list = ops::list(rt, who, agent.as_deref())
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&[
                "ID", "NAME", "AGENT", "SCHEDULE", "DELIVERY", "STATE", "NEXT RUN", "LAST RUN",
            ]);
            for j in &list.jobs {
                t.row(job_row(j));
            }
            t.print("no cron jobs");
            Ok(())
        }
        CronCommand::Add(a) => {
            let crate::cli::CronAdd {
                agent,
                schedule,
                message,
                name,
                session,
                channel,
                peer,
                webhook,
                missed,
                jitter_sec,
                user,
                json,
                ..
            } = a.as_ref();
            let missed = match missed.as_str() {
                "skip" => MissedView::Skip,
                "run_once" => MissedView::RunOnce,
                other => bail!("--missed: skip or run_once, not {other:?}"),
            };
            let delivery = match (session, channel, peer, webhook) {
                (Some(s), ..) => Some(DeliveryView::Session {
                    session: Some(s.clone()),
                }),
                (_, Some(c), Some(p), _) => Some(DeliveryView::Channel {
                    channel: c.clone(),
                    peer: p.clone(),
                }),
                (.., Some(url)) => Some(DeliveryView::Webhook { url: url.clone() }),
                _ => None,
            };
            let mut who = who.clone();
            if let Some(u) = user {
                who.user = UserId::new(u);
            }
            let body = CreateCronJob {
                agent: agent.clone(),
                name: name.clone(),
                schedule: schedule.clone(),
                message: message.clone(),
                delivery,
                missed: Some(missed),
                jitter_sec: Some(*jitter_sec),
            };
            let job = ops::create(rt, &who, body, "cli").await.map_err(refused)?;
            if *json {
                return print_json(&job);
            }
            crate::outln!(
                "added cron job {} ({}), next run {}",
                job.id,
                job.schedule,
                job.next_run_at.map_or_else(|| "-".to_owned(), rfc3339)
            );
            Ok(())
        }
        CronCommand::Remove { id, .. } => {
            ops::delete(rt, who, id).await.map_err(refused)?;
            crate::outln!("removed cron job {id}");
            Ok(())
        }
        CronCommand::Enable { id, .. } | CronCommand::Disable { id, .. } => {
            let enabled = matches!(cmd, CronCommand::Enable { .. });
            let change = UpdateCronJob {
                enabled: Some(enabled),
                ..UpdateCronJob::default()
            };
            let job = ops::update(rt, who, id, change).await.map_err(refused)?;
            let what = if enabled { "enabled" } else { "disabled" };
            crate::outln!("{what} cron job {} ({})", job.id, job.state);
            Ok(())
        }
        CronCommand::Run { id, json, .. } => {
            let run = ops::run(rt, who, id).await.map_err(refused)?;
            if *json {
                return print_json(&run);
            }
            crate::outln!(
                "ran cron job {id}: {}{}{}",
                run.status,
                run.trace_id
                    .as_deref()
                    .map_or_else(String::new, |t| format!(", trace {t}")),
                run.error
                    .as_deref()
                    .map_or_else(String::new, |e| format!(" ({e})"))
            );
            Ok(())
        }
        CronCommand::Runs {
            id, limit, json, ..
        } => {
            let list = ops::runs(rt, who, id, *limit).await.map_err(refused)?;
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&["DUE", "STATUS", "TRACE", "ERROR", "OWNER", "FINISHED"]);
            for r in &list.runs {
                t.row(run_row(r));
            }
            t.print("no runs yet");
            Ok(())
        }
    }
}

fn delivery_cell(d: &DeliveryView) -> String {
    match d {
        DeliveryView::Session { session: None } => "own session".to_owned(),
        DeliveryView::Session { session: Some(s) } => format!("session {s}"),
        DeliveryView::Channel { channel, peer } => format!("{channel}:{peer}"),
        // The URL may carry a token: its host only.
        DeliveryView::Webhook { url } => format!(
            "webhook {}",
            url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default()
        ),
    }
}

fn job_row(j: &CronJobView) -> [String; 8] {
    let state = match &j.disabled_reason {
        Some(r) => format!("{} ({r})", j.state),
        None => j.state.clone(),
    };
    let time = |t: Option<i64>| t.map(rfc3339).unwrap_or_default();
    [
        j.id.clone(),
        j.name.clone(),
        j.agent.clone(),
        j.schedule.clone(),
        delivery_cell(&j.delivery),
        state,
        time(j.next_run_at),
        time(j.last_run_at),
    ]
}

fn run_row(r: &CronRunView) -> [String; 6] {
    [
        rfc3339(r.due_at),
        r.status.clone(),
        r.trace_id.clone().unwrap_or_default(),
        r.error.clone().unwrap_or_default(),
        r.owner.clone(),
        r.finished_at.map(rfc3339).unwrap_or_default(),
    ]
}
