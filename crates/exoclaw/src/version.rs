//! `exoclaw version`: what this binary is.

pub use exoclaw_gateway::version::{COMMIT, PROTOCOL_VERSION, VERSION, features};

pub fn run(json: bool) {
    if json {
        crate::outln!(
            "{}",
            serde_json::json!({
                "version": VERSION,
                "commit": COMMIT,
                "protocol_version": PROTOCOL_VERSION,
                "features": features(),
            })
        );
    } else {
        crate::outln!(
            "exoclaw {VERSION} (commit {COMMIT}, protocol {PROTOCOL_VERSION}, features: {})",
            features().join(", ")
        );
    }
}
