//! `write_file` and the anchored, atomic write that `edit_file` shares:
//! parents are created through the anchored walk, the content goes to a
//! temporary file in the (already resolved) parent directory fd, which is
//! then renamed over the name, so readers never see a half-written file and
//! the rename never follows a symlink. An existing symlink (which resolved
//! inside the workspace) is written through in place instead.

use super::{FsOptions, blocking, io_error, parse_args};
use crate::path::{Probe, Workspace, map_errno};
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest content `write_file` and `edit_file` write.
pub(super) const MAX_WRITE_BYTES: usize = 8 * 1024 * 1024;

/// Dry run of a write: the path resolves beneath the root (its existing
/// part) and does not name a directory.
pub(super) fn check_writable(ws: &Workspace, given: &str) -> Result<(), ToolError> {
    match ws.probe(given)? {
        Probe::Exists(FileType::Directory) => Err(map_errno(given, Errno::ISDIR)),
        Probe::Exists(FileType::RegularFile | FileType::Symlink) | Probe::Missing => Ok(()),
        Probe::Exists(_) => Err(ToolError::failed(format!("{given:?}: not a regular file"))),
    }
}

/// Write `content` to `given`, creating parent directories.
pub(super) fn write_anchored(ws: &Workspace, given: &str, content: &[u8]) -> Result<(), ToolError> {
    let (dir, name) = ws.create_parents(given)?;
    let err = |e| map_errno(given, e);
    let existing = rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW);
    let mode = match existing {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Mode::from_raw_mode(st.st_mode & 0o777),
            FileType::Symlink => return write_through_symlink(ws, given, content),
            FileType::Directory => return Err(err(Errno::ISDIR)),
            _ => return Err(ToolError::failed(format!("{given:?}: not a regular file"))),
        },
        Err(Errno::NOENT) => Mode::from_raw_mode(0o644),
        Err(e) => return Err(err(e)),
    };
    let tmp = temp_name();
    let fd = rustix::fs::openat(
        &dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
    )
    .map_err(err)?;
    let written = fill(fd, mode, given, content)
        .and_then(|()| rustix::fs::renameat(&dir, tmp.as_str(), &dir, name.as_str()).map_err(err));
    if written.is_err() {
        // Best effort: the temporary file is ours and holds nothing of value.
        let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
    }
    written
}

fn fill(fd: OwnedFd, mode: Mode, given: &str, content: &[u8]) -> Result<(), ToolError> {
    // The umask applied at create time; restore the original file's mode.
    rustix::fs::fchmod(&fd, mode).map_err(|e| map_errno(given, e))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(content).map_err(|e| io_error(given, &e))?;
    file.flush().map_err(|e| io_error(given, &e))
}

/// The final name is a symlink: open it anchored (the kernel follows it
/// beneath the root or refuses; a dangling one creates its target there)
/// and write in place.
fn write_through_symlink(ws: &Workspace, given: &str, content: &[u8]) -> Result<(), ToolError> {
    let fd = ws.open_at(
        given,
        OFlags::WRONLY | OFlags::CREATE | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::from_raw_mode(0o644),
    )?;
    let st = rustix::fs::fstat(&fd).map_err(|e| map_errno(given, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(ToolError::failed(format!("{given:?}: not a regular file")));
    }
    rustix::fs::ftruncate(&fd, 0).map_err(|e| map_errno(given, e))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(content).map_err(|e| io_error(given, &e))
}

fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        ".exoclaw-write-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: String,
    content: String,
}

impl WriteArgs {
    fn check_size(&self) -> Result<(), ToolError> {
        if self.content.len() > MAX_WRITE_BYTES {
            return Err(ToolError::invalid_args(format!(
                "content: larger than {MAX_WRITE_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

pub struct WriteFile(pub FsOptions);

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
                    "path": {"type": "string", "description": "path relative to the workspace"},
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
        a.check_size()?;
        let ws = self.0.workspace(ctx)?;
        blocking(move || check_writable(&ws, &a.path)).await
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: WriteArgs = parse_args(args)?;
        a.check_size()?;
        let ws = self.0.workspace(ctx)?;
        blocking(move || {
            write_anchored(&ws, &a.path, a.content.as_bytes())?;
            Ok(ToolOutput::text(format!(
                "wrote {} bytes to {}",
                a.content.len(),
                a.path
            )))
        })
        .await
    }
}
