//! Messaging channels' durable state ([`ChannelStore`]): the outbox every
//! outbound message is written to before it is sent, the platform ids of
//! inbound messages already handled (so a redelivered update or a replayed
//! webhook event is seen once), and each channel's cursor (Telegram's
//! `getUpdates` offset), so a restart neither repeats nor skips.
//!
//! An outbox message is `pending` until a sender delivers it (`sent`) or it
//! failed too often (`dead`); a sender claims it first, with a lease, so
//! several gateways on one database send it once; its idempotency key is unique per tenant and
//! channel, so writing the same reply twice queues it once. A message may
//! carry a file (its bytes stored with it until it is sent).

use super::error::StoreResult;
use crate::{TenantId, UnixMillis};
use async_trait::async_trait;

/// The longest text one outbox message holds.
pub const MAX_OUTBOX_TEXT_BYTES: usize = 64 * 1024;
/// The longest idempotency key, peer, platform id or cursor.
pub const MAX_KEY_BYTES: usize = 512;
/// The largest file one outbox message carries (Telegram's own limit for
/// a bot's upload).
pub const MAX_OUTBOX_FILE_BYTES: usize = 50 * 1024 * 1024;
/// The longest file name or MIME type an outbox message keeps.
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// Where an outbox message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Sent,
    /// Failed `max_attempts` times; not tried again.
    Dead,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OutboxStatus::Pending),
            "sent" => Some(OutboxStatus::Sent),
            "dead" => Some(OutboxStatus::Dead),
            _ => None,
        }
    }
}

/// A message to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutbound {
    /// The configured channel name.
    pub channel: String,
    /// The chat it goes to, as the adapter names it.
    pub peer: String,
    pub text: String,
    /// Unique per tenant and channel: a second message with the same key is
    /// the first one (not queued again).
    pub idempotency_key: String,
    /// A file sent with it (`text` is then its caption). Its bytes are
    /// stored with the message, so a restart, or another gateway on the
    /// same database, still delivers what was queued.
    pub file: Option<OutboxFile>,
}

/// A file an outbox message carries.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxFile {
    /// The name shown to the recipient (no directories).
    pub name: String,
    pub mime: Option<String>,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for OutboxFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxFile")
            .field("name", &self.name)
            .field("mime", &self.mime)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// A queued message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMessage {
    pub tenant_id: TenantId,
    pub id: String,
    pub channel: String,
    pub peer: String,
    pub text: String,
    pub idempotency_key: String,
    pub status: OutboxStatus,
    /// Failed deliveries so far.
    pub attempts: i64,
    /// Not tried before this time (backoff, a platform's `retry_after`).
    pub next_attempt_at: UnixMillis,
    /// The last failure, short and without secrets.
    pub last_error: Option<String>,
    /// The platform's id of the delivered message.
    pub platform_id: Option<String>,
    pub created_at: UnixMillis,
    pub sent_at: Option<UnixMillis>,
    /// The name of the file it carries, if any (its bytes:
    /// [`ChannelStore::outbound_file`]).
    pub file_name: Option<String>,
    pub file_mime: Option<String>,
    /// The gateway instance sending it (see [`ChannelStore::claim_outbound`]).
    pub claimed_by: Option<String>,
    /// When that claim lapses.
    pub claimed_until: Option<UnixMillis>,
}

/// A failed delivery: try again at `retry_at`, or give up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    Retry { retry_at: UnixMillis, error: String },
    Dead { error: String },
}

#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Queue `msg` (pending, due at `now`); `false` with the stored message
    /// when its idempotency key was queued before.
    async fn enqueue_outbound(
        &self,
        tenant: &TenantId,
        msg: &NewOutbound,
        now: UnixMillis,
    ) -> StoreResult<(OutboxMessage, bool)>;

    /// Pending messages of `channel` due at `now`, oldest first, at most
    /// `limit`.
    async fn due_outbound(
        &self,
        tenant: &TenantId,
        channel: &str,
        now: UnixMillis,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>>;

    /// Claim up to `limit` of `channel`'s pending messages due at `now` for
    /// `holder` (a gateway instance) until `until`, oldest first: a message
    /// claimed by another holder whose claim has not lapsed is passed over,
    /// so gateways sharing the database never send one message at once,
    /// and a crashed claimer's messages are claimable again when its lease
    /// lapses (its own, at once: a restart resumes what it held). Sent or
    /// failed, a message's claim is cleared.
    async fn claim_outbound(
        &self,
        tenant: &TenantId,
        channel: &str,
        holder: &str,
        now: UnixMillis,
        until: UnixMillis,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>>;

    /// The soonest time one of `channel`'s pending messages may be sent:
    /// its `next_attempt_at`, or its claim's end if that is later.
    async fn next_outbound_at(
        &self,
        tenant: &TenantId,
        channel: &str,
    ) -> StoreResult<Option<UnixMillis>>;

    /// Pending messages of `channel`.
    async fn count_pending_outbound(&self, tenant: &TenantId, channel: &str) -> StoreResult<i64>;

    /// Mark a pending message sent; `false` when it was not pending.
    async fn mark_outbound_sent(
        &self,
        tenant: &TenantId,
        id: &str,
        platform_id: Option<&str>,
        now: UnixMillis,
    ) -> StoreResult<bool>;

    /// Record a failed delivery of a pending message (one more attempt);
    /// `false` when it was not pending.
    async fn mark_outbound_failed(
        &self,
        tenant: &TenantId,
        id: &str,
        failure: &Failure,
    ) -> StoreResult<bool>;

    async fn get_outbound(&self, tenant: &TenantId, id: &str)
    -> StoreResult<Option<OutboxMessage>>;

    /// The bytes of the file a pending message carries; `None` when it
    /// carries none or is no longer pending (a message's file is dropped
    /// once it is sent or dead-lettered).
    async fn outbound_file(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Vec<u8>>>;

    /// Note inbound message `platform_id` of `channel`: `true` the first
    /// time, `false` for a repeat.
    async fn record_inbound(
        &self,
        tenant: &TenantId,
        channel: &str,
        platform_id: &str,
        now: UnixMillis,
    ) -> StoreResult<bool>;

    /// Forget inbound ids noted before `before` (replays older than the
    /// skew limit are refused by their timestamp anyway).
    async fn prune_inbound(&self, tenant: &TenantId, before: UnixMillis) -> StoreResult<u64>;

    /// Take or renew `channel`'s receive lease for `holder` until `until`:
    /// `true` when `holder` holds it now (it was free, lapsed at `now`, or
    /// already `holder`'s), `false` while another holder's lease runs.
    async fn hold_channel_lease(
        &self,
        tenant: &TenantId,
        channel: &str,
        holder: &str,
        now: UnixMillis,
        until: UnixMillis,
    ) -> StoreResult<bool>;

    /// Give up `holder`'s receive lease of `channel` (a clean stop), so
    /// another gateway takes over at once; nothing if another holds it.
    async fn release_channel_lease(
        &self,
        tenant: &TenantId,
        channel: &str,
        holder: &str,
    ) -> StoreResult<()>;

    async fn get_channel_cursor(
        &self,
        tenant: &TenantId,
        channel: &str,
    ) -> StoreResult<Option<String>>;

    async fn set_channel_cursor(
        &self,
        tenant: &TenantId,
        channel: &str,
        cursor: &str,
        now: UnixMillis,
    ) -> StoreResult<()>;
}
