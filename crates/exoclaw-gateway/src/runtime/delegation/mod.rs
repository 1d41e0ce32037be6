//! Delegation and subagents: the gateway's side of the [`AgentCalls`] port
//! that the `delegate` and `spawn` tools call.
//!
//! A call is checked (the target exists in the caller's tenant and is not
//! disabled; a permission link lets the caller reach it for this user; the
//! chain is within its depth), waits a bounded time for a slot of its
//! limits (`limits.rs`: per link, per target agent, per parent run),
//! is recorded in the delegation history, and starts the target's run in a
//! fresh session of its own through the one launch path (`turn.rs`), with
//! the caller's run as its parent: stopping the caller stops it, and a
//! caller that read untrusted content hands its taint down. A sync call
//! waits (bounded by a timeout) and answers with the child's text; an async
//! call answers at once with the delegation id, and the result is announced
//! into the caller's session as a new turn of the caller (`announce.rs`).
//! Either way the end is recorded (status, tokens, cost, the child's trace)
//! and the parent trace gets a span naming the child trace.
//!
//! Never a hang: a child that fails, times out or is stopped returns a
//! failure to its caller; a gateway restart marks the delegations it was
//! running `interrupted` and tells the callers of async ones.

pub mod announce;
pub mod directory;
pub mod evaluate;
mod limits;
mod run;
pub mod spawn;

use super::Runtime;
use async_trait::async_trait;
use exoclaw_core::SessionId;
use exoclaw_core::tool::{AgentAnswer, AgentCall, AgentCalls, AgentCard, ToolContext, ToolError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use announce::Announcement;

/// The gateway's delegations in flight (see the module docs).
pub struct Delegations {
    /// This gateway instance, as the history's `owner`.
    owner: String,
    limits: run::Limits,
    /// Async delegations by the caller's session: `/stopall` cancels them.
    pending: Mutex<HashMap<SessionId, Vec<(String, CancellationToken)>>>,
    announcements: broadcast::Sender<Announcement>,
    /// Set while the gateway drains: a run stopped by the shutdown stays
    /// `running` in the history, for the next start to mark interrupted
    /// and announce.
    stopping: AtomicBool,
}

impl Delegations {
    pub fn new(owner: String) -> Self {
        Self {
            owner,
            limits: run::Limits::default(),
            pending: Mutex::default(),
            announcements: broadcast::channel(256).0,
            stopping: AtomicBool::new(false),
        }
    }

    /// This gateway instance's name in the history.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The results of async delegations, announced into their callers'
    /// sessions (the WebSocket forwards them to the session's user).
    pub fn subscribe(&self) -> broadcast::Receiver<Announcement> {
        self.announcements.subscribe()
    }

    /// Cancel the async delegations and spawns started from `session`
    /// (and, through their runs, whatever those started); returns how many.
    pub fn stop_pending(&self, session: &SessionId) -> usize {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.get(session).map_or(0, |runs| {
            runs.iter().for_each(|(_, t)| t.cancel());
            runs.len()
        })
    }

    /// Async delegations in flight (all sessions).
    pub fn pending(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(Vec::len)
            .sum()
    }

    /// The gateway is draining: see [`Delegations::stopping`].
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn track(&self, session: &SessionId, id: &str, token: CancellationToken) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(session.clone())
            .or_default()
            .push((id.to_owned(), token));
    }

    fn untrack(&self, session: &SessionId, id: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(runs) = pending.get_mut(session) {
            runs.retain(|(d, _)| d != id);
            if runs.is_empty() {
                pending.remove(session);
            }
        }
    }
}

/// The port a run's tools reach other agents through.
struct Port {
    runtime: Weak<Runtime>,
}

impl Runtime {
    /// The delegation port for a run's tools.
    pub(crate) fn agent_calls(&self) -> Arc<dyn AgentCalls> {
        Arc::new(Port {
            runtime: self.me.clone(),
        })
    }
}

fn gone() -> ToolError {
    ToolError::new(
        "delegation.unavailable",
        "the gateway is stopping; no new delegation starts",
    )
}

#[async_trait]
impl AgentCalls for Port {
    async fn call_agent(
        &self,
        ctx: &ToolContext,
        call: AgentCall,
    ) -> Result<AgentAnswer, ToolError> {
        let rt = self.runtime.upgrade().ok_or_else(gone)?;
        if rt.delegations.is_stopping() {
            return Err(gone());
        }
        run::call(rt, ctx, call).await
    }

    async fn reachable(&self, ctx: &ToolContext) -> Result<Vec<AgentCard>, ToolError> {
        let rt = self.runtime.upgrade().ok_or_else(gone)?;
        directory::reachable(rt.store.as_ref(), &ctx.tenant, &ctx.agent, &ctx.user)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot read the permission links");
                ToolError::failed("cannot read the permission links right now")
            })
    }

    async fn rank(
        &self,
        _ctx: &ToolContext,
        query: &str,
        cards: &[AgentCard],
        limit: usize,
    ) -> Option<Vec<AgentCard>> {
        let rt = self.runtime.upgrade()?;
        let embedder = rt.memory.embedder()?.clone();
        directory::rank_hybrid(embedder.as_ref(), query, cards, limit).await
    }
}
