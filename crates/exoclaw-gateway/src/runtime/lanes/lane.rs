//! The plain data of the lane scheduler: the lanes, what a run asks for
//! ([`Admission`]), the throttle's signal ([`Pressure`]) and what a status
//! page reads ([`LaneState`]).

use exoclaw_core::{SessionId, TenantId};
use std::fmt;

/// A kind of agent run; each lane has its own concurrency limit
/// (`scheduler.lanes.<lane>.concurrency`), so a flood of one kind (cron
/// jobs, delegations) never takes the slots of another (chat).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Runs a person started: HTTP, WebSocket, terminal, channels.
    Main,
    /// Runs an agent started as its own sub-agent.
    Subagent,
    /// Runs an agent asked of another agent.
    Delegate,
    /// Scheduled runs.
    Cron,
}

impl Lane {
    /// Every lane, in the order [`super::Lanes::snapshot`] lists them.
    pub const ALL: [Lane; 4] = [Lane::Main, Lane::Subagent, Lane::Delegate, Lane::Cron];

    /// The lane's name in metrics labels and config keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Main => "main",
            Lane::Subagent => "subagent",
            Lane::Delegate => "delegate",
            Lane::Cron => "cron",
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            Lane::Main => 0,
            Lane::Subagent => 1,
            Lane::Delegate => 2,
            Lane::Cron => 3,
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many runs of one session may go at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// One at a time, in arrival order: turns never interleave.
    Direct,
    /// Up to the session's allowance (`scheduler.group_concurrency`, lowered
    /// by the adaptive throttle).
    Group,
}

/// What a run asks [`super::Lanes::admit`] for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    pub lane: Lane,
    /// Whose run it is: a full lane hands out slots round-robin by tenant.
    pub tenant: TenantId,
    pub session: SessionId,
    pub kind: SessionKind,
}

/// What the provider said about a group session's run, for the adaptive
/// throttle ([`super::Lanes::pressure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pressure {
    /// The provider answered 429 or "overloaded".
    Overloaded,
    /// The provider answered normally.
    Ok,
}

/// One lane as a status page shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneState {
    pub lane: Lane,
    /// `scheduler.lanes.<lane>.concurrency`.
    pub limit: usize,
    /// Permits held.
    pub running: usize,
    /// Admissions waiting, for their session or for the lane.
    pub queued: usize,
}
