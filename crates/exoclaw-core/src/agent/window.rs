//! Hot sessions' windows, kept between turns so a turn's cost does not grow
//! with the session: what the model saw last time (the latest summary and the
//! messages after it, already decoded) and the last stored `seq` it covers.
//!
//! A turn takes its session's window out ([`Windows::take`]), reads only the
//! messages stored after `last_seq` (normally none: another gateway or an
//! announcement may have added some), and puts the window back when it ends
//! ([`Windows::put`]). Messages are append-only, so "after `last_seq`" is the
//! whole difference. A window is only put back when every message the turn
//! appended followed the one before it (`seq` = `last_seq` + 1): a gap means
//! someone else wrote to the session meanwhile, and the next turn reads the
//! window from the store instead. A store error drops the window the same way.
//!
//! Bounded by bytes (an estimate of the decoded text). A window out with its
//! turn keeps its place. A session new to the cache takes free room, or the
//! room of the least recently used windows that have been idle for a minute
//! ([`GIVE_WAY`]); when every window is busier than that it is not kept, so a
//! stream of sessions larger than the budget (every one visited in turn) still
//! finds most of its windows instead of evicting each before its next turn.
//! [`Windows::expire`] drops windows idle for longer than the TTL so an idle
//! gateway gives the memory back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hashlink::LinkedHashMap;

use super::history::History;
use crate::SessionId;

/// How long a window must have been idle before a new session's window may
/// take its room.
pub const GIVE_WAY: Duration = Duration::from_secs(60);

/// One session's window.
#[derive(Debug)]
pub struct Window {
    pub history: History,
    /// The highest stored `seq` the window has seen (also of messages it
    /// skipped, such as summaries and notices).
    pub last_seq: i64,
}

impl Window {
    /// The estimate of what the window holds, counting only the messages
    /// added since it was last estimated (`History::tally`): a long
    /// session's window is put back after every turn.
    fn bytes(&mut self) -> usize {
        self.history.tally().bytes + self.history.summary.as_ref().map_or(0, String::len)
    }
}

struct Entry {
    /// `None` while the window is out with its turn (its room stays
    /// reserved).
    window: Option<Window>,
    bytes: usize,
    used: Instant,
}

struct Inner {
    map: LinkedHashMap<SessionId, Entry>,
    bytes: usize,
}

/// The cache. `Windows::new(0)` keeps nothing (every turn reads its window).
pub struct Windows {
    budget: usize,
    ttl: Duration,
    give_way: Duration,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sessions, bytes) = self.usage();
        f.debug_struct("Windows")
            .field("budget", &self.budget)
            .field("sessions", &sessions)
            .field("bytes", &bytes)
            .finish()
    }
}

impl Windows {
    /// At most `budget` bytes of windows, each dropped after `ttl` unused.
    pub fn new(budget: usize, ttl: Duration) -> Self {
        Self::with_give_way(budget, ttl, GIVE_WAY)
    }

    /// [`Self::new`] with another idle time before a window gives way.
    pub fn with_give_way(budget: usize, ttl: Duration, give_way: Duration) -> Self {
        Self {
            budget,
            ttl,
            give_way,
            inner: Mutex::new(Inner {
                map: LinkedHashMap::new(),
                bytes: 0,
            }),
        }
    }

    /// A cache that keeps nothing.
    pub fn disabled() -> Self {
        Self::new(0, Duration::ZERO)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent map (every
        // method updates `bytes` with the map): keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The session's window, out of the cache while its turn runs (its room
    /// stays reserved until [`Self::put`]).
    pub fn take(&self, session: &SessionId) -> Option<Window> {
        if self.budget == 0 {
            return None;
        }
        let mut inner = self.lock();
        let entry = inner.map.to_back(session)?;
        entry.used = Instant::now();
        entry.window.take()
    }

    /// Keep `window` for the session's next turn: in its reserved room, in
    /// free room, or in the room of windows idle for [`GIVE_WAY`]; else (or
    /// when it alone is over the budget) it is not kept.
    pub fn put(&self, session: SessionId, mut window: Window) {
        let bytes = window.bytes();
        let mut inner = self.lock();
        let reserved = inner.map.remove(&session).map(|old| {
            inner.bytes -= old.bytes;
        });
        if bytes > self.budget {
            return;
        }
        while inner.bytes + bytes > self.budget {
            let Some((_, front)) = inner.map.front() else {
                break;
            };
            // A session that had a room may push the least recently used
            // out; a new one only those idle long enough.
            if reserved.is_none() && front.used.elapsed() < self.give_way {
                return;
            }
            if let Some((_, old)) = inner.map.pop_front() {
                inner.bytes -= old.bytes;
            }
        }
        inner.bytes += bytes;
        inner.map.insert(
            session,
            Entry {
                window: Some(window),
                bytes,
                used: Instant::now(),
            },
        );
    }

    /// Drop the windows unused for longer than the TTL.
    pub fn expire(&self) {
        let mut inner = self.lock();
        while let Some((_, front)) = inner.map.front() {
            if front.used.elapsed() <= self.ttl {
                break;
            }
            if let Some((_, old)) = inner.map.pop_front() {
                inner.bytes -= old.bytes;
            }
        }
        if inner.map.is_empty() {
            inner.map.shrink_to_fit();
        }
    }

    /// (sessions, bytes) held now.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.map.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ChatMessage;
    use std::sync::Arc;

    fn window(text: &str, last_seq: i64) -> Window {
        Window {
            history: History {
                summary: None,
                seqs: vec![last_seq],
                messages: Arc::new(vec![ChatMessage::user(text)]),
                ..History::default()
            },
            last_seq,
        }
    }

    fn id(s: &str) -> SessionId {
        SessionId::from(s.to_owned())
    }

    /// The per-message estimate holds for the types as they are.
    #[test]
    fn the_estimate_covers_a_message() {
        assert!(std::mem::size_of::<crate::provider::ContentPart>() <= 96);
        assert!(std::mem::size_of::<crate::provider::ChatMessage>() + 8 <= 56);
    }

    #[test]
    fn a_window_is_taken_once_and_put_back() {
        let w = Windows::new(1 << 20, Duration::from_secs(60));
        assert!(w.take(&id("s")).is_none());
        w.put(id("s"), window("hello", 2));
        let held = w.usage();
        assert_eq!(held.0, 1);
        let got = w.take(&id("s")).expect("cached");
        assert_eq!(got.last_seq, 2);
        assert!(w.take(&id("s")).is_none(), "taken windows are not shared");
        assert_eq!(w.usage(), held, "its room stays reserved while it is out");
        w.put(id("s"), got);
        assert!(w.take(&id("s")).is_some());
    }

    #[test]
    fn new_sessions_take_only_free_or_idle_room() {
        let one = window(&"x".repeat(400), 1).bytes();
        let busy = Windows::new(one * 2, Duration::from_secs(60));
        busy.put(id("a"), window(&"x".repeat(400), 1));
        busy.put(id("b"), window(&"x".repeat(400), 1));
        busy.put(id("c"), window(&"x".repeat(400), 1));
        assert!(
            busy.take(&id("c")).is_none(),
            "busy windows keep their room"
        );
        assert!(busy.take(&id("a")).is_some());
        assert!(busy.take(&id("b")).is_some());
        let idle = Windows::with_give_way(one * 2, Duration::from_secs(60), Duration::ZERO);
        idle.put(id("a"), window(&"x".repeat(400), 1));
        idle.put(id("b"), window(&"x".repeat(400), 1));
        idle.put(id("c"), window(&"x".repeat(400), 1));
        assert!(
            idle.take(&id("a")).is_none(),
            "the least recently used gave way"
        );
        assert!(idle.take(&id("c")).is_some());
    }

    #[test]
    fn a_returning_window_pushes_the_least_recently_used_out() {
        let one = window(&"x".repeat(400), 1).bytes();
        let w = Windows::new(one * 2 + 100, Duration::from_secs(60));
        w.put(id("a"), window(&"x".repeat(400), 1));
        w.put(id("b"), window(&"x".repeat(400), 1));
        let b = w.take(&id("b")).expect("cached");
        assert_eq!(b.last_seq, 1);
        // b grew by a turn: it keeps its room and a (least recent) goes.
        w.put(id("b"), window(&"x".repeat(600), 2));
        assert!(w.take(&id("a")).is_none());
        assert_eq!(w.take(&id("b")).map(|b| b.last_seq), Some(2));
        // A window bigger than the whole budget is not kept.
        w.put(id("big"), window(&"x".repeat(4000), 1));
        assert!(w.take(&id("big")).is_none());
        assert_eq!(w.usage().0, 1, "only b's room");
    }

    #[test]
    fn disabled_and_expired_windows_are_gone() {
        let off = Windows::disabled();
        off.put(id("s"), window("hi", 1));
        assert!(off.take(&id("s")).is_none());
        let w = Windows::new(1 << 20, Duration::ZERO);
        w.put(id("s"), window("hi", 1));
        std::thread::sleep(Duration::from_millis(2));
        w.expire();
        assert_eq!(w.usage(), (0, 0));
    }
}
