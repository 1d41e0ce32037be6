//! [`ListMemo`]: a value computed once per shared list (`Arc<[T]>`), such as
//! the size of the tool definitions a run offers. The registry hands every
//! run with the same tools the same list, so sizing its JSON once instead of
//! on every call (by the history estimate, the rate limiter, the budget and
//! the usage estimate: four times a turn) costs a pointer comparison.
//!
//! The memo holds a clone of each list it remembers, so a remembered address
//! cannot be reused by another list while it is remembered.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Lists remembered at most (the most recent ones).
const KEPT: usize = 16;

pub struct ListMemo<T, V> {
    kept: Mutex<VecDeque<(Arc<[T]>, V)>>,
}

impl<T, V: Clone> ListMemo<T, V> {
    pub const fn new() -> Self {
        Self {
            kept: Mutex::new(VecDeque::new()),
        }
    }

    /// `compute(list)`, remembered for `list`.
    pub fn get(&self, list: &Arc<[T]>, compute: impl FnOnce(&[T]) -> V) -> V {
        if list.is_empty() {
            return compute(list);
        }
        {
            let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, v)) = kept.iter().find(|(l, _)| Arc::ptr_eq(l, list)) {
                return v.clone();
            }
        }
        let value = compute(list);
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= KEPT {
            kept.pop_front();
        }
        kept.push_back((list.clone(), value.clone()));
        value
    }
}

impl<T, V: Clone> Default for ListMemo<T, V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn computes_once_per_list_and_tells_lists_apart() {
        let memo: ListMemo<u32, u32> = ListMemo::new();
        let calls = AtomicUsize::new(0);
        let sum = |l: &[u32]| {
            calls.fetch_add(1, Ordering::Relaxed);
            l.iter().sum()
        };
        let a: Arc<[u32]> = Arc::from([1, 2, 3]);
        let b: Arc<[u32]> = Arc::from([1, 2, 3]);
        assert_eq!(memo.get(&a, sum), 6);
        let same_list = Arc::clone(&a);
        assert_eq!(memo.get(&same_list, sum), 6);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(
            memo.get(&b, sum),
            6,
            "an equal list elsewhere is another list"
        );
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        for i in 0..KEPT as u32 {
            memo.get(&Arc::from([i]), sum);
        }
        memo.get(&a, sum);
        assert_eq!(
            calls.load(Ordering::Relaxed),
            3 + KEPT,
            "the oldest is forgotten"
        );
    }
}
