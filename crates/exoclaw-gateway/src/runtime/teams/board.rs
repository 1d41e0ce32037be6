//! The [`TeamBoard`] port the team tools reach the boards and mailboxes
//! through: each call acts as the tool context's agent, on the operations
//! of `mod.rs`, and a refusal becomes a tool error with the same code.

use super::super::{Late, Runtime};
use super::TeamError;
use async_trait::async_trait;
use exoclaw_core::AgentId;
use exoclaw_core::store::teams::{Mail, NewTask, Task, TaskFilter, TaskOutcome, TaskStatus, Team};
use exoclaw_core::tool::{TeamBoard, ToolContext, ToolError};
use std::sync::Arc;

/// The port, over the runtime once it exists.
pub struct Board(pub Late);

impl Board {
    fn runtime(&self) -> Result<Arc<Runtime>, ToolError> {
        self.0
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or_else(|| {
                ToolError::new(
                    "team.unavailable",
                    "the gateway is stopping; the team board cannot be reached",
                )
            })
    }
}

/// A refusal as the model reads it.
fn refused(e: &TeamError) -> ToolError {
    let code = match e.code() {
        "request.invalid" => "tool.invalid_args",
        "internal" => "tool.failed",
        code => code,
    };
    ToolError {
        code: code.to_owned(),
        message: e.to_string(),
    }
}

#[async_trait]
impl TeamBoard for Board {
    async fn teams_of(&self, ctx: &ToolContext) -> Result<Vec<Team>, ToolError> {
        let rt = self.runtime()?;
        super::teams_of(rt.store.as_ref(), &ctx.tenant, &ctx.agent)
            .await
            .map_err(|e| refused(&e))
    }

    async fn create_task(
        &self,
        ctx: &ToolContext,
        team: &str,
        task: NewTask,
    ) -> Result<Task, ToolError> {
        let rt = self.runtime()?;
        super::create_task(rt.store.as_ref(), &ctx.tenant, team, &task)
            .await
            .map_err(|e| refused(&e))
    }

    async fn list_tasks(
        &self,
        ctx: &ToolContext,
        team: &str,
        filter: TaskFilter,
    ) -> Result<Vec<Task>, ToolError> {
        let rt = self.runtime()?;
        let t = super::team_of_member(rt.store.as_ref(), &ctx.tenant, team, &ctx.agent)
            .await
            .map_err(|e| refused(&e))?;
        super::list_tasks(rt.store.as_ref(), &ctx.tenant, &t.id, &filter)
            .await
            .map_err(|e| refused(&e))
    }

    async fn get_task(&self, ctx: &ToolContext, team: &str, id: &str) -> Result<Task, ToolError> {
        let rt = self.runtime()?;
        let t = super::team_of_member(rt.store.as_ref(), &ctx.tenant, team, &ctx.agent)
            .await
            .map_err(|e| refused(&e))?;
        super::get_task(rt.store.as_ref(), &ctx.tenant, &t.id, id)
            .await
            .map_err(|e| refused(&e))
    }

    async fn claim_task(&self, ctx: &ToolContext, team: &str, id: &str) -> Result<Task, ToolError> {
        let rt = self.runtime()?;
        super::claim_task(rt.store.as_ref(), &ctx.tenant, team, id, &ctx.agent)
            .await
            .map_err(|e| refused(&e))
    }

    async fn finish_task(
        &self,
        ctx: &ToolContext,
        team: &str,
        id: &str,
        status: TaskStatus,
        result: String,
    ) -> Result<Task, ToolError> {
        let rt = self.runtime()?;
        let outcome = TaskOutcome {
            agent: ctx.agent.clone(),
            status,
            result,
        };
        super::finish_task(&rt, &ctx.tenant, &ctx.user, team, id, &outcome)
            .await
            .map_err(|e| refused(&e))
    }

    async fn comment_task(
        &self,
        ctx: &ToolContext,
        team: &str,
        id: &str,
        text: String,
    ) -> Result<(), ToolError> {
        let rt = self.runtime()?;
        super::comment_task(rt.store.as_ref(), &ctx.tenant, team, id, &ctx.agent, &text)
            .await
            .map_err(|e| refused(&e))
    }

    async fn send_mail(
        &self,
        ctx: &ToolContext,
        team: &str,
        to: Option<AgentId>,
        text: String,
    ) -> Result<Mail, ToolError> {
        let rt = self.runtime()?;
        super::send_mail(
            rt.store.as_ref(),
            &ctx.tenant,
            team,
            &ctx.agent,
            to.as_ref(),
            &text,
        )
        .await
        .map_err(|e| refused(&e))
    }

    async fn read_mail(
        &self,
        ctx: &ToolContext,
        team: &str,
        limit: u32,
    ) -> Result<Vec<Mail>, ToolError> {
        let rt = self.runtime()?;
        super::read_mail(rt.store.as_ref(), &ctx.tenant, team, &ctx.agent, limit)
            .await
            .map_err(|e| refused(&e))
    }
}
