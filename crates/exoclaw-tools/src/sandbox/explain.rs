//! `exoclaw sandbox explain`: the effective sandbox of an agent, one line per
//! guarantee, each proved by a probe that runs inside a real sandbox built
//! exactly as a command's would be (`probe.rs`) rather than read from config.

use super::launch::{OutputSink, probe_spec};
use super::spec::{ProbeLine, ProbeSpec};
use super::{
    AgentRole, EgressProxy, Placement, Sandbox, SandboxMode, SandboxPolicy, command_env,
    is_secret_name,
};
use std::os::unix::fs::MetadataExt;

/// One guarantee and whether it holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExplainLine {
    pub guarantee: String,
    pub ok: bool,
    pub detail: String,
}

impl ExplainLine {
    fn new(guarantee: &str, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            guarantee: guarantee.to_owned(),
            ok,
            detail: detail.into(),
        }
    }
}

const NAMESPACES: &[&str] = &["user", "mnt", "pid", "net", "ipc", "uts"];

fn host_namespaces() -> Vec<(String, u64)> {
    NAMESPACES
        .iter()
        .filter_map(|n| {
            let m = std::fs::metadata(format!("/proc/self/ns/{n}")).ok()?;
            Some(((*n).to_owned(), m.ino()))
        })
        .collect()
}

/// Describe and probe the sandbox an agent with `role` gets under `policy`.
pub async fn explain(
    sandbox: &Sandbox,
    policy: &SandboxPolicy,
    role: AgentRole,
) -> Vec<ExplainLine> {
    let mut lines = Vec::new();
    let sandboxed = policy.mode.applies_to(role);
    let mode = match policy.mode {
        SandboxMode::All => "all",
        SandboxMode::NonMain => "non-main",
        SandboxMode::Off => "off",
    };
    if sandboxed {
        lines.push(ExplainLine::new(
            "sandbox",
            true,
            format!("mode {mode}: this agent's commands run in the native Linux sandbox"),
        ));
    } else {
        lines.push(ExplainLine::new(
            "sandbox",
            false,
            format!(
                "mode {mode}: this agent's commands run ON THE HOST as uid {} with no isolation \
                 (only the environment allowlist, cwd, timeout and output caps apply)",
                rustix::process::geteuid().as_raw()
            ),
        ));
    }
    lines.push(ExplainLine::new(
        "limits",
        true,
        format!(
            "timeout {}s, memory {} MiB (address space), {} pids, {} open files, files up to {} MiB, \
             /tmp {} MiB, {} cpu(s), output {} KiB per stream",
            policy.timeout.as_secs(),
            policy.memory_mb,
            policy.max_pids,
            policy.max_open_files,
            policy.max_file_mb,
            policy.tmp_mb,
            policy.cpus,
            policy.max_output_bytes / 1024
        ),
    ));
    lines.push(network_line(policy, sandboxed));
    if !sandboxed {
        let env = command_env(policy, Placement::Host);
        let leaked = env.iter().any(|(k, _)| is_secret_name(k));
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        lines.push(ExplainLine::new(
            "environment allowlist",
            !leaked,
            format!("only {}", names.join(", ")),
        ));
        return lines;
    }
    lines.extend(probe(sandbox, policy).await);
    lines
}

fn network_line(policy: &SandboxPolicy, sandboxed: bool) -> ExplainLine {
    match (&policy.proxy, policy.network_enabled, sandboxed) {
        (_, _, false) => ExplainLine::new("network", false, "the host's network, unrestricted"),
        (_, false, true) => {
            ExplainLine::new("network", true, "disabled: an empty network namespace")
        }
        (Some(EgressProxy::Unix(_)), true, true) => ExplainLine::new(
            "network",
            true,
            "only through the gateway's egress proxy (HTTP(S)_PROXY=http://127.0.0.1:3128)",
        ),
        (Some(EgressProxy::Tcp(_)), true, true) => ExplainLine::new(
            "network",
            false,
            "a TCP egress proxy cannot be bridged yet: commands fail closed",
        ),
        (None, true, true) => ExplainLine::new(
            "network",
            true,
            "network_enabled but no egress proxy configured: still no network",
        ),
    }
}

async fn probe(sandbox: &Sandbox, policy: &SandboxPolicy) -> Vec<ExplainLine> {
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
        Ok(l) => l,
        Err(e) => {
            return vec![ExplainLine::new(
                "probes",
                false,
                format!("cannot open a loopback listener: {e}"),
            )];
        }
    };
    let Ok(addr) = listener.local_addr() else {
        return vec![ExplainLine::new(
            "probes",
            false,
            "cannot read the listener's address",
        )];
    };
    let probe = ProbeSpec {
        host_listener: addr,
        data_dir: policy.data_dir.clone(),
        host_namespaces: host_namespaces(),
        max_pids: u64::from(policy.max_pids),
        memory_bytes: policy.memory_mb.saturating_mul(1 << 20),
    };
    let result = async {
        let spec = probe_spec(policy, probe)?;
        let running = sandbox.spawn_spec(&spec, 256 * 1024).await?;
        let isolation = running.isolation().clone();
        let sink = OutputSink::new(256 * 1024);
        let finished = running.finish(&sink).await?;
        Ok::<_, super::SandboxError>((isolation, finished))
    }
    .await;
    drop(listener);
    let (isolation, finished) = match result {
        Ok(r) => r,
        Err(e) => return vec![ExplainLine::new("sandbox setup", false, e.to_string())],
    };
    let mut lines = Vec::new();
    if let super::Isolation::Sandboxed { host_uid, .. } = isolation {
        lines.push(ExplainLine::new(
            "not root on the host",
            host_uid != 0,
            format!("sandboxed processes run as host uid {host_uid}"),
        ));
    }
    let text = finished.stdout.text();
    let mut seen = 0;
    for line in text.lines() {
        if let Ok(p) = serde_json::from_str::<ProbeLine>(line) {
            seen += 1;
            lines.push(ExplainLine::new(&p.guarantee, p.ok, p.detail));
        }
    }
    if seen == 0 {
        lines.push(ExplainLine::new(
            "probes",
            false,
            format!("the probes reported nothing ({:?})", finished.status),
        ));
    }
    lines
}
