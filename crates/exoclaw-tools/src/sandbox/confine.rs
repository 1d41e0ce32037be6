//! The last steps before the command runs, in the command's own process
//! (forked by the supervisor, inside every namespace and the new root): a new
//! session, cwd `/workspace`, CPU pinning, rlimits, Landlock, seccomp, and
//! `execve` with exactly the allowlisted environment. Landlock is best effort
//! (the kernel may lack it; `explain` reports it); everything else must
//! succeed or the command does not run.

use super::failure::Failure;
use super::spec::{Event, InitSpec, Limits, Task};
use super::{probe, seccomp, sys};
use landlock::{
    ABI, Access, AccessFs, BitFlags, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    Scope, path_beneath_rules,
};
use rustix::process::{Resource, Rlimit, setrlimit};
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;

/// The Landlock ABI whose access rights we request (best effort below it).
const LANDLOCK_ABI: ABI = ABI::V6;

fn fail(step: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(step, e.to_string())
}

fn send(report: &mut File, event: &Event) {
    if let Ok(mut line) = serde_json::to_vec(event) {
        line.push(b'\n');
        let _ = report.write_all(&line);
    }
}

/// Confine this process and run the task; never returns.
pub(crate) fn run(spec: &InitSpec, report: OwnedFd) -> ! {
    let mut report = File::from(report);
    let landlock = match confine(spec) {
        Ok(l) => l,
        Err(f) => {
            send(
                &mut report,
                &Event::Failed {
                    step: f.step,
                    detail: f.detail,
                },
            );
            sys::exit_now(126)
        }
    };
    send(
        &mut report,
        &Event::Ready {
            host_uid: 0,
            landlock: landlock.clone(),
        },
    );
    match &spec.task {
        Task::Probe(p) => {
            drop(report);
            sys::exit_now(probe::run(spec, p, &landlock))
        }
        Task::Command => {
            let Some((program, args)) = spec.argv.split_first() else {
                send(
                    &mut report,
                    &Event::Failed {
                        step: "exec".into(),
                        detail: "empty argv".into(),
                    },
                );
                sys::exit_now(127)
            };
            let err = std::process::Command::new(program)
                .args(args)
                .env_clear()
                .envs(spec.env.iter().map(|(k, v)| (k, v)))
                .exec();
            send(
                &mut report,
                &Event::Failed {
                    step: "exec".into(),
                    detail: format!("{program}: {err}"),
                },
            );
            sys::exit_now(127)
        }
    }
}

fn confine(spec: &InitSpec) -> Result<String, Failure> {
    rustix::process::setsid().map_err(|e| fail("session", e))?;
    std::env::set_current_dir("/workspace").map_err(|e| fail("cwd", e))?;
    pin_cpus(spec.cpus).map_err(|e| fail("cpu affinity", e))?;
    apply_limits(&spec.limits).map_err(|e| fail("rlimits", e))?;
    super::failure::maybe_fail(spec, "landlock")?;
    let landlock = landlock().map_err(|e| fail("landlock", e))?;
    let program = seccomp::program().map_err(|e| fail("seccomp", e))?;
    seccompiler::apply_filter(&program).map_err(|e| fail("seccomp", e))?;
    Ok(landlock)
}

/// Restrict the sandbox to `cpus` of the CPUs it may use, starting with the
/// one it runs on (moving elsewhere would wait for that CPU: the scheduler's
/// choice already spreads concurrent sandboxes). `sched_setaffinity` is then
/// denied by seccomp, so the command cannot widen it.
fn pin_cpus(cpus: u32) -> rustix::io::Result<()> {
    let allowed = rustix::thread::sched_getaffinity(None)?;
    let ids: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|c| allowed.is_set(*c))
        .collect();
    let want = usize::try_from(cpus).unwrap_or(usize::MAX);
    if want == 0 || want >= ids.len() {
        return Ok(());
    }
    let current = rustix::thread::sched_getcpu();
    let start = ids.iter().position(|c| *c == current).unwrap_or(0);
    let mut set = rustix::thread::CpuSet::new();
    for i in 0..want {
        set.set(ids[(start + i) % ids.len()]);
    }
    rustix::thread::sched_setaffinity(None, &set)
}

fn apply_limits(l: &Limits) -> rustix::io::Result<()> {
    let set = |r, v: u64| {
        setrlimit(
            r,
            Rlimit {
                current: Some(v),
                maximum: Some(v),
            },
        )
    };
    set(Resource::As, l.memory_bytes)?;
    // SIGXCPU at the soft limit, SIGKILL a little later.
    setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(l.cpu_sec),
            maximum: Some(l.cpu_sec.saturating_add(2)),
        },
    )?;
    set(Resource::Nproc, l.nproc)?;
    set(Resource::Nofile, l.nofile)?;
    set(Resource::Fsize, l.fsize_bytes)?;
    set(Resource::Core, 0)?;
    set(Resource::Memlock, 0)?;
    Ok(())
}

/// Read-only everywhere visible; read-write only in the workspace, `/tmp`
/// and `/dev/shm`; the usual device nodes usable; no signals or abstract
/// unix sockets outside the sandbox's own Landlock domain.
fn landlock() -> Result<String, landlock::RulesetError> {
    let abi = LANDLOCK_ABI;
    let all = AccessFs::from_all(abi);
    let devices: BitFlags<AccessFs> =
        AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
    let status = Ruleset::default()
        .handle_access(all)?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(["/workspace", "/tmp", "/dev/shm"], all))?
        .add_rules(path_beneath_rules(
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
            ],
            devices,
        ))?
        .restrict_self()?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "none",
    }
    .to_owned())
}

/// Empty every capability set of this process (they only ever held
/// capabilities inside the sandbox's user namespace).
pub(crate) fn drop_capabilities() -> rustix::io::Result<()> {
    use rustix::thread::{CapabilitySet, CapabilitySets};
    for cap in CapabilitySet::all().iter() {
        match rustix::thread::remove_capability_from_bounding_set(cap) {
            Ok(()) | Err(rustix::io::Errno::INVAL) => {}
            Err(e) => return Err(e),
        }
    }
    rustix::thread::clear_ambient_capability_set()?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )
}
