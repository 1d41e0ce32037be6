//! The sandbox test suite: escape probes that must fail inside the sandbox
//! (`escape.rs`), ordinary commands that must still work (`works.rs`), the
//! fail-closed setup (`closed.rs`), the `exec`/`process` tools through
//! the registry (`tools.rs`) and held to workspace quotas (`quota.rs`).
//! Every test builds real sandboxes with the `exoclaw-sandbox-init` binary;
//! they need Linux with user namespaces (CI runs them as root, which
//! exercises the drop-to-unprivileged path).

#![allow(
    clippy::disallowed_macros,
    reason = "tests and benchmarks print what they measure"
)]
mod closed;
mod escape;
mod quota;
mod tools;
mod works;

use exoclaw_tools::sandbox::{
    AgentRole, ExitStatus, Finished, Sandbox, SandboxInit, SandboxPolicy,
};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

/// A workspace and a data dir (with a `.env` holding a canary), both temp.
pub struct Fixture {
    pub workspace: TempDir,
    pub data: TempDir,
    pub sandbox: Sandbox,
    pub policy: SandboxPolicy,
}

pub const ENV_CANARY: &str = "canary-7f3a9c-do-not-leak";

impl Fixture {
    pub fn create() -> Self {
        let workspace = tempfile::tempdir().expect("workspace");
        let data = tempfile::tempdir().expect("data dir");
        std::fs::write(
            data.path().join(".env"),
            format!("EXOCLAW_OPENAI_API_KEY={ENV_CANARY}\n"),
        )
        .expect(".env");
        std::fs::write(data.path().join("config.json"), "{}").expect("config");
        let policy = SandboxPolicy::new(workspace.path(), data.path());
        Self {
            workspace,
            data,
            sandbox: sandbox(),
            policy,
        }
    }

    pub fn ws(&self) -> &Path {
        self.workspace.path()
    }

    pub async fn run(&self, command: &str) -> Finished {
        self.run_for(command, Duration::from_secs(20)).await
    }

    pub async fn run_for(&self, command: &str, timeout: Duration) -> Finished {
        self.sandbox
            .run(&self.policy, AgentRole::NonMain, command, timeout)
            .await
            .unwrap_or_else(|e| panic!("{command}: {e}"))
    }
}

pub fn init_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_exoclaw-sandbox-init"))
}

pub fn sandbox() -> Sandbox {
    Sandbox::new(SandboxInit::new(init_path()))
}

pub fn exited(f: &Finished) -> i32 {
    match f.status {
        ExitStatus::Exited(code) => code,
        other => panic!(
            "expected an exit, got {other:?}; stderr: {}",
            f.stderr.text()
        ),
    }
}

/// Host pids whose command line contains `marker`.
pub fn host_processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(pid);
            }
        }
    }
    found
}

/// Wait (briefly) until no host process mentions `marker`.
pub async fn assert_no_processes(marker: &str) {
    for _ in 0..50 {
        if host_processes_with(marker).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("processes left behind: {:?}", host_processes_with(marker));
}

/// A marker unique to this test run, for command lines and file names.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
