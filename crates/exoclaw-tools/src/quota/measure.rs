//! Measuring a directory tree for the workspace quota: every entry below
//! the root is counted (one file each, whatever its type) with its size,
//! symlinks are never followed, and the walk holds a single directory fd
//! at any time, so no nesting depth can exhaust fds or escape the count:
//! it descends with `openat(O_NOFOLLOW)` and climbs back with `..`,
//! checking by device and inode that `..` is the directory it came from
//! (a tree moved while it is walked is measured again by the caller).
//!
//! An entry's size is `max(st_size, st_blocks * 512)`: the apparent size
//! catches sparse files (a 1 TB file of holes counts 1 TB, and apparent
//! size is what `RLIMIT_FSIZE` and the file tools' content lengths speak),
//! the allocated size catches blocks that `st_size` does not show (space
//! preallocated with `fallocate(FALLOC_FL_KEEP_SIZE)`, directory blocks).
//! So the count is never below what the entry costs the disk or what
//! copying it out would write.

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// Bytes and entries of a tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Sum of `max(st_size, st_blocks * 512)` of every entry.
    pub bytes: u64,
    /// Entries of any type (files, directories, symlinks, ...).
    pub files: u64,
}

impl Usage {
    fn add(&mut self, other: Usage) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.files = self.files.saturating_add(other.files);
    }
}

/// A measured tree: the total and each top-level entry's share (a
/// tenant's root is measured once and seeds the user's workspace).
#[derive(Debug, Default)]
pub(super) struct Tree {
    pub total: Usage,
    pub by_top: HashMap<Vec<u8>, Usage>,
    /// The walk stopped once `total.files` passed the given cap: `total` is
    /// a lower bound and `by_top` incomplete.
    pub partial: bool,
}

/// Why a tree could not be measured.
#[derive(Debug)]
pub(super) enum MeasureError {
    /// A directory moved while it was walked; measuring again helps.
    Moved,
    /// A directory could not be read (its path relative to the root).
    Unreadable { rel: String, errno: Errno },
}

/// What one entry costs (see the module comment).
pub(crate) fn entry_bytes(st: &rustix::fs::Stat) -> u64 {
    let size = u64::try_from(st.st_size).unwrap_or(0);
    let blocks = u64::try_from(st.st_blocks).unwrap_or(0).saturating_mul(512);
    size.max(blocks)
}

/// One directory on the walk's stack.
struct Level {
    /// Device and inode, to check that `..` leads back here.
    id: (u64, u64),
    /// Subdirectories not walked yet.
    pending: Vec<CString>,
    /// The top-level entry this directory is under (`None` at the root).
    top: Option<Vec<u8>>,
    /// Path relative to the root, for error messages.
    rel: String,
}

/// Measure the tree at `root` (trusted: it comes from the gateway). A
/// missing root is an empty tree. With `stop_after_files`, the walk ends as
/// soon as more entries than that were counted.
pub(super) fn measure(root: &Path, stop_after_files: Option<u64>) -> Result<Tree, MeasureError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut cur = match rustix::fs::open(root, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Tree::default()),
        Err(errno) => {
            return Err(MeasureError::Unreadable {
                rel: ".".to_owned(),
                errno,
            });
        }
    };
    let mut tree = Tree::default();
    let mut levels = vec![Level {
        id: dir_id(&cur, ".")?,
        pending: list(&cur, None, &mut tree, ".", stop_after_files)?,
        top: None,
        rel: String::new(),
    }];
    loop {
        if tree.partial {
            return Ok(tree);
        }
        let Some(level) = levels.last_mut() else {
            return Ok(tree);
        };
        let Some(name) = level.pending.pop() else {
            levels.pop();
            let Some(parent) = levels.last() else {
                return Ok(tree);
            };
            let up = rustix::fs::openat(&cur, "..", flags, Mode::empty())
                .map_err(|_| MeasureError::Moved)?;
            if dir_id(&up, &parent.rel)? != parent.id {
                return Err(MeasureError::Moved);
            }
            cur = up;
            continue;
        };
        let top = level.top.clone().or_else(|| Some(name.as_bytes().to_vec()));
        let rel = join(&level.rel, &name);
        let child = match rustix::fs::openat(
            &cur,
            name.as_c_str(),
            flags | OFlags::NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // Gone, or no longer a directory, since the listing (which
            // counted it already).
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
            Err(errno) => return Err(MeasureError::Unreadable { rel, errno }),
        };
        let id = dir_id(&child, &rel)?;
        let pending = list(&child, top.as_deref(), &mut tree, &rel, stop_after_files)?;
        levels.push(Level {
            id,
            pending,
            top,
            rel,
        });
        cur = child;
    }
}

fn join(dir: &str, name: &CString) -> String {
    let name = String::from_utf8_lossy(name.as_bytes());
    if dir.is_empty() {
        name.into_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn dir_id(fd: &OwnedFd, rel: &str) -> Result<(u64, u64), MeasureError> {
    let st = rustix::fs::fstat(fd).map_err(|errno| MeasureError::Unreadable {
        rel: rel.to_owned(),
        errno,
    })?;
    Ok((st.st_dev, st.st_ino))
}

/// Count the entries of the directory `fd` into `tree` (under `top`, or
/// each under itself at the root) and return its subdirectories; stop
/// (marking the tree partial) once more than `stop_after_files` are counted.
fn list(
    fd: &OwnedFd,
    top: Option<&[u8]>,
    tree: &mut Tree,
    rel: &str,
    stop_after_files: Option<u64>,
) -> Result<Vec<CString>, MeasureError> {
    let unreadable = |errno| MeasureError::Unreadable {
        rel: rel.to_owned(),
        errno,
    };
    let dup = fd.try_clone().map_err(|e| {
        unreadable(Errno::from_raw_os_error(
            e.raw_os_error().unwrap_or(libc::EIO),
        ))
    })?;
    let dir = rustix::fs::Dir::new(dup).map_err(unreadable)?;
    let mut subdirs = Vec::new();
    for entry in dir {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let st = match rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(errno) => {
                return Err(MeasureError::Unreadable {
                    rel: join(rel, &name.to_owned()),
                    errno,
                });
            }
        };
        let usage = Usage {
            bytes: entry_bytes(&st),
            files: 1,
        };
        tree.total.add(usage);
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        // A top-level directory's share is what is inside it (what a walk
        // of that directory itself counts), not its own entry.
        if top.is_some() || !is_dir {
            let key = top.unwrap_or(name.to_bytes());
            match tree.by_top.get_mut(key) {
                Some(u) => u.add(usage),
                None => {
                    tree.by_top.insert(key.to_vec(), usage);
                }
            }
        }
        if is_dir {
            subdirs.push(name.to_owned());
        }
        if stop_after_files.is_some_and(|max| tree.total.files > max) {
            tree.partial = true;
            break;
        }
    }
    Ok(subdirs)
}

/// The share of the top-level entry `name` of a measured tree.
pub(super) fn share(tree: &Tree, name: &OsStr) -> Usage {
    tree.by_top
        .get(name.as_bytes())
        .copied()
        .unwrap_or_default()
}
