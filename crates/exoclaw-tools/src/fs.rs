//! File tools over the (per-user) workspace: `read_file` (with line ranges),
//! `write_file`, `list_files`. Every path goes through [`crate::path::resolve`].

use crate::path::{display, resolve};
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

/// Largest file `read_file` reads without a line range.
const MAX_READ_BYTES: u64 = 4 * 1024 * 1024;
/// Most entries `list_files` returns.
const MAX_ENTRIES: usize = 1000;

/// Parse arguments; serde's message names the offending field.
pub fn parse_args<T: DeserializeOwned>(args: &Value) -> Result<T, ToolError> {
    serde_json::from_value(args.clone()).map_err(|e| ToolError::invalid_args(e.to_string()))
}

fn io_error(given: &str, e: &std::io::Error) -> ToolError {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory",
        std::io::ErrorKind::PermissionDenied => "permission denied",
        std::io::ErrorKind::IsADirectory => "is a directory",
        std::io::ErrorKind::NotADirectory => "not a directory",
        _ => "cannot access",
    };
    ToolError::failed(format!("{given}: {what}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    path: String,
    /// First line to return, 1-based, inclusive.
    start_line: Option<u64>,
    /// Last line to return, inclusive.
    end_line: Option<u64>,
}

pub struct ReadFile;

#[async_trait]
impl Tool for ReadFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "read_file".into(),
            description: "Read a text file in the workspace, optionally only lines start_line..=end_line (1-based).".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "path relative to the workspace"},
                    "start_line": {"type": "integer", "minimum": 1},
                    "end_line": {"type": "integer", "minimum": 1}
                },
                "required": ["path"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<(), ToolError> {
        let a: ReadArgs = parse_args(args)?;
        check_range(a.start_line, a.end_line)?;
        resolve(&ctx.workspace, &a.path).map(|_| ())
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: ReadArgs = parse_args(args)?;
        check_range(a.start_line, a.end_line)?;
        let path = resolve(&ctx.workspace, &a.path)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_error(&a.path, &e))?;
        let meta = file.metadata().await.map_err(|e| io_error(&a.path, &e))?;
        if meta.is_dir() {
            return Err(ToolError::failed(format!("{}: is a directory", a.path)));
        }
        let ranged = a.start_line.is_some() || a.end_line.is_some();
        if !ranged && meta.len() > MAX_READ_BYTES {
            return Err(ToolError::failed(format!(
                "{}: {} bytes is too large to read whole; pass start_line/end_line",
                a.path,
                meta.len()
            )));
        }
        let start = a.start_line.unwrap_or(1);
        let end = a.end_line.unwrap_or(u64::MAX);
        let mut lines = tokio::io::BufReader::new(file).lines();
        let mut out = String::new();
        let mut n = 0u64;
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|_| ToolError::failed(format!("{}: not a UTF-8 text file", a.path)))?
        {
            n += 1;
            if n > end {
                break;
            }
            if n >= start {
                out.push_str(&line);
                out.push('\n');
            }
        }
        Ok(ToolOutput::text(out))
    }
}

fn check_range(start: Option<u64>, end: Option<u64>) -> Result<(), ToolError> {
    match (start, end) {
        (Some(0), _) | (_, Some(0)) => Err(ToolError::invalid_args(
            "start_line/end_line: lines are numbered from 1",
        )),
        (Some(s), Some(e)) if s > e => Err(ToolError::invalid_args(
            "start_line: must not be after end_line",
        )),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: String,
    content: String,
}

pub struct WriteFile;

#[async_trait]
impl Tool for WriteFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "write_file".into(),
            description:
                "Create or overwrite a text file in the workspace (parent directories are created)."
                    .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "content": {"type": "string"}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<(), ToolError> {
        let a: WriteArgs = parse_args(args)?;
        resolve(&ctx.workspace, &a.path).map(|_| ())
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: WriteArgs = parse_args(args)?;
        let path = resolve(&ctx.workspace, &a.path)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_error(&a.path, &e))?;
        }
        // Re-check after creating parents (a parent may be a symlink).
        let path = resolve(&ctx.workspace, &a.path)?;
        tokio::fs::write(&path, a.content.as_bytes())
            .await
            .map_err(|e| io_error(&a.path, &e))?;
        Ok(ToolOutput::text(format!(
            "wrote {} bytes to {}",
            a.content.len(),
            display(&ctx.workspace, &path)
        )))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    #[serde(default = "dot")]
    path: String,
}

fn dot() -> String {
    ".".to_owned()
}

pub struct ListFiles;

#[async_trait]
impl Tool for ListFiles {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "list_files".into(),
            description: "List a directory of the workspace; directories end with '/'.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"path": {"type": "string", "default": "."}},
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<(), ToolError> {
        let a: ListArgs = parse_args(args)?;
        resolve(&ctx.workspace, &a.path).map(|_| ())
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: ListArgs = parse_args(args)?;
        let path = resolve(&ctx.workspace, &a.path)?;
        let mut dir = tokio::fs::read_dir(&path)
            .await
            .map_err(|e| io_error(&a.path, &e))?;
        let mut names = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(|e| io_error(&a.path, &e))? {
            let mut name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                name.push('/');
            }
            names.push(name);
        }
        names.sort();
        let total = names.len();
        names.truncate(MAX_ENTRIES);
        let mut out = names.join("\n");
        if total > MAX_ENTRIES {
            out.push_str(&format!("\n[... {} more entries]", total - MAX_ENTRIES));
        }
        Ok(ToolOutput::text(out))
    }
}

/// The minimal built-in set.
pub fn builtin() -> Vec<std::sync::Arc<dyn Tool>> {
    vec![
        std::sync::Arc::new(ReadFile),
        std::sync::Arc::new(WriteFile),
        std::sync::Arc::new(ListFiles),
    ]
}
