//! exoclaw's gateway as a library: everything between the edge (the binary's
//! CLI, configuration loading and HTTP/WebSocket API) and the ports below
//! (providers, tools, store). It holds the runtime (agent resolution, turns,
//! the run owner, the tool registry as configured), access (roles,
//! permissions, principals), users and keys, pairing, the channel gate,
//! the audit log, alerts, metrics, telemetry and backups.
//!
//! Modules form layers; a module imports only from its own layer's earlier
//! modules or from lower layers (checked by `cargo xtask tidy`):
//!
//! 1. `clock`, `version`, `config`, `home`, `access`
//! 2. `supervisor`, `credentials`, `telemetry`, `metrics`, `audit`, `alerts`,
//!    `revocation`, `db`, `egress`, `tenants`
//! 3. `users`, `pairing`, `channels`, `memory`, `skills`, `runtime`, `backup`

pub mod access;
pub mod alerts;
pub mod audit;
pub mod backup;
pub mod channels;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod db;
pub mod egress;
pub mod home;
pub mod mcp;
pub mod memory;
pub mod metrics;
pub mod pairing;
pub mod revocation;
pub mod runtime;
pub mod skills;
pub mod supervisor;
#[cfg(feature = "otel")]
pub mod telemetry;
pub mod tenants;
#[cfg(test)]
mod test_store;
pub mod users;
pub mod version;

pub use config::Settings;
