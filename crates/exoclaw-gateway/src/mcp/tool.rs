//! One tool of an MCP server as the registry sees it: `<server>__<tool>`,
//! its output untrusted (scanned, marked, tainting the run), offered only
//! to the agents and users its grants name, each call under the server's
//! timeout.

use super::Server;
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Check, Provenance, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub(super) struct McpTool {
    pub(super) server: Arc<Server>,
    /// The tool's name on the server.
    pub(super) remote: String,
    pub(super) spec: ToolSpec,
    pub(super) timeout: Duration,
}

impl McpTool {
    fn permitted(&self, ctx: &ToolContext) -> Result<(), ToolError> {
        if self.server.permits(ctx) {
            Ok(())
        } else {
            Err(ToolError::new(
                "security.tool_denied",
                format!("tool {:?} is not granted to this user", self.spec.name),
            ))
        }
    }
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    /// What a server's tool changes is the server's word only (its
    /// annotations are hints): counted as changing state.
    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    fn provenance(&self) -> Provenance {
        Provenance::Untrusted
    }

    fn source(&self, _args: &Value) -> String {
        format!("mcp:{}/{}", self.server.def.name, self.remote)
    }

    async fn check(&self, ctx: &ToolContext, _args: &Value) -> Result<Check, ToolError> {
        self.permitted(ctx)?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        self.permitted(ctx)?;
        let Some(peer) = self.server.peer() else {
            return Err(ToolError::new(
                "mcp.server_down",
                format!(
                    "the MCP server {:?} is down; try again later",
                    self.server.def.name
                ),
            ));
        };
        let call = super::conn::call_tool(&peer, &self.remote, args);
        let (text, is_error) = tokio::select! {
            r = tokio::time::timeout(self.timeout, call) => r
                .map_err(|_| {
                    ToolError::new(
                        "tool.timeout",
                        format!(
                            "the MCP server did not answer within {}s",
                            self.timeout.as_secs()
                        ),
                    )
                })?
                .or_else(|e| match e {
                    // The server's own words: screened as untrusted output
                    // like a result, never passed on as an error message.
                    rmcp::ServiceError::McpError(data) => Ok((data.message.into_owned(), true)),
                    other => Err(ToolError::failed(format!(
                        "the MCP call failed: {}",
                        super::conn::describe(&other)
                    ))),
                })?,
            () = ctx.cancel.cancelled() => {
                return Err(ToolError::new("cancelled", "the run was stopped"));
            }
        };
        // An error's text is the server's too: screened like any output.
        Ok(ToolOutput::untrusted(if is_error {
            format!("the tool reported an error: {text}")
        } else {
            text
        }))
    }
}
