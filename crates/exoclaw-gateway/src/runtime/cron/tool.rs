//! The `cron` tool: an agent schedules, lists and cancels its own jobs (for
//! the user it is talking to), within `cron.max_jobs_per_agent`. A job the
//! tool adds answers into the conversation it was asked in (or POSTs to a
//! webhook); it reaches the runtime through [`Late`] like the other tools
//! that need it, and takes the one tool path like every tool.

use super::super::{Late, Runtime};
use super::{CronError, JobRequest};
use crate::access::Principal;
use async_trait::async_trait;
use exoclaw_core::model::Role;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::store::cron::{CronJob, Delivery, MissedPolicy};
use exoclaw_core::tool::{Check, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The `cron` tool (see the module docs).
pub struct CronTool(pub Late);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    action: String,
    schedule: Option<String>,
    message: Option<String>,
    name: Option<String>,
    webhook: Option<String>,
    missed: Option<MissedPolicy>,
    jitter_sec: Option<u64>,
    id: Option<String>,
}

enum Asked {
    Add(JobRequest),
    List,
    Remove(String),
}

fn parse(args: &Value) -> Result<Asked, ToolError> {
    let a: Args =
        serde_json::from_value(args.clone()).map_err(|e| ToolError::invalid_args(e.to_string()))?;
    match a.action.as_str() {
        "add" => {
            let (Some(schedule), Some(message)) = (a.schedule, a.message) else {
                return Err(ToolError::invalid_args(
                    "add needs `schedule` and `message`",
                ));
            };
            Ok(Asked::Add(JobRequest {
                agent: String::new(),
                name: a.name,
                schedule,
                message,
                delivery: a.webhook.map(|url| Delivery::Webhook { url }),
                missed: a.missed,
                jitter_sec: a.jitter_sec,
            }))
        }
        "list" => Ok(Asked::List),
        "remove" => {
            a.id.map(Asked::Remove)
                .ok_or_else(|| ToolError::invalid_args("remove needs the job's `id`"))
        }
        other => Err(ToolError::invalid_args(format!(
            "action: add, list or remove, not {other:?}"
        ))),
    }
}

fn tool_error(e: &CronError) -> ToolError {
    if let CronError::Store(s) = e {
        tracing::error!(error = %s, "store failure in the cron tool");
        return ToolError::failed("the cron job could not be stored; see the gateway log");
    }
    ToolError::new(e.code(), e.to_string())
}

fn line(j: &CronJob) -> String {
    let state = match (&j.disabled_reason, j.enabled, j.next_run_at) {
        (Some(r), _, _) => format!("disabled ({r})"),
        (None, false, _) => "disabled".to_owned(),
        (None, true, None) => "done".to_owned(),
        (None, true, Some(n)) => format!("next {}", crate::clock::rfc3339(n)),
    };
    format!("{} \"{}\" {} - {state}", j.id, j.name, j.schedule)
}

#[async_trait]
impl Tool for CronTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "cron".into(),
            description: "Schedule a message to yourself for later or repeatedly (a reminder, a daily report), list your scheduled jobs, or cancel one. \
                 At each time the message is given to you as a new turn and your answer goes into this conversation (or to `webhook`). \
                 schedule: `at 2026-05-01T09:00:00Z`, `at 2026-05-01T09:00 in Europe/Berlin`, `every 2h`, `cron 0 9 * * MON-FRI in Europe/Berlin`."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["add", "list", "remove"]},
                    "schedule": {"type": "string", "description": "add: when (see the description)"},
                    "message": {"type": "string", "description": "add: what you will be told at that time"},
                    "name": {"type": "string", "description": "add: a short name"},
                    "webhook": {"type": "string", "description": "add: POST the answer to this https URL instead"},
                    "missed": {"type": "string", "enum": ["skip", "run_once"], "description": "add: runs missed while the gateway was down"},
                    "jitter_sec": {"type": "integer", "minimum": 0, "description": "add: delay each run by up to this many seconds"},
                    "id": {"type": "string", "description": "remove: the job's id (from list)"}
                },
                "required": ["action"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        parse(args).map(|_| Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let asked = parse(args)?;
        let rt: Arc<Runtime> = self
            .0
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or_else(|| ToolError::new("cron.unavailable", "the gateway is stopping"))?;
        // The agent acts for the user it talks to, and sees only its own jobs.
        let who = Principal {
            actor: format!("agent:{}", ctx.agent),
            role: Role::User,
            tenant: ctx.tenant.clone(),
            user: ctx.user.clone(),
            scopes: None,
        };
        let own = |j: &CronJob| j.agent_id == ctx.agent && j.user_id == ctx.user;
        match asked {
            Asked::Add(mut req) => {
                req.agent = ctx.agent.to_string();
                if req.delivery.is_none() {
                    req.delivery = Some(Delivery::Session {
                        session: ctx.session.as_ref().map(ToString::to_string),
                    });
                }
                let job = rt
                    .create_cron_job(&who, req, &format!("agent:{}", ctx.agent))
                    .await
                    .map_err(|e| tool_error(&e))?;
                Ok(ToolOutput::text(format!("Scheduled: {}", line(&job))))
            }
            Asked::List => {
                let jobs = rt
                    .cron_jobs(&who, Some(ctx.agent.as_str()))
                    .await
                    .map_err(|e| tool_error(&e))?;
                let lines: Vec<String> = jobs.iter().filter(|j| own(j)).map(line).collect();
                Ok(ToolOutput::text(if lines.is_empty() {
                    "You have no scheduled jobs.".to_owned()
                } else {
                    lines.join("\n")
                }))
            }
            Asked::Remove(id) => {
                let job = rt.cron_job(&who, &id).await.map_err(|e| tool_error(&e))?;
                if !own(&job) {
                    return Err(tool_error(&CronError::NotFound(id)));
                }
                rt.delete_cron_job(&who, &id)
                    .await
                    .map_err(|e| tool_error(&e))?;
                Ok(ToolOutput::text(format!(
                    "Cancelled {id} (\"{}\").",
                    job.name
                )))
            }
        }
    }
}
