//! Files the gateway puts into a user's workspace and takes out of it for
//! a messaging channel: [`save_new`] writes a received file under a name
//! the gateway chose (never over an existing one), and [`read_capped`]
//! reads one the agent sends, both anchored at the workspace root like
//! every tool access (a symlink out, `..` above the root or an absolute
//! path is refused by the kernel) and both bounded.

use super::io_error;
use crate::path::{Workspace, map_errno};
use crate::quota::{Growth, QuotaLedger};
use exoclaw_core::tool::{ToolContext, ToolError};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::io::{Read as _, Write as _};

/// Save `content` as the new file `<dir>/<name>` of `ctx`'s workspace:
/// `dir` (one plain name, created 0700 if missing) and `name` are the
/// caller's, never a sender's; the file is created 0600 with `O_EXCL` and
/// `O_NOFOLLOW` (an existing name fails with `AlreadyExists`), within the
/// workspace quota when `quota` is active.
pub fn save_new(
    ctx: &ToolContext,
    quota: Option<&QuotaLedger>,
    dir: &str,
    name: &str,
    content: &[u8],
) -> Result<(), ToolError> {
    for part in [dir, name] {
        if part.is_empty() || part.contains('/') || part.starts_with('.') || part.contains('\0') {
            return Err(ToolError::invalid_args(format!(
                "{part:?}: not a plain file name"
            )));
        }
    }
    let ws = Workspace::open(&ctx.workspace, true)?;
    let given = format!("{dir}/{name}");
    let root = ws
        .open_raw(".", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .map_err(|e| map_errno(dir, e))?;
    let created_dir = match rustix::fs::mkdirat(&root, dir, Mode::from_raw_mode(0o700)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return Err(map_errno(dir, e)),
    };
    // Anchored: a `dir` that is a symlink resolves beneath the root or not
    // at all.
    let dir_fd = ws
        .open_at(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .map_err(|_| ToolError::failed(format!("{dir:?}: not a directory in the workspace")))?;
    let reservation = match quota.filter(|q| q.is_active()) {
        Some(q) => Some(q.reserve(
            ctx,
            Growth {
                bytes: i64::try_from(content.len()).unwrap_or(i64::MAX),
                files: 1 + i64::from(created_dir),
            },
        )?),
        None => None,
    };
    let mode = Mode::from_raw_mode(0o600);
    let fd = rustix::fs::openat(
        &dir_fd,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
    )
    .map_err(|e| map_errno(&given, e))?;
    let written = (|| {
        rustix::fs::fchmod(&fd, mode).map_err(|e| map_errno(&given, e))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(content)
            .and_then(|()| file.flush())
            .map_err(|e| io_error(&given, &e))
    })();
    if written.is_err() {
        // Best effort: the half-written file is ours and holds nothing of value.
        let _ = rustix::fs::unlinkat(&dir_fd, name, rustix::fs::AtFlags::empty());
        return written;
    }
    if let Some(r) = reservation {
        r.commit();
    }
    Ok(())
}

/// Read the regular file `given` of `ctx`'s workspace (anchored, always
/// restricted to the workspace), refusing one larger than `max` bytes
/// before reading it (`tool.too_large`).
pub fn read_capped(ctx: &ToolContext, given: &str, max: u64) -> Result<Vec<u8>, ToolError> {
    let ws = Workspace::open(&ctx.workspace, true)?;
    let fd = ws.open_at(
        given,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd).map_err(|e| map_errno(given, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(ToolError::failed(format!("{given:?}: not a regular file")));
    }
    let size = u64::try_from(st.st_size).unwrap_or(u64::MAX);
    if size > max {
        return Err(ToolError::new(
            "tool.too_large",
            format!("{given:?} is {size} bytes; the channel sends at most {max}"),
        ));
    }
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    std::fs::File::from(fd)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| io_error(given, &e))?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > max {
        return Err(ToolError::new(
            "tool.too_large",
            format!("{given:?} grew past {max} bytes while it was read"),
        ));
    }
    Ok(out)
}
