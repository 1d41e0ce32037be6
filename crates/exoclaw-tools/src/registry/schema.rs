//! The argument layer: arguments must be a JSON object, and when a tool's
//! spec declares a JSON Schema they must satisfy it (draft 2020-12, as the
//! model was told). The validator is compiled once per tool, on its first
//! call; a schema that does not compile refuses every call with the reason,
//! rather than letting arguments through unchecked.

use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::ToolError;
use serde_json::Value;
use std::sync::OnceLock;

/// A tool's compiled argument schema.
#[derive(Default)]
pub(super) struct ArgSchema(OnceLock<Result<jsonschema::Validator, String>>);

/// Longest list of schema violations reported back.
const MAX_ERRORS: usize = 5;

impl ArgSchema {
    /// Refuse `args` that are not an object or that break the schema, with
    /// a message naming each violation (at most [`MAX_ERRORS`]).
    pub(super) fn check(
        &self,
        spec: impl FnOnce() -> ToolSpec,
        args: &Value,
    ) -> Result<(), ToolError> {
        match args {
            Value::Object(_) => {}
            Value::String(_) => {
                return Err(ToolError::invalid_args("arguments are not valid JSON"));
            }
            _ => return Err(ToolError::invalid_args("arguments must be a JSON object")),
        }
        let compiled = self.0.get_or_init(|| {
            jsonschema::draft202012::new(&spec().parameters).map_err(|e| e.to_string())
        });
        let validator = compiled.as_ref().map_err(|e| {
            ToolError::new(
                "tool.bad_schema",
                format!("this tool's argument schema is invalid: {e}"),
            )
        })?;
        let problems: Vec<String> = validator
            .iter_errors(args)
            .take(MAX_ERRORS)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ToolError::invalid_args(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(parameters: Value) -> impl FnOnce() -> ToolSpec {
        move || ToolSpec {
            name: "t".into(),
            description: String::new(),
            parameters,
        }
    }

    #[test]
    fn arguments_follow_the_declared_schema() {
        let schema = json!({
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 1}, "s": {"type": "string"}},
            "required": ["n"],
            "additionalProperties": false
        });
        let s = ArgSchema::default();
        assert!(
            s.check(spec(schema.clone()), &json!({"n": 2, "s": "x"}))
                .is_ok()
        );
        let e = s.check(spec(schema.clone()), &json!({"n": 0})).unwrap_err();
        assert_eq!(e.code, "tool.invalid_args");
        assert!(e.message.contains("/n"), "{}", e.message);
        let e = s
            .check(spec(schema.clone()), &json!({"s": "x", "x": 1}))
            .unwrap_err();
        assert!(
            e.message.contains("n") && e.message.contains("x"),
            "{}",
            e.message
        );
        let e = s.check(spec(schema), &json!("{not json")).unwrap_err();
        assert_eq!(e.message, "arguments are not valid JSON");
    }

    #[test]
    fn a_broken_schema_refuses_every_call() {
        let s = ArgSchema::default();
        let e = s
            .check(spec(json!({"type": "no-such-type"})), &json!({}))
            .unwrap_err();
        assert_eq!(e.code, "tool.bad_schema");
    }
}
