//! `exoclaw version`: what this binary is.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("EXOCLAW_BUILD_COMMIT");
/// The version of the client protocols (HTTP API and WebSocket RPC). Bumped
/// on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Compiled-in capabilities.
pub fn features() -> Vec<&'static str> {
    vec!["sqlite", "postgres"]
}

pub fn run(json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "version": VERSION,
                "commit": COMMIT,
                "protocol_version": PROTOCOL_VERSION,
                "features": features(),
            })
        );
    } else {
        println!(
            "exoclaw {VERSION} (commit {COMMIT}, protocol {PROTOCOL_VERSION}, features: {})",
            features().join(", ")
        );
    }
}
