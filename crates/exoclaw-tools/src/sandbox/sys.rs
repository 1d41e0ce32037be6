//! The few raw system calls the sandbox init needs that `rustix` does not
//! wrap safely: `fork`, `_exit`, `mount_setattr`, marking inherited fds
//! close-on-exec, and bringing the loopback interface up. Each `unsafe` block
//! is the smallest item with its own `SAFETY:` argument; nothing here is used
//! outside the init process (`init.rs`, and the probes it runs), which is
//! single-threaded. Also `can_map`, the memory-limit probe's raw `mmap`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `mount_setattr(2)` has the same number on every architecture (the
/// syscall tables were unified before it was added, in Linux 5.12).
const SYS_MOUNT_SETATTR: libc::c_long = 442;

pub(crate) enum Forked {
    Child,
    Parent(rustix::process::Pid),
}

/// `fork(2)`.
///
/// Callers must be single-threaded: the init never starts a thread, so the
/// child inherits a consistent copy of every lock and allocator state.
#[allow(unsafe_code)]
pub(crate) fn fork() -> io::Result<Forked> {
    // SAFETY: the sandbox init is a single-threaded process (its `main` spawns
    // no thread and links no library that does), so after fork the child's
    // copy of the address space has no lock held by a thread that no longer
    // exists; the child may call any function, not only async-signal-safe ones.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => rustix::process::Pid::from_raw(pid)
            .map(Forked::Parent)
            .ok_or_else(|| io::Error::other("fork returned an invalid pid")),
    }
}

/// `_exit(2)`: leave a forked child without running exit handlers or
/// flushing buffers that belong to the parent's copy.
#[allow(unsafe_code)]
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes a plain integer and never returns; it touches no
    // memory of this process.
    unsafe { libc::_exit(code) }
}

/// Set mount attributes on a detached or attached mount tree (`fd` from
/// `open_tree`), recursively, optionally idmapping it with `userns`.
#[allow(unsafe_code)]
pub(crate) fn mount_setattr(
    fd: BorrowedFd<'_>,
    set: u64,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.map_or(0, |u| u64::try_from(u.as_raw_fd()).unwrap_or(0)),
    };
    let flags = libc::AT_EMPTY_PATH | libc::AT_RECURSIVE;
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` is a
    // live `mount_attr` whose exact size is passed, and the kernel only reads
    // from both during the call.
    let rc = unsafe {
        libc::syscall(
            SYS_MOUNT_SETATTR,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &raw const attr,
            size_of::<libc::mount_attr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Mark every fd from 3 up close-on-exec, so nothing the init inherited by
/// accident reaches the command.
#[allow(unsafe_code)]
pub(crate) fn cloexec_from_3() -> io::Result<()> {
    // SAFETY: `close_range` with CLOSE_RANGE_CLOEXEC only sets a flag on fds
    // of this process; it takes integers and touches no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bring `lo` up in the current (new, empty) network namespace.
#[allow(unsafe_code)]
pub(crate) fn loopback_up() -> io::Result<()> {
    use rustix::net::{AddressFamily, SocketType, socket};
    let sock = socket(AddressFamily::INET, SocketType::DGRAM, None)?;
    let mut name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (d, s) in name.iter_mut().zip(b"lo") {
        *d = libc::c_char::try_from(*s).unwrap_or(0);
    }
    let mut req = libc::ifreq {
        ifr_name: name,
        ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_flags: 0 },
    };
    // SAFETY: `req` is a valid, initialised `ifreq` that outlives the call;
    // SIOCGIFFLAGS writes only its `ifru_flags` member.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &raw mut req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS just initialised the `ifru_flags` member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &raw const req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `unshare(2)` restricted to namespace flags.
#[allow(unsafe_code)]
pub(crate) fn unshare_namespaces(flags: rustix::thread::UnshareFlags) -> io::Result<()> {
    use rustix::thread::UnshareFlags as F;
    let namespaces = F::NEWNS | F::NEWUTS | F::NEWIPC | F::NEWUSER | F::NEWPID | F::NEWNET;
    if !namespaces.contains(flags) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: rustix marks `unshare` unsafe because CLONE_FILES and CLONE_FS
    // can invalidate fds and paths the program holds; only namespace flags
    // pass the check above, and those change no memory or fd of this process.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(io::Error::from)
}

/// Whether the kernel grants a private anonymous mapping of `len` bytes
/// (unmapped again at once): the address-space limit's own verdict, whatever
/// allocator the process links (mimalloc may serve a large request from
/// address space it reserved before the limit was set).
#[allow(unsafe_code)]
pub(crate) fn can_map(len: usize) -> bool {
    // SAFETY: a new anonymous private mapping at an address the kernel
    // chooses aliases no memory of ours; it is never read or written, and it
    // is unmapped with exactly the pointer and length `mmap` returned.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return false;
        }
        libc::munmap(p, len);
        true
    }
}

#[cfg(test)]
mod tests {
    /// The allowed side of the memory-limit probe (the refused side is
    /// `sandbox_explain_probes_every_guarantee`, under a real limit): without
    /// a limit in the way the mapping is granted, so a refusal under the
    /// sandbox is the limit's doing, not a broken probe.
    #[test]
    fn can_map_grants_a_mapping_when_no_limit_is_in_the_way() {
        assert!(super::can_map(64 << 20));
    }
}
