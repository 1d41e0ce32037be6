//! The seccomp filter of the sandboxed command: a deny list (EPERM) of the
//! system calls that reach kernel attack surface or undo the sandbox, built
//! with `seccompiler` (the Firecracker project's BPF compiler), preceded by
//! hand-written checks it cannot express: every x32 system call (number with
//! bit 30 set) is refused, and `clone3`/`openat2` answer ENOSYS so libc falls
//! back to `clone`/`openat`, whose arguments the filter can inspect (no new
//! namespaces; no set-uid or set-gid file modes).

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};
use std::collections::BTreeMap;

/// System calls refused outright.
const DENIED: &[libc::c_long] = &[
    // Tracing and other processes' memory.
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    libc::SYS_pidfd_getfd,
    // Mounts and namespaces, after setup.
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_setns,
    libc::SYS_unshare,
    // Kernel keyrings.
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    // Kernel attack surface rarely needed by tools.
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_fanotify_init,
    libc::SYS_lookup_dcookie,
    // Machine state.
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_vhangup,
    // `sandbox.cpus` pins the sandbox to a CPU set; it may not widen it.
    libc::SYS_sched_setaffinity,
];

#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[libc::c_long] = &[
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_uselib,
    libc::SYS_ustat,
    libc::SYS_sysfs,
    libc::SYS__sysctl,
    libc::SYS_modify_ldt,
];
#[cfg(not(target_arch = "x86_64"))]
const DENIED_ARCH: &[libc::c_long] = &[];

/// Namespace flags `clone` must not carry.
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// Calls that set a file's mode: `(number, mode argument, open-flags
/// argument)`. Setting set-user-ID or set-group-ID bits is refused: files the
/// sandbox creates in an idmapped workspace belong to root on disk, and must
/// never become set-uid-root programs for the host.
const SET_ID_SYSCALLS: &[(libc::c_long, u8, Option<u8>)] = &[
    (libc::SYS_fchmod, 1, None),
    (libc::SYS_fchmodat, 2, None),
    (libc::SYS_mknodat, 2, None),
    (libc::SYS_openat, 3, Some(2)),
];

#[cfg(target_arch = "x86_64")]
const SET_ID_SYSCALLS_ARCH: &[(libc::c_long, u8, Option<u8>)] = &[
    (libc::SYS_chmod, 1, None),
    (libc::SYS_fchmodat2, 2, None),
    (libc::SYS_mknod, 1, None),
    (libc::SYS_creat, 1, None),
    (libc::SYS_open, 2, Some(1)),
];
#[cfg(not(target_arch = "x86_64"))]
const SET_ID_SYSCALLS_ARCH: &[(libc::c_long, u8, Option<u8>)] = &[];

/// Rules matching a mode argument with a set-id bit (and, for `open`, only
/// when the call creates a file: the mode is ignored otherwise).
fn set_id_rules(mode: u8, flags: Option<u8>) -> Result<Vec<SeccompRule>, String> {
    let bits = [libc::S_ISUID as u64, libc::S_ISGID as u64];
    let creating: &[Option<u64>] = match flags {
        Some(_) => &[Some(libc::O_CREAT as u64), Some(libc::O_TMPFILE as u64)],
        None => &[None],
    };
    let mut rules = Vec::new();
    for bit in bits {
        for create in creating {
            let mut conditions = vec![cond(mode, SeccompCmpOp::MaskedEq(bit), bit)?];
            if let (Some(arg), Some(flag)) = (flags, create) {
                conditions.push(cond(arg, SeccompCmpOp::MaskedEq(*flag), *flag)?);
            }
            rules.push(SeccompRule::new(conditions).map_err(|e| e.to_string())?);
        }
    }
    Ok(rules)
}

/// `personality(2)` values that are harmless: query and plain Linux.
const PERSONALITY_ALLOWED: &[u64] = &[0, 0x0008, 0xffff_ffff];

const RET_ERRNO: u32 = 0x0005_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
}

/// Compile the filter for the running architecture.
pub(crate) fn program() -> Result<BpfProgram, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .chain(DENIED_ARCH)
        .map(|nr| (*nr, Vec::new()))
        .collect();
    // `clone` with namespace flags and `clone3` are handled in `prefix`.
    let personality = PERSONALITY_ALLOWED
        .iter()
        .map(|v| cond(0, SeccompCmpOp::Ne, *v))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(
        libc::SYS_personality,
        vec![SeccompRule::new(personality).map_err(|e| e.to_string())?],
    );
    let ioctl_tiocsti = SeccompRule::new(vec![
        SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::TIOCSTI)
            .map_err(|e| e.to_string())?,
    ])
    .map_err(|e| e.to_string())?;
    rules.insert(libc::SYS_ioctl, vec![ioctl_tiocsti]);
    for (nr, mode, flags) in SET_ID_SYSCALLS.iter().chain(SET_ID_SYSCALLS_ARCH) {
        rules.insert(*nr, set_id_rules(*mode, *flags)?);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let compiled: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    let mut program = prefix();
    program.extend(compiled);
    Ok(program)
}

/// Checks placed before seccompiler's program. They run before its
/// architecture check, which is harmless: they only ever refuse, and any
/// foreign architecture is then killed by seccompiler's own prologue.
fn prefix() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let stmt = |code, k| sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code, k, jt, jf| sock_filter { code, jt, jf, k };
    let errno = |e: i32| RET_ERRNO | (e as u32 & 0xffff);
    let nr = |n: libc::c_long| u32::try_from(n).unwrap_or(u32::MAX);
    // seccomp_data: nr at 0, arch at 4, ip at 8, args[i] at 16 + 8 * i; the
    // low 32 bits of args[0] on a little-endian machine are at offset 16.
    let clone_flags_low = 16;
    let namespaces = u32::try_from(CLONE_NAMESPACES).unwrap_or(u32::MAX);
    vec![
        stmt(LD_W_ABS, 0),
        // x32 system calls: refuse.
        jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(RET_K, errno(libc::EPERM)),
        // clone3 and openat2: flags and mode live in memory the filter
        // cannot read; ENOSYS makes libc fall back to clone and openat.
        jump(JEQ_K, nr(libc::SYS_clone3), 0, 1),
        stmt(RET_K, errno(libc::ENOSYS)),
        jump(JEQ_K, nr(libc::SYS_openat2), 0, 1),
        stmt(RET_K, errno(libc::ENOSYS)),
        // clone with a namespace flag: refuse.
        jump(JEQ_K, nr(libc::SYS_clone), 0, 3),
        stmt(LD_W_ABS, clone_flags_low),
        jump(JSET_K, namespaces, 0, 1),
        stmt(RET_K, errno(libc::EPERM)),
    ]
}
