//! `cargo xtask test` (the README's test command) and `cargo xtask ci` (fmt, clippy, then the same tests).
//!
//! `test` provisions everything the suite needs on a fresh machine (PostgreSQL with pgvector, the
//! project virtualenv), runs the workspace tests with nextest (or `cargo test` without it), and
//! tears the cluster down whatever the outcome. It exits with the test runner's status.

use std::process::{Command, ExitCode};

use crate::command::{cargo, describe, exit_code, run, status, succeeds};
use crate::error::Result;
use crate::{pg, pyenv};

/// `cargo xtask test [-- ARGS]`: ARGS go to the test runner.
pub fn test(extra: &[String]) -> Result<ExitCode> {
    let python = pyenv::ensure(pyenv::TEST_PACKAGES)?;
    let postgres = pg::provision()?;
    // The PostgreSQL source may have created the virtualenv just now.
    let python = python.or_else(pyenv::existing_python);
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
        .env("REQUIRE_POSTGRES", "1");
    if let Some(python) = python {
        // End-to-end tests through the Python SDKs must fail, not skip.
        runner
            .env("EXOCLAW_TEST_PYTHON", python)
            .env("REQUIRE_PYTHON", "1");
    }
    eprintln!("xtask: $ {}", describe(&runner));
    let outcome = status(&mut runner);
    // Stop and delete the cluster before exiting, whatever happened to the tests.
    drop(postgres);
    Ok(exit_code(outcome?))
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
    test(extra)
}

fn step(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: $ {}", describe(cmd));
    run(cmd)
}

fn has_nextest() -> bool {
    succeeds(cargo().args(["nextest", "--version"]))
}
