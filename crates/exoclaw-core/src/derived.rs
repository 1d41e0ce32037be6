//! What providers compute from a conversation, kept so that a turn works
//! only on what is new since the last one. A session's window goes to the
//! model whole on every turn, so a long session was encoded and counted
//! again, message by message, turn after turn.
//!
//! - [`Derived`], kept with each message: its token estimate.
//! - [`Prefix`], kept with a history and the requests made from it: values
//!   over its leading messages, such as a provider's encoding of them (one
//!   buffer, copied whole, instead of a piece per message) or their token
//!   count.
//!
//! Sound because a message is never changed once made (the history only
//! appends; a summary replaces messages by new ones). Clones share what was
//! kept. Equality, `Debug` and serde ignore both: they are caches, not part
//! of the message or the request.

use std::any::Any;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

#[derive(Clone, Default)]
pub struct Derived(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// The token estimate (one estimator per process).
    tokens: OnceLock<u64>,
}

impl Derived {
    /// The token estimate, computed by `estimate` the first time.
    pub fn tokens(&self, estimate: impl FnOnce() -> u64) -> u64 {
        *self.0.tokens.get_or_init(estimate)
    }

    /// Whether `other` is this very message's (not an equal one's): a clone
    /// of the message shares it.
    pub fn is(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for Derived {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

/// A message that carries its [`Derived`].
pub trait Holder {
    fn derived(&self) -> &Derived;
}

/// Values computed over the leading messages of one history's requests,
/// each under its own key. A value kept for `messages[..n]` is found again
/// while `messages[n - 1]` is still the message it ended at (its
/// [`Derived`] is kept here, so its allocation cannot become another
/// message's): a history only appends, and drops its oldest messages only
/// when it compacts, which also [clears](Self::clear) this.
#[derive(Clone, Default)]
pub struct Prefix(Arc<Mutex<Vec<Slot>>>);

struct Slot {
    key: &'static str,
    n: usize,
    last: Derived,
    value: Arc<dyn Any + Send + Sync>,
}

impl Prefix {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        // Every method replaces whole slots: a panic cannot leave one half
        // written.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value kept under `key` and how many leading `messages` it
    /// covers, while still theirs.
    pub fn get<T: Any + Send + Sync, M: Holder>(
        &self,
        key: &'static str,
        messages: &[M],
    ) -> Option<(usize, Arc<T>)> {
        let slots = self.lock();
        let slot = slots.iter().find(|s| s.key == key)?;
        let still = slot.n <= messages.len() && messages[slot.n - 1].derived().is(&slot.last);
        if !still {
            return None;
        }
        let value = Arc::clone(&slot.value).downcast::<T>().ok()?;
        Some((slot.n, value))
    }

    /// Keep `value` under `key`, as computed over all of `messages`
    /// (nothing is kept for none).
    pub fn keep<T: Any + Send + Sync, M: Holder>(
        &self,
        key: &'static str,
        messages: &[M],
        value: T,
    ) {
        let Some(last) = messages.last() else {
            return;
        };
        let slot = Slot {
            key,
            n: messages.len(),
            last: last.derived().clone(),
            value: Arc::new(value),
        };
        let mut slots = self.lock();
        match slots.iter_mut().find(|s| s.key == key) {
            Some(kept) => *kept = slot,
            None => slots.push(slot),
        }
    }

    /// Forget everything: the history dropped messages from its start.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

impl PartialEq for Prefix {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prefix")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_estimates_are_kept_once_and_shared_by_clones() {
        let d = Derived::default();
        let clone = d.clone();
        assert_eq!(d.tokens(|| 7), 7);
        assert_eq!(clone.tokens(|| 9), 7);
        assert!(d.is(&d.clone()) && !d.is(&Derived::default()));
    }

    struct M(Derived);

    impl Holder for M {
        fn derived(&self) -> &Derived {
            &self.0
        }
    }

    fn messages(n: usize) -> Vec<M> {
        (0..n).map(|_| M(Derived::default())).collect()
    }

    #[test]
    fn a_prefix_value_holds_while_its_last_message_stays_in_place() {
        let p = Prefix::default();
        let mut ms = messages(3);
        assert!(p.get::<u64, _>("sum", &ms).is_none());
        p.keep("sum", &ms, 30_u64);
        p.keep("text", &ms, String::from("abc"));
        // Appended to: still covers the first three.
        ms.extend(messages(2));
        assert_eq!(
            p.get::<u64, _>("sum", &ms).map(|(n, v)| (n, *v)),
            Some((3, 30))
        );
        assert_eq!(
            p.get::<String, _>("text", &ms)
                .map(|(n, v)| (n, (*v).clone())),
            Some((3, "abc".to_owned()))
        );
        // Another type under the key is not found.
        assert!(p.get::<u32, _>("sum", &ms).is_none());
        // A clone shares it.
        let shared = p.clone();
        shared.keep("other", &ms, 1_u64);
        assert!(p.get::<u64, _>("other", &ms).is_some());
        // Kept again over more messages: replaces the key's value only.
        p.keep("sum", &ms, 50_u64);
        assert_eq!(p.get::<u64, _>("sum", &ms).map(|(n, _)| n), Some(5));
        assert_eq!(p.get::<String, _>("text", &ms).map(|(n, _)| n), Some(3));
        // The oldest dropped and one more appended: as many messages as it
        // covers, but the one it ended at moved.
        ms.remove(0);
        ms.extend(messages(1));
        assert!(p.get::<u64, _>("sum", &ms).is_none());
        assert!(p.get::<String, _>("text", &ms).is_none());
        // Fewer messages than it covers, or others of the same length.
        p.keep("sum", &ms, 60_u64);
        assert!(p.get::<u64, _>("sum", &ms[..4]).is_none());
        assert!(p.get::<u64, _>("sum", &messages(5)).is_none());
        assert!(p.get::<u64, _>("sum", &ms).is_some());
        p.clear();
        assert!(p.get::<u64, _>("sum", &ms).is_none());
        // Nothing is kept for no messages.
        p.keep("sum", &messages(0), 1_u64);
        assert!(p.get::<u64, _>("sum", &messages(0)).is_none());
    }
}
