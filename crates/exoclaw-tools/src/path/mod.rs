//! Workspace anchoring: every file the tools touch is opened relative to a
//! directory fd of the (per-user) workspace root, by the kernel, with
//! `openat2(2)` and `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`. The kernel
//! refuses any resolution that would leave the root — `..` above it, an
//! absolute path, a symlink (absolute or relative) pointing out, a `/proc`
//! magic link — and because the check happens during the one open, a
//! directory swapped for a symlink between a check and an open cannot win.
//! Where `openat2` is missing (`ENOSYS`, kernels before 5.6 or seccomp
//! filters that hide it) [`walk`] does the same fd by fd with
//! `openat(O_NOFOLLOW)` and `readlinkat`, equally race-free.
//!
//! Decisions about "encoded" paths (all tested in `tests.rs`):
//! - a path is the bytes the model gave, nothing is decoded: `%2e%2e` is a
//!   file literally named `%2e%2e`, a backslash is an ordinary byte of a
//!   name on Linux, and fullwidth or other look-alike dots (`．．`) are not
//!   `..`. No Unicode normalisation is applied, because it would make a
//!   path name a different file than the one the model named;
//! - overlong UTF-8 cannot reach us: arguments are JSON strings, which are
//!   valid UTF-8; a NUL byte is refused (`tool.invalid_args`);
//! - only the ASCII component `..` is a parent reference, so `my..file.txt`
//!   and `a..b/c` are ordinary names.
//!
//! With `restrict_to_workspace = false` the same code runs with only
//! `RESOLVE_NO_MAGICLINKS`: relative paths still start at the workspace root
//! but `..`, absolute paths and symlinks out are allowed.
//!
//! Refusals are `security.path_denied`. Errors name the path as the model
//! gave it and never the host path of the workspace.

mod walk;

use exoclaw_core::tool::ToolError;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Longest path string accepted (Linux `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;
/// How often an `openat2` that reports `EAGAIN` (a concurrent rename while
/// resolving `..`) is retried before giving up.
const EAGAIN_RETRIES: usize = 16;

/// How paths are resolved below the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2(RESOLVE_BENEATH)`, the kernel's own anchored resolution.
    Openat2,
    /// The fd-by-fd `openat(O_NOFOLLOW)` walk, for kernels without `openat2`.
    Walk,
}

/// An open workspace root that every tool path is resolved against.
#[derive(Debug)]
pub struct Workspace {
    root: OwnedFd,
    restrict: bool,
    resolver: Resolver,
}

/// What the longest existing prefix of a path is (see [`Workspace::probe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The whole path exists; its file type (symlinks followed, anchored).
    Exists(FileType),
    /// Some leading components exist (as directories) and the rest do not:
    /// `missing` of them, the final name included (what a write creates).
    Missing { missing: usize },
}

impl Workspace {
    /// Open `root` (trusted: it comes from the server, never the model),
    /// choosing `openat2` when the kernel has it.
    pub fn open(root: &Path, restrict: bool) -> Result<Self, ToolError> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let (fd, resolver) = match rustix::fs::openat2(
            rustix::fs::CWD,
            root,
            flags,
            Mode::empty(),
            ResolveFlags::empty(),
        ) {
            Ok(fd) => (Ok(fd), Resolver::Openat2),
            Err(Errno::NOSYS) => (
                rustix::fs::openat(rustix::fs::CWD, root, flags, Mode::empty()),
                Resolver::Walk,
            ),
            Err(e) => (Err(e), Resolver::Openat2),
        };
        let root = fd.map_err(|_| ToolError::failed("the workspace is not available"))?;
        Ok(Self {
            root,
            restrict,
            resolver,
        })
    }

    /// [`Workspace::open`] with an explicit resolver (tests and fuzzing run
    /// both; production uses whatever `open` picked).
    pub fn open_with(root: &Path, restrict: bool, resolver: Resolver) -> Result<Self, ToolError> {
        let mut ws = Self::open(root, restrict)?;
        if resolver == Resolver::Openat2 && ws.resolver == Resolver::Walk {
            return Err(ToolError::failed("openat2 is not available on this kernel"));
        }
        ws.resolver = resolver;
        Ok(ws)
    }

    pub fn resolver(&self) -> Resolver {
        self.resolver
    }

    pub fn restricts(&self) -> bool {
        self.restrict
    }

    /// The lexical checks, before touching the disk: not empty, no NUL, not
    /// too long, and (when restricted) not absolute and no `..` that climbs
    /// above the root. The kernel enforces all of this again on open; these
    /// checks only give the clearer message.
    pub fn validate(&self, given: &str) -> Result<(), ToolError> {
        Self::validate_as(given, self.restrict)
    }

    /// [`Workspace::validate`] as a restricted workspace does it, without
    /// opening one (a tool that always stays inside checks its arguments).
    pub fn validate_restricted(given: &str) -> Result<(), ToolError> {
        Self::validate_as(given, true)
    }

    fn validate_as(given: &str, restrict: bool) -> Result<(), ToolError> {
        if given.is_empty() {
            return Err(ToolError::invalid_args("path: must not be empty"));
        }
        if given.contains('\0') {
            return Err(ToolError::invalid_args("path: must not contain NUL"));
        }
        if given.len() > MAX_PATH_BYTES {
            return Err(ToolError::invalid_args(format!(
                "path: longer than {MAX_PATH_BYTES} bytes"
            )));
        }
        if !restrict {
            return Ok(());
        }
        if given.starts_with('/') {
            return Err(denied(
                given,
                "absolute paths are not allowed; give a path relative to the workspace",
            ));
        }
        let mut depth = 0usize;
        for part in given.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| denied(given, "`..` climbs above the workspace root"))?;
                }
                _ => depth += 1,
            }
        }
        Ok(())
    }

    /// Open `given` below the root with `flags` (`O_CLOEXEC` is added).
    /// Errors are phrased for the model and name only `given`.
    pub fn open_at(&self, given: &str, flags: OFlags, mode: Mode) -> Result<OwnedFd, ToolError> {
        self.validate(given)?;
        self.open_raw(given, flags, mode)
            .map_err(|e| map_errno(given, e))
    }

    /// The resolution itself, without the lexical checks: the kernel (or
    /// the walk) still keeps it beneath the root when restricted. For
    /// callers that validated already, and for fuzzing the anchor alone.
    pub fn open_raw(&self, path: &str, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC;
        match self.resolver {
            Resolver::Openat2 => {
                let resolve = if self.restrict {
                    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS
                } else {
                    ResolveFlags::NO_MAGICLINKS
                };
                let mut tries = 0;
                loop {
                    match rustix::fs::openat2(&self.root, path, flags, mode, resolve) {
                        Err(Errno::AGAIN) if tries < EAGAIN_RETRIES => tries += 1,
                        other => return other,
                    }
                }
            }
            Resolver::Walk if self.restrict => {
                walk::open_beneath(self.root.as_fd(), path, flags, mode)
            }
            Resolver::Walk => rustix::fs::openat(&self.root, path, flags, mode),
        }
    }

    /// Resolve `given` without acting (the dry run of a write): the whole
    /// path if it exists, else its longest existing prefix, which must be
    /// directories below the root.
    pub fn probe(&self, given: &str) -> Result<Probe, ToolError> {
        self.validate(given)?;
        let comps = Components::new(given);
        for k in (0..=comps.len()).rev() {
            let prefix = comps.prefix(k);
            match self.open_raw(&prefix, OFlags::PATH, Mode::empty()) {
                Ok(fd) => {
                    let st = rustix::fs::fstat(&fd).map_err(|e| map_errno(given, e))?;
                    let ft = FileType::from_raw_mode(st.st_mode);
                    if k == comps.len() {
                        return Ok(Probe::Exists(ft));
                    }
                    if !ft.is_dir() {
                        return Err(map_errno(given, Errno::NOTDIR));
                    }
                    return Ok(Probe::Missing {
                        missing: comps.len() - k,
                    });
                }
                Err(Errno::NOENT) => {}
                Err(e) => return Err(map_errno(given, e)),
            }
        }
        Err(ToolError::failed("the workspace is not available"))
    }

    /// Split `given` into its parent directory, created (with every missing
    /// ancestor) through the same anchored resolution — each `mkdirat` is
    /// relative to the fd of the already-resolved parent, and each new
    /// directory is re-opened from the root — and the final name.
    pub fn create_parents(&self, given: &str) -> Result<(OwnedFd, String), ToolError> {
        self.validate(given)?;
        let comps = Components::new(given);
        let Some(name) = comps.last().filter(|n| *n != "." && *n != "..") else {
            return Err(ToolError::invalid_args(format!(
                "path: {given:?} does not name a file"
            )));
        };
        if given.ends_with('/') {
            return Err(ToolError::invalid_args(format!(
                "path: {given:?} names a directory, not a file"
            )));
        }
        let dir_flags = OFlags::PATH | OFlags::DIRECTORY;
        let err = |e| map_errno(given, e);
        let mut dir = self
            .open_raw(&comps.prefix(0), dir_flags, Mode::empty())
            .map_err(err)?;
        for k in 1..comps.len() {
            let prefix = comps.prefix(k);
            dir = match self.open_raw(&prefix, dir_flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&dir, comps.get(k - 1), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(err(e)),
                    }
                    self.open_raw(&prefix, dir_flags, Mode::empty())
                        .map_err(err)?
                }
                Err(e) => return Err(err(e)),
            };
        }
        Ok((dir, name.to_owned()))
    }

    /// `stat` of a name directly inside an already-resolved directory,
    /// without following a final symlink.
    pub fn stat_in<P: rustix::path::Arg>(
        dir: &OwnedFd,
        name: P,
    ) -> Result<Option<FileType>, Errno> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The components of a model-given path, kept literally (`.` and `..`
/// included) so that prefixes resolve exactly like the whole path does.
struct Components<'a> {
    absolute: bool,
    parts: Vec<&'a str>,
}

impl<'a> Components<'a> {
    fn new(given: &'a str) -> Self {
        Self {
            absolute: given.starts_with('/'),
            parts: given.split('/').filter(|p| !p.is_empty()).collect(),
        }
    }

    fn len(&self) -> usize {
        self.parts.len()
    }

    fn get(&self, i: usize) -> &'a str {
        self.parts.get(i).copied().unwrap_or(".")
    }

    fn last(&self) -> Option<&'a str> {
        self.parts.last().copied()
    }

    /// The first `k` components as a path (`.` or `/` for none).
    fn prefix(&self, k: usize) -> String {
        let joined = self.parts.get(..k).unwrap_or(&self.parts).join("/");
        match (self.absolute, joined.is_empty()) {
            (true, _) => format!("/{joined}"),
            (false, true) => ".".to_owned(),
            (false, false) => joined,
        }
    }
}

pub(crate) fn denied(given: &str, why: &str) -> ToolError {
    ToolError::new(
        "security.path_denied",
        format!("{given:?} is refused: {why}"),
    )
}

/// An errno from resolving `given`, as the model should read it.
pub fn map_errno(given: &str, e: Errno) -> ToolError {
    match e {
        Errno::XDEV => denied(given, "it leads outside the workspace"),
        Errno::LOOP => denied(given, "a symlink loop or a /proc magic link"),
        Errno::NOENT => ToolError::failed(format!("{given:?}: no such file or directory")),
        Errno::NOTDIR => ToolError::failed(format!("{given:?}: a component is not a directory")),
        Errno::ISDIR => ToolError::failed(format!("{given:?}: is a directory")),
        Errno::ACCESS | Errno::PERM => ToolError::failed(format!("{given:?}: permission denied")),
        Errno::NAMETOOLONG => ToolError::invalid_args(format!("path: {given:?} is too long")),
        Errno::EXIST => ToolError::failed(format!("{given:?}: already exists")),
        Errno::NOSPC | Errno::DQUOT => ToolError::failed(format!("{given:?}: no space left")),
        other => ToolError::failed(format!("{given:?}: cannot access ({other})")),
    }
}

#[cfg(test)]
mod tests;
