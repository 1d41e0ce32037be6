//! Tool arguments: the one way a tool reads its JSON arguments into a typed
//! struct (a mismatch is `tool.invalid_args` back to the model), and the
//! `{query, limit}` arguments the search tools (`memory_search`,
//! `skill_search`) share.

use exoclaw_core::tool::ToolError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// `args` as `T`, or `tool.invalid_args` saying why not.
pub(crate) fn parse<T: DeserializeOwned>(args: &Value) -> Result<T, ToolError> {
    serde_json::from_value(args.clone()).map_err(|e| ToolError::invalid_args(e.to_string()))
}

/// A search tool's arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Query {
    pub query: String,
    #[serde(default)]
    limit: Option<u32>,
}

impl Query {
    /// Parsed, with a query that is not blank (`empty` says what it is
    /// for) and at most `max_bytes` long.
    pub fn checked(args: &Value, empty: &str, max_bytes: usize) -> Result<Self, ToolError> {
        let a: Query = parse(args)?;
        if a.query.trim().is_empty() {
            return Err(ToolError::invalid_args(format!("query: {empty}")));
        }
        if a.query.len() > max_bytes {
            return Err(ToolError::invalid_args(format!(
                "query: at most {max_bytes} bytes"
            )));
        }
        Ok(a)
    }

    /// The JSON Schema of `{query, limit}`: `query` described as `what`,
    /// `limit` 1..=`max` (default 5). `delegate_search` offers the same
    /// shape.
    pub fn schema(what: &str, max: u32) -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": what},
                "limit": {"type": "integer", "minimum": 1, "maximum": max, "default": 5}
            },
            "required": ["query"],
            "additionalProperties": false
        })
    }

    /// How many results: the asked number (default 5) within 1..=`max`.
    pub fn limit(&self, max: u32) -> u32 {
        self.limit.unwrap_or(5).clamp(1, max)
    }
}
