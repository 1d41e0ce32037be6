//! exoclaw's content-security primitives (issue #5), pure and synchronous:
//!
//! - [`inject`]: a prompt-injection scanner over normalised text, rules
//!   with stable ids;
//! - [`markers`]: untrusted-content markers that content cannot forge;
//! - [`scrub`]: credential scrubbing of known formats and registered values,
//!   in scopes: the gateway's secrets apply to every output, a tenant's only
//!   to that tenant's outputs and the operator's log (JSON log lines are
//!   scrubbed in their values only, never keys or structural fields).
//!
//! The gateway wires them into the agent loop, the logs and the tool
//! registry; nothing here does IO or needs a runtime.

mod fold;
pub mod inject;
pub mod markers;
pub mod scrub;

pub use inject::{Hit, RULES, Scanner, normalize};
pub use markers::{SYSTEM_PROMPT_NOTE, contains_marker, wrap};
pub use scrub::{Refused, Scrubber, check_strength, global};
