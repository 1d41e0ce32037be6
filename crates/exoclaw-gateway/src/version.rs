//! What this build is: the package version, the git commit it was built
//! from, and the client protocol version.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("EXOCLAW_BUILD_COMMIT");
/// The version of the client protocols (HTTP API and WebSocket RPC). Bumped
/// on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Compiled-in capabilities.
pub fn features() -> Vec<&'static str> {
    let mut f = vec!["sqlite", "postgres"];
    if cfg!(feature = "otel") {
        f.push("otel");
    }
    f
}
