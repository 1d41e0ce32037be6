//! Concurrency limits of delegations: one semaphore per key (a link, a
//! target agent, a parent run), made on first use and dropped when its last
//! slot is returned, so a thousand finished delegations leave nothing
//! behind. A caller waits at most a bounded time for a slot, and gives up
//! at once when its run is stopped.
//!
//! The limits hold per gateway process: gateways sharing one PostgreSQL
//! each admit up to the limit.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Why no slot was had.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    /// Every slot stayed taken for the whole wait.
    Busy,
    /// The waiting run was stopped.
    Stopped,
}

type Map<K> = Arc<Mutex<HashMap<K, Arc<Semaphore>>>>;

/// Semaphores by key (see the module docs).
pub struct Keyed<K> {
    map: Map<K>,
}

impl<K> Default for Keyed<K> {
    fn default() -> Self {
        Self {
            map: Arc::default(),
        }
    }
}

/// A held slot; returned on drop.
pub struct Slot<K: Hash + Eq> {
    permit: Option<OwnedSemaphorePermit>,
    semaphore: Arc<Semaphore>,
    key: Option<K>,
    map: Map<K>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    /// A slot of `key` (at most `limit` held at once), waiting at most
    /// `wait`.
    pub async fn acquire(
        &self,
        key: K,
        limit: u32,
        wait: Duration,
        stop: &CancellationToken,
    ) -> Result<Slot<K>, Wait> {
        let semaphore = self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(limit.max(1) as usize)))
            .clone();
        let mut slot = Slot {
            permit: None,
            semaphore: semaphore.clone(),
            key: Some(key),
            map: self.map.clone(),
        };
        // The slot (even without a permit) cleans the map up on every exit.
        let permit = tokio::select! {
            biased;
            () = stop.cancelled() => return Err(Wait::Stopped),
            r = tokio::time::timeout(wait, semaphore.acquire_owned()) => match r {
                Ok(Ok(p)) => p,
                // Never closed; a timeout is the only other way out.
                Ok(Err(_)) | Err(_) => return Err(Wait::Busy),
            },
        };
        slot.permit = Some(permit);
        Ok(slot)
    }

    /// Keys with a semaphore (held or awaited slots).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        // The map's reference and ours: nobody else holds or awaits it.
        if Arc::strong_count(&self.semaphore) == 2
            && let Some(key) = self.key.take()
        {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_most_limit_held_waiters_time_out_and_nothing_is_left() {
        let keyed = Keyed::<&str>::default();
        let stop = CancellationToken::new();
        let wait = Duration::from_secs(5);
        let a = keyed.acquire("k", 2, wait, &stop).await.unwrap();
        let b = keyed.acquire("k", 2, wait, &stop).await.unwrap();
        assert_eq!(
            keyed.acquire("k", 2, wait, &stop).await.err(),
            Some(Wait::Busy)
        );
        drop(a);
        let c = keyed.acquire("k", 2, wait, &stop).await.unwrap();
        let other = keyed.acquire("other", 1, wait, &stop).await.unwrap();
        assert_eq!(keyed.len(), 2);
        stop.cancel();
        assert_eq!(
            keyed.acquire("k", 2, wait, &stop).await.err(),
            Some(Wait::Stopped)
        );
        drop((b, c, other));
        assert_eq!(keyed.len(), 0, "idle keys are forgotten");
    }

    #[tokio::test]
    async fn a_waiter_gets_the_slot_a_holder_returns() {
        let keyed = Arc::new(Keyed::<u8>::default());
        let stop = CancellationToken::new();
        let held = keyed
            .acquire(1, 1, Duration::from_secs(5), &stop)
            .await
            .unwrap();
        let k = keyed.clone();
        let s = stop.clone();
        let waiter = async move { k.acquire(1, 1, Duration::from_secs(5), &s).await.is_ok() };
        let (got, ()) = tokio::join!(waiter, async move {
            tokio::task::yield_now().await;
            drop(held);
        });
        assert!(got);
        assert_eq!(keyed.len(), 0);
    }
}
