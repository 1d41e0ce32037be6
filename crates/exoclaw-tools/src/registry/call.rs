//! One call as the layers of the policy path see it.

use exoclaw_core::tool::{Tool, ToolContext};
use serde_json::Value;

/// One call as the layers see it.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) ctx: &'a ToolContext,
    pub(crate) name: &'a str,
    pub(crate) tool: &'a dyn Tool,
    pub(crate) args: &'a Value,
}
