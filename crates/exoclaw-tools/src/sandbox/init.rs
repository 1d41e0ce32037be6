//! The sandbox init: the small program the gateway executes for every
//! sandboxed command (the `exoclaw-sandbox-init` binary, or the gateway's own
//! hidden subcommand; both call [`init_main`]). It is single-threaded until
//! the command runs, which is what makes its `fork`s sound.
//!
//! Three processes, each with one job:
//!
//! 1. **watcher** (started by the gateway, host pid namespace): reads the
//!    [`InitSpec`] from stdin (a unix socket), prepares the idmapped workspace
//!    and drops to an unprivileged host uid if it is root, creates the user
//!    and pid namespaces, forks the supervisor, then enforces the wall-clock
//!    limit and kills everything when the gateway goes away (its end of the
//!    socket closes) — the gateway kills only this process.
//! 2. **supervisor** (pid 1 of the new pid namespace, parent-death signal
//!    SIGKILL): new mount, network, ipc and uts namespaces, the new root
//!    (`rootfs.rs`), hostname, loopback, drops every capability, forks the
//!    command, reports `ready`, reaps orphans and reports the command's exit.
//!    When it exits the kernel kills every process left in the namespace.
//! 3. **command**: rlimits, Landlock, seccomp (`confine.rs`), then `execve`.
//!
//! Status goes back to the gateway as JSON lines on the socket ([`Event`]);
//! any setup failure is a `failed` event naming the step, and nothing runs.

use super::spec::{Event, InitSpec};
use super::sys::{self, Forked};
use super::{confine, rootfs};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::{Mode, OFlags, open};
use rustix::io::Errno;
use rustix::process::{
    Pid, PidfdFlags, Signal, WaitOptions, WaitStatus, pidfd_open, pidfd_send_signal, waitpid,
};
use rustix::thread::{Gid, Uid, UnshareFlags};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub(crate) use super::failure::{Failure, maybe_fail};

/// The uid and gid the command has inside its user namespace.
pub(crate) const INSIDE_ID: u32 = 1000;

/// The host uid and gid sandboxes run as when the gateway runs as root: an
/// id no host file or process should have. (When the gateway is not root,
/// sandboxes run as the gateway's own uid, with no capability outside.)
pub const ROOT_SANDBOX_HOST_ID: u32 = 0x7ffd_0000;

/// Exit code of the init when the sandbox could not be set up.
const EXIT_SETUP: u8 = 125;

fn fail(step: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(step, e.to_string())
}

/// The status socket (the init's stdin, duplicated).
pub(crate) struct Status(File);

impl Status {
    pub(crate) fn send(&self, event: &Event) {
        if let Ok(mut line) = serde_json::to_vec(event) {
            line.push(b'\n');
            // The gateway may be gone; nothing useful to do about it here.
            let _ = (&self.0).write_all(&line);
        }
    }
}

/// Entry point of the sandbox init binary.
pub fn init_main() -> ExitCode {
    let status = match rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3) {
        Ok(fd) => Status(File::from(fd)),
        Err(_) => return ExitCode::from(EXIT_SETUP),
    };
    match watch(&status) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            status.send(&Event::Failed {
                step: f.step,
                detail: f.detail,
            });
            ExitCode::from(EXIT_SETUP)
        }
    }
}

fn read_spec(status: &Status) -> Result<InitSpec, Failure> {
    // One line (the gateway writes no raw newline inside the JSON), read a
    // byte at a time: what follows it is the command's stdin, not ours.
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match (&status.0).read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => buf.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail("read the sandbox spec", e)),
        }
        if buf.len() > 1 << 20 {
            return Err(fail("read the sandbox spec", "longer than 1 MiB"));
        }
    }
    serde_json::from_slice(&buf).map_err(|e| fail("read the sandbox spec", e))
}

/// The watcher: everything up to the supervisor's fork, then the wait.
fn watch(status: &Status) -> Result<u8, Failure> {
    sys::cloexec_from_3().map_err(|e| fail("close inherited fds", e))?;
    let spec = read_spec(status)?;
    maybe_fail(&spec, "start")?;
    if !spec.stdin {
        let null = open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| fail("stdin", e))?;
        rustix::stdio::dup2_stdin(&null).map_err(|e| fail("stdin", e))?;
        drop(null);
    }

    let is_root = rustix::process::geteuid().is_root();
    let (uid, gid) = if is_root {
        (ROOT_SANDBOX_HOST_ID, ROOT_SANDBOX_HOST_ID)
    } else {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    };
    let workspace = if is_root {
        Some(idmapped_workspace(&spec.workspace, uid, gid)?)
    } else {
        if !spec.workspace.is_dir() {
            return Err(Failure::new(
                "workspace",
                "the workspace is not a directory",
            ));
        }
        None
    };
    if is_root {
        // The output pipes are the gateway's (root, 0600): hand them to the
        // sandbox's uid so `/dev/stdout` can be reopened inside.
        for fd in [rustix::stdio::stdout(), rustix::stdio::stderr()] {
            rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                .map_err(|e| fail("output pipes", e))?;
        }
        drop_root(uid, gid)?;
    }
    maybe_fail(&spec, "user namespace")?;
    sys::unshare_namespaces(UnshareFlags::NEWUSER | UnshareFlags::NEWPID)
        .map_err(|e| fail("user namespace", e))?;
    // Changing uid made this process non-dumpable, which makes its /proc
    // files root's; it must own them for the next three writes.
    let dumpable =
        |d| rustix::process::set_dumpable_behavior(d).map_err(|e| fail("user namespace", e));
    dumpable(rustix::process::DumpableBehavior::Dumpable)?;
    write_proc("/proc/self/setgroups", "deny")?;
    write_proc("/proc/self/uid_map", &format!("{INSIDE_ID} {uid} 1\n"))?;
    write_proc("/proc/self/gid_map", &format!("{INSIDE_ID} {gid} 1\n"))?;
    dumpable(rustix::process::DumpableBehavior::NotDumpable)?;

    let (alive_r, alive_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| fail("pipe", e))?;
    match sys::fork().map_err(|e| fail("fork the sandbox supervisor", e))? {
        Forked::Child => {
            drop(alive_w);
            let code = match supervise(&spec, status, &alive_r, workspace, uid) {
                Ok(code) => code,
                Err(f) => {
                    status.send(&Event::Failed {
                        step: f.step,
                        detail: f.detail,
                    });
                    i32::from(EXIT_SETUP)
                }
            };
            sys::exit_now(code)
        }
        Forked::Parent(pid) => {
            drop(alive_r);
            drop(workspace);
            let code = wait_supervisor(pid, status, Duration::from_millis(spec.timeout_ms));
            drop(alive_w);
            Ok(code)
        }
    }
}

fn write_proc(path: &str, content: &str) -> Result<(), Failure> {
    std::fs::write(path, content).map_err(|e| fail("user namespace", format!("{path}: {e}")))
}

/// Drop every privilege of host root for good: no groups, then gid, then uid.
fn drop_root(uid: u32, gid: u32) -> Result<(), Failure> {
    let step = "drop root";
    rustix::thread::set_thread_groups(&[]).map_err(|e| fail(step, e))?;
    let g = Gid::from_raw(gid);
    rustix::thread::set_thread_res_gid(g, g, g).map_err(|e| fail(step, e))?;
    // All three uids non-zero: no capability is left in the initial user
    // namespace, and none can be regained.
    let u = Uid::from_raw(uid);
    rustix::thread::set_thread_res_uid(u, u, u).map_err(|e| fail(step, e))?;
    if rustix::process::geteuid().is_root() {
        return Err(Failure::new(step, "still root after setresuid"));
    }
    Ok(())
}

/// The workspace as a detached mount whose owner appears as the sandbox's
/// host uid: the sandbox (not root on the host) can write it, and the files
/// it creates belong to the workspace's owner on disk.
fn idmapped_workspace(workspace: &Path, uid: u32, gid: u32) -> Result<OwnedFd, Failure> {
    let step = "idmap the workspace";
    let meta = std::fs::metadata(workspace).map_err(|e| {
        Failure::new(
            "workspace",
            match e.kind() {
                std::io::ErrorKind::NotFound => "the workspace does not exist".to_owned(),
                _ => e.to_string(),
            },
        )
    })?;
    if !meta.is_dir() {
        return Err(Failure::new(
            "workspace",
            "the workspace is not a directory",
        ));
    }
    let userns = mapping_namespace(meta.uid(), uid, meta.gid(), gid)?;
    let fd = rustix::mount::open_tree(
        rustix::fs::CWD,
        workspace,
        rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
            | rustix::mount::OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| fail(step, e))?;
    sys::mount_setattr(
        fd.as_fd(),
        libc::MOUNT_ATTR_IDMAP | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
        Some(userns.as_fd()),
    )
    .map_err(|e| {
        fail(
            step,
            format!("{e} (does the workspace's file system support idmapped mounts?)"),
        )
    })?;
    Ok(fd)
}

/// A user namespace mapping `owner` (uid and gid on disk) to the sandbox's
/// host ids, held by a short-lived child only long enough to open it.
fn mapping_namespace(
    owner_uid: u32,
    uid: u32,
    owner_gid: u32,
    gid: u32,
) -> Result<OwnedFd, Failure> {
    let step = "idmap the workspace";
    let flags = rustix::pipe::PipeFlags::CLOEXEC;
    let (ready_r, ready_w) = rustix::pipe::pipe_with(flags).map_err(|e| fail(step, e))?;
    let (release_r, release_w) = rustix::pipe::pipe_with(flags).map_err(|e| fail(step, e))?;
    match sys::fork().map_err(|e| fail(step, e))? {
        Forked::Child => {
            drop((ready_r, release_w));
            let code = match sys::unshare_namespaces(UnshareFlags::NEWUSER) {
                Ok(()) => {
                    let _ = rustix::io::write(&ready_w, b"1");
                    let mut b = [0u8; 1];
                    let _ = rustix::io::read(&release_r, &mut b);
                    0
                }
                Err(_) => 1,
            };
            sys::exit_now(code)
        }
        Forked::Parent(pid) => {
            drop((ready_w, release_r));
            let result = (|| {
                let mut b = [0u8; 1];
                match rustix::io::read(&ready_r, &mut b) {
                    Ok(1) => {}
                    _ => return Err(Failure::new(step, "cannot create a user namespace")),
                }
                let proc = format!("/proc/{}", pid.as_raw_nonzero());
                std::fs::write(format!("{proc}/uid_map"), format!("{owner_uid} {uid} 1\n"))
                    .map_err(|e| fail(step, e))?;
                std::fs::write(format!("{proc}/gid_map"), format!("{owner_gid} {gid} 1\n"))
                    .map_err(|e| fail(step, e))?;
                open(
                    format!("{proc}/ns/user").as_str(),
                    OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| fail(step, e))
            })();
            drop(release_w);
            let _ = waitpid(Some(pid), WaitOptions::empty());
            result
        }
    }
}

/// Wait for the supervisor; kill it at the deadline or when the gateway
/// closes its end of the status socket. Returns the init's exit code.
fn wait_supervisor(pid: Pid, status: &Status, timeout: Duration) -> u8 {
    let Ok(pidfd) = pidfd_open(pid, PidfdFlags::empty()) else {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
        return reap(pid, status);
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = pidfd_send_signal(&pidfd, Signal::KILL);
            let _ = reap(pid, status);
            status.send(&Event::TimedOut);
            return 124;
        }
        let ts = rustix::event::Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [
            PollFd::new(&pidfd, PollFlags::IN),
            PollFd::new(&status.0, PollFlags::empty()),
        ];
        match poll(&mut fds, Some(&ts)) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(_) => {
                let _ = pidfd_send_signal(&pidfd, Signal::KILL);
                return reap(pid, status);
            }
        }
        if !fds[0].revents().is_empty() {
            return reap(pid, status);
        }
        if fds[1]
            .revents()
            .intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL)
        {
            // The gateway is gone or cancelled the run.
            let _ = pidfd_send_signal(&pidfd, Signal::KILL);
            let _ = reap(pid, status);
            return 137;
        }
    }
}

fn reap(pid: Pid, status: &Status) -> u8 {
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Err(Errno::INTR) => continue,
            Ok(Some((_, st))) => return exit_code(st, status),
            _ => return EXIT_SETUP,
        }
    }
}

fn exit_code(st: WaitStatus, status: &Status) -> u8 {
    if let Some(code) = st.exit_status() {
        return u8::try_from(code).unwrap_or(EXIT_SETUP);
    }
    let signal = st.terminating_signal().unwrap_or(0);
    if signal != Signal::KILL.as_raw() {
        status.send(&Event::Failed {
            step: "sandbox supervisor".into(),
            detail: format!("killed by signal {signal}"),
        });
    }
    EXIT_SETUP
}

/// The supervisor, pid 1 of the sandbox's pid namespace.
fn supervise(
    spec: &InitSpec,
    status: &Status,
    alive: &OwnedFd,
    workspace: Option<OwnedFd>,
    host_uid: u32,
) -> Result<i32, Failure> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| fail("parent death signal", e))?;
    // The watcher may have died before the line above took effect; then its
    // end of `alive` is closed and there is nobody to report to.
    let mut fds = [PollFd::new(alive, PollFlags::IN)];
    if poll(
        &mut fds,
        Some(&rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }),
    )
    .unwrap_or(1)
        > 0
    {
        return Err(Failure::new("parent death signal", "the watcher is gone"));
    }
    maybe_fail(spec, "namespaces")?;
    sys::unshare_namespaces(
        UnshareFlags::NEWNS | UnshareFlags::NEWNET | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS,
    )
    .map_err(|e| fail("namespaces", e))?;
    maybe_fail(spec, "mounts")?;
    rootfs::build(spec, workspace)?;
    rustix::system::sethostname(rootfs::HOSTNAME.as_bytes()).map_err(|e| fail("hostname", e))?;
    sys::loopback_up().map_err(|e| fail("loopback", e))?;
    let listener = match &spec.proxy {
        Some(p) => Some(
            std::net::TcpListener::bind(("127.0.0.1", p.port))
                .map_err(|e| fail("egress proxy listener", e))?,
        ),
        None => None,
    };
    confine::drop_capabilities().map_err(|e| fail("drop capabilities", e))?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| fail("drop capabilities", e))?;
    rustix::thread::set_no_new_privs(true).map_err(|e| fail("no_new_privs", e))?;
    maybe_fail(spec, "confine")?;

    let (report_r, report_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| fail("pipe", e))?;
    let child = match sys::fork().map_err(|e| fail("fork the command", e))? {
        Forked::Child => {
            drop(report_r);
            drop(listener);
            confine::run(spec, report_w)
        }
        Forked::Parent(pid) => pid,
    };
    drop(report_w);
    let mut report = Vec::new();
    let _ = File::from(report_r).read_to_end(&mut report);
    let mut landlock = None;
    for line in report.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Event>(line) {
            Ok(Event::Ready { landlock: l, .. }) => landlock = Some(l),
            Ok(Event::Failed { step, detail }) => {
                let _ = rustix::process::kill_process(child, Signal::KILL);
                return Err(Failure { step, detail });
            }
            _ => {}
        }
    }
    let Some(landlock) = landlock else {
        let _ = rustix::process::kill_process(child, Signal::KILL);
        return Err(Failure::new("confine", "the command died during setup"));
    };
    status.send(&Event::Ready { host_uid, landlock });
    if let (Some(listener), Some(p)) = (listener, &spec.proxy) {
        super::forward::start(listener, Path::new(rootfs::PROXY_SOCKET), p.port);
    }
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, st))) if pid == child => {
                if let Some(code) = st.exit_status() {
                    status.send(&Event::Exited { code });
                    return Ok(0);
                }
                let signal = st.terminating_signal().unwrap_or(0);
                status.send(&Event::Signaled { signal });
                return Ok(0);
            }
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(fail("wait for the command", e)),
        }
    }
}
