//! Tables that give back the room a burst made them grow. A `HashMap` or
//! `VecDeque` keeps its capacity when entries leave, so the gateway's
//! tables of open connections, queued runs, running sessions and pending
//! usage stayed sized for the largest burst they ever held (a heap profile
//! after 1,000 concurrent streams found four of 42 to 95 KB, each sized
//! for the 1,000: BENCHMARKS.md, issue 19). [`ShrinkWhenSparse`] is called
//! where entries leave: once a table holds less than a quarter of its room
//! it is reallocated at twice its length.
//!
//! Amortised O(1): a table shrunk to twice its length shrinks again only
//! after losing half its entries, and grows again only after doubling them.
//! Tables of at most [`KEEP_CAPACITY`] entries keep their room.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

/// Room every table may keep however empty it is: reallocating below this
/// saves less than the churn costs.
pub const KEEP_CAPACITY: usize = 64;

/// A table whose room can be given back; see the module doc.
pub trait ShrinkWhenSparse {
    /// Call after entries left: reallocates the table at twice its length
    /// when it fills less than a quarter of its capacity (and that is over
    /// [`KEEP_CAPACITY`]).
    fn shrink_when_sparse(&mut self);
}

fn sparse(len: usize, capacity: usize) -> bool {
    capacity > KEEP_CAPACITY && len < capacity / 4
}

fn target(len: usize) -> usize {
    (len * 2).max(KEEP_CAPACITY / 2)
}

impl<K: Eq + Hash, V, S: BuildHasher> ShrinkWhenSparse for HashMap<K, V, S> {
    fn shrink_when_sparse(&mut self) {
        if sparse(self.len(), self.capacity()) {
            self.shrink_to(target(self.len()));
        }
    }
}

impl<T> ShrinkWhenSparse for VecDeque<T> {
    fn shrink_when_sparse(&mut self) {
        if sparse(self.len(), self.capacity()) {
            self.shrink_to(target(self.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_map_gives_back_its_room_and_a_small_one_keeps_it() {
        let mut map: HashMap<u64, [u8; 64]> = HashMap::new();
        for i in 0..10_000 {
            map.insert(i, [0; 64]);
        }
        let grown = map.capacity();
        assert!(grown >= 10_000);
        for i in 10..10_000 {
            map.remove(&i);
            map.shrink_when_sparse();
        }
        assert_eq!(map.len(), 10);
        assert!(map.capacity() <= 4 * KEEP_CAPACITY, "{}", map.capacity());
        assert!((0..10).all(|i| map.contains_key(&i)), "entries kept");

        let mut small: HashMap<u64, u64> = HashMap::with_capacity(KEEP_CAPACITY / 2);
        let room = small.capacity();
        assert!(room <= KEEP_CAPACITY);
        small.insert(1, 1);
        small.remove(&1);
        small.shrink_when_sparse();
        assert_eq!(small.capacity(), room, "a small table keeps its room");
    }

    #[test]
    fn a_drained_queue_gives_back_its_room() {
        let mut queue: VecDeque<u64> = (0..10_000).collect();
        while queue.len() > 5 {
            queue.pop_front();
            queue.shrink_when_sparse();
        }
        assert!(
            queue.capacity() <= 4 * KEEP_CAPACITY,
            "{}",
            queue.capacity()
        );
        assert_eq!(
            queue.iter().copied().collect::<Vec<_>>(),
            [9_995, 9_996, 9_997, 9_998, 9_999]
        );
    }

    #[test]
    fn a_table_that_goes_up_and_down_after_shrinking_is_not_reallocated_each_time() {
        let mut map: HashMap<u64, u64> = (0..4_096).map(|i| (i, i)).collect();
        let grown = map.capacity();
        let mut next = 0;
        // (`capacity` also moves a little as removals leave tombstones; a
        // reallocation at least halves or doubles it.)
        let moved = |from: usize, to: usize| to * 3 < from * 2 || to * 2 > from * 3;
        while next < 4_096 && !moved(grown, map.capacity()) {
            map.remove(&next);
            map.shrink_when_sparse();
            next += 1;
        }
        assert!(moved(grown, map.capacity()), "the drained table shrank");
        // Just shrunk: entries come and go at this length (shrink_to_fit
        // here would make every insert grow the table again).
        let capacity = map.capacity();
        let mut reallocations = 0;
        for round in 0..10_000u64 {
            let key = 1_000_000 + round;
            map.insert(key, round);
            map.remove(&key);
            map.shrink_when_sparse();
            if moved(capacity, map.capacity()) {
                reallocations += 1;
            }
        }
        assert_eq!(reallocations, 0, "capacity {capacity}, len {}", map.len());
    }
}
