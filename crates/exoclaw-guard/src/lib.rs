//! exoclaw's content-security primitives (issue #5), pure and synchronous:
//!
//! - [`inject`]: a prompt-injection scanner over normalised text, rules
//!   with stable ids;
//! - [`markers`]: untrusted-content markers that content cannot forge;
//! - [`scrub`]: credential scrubbing of known formats and registered values.
//!
//! The gateway wires them into the agent loop, the logs and the tool
//! registry; nothing here does IO or needs a runtime.

mod fold;
pub mod inject;
pub mod markers;
pub mod scrub;

pub use inject::{Hit, RULES, Scanner, normalize};
pub use markers::{SYSTEM_PROMPT_NOTE, contains_marker, wrap};
pub use scrub::{Scrubber, global};
