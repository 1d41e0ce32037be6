//! What a run to start is ([`Launch`]): who, which agent, in which session,
//! with what input, where in a chain of delegations. `turn.rs` starts it;
//! the types live apart so that the modules that launch runs (delegation,
//! announcements, gates) need not name `turn.rs`, which names them.

use super::lanes::Lane;
use crate::access::Principal;
use exoclaw_core::model::{Agent, Session};
use exoclaw_core::tool::Lineage;
use tokio_util::sync::CancellationToken;

/// One run to start.
pub(crate) struct Launch {
    /// On whose behalf: the user the session, workspace and budgets are of.
    pub who: Principal,
    /// The agent that answers.
    pub agent: Agent,
    pub session: Session,
    pub input: String,
    /// Stored with the input message.
    pub input_meta: serde_json::Value,
    pub request_id: Option<String>,
    pub lineage: Lineage,
    /// The run this one serves: stopping it stops this one.
    pub parent_cancel: Option<CancellationToken>,
    /// The run that asked had read untrusted content: this one starts
    /// tainted, so its side effects are gated too.
    pub tainted: bool,
    pub trace_name: &'static str,
    /// A subagent: an anonymous clone of `agent`.
    pub clone: Option<CloneOf>,
    /// The scheduler lane the run waits in.
    pub lane: Lane,
    /// The handoff of the session's conversation, when the caller knows it.
    pub handed_over: HandedOver,
    /// The tenant's directory the caller already checked (else the launch
    /// checks it: one store read).
    pub directory: Option<super::directory::Directory>,
}

/// Whether the conversation of a run's session was handed to its agent.
pub(crate) enum HandedOver {
    /// Not known: the launch looks it up (one store read).
    Unknown,
    /// Known: the live handoff the message was routed by, or none (a
    /// delegate's or a reviewer's fresh session cannot be handed over).
    Known(Option<exoclaw_core::store::teams::Handoff>),
}

/// What makes a subagent differ from its parent.
pub(crate) struct CloneOf {
    /// Another model of the parent's provider.
    pub model: Option<String>,
    /// The parent's conversation, as context.
    pub context: String,
    /// Tools the clone may not use (on top of the parent's policy).
    pub deny: Vec<String>,
}
