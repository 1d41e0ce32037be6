//! What each running channel reports: when it last received and sent, how
//! often its receiver was restarted, its counters; the queue depth comes
//! from the outbox when asked.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// The live state of one channel (shared by its tasks and the status).
#[derive(Debug, Default)]
pub struct ChannelState {
    running: AtomicBool,
    last_inbound_at: AtomicI64,
    last_outbound_at: AtomicI64,
    restarts: AtomicU64,
    inbound: AtomicU64,
    duplicates: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dead: AtomicU64,
    /// Messages being handled now (accepted, not yet answered).
    pending: AtomicU64,
    /// Messages refused because `pending` was at its bound.
    busy: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A message counted in [`ChannelState`]'s pending messages until dropped.
#[derive(Debug)]
pub struct Pending(std::sync::Arc<ChannelState>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A snapshot for `GET /v1/channels`, `exoclaw channels status` and
/// `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelStatus {
    pub name: String,
    pub kind: &'static str,
    /// Its receiver runs (false between a failure and its restart).
    pub running: bool,
    pub last_inbound_at: Option<i64>,
    pub last_outbound_at: Option<i64>,
    /// Times the receiver was started again after it ended.
    pub restarts: u64,
    /// Outbox messages waiting to be sent.
    pub queue_depth: i64,
    pub inbound: u64,
    pub duplicates: u64,
    pub sent: u64,
    pub failed: u64,
    pub dead: u64,
    /// Messages being handled now.
    pub pending: u64,
    /// Messages refused because too many were pending.
    pub busy: u64,
    /// The last failure, short (no secrets, no message text).
    pub last_error: Option<String>,
}

fn opt(v: i64) -> Option<i64> {
    (v > 0).then_some(v)
}

impl ChannelState {
    pub(crate) fn started(&self, first: bool) {
        if !first {
            self.restarts.fetch_add(1, Ordering::Relaxed);
        }
        self.running.store(true, Ordering::Relaxed);
    }
    pub(crate) fn ended(&self, error: Option<String>) {
        self.running.store(false, Ordering::Relaxed);
        if error.is_some() {
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = error;
        }
    }
    pub(crate) fn inbound(&self, at: i64) {
        self.inbound.fetch_add(1, Ordering::Relaxed);
        self.last_inbound_at.store(at, Ordering::Relaxed);
    }
    /// Counts one more message as pending unless `max` are already; the
    /// refusal is counted.
    pub(crate) fn try_pending(self: &std::sync::Arc<Self>, max: u64) -> Option<Pending> {
        let admitted = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            Some(Pending(self.clone()))
        } else {
            self.busy.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
    pub(crate) fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn sent(&self, at: i64) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.last_outbound_at.store(at, Ordering::Relaxed);
    }
    pub(crate) fn failed(&self, error: String, dead: bool) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if dead {
            self.dead.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    pub(crate) fn snapshot(
        &self,
        name: &str,
        kind: &'static str,
        queue_depth: i64,
    ) -> ChannelStatus {
        ChannelStatus {
            name: name.to_owned(),
            kind,
            running: self.running.load(Ordering::Relaxed),
            last_inbound_at: opt(self.last_inbound_at.load(Ordering::Relaxed)),
            last_outbound_at: opt(self.last_outbound_at.load(Ordering::Relaxed)),
            restarts: self.restarts.load(Ordering::Relaxed),
            queue_depth,
            inbound: self.inbound.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dead: self.dead.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}
