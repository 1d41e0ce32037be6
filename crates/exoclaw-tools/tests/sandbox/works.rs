//! The other side: ordinary commands still work in the sandbox, and `explain`
//! reports every guarantee as holding.

use crate::{Fixture, exited, sandbox};
use exoclaw_tools::sandbox::{AgentRole, ExitStatus, SandboxMode, explain};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

#[tokio::test]
async fn ordinary_tools_work() {
    let f = Fixture::create();
    std::fs::write(f.ws().join("a"), "b\nc\na\n").unwrap();
    let out = f
        .run(
            "set -e; ls; echo hi > out.txt; sh -c 'cat a | sort'; python3 -c 'print(1+1)'; \
             echo tmp > /tmp/t && cat /tmp/t; echo x > /dev/null; echo std > /dev/stdout; \
             mkdir -p d/e && mv out.txt d/e/ && cat d/e/out.txt; pwd; echo $HOME",
        )
        .await;
    assert_eq!(exited(&out), 0, "{}", out.stderr.text());
    assert_eq!(
        out.stdout.text(),
        "a\na\nb\nc\n2\ntmp\nstd\nhi\n/workspace\n/workspace\n",
        "{}",
        out.stderr.text()
    );
    // It landed in the host workspace, owned by the workspace's owner.
    let written = f.ws().join("d/e/out.txt");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "hi\n");
    let owner = std::fs::metadata(f.ws()).unwrap().uid();
    assert_eq!(std::fs::metadata(&written).unwrap().uid(), owner);
}

#[tokio::test]
async fn git_works_when_installed() {
    let f = Fixture::create();
    let out = f
        .run("if command -v git >/dev/null; then git --version && git init -q r && git -C r status --short && echo git-ok; else echo git-ok; fi")
        .await;
    assert_eq!(exited(&out), 0, "{}", out.stderr.text());
    assert!(
        out.stdout.text().contains("git-ok"),
        "{}{}",
        out.stdout.text(),
        out.stderr.text()
    );
}

#[tokio::test]
async fn exit_codes_and_signals_propagate_and_stdin_is_empty() {
    let f = Fixture::create();
    assert_eq!(exited(&f.run("exit 3").await), 3);
    let out = f.run("cat; echo \"stdin was empty: $?\"").await;
    assert_eq!(out.stdout.text(), "stdin was empty: 0\n");
    let killed = f.run("kill -9 $$").await;
    assert_eq!(killed.status, ExitStatus::Signaled(9));
}

#[tokio::test]
async fn the_sandbox_is_fast_enough_to_be_on_by_default() {
    let f = Fixture::create();
    let out = f.run_for("true", Duration::from_secs(5)).await;
    assert_eq!(exited(&out), 0);
    assert!(out.duration < Duration::from_secs(2), "{:?}", out.duration);
}

#[tokio::test]
async fn explain_proves_every_guarantee() {
    let f = Fixture::create();
    let lines = explain(&sandbox(), &f.policy, AgentRole::NonMain).await;
    let report: String = lines
        .iter()
        .map(|l| format!("{} {}: {}\n", l.ok, l.guarantee, l.detail))
        .collect();
    assert!(lines.iter().all(|l| l.ok), "{report}");
    for g in [
        "sandbox",
        "not root on the host",
        "namespaces",
        "no network: loopback",
        "no network: dns",
        "read-only outside the workspace",
        "data dir invisible",
        "environment allowlist",
        "seccomp",
        "landlock",
        "pids limit",
        "memory limit",
    ] {
        assert!(
            lines.iter().any(|l| l.guarantee == g),
            "missing {g}:\n{report}"
        );
    }
}

#[tokio::test]
async fn mode_off_runs_on_the_host_and_says_so() {
    let mut f = Fixture::create();
    f.policy.mode = SandboxMode::Off;
    let out = f
        .run("pwd; echo $HOME; env | grep -c EXOCLAW_ || true")
        .await;
    let ws = f.ws().canonicalize().unwrap();
    assert_eq!(
        out.stdout.text(),
        format!("{}\n{}\n0\n", ws.display(), f.ws().display())
    );
    let lines = explain(&sandbox(), &f.policy, AgentRole::NonMain).await;
    let first = &lines[0];
    assert!(
        !first.ok && first.detail.contains("ON THE HOST"),
        "{first:?}"
    );
    // non-main: the main agent runs on the host, the others sandboxed.
    f.policy.mode = SandboxMode::NonMain;
    let main = sandbox()
        .run(
            &f.policy,
            AgentRole::Main,
            "hostname",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let other = sandbox()
        .run(
            &f.policy,
            AgentRole::NonMain,
            "hostname",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_ne!(main.stdout.text(), "exoclaw-sandbox\n");
    assert_eq!(other.stdout.text(), "exoclaw-sandbox\n");
}

#[tokio::test]
async fn mode_off_still_kills_the_tree_on_timeout() {
    let mut f = Fixture::create();
    f.policy.mode = SandboxMode::Off;
    let tag = format!("sleep 61.{}", std::process::id() % 100_000);
    let out = f
        .run_for(&format!("{tag}1 & {tag}2"), Duration::from_secs(1))
        .await;
    assert_eq!(out.status, ExitStatus::TimedOut);
    crate::assert_no_processes(&format!("{tag}1")).await;
    crate::assert_no_processes(&format!("{tag}2")).await;
}
