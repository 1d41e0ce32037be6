//! The [`Skills`] port of the skill tools: each call acts for the tool
//! context's tenant (its own skills and the gateway's), active skills
//! only. Refusals become tool errors with the library's codes.

use super::{SkillError, SkillLibrary};
use async_trait::async_trait;
use exoclaw_core::tool::{SkillDoc, SkillSearch, Skills, ToolContext, ToolError};
use std::sync::Arc;

pub(super) struct Port(pub(super) Arc<SkillLibrary>);

fn refused(e: &SkillError) -> ToolError {
    let code = match e.code() {
        "skill.invalid" => "tool.invalid_args",
        "skill.not_found" => "skill.not_found",
        _ => "tool.failed",
    };
    ToolError::new(code, e.to_string())
}

#[async_trait]
impl Skills for Port {
    async fn search(
        &self,
        ctx: &ToolContext,
        query: String,
        limit: u32,
    ) -> Result<SkillSearch, ToolError> {
        self.0
            .search(&ctx.tenant, &query, limit)
            .await
            .map_err(|e| refused(&e))
    }

    async fn read(&self, ctx: &ToolContext, name: &str, path: &str) -> Result<SkillDoc, ToolError> {
        let (skill, content) = self
            .0
            .read(&ctx.tenant, name, path)
            .await
            .map_err(|e| refused(&e))?;
        Ok(SkillDoc {
            skill,
            path: path.trim_start_matches("./").to_owned(),
            content,
        })
    }
}
