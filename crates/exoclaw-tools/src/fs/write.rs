//! `write_file` and the anchored, atomic write that `edit_file` shares:
//! parents are created through the anchored walk, the content goes to a
//! temporary file in the (already resolved) parent directory fd, which is
//! then renamed over the name, so readers never see a half-written file and
//! the rename never follows a symlink. An existing symlink (which resolved
//! inside the workspace) is written through in place instead. With a
//! [`QuotaLedger`], the growth is reserved before anything is created.

use super::{FsOptions, blocking, io_error, parse_args};
use crate::path::{Probe, Workspace, map_errno};
use crate::quota::{Growth, QuotaLedger, entry_bytes};
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Check, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest content `write_file` and `edit_file` write.
pub(super) const MAX_WRITE_BYTES: usize = 8 * 1024 * 1024;

/// Dry run of a write: the path resolves beneath the root (its existing
/// part) and does not name a directory.
pub(super) fn check_writable(ws: &Workspace, given: &str) -> Result<(), ToolError> {
    match ws.probe(given)? {
        Probe::Exists(FileType::Directory) => Err(map_errno(given, Errno::ISDIR)),
        Probe::Exists(FileType::RegularFile | FileType::Symlink) | Probe::Missing { .. } => Ok(()),
        Probe::Exists(_) => Err(ToolError::failed(format!("{given:?}: not a regular file"))),
    }
}

/// What writing `len` bytes to `given` adds to the workspace: the file's
/// size change (its old size counted as the quota counts it) and one entry
/// per file or parent directory the write creates.
fn growth_of(ws: &Workspace, given: &str, len: usize) -> Result<Growth, ToolError> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    match ws.probe(given)? {
        Probe::Exists(_) => {
            // Through a final symlink, anchored: the file that is written.
            let fd = ws.open_at(given, OFlags::PATH, Mode::empty())?;
            let st = rustix::fs::fstat(&fd).map_err(|e| map_errno(given, e))?;
            let old = i64::try_from(entry_bytes(&st)).unwrap_or(i64::MAX);
            Ok(Growth {
                bytes: len.saturating_sub(old),
                files: 0,
            })
        }
        Probe::Missing { missing } => Ok(Growth {
            bytes: len,
            files: i64::try_from(missing).unwrap_or(i64::MAX),
        }),
    }
}

/// Dry run of a write under the quota: would `len` bytes at `given` fit?
pub(super) fn check_quota(
    ws: &Workspace,
    quota: Option<&QuotaLedger>,
    ctx: &ToolContext,
    given: &str,
    len: usize,
) -> Result<(), ToolError> {
    match quota.filter(|q| q.is_active()) {
        Some(q) => q.check_growth(ctx, growth_of(ws, given, len)?),
        None => Ok(()),
    }
}

/// [`write_anchored`] under the quota: the growth is reserved first, and a
/// write that does not fit is refused before anything is created.
pub(super) fn write_within_quota(
    ws: &Workspace,
    quota: Option<&QuotaLedger>,
    ctx: &ToolContext,
    given: &str,
    content: &[u8],
) -> Result<(), ToolError> {
    let Some(q) = quota.filter(|q| q.is_active()) else {
        return write_anchored(ws, given, content);
    };
    let reservation = q.reserve(ctx, growth_of(ws, given, content.len())?)?;
    write_anchored(ws, given, content)?;
    reservation.commit();
    Ok(())
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

pub struct WriteFile {
    opts: FsOptions,
    quota: Option<Arc<QuotaLedger>>,
}

impl WriteFile {
    pub fn new(opts: FsOptions, quota: Option<Arc<QuotaLedger>>) -> Self {
        Self { opts, quota }
    }
}

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

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: WriteArgs = parse_args(args)?;
        a.check_size()?;
        let ws = self.opts.workspace(ctx)?;
        let (quota, ctx) = (self.quota.clone(), ctx.clone());
        blocking(move || {
            check_writable(&ws, &a.path)?;
            check_quota(&ws, quota.as_deref(), &ctx, &a.path, a.content.len())
        })
        .await?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: WriteArgs = parse_args(args)?;
        a.check_size()?;
        let ws = self.opts.workspace(ctx)?;
        let (quota, ctx) = (self.quota.clone(), ctx.clone());
        blocking(move || {
            write_within_quota(&ws, quota.as_deref(), &ctx, &a.path, a.content.as_bytes())?;
            Ok(ToolOutput::text(format!(
                "wrote {} bytes to {}",
                a.content.len(),
                a.path
            )))
        })
        .await
    }
}
