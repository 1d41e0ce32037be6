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

use bytes::Bytes;
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

/// What providers computed over the leading messages of one history's
/// requests: a provider's encoding of them and their token count. A value
/// kept for `messages[..n]` is found again while `messages[n - 1]` is still
/// the message it ended at (its [`Derived`] is kept here, so its allocation
/// cannot become another message's): a history only appends, and drops its
/// oldest messages only when it compacts, which also [clears](Self::clear)
/// this. One allocation per history, and the encoding's own: every cached
/// window holds one, and small long-lived allocations are what a burst of
/// sessions leaves behind in the allocator's pages.
#[derive(Clone, Default)]
pub struct Prefix(Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    /// The encoding's format and its bytes.
    wire: Option<Covered<(&'static str, Bytes)>>,
    tokens: Option<Covered<u64>>,
}

/// A value computed over `messages[..n]`, kept with the message it ended
/// at: [`Prefix`]'s values, and the history's own tally
/// (`agent::history`).
#[derive(Debug)]
pub(crate) struct Covered<T> {
    pub(crate) n: usize,
    last: Derived,
    value: T,
}

impl<T: Clone> Covered<T> {
    /// `value` as computed over all of `messages` (none for no messages).
    pub(crate) fn new<M: Holder>(messages: &[M], value: T) -> Option<Self> {
        let last = messages.last()?.derived().clone();
        Some(Self {
            n: messages.len(),
            last,
            value,
        })
    }

    /// The value and how many leading `messages` it covers, while still theirs.
    pub(crate) fn of<M: Holder>(&self, messages: &[M]) -> Option<(usize, T)> {
        let still = self.n <= messages.len() && messages[self.n - 1].derived().is(&self.last);
        still.then(|| (self.n, self.value.clone()))
    }
}

impl Prefix {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // Every method replaces whole values: a panic cannot leave one half
        // written.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The encoding in `format` of the leading messages kept, and how many
    /// it covers.
    pub fn wire<M: Holder>(&self, format: &'static str, messages: &[M]) -> Option<(usize, Bytes)> {
        let kept = self.lock();
        let (n, (kept_format, bytes)) = kept.wire.as_ref()?.of(messages)?;
        (kept_format == format).then_some((n, bytes))
    }

    /// Keep `bytes` as the encoding in `format` of all of `messages`.
    pub fn keep_wire<M: Holder>(&self, format: &'static str, messages: &[M], bytes: Bytes) {
        if let Some(wire) = Covered::new(messages, (format, bytes)) {
            self.lock().wire = Some(wire);
        }
    }

    /// The token count of the leading messages kept, and how many it covers.
    pub fn tokens<M: Holder>(&self, messages: &[M]) -> Option<(usize, u64)> {
        self.lock().tokens.as_ref()?.of(messages)
    }

    /// Keep `sum` as the token count of all of `messages`.
    pub fn keep_tokens<M: Holder>(&self, messages: &[M], sum: u64) {
        if let Some(tokens) = Covered::new(messages, sum) {
            self.lock().tokens = Some(tokens);
        }
    }

    /// Forget everything: the history dropped messages from its start.
    pub fn clear(&self) {
        *self.lock() = Kept::default();
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
        assert!(p.tokens(&ms).is_none());
        p.keep_tokens(&ms, 30);
        p.keep_wire("fmt", &ms, Bytes::from_static(b"abc"));
        // Appended to: still covers the first three.
        ms.extend(messages(2));
        assert_eq!(p.tokens(&ms), Some((3, 30)));
        assert_eq!(p.wire("fmt", &ms), Some((3, Bytes::from_static(b"abc"))));
        // Another format is not found.
        assert!(p.wire("other", &ms).is_none());
        // A clone shares it.
        let shared = p.clone();
        shared.keep_tokens(&ms, 50);
        assert_eq!(p.tokens(&ms), Some((5, 50)));
        assert_eq!(p.wire("fmt", &ms).map(|(n, _)| n), Some(3));
        // The oldest dropped and one more appended: as many messages as it
        // covers, but the one it ended at moved.
        ms.remove(0);
        ms.extend(messages(1));
        assert!(p.tokens(&ms).is_none());
        assert!(p.wire("fmt", &ms).is_none());
        // Fewer messages than it covers, or others of the same length.
        p.keep_tokens(&ms, 60);
        assert!(p.tokens(&ms[..4]).is_none());
        assert!(p.tokens(&messages(5)).is_none());
        assert!(p.tokens(&ms).is_some());
        p.clear();
        assert!(p.tokens(&ms).is_none());
        // Nothing is kept for no messages.
        p.keep_tokens(&messages(0), 1);
        assert!(p.tokens(&messages(0)).is_none());
    }
}
