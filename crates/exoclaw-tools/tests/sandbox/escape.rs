//! Escape probes: each tries something the sandbox must prevent, from inside
//! a real sandbox, and checks the host afterwards.

use crate::{ENV_CANARY, Fixture, assert_no_processes, exited, unique};
use exoclaw_tools::sandbox::{AgentRole, ExitStatus, Sandbox, SandboxInit};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// A host path removed when the test ends, pass or fail.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn writes_outside_the_workspace_fail_even_where_permissions_allow() {
    let f = Fixture::create();
    // World-writable on the host: only the sandbox can stop these writes.
    std::fs::set_permissions(f.data.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let host_tmp = std::env::temp_dir().join(unique("host-marker"));
    std::fs::write(&host_tmp, "host").unwrap();
    std::fs::set_permissions(&host_tmp, std::fs::Permissions::from_mode(0o666)).unwrap();
    // A world-writable directory under /usr (only root can create one).
    let usr_dir =
        RemoveOnDrop(std::path::Path::new("/usr/local/share").join(unique("exoclaw-open")));
    let usr_target = match std::fs::create_dir_all(&usr_dir.0) {
        Ok(()) => {
            std::fs::set_permissions(&usr_dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
            format!("{}/x", usr_dir.0.display())
        }
        Err(_) => "/usr/x".to_owned(),
    };

    let data = f.data.path().display();
    let script = format!(
        "for p in /etc/x /usr/x /x /bin/x {usr_target} {data}/x {data}/.env {tmp}; do \
           if echo pwned > \"$p\" 2>/dev/null; then echo \"WROTE $p\"; fi; done; \
         touch /proc/sys/kernel/hostname 2>/dev/null && echo WROTE-proc; echo done",
        tmp = host_tmp.display(),
    );
    let out = f.run(&script).await;
    let stdout = out.stdout.text();
    // The private /tmp makes the host marker's path writable inside, but it
    // is not the host's file.
    let wrote: Vec<&str> = stdout.lines().filter(|l| l.starts_with("WROTE")).collect();
    assert!(
        wrote
            .iter()
            .all(|l| l.ends_with(&*host_tmp.to_string_lossy())),
        "{wrote:?}"
    );
    assert!(stdout.contains("done"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&host_tmp).unwrap(), "host");
    assert!(!f.data.path().join("x").exists());
    assert!(
        std::fs::read_to_string(f.data.path().join(".env"))
            .unwrap()
            .contains(ENV_CANARY)
    );
    if usr_dir.0.exists() {
        let entries = std::fs::read_dir(&usr_dir.0).unwrap().count();
        assert_eq!(entries, 0, "wrote under /usr");
    }
    assert!(!std::path::Path::new("/etc/x").exists() && !std::path::Path::new("/x").exists());
    std::fs::remove_file(&host_tmp).unwrap();
}

#[tokio::test]
async fn the_data_dir_and_its_env_are_invisible() {
    let f = Fixture::create();
    let data = f.data.path().display();
    let out = f
        .run(&format!(
            "cat {data}/.env; ls {data}; ls -a /; cat /etc/shadow; ls /root /home /var /run 2>&1; \
             grep -rs {ENV_CANARY} /etc /tmp /workspace /proc/self/environ; echo end"
        ))
        .await;
    let all = format!("{}{}", out.stdout.text(), out.stderr.text());
    assert!(!all.contains(ENV_CANARY), "{all}");
    assert!(all.contains("No such file or directory"), "{all}");
    assert!(out.stdout.text().contains("end"));
}

/// Runs in a child test process that has a provider key in its environment
/// (set with `Command::env` by the parent test below, never `set_var`).
#[tokio::test]
async fn child_env_probe() {
    #[expect(
        clippy::disallowed_methods,
        reason = "the test checks its own environment"
    )]
    let Ok(key) = std::env::var("EXOCLAW_OPENAI_API_KEY") else {
        return; // Not the child: nothing to do.
    };
    assert_eq!(key, ENV_CANARY);
    let f = Fixture::create();
    let out = f
        .run("env; cat /proc/1/environ /proc/self/environ | tr '\\0' '\\n'")
        .await;
    println!("SANDBOX-ENV-BEGIN\n{}\nSANDBOX-ENV-END", out.stdout.text());
}

#[tokio::test]
async fn a_provider_key_in_the_gateway_environment_never_reaches_the_command() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "escape::child_env_probe",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EXOCLAW_OPENAI_API_KEY", ENV_CANARY)
        .env("EXOCLAW_HOME", "/srv/exoclaw")
        .env("ANTHROPIC_API_KEY", ENV_CANARY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = stdout
        .split("SANDBOX-ENV-BEGIN")
        .nth(1)
        .and_then(|s| s.split("SANDBOX-ENV-END").next())
        .unwrap_or_else(|| panic!("child printed no env: {stdout}"));
    assert!(env.contains("HOME=/workspace"), "{env}");
    assert!(!env.contains(ENV_CANARY), "{env}");
    assert!(!env.contains("EXOCLAW_"), "{env}");
}

#[tokio::test]
async fn a_loopback_listener_on_the_host_is_unreachable() {
    let f = Fixture::create();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "python3 -c 'import socket,sys\n\
s=socket.socket(); s.settimeout(2)\n\
try:\n  s.connect((\"127.0.0.1\",{port})); print(\"CONNECTED\")\n\
except OSError as e: print(\"refused\", e)\n\
try:\n  socket.getaddrinfo(\"example.com\",443); print(\"RESOLVED\")\n\
except OSError as e: print(\"no dns\", e)'; cat /proc/net/dev"
    );
    let out = f.run(&script).await;
    let stdout = out.stdout.text();
    assert!(
        stdout.contains("refused") && stdout.contains("no dns"),
        "{stdout}{}",
        out.stderr.text()
    );
    assert!(
        !stdout.contains("CONNECTED") && !stdout.contains("RESOLVED"),
        "{stdout}"
    );
    let ifaces: Vec<&str> = stdout
        .lines()
        .skip(4)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{stdout}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "the listener saw a connection");
}

#[tokio::test]
async fn a_fork_bomb_stops_at_the_pids_limit() {
    let mut f = Fixture::create();
    f.policy.max_pids = 16;
    let marker = unique("forkbomb").replace('-', "_");
    let script = format!(
        "python3 -c '
import os, time, errno
# {marker}
n = 0
try:
    for i in range(200):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as e:
    print(\"refused\", errno.errorcode[e.errno])
print(\"forked\", n, \"procs\", len([p for p in os.listdir(\"/proc\") if p.isdigit()]))
'"
    );
    let started = Instant::now();
    let out = f.run_for(&script, Duration::from_secs(20)).await;
    let stdout = out.stdout.text();
    assert!(
        stdout.starts_with("refused EAGAIN\n"),
        "{stdout}{}",
        out.stderr.text()
    );
    let forked: u32 = stdout
        .split_whitespace()
        .skip_while(|w| *w != "forked")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    // The command's whole tree is 16 processes: python and 15 children.
    assert!((10..16).contains(&forked), "{stdout}");
    // The sandbox ending killed every child, and this process can still fork.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_no_processes(&marker).await;
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
}

#[tokio::test]
async fn memory_over_the_limit_is_refused() {
    let mut f = Fixture::create();
    f.policy.memory_mb = 256;
    let out = f
        .run("python3 -c 'b = bytearray(600 * 1024 * 1024); print(\"ALLOCATED\")'; echo rc=$?")
        .await;
    let stdout = out.stdout.text();
    assert!(!stdout.contains("ALLOCATED"), "{stdout}");
    assert!(
        out.stderr.text().contains("MemoryError"),
        "{}",
        out.stderr.text()
    );
    assert!(stdout.contains("rc=1"), "{stdout}");
}

#[tokio::test]
async fn the_timeout_kills_the_whole_tree_quickly() {
    let f = Fixture::create();
    let a = format!("60.{}", std::process::id() % 1000);
    let out = f
        .run_for(
            &format!("sleep {a}1 & (sleep {a}2 &); sleep {a}3"),
            Duration::from_secs(1),
        )
        .await;
    assert_eq!(out.status, ExitStatus::TimedOut);
    assert!(out.duration < Duration::from_secs(4), "{:?}", out.duration);
    for n in 1..=3 {
        assert_no_processes(&format!("sleep {a}{n}")).await;
    }
}

#[tokio::test]
async fn output_is_capped_with_a_marker() {
    let mut f = Fixture::create();
    f.policy.max_output_bytes = 1000;
    let out = f.run("yes | head -c 1000000; echo done >&2").await;
    assert_eq!(exited(&out), 0);
    assert!(out.stdout.is_truncated());
    assert_eq!(out.stdout.total(), 1_000_000);
    let text = out.stdout.text();
    assert!(
        text.len() < 1100 && text.contains("bytes of output dropped"),
        "{}",
        text.len()
    );
    assert_eq!(out.stderr.text(), "done\n");
}

#[tokio::test]
async fn sandboxed_processes_are_not_root_on_the_host_and_hold_no_capabilities() {
    let f = Fixture::create();
    let out = f
        .run(
            "id -u; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; \
              cat /proc/self/uid_map; unshare -U true 2>&1 || echo unshare-refused; hostname",
        )
        .await;
    let stdout = out.stdout.text();
    assert!(stdout.starts_with("1000\n"), "{stdout}");
    assert!(stdout.contains("CapEff:\t0000000000000000"), "{stdout}");
    assert!(stdout.contains("CapBnd:\t0000000000000000"), "{stdout}");
    assert!(
        stdout.contains("NoNewPrivs:\t1") && stdout.contains("Seccomp:\t2"),
        "{stdout}"
    );
    assert!(stdout.contains("unshare-refused"), "{stdout}");
    assert!(stdout.contains("exoclaw-sandbox"), "{stdout}");
    // The host uid behind uid 1000 is never 0.
    let map = stdout
        .lines()
        .find(|l| l.split_whitespace().count() == 3 && l.trim_start().starts_with("1000"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let host: u32 = map.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_ne!(host, 0, "{map}");
}

#[tokio::test]
async fn set_id_bits_cannot_be_set_on_workspace_files() {
    let f = Fixture::create();
    let out = f
        .run(
            "cp /bin/true t; chmod u+s t 2>&1; chmod g+s t 2>&1; chmod 755 t && echo plain-chmod-ok; \
             python3 -c 'import os; os.close(os.open(\"s\", os.O_CREAT | os.O_WRONLY, 0o4755))' 2>&1 | tail -1; \
             ls -l t s 2>&1",
        )
        .await;
    let stdout = out.stdout.text();
    assert!(stdout.contains("plain-chmod-ok"), "{stdout}");
    assert!(stdout.contains("Operation not permitted"), "{stdout}");
    use std::os::unix::fs::MetadataExt;
    let mode = std::fs::metadata(f.ws().join("t")).unwrap().mode();
    assert_eq!(mode & 0o6000, 0, "{mode:o}");
    assert!(!f.ws().join("s").exists(), "{stdout}");
}

#[tokio::test]
async fn a_missing_init_fails_closed() {
    let f = Fixture::create();
    let sandbox = Sandbox::new(SandboxInit::new("/nonexistent/exoclaw-sandbox-init"));
    let err = sandbox
        .run(
            &f.policy,
            AgentRole::Main,
            "touch /workspace/ran",
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("start the sandbox init"), "{err}");
    assert!(!f.ws().join("ran").exists());
}
