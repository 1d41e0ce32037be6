//! File tools over the (per-user) workspace: `read_file` (line ranges),
//! `write_file`, `edit_file` (exact-match replacements, all or nothing),
//! `list_files`, `search` (regex, .gitignore-aware) and `glob`. Every open
//! goes through [`crate::path::Workspace`], anchored at the workspace root by
//! the kernel; directory walks hold directory fds and never follow symlinks.
//! Each tool's `check` does all argument validation and path resolution
//! without acting (the dry run); filesystem work runs on the blocking pool.
//! Reads are chunked and bounded (`lines.rs`); writes can be held to
//! workspace quotas ([`crate::quota`]). `save.rs`: the gateway's own
//! anchored write of a channel's received file and read of one to send.

mod edit;
mod lines;
mod read;
mod save;
mod search;
mod walk;
mod write;

use crate::path::Workspace;
use crate::quota::QuotaLedger;
use exoclaw_core::tool::{Tool, ToolContext, ToolError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

pub use edit::EditFile;
pub use read::{ListFiles, ReadFile};
pub use save::{read_capped, save_new};
pub use search::{Glob, Search};
pub use write::WriteFile;

/// How the file tools treat paths; the binary builds it from
/// `agents.defaults.restrict_to_workspace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsOptions {
    /// Anchor every open beneath the workspace root (the default). When
    /// false, absolute paths and `..` are allowed, through the same code.
    pub restrict_to_workspace: bool,
}

impl Default for FsOptions {
    fn default() -> Self {
        Self {
            restrict_to_workspace: true,
        }
    }
}

impl FsOptions {
    fn workspace(self, ctx: &ToolContext) -> Result<Workspace, ToolError> {
        Workspace::open(&ctx.workspace, self.restrict_to_workspace)
    }
}

/// The six file tools with the default options (restricted to the workspace).
pub fn builtin() -> Vec<Arc<dyn Tool>> {
    builtin_with(FsOptions::default())
}

/// The six file tools with `opts`, without workspace quotas.
pub fn builtin_with(opts: FsOptions) -> Vec<Arc<dyn Tool>> {
    tools(opts, None)
}

/// The six file tools with `opts`; `write_file` and `edit_file` enforce the
/// workspace quotas of `quota` (share the ledger with `exec`, see
/// [`crate::exec::CommandRunner::with_quota`]).
pub fn builtin_with_quota(opts: FsOptions, quota: Arc<QuotaLedger>) -> Vec<Arc<dyn Tool>> {
    tools(opts, Some(quota))
}

fn tools(opts: FsOptions, quota: Option<Arc<QuotaLedger>>) -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(ReadFile(opts)),
        Arc::new(WriteFile::new(opts, quota.clone())),
        Arc::new(EditFile::new(opts, quota)),
        Arc::new(ListFiles(opts)),
        Arc::new(Search(opts)),
        Arc::new(Glob(opts)),
    ]
}

/// Parse arguments; serde's message names the offending field.
pub fn parse_args<T: DeserializeOwned>(args: &Value) -> Result<T, ToolError> {
    serde_json::from_value(args.clone()).map_err(|e| ToolError::invalid_args(e.to_string()))
}

/// Run blocking filesystem work off the async runtime.
async fn blocking<T, F>(f: F) -> Result<T, ToolError>
where
    F: FnOnce() -> Result<T, ToolError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ToolError::failed("the file operation did not complete"))?
}

/// An I/O error while reading or writing `given`, without host detail.
fn io_error(given: &str, e: &std::io::Error) -> ToolError {
    match e.raw_os_error() {
        Some(code) => crate::path::map_errno(given, rustix::io::Errno::from_raw_os_error(code)),
        None if e.kind() == std::io::ErrorKind::InvalidData => {
            ToolError::failed(format!("{given:?}: not a UTF-8 text file"))
        }
        None => ToolError::failed(format!("{given:?}: cannot access")),
    }
}

/// `s` cut to at most `max` bytes on a char boundary, with a marker.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}[... {} more bytes]", &s[..cut], s.len() - cut)
}

#[cfg(test)]
mod tests;
