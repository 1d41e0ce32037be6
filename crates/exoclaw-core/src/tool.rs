//! The tool port. A tool describes itself ([`Tool::spec`]) and runs
//! ([`Tool::call`]); it is only ever called through the registry's one policy
//! path (see `exoclaw-tools`), never directly by a loop, job or endpoint.

use crate::provider::ToolSpec;
use crate::{AgentId, SessionId, TenantId, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a tool may change, as data: the policy layer gates side effects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolEffect {
    /// Reads only (read_file, list_files, search).
    ReadOnly,
    /// Changes state or the outside world (write_file, exec, message).
    SideEffect,
}

/// Where and for whom a tool runs. Built by the server, never by the model.
#[derive(Clone, Debug)]
pub struct ToolContext {
    pub tenant: TenantId,
    pub user: UserId,
    pub agent: AgentId,
    pub session: Option<SessionId>,
    /// The (per-user) workspace root every file access is anchored at.
    pub workspace: PathBuf,
    pub request_id: Option<String>,
}

/// A tool's successful result, as the model will read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    pub content: String,
}

impl ToolOutput {
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
        }
    }
}

/// A refused or failed tool call: a stable code and a message that reveals no
/// host detail (no absolute paths, no secrets).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{code}: {message}")]
pub struct ToolError {
    /// `tool.not_found`, `tool.invalid_args`, `tool.timeout`, `tool.failed`,
    /// `security.*`, ...
    pub code: String,
    pub message: String,
}

impl ToolError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn invalid_args(message: impl Into<String>) -> Self {
        Self::new("tool.invalid_args", message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new("tool.failed", message)
    }
}

#[async_trait]
pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;

    fn effect(&self) -> ToolEffect;

    /// Everything `call` checks before acting (argument validation, path
    /// resolution), without acting: the `dry_run` of `/v1/tools/invoke`.
    async fn check(&self, ctx: &ToolContext, args: &serde_json::Value) -> Result<(), ToolError>;

    async fn call(
        &self,
        ctx: &ToolContext,
        args: &serde_json::Value,
    ) -> Result<ToolOutput, ToolError>;
}

/// How the agent loop reaches tools: the registry bound to one run's policy.
/// Implemented by `exoclaw-tools`; the loop never holds a `Tool` directly.
#[async_trait]
pub trait ToolRunner: Send + Sync {
    /// The tools this run may offer the model.
    fn specs(&self) -> Vec<ToolSpec>;
    /// One call through the policy path.
    async fn run(
        &self,
        ctx: &ToolContext,
        name: &str,
        args: &serde_json::Value,
    ) -> Result<ToolOutput, ToolError>;
}
