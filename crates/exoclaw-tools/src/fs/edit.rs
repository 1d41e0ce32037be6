//! `edit_file`: several exact-match replacements in one call, applied in
//! order to the evolving text and written once, atomically — all or
//! nothing. An edit whose `old` text is missing, or found more than once
//! without `replace_all`, fails the whole call with `tool.edit_failed`
//! naming the edit and the count of matches; the dry run reads the file and
//! reports the same.

use super::read::{MAX_READ_BYTES, check_regular, open_regular};
use super::write::{MAX_WRITE_BYTES, check_quota, write_within_quota};
use super::{FsOptions, blocking, io_error, parse_args};
use crate::path::Workspace;
use crate::quota::QuotaLedger;
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Check, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Read as _;
use std::sync::Arc;

/// Most edits in one call.
const MAX_EDITS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditArgs {
    path: String,
    edits: Vec<Edit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    old: String,
    new: String,
    #[serde(default)]
    replace_all: bool,
}

impl EditArgs {
    fn validate(&self) -> Result<(), ToolError> {
        if self.edits.is_empty() {
            return Err(ToolError::invalid_args("edits: give at least one edit"));
        }
        if self.edits.len() > MAX_EDITS {
            return Err(ToolError::invalid_args(format!(
                "edits: at most {MAX_EDITS} per call"
            )));
        }
        for (i, e) in self.edits.iter().enumerate() {
            if e.old.is_empty() {
                return Err(ToolError::invalid_args(format!(
                    "edits[{i}].old: must not be empty"
                )));
            }
            if e.old == e.new {
                return Err(ToolError::invalid_args(format!(
                    "edits[{i}]: old and new are the same"
                )));
            }
        }
        Ok(())
    }
}

fn edit_failed(message: String) -> ToolError {
    ToolError::new("tool.edit_failed", message)
}

/// Apply `edits` in order; the new text and the number of replacements.
fn apply(path: &str, text: &str, edits: &[Edit]) -> Result<(String, usize), ToolError> {
    let mut text = text.to_owned();
    let mut replaced = 0;
    for (i, e) in edits.iter().enumerate() {
        let count = text.matches(e.old.as_str()).count();
        match count {
            0 => {
                return Err(edit_failed(format!(
                    "edits[{i}].old: not found in {path:?}{}; nothing was changed",
                    if i > 0 {
                        " (after the earlier edits)"
                    } else {
                        ""
                    }
                )));
            }
            1 => {}
            n if !e.replace_all => {
                return Err(edit_failed(format!(
                    "edits[{i}].old: matches {n} times in {path:?}; add surrounding text to make it unique or set replace_all; nothing was changed"
                )));
            }
            _ => {}
        }
        text = text.replace(e.old.as_str(), &e.new);
        replaced += count;
        if text.len() > MAX_WRITE_BYTES {
            return Err(edit_failed(format!(
                "edits[{i}]: the result would be larger than {MAX_WRITE_BYTES} bytes"
            )));
        }
    }
    Ok((text, replaced))
}

/// The file's text, refused from its size before any of it is read; the
/// read itself stops one byte past the cap in case the file grew since.
fn read_text(ws: &Workspace, path: &str) -> Result<String, ToolError> {
    let file = open_regular(ws, path)?;
    let too_large = || {
        ToolError::failed(format!(
            "{path:?}: larger than {MAX_READ_BYTES} bytes; too large to edit"
        ))
    };
    let len = file.metadata().map_err(|e| io_error(path, &e))?.len();
    if len > MAX_READ_BYTES {
        return Err(too_large());
    }
    let mut text = String::new();
    file.take(MAX_READ_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| io_error(path, &e))?;
    if text.len() as u64 > MAX_READ_BYTES {
        return Err(too_large());
    }
    Ok(text)
}

pub struct EditFile {
    opts: FsOptions,
    quota: Option<Arc<QuotaLedger>>,
}

impl EditFile {
    pub fn new(opts: FsOptions, quota: Option<Arc<QuotaLedger>>) -> Self {
        Self { opts, quota }
    }
}

#[async_trait]
impl Tool for EditFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "edit_file".into(),
            description: "Edit a text file in the workspace by exact-match replacement. Edits apply in order; each `old` must match exactly once unless replace_all is set. All or nothing: if any edit fails, the file is unchanged.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "path relative to the workspace"},
                    "edits": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_EDITS,
                        "items": {
                            "type": "object",
                            "properties": {
                                "old": {"type": "string", "description": "exact text to replace, including whitespace"},
                                "new": {"type": "string"},
                                "replace_all": {"type": "boolean", "default": false}
                            },
                            "required": ["old", "new"],
                            "additionalProperties": false
                        }
                    }
                },
                "required": ["path", "edits"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: EditArgs = parse_args(args)?;
        a.validate()?;
        let ws = self.opts.workspace(ctx)?;
        let (quota, ctx) = (self.quota.clone(), ctx.clone());
        blocking(move || {
            check_regular(&ws, &a.path)?;
            let (text, _) = apply(&a.path, &read_text(&ws, &a.path)?, &a.edits)?;
            check_quota(&ws, quota.as_deref(), &ctx, &a.path, text.len())
        })
        .await?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: EditArgs = parse_args(args)?;
        a.validate()?;
        let ws = self.opts.workspace(ctx)?;
        let (quota, ctx) = (self.quota.clone(), ctx.clone());
        blocking(move || {
            let (text, replaced) = apply(&a.path, &read_text(&ws, &a.path)?, &a.edits)?;
            write_within_quota(&ws, quota.as_deref(), &ctx, &a.path, text.as_bytes())?;
            Ok(ToolOutput::text(format!(
                "edited {}: {} edit(s), {replaced} replacement(s)",
                a.path,
                a.edits.len()
            )))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(old: &str, new: &str, replace_all: bool) -> Edit {
        Edit {
            old: old.into(),
            new: new.into(),
            replace_all,
        }
    }

    #[test]
    fn edits_apply_in_order() {
        let (t, n) = apply("f", "a b a", &[e("b", "c", false), e("a", "x", true)]).unwrap();
        assert_eq!((t.as_str(), n), ("x c x", 3));
        let (t, _) = apply(
            "f",
            "one",
            &[e("one", "two", false), e("two", "three", false)],
        )
        .unwrap();
        assert_eq!(t, "three");
    }

    #[test]
    fn missing_and_ambiguous_name_the_edit() {
        let err = apply("f", "a a", &[e("a", "b", false)]).unwrap_err();
        assert_eq!(err.code, "tool.edit_failed");
        assert!(
            err.message.contains("edits[0].old: matches 2 times"),
            "{err}"
        );
        let err = apply("f", "abc", &[e("a", "x", false), e("zzz", "y", false)]).unwrap_err();
        assert!(err.message.contains("edits[1].old: not found"), "{err}");
    }
}
