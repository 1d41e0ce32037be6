//! The npm packages of the end-to-end tests (the reference MCP servers) in
//! `/var/tmp/exoclaw-npm`, shared by every checkout on the machine: installed
//! with npm from the registry on first use, reused while the marker lists
//! them, reinstalled when a pinned package is missing.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::command::{command, find_program, run};
use crate::error::{Context, Result, bail};

/// Where the packages live (`node_modules` below it).
pub const DIR: &str = "/var/tmp/exoclaw-npm";

/// Pinned packages: the MCP reference servers `tests/it/mcp.rs` runs.
pub const TEST_PACKAGES: &[&str] = &[
    "@modelcontextprotocol/server-everything@2026.8.31",
    "@modelcontextprotocol/server-filesystem@2026.8.31",
];

/// One pinned package per line: what `npm install` has completed.
const MARKER: &str = ".exoclaw-packages";

/// Makes sure [`TEST_PACKAGES`] are installed; returns [`DIR`].
pub fn ensure() -> Result<PathBuf> {
    let Some(npm) = find_program("npm") else {
        bail!("npm not found; run `apt-get install -y nodejs npm` and retry");
    };
    fs::create_dir_all(DIR).with_context(|| format!("creating {DIR}"))?;
    let lock_path = format!("{DIR}.lock");
    let lock = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .with_context(|| format!("opening {lock_path}"))?;
    lock.lock()
        .with_context(|| format!("locking {lock_path}"))?;
    let marker = Path::new(DIR).join(MARKER);
    let have = fs::read_to_string(&marker).unwrap_or_default();
    let complete = TEST_PACKAGES.iter().all(|p| have.lines().any(|l| l == *p))
        && Path::new(DIR).join("node_modules").is_dir();
    if !complete {
        eprintln!("xtask: npm install {} into {DIR}", TEST_PACKAGES.join(" "));
        let started = Instant::now();
        let mut install = command(
            &npm,
            [
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
                DIR,
            ],
        );
        install.args(TEST_PACKAGES);
        run(&mut install).context("installing npm packages (needs access to the npm registry)")?;
        fs::write(&marker, TEST_PACKAGES.join("\n") + "\n")
            .with_context(|| format!("writing {}", marker.display()))?;
        eprintln!(
            "xtask: installed the npm packages in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(PathBuf::from(DIR))
}
