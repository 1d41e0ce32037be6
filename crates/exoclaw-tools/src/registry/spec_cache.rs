//! The spec lists the registry hands to runs, kept: every turn offers the
//! model its tools, and building the list (each spec's name, description
//! and JSON schema copied) then dropping it was a tenth of a turn's CPU.
//! A list is keyed by the entries it lists (their addresses) and valid for
//! the registry's generation, which every registration and removal bumps:
//! an address reused by a new entry is a new generation, so a kept list is
//! never another tool's.

use exoclaw_core::provider::ToolSpec;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Lists kept at most; past it they are all dropped and built again as
/// needed (one per distinct tool set in use, normally a handful).
const MAX_LISTS: usize = 256;

#[derive(Default)]
pub(super) struct SpecLists {
    generation: AtomicU64,
    lists: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    generation: u64,
    by_entries: HashMap<Vec<usize>, Arc<[ToolSpec]>>,
}

impl SpecLists {
    /// Tools were registered or removed: every kept list may be stale.
    pub(super) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The list of `entries`' specs, kept or made with `spec`.
    pub(super) fn get_or_make<E>(
        &self,
        entries: &[&Arc<E>],
        spec: impl Fn(&E) -> ToolSpec,
    ) -> Arc<[ToolSpec]> {
        let key: Vec<usize> = entries.iter().map(|e| Arc::as_ptr(e).addr()).collect();
        // The caller holds the registry's read lock, and changes bump the
        // generation under its write lock: the entries and the generation
        // read here belong together.
        let generation = self.generation.load(Ordering::Acquire);
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        if lists.generation != generation || lists.by_entries.len() >= MAX_LISTS {
            lists.by_entries.clear();
            lists.generation = generation;
        }
        lists
            .by_entries
            .entry(key)
            .or_insert_with(|| entries.iter().map(|e| spec(e)).collect())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters: json!({}),
        }
    }

    #[test]
    fn the_same_entries_share_one_list_until_something_changes() {
        let lists = SpecLists::default();
        let a = Arc::new(spec("a"));
        let b = Arc::new(spec("b"));
        let make = |e: &ToolSpec| e.clone();
        let ab = lists.get_or_make(&[&a, &b], make);
        assert!(Arc::ptr_eq(&ab, &lists.get_or_make(&[&a, &b], make)));
        let only_a = lists.get_or_make(&[&a], make);
        assert_eq!(only_a.len(), 1);
        assert!(!Arc::ptr_eq(&ab, &only_a));
        lists.changed();
        let again = lists.get_or_make(&[&a, &b], make);
        assert!(!Arc::ptr_eq(&ab, &again), "a change drops the kept lists");
        assert_eq!(&*again, &*ab);
    }
}
