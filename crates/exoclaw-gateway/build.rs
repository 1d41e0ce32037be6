//! Records the git commit the gateway was built from (`exoclaw version`,
//! the `exoclaw_build_info` metric).

#![expect(
    clippy::disallowed_macros,
    reason = "a build script talks to cargo on stdout"
)]

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=EXOCLAW_BUILD_COMMIT={commit}");
    // Rebuild when HEAD moves (best effort; absent outside a git checkout).
    for p in ["../../.git/HEAD", "../../.git/refs/heads"] {
        if std::path::Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
