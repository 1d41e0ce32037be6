//! `cargo xtask test` (the README's test command) and `cargo xtask ci` (fmt, clippy, then the same tests).
//!
//! `test` provisions everything the suite needs on a fresh machine (PostgreSQL with pgvector, the
//! project virtualenv), runs the workspace tests with nextest (or `cargo test` without it), then
//! (without extra arguments) the tests of the `otel` feature of the binary crate, and tears the
//! cluster down whatever the outcome. It exits with the test runners' status.

use std::process::{Command, ExitCode};

use crate::command::{cargo, describe, exit_code, run, status, succeeds};
use crate::error::Result;
use crate::{browser, llama, model, npm, pg, pyenv};

/// `cargo xtask test [-- ARGS]`: ARGS go to the test runner.
pub fn test(extra: &[String]) -> Result<ExitCode> {
    // The structural rules first: seconds, and a failure names the fix.
    if crate::tidy::run()? != ExitCode::SUCCESS {
        return Ok(ExitCode::FAILURE);
    }
    let python = pyenv::ensure(&[pyenv::TEST_PACKAGES, llama::LLAMA_PACKAGES].concat())?;
    let llama_model = match &python {
        Some(py) => Some(llama::ensure(py)?),
        None => None,
    };
    let npm = npm::ensure()?;
    let postgres = pg::provision()?;
    // The PostgreSQL source may have created the virtualenv just now.
    let python = python.or_else(pyenv::existing_python);
    let embed_model = model::ensure()?;
    let chromium = browser::ensure()?;
    eprintln!("xtask: {}", postgres.summary);

    let mut runner = if has_nextest() {
        let mut cmd = cargo();
        cmd.args(["nextest", "run", "--workspace", "--profile", "ci"]);
        cmd
    } else {
        eprintln!(
            "xtask: cargo-nextest not found, using cargo test (install: cargo install cargo-nextest --locked)"
        );
        let mut cmd = cargo();
        cmd.args(["test", "--workspace"]);
        cmd
    };
    runner
        .args(extra)
        .env(pg::DSN_VAR, &postgres.dsn)
        // PostgreSQL tests must fail, not skip, when the database is unreachable.
        .env("REQUIRE_POSTGRES", "1")
        // The MCP reference servers' tests must fail, not skip.
        .env("EXOCLAW_TEST_NPM", &npm)
        .env("REQUIRE_NPM", "1")
        // The local embedder's reference-vector test must fail, not skip.
        .env(model::DIR_VAR, &embed_model)
        .env("REQUIRE_EMBED_MODEL", "1")
        // The dashboard's browser tests must fail, not skip.
        .env(browser::VAR, &chromium)
        .env("REQUIRE_BROWSER", "1");
    if let Some(python) = python {
        // End-to-end tests through the Python SDKs must fail, not skip.
        runner
            .env("EXOCLAW_TEST_PYTHON", python)
            .env("REQUIRE_PYTHON", "1");
    }
    if let Some(gguf) = &llama_model {
        // The real small model's test (llama-cpp-python's server) must fail, not skip.
        runner
            .env("EXOCLAW_TEST_LLAMA_MODEL", gguf)
            .env("REQUIRE_LLAMA", "1");
    }
    eprintln!("xtask: $ {}", describe(&runner));
    let mut outcome = status(&mut runner);
    if extra.is_empty() && outcome.as_ref().is_ok_and(|s| s.success()) {
        // The `otel` feature's tests: only the binary crate is rebuilt with
        // the feature, and only its OTLP tests run.
        let mut otel = otel_runner();
        eprintln!("xtask: $ {}", describe(&otel));
        outcome = status(&mut otel);
    }
    // Stop and delete the cluster before exiting, whatever happened to the tests.
    drop(postgres);
    Ok(exit_code(outcome?))
}

/// The tests behind the `otel` feature (names containing `otel` or
/// `telemetry`): the gateway's export and the binary's end-to-end test.
fn otel_runner() -> Command {
    let mut cmd = cargo();
    if has_nextest() {
        cmd.args([
            "nextest",
            "run",
            "-p",
            "exoclaw",
            "-p",
            "exoclaw-gateway",
            "--features",
            "exoclaw/otel,exoclaw-gateway/otel",
            "--profile",
            "ci",
            "-E",
            "test(otel) | test(telemetry)",
        ]);
    } else {
        cmd.args([
            "test",
            "-p",
            "exoclaw",
            "-p",
            "exoclaw-gateway",
            "--features",
            "exoclaw/otel,exoclaw-gateway/otel",
            "--",
            "otel",
            "telemetry",
        ]);
    }
    cmd
}

/// `cargo xtask ci`: formatting, lints, then exactly `cargo xtask test`.
pub fn ci(extra: &[String]) -> Result<ExitCode> {
    step(cargo().args(["fmt", "--all", "--", "--check"]))?;
    step(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step(cargo().args([
        "clippy",
        "-p",
        "exoclaw",
        "-p",
        "exoclaw-gateway",
        "--features",
        "exoclaw/otel,exoclaw-gateway/otel",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    test(extra)
}

fn step(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: $ {}", describe(cmd));
    run(cmd)
}

fn has_nextest() -> bool {
    succeeds(cargo().args(["nextest", "--version"]))
}
