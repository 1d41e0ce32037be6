//! The unprivileged user PostgreSQL runs as when xtask runs as root (CI does; PostgreSQL refuses).
//!
//! `exoclaw-pg`, a system user without home or shell, created on first use; `nobody` if it cannot be.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::command::{command, find_program, output};
use crate::error::{Context, Result, bail};

const USER: &str = "exoclaw-pg";

/// An unprivileged user to run PostgreSQL's programs as.
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// `program` run as this user: `setpriv` execs in place (so the child's pid is postgres's pid);
    /// `runuser` is the fallback.
    pub fn command(&self, program: &Path) -> Command {
        if let Some(setpriv) = find_program("setpriv") {
            let mut cmd = Command::new(setpriv);
            cmd.arg(format!("--reuid={}", self.uid))
                .arg(format!("--regid={}", self.gid))
                .args(["--init-groups", "--"])
                .arg(program);
            cmd
        } else {
            let mut cmd = command("runuser", ["-u", &self.name, "--"]);
            cmd.arg(program);
            cmd
        }
    }
}

/// Whether we run as root (the owner of `/proc/self` is our effective uid).
pub fn is_root() -> Result<bool> {
    Ok(fs::metadata("/proc/self")
        .context("reading /proc/self")?
        .uid()
        == 0)
}

/// The user to run PostgreSQL as, created on first use.
pub fn ensure_user() -> Result<RunAs> {
    if let Some(user) = lookup_user(USER) {
        return Ok(user);
    }
    let created = output(&mut command(
        "useradd",
        [
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ],
    ));
    match created {
        Ok(_) => eprintln!("xtask: created system user {USER} (PostgreSQL refuses to run as root)"),
        Err(err) => eprintln!("xtask: cannot create user {USER} ({err}); using nobody"),
    }
    match lookup_user(USER).or_else(|| lookup_user("nobody")) {
        Some(user) => Ok(user),
        None => bail!(
            "no unprivileged user to run PostgreSQL as; run `useradd --system --no-create-home --shell /usr/sbin/nologin {USER}`"
        ),
    }
}

fn lookup_user(name: &str) -> Option<RunAs> {
    let id = |flag: &str| output(&mut command("id", [flag, name])).ok()?.parse().ok();
    Some(RunAs {
        name: name.to_owned(),
        uid: id("-u")?,
        gid: id("-g")?,
    })
}
