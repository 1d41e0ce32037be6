//! The memory tools: `memory_save`, `memory_search`, `memory_get` and
//! `memory_forget`, over the [`Memories`] port the gateway gives them. They
//! parse and check the arguments and word the answer for the model;
//! namespacing, scrubbing, duplicates, retention and the embedder are the
//! gateway's and the store's.
//!
//! A memory saved by a run that had read untrusted content is stored as
//! untrusted; a search or get that returns one comes back as untrusted
//! output, so the policy path marks it and taints the run like a web page.

use crate::args::{Query, parse};
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::store::memory::{MAX_CONTENT_BYTES, MAX_IMPORTANCE, Memory};
use exoclaw_core::tool::{Check, Memories, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Most hits one `memory_search` returns.
pub const MAX_RESULTS: u32 = 20;
/// The names of the memory tools.
pub const TOOL_NAMES: [&str; 4] = [
    "memory_save",
    "memory_search",
    "memory_get",
    "memory_forget",
];

/// The four tools, over `port`.
pub fn tools(port: &Arc<dyn Memories>) -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(Save(port.clone())),
        Arc::new(Search(port.clone())),
        Arc::new(Get(port.clone())),
        Arc::new(Forget(port.clone())),
    ]
}

fn memory_id(id: &str) -> Result<&str, ToolError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ToolError::invalid_args(
            "id: a memory id (from `memory_search`)",
        ));
    }
    Ok(id)
}

/// One memory as the model reads it: `[id] (shared, importance 5) text`.
fn line(m: &Memory) -> String {
    let mut tags = Vec::new();
    if m.is_shared() {
        tags.push("shared".to_owned());
    }
    tags.push(format!("importance {}", m.importance));
    if m.untrusted {
        tags.push("from untrusted content".to_owned());
    }
    format!("[{}] ({}) {}", m.id, tags.join(", "), m.content)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveArgs {
    content: String,
    #[serde(default)]
    shared: bool,
    #[serde(default = "default_importance")]
    importance: i64,
}

fn default_importance() -> i64 {
    5
}

impl SaveArgs {
    fn checked(args: &Value) -> Result<Self, ToolError> {
        let a: SaveArgs = parse(args)?;
        if a.content.trim().is_empty() {
            return Err(ToolError::invalid_args("content: say what to remember"));
        }
        if a.content.len() > MAX_CONTENT_BYTES {
            return Err(ToolError::invalid_args(format!(
                "content: a memory is at most {MAX_CONTENT_BYTES} bytes (this one is {}); save \
                 the gist",
                a.content.len()
            )));
        }
        if !(0..=MAX_IMPORTANCE).contains(&a.importance) {
            return Err(ToolError::invalid_args(format!(
                "importance: 0 to {MAX_IMPORTANCE}"
            )));
        }
        Ok(a)
    }
}

struct Save(Arc<dyn Memories>);

#[async_trait]
impl Tool for Save {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "memory_save".into(),
            description: "Remember a fact for later sessions (a preference, a decision, \
                 something the user told you). Keep it short and self-contained. Shared \
                 memories are seen by every user of this agent; others only by this user."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "content": {"type": "string", "description": "the fact, in one or two sentences", "maxLength": MAX_CONTENT_BYTES},
                    "shared": {"type": "boolean", "default": false, "description": "every user of this agent may see it"},
                    "importance": {"type": "integer", "minimum": 0, "maximum": MAX_IMPORTANCE, "default": 5}
                },
                "required": ["content"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        SaveArgs::checked(args)?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a = SaveArgs::checked(args)?;
        let saved = self.0.save(ctx, a.content, a.shared, a.importance).await?;
        let what = if saved.merged {
            "Updated an existing memory"
        } else {
            "Saved"
        };
        Ok(ToolOutput::text(format!("{what}: {}", line(&saved.memory))))
    }
}

struct Search(Arc<dyn Memories>);

#[async_trait]
impl Tool for Search {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "memory_search".into(),
            description: "Search your long-term memory (facts saved in earlier sessions) by \
                 meaning and keywords. Returns the best matches with their ids."
                .into(),
            parameters: Query::schema("what you want to recall", MAX_RESULTS),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        Query::checked(args, "say what to look for", MAX_CONTENT_BYTES)?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a = Query::checked(args, "say what to look for", MAX_CONTENT_BYTES)?;
        let limit = a.limit(MAX_RESULTS);
        let found = self.0.search(ctx, a.query.clone(), limit).await?;
        if found.hits.is_empty() {
            return Ok(ToolOutput::text(format!(
                "No memory matches {:?}.",
                a.query
            )));
        }
        let untrusted = found.hits.iter().any(|h| h.memory.untrusted);
        let mut lines: Vec<String> = found.hits.iter().map(|h| line(&h.memory)).collect();
        if found.full_text_only {
            lines.push("(ranked by keywords only: no embedder answered)".to_owned());
        }
        let text = lines.join("\n");
        Ok(if untrusted {
            ToolOutput::untrusted(text)
        } else {
            ToolOutput::text(text)
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    id: String,
}

fn id_schema(what: &str) -> Value {
    json!({
        "type": "object",
        "properties": {"id": {"type": "string", "description": what}},
        "required": ["id"],
        "additionalProperties": false
    })
}

struct Get(Arc<dyn Memories>);

#[async_trait]
impl Tool for Get {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "memory_get".into(),
            description: "Read one memory in full by its id.".into(),
            parameters: id_schema("the memory's id (from memory_search)"),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: IdArgs = parse(args)?;
        memory_id(&a.id)?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: IdArgs = parse(args)?;
        let m = self.0.get(ctx, memory_id(&a.id)?).await?;
        let text = line(&m);
        Ok(if m.untrusted {
            ToolOutput::untrusted(text)
        } else {
            ToolOutput::text(text)
        })
    }
}

struct Forget(Arc<dyn Memories>);

#[async_trait]
impl Tool for Forget {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "memory_forget".into(),
            description: "Forget one memory (wrong, outdated, or the user asked) by its id.".into(),
            parameters: id_schema("the memory's id (from memory_search)"),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    async fn check(&self, _: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: IdArgs = parse(args)?;
        memory_id(&a.id)?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: IdArgs = parse(args)?;
        let id = memory_id(&a.id)?;
        self.0.forget(ctx, id).await?;
        Ok(ToolOutput::text(format!("Forgot memory {id}.")))
    }
}
