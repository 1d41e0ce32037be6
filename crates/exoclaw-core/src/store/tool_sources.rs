//! Tools a tenant adds at run time ([`ToolSourceStore`]): custom tools
//! (a command template run in the sandbox) and MCP servers, each stored as
//! its validated definition, and the grants that offer a source's tools to
//! an agent (and optionally only to some of its users). Nothing is offered
//! without a grant. Secrets a source needs (environment values, tokens)
//! live in the vault, never in a definition.

use super::error::StoreResult;
use crate::{AgentId, TenantId, UnixMillis, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What kind of source a tool comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolSourceKind {
    /// A command template (`/v1/tools/custom`).
    Custom,
    /// An MCP server (`/v1/mcp/servers`).
    Mcp,
}

impl ToolSourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Custom => "custom",
            Self::Mcp => "mcp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "custom" => Some(Self::Custom),
            "mcp" => Some(Self::Mcp),
            _ => None,
        }
    }
}

/// One source as its owner defined it (validated above the store).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSource {
    pub tenant_id: TenantId,
    pub kind: ToolSourceKind,
    /// Unique per tenant and kind: a custom tool's name, an MCP server's
    /// prefix.
    pub name: String,
    /// The definition (JSON); never holds a secret.
    pub spec: serde_json::Value,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// A source's tools offered to one agent (`*`: every agent of the tenant),
/// for every user or only for `user`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolGrant {
    pub tenant_id: TenantId,
    pub kind: ToolSourceKind,
    pub source: String,
    pub agent: AgentId,
    pub user: Option<UserId>,
}

/// The agent id of a grant to every agent of the tenant.
pub const EVERY_AGENT: &str = "*";

#[async_trait]
pub trait ToolSourceStore: Send + Sync {
    /// Create or replace a source (its grants stay).
    async fn put_tool_source(&self, source: &ToolSource) -> StoreResult<()>;
    async fn get_tool_source(
        &self,
        tenant: &TenantId,
        kind: ToolSourceKind,
        name: &str,
    ) -> StoreResult<Option<ToolSource>>;
    /// One tenant's sources of `kind` (every tenant's with `None`, for
    /// start-up), by tenant and name.
    async fn list_tool_sources(
        &self,
        tenant: Option<&TenantId>,
        kind: ToolSourceKind,
    ) -> StoreResult<Vec<ToolSource>>;
    /// Delete a source and its grants. `NotFound` when there is none.
    async fn delete_tool_source(
        &self,
        tenant: &TenantId,
        kind: ToolSourceKind,
        name: &str,
    ) -> StoreResult<()>;
    /// Add a grant (again: no change). `NotFound` when the source does not
    /// exist.
    async fn put_tool_grant(&self, grant: &ToolGrant, now: UnixMillis) -> StoreResult<()>;
    /// Grants of one tenant (every tenant with `None`) of `kind`, by
    /// source, agent and user.
    async fn list_tool_grants(
        &self,
        tenant: Option<&TenantId>,
        kind: ToolSourceKind,
    ) -> StoreResult<Vec<ToolGrant>>;
    /// `NotFound` when there was no such grant.
    async fn delete_tool_grant(&self, grant: &ToolGrant) -> StoreResult<()>;
}
