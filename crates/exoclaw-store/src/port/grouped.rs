//! Small single-row writes a backend may commit together with others
//! queued at the same moment: the ports hand each to the backend's
//! `write_grouped`, and when it answers `None` (PostgreSQL, where each
//! statement is a trip to a server with many connections, not a turn on one
//! writer) they run their own statement. SQLite commits them in groups
//! (`sqlite/grouped.rs`).
//!
//! Every kind keeps its statement's outcome: an insert that conflicts
//! inserts nothing and says so, an update of a row that is not there (or
//! not pending) changes nothing and says so.

use exoclaw_core::UnixMillis;
use exoclaw_core::store::channel::OutboxMessage;
use exoclaw_core::store::{StoreError, StoreResult};

/// One write, its values owned (it may wait in a queue).
#[derive(Debug, Clone)]
pub(crate) enum Small {
    /// `ChannelStore::record_inbound`: insert unless seen.
    Inbound {
        tenant: String,
        channel: String,
        platform_id: String,
        now: UnixMillis,
    },
    /// `UserStore::create_user`: insert unless the id or the name is taken.
    User {
        id: String,
        tenant: String,
        name: String,
        role: String,
        now: UnixMillis,
    },
    /// `PairingStore::map_channel_sender`'s insert: unless mapped already.
    Sender {
        tenant: String,
        channel: String,
        sender_id: String,
        user: String,
        now: UnixMillis,
    },
    /// `ChannelStore::enqueue_outbound` of a message without a file: insert
    /// unless its idempotency key is queued already.
    Outbox {
        tenant: String,
        id: String,
        channel: String,
        peer: String,
        text: String,
        idempotency_key: String,
        now: UnixMillis,
    },
    /// `ChannelStore::mark_outbound_sent`: only while it is pending.
    Sent {
        tenant: String,
        id: String,
        platform_id: Option<String>,
        now: UnixMillis,
    },
}

/// What a [`Small`] write did, kind for kind.
#[derive(Debug)]
pub(crate) enum Done {
    /// Whether the id was new.
    Inbound(bool),
    /// Whether the user was inserted.
    User(bool),
    /// The mapping exists now (inserted or there before).
    Sender,
    /// The row inserted, or `None` when the key was queued already (boxed:
    /// the other kinds are a flag).
    Outbox(Option<Box<OutboxMessage>>),
    /// Whether the message was pending and is now sent.
    Sent(bool),
}

impl Done {
    fn mismatch(&self, wanted: &str) -> StoreError {
        StoreError::Other(format!("a grouped write answered {self:?} for {wanted}"))
    }

    pub(crate) fn inbound(self) -> StoreResult<bool> {
        match self {
            Self::Inbound(new) => Ok(new),
            other => Err(other.mismatch("an inbound id")),
        }
    }

    pub(crate) fn user(self) -> StoreResult<bool> {
        match self {
            Self::User(inserted) => Ok(inserted),
            other => Err(other.mismatch("a user")),
        }
    }

    pub(crate) fn sender(self) -> StoreResult<()> {
        match self {
            Self::Sender => Ok(()),
            other => Err(other.mismatch("a channel sender")),
        }
    }

    pub(crate) fn outbox(self) -> StoreResult<Option<OutboxMessage>> {
        match self {
            Self::Outbox(row) => Ok(row.map(|r| *r)),
            other => Err(other.mismatch("an outbox message")),
        }
    }

    pub(crate) fn sent(self) -> StoreResult<bool> {
        match self {
            Self::Sent(done) => Ok(done),
            other => Err(other.mismatch("a sent mark")),
        }
    }
}
