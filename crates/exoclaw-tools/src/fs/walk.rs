//! A directory walk for `search` and `glob` that never leaves the workspace:
//! the start is opened anchored, every subdirectory is opened with
//! `openat(O_NOFOLLOW)` relative to its parent's fd, and symlinks are skipped
//! (as ripgrep does by default), so a directory swapped for a symlink
//! mid-walk is simply not entered. `.gitignore` and `.ignore` files are
//! honoured (read through the same fds), `.git` is always skipped, hidden
//! entries unless asked for. Entries are visited in name order; the walk
//! stops at a deadline or an entry budget and says so.

use crate::path::Workspace;
use exoclaw_core::tool::ToolError;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rustix::fs::{FileType, Mode, OFlags};
use std::ffi::{CStr, CString};
use std::io::Read as _;
use std::ops::ControlFlow;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Deepest directory nesting walked.
const MAX_DEPTH: usize = 64;
/// Largest ignore file read.
const MAX_IGNORE_BYTES: u64 = 1024 * 1024;

pub(super) struct WalkOptions {
    /// Include entries whose name starts with `.` (never `.git`).
    pub hidden: bool,
    pub deadline: Instant,
    /// Most entries looked at before the walk stops.
    pub max_visits: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
}

/// One entry, with the directory fd it lives in so that it can be opened
/// without resolving any path again.
pub(super) struct Entry<'a> {
    /// Relative to the walk's start, `/`-separated.
    pub rel: &'a str,
    pub kind: Kind,
    pub dir: &'a OwnedFd,
    pub name: &'a CStr,
}

/// Why a walk stopped before visiting everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cut {
    Deadline,
    Budget,
    Visitor,
}

struct Walker<'v> {
    opts: &'v WalkOptions,
    visits: usize,
    ignores: Vec<Gitignore>,
    /// Prefix of every virtual path handed to the ignore matchers: the start
    /// relative to the workspace when known, so ancestors' rules apply.
    base: String,
    visit: &'v mut dyn FnMut(&Entry<'_>) -> ControlFlow<()>,
}

/// Walk the directory `start` (a model-given path, resolved anchored).
pub(super) fn walk(
    ws: &Workspace,
    start: &str,
    opts: &WalkOptions,
    visit: &mut dyn FnMut(&Entry<'_>) -> ControlFlow<()>,
) -> Result<Option<Cut>, ToolError> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY;
    let root = ws.open_at(start, dir_flags, Mode::empty())?;
    let parts: Vec<&str> = start
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let plain = !start.starts_with('/') && !parts.contains(&"..");
    let mut w = Walker {
        opts,
        visits: 0,
        ignores: Vec::new(),
        base: if plain {
            parts.join("/")
        } else {
            String::new()
        },
        visit,
    };
    if plain {
        // Rules of the ancestors inside the workspace apply too.
        for k in 0..parts.len() {
            let prefix = if k == 0 {
                ".".to_owned()
            } else {
                parts[..k].join("/")
            };
            if let Ok(fd) = ws.open_raw(&prefix, dir_flags, Mode::empty()) {
                let dir_rel = if k == 0 { String::new() } else { prefix };
                if let Some(gi) = load_ignore(&fd, &dir_rel) {
                    w.ignores.push(gi);
                }
            }
        }
    }
    Ok(w.dir(&root, "", 0).break_value())
}

impl Walker<'_> {
    fn dir(&mut self, fd: &OwnedFd, rel_dir: &str, depth: usize) -> ControlFlow<Cut> {
        let pushed = match load_ignore(fd, &join(&self.base, rel_dir)) {
            Some(gi) => {
                self.ignores.push(gi);
                true
            }
            None => false,
        };
        let flow = self.entries(fd, rel_dir, depth);
        if pushed {
            self.ignores.pop();
        }
        flow
    }

    fn entries(&mut self, fd: &OwnedFd, rel_dir: &str, depth: usize) -> ControlFlow<Cut> {
        let Ok(listing) = fd.try_clone().and_then(|d| Ok(rustix::fs::Dir::new(d)?)) else {
            return ControlFlow::Continue(());
        };
        let mut entries: Vec<(CString, FileType)> = listing
            .filter_map(Result::ok)
            .map(|e| (e.file_name().to_owned(), e.file_type()))
            .filter(|(n, _)| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, ft) in entries {
            if Instant::now() >= self.opts.deadline {
                return ControlFlow::Break(Cut::Deadline);
            }
            self.visits += 1;
            if self.visits > self.opts.max_visits {
                return ControlFlow::Break(Cut::Budget);
            }
            let shown = String::from_utf8_lossy(name.as_bytes()).into_owned();
            if shown == ".git" || (!self.opts.hidden && shown.starts_with('.')) {
                continue;
            }
            let ft = match ft {
                FileType::Unknown => match Workspace::stat_in(fd, name.as_c_str()) {
                    Ok(Some(t)) => t,
                    _ => continue,
                },
                known => known,
            };
            let kind = match ft {
                FileType::RegularFile => Kind::File,
                FileType::Directory => Kind::Dir,
                _ => continue, // symlinks are not followed; devices, FIFOs skipped
            };
            let rel = join(rel_dir, &shown);
            if self.is_ignored(&join(&self.base, &rel), kind == Kind::Dir) {
                continue;
            }
            let entry = Entry {
                rel: &rel,
                kind,
                dir: fd,
                name: &name,
            };
            if (self.visit)(&entry).is_break() {
                return ControlFlow::Break(Cut::Visitor);
            }
            if kind == Kind::Dir && depth < MAX_DEPTH {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                if let Ok(child) = rustix::fs::openat(fd, name.as_c_str(), flags, Mode::empty()) {
                    self.dir(&child, &rel, depth + 1)?;
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// The deepest matcher with an opinion decides (a `!pattern` whitelists).
    fn is_ignored(&self, rel_ws: &str, is_dir: bool) -> bool {
        let path = virtual_path(rel_ws);
        for gi in self.ignores.iter().rev() {
            let m = gi.matched(&path, is_dir);
            if m.is_ignore() {
                return true;
            }
            if m.is_whitelist() {
                return false;
            }
        }
        false
    }
}

fn join(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_owned(),
        (_, true) => dir.to_owned(),
        _ => format!("{dir}/{name}"),
    }
}

/// Ignore matchers work on paths; ours are virtual, rooted at `/`.
fn virtual_path(rel: &str) -> PathBuf {
    Path::new("/").join(rel)
}

/// The `.gitignore` and `.ignore` rules of the directory `fd` (whose path
/// relative to the workspace is `dir_rel`), if it has any.
fn load_ignore(fd: &OwnedFd, dir_rel: &str) -> Option<Gitignore> {
    let mut builder = GitignoreBuilder::new(virtual_path(dir_rel));
    let mut any = false;
    for file in [".gitignore", ".ignore"] {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let Ok(f) = rustix::fs::openat(fd, file, flags, Mode::empty()) else {
            continue;
        };
        let is_file = rustix::fs::fstat(&f)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile);
        if !is_file {
            continue;
        }
        let mut text = String::new();
        if std::fs::File::from(f)
            .take(MAX_IGNORE_BYTES)
            .read_to_string(&mut text)
            .is_err()
        {
            continue;
        }
        for line in text.lines() {
            // A malformed line is skipped, as git does.
            if builder.add_line(None, line).is_ok() {
                any = true;
            }
        }
    }
    if !any {
        return None;
    }
    builder.build().ok()
}
