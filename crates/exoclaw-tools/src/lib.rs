//! exoclaw's built-in tools and the [`registry::ToolRegistry`], the one path
//! every tool call takes (agent loop, `/v1/tools/invoke`, later MCP and
//! channels): lookup, allow/deny policy, argument checks, per-session rate
//! limit, timeout, output truncation, audit event and trace span.

mod args;
pub mod channel;
pub mod custom;
pub mod exec;
pub mod fs;
pub mod memory;
pub mod orchestrate;
pub mod path;
pub mod quota;
pub mod registry;
pub mod sandbox;
pub mod shell;
pub mod skill;
pub mod team;
pub mod web;

pub use registry::{BoundTools, InvokeMode, ToolPolicy, ToolRegistry, is_builtin_name};
