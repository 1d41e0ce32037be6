//! The browser of the dashboard's end-to-end tests: Debian's `chromium`
//! package, driven by Playwright from the project virtualenv (browser
//! downloads are not possible on the machines). Installed with apt on first
//! use when running as root (as CI does); otherwise the command to run is
//! named.

use std::path::PathBuf;

use crate::command::{command, find_program, output, run};
use crate::error::{Result, bail};

/// What the tests read.
pub const VAR: &str = "EXOCLAW_TEST_CHROMIUM";

/// Chromium's executable, installing the package if it is missing.
pub fn ensure() -> Result<PathBuf> {
    if let Some(found) = find_program("chromium") {
        return Ok(found);
    }
    let root = output(&mut command("id", ["-u"])).is_ok_and(|uid| uid.trim() == "0");
    if !root {
        bail!("chromium not found; run `apt-get install -y chromium` and retry");
    }
    eprintln!("xtask: apt-get install chromium (the dashboard's browser tests)");
    let install =
        |cmd: &mut std::process::Command| run(cmd.env("DEBIAN_FRONTEND", "noninteractive"));
    let packages = ["install", "-y", "--no-install-recommends", "chromium"];
    if install(&mut command("apt-get", packages)).is_err() {
        // A fresh machine may have no package lists yet.
        install(&mut command("apt-get", ["update"]))?;
        install(&mut command("apt-get", packages))?;
    }
    match find_program("chromium") {
        Some(found) => Ok(found),
        None => bail!("chromium was installed but is not on PATH"),
    }
}
