//! The [`Memories`] port of the memory tools: each call acts for the tool
//! context's tenant, agent and user; a memory saved by a tainted run (one
//! that read untrusted content) is stored as untrusted. Refusals become
//! tool errors with the bank's codes.

use super::{MemoryBank, MemoryError, Reader};
use async_trait::async_trait;
use exoclaw_core::store::memory::{Memory, SavedMemory};
use exoclaw_core::tool::{Memories, MemorySearch, ToolContext, ToolError};
use std::sync::Arc;

pub(super) struct Port(pub(super) Arc<MemoryBank>);

fn refused(e: &MemoryError) -> ToolError {
    let code = match e.code() {
        "request.invalid" => "tool.invalid_args",
        "memory.not_found" => "memory.not_found",
        _ => "tool.failed",
    };
    ToolError::new(code, e.to_string())
}

#[async_trait]
impl Memories for Port {
    async fn save(
        &self,
        ctx: &ToolContext,
        content: String,
        shared: bool,
        importance: i64,
    ) -> Result<SavedMemory, ToolError> {
        let who = Reader {
            tenant: &ctx.tenant,
            agent: &ctx.agent,
            user: (!shared).then_some(&ctx.user),
        };
        self.0
            .save(&who, &content, ctx.run.is_tainted(), importance)
            .await
            .map_err(|e| refused(&e))
    }

    async fn search(
        &self,
        ctx: &ToolContext,
        query: String,
        limit: u32,
    ) -> Result<MemorySearch, ToolError> {
        let who = Reader {
            tenant: &ctx.tenant,
            agent: &ctx.agent,
            user: Some(&ctx.user),
        };
        self.0
            .search(&who, &query, limit)
            .await
            .map_err(|e| refused(&e))
    }

    async fn get(&self, ctx: &ToolContext, id: &str) -> Result<Memory, ToolError> {
        let m = self
            .0
            .get(&ctx.tenant, Some(&ctx.user), id)
            .await
            .map_err(|e| refused(&e))?;
        if m.agent_id != ctx.agent {
            return Err(refused(&MemoryError::NotFound(id.to_owned())));
        }
        Ok(m)
    }

    async fn forget(&self, ctx: &ToolContext, id: &str) -> Result<(), ToolError> {
        self.get(ctx, id).await?;
        self.0
            .forget(&ctx.tenant, Some(&ctx.user), id)
            .await
            .map(|_| ())
            .map_err(|e| refused(&e))
    }
}
