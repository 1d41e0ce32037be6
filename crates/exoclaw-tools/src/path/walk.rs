//! The fallback for kernels without `openat2`: an fd-by-fd walk that emulates
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`. Every step is an
//! `openat(O_NOFOLLOW)` relative to a directory fd we hold, so a component
//! swapped for a symlink between two steps is seen as a symlink (`ELOOP` /
//! `ENOTDIR`), read with `readlinkat` and resolved by the same rules: an
//! absolute target is refused, a relative one is spliced into the remaining
//! components, and `..` pops our own stack of fds — never the kernel's `..` —
//! and is refused at the root. Magic links cannot be reached: they live in
//! `/proc`, which is only reachable through an absolute path.

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::collections::VecDeque;
use std::os::fd::{BorrowedFd, OwnedFd};

/// Linux's own limit on symlinks followed in one resolution.
const MAX_SYMLINKS: usize = 40;

/// Open `path` below `root` like `openat2(root, path, flags, mode,
/// RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` would.
pub(crate) fn open_beneath(
    root: BorrowedFd<'_>,
    path: &str,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    if path.starts_with('/') {
        return Err(Errno::XDEV);
    }
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut stack: Vec<OwnedFd> = vec![rustix::fs::openat(root, ".", dir_flags, Mode::empty())?];
    let mut queue: VecDeque<Vec<u8>> = split(path.as_bytes());
    // A trailing slash asks for a directory, as in the kernel.
    let flags = if path.ends_with('/') {
        flags | OFlags::DIRECTORY
    } else {
        flags
    };
    let mut links = 0usize;
    while let Some(comp) = queue.pop_front() {
        if comp == b".." {
            if stack.len() == 1 {
                return Err(Errno::XDEV);
            }
            stack.pop();
            continue;
        }
        let top = stack.last().ok_or(Errno::XDEV)?;
        let last = queue.is_empty();
        let (want, want_mode) = if last {
            (flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode)
        } else {
            (dir_flags, Mode::empty())
        };
        match rustix::fs::openat(top, comp.as_slice(), want, want_mode) {
            Ok(fd) => {
                // `O_PATH | O_NOFOLLOW` opens a symlink itself: follow it.
                if want.contains(OFlags::PATH) && is_symlink(&fd)? {
                    drop(fd);
                    follow(top, &comp, &mut queue, &mut links)?;
                    continue;
                }
                if last {
                    return Ok(fd);
                }
                stack.push(fd);
            }
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                // Maybe a symlink (`O_NOFOLLOW` refused it); else a real error.
                match rustix::fs::readlinkat(top, comp.as_slice(), Vec::new()) {
                    Ok(_) => follow(top, &comp, &mut queue, &mut links)?,
                    Err(_) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    // The path ended in `..` or was only `.`: open the directory we are at.
    let top = stack.last().ok_or(Errno::XDEV)?;
    rustix::fs::openat(
        top,
        ".",
        flags.difference(OFlags::CREATE | OFlags::EXCL),
        Mode::empty(),
    )
}

fn is_symlink(fd: &OwnedFd) -> Result<bool, Errno> {
    let st = rustix::fs::fstat(fd)?;
    Ok(FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// Splice the target of the symlink `comp` (in `dir`) in front of `queue`.
fn follow(
    dir: &OwnedFd,
    comp: &[u8],
    queue: &mut VecDeque<Vec<u8>>,
    links: &mut usize,
) -> Result<(), Errno> {
    *links += 1;
    if *links > MAX_SYMLINKS {
        return Err(Errno::LOOP);
    }
    let target = rustix::fs::readlinkat(dir, comp, Vec::new())?;
    let target = target.as_bytes();
    if target.first() == Some(&b'/') {
        return Err(Errno::XDEV);
    }
    let mut parts = split(target);
    // A link to a directory with a trailing slash still names that directory.
    parts.extend(queue.drain(..));
    *queue = parts;
    Ok(())
}

fn split(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|b| *b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .map(<[u8]>::to_vec)
        .collect()
}
