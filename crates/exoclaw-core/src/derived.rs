//! [`Derived`]: what providers compute from a chat message — its encoding
//! in a wire format, its token estimate — kept with the message. A session's
//! window goes to the model whole on every turn, so a long session was
//! encoded and counted again, message by message, turn after turn; with the
//! results kept, a turn encodes and counts only its new messages and copies
//! the rest.
//!
//! Sound because a message is never changed once made (the history only
//! appends; a summary replaces messages by new ones). Clones share what was
//! kept (the window's copy-on-write clone does not encode again). Equality,
//! `Debug` and serde ignore it: it is a cache, not part of the message.

use std::sync::{Arc, OnceLock};

#[derive(Clone, Default)]
pub struct Derived(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// The message in one wire format, named by the encoder: the first
    /// encoder to ask keeps its own; another format is encoded each time.
    wire: OnceLock<(&'static str, Box<str>)>,
    /// The usage estimator's input tokens for the message.
    tokens: OnceLock<u64>,
}

impl Derived {
    /// The message's kept encoding in `format`, if that is what was kept.
    pub fn wire(&self, format: &'static str) -> Option<&str> {
        self.0
            .wire
            .get()
            .and_then(|(kept, text)| (*kept == format).then_some(&**text))
    }

    /// Keep `text` as the message's encoding in `format`, unless an
    /// encoding (this format's or another's) is kept already.
    pub fn keep_wire(&self, format: &'static str, text: Box<str>) {
        let _ = self.0.wire.set((format, text));
    }

    /// The message's token estimate, computed once.
    pub fn tokens(&self, estimate: impl FnOnce() -> u64) -> u64 {
        *self.0.tokens.get_or_init(estimate)
    }

    /// Whether `other` is this message's (a clone of it), not another
    /// message's that happens to have kept the same things.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_once_per_format_and_shared_by_clones() {
        let d = Derived::default();
        assert_eq!(d.wire("openai"), None);
        d.keep_wire("openai", "{\"role\":\"user\"}".into());
        let clone = d.clone();
        assert_eq!(clone.wire("openai"), Some("{\"role\":\"user\"}"));
        clone.keep_wire("anthropic", "other".into());
        assert_eq!(
            clone.wire("anthropic"),
            None,
            "the first format keeps its place"
        );
        assert_eq!(d.wire("openai"), Some("{\"role\":\"user\"}"));
        assert_eq!(d.tokens(|| 7), 7);
        assert_eq!(clone.tokens(|| 9), 7);
        assert!(d.is(&d.clone()) && !d.is(&Derived::default()));
    }
}
