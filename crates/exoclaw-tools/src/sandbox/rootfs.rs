//! The sandbox's file system, built by its init in a private mount namespace
//! and entered with `pivot_root`:
//!
//! | path | what |
//! |---|---|
//! | `/usr`, `/bin`, `/sbin`, `/lib*` | the host's, read-only, nosuid, nodev (symlinks kept as symlinks) |
//! | `/etc` | a directory of the read-only root holding only [`ETC_ALLOW`] (bound read-only) and synthetic `passwd`, `group`, `hosts`, `hostname`, `nsswitch.conf`; no `shadow`, no `ssh/`, no `ssl/private`, no gateway config |
//! | `/dev` | `null`, `zero`, `full`, `random`, `urandom` bound from the host, `fd`/`stdin`/`stdout`/`stderr` symlinks, `/dev/shm` a size-capped tmpfs; no tty, no pts |
//! | `/proc` | a new proc of the sandbox's pid namespace, `/proc/sys` read-only |
//! | `/tmp` | a fresh size-capped tmpfs |
//! | `/workspace` | the user's workspace, read-write (idmapped when the gateway runs as root) |
//! | everything else | absent: the data dir, `/root`, `/home`, `/var`, `/run`, `/opt`, other workspaces |
//!
//! Every bind source is opened with `open_tree(OPEN_TREE_CLONE)` before the
//! new root's tmpfs is mounted over `/tmp`, so sources under the host's
//! `/tmp` (test workspaces) still resolve. The root tmpfs is remounted
//! read-only at the end.

use super::failure::Failure;
use super::spec::InitSpec;
use super::sys;
use rustix::fs::{Mode, OFlags, mkdir, open, readlink, symlink};
use rustix::mount::{
    MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags, mount,
    mount_change, move_mount, open_tree, unmount,
};
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Where the new root is assembled (in the init's private mount namespace,
/// over the host's `/tmp`, which exists on every Linux system).
const STAGE: &str = "/tmp";

/// Top-level system directories bound read-only (or re-created as symlinks
/// when they are symlinks on the host, as on merged-/usr systems).
const SYSTEM_DIRS: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Entries of the host's `/etc` that tools need and that hold no secret.
pub(crate) const ETC_ALLOW: &[&str] = &[
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "localtime",
    "timezone",
    "os-release",
    "debian_version",
    "mime.types",
    "protocols",
    "services",
    "python3",
    "python3.11",
    "python3.12",
    "python3.13",
    "perl",
    "terminfo",
    "magic",
    "magic.mime",
    "inputrc",
    "mtab",
];

/// Device nodes bound from the host.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

const PASSWD: &str = "root:x:0:0:root:/root:/usr/sbin/nologin\n\
sandbox:x:1000:1000:exoclaw sandbox:/workspace:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1 localhost exoclaw-sandbox\n::1 localhost ip6-localhost\n";
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n\
networks: files\nprotocols: files\nservices: files\n";
pub(crate) const HOSTNAME: &str = "exoclaw-sandbox";
/// Where the egress proxy's socket appears inside.
pub(crate) const PROXY_SOCKET: &str = "/run/exoclaw/egress.sock";

/// One thing to place in the new root.
enum Source {
    /// A detached mount tree (from `open_tree`), with attributes already set.
    Tree { fd: OwnedFd, is_dir: bool },
    /// A symlink with this target.
    Link(PathBuf),
}

fn fail(step: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(step, e.to_string())
}

const RO: u64 = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;

/// Open `host` as a detached tree with attributes `attr`, or read it as a
/// symlink. `Ok(None)` when it does not exist.
fn capture(host: &Path, attr: u64) -> Result<Option<Source>, Failure> {
    let step = format!("bind {}", host.display());
    let meta = match std::fs::symlink_metadata(host) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(&step, e)),
    };
    if meta.file_type().is_symlink() {
        let target = readlink(host, Vec::new()).map_err(|e| fail(&step, e))?;
        return Ok(Some(Source::Link(PathBuf::from(
            target.to_string_lossy().into_owned(),
        ))));
    }
    let fd = open_tree(
        rustix::fs::CWD,
        host,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| fail(&step, e))?;
    sys::mount_setattr(fd.as_fd(), attr, None).map_err(|e| fail(&step, e))?;
    Ok(Some(Source::Tree {
        fd,
        is_dir: meta.is_dir(),
    }))
}

fn mkdir_p(path: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(path).map_err(|e| fail(&format!("mkdir {}", path.display()), e))
}

/// Attach `source` at `dest` (a path under the stage).
fn place(source: Source, dest: &Path) -> Result<(), Failure> {
    let step = format!("attach {}", dest.display());
    if let Some(parent) = dest.parent() {
        mkdir_p(parent)?;
    }
    match source {
        Source::Link(target) => symlink(&target, dest).map_err(|e| fail(&step, e)),
        Source::Tree { fd, is_dir } => {
            if is_dir {
                mkdir(dest, Mode::from_raw_mode(0o755)).map_err(|e| fail(&step, e))?;
            } else {
                drop(
                    open(
                        dest,
                        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map_err(|e| fail(&step, e))?,
                );
            }
            move_mount(
                fd.as_fd(),
                "",
                rustix::fs::CWD,
                dest,
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
            )
            .map_err(|e| fail(&step, e))
        }
    }
}

fn staged(rel: &str) -> PathBuf {
    Path::new(STAGE).join(rel)
}

fn tmpfs(dest: &Path, options: &str, step: &str) -> Result<(), Failure> {
    mkdir_p(dest)?;
    mount(
        "tmpfs",
        dest,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        cstr(options)?.as_c_str(),
    )
    .map_err(|e| fail(step, e))
}

fn cstr(s: &str) -> Result<CString, Failure> {
    CString::new(s).map_err(|e| fail("mount options", e))
}

fn write_file(rel: &str, content: &str) -> Result<(), Failure> {
    std::fs::write(staged(rel), content).map_err(|e| fail(&format!("write /{rel}"), e))
}

/// Build the new root and `pivot_root` into it. `workspace` is the idmapped
/// tree prepared while the init was still root, if it was.
pub(crate) fn build(spec: &InitSpec, workspace: Option<OwnedFd>) -> Result<(), Failure> {
    mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(|e| fail("make mounts private", e))?;

    // 1. Open every source while the host's tree is still in place.
    let mut sources: Vec<(String, Source)> = Vec::new();
    for dir in SYSTEM_DIRS {
        if let Some(s) = capture(&Path::new("/").join(dir), RO)? {
            sources.push(((*dir).to_owned(), s));
        }
    }
    for name in ETC_ALLOW {
        if let Some(s) = capture(&Path::new("/etc").join(name), RO)? {
            sources.push((format!("etc/{name}"), s));
        }
    }
    for dev in DEVICES {
        let attr = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC;
        match capture(&Path::new("/dev").join(dev), attr)? {
            Some(s) => sources.push((format!("dev/{dev}"), s)),
            None => {
                return Err(fail(
                    "devices",
                    format!("/dev/{dev} is missing on the host"),
                ));
            }
        }
    }
    let workspace = match workspace {
        Some(fd) => Source::Tree { fd, is_dir: true },
        None => match capture(
            &spec.workspace,
            libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
        )? {
            Some(s @ Source::Tree { is_dir: true, .. }) => s,
            _ => return Err(fail("workspace", "the workspace is not a directory")),
        },
    };
    let proxy = match &spec.proxy {
        Some(p) => match capture(
            &p.socket,
            libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
        )? {
            Some(s @ Source::Tree { .. }) => Some(s),
            _ => {
                return Err(fail(
                    "egress proxy",
                    "the egress proxy socket does not exist",
                ));
            }
        },
        None => None,
    };

    // 2. The new root: a small tmpfs, read-only once assembled.
    mount(
        "exoclaw-root",
        STAGE,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        c"mode=0755,size=4m",
    )
    .map_err(|e| fail("root tmpfs", e))?;
    for (rel, source) in sources {
        place(source, &staged(&rel))?;
    }
    place(workspace, &staged("workspace"))?;
    if let Some(p) = proxy {
        place(p, &staged(PROXY_SOCKET.trim_start_matches('/')))?;
    }
    write_file("etc/passwd", PASSWD)?;
    write_file("etc/group", GROUP)?;
    write_file("etc/hosts", HOSTS)?;
    write_file("etc/hostname", &format!("{HOSTNAME}\n"))?;
    write_file("etc/nsswitch.conf", NSSWITCH)?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, staged(&format!("dev/{name}"))).map_err(|e| fail("devices", e))?;
    }
    let tmp = format!("mode=1777,size={}", spec.limits.tmp_bytes.max(4096));
    tmpfs(&staged("tmp"), &tmp, "tmp tmpfs")?;
    tmpfs(&staged("dev/shm"), &tmp, "shm tmpfs")?;
    mkdir_p(&staged("proc"))?;
    mount(
        "proc",
        staged("proc"),
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(|e| fail("proc", e))?;
    let sys = open_tree(
        rustix::fs::CWD,
        staged("proc/sys"),
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| fail("proc/sys read-only", e))?;
    sys::mount_setattr(sys.as_fd(), RO | libc::MOUNT_ATTR_NOEXEC, None)
        .map_err(|e| fail("proc/sys read-only", e))?;
    move_mount(
        sys.as_fd(),
        "",
        rustix::fs::CWD,
        staged("proc/sys"),
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| fail("proc/sys read-only", e))?;
    for hidden in &spec.hide {
        hide(hidden)?;
    }

    // 3. Enter it.
    std::env::set_current_dir(STAGE).map_err(|e| fail("pivot_root", e))?;
    rustix::process::pivot_root(".", ".").map_err(|e| fail("pivot_root", e))?;
    unmount(".", UnmountFlags::DETACH).map_err(|e| fail("detach the host root", e))?;
    std::env::set_current_dir("/").map_err(|e| fail("pivot_root", e))?;
    // Not recursive: only the root tmpfs itself; binds keep their own flags.
    rustix::mount::mount_remount(
        "/",
        MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
        "",
    )
    .map_err(|e| fail("read-only root", e))?;
    Ok(())
}

/// Cover `host` with an empty read-only tmpfs if a bound system directory
/// made it visible in the new root.
fn hide(host: &Path) -> Result<(), Failure> {
    let Ok(rel) = host.strip_prefix("/") else {
        return Ok(());
    };
    let inside = Path::new(STAGE).join(rel);
    if std::fs::symlink_metadata(&inside).is_err() {
        return Ok(());
    }
    mount(
        "exoclaw-hidden",
        &inside,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC | MountFlags::RDONLY,
        c"size=4k,mode=0000",
    )
    .map_err(|e| fail("hide the data dir", e))
}
