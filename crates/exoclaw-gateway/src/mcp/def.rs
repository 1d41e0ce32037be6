//! An MCP server's definition: it lives with the configuration (servers may
//! be configured in `tools.mcp.servers`), see [`crate::config::mcp_server`].

pub use crate::config::mcp_server::*;
