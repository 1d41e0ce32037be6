//! `read_file` (whole or a 1-based inclusive line range, read in chunks and
//! never more than its output limit) and `list_files`.

use super::lines::{CopyError, copy_lines};
use super::{FsOptions, blocking, io_error, parse_args};
use crate::path::{Workspace, map_errno};
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Check, Provenance, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use rustix::fs::{FileType, Mode, OFlags};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest file `read_file` reads without a line range.
pub(super) const MAX_READ_BYTES: u64 = 4 * 1024 * 1024;
/// Most entries `list_files` returns.
const MAX_ENTRIES: usize = 1000;

/// Open `given` for reading; it must be a regular file. `O_NONBLOCK` keeps a
/// FIFO from blocking the open; it is cleared once the type is known.
pub(super) fn open_regular(ws: &Workspace, given: &str) -> Result<std::fs::File, ToolError> {
    let fd = ws.open_at(
        given,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd).map_err(|e| map_errno(given, e))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => return Err(map_errno(given, rustix::io::Errno::ISDIR)),
        _ => return Err(ToolError::failed(format!("{given:?}: not a regular file"))),
    }
    let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| map_errno(given, e))?;
    rustix::fs::fcntl_setfl(&fd, flags.difference(OFlags::NONBLOCK))
        .map_err(|e| map_errno(given, e))?;
    Ok(std::fs::File::from(fd))
}

/// Resolve `given` and require a regular file, without reading it.
pub(super) fn check_regular(ws: &Workspace, given: &str) -> Result<(), ToolError> {
    let fd = ws.open_at(given, OFlags::PATH, Mode::empty())?;
    let st = rustix::fs::fstat(&fd).map_err(|e| map_errno(given, e))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Ok(()),
        FileType::Directory => Err(map_errno(given, rustix::io::Errno::ISDIR)),
        _ => Err(ToolError::failed(format!("{given:?}: not a regular file"))),
    }
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

impl ReadArgs {
    fn check_range(&self) -> Result<(), ToolError> {
        match (self.start_line, self.end_line) {
            (Some(0), _) | (_, Some(0)) => Err(ToolError::invalid_args(
                "start_line/end_line: lines are numbered from 1",
            )),
            (Some(s), Some(e)) if s > e => Err(ToolError::invalid_args(
                "start_line: must not be after end_line",
            )),
            _ => Ok(()),
        }
    }
}

pub struct ReadFile(pub FsOptions);

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

    /// A file's text is whatever anyone put there: untrusted.
    fn provenance(&self) -> Provenance {
        Provenance::Untrusted
    }

    fn source(&self, args: &Value) -> String {
        format!(
            "file:{}",
            args.get("path").and_then(Value::as_str).unwrap_or("")
        )
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: ReadArgs = parse_args(args)?;
        a.check_range()?;
        let ws = self.0.workspace(ctx)?;
        blocking(move || check_regular(&ws, &a.path)).await?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: ReadArgs = parse_args(args)?;
        a.check_range()?;
        let ws = self.0.workspace(ctx)?;
        blocking(move || read_lines(&ws, &a).map(ToolOutput::text)).await
    }
}

fn read_lines(ws: &Workspace, a: &ReadArgs) -> Result<String, ToolError> {
    let mut file = open_regular(ws, &a.path)?;
    let len = file.metadata().map_err(|e| io_error(&a.path, &e))?.len();
    let ranged = a.start_line.is_some() || a.end_line.is_some();
    if !ranged && len > MAX_READ_BYTES {
        return Err(ToolError::failed(format!(
            "{:?}: {len} bytes is too large to read whole; pass start_line/end_line",
            a.path
        )));
    }
    let start = a.start_line.unwrap_or(1);
    let end = a.end_line.unwrap_or(u64::MAX);
    let limit = usize::try_from(MAX_READ_BYTES).unwrap_or(usize::MAX);
    copy_lines(&mut file, start, end, limit).map_err(|e| match e {
        CopyError::Io(e) => io_error(&a.path, &e),
        CopyError::NotUtf8 => ToolError::failed(format!("{:?}: not a UTF-8 text file", a.path)),
        CopyError::TooLarge => ToolError::failed(format!(
            "{:?}: the range is larger than {MAX_READ_BYTES} bytes; ask for fewer lines",
            a.path
        )),
    })
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

pub struct ListFiles(pub FsOptions);

#[async_trait]
impl Tool for ListFiles {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "list_files".into(),
            description:
                "List a directory of the workspace; directories end with '/', symlinks with '@'."
                    .into(),
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

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: ListArgs = parse_args(args)?;
        let ws = self.0.workspace(ctx)?;
        blocking(move || {
            ws.open_at(&a.path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
                .map(drop)
        })
        .await?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: ListArgs = parse_args(args)?;
        let ws = self.0.workspace(ctx)?;
        blocking(move || list(&ws, &a.path).map(ToolOutput::text)).await
    }
}

fn list(ws: &Workspace, given: &str) -> Result<String, ToolError> {
    let fd = ws.open_at(given, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
    let dir_fd = fd.try_clone().map_err(|e| io_error(given, &e))?;
    let dir = rustix::fs::Dir::new(fd).map_err(|e| map_errno(given, e))?;
    let mut names = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| map_errno(given, e))?;
        let raw = entry.file_name().to_bytes();
        if raw == b"." || raw == b".." {
            continue;
        }
        let mut name = String::from_utf8_lossy(raw).into_owned();
        let kind = match entry.file_type() {
            FileType::Unknown => Workspace::stat_in(&dir_fd, entry.file_name())
                .ok()
                .flatten()
                .unwrap_or(FileType::Unknown),
            known => known,
        };
        match kind {
            FileType::Directory => name.push('/'),
            FileType::Symlink => name.push('@'),
            _ => {}
        }
        names.push(name);
    }
    if names.is_empty() {
        // An empty answer reads like a failed call to a model.
        return Ok(format!("{given} is an empty directory"));
    }
    names.sort();
    let total = names.len();
    names.truncate(MAX_ENTRIES);
    let mut out = names.join("\n");
    if total > MAX_ENTRIES {
        out.push_str(&format!("\n[... {} more entries]", total - MAX_ENTRIES));
    }
    Ok(out)
}
