//! exoclaw's domain: identifiers, records, the redacting [`Secret`] type and the
//! store ports every storage backend implements.
//!
//! Invariant: this crate does no network or disk IO and depends on no HTTP,
//! database or vendor crate. Everything here is plain data and traits.

pub mod agent;
pub mod canonical;
pub mod channel;
pub mod derived;
pub mod embed;
pub mod id;
pub mod memo;
pub mod model;
pub mod provider;
pub mod schedule;
pub mod secret;
pub mod sparse;
pub mod store;
pub mod tool;
pub mod trace;

pub use id::{AgentId, MessageId, SessionId, TenantId, UserId};
pub use secret::Secret;

/// Milliseconds since the Unix epoch (UTC). Stored as a 64-bit integer in both
/// SQLite and PostgreSQL so that one row shape serves both dialects.
pub type UnixMillis = i64;

/// Now, in [`UnixMillis`] (0 before 1970, saturated far in the future).
pub fn now_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The tenant every single-user install runs in, created by the first migration.
pub const DEFAULT_TENANT: &str = "default";
