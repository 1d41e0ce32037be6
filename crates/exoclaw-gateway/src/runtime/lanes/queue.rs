//! The bookkeeping behind the lane scheduler, synchronous and lock-free of
//! its own: the caller holds it in one mutex. It knows the lanes (limit,
//! runs in progress, waiters by tenant in round-robin order), the sessions
//! (slots held, waiters in arrival order, the group allowance) and every
//! waiter by id. Waiter ids rise with arrival, so the queues are ordered
//! sets of ids: first come first served, and a waiter that gives up leaves
//! in logarithmic time however long the queue.
//!
//! A waiter goes through two stages. In the *session* stage it sits in its
//! session's queue and holds nothing. When its session has room and it is
//! first in that queue it takes a session slot and enters the *lane* stage:
//! its tenant's queue in its lane. When the lane has room, the tenant whose
//! turn it is gives its oldest waiter the slot. So a waiter that cannot run
//! because of its own session never holds a lane slot, and a slot freed in
//! a full lane goes to the next tenant in turn, never to the tenant with the
//! longest queue. Invariant: a lane with a free slot has no lane-stage
//! waiters ([`Book::fill`] runs after every change that could break it).

use super::lane::{Admission, Lane, LaneState, Pressure, SessionKind};
use exoclaw_core::sparse::ShrinkWhenSparse as _;
use exoclaw_core::{SessionId, TenantId};
use std::collections::{BTreeSet, HashMap, VecDeque};
use tokio::sync::oneshot;
use tokio::time::{Duration, Instant};

pub(super) type WaiterId = u64;

/// Consecutive [`Pressure::Ok`] signals that give a throttled group
/// session one more concurrent run.
pub(super) const RAISE_AFTER: u32 = 3;

/// How long an idle group session's lowered allowance is remembered, so
/// that the next burst of messages does not start at full concurrency
/// against a provider that just said it was overloaded.
pub(super) const THROTTLE_MEMORY: Duration = Duration::from_secs(600);

/// What [`Book::enter`] decided.
pub(super) enum Entry {
    /// The run holds its slots: build the permit.
    Granted,
    /// The run waits; the receiver fires when it holds its slots.
    Queued(WaiterId, oneshot::Receiver<()>),
}

/// Where a waiter stood when it was taken out of the queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Behind earlier runs of its own session.
    Session,
    /// Holding its session slot, waiting for a lane slot.
    Lane,
}

struct Waiter {
    lane: Lane,
    tenant: TenantId,
    session: SessionId,
    kind: SessionKind,
    stage: Stage,
    wake: oneshot::Sender<()>,
}

struct Session {
    /// Slots taken: runs in progress and lane-stage waiters.
    held: usize,
    /// A direct run holds the session alone.
    exclusive: bool,
    /// Session-stage waiters; ids rise with arrival, so this is arrival
    /// order (and taking one out anywhere is cheap).
    queue: BTreeSet<WaiterId>,
    /// Ever admitted as a group session (only those are throttled).
    group: bool,
    /// Group runs allowed at once (the throttle moves it).
    allowance: usize,
    /// Consecutive `Ok` signals since the last change of `allowance`.
    streak: u32,
    /// Set while the entry is kept only to remember a lowered allowance.
    idle_since: Option<Instant>,
}

impl Session {
    fn new(allowance: usize) -> Self {
        Self {
            held: 0,
            exclusive: false,
            queue: BTreeSet::new(),
            group: false,
            allowance,
            streak: 0,
            idle_since: None,
        }
    }

    fn has_room(&self, kind: SessionKind) -> bool {
        match kind {
            SessionKind::Direct => self.held == 0,
            SessionKind::Group => !self.exclusive && self.held < self.allowance,
        }
    }

    fn take(&mut self, kind: SessionKind) {
        self.held += 1;
        self.exclusive = kind == SessionKind::Direct;
    }

    fn give_back(&mut self, kind: SessionKind) {
        self.held = self.held.saturating_sub(1);
        if kind == SessionKind::Direct {
            self.exclusive = false;
        }
    }
}

struct LaneBook {
    limit: usize,
    running: usize,
    /// Waiters of this lane at either stage.
    queued: usize,
    /// Lane-stage waiters per tenant, oldest admission first.
    tenants: HashMap<TenantId, BTreeSet<WaiterId>>,
    /// The tenants with lane-stage waiters, each once; the front one is
    /// served next and goes to the back.
    turn: VecDeque<TenantId>,
}

impl LaneBook {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            running: 0,
            queued: 0,
            tenants: HashMap::new(),
            turn: VecDeque::new(),
        }
    }

    fn push(&mut self, tenant: &TenantId, id: WaiterId) {
        if let Some(q) = self.tenants.get_mut(tenant) {
            q.insert(id);
        } else {
            self.tenants.insert(tenant.clone(), BTreeSet::from([id]));
            self.turn.push_back(tenant.clone());
        }
    }

    /// The first waiter of the tenant whose turn it is.
    fn pop_next(&mut self) -> Option<WaiterId> {
        while let Some(tenant) = self.turn.pop_front() {
            let Some(q) = self.tenants.get_mut(&tenant) else {
                continue;
            };
            let id = q.pop_first();
            if q.is_empty() {
                self.tenants.remove(&tenant);
                self.tenants.shrink_when_sparse();
                self.turn.shrink_when_sparse();
            } else {
                self.turn.push_back(tenant);
            }
            if id.is_some() {
                return id;
            }
        }
        None
    }

    fn remove(&mut self, tenant: &TenantId, id: WaiterId) {
        let Some(q) = self.tenants.get_mut(tenant) else {
            return;
        };
        q.remove(&id);
        if q.is_empty() {
            self.tenants.remove(tenant);
            self.turn.retain(|t| t != tenant);
            self.tenants.shrink_when_sparse();
            self.turn.shrink_when_sparse();
        }
    }
}

pub(super) struct Book {
    lanes: [LaneBook; 4],
    sessions: HashMap<SessionId, Session>,
    waiters: HashMap<WaiterId, Waiter>,
    next_id: WaiterId,
    group_max: usize,
    /// Throttled group sessions that went idle, oldest first (an entry is
    /// stale once its session was active again).
    idle: VecDeque<(Instant, SessionId)>,
}

impl Book {
    /// `limits` by [`Lane::index`]; every limit and `group_max` at least 1.
    pub(super) fn new(limits: [usize; 4], group_max: usize) -> Self {
        Self {
            lanes: limits.map(|l| LaneBook::new(l.max(1))),
            sessions: HashMap::new(),
            waiters: HashMap::new(),
            next_id: 0,
            group_max: group_max.max(1),
            idle: VecDeque::new(),
        }
    }

    /// A run asks for its slots: granted at once when its session and its
    /// lane have room and nobody of its session is ahead of it; queued
    /// otherwise.
    pub(super) fn enter(&mut self, a: &Admission, now: Instant) -> Entry {
        self.forget_idle(now);
        let group_max = self.group_max;
        let session = match self.sessions.get_mut(&a.session) {
            Some(s) => s,
            None => self
                .sessions
                .entry(a.session.clone())
                .or_insert_with(|| Session::new(group_max)),
        };
        session.idle_since = None;
        session.group |= a.kind == SessionKind::Group;
        let lane = &mut self.lanes[a.lane.index()];
        let session_room = session.queue.is_empty() && session.has_room(a.kind);
        if session_room && lane.running < lane.limit {
            session.take(a.kind);
            lane.running += 1;
            return Entry::Granted;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let (wake, rx) = oneshot::channel();
        lane.queued += 1;
        let stage = if session_room {
            session.take(a.kind);
            lane.push(&a.tenant, id);
            Stage::Lane
        } else {
            session.queue.insert(id);
            Stage::Session
        };
        self.waiters.insert(
            id,
            Waiter {
                lane: a.lane,
                tenant: a.tenant.clone(),
                session: a.session.clone(),
                kind: a.kind,
                stage,
                wake,
            },
        );
        Entry::Queued(id, rx)
    }

    /// A permit ends: its lane slot and session slot go to the next
    /// waiters.
    pub(super) fn release(
        &mut self,
        lane: Lane,
        session: &SessionId,
        kind: SessionKind,
        now: Instant,
    ) {
        let l = &mut self.lanes[lane.index()];
        l.running = l.running.saturating_sub(1);
        if let Some(s) = self.sessions.get_mut(session) {
            s.give_back(kind);
        }
        self.promote(session);
        self.fill();
        self.settle(session, now);
    }

    /// A waiter gives up (timeout, cancellation, its future dropped): it
    /// leaves the queues, and a session slot it held goes on; the stage it
    /// stood at comes back. `None`: it had been granted its slots
    /// meanwhile, which the caller keeps as a permit or releases.
    pub(super) fn abandon(&mut self, id: WaiterId, now: Instant) -> Option<Stage> {
        let w = self.waiters.remove(&id)?;
        self.waiters.shrink_when_sparse();
        let lane = &mut self.lanes[w.lane.index()];
        lane.queued = lane.queued.saturating_sub(1);
        match w.stage {
            Stage::Session => {
                if let Some(s) = self.sessions.get_mut(&w.session) {
                    s.queue.remove(&id);
                }
            }
            Stage::Lane => {
                lane.remove(&w.tenant, id);
                if let Some(s) = self.sessions.get_mut(&w.session) {
                    s.give_back(w.kind);
                }
            }
        }
        // Whoever stood behind it in its session may go on now.
        self.promote(&w.session);
        self.fill();
        self.settle(&w.session, now);
        Some(w.stage)
    }

    /// The adaptive throttle of a group session (see the module doc of
    /// [`super`]). A session the scheduler does not know is left alone.
    pub(super) fn pressure(&mut self, session: &SessionId, signal: Pressure, now: Instant) {
        let group_max = self.group_max;
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        match signal {
            Pressure::Overloaded => {
                s.allowance = (s.allowance / 2).max(1);
                s.streak = 0;
            }
            Pressure::Ok => {
                s.streak = s.streak.saturating_add(1);
                if s.streak >= RAISE_AFTER {
                    s.streak = 0;
                    if s.allowance < group_max {
                        s.allowance += 1;
                        self.promote(session);
                        self.fill();
                    }
                }
            }
        }
        self.settle(session, now);
    }

    /// The allowance of a session the scheduler knows.
    pub(super) fn allowance(&self, session: &SessionId) -> Option<usize> {
        self.sessions.get(session).map(|s| s.allowance)
    }

    pub(super) fn state(&self, lane: Lane) -> LaneState {
        let l = &self.lanes[lane.index()];
        LaneState {
            lane,
            limit: l.limit,
            running: l.running,
            queued: l.queued,
        }
    }

    /// Session-stage waiters at the front of their session's queue that
    /// now have room move to the lane stage.
    fn promote(&mut self, session: &SessionId) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        while let Some(&id) = s.queue.first() {
            let Some(w) = self.waiters.get_mut(&id) else {
                // Not a waiter any more; cannot happen, but must not block.
                s.queue.pop_first();
                continue;
            };
            if !s.has_room(w.kind) {
                break;
            }
            s.queue.pop_first();
            s.take(w.kind);
            w.stage = Stage::Lane;
            self.lanes[w.lane.index()].push(&w.tenant, id);
        }
    }

    /// Hand free lane slots to lane-stage waiters, tenant by tenant.
    fn fill(&mut self) {
        for lane in &mut self.lanes {
            while lane.running < lane.limit {
                let Some(id) = lane.pop_next() else { break };
                let Some(w) = self.waiters.remove(&id) else {
                    continue;
                };
                self.waiters.shrink_when_sparse();
                lane.running += 1;
                lane.queued = lane.queued.saturating_sub(1);
                // A dropped receiver means the waiter's future is being
                // dropped; its abandon finds no waiter and releases.
                let _ = w.wake.send(());
            }
        }
    }

    /// Drop the entry of a session with nothing held or queued, unless it
    /// must remember a lowered group allowance for a while.
    fn settle(&mut self, session: &SessionId, now: Instant) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.held > 0 || !s.queue.is_empty() {
            return;
        }
        if !s.group || s.allowance >= self.group_max {
            self.sessions.remove(session);
            self.sessions.shrink_when_sparse();
        } else if s.idle_since.is_none() {
            s.idle_since = Some(now);
            self.idle.push_back((now, session.clone()));
        }
    }

    /// Forget the lowered allowances of sessions idle for
    /// [`THROTTLE_MEMORY`].
    fn forget_idle(&mut self, now: Instant) {
        while let Some((since, _)) = self.idle.front() {
            if now.saturating_duration_since(*since) < THROTTLE_MEMORY {
                break;
            }
            let Some((since, session)) = self.idle.pop_front() else {
                break;
            };
            if self
                .sessions
                .get(&session)
                .is_some_and(|s| s.idle_since == Some(since))
            {
                self.sessions.remove(&session);
                self.sessions.shrink_when_sparse();
            }
            self.idle.shrink_when_sparse();
        }
    }

    /// Every map and queue empty, every count zero (tests: nothing leaks).
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.waiters.is_empty()
            && self.idle.is_empty()
            && self.lanes.iter().all(|l| {
                l.running == 0 && l.queued == 0 && l.tenants.is_empty() && l.turn.is_empty()
            })
    }

    /// The entries the book's tables have room for (tests: a burst's room
    /// is given back).
    #[cfg(test)]
    pub(super) fn room(&self) -> usize {
        self.sessions.capacity()
            + self.waiters.capacity()
            + self.idle.capacity()
            + self
                .lanes
                .iter()
                .map(|l| l.tenants.capacity() + l.turn.capacity())
                .sum::<usize>()
    }

    /// Run the forgetting of idle throttled sessions as of `now` (tests).
    #[cfg(test)]
    pub(super) fn forget_idle_at(&mut self, now: Instant) {
        self.forget_idle(now);
    }
}
