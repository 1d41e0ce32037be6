//! The escape probes of `sandbox explain`, run by the sandbox init in place
//! of a command, in the command's process after it was confined exactly as a
//! command would be. Each probe tries what the sandbox must prevent and
//! prints one [`ProbeLine`] (JSON) on stdout.

use super::spec::{InitSpec, ProbeLine, ProbeSpec};
use super::sys::{self, Forked};
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

struct Out(Vec<ProbeLine>);

impl Out {
    fn line(&mut self, guarantee: &str, ok: bool, detail: impl Into<String>) {
        self.0.push(ProbeLine {
            guarantee: guarantee.to_owned(),
            ok,
            detail: detail.into(),
        });
    }
}

/// Run every probe; returns the process exit code.
pub(crate) fn run(spec: &InitSpec, probe: &ProbeSpec, landlock: &str) -> i32 {
    let mut out = Out(Vec::new());
    identity(&mut out);
    namespaces(&mut out, probe);
    network(&mut out, probe);
    writes(&mut out, probe);
    secrets(&mut out, spec, probe);
    seccomp(&mut out);
    out.line(
        "landlock",
        landlock != "none",
        match landlock {
            "full" => "enforced: read-only everywhere but /workspace, /tmp and /dev/shm",
            "partial" => "partly enforced (older kernel ABI)",
            _ => "not available on this kernel; mounts alone keep the file system read-only",
        },
    );
    pids(&mut out, probe.max_pids);
    memory(&mut out, probe.memory_bytes);
    let mut stdout = std::io::stdout().lock();
    for line in &out.0 {
        if let Ok(json) = serde_json::to_string(line) {
            let _ = writeln!(stdout, "{json}");
        }
    }
    let _ = stdout.flush();
    0
}

fn status_field(name: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(name)?
            .strip_prefix(':')
            .map(|v| v.trim().to_owned())
    })
}

fn identity(out: &mut Out) {
    let uid = rustix::process::getuid().as_raw();
    let caps = status_field("CapEff").unwrap_or_default();
    let no_caps = caps.chars().all(|c| c == '0') && !caps.is_empty();
    out.line(
        "unprivileged user",
        uid != 0 && no_caps,
        format!("uid {uid} inside a new user namespace, effective capabilities {caps}"),
    );
}

fn namespaces(out: &mut Out, probe: &ProbeSpec) {
    use std::os::unix::fs::MetadataExt;
    let mut same = Vec::new();
    for (name, host) in &probe.host_namespaces {
        match std::fs::metadata(format!("/proc/self/ns/{name}")) {
            Ok(m) if m.ino() != *host => {}
            _ => same.push(name.as_str()),
        }
    }
    let names: Vec<&str> = probe
        .host_namespaces
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    out.line(
        "namespaces",
        same.is_empty(),
        if same.is_empty() {
            format!("new {} namespaces", names.join(", "))
        } else {
            format!("shared with the gateway: {}", same.join(", "))
        },
    );
}

fn network(out: &mut Out, probe: &ProbeSpec) {
    let connect = TcpStream::connect_timeout(&probe.host_listener, Duration::from_secs(1));
    out.line(
        "no network: loopback",
        connect.is_err(),
        match connect {
            Ok(_) => "connected to a listener on the gateway's loopback".to_owned(),
            Err(e) => format!("connecting to the gateway's loopback fails: {e}"),
        },
    );
    let dns = ("example.com", 443).to_socket_addrs();
    out.line(
        "no network: dns",
        dns.is_err(),
        match dns {
            Ok(_) => "resolved example.com".to_owned(),
            Err(_) => "name resolution fails".to_owned(),
        },
    );
    let devices = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    let ifaces: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(str::trim))
        .collect();
    out.line(
        "no network: interfaces",
        ifaces.iter().all(|i| *i == "lo"),
        format!("interfaces: {}", ifaces.join(", ")),
    );
}

fn writes(out: &mut Out, probe: &ProbeSpec) {
    let name = format!("exoclaw-probe-{}", std::process::id());
    let mut targets: Vec<std::path::PathBuf> =
        ["/", "/etc", "/usr", "/usr/bin", "/proc/sys/kernel"]
            .iter()
            .map(|d| Path::new(d).join(&name))
            .collect();
    targets.push(probe.data_dir.join(&name));
    let mut written = Vec::new();
    for t in &targets {
        if std::fs::write(t, b"x").is_ok() {
            let _ = std::fs::remove_file(t);
            written.push(t.display().to_string());
        }
    }
    out.line(
        "read-only outside the workspace",
        written.is_empty(),
        if written.is_empty() {
            format!(
                "writes to /, /etc, /usr, /proc/sys and the data dir fail ({} tried)",
                targets.len()
            )
        } else {
            format!("could write: {}", written.join(", "))
        },
    );
    let probe_file = Path::new("/workspace").join(format!(".{name}"));
    let ok = std::fs::write(&probe_file, b"x").is_ok() && std::fs::remove_file(&probe_file).is_ok();
    out.line(
        "workspace writable",
        ok,
        if ok {
            "/workspace is writable"
        } else {
            "cannot write /workspace"
        },
    );
}

fn secrets(out: &mut Out, spec: &InitSpec, probe: &ProbeSpec) {
    let visible = std::fs::symlink_metadata(&probe.data_dir).is_ok();
    let env_file = std::fs::read(probe.data_dir.join(".env")).is_ok();
    out.line(
        "data dir invisible",
        !visible && !env_file,
        if visible {
            "the data dir path exists inside the sandbox".to_owned()
        } else {
            "the data dir and its .env do not exist inside".to_owned()
        },
    );
    let leaked: Vec<&str> = spec
        .env
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| super::is_secret_name(k))
        .collect();
    let names: Vec<&str> = spec.env.iter().map(|(k, _)| k.as_str()).collect();
    out.line(
        "environment allowlist",
        leaked.is_empty(),
        if leaked.is_empty() {
            format!("only {}", names.join(", "))
        } else {
            format!("secret-looking variables: {}", leaked.join(", "))
        },
    );
}

fn seccomp(out: &mut Out) {
    let mode = status_field("Seccomp").unwrap_or_default();
    let nnp = status_field("NoNewPrivs").unwrap_or_default();
    let unshare = sys::unshare_namespaces(rustix::thread::UnshareFlags::NEWUSER);
    out.line(
        "seccomp",
        mode == "2" && nnp == "1" && unshare.is_err(),
        format!(
            "filter mode {mode}, no_new_privs {nnp}, unshare(CLONE_NEWUSER) {}",
            match unshare {
                Ok(()) => "succeeded".to_owned(),
                Err(e) => format!("refused: {e}"),
            }
        ),
    );
}

fn pids(out: &mut Out, max_pids: u64) {
    let Ok((hold_r, hold_w)) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) else {
        out.line("pids limit", false, "cannot create a pipe");
        return;
    };
    let mut children = 0u64;
    let mut error = None;
    while children < max_pids + 32 {
        match sys::fork() {
            Ok(Forked::Child) => {
                drop(hold_w);
                let mut b = [0u8; 1];
                let _ = rustix::io::read(&hold_r, &mut b);
                sys::exit_now(0)
            }
            Ok(Forked::Parent(_)) => children += 1,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    drop(hold_w);
    while rustix::process::wait(rustix::process::WaitOptions::empty()).is_ok() {}
    out.line(
        "pids limit",
        error.is_some() && children <= max_pids,
        match error {
            Some(e) => format!("fork refused after {children} processes ({e}); limit {max_pids}"),
            None => format!("{children} processes forked without hitting the limit {max_pids}"),
        },
    );
}

fn memory(out: &mut Out, memory_bytes: u64) {
    let want = memory_bytes.saturating_add(64 << 20);
    // A mapping straight from the kernel: what any program in the sandbox
    // gets, not what this process's allocator already holds.
    let refused = !sys::can_map(usize::try_from(want).unwrap_or(usize::MAX));
    out.line(
        "memory limit",
        refused,
        if refused {
            format!(
                "allocating {} MiB is refused (limit {} MiB)",
                want >> 20,
                memory_bytes >> 20
            )
        } else {
            format!("allocated {} MiB over the limit", want >> 20)
        },
    );
}
