//! Revocation events inside one gateway process: revoking a key or a
//! device, and disabling or deleting a user, announce the affected user so
//! that long-lived connections (the WebSocket) re-check their credential at
//! once instead of serving on until they close.
//!
//! Only this process's API sees these events. Revocations made elsewhere
//! (the CLI, another gateway instance on the same PostgreSQL, a gateway
//! token rotated out after its grace period) reach open connections through
//! their periodic re-check (`gateway.credential_recheck_sec`) and the check
//! before every method.

use exoclaw_core::{TenantId, UserId};
use tokio::sync::broadcast;

/// Events buffered per subscriber; a subscriber that falls behind re-checks
/// its credential (it cannot tell what it missed).
const CAPACITY: usize = 256;

/// A user whose credentials changed (a key or device revoked, the user
/// disabled or deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoked {
    pub tenant: TenantId,
    pub user: UserId,
}

/// The announcer (one per process, shared by every handler).
pub struct Revocations {
    tx: broadcast::Sender<Revoked>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Revocations {
    /// Announce that `user`'s credentials changed.
    pub fn announce(&self, tenant: &TenantId, user: &UserId) {
        // No subscriber (no open connection) is not an error.
        let _ = self.tx.send(Revoked {
            tenant: tenant.clone(),
            user: user.clone(),
        });
    }

    pub fn subscribe(&self) -> Watch {
        Watch(self.tx.subscribe())
    }
}

/// One connection's view of the announcements.
pub struct Watch(broadcast::Receiver<Revoked>);

impl Watch {
    /// Wait until an announcement may concern `(tenant, user)`: one naming
    /// them, or a gap in what this watch saw. Never returns when the
    /// announcer is gone (the process is stopping).
    pub async fn concerning(&mut self, tenant: &TenantId, user: &UserId) {
        loop {
            match self.0.recv().await {
                Ok(r) if r.tenant == *tenant && r.user == *user => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_watch_wakes_for_its_user_only() {
        let hub = Revocations::default();
        let mut w = hub.subscribe();
        let (t, alice, bob) = (TenantId::new("t"), UserId::new("alice"), UserId::new("bob"));
        hub.announce(&t, &bob);
        hub.announce(&TenantId::new("other"), &alice);
        let early = tokio::time::timeout(Duration::from_millis(50), w.concerning(&t, &alice)).await;
        assert!(early.is_err(), "others' revocations do not wake alice's");
        hub.announce(&t, &alice);
        tokio::time::timeout(Duration::from_secs(1), w.concerning(&t, &alice))
            .await
            .expect("alice's revocation wakes it");
    }

    #[tokio::test]
    async fn a_watch_that_fell_behind_wakes_to_recheck() {
        let hub = Revocations::default();
        let mut w = hub.subscribe();
        let t = TenantId::new("t");
        for i in 0..CAPACITY + 10 {
            hub.announce(&t, &UserId::new(format!("u{i}")));
        }
        tokio::time::timeout(
            Duration::from_secs(1),
            w.concerning(&t, &UserId::new("nobody")),
        )
        .await
        .expect("a gap counts as concerning");
    }
}
