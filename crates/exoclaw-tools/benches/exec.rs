//! Time to run `true` through the `exec` tool with the sandbox (mode `all`)
//! and without it (mode `off`): `cargo bench -p exoclaw-tools --bench exec`.
//! Prints p50/p95/max in milliseconds; BENCHMARKS.md records the figures.

#![allow(
    clippy::disallowed_macros,
    reason = "tests and benchmarks print what they measure"
)]
use exoclaw_core::tool::{Tool, ToolContext, ToolError};
use exoclaw_tools::exec::{CommandRunner, Exec};
use exoclaw_tools::sandbox::{Sandbox, SandboxInit, SandboxMode, SandboxPolicy};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 200;
const WARMUP: usize = 10;

fn allow(_: &str) -> Result<(), ToolError> {
    Ok(())
}

async fn measure(mode: SandboxMode, ctx: &ToolContext) -> Vec<Duration> {
    let mut policy = SandboxPolicy::new(
        &ctx.workspace,
        std::env::temp_dir().join("exoclaw-bench-data"),
    );
    policy.mode = mode;
    let sandbox = Sandbox::new(SandboxInit::new(env!("CARGO_BIN_EXE_exoclaw-sandbox-init")));
    let exec = Exec(Arc::new(CommandRunner::new(
        sandbox,
        policy,
        Arc::new(allow),
    )));
    let args = json!({"command": "true"});
    let mut times = Vec::with_capacity(RUNS);
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        let out = exec.call(ctx, &args).await.expect("exec true");
        let took = started.elapsed();
        assert!(out.content.contains("\"exit_code\":0"), "{}", out.content);
        if i >= WARMUP {
            times.push(took);
        }
    }
    times.sort();
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(name: &str, times: &[Duration]) {
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name:<22} n={} p50={:.2} ms p95={:.2} ms max={:.2} ms",
        times.len(),
        ms(at(0.50)),
        ms(at(0.95)),
        ms(at(1.0)),
    );
}

fn main() {
    let workspace = tempfile::tempdir().expect("workspace");
    let ctx = ToolContext {
        tenant: "bench".into(),
        user: "bench".into(),
        agent: "bench".into(),
        session: Some("bench".into()),
        workspace: workspace.path().to_path_buf(),
        request_id: None,
        run: Default::default(),
        approved: None,
        call_id: None,
        agents: None,
        lineage: Default::default(),
        cancel: Default::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sandboxed = measure(SandboxMode::All, &ctx).await;
        let host = measure(SandboxMode::Off, &ctx).await;
        println!("exec `true`, {RUNS} runs each after {WARMUP} warm-up runs:");
        report("sandbox (mode all)", &sandboxed);
        report("no sandbox (mode off)", &host);
    });
}
