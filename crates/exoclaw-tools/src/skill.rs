//! The skill tools: `skill_search` (the tenant's active skills by meaning
//! and keywords) and `skill_read` (a skill's `SKILL.md`, or one of its
//! files by relative path), over the [`Skills`] port the gateway gives
//! them. Installing, checking, quarantine and ranking are the gateway's
//! and the store's; a quarantined skill is neither found nor read.

use crate::args::{Query, parse};
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Check, Skills, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Most hits one `skill_search` returns.
pub const MAX_RESULTS: u32 = 10;
/// The longest query or path, in bytes.
const MAX_ARG_BYTES: usize = 1024;
/// The names of the skill tools.
pub const TOOL_NAMES: [&str; 2] = ["skill_search", "skill_read"];

/// The two tools, over `port`.
pub fn tools(port: &Arc<dyn Skills>) -> Vec<Arc<dyn Tool>> {
    vec![Arc::new(Search(port.clone())), Arc::new(Read(port.clone()))]
}

struct Search(Arc<dyn Skills>);

#[async_trait]
impl Tool for Search {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "skill_search".into(),
            description: "Find skills (installed know-how: how to do a task, with scripts \
                 and references) by meaning and keywords. Returns names and descriptions; \
                 read one with skill_read."
                .into(),
            parameters: Query::schema("the task you need help with", MAX_RESULTS),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        Query::checked(args, "say what you need a skill for", MAX_ARG_BYTES)?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a = Query::checked(args, "say what you need a skill for", MAX_ARG_BYTES)?;
        let limit = a.limit(MAX_RESULTS);
        let found = self.0.search(ctx, a.query.clone(), limit).await?;
        if found.hits.is_empty() {
            return Ok(ToolOutput::text(format!("No skill matches {:?}.", a.query)));
        }
        let mut lines: Vec<String> = found
            .hits
            .iter()
            .map(|h| {
                let s = &h.skill;
                let mut line = format!("- {} (v{}): {}", s.name, s.version, s.description);
                if !s.tools.is_empty() {
                    line.push_str(&format!(" [needs: {}]", s.tools.join(", ")));
                }
                if s.files.len() > 1 {
                    line.push_str(&format!(" files: {}", s.files.join(", ")));
                }
                line
            })
            .collect();
        if found.full_text_only {
            lines.push("(ranked by keywords only: no embedder answered)".to_owned());
        }
        Ok(ToolOutput::text(lines.join("\n")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    name: String,
    #[serde(default)]
    path: Option<String>,
}

impl ReadArgs {
    fn checked(args: &Value) -> Result<(String, String), ToolError> {
        let a: ReadArgs = parse(args)?;
        if a.name.is_empty() || a.name.len() > 64 {
            return Err(ToolError::invalid_args(
                "name: a skill's name (from skill_search)",
            ));
        }
        let path = a.path.unwrap_or_else(|| "SKILL.md".to_owned());
        if path.is_empty() || path.len() > MAX_ARG_BYTES {
            return Err(ToolError::invalid_args(
                "path: a file of the skill, relative to it (default SKILL.md)",
            ));
        }
        Ok((a.name, path))
    }
}

struct Read(Arc<dyn Skills>);

#[async_trait]
impl Tool for Read {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "skill_read".into(),
            description: "Read a skill: its SKILL.md (the default) or one of its files by \
                 path relative to the skill."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "the skill's name"},
                    "path": {"type": "string", "description": "a file of the skill", "default": "SKILL.md"}
                },
                "required": ["name"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        ReadArgs::checked(args)?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let (name, path) = ReadArgs::checked(args)?;
        let doc = self.0.read(ctx, &name, &path).await?;
        let mut text = format!("# {} / {}\n", doc.skill.name, doc.path);
        if doc.path == "SKILL.md" && doc.skill.files.len() > 1 {
            text.push_str(&format!("(files: {})\n", doc.skill.files.join(", ")));
        }
        text.push('\n');
        text.push_str(&doc.content);
        Ok(ToolOutput::text(text))
    }
}
