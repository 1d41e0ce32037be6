//! Workspace quotas for `exec` and `process` through the registry: a
//! command may write no file past what is left (`RLIMIT_FSIZE`), the
//! workspace is measured after it, and while it is full or over quota the
//! next command and write are refused until files are deleted. The same
//! commands without a quota show that the limits come from the quota.

use crate::Fixture;
use exoclaw_core::tool::{ToolContext, ToolError};
use exoclaw_tools::exec::{CommandRunner, tools};
use exoclaw_tools::fs::{FsOptions, builtin_with_quota};
use exoclaw_tools::quota::{QUOTA_EXCEEDED, QuotaLedger, Quotas, WorkspaceQuota};
use exoclaw_tools::{InvokeMode, ToolPolicy, ToolRegistry};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const KIB: u64 = 1024;

struct Setup {
    f: Fixture,
    reg: ToolRegistry,
    ctx: ToolContext,
    policy: ToolPolicy,
}

fn allow_all(_: &str) -> Result<(), ToolError> {
    Ok(())
}

fn setup(user: WorkspaceQuota) -> Setup {
    let f = Fixture::create();
    let quotas = Quotas {
        user,
        ..Quotas::default()
    };
    // Measure on every check, so a deleted file counts at once.
    let ledger = Arc::new(
        QuotaLedger::new(quotas, |_| std::path::PathBuf::from("/nonexistent"))
            .with_max_age(Duration::ZERO),
    );
    let runner = Arc::new(
        CommandRunner::new(f.sandbox.clone(), f.policy.clone(), Arc::new(allow_all))
            .with_quota(Arc::clone(&ledger)),
    );
    let mut all = tools(&runner);
    all.extend(builtin_with_quota(FsOptions::default(), ledger));
    let ctx = ToolContext {
        tenant: "default".into(),
        user: "u1".into(),
        agent: "default".into(),
        session: Some("s1".into()),
        workspace: f.ws().to_path_buf(),
        request_id: None,
        run: Default::default(),
        approved: None,
        call_id: None,
        agents: None,
        lineage: Default::default(),
        cancel: Default::default(),
    };
    let policy = ToolPolicy {
        rate_limit_per_hour: 0,
        ..ToolPolicy::default()
    };
    Setup {
        f,
        reg: ToolRegistry::new(all, None),
        ctx,
        policy,
    }
}

fn bytes(max: u64) -> WorkspaceQuota {
    WorkspaceQuota {
        max_bytes: Some(max),
        max_files: None,
    }
}

impl Setup {
    async fn call(&self, name: &str, args: Value, mode: InvokeMode) -> Result<Value, ToolError> {
        let out = self
            .reg
            .invoke(&self.ctx, &self.policy, name, &args, mode)
            .await?;
        Ok(serde_json::from_str(&out.content).unwrap_or(Value::String(out.content)))
    }

    async fn exec(&self, command: &str) -> Result<Value, ToolError> {
        self.call("exec", json!({ "command": command }), InvokeMode::Execute)
            .await
    }

    fn size(&self, name: &str) -> u64 {
        std::fs::metadata(self.f.ws().join(name)).map_or(0, |m| m.len())
    }
}

fn assert_refused(e: &ToolError, what: &str) {
    assert_eq!(e.code, QUOTA_EXCEEDED, "{e}");
    assert!(e.message.contains(what), "{e}");
}

#[tokio::test]
async fn a_command_cannot_write_past_the_quota_and_the_next_is_refused_until_files_are_deleted() {
    let s = setup(bytes(1024 * KIB));
    let out = s.exec("head -c 3000000 /dev/zero > big").await.unwrap();
    // RLIMIT_FSIZE stopped the file at what was left of the quota.
    assert_eq!(s.size("big"), 1024 * KIB, "{out}");
    assert!(out["exit_code"] != 0 || out["signal"] == 25, "{out}");
    let note = out["quota"].as_str().unwrap_or_default();
    assert!(
        note.contains("the user workspace now holds 1.0 MiB of 1.0 MiB"),
        "{out}"
    );

    // Full: commands (also as a dry run), background jobs and growing
    // writes are refused, with nothing run or written.
    for mode in [InvokeMode::DryRun, InvokeMode::Execute] {
        let e = s
            .call("exec", json!({"command": "touch ran"}), mode)
            .await
            .unwrap_err();
        assert_refused(&e, "the user workspace holds 1.0 MiB of 1.0 MiB");
    }
    let e = s
        .call(
            "process",
            json!({"action": "start", "command": "touch ran"}),
            InvokeMode::Execute,
        )
        .await
        .unwrap_err();
    assert_refused(&e, "delete or truncate files first");
    let e = s
        .call(
            "write_file",
            json!({"path": "more.txt", "content": "x"}),
            InvokeMode::Execute,
        )
        .await
        .unwrap_err();
    assert_refused(&e, "this write adds 1 bytes");
    assert!(!s.f.ws().join("ran").exists() && !s.f.ws().join("more.txt").exists());

    // Truncating through write_file is allowed and makes room again.
    s.call(
        "write_file",
        json!({"path": "big", "content": ""}),
        InvokeMode::Execute,
    )
    .await
    .unwrap();
    let out = s.exec("echo ok > ran; cat ran").await.unwrap();
    assert_eq!(out["stdout"], "ok\n", "{out}");
    assert!(out.get("quota").is_none(), "{out}");
}

#[tokio::test]
async fn without_a_quota_the_same_command_writes_everything() {
    let s = setup(WorkspaceQuota::default());
    let out = s.exec("head -c 3000000 /dev/zero > big").await.unwrap();
    assert_eq!(out["exit_code"], 0, "{out}");
    assert_eq!(s.size("big"), 3_000_000);
    assert!(out.get("quota").is_none(), "{out}");
}

#[tokio::test]
async fn many_files_each_under_the_limit_are_caught_by_the_measurement_after() {
    let s = setup(bytes(256 * KIB));
    // Each file fits RLIMIT_FSIZE; together they pass the quota.
    let out = s
        .exec("for i in 1 2 3 4 5; do head -c 100000 /dev/zero > f$i; done; echo done")
        .await
        .unwrap();
    assert_eq!(out["stdout"], "done\n", "{out}");
    let note = out["quota"].as_str().unwrap_or_default();
    assert!(
        note.contains("now holds") && note.contains("of 256.0 KiB"),
        "{out}"
    );
    let e = s.exec("true").await.unwrap_err();
    assert_refused(&e, "the user workspace holds");
    // Deleted by other means (an operator): measured again, allowed.
    for i in 1..=5 {
        std::fs::remove_file(s.f.ws().join(format!("f{i}"))).unwrap();
    }
    s.exec("true").await.unwrap();
}

#[tokio::test]
async fn a_background_job_over_the_quota_says_so_and_blocks_the_next() {
    let s = setup(WorkspaceQuota {
        max_bytes: None,
        max_files: Some(3),
    });
    let started = s
        .call(
            "process",
            json!({"action": "start", "command": "touch a b c d e"}),
            InvokeMode::Execute,
        )
        .await
        .unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    let mut last = Value::Null;
    for _ in 0..200 {
        last = s
            .call(
                "process",
                json!({"action": "poll", "id": id}),
                InvokeMode::Execute,
            )
            .await
            .unwrap();
        if last["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(last["status"], "exited", "{last}");
    let note = last["quota"].as_str().unwrap_or_default();
    // The walk stops counting once past the limit: "at least 4".
    assert!(note.contains("now holds at least 4 of 3 files"), "{last}");
    let e = s.exec("true").await.unwrap_err();
    assert_refused(&e, "of 3 files");
}
