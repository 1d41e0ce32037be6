//! Running other programs: cargo, PostgreSQL's tools, python, signals through `sh`.

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};

use crate::error::{Context, Result, bail};

/// The workspace root (the parent of `xtask/`).
///
/// `cargo run` sets `CARGO_MANIFEST_DIR` at run time too; prefer it over the compile-time value,
/// because two checkouts sharing one `CARGO_TARGET_DIR` share (and may run) one xtask binary.
pub fn workspace_root() -> PathBuf {
    let xtask_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    xtask_dir
        .parent()
        .map_or(xtask_dir.clone(), Path::to_path_buf)
}

/// `cargo`, the same one that runs us when started through `cargo xtask`, in the workspace root.
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.current_dir(workspace_root());
    cmd
}

/// The program and its arguments, for messages (`cargo` without the toolchain's path).
pub fn describe(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let mut text = if program.file_name().is_some_and(|name| name == "cargo") {
        "cargo".to_owned()
    } else {
        program.to_string_lossy().into_owned()
    };
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` with inherited stdio; a non-zero exit is an error.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = status(cmd)?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` with inherited stdio and returns how it exited.
pub fn status(cmd: &mut Command) -> Result<ExitStatus> {
    cmd.status()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))
}

/// Runs `cmd` and returns its trimmed stdout; a non-zero exit is an error carrying its stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            stderr.trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether `cmd` runs and exits 0, with all output discarded.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The first executable called `name` on `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Sends `signal` (`"TERM"`, `"INT"`, …) to `pid` through the shell's `kill` builtin:
/// `/usr/bin/kill` (procps) is missing from minimal Debian images, `sh` never is.
pub fn send_signal(pid: u32, signal: &str) -> Result<()> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "kill -s \"$1\" \"$2\"", "sh", signal])
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    run(&mut cmd).with_context(|| format!("sending SIG{signal} to {pid}"))
}

/// Our exit code for a child's exit status: its code, or 128 + signal like a shell.
pub fn exit_code(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let signal = status.signal().and_then(|sig| u8::try_from(sig).ok());
    ExitCode::from(signal.map_or(1, |sig| 128u8.saturating_add(sig)))
}

/// `program` (a path) with `args`, for one-liners.
pub fn command<I, S>(program: impl AsRef<OsStr>, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}
