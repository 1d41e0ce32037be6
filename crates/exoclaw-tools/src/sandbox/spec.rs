//! What the gateway tells the sandbox init (one JSON document on the init's
//! stdin, a unix socket) and what the init answers on the same socket (JSON
//! lines, [`Event`]). Both sides are this crate, so the shapes are private to
//! it and free to change with it.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything the init needs to build one sandbox and run one task in it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct InitSpec {
    /// Program and arguments run inside (`/bin/sh -c <command>`).
    pub argv: Vec<String>,
    /// The complete environment of the command (already an allowlist).
    pub env: Vec<(String, String)>,
    /// Host path of the workspace, mounted read-write at `/workspace`.
    pub workspace: PathBuf,
    /// Host paths that must not be visible even if a system directory that is
    /// bound contains them (the data dir).
    pub hide: Vec<PathBuf>,
    pub limits: Limits,
    /// Wall-clock limit; the init kills the whole sandbox when it passes.
    pub timeout_ms: u64,
    /// Pin the sandbox to this many CPUs (`sandbox.cpus`).
    pub cpus: u32,
    /// `Some` when network is enabled: the egress proxy bridged in.
    pub proxy: Option<ProxySpec>,
    pub task: Task,
    /// Fail on purpose at the named setup step (tests of the fail-closed path).
    #[serde(default)]
    pub fail_at: Option<String>,
    /// The command reads what the gateway writes on the status socket after
    /// the spec line (a long-lived stdio server); else its stdin is
    /// `/dev/null`.
    #[serde(default)]
    pub stdin: bool,
}

/// Resource limits applied with `setrlimit` to the command.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Limits {
    pub memory_bytes: u64,
    pub cpu_sec: u64,
    pub nproc: u64,
    pub nofile: u64,
    pub fsize_bytes: u64,
    pub tmp_bytes: u64,
}

/// The egress proxy as the init reaches it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ProxySpec {
    /// Host path of the proxy's unix socket; bind-mounted into the sandbox.
    pub socket: PathBuf,
    /// Loopback port the in-sandbox forwarder listens on.
    pub port: u16,
}

/// What runs once the sandbox is built.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Task {
    /// Execute `argv`.
    Command,
    /// Run the built-in escape probes of `sandbox explain` instead.
    Probe(ProbeSpec),
}

/// Inputs of the probes that only the host side knows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ProbeSpec {
    /// A TCP listener the host opened on loopback: connecting must fail.
    pub host_listener: SocketAddr,
    /// The gateway's data dir (host path): must be invisible.
    pub data_dir: PathBuf,
    /// `(name, inode)` of the gateway's own namespaces: each must differ.
    pub host_namespaces: Vec<(String, u64)>,
    pub max_pids: u64,
    pub memory_bytes: u64,
}

/// A status line from the init to the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// The sandbox is built and the command was executed.
    Ready {
        /// Host uid the sandboxed processes run as.
        host_uid: u32,
        /// Landlock enforcement: `full`, `partial` or `none`.
        landlock: String,
    },
    /// Setup failed at `step`; nothing was run.
    Failed {
        step: String,
        detail: String,
    },
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    /// The wall-clock limit passed; the whole sandbox was killed.
    TimedOut,
}

/// One probe result printed by the init in probe mode (stdout, JSON lines).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ProbeLine {
    pub guarantee: String,
    pub ok: bool,
    pub detail: String,
}
