//! The security audit: its checks ([`checks`], each a [`finding::Finding`])
//! and what `--fix` would repair ([`plan`]). Below the HTTP edge, so the
//! CLI (`exoclaw security audit`) and the dashboard's security page run the
//! same code.

pub mod checks;
pub mod finding;
pub mod plan;
