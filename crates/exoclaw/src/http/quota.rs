//! Concurrency quotas by key, on top of the connection table's limits:
//! what one user, address or tenant may hold **at once** (not per minute,
//! which `limit.rs` bounds).
//!
//! - WebSocket connections per user (`gateway.max_ws_per_user`, counted
//!   from `connect`) and per client address (`gateway.max_ws_per_ip`,
//!   counted from the upgrade).
//! - Requests in progress per tenant (`gateway.max_requests_per_tenant`):
//!   authenticated HTTP requests and WebSocket method calls being answered.
//! - Agent runs in progress per tenant that HTTP or WebSocket clients
//!   started (`gateway.max_runs_per_tenant`), held until the run's answer
//!   is streamed or returned.
//!
//! A key over its quota is refused at once (`429 connection.limit` or
//! `429 tenant.busy`, counted in `exoclaw_connections_refused_total`
//! with the quota's name as `limit`); one tenant filling its quota never
//! takes the requests or runs of another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// One quota: at most `max` holders per key.
pub struct Quota {
    /// The metrics label of a refusal (`ws_per_user`, ...).
    name: &'static str,
    max: usize,
    held: Mutex<HashMap<Box<str>, usize>>,
}

/// A place under a [`Quota`]; freed when dropped.
pub struct Held {
    quota: Arc<Quota>,
    key: Box<str>,
}

impl Quota {
    pub fn new(name: &'static str, max: usize) -> Arc<Self> {
        Arc::new(Self {
            name,
            max,
            held: Mutex::new(HashMap::new()),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A place for `key`, or `None` when it holds `max` already.
    pub fn try_hold(self: &Arc<Self>, key: &str) -> Option<Held> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(key.into()).or_default();
        if *n >= self.max {
            if *n == 0 {
                held.remove(key);
            }
            return None;
        }
        *n += 1;
        Some(Held {
            quota: self.clone(),
            key: key.into(),
        })
    }

    /// Places `key` holds now.
    pub fn held(&self, key: &str) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(key).copied().unwrap_or(0)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self
            .quota
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("quota", &self.quota.name)
            .finish_non_exhaustive()
    }
}

/// Every quota of the edge (see the module docs).
pub struct Quotas {
    pub ws_per_user: Arc<Quota>,
    pub ws_per_ip: Arc<Quota>,
    pub requests_per_tenant: Arc<Quota>,
    pub runs_per_tenant: Arc<Quota>,
}

impl Quotas {
    pub fn new(g: &exoclaw_gateway::config::file::GatewayConfig) -> Self {
        Self {
            ws_per_user: Quota::new("ws_per_user", g.max_ws_per_user),
            ws_per_ip: Quota::new("ws_per_ip", g.max_ws_per_ip),
            requests_per_tenant: Quota::new("requests_per_tenant", g.max_requests_per_tenant),
            runs_per_tenant: Quota::new("runs_per_tenant", g.max_runs_per_tenant),
        }
    }
}

impl Default for Quotas {
    fn default() -> Self {
        Self::new(&exoclaw_gateway::config::file::GatewayConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_max_and_a_dropped_place_is_freed() {
        let q = Quota::new("t", 2);
        let a = q.try_hold("a").unwrap();
        let b = q.try_hold("a").unwrap();
        assert!(q.try_hold("a").is_none(), "over the quota");
        assert!(q.try_hold("b").is_some(), "another key is not affected");
        drop(a);
        assert_eq!(q.held("a"), 1);
        let _c = q.try_hold("a").unwrap();
        drop(b);
        drop(_c);
        assert_eq!(q.held("a"), 0);
        assert!(
            q.held.lock().unwrap().is_empty(),
            "empty keys are forgotten"
        );
    }
}
