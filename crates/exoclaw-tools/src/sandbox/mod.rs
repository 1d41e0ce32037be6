//! The native Linux sandbox every `exec`/`process` command runs in (on by
//! default; no Docker, no setuid helper, no bubblewrap).
//!
//! # Design
//!
//! The gateway is multi-threaded, so it never forks into a half-built
//! sandbox: for each command it executes a small, single-threaded **init**
//! program ([`SandboxInit`]: the `exoclaw-sandbox-init` binary of this crate,
//! or the gateway binary's own hidden subcommand calling [`init_main`]) and
//! talks to it over a unix socket on its stdin: the spec goes in as JSON,
//! status comes back as JSON lines. The init (see `init.rs`) then
//!
//! - drops to an unprivileged host uid if it runs as root
//!   ([`ROOT_SANDBOX_HOST_ID`]; the workspace is idmapped so the sandbox can
//!   write it and files still belong to its owner on disk), so a sandboxed
//!   process is never host root, holds no capability outside its user
//!   namespace, and `RLIMIT_NPROC` applies (the kernel exempts uid 0);
//! - creates new user, pid, mount, network, ipc and uts namespaces (inside:
//!   uid/gid 1000, hostname `exoclaw-sandbox`, only `lo`);
//! - builds a new root (`rootfs.rs`: read-only system dirs, a minimal `/etc`
//!   and `/dev`, private `/proc` and `/tmp`, the workspace read-write at
//!   `/workspace`, the data dir absent) and `pivot_root`s into it;
//! - drops every capability, sets `no_new_privs`, and in the command's
//!   process applies rlimits, CPU pinning, Landlock (best effort: read-only
//!   everywhere but `/workspace`, `/tmp`, `/dev/shm`) and a seccomp deny list
//!   (`seccomp.rs`), then executes `/bin/sh -c <command>` with an allowlisted
//!   environment ([`command_env`]);
//! - kills the whole tree when the command exits (the pid namespace's init
//!   exits), at the wall-clock limit, or when the gateway drops the run.
//!
//! Any failing step is reported as [`SandboxError::Unavailable`] naming it
//! (`security.sandbox_unavailable` for tools): nothing ever falls back to
//! running on the host.
//!
//! # Limits without cgroups
//!
//! `memory_mb` is `RLIMIT_AS` per process (address space, not RSS: runtimes
//! that reserve large virtual ranges need a larger value); `max_pids` is
//! `RLIMIT_NPROC`, counted per sandbox because each has its own user
//! namespace (threads count; the init's own processes are added on top);
//! `cpus` pins the sandbox to that many CPUs with `sched_setaffinity`
//! (which seccomp then refuses), and CPU time is capped at `timeout` by
//! `RLIMIT_CPU`; files are capped by `RLIMIT_FSIZE`, `/tmp` and `/dev/shm`
//! by their tmpfs size.
//!
//! # Network
//!
//! None by default: the network namespace is empty. With `network_enabled`
//! and an [`EgressProxy::Unix`] socket, the socket is bind-mounted in and the
//! supervisor forwards `127.0.0.1:3128` to it (`forward.rs`); the command
//! gets `HTTP(S)_PROXY`. A TCP proxy address is refused for now (the
//! sandbox's network namespace cannot reach the host's loopback).

mod confine;
mod explain;
mod failure;
mod forward;
mod init;
mod launch;
mod probe;
mod rootfs;
mod seccomp;
mod spec;
mod sys;

pub use explain::{ExplainLine, explain};
pub use init::{ROOT_SANDBOX_HOST_ID, init_main};
pub use launch::{
    Capture, ExitStatus, Finished, Interactive, Isolation, OutputSink, Running, Sandbox,
};

use exoclaw_core::tool::ToolError;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// `agents.defaults.sandbox.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Every agent's commands run in the sandbox.
    #[default]
    All,
    /// Only agents other than the main one are sandboxed.
    NonMain,
    /// No sandbox: commands run on the host (reduced environment, cwd,
    /// timeout and output caps still apply). `explain` reports it loudly.
    Off,
}

/// Whether the agent running a command is the gateway's main agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentRole {
    Main,
    NonMain,
}

impl SandboxMode {
    /// Whether commands of an agent with `role` run in the sandbox.
    pub fn applies_to(self, role: AgentRole) -> bool {
        match self {
            Self::All => true,
            Self::NonMain => role == AgentRole::NonMain,
            Self::Off => false,
        }
    }
}

/// The gateway's egress proxy, as reachable from the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EgressProxy {
    /// A unix socket speaking HTTP proxy (CONNECT) — bridged into sandboxes.
    /// It must be connectable by the sandbox's host uid.
    Unix(PathBuf),
    /// A loopback TCP address; not bridged yet (spawning fails closed).
    Tcp(std::net::SocketAddr),
}

/// The effective sandbox for one command (`agents.defaults.sandbox.*` plus
/// the per-user paths).
#[derive(Clone, Debug)]
pub struct SandboxPolicy {
    pub mode: SandboxMode,
    pub network_enabled: bool,
    /// Where network traffic may go when `network_enabled`.
    pub proxy: Option<EgressProxy>,
    /// Address-space limit per process (`RLIMIT_AS`).
    pub memory_mb: u64,
    /// CPUs the sandbox is pinned to (0 = no pinning).
    pub cpus: u32,
    /// Wall-clock limit (and `RLIMIT_CPU`); `exec` may ask for less.
    pub timeout: Duration,
    /// Processes and threads of the command (`RLIMIT_NPROC`).
    pub max_pids: u32,
    pub max_open_files: u32,
    /// Largest file the command may write (`RLIMIT_FSIZE`).
    pub max_file_mb: u64,
    /// A tighter `RLIMIT_FSIZE` in bytes for this one command (`exec` sets
    /// it to what is left of the workspace quota); `None`: `max_file_mb`.
    pub max_file_bytes: Option<u64>,
    /// Size of the private `/tmp` (and `/dev/shm`).
    pub tmp_mb: u64,
    /// Bytes kept per output stream (head and tail; the middle is dropped).
    pub max_output_bytes: usize,
    /// Host path of this user's workspace: `/workspace` inside.
    pub workspace: PathBuf,
    /// The gateway's data dir (`EXOCLAW_HOME`): never visible inside.
    pub data_dir: PathBuf,
}

impl SandboxPolicy {
    /// The defaults of `agents.defaults.sandbox` for one workspace.
    pub fn new(workspace: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            mode: SandboxMode::All,
            network_enabled: false,
            proxy: None,
            memory_mb: 512,
            cpus: 1,
            timeout: Duration::from_secs(300),
            max_pids: 64,
            max_open_files: 256,
            max_file_mb: 256,
            max_file_bytes: None,
            tmp_mb: 64,
            max_output_bytes: 64 * 1024,
            workspace: workspace.into(),
            data_dir: data_dir.into(),
        }
    }
}

/// How to start the sandbox init: a program and the arguments that make it
/// run [`init_main`]. The binary passes its own path and hidden subcommand
/// (or the installed `exoclaw-sandbox-init`); this crate never guesses it.
#[derive(Clone, Debug)]
pub struct SandboxInit {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl SandboxInit {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }
}

/// Why a command could not be started.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// The sandbox could not be set up; nothing ran.
    #[error("sandbox unavailable at step {step:?}: {detail}")]
    Unavailable { step: String, detail: String },
    /// Sandbox off: the host command could not be started.
    #[error("cannot start the command: {0}")]
    Spawn(String),
}

impl SandboxError {
    pub(crate) fn unavailable(step: &str, detail: impl Into<String>) -> Self {
        Self::Unavailable {
            step: step.to_owned(),
            detail: detail.into(),
        }
    }

    /// `security.sandbox_unavailable` (naming the step) or `tool.failed`.
    pub fn to_tool_error(&self) -> ToolError {
        match self {
            Self::Unavailable { .. } => ToolError::new(
                "security.sandbox_unavailable",
                format!("{self}; the command did not run"),
            ),
            Self::Spawn(_) => ToolError::failed(self.to_string()),
        }
    }
}

/// `PATH` inside the sandbox (and for host commands with the sandbox off).
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin";

/// Port of the egress bridge inside the sandbox.
const PROXY_PORT: u16 = 3128;

/// Where a command runs, as far as its environment is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    Sandbox,
    Host,
}

impl Placement {
    /// Where an agent with `role` runs its commands under `policy`.
    pub fn of(policy: &SandboxPolicy, role: AgentRole) -> Self {
        if policy.mode.applies_to(role) {
            Self::Sandbox
        } else {
            Self::Host
        }
    }
}

/// The complete environment of a command: an allowlist, never anything
/// inherited from the gateway (no `EXOCLAW_*`, no provider key).
pub fn command_env(policy: &SandboxPolicy, placement: Placement) -> Vec<(String, String)> {
    let sandboxed = placement == Placement::Sandbox;
    let home = if sandboxed {
        "/workspace".to_owned()
    } else {
        policy.workspace.to_string_lossy().into_owned()
    };
    let mut env = vec![
        ("PATH".to_owned(), SANDBOX_PATH.to_owned()),
        ("HOME".to_owned(), home),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("LC_ALL".to_owned(), "C.UTF-8".to_owned()),
        ("TERM".to_owned(), "dumb".to_owned()),
        ("TMPDIR".to_owned(), "/tmp".to_owned()),
    ];
    if sandboxed {
        env.push(("USER".to_owned(), "sandbox".to_owned()));
        if policy.network_enabled && matches!(policy.proxy, Some(EgressProxy::Unix(_))) {
            let url = format!("http://127.0.0.1:{PROXY_PORT}");
            for name in [
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "ALL_PROXY",
                "http_proxy",
                "https_proxy",
                "all_proxy",
            ] {
                env.push((name.to_owned(), url.clone()));
            }
        }
    }
    env
}

/// Names that must never reach a command's environment.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("EXOCLAW_")
        || ["KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"]
            .iter()
            .any(|w| upper.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_applies_by_role() {
        assert!(SandboxMode::All.applies_to(AgentRole::Main));
        assert!(SandboxMode::NonMain.applies_to(AgentRole::NonMain));
        assert!(!SandboxMode::NonMain.applies_to(AgentRole::Main));
        assert!(!SandboxMode::Off.applies_to(AgentRole::NonMain));
    }

    #[test]
    fn env_is_an_allowlist_without_secrets() {
        let mut p = SandboxPolicy::new("/w", "/d");
        p.network_enabled = true;
        p.proxy = Some(EgressProxy::Unix("/run/egress.sock".into()));
        let env = command_env(&p, Placement::Sandbox);
        assert!(env.iter().all(|(k, _)| !is_secret_name(k)));
        assert!(
            env.iter()
                .any(|(k, v)| k == "HTTPS_PROXY" && v == "http://127.0.0.1:3128")
        );
        assert!(env.iter().any(|(k, v)| k == "HOME" && v == "/workspace"));
        assert!(is_secret_name("EXOCLAW_OPENAI_API_KEY"));
        assert!(is_secret_name("github_token"));
    }

    #[test]
    fn seccomp_filter_compiles() {
        let program = seccomp::program().expect("filter");
        assert!(program.len() > 40);
    }
}
