//! The namespaces' sign bits kept in memory between vector searches
//! ([`VectorCache`]). A search reads its namespace's chunks from the
//! sqlite-vec table only when the agent's memories changed since the copy
//! was taken: `memory_generations` (schema 25) holds a number per tenant
//! and agent that triggers raise on every write to `memories`, read in the
//! search's own read transaction, so a copy is used only when it is exactly
//! what the table holds. Reading the chunks of 100,000 memories (5.6 MB at
//! 384 dimensions, through SQLite's page reads and sqlx's row copies) was
//! most of the vector list's time (BENCHMARKS.md).
//!
//! Bounded: at most [`MAX_BYTES`] in all (least recently used first out; a
//! namespace larger than that is never kept), and the memory trim drops
//! what no search has used for [`IDLE`].

use crate::rule::memory::Packed;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What the cache holds at most, in bytes of rowids and bits (about
/// 570,000 memories at 384 dimensions).
pub(crate) const MAX_BYTES: usize = 32 << 20;
/// A copy unused this long goes at the next memory trim.
pub(crate) const IDLE: Duration = Duration::from_secs(60);

/// The partitions a vector search reads: tenant, agent, the user (whose
/// own memories and the shared ones are read together), embedder, and the
/// index's dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) tenant: String,
    pub(crate) agent: String,
    pub(crate) user: Option<String>,
    pub(crate) model: String,
    pub(crate) dims: usize,
}

struct Entry {
    generation: i64,
    packed: Arc<Packed>,
    used: Instant,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct VectorCache {
    entries: Mutex<HashMap<Key, Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl VectorCache {
    /// The copy of `key` taken at `generation`, if it is held.
    pub(crate) fn get(&self, key: &Key, generation: i64) -> Option<Arc<Packed>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let found = entries
            .get_mut(key)
            .filter(|e| e.generation == generation)
            .map(|e| {
                e.used = Instant::now();
                e.packed.clone()
            });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `packed`, read at `generation`, for `key` (replacing an older
    /// copy: a search that read an older snapshot than the copy held
    /// changes nothing), making room by dropping the least recently used;
    /// nothing is kept when it alone is over [`MAX_BYTES`].
    pub(crate) fn put(&self, key: Key, generation: i64, packed: Arc<Packed>) {
        let size = packed.bytes();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.get(&key).is_some_and(|e| e.generation > generation) {
            return;
        }
        entries.remove(&key);
        if size > MAX_BYTES {
            return;
        }
        let mut held: usize = entries.values().map(|e| e.packed.bytes()).sum();
        while held + size > MAX_BYTES {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = entries.remove(&oldest) {
                held -= e.packed.bytes();
            }
        }
        entries.insert(
            key,
            Entry {
                generation,
                packed,
                used: Instant::now(),
            },
        );
    }

    /// Drops the copies no search has used for [`IDLE`] (the memory trim).
    pub(crate) fn release_idle(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, e| e.used.elapsed() < IDLE);
        entries.shrink_to_fit();
    }

    /// Searches answered from a copy, and those that read the table.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(agent: &str) -> Key {
        Key {
            tenant: "t".to_owned(),
            agent: agent.to_owned(),
            user: None,
            model: "m".to_owned(),
            dims: 8,
        }
    }

    fn packed(n: usize) -> Arc<Packed> {
        let mut p = Packed::new(1);
        let slots = 8 * n.div_ceil(8);
        let rowids: Vec<u8> = (0..slots as i64).flat_map(i64::to_ne_bytes).collect();
        let mut validity = vec![0u8; slots / 8];
        for i in 0..n {
            validity[i / 8] |= 1 << (i % 8);
        }
        p.push_chunk(&validity, &rowids, &vec![0xAA; slots])
            .unwrap();
        Arc::new(p.finish())
    }

    #[test]
    fn a_copy_is_used_only_at_its_generation() {
        let c = VectorCache::default();
        assert!(c.get(&key("a"), 1).is_none());
        c.put(key("a"), 1, packed(3));
        assert_eq!(c.get(&key("a"), 1).unwrap().bytes(), 27);
        assert!(
            c.get(&key("a"), 2).is_none(),
            "the agent's memories changed"
        );
        c.put(key("a"), 2, packed(4));
        c.put(key("a"), 1, packed(3));
        assert_eq!(
            c.get(&key("a"), 2).unwrap().bytes(),
            36,
            "a search of an older snapshot changes nothing"
        );
        assert!(c.get(&key("b"), 1).is_none(), "another namespace");
        assert_eq!(c.counts(), (2, 3));
    }

    #[test]
    fn the_least_recently_used_goes_first_and_nothing_over_the_bound_is_kept() {
        let c = VectorCache::default();
        let half = MAX_BYTES / 2 / 9;
        c.put(key("a"), 1, packed(half));
        c.put(key("b"), 1, packed(half));
        assert!(c.get(&key("a"), 1).is_some());
        c.put(key("c"), 1, packed(half));
        assert!(
            c.get(&key("b"), 1).is_none(),
            "b was the least recently used"
        );
        assert!(c.get(&key("a"), 1).is_some());
        assert!(c.get(&key("c"), 1).is_some());
        c.put(key("d"), 1, packed(MAX_BYTES / 9 + 1));
        assert!(c.get(&key("d"), 1).is_none(), "over the bound alone");
        c.release_idle();
        assert!(c.get(&key("a"), 1).is_some(), "used within IDLE");
    }
}
