//! The channel port: a messaging platform (Telegram, a signed webhook, ...)
//! as the gateway sees it. An adapter runs until stopped, handing every
//! inbound message to an [`InboundSink`], and sends, edits and reacts on
//! request; what it can do beyond sending is data ([`ChannelInfo`]), not
//! extra methods. Providers know nothing of channels and channels nothing
//! of providers: they meet in the gateway's runtime.
//!
//! Every outbound message reaches [`Channel::send`] through the gateway's
//! outbox, which retries by the [`ChannelError`] an adapter returns.

use async_trait::async_trait;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What an adapter is and can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The configured name (`channels.<name>`).
    pub name: String,
    /// The platform: `webhook`, `telegram`, ...
    pub kind: &'static str,
    /// It can replace the text of a message it sent (streaming by edits).
    pub can_edit: bool,
    /// It can put a reaction on a message.
    pub can_react: bool,
    /// It can show that an answer is being written.
    pub can_type: bool,
    /// It can send a file ([`Channel::send_file`]) and fetch the files that
    /// come with inbound messages ([`Channel::fetch_file`]).
    pub can_files: bool,
}

/// Where a message was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatKind {
    /// A direct (one-to-one) conversation with the bot.
    Direct,
    /// A group chat, by the platform's group id.
    Group { id: String },
}

/// One inbound message as an adapter hands it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    /// The platform's id of this message (deduplicated by the gateway).
    pub platform_id: String,
    /// The sender's stable id on the platform (not the display name).
    pub sender_id: String,
    pub sender_name: String,
    pub chat: ChatKind,
    /// Where replies go and which session it belongs to (a chat id, a chat
    /// and a forum topic, a webhook's conversation id).
    pub peer: String,
    /// The bot account it reached, where a channel has several.
    pub account: Option<String>,
    /// Whether it mentions (or replies to) the bot.
    pub mentioned: bool,
    pub text: String,
    /// The platform's id of the message itself where it differs from
    /// `platform_id` (Telegram: the message id, not the update id), to react
    /// to it; `None` where the platform has no such thing.
    pub message_ref: Option<String>,
    /// Files that came with it, not yet downloaded: the gateway fetches them
    /// ([`Channel::fetch_file`]) only once the sender gate admitted the
    /// message, and only up to its size cap.
    pub files: Vec<InboundFile>,
}

/// What kind of file a platform says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Photo,
    Voice,
    Audio,
    Video,
    Document,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Photo => "photo",
            FileKind::Voice => "voice",
            FileKind::Audio => "audio",
            FileKind::Video => "video",
            FileKind::Document => "document",
        }
    }
}

/// A file announced by an inbound message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundFile {
    pub kind: FileKind,
    /// The platform's handle to fetch it by (Telegram: the `file_id`;
    /// Discord: the attachment URL). Untrusted: an adapter checks it.
    pub file_ref: String,
    /// The name the sender gave it, if any (untrusted: never a path).
    pub name: Option<String>,
    /// The MIME type the platform reports, if any.
    pub mime: Option<String>,
    /// The size the platform announces, if it does (checked against the cap
    /// before fetching; the fetch enforces the cap again on the bytes).
    pub size: Option<u64>,
}

/// A file to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingFile {
    pub peer: String,
    /// The file name shown to the recipient (no directories).
    pub name: String,
    pub mime: Option<String>,
    pub bytes: Vec<u8>,
    /// Text sent with it, if any.
    pub caption: Option<String>,
    /// The outbox's idempotency key.
    pub idempotency_key: String,
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub peer: String,
    pub text: String,
    /// The outbox's idempotency key (a platform that supports one gets it).
    pub idempotency_key: String,
}

/// A message the platform accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// The platform's id of it (to edit it later), where there is one.
    pub platform_id: Option<String>,
}

/// Why a platform call failed, by what the caller can do.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Try again after this long (HTTP 429 `retry_after`).
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// The platform is down or unreachable (5xx, a dropped connection);
    /// retry with backoff.
    #[error("platform unavailable: {0}")]
    Unavailable(String),
    /// The platform refused this message (4xx); retrying will not help.
    #[error("refused by the platform: {0}")]
    Rejected(String),
    /// The credential is wrong or revoked.
    #[error("the platform refused the credential")]
    Auth,
    /// The adapter cannot do this (no edits, no reactions).
    #[error("not supported by this channel")]
    Unsupported,
}

impl ChannelError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ChannelError::RateLimited { .. } | ChannelError::Unavailable(_)
        )
    }
}

/// Where an adapter hands its inbound messages (the gateway: dedup, the
/// sender gate, bindings, a turn). It returns once the message is accepted
/// for handling, not once it is answered.
#[async_trait]
pub trait InboundSink: Send + Sync {
    async fn deliver(&self, msg: InboundMessage);
}

/// A messaging platform (see the module docs).
#[async_trait]
pub trait Channel: Send + Sync {
    fn info(&self) -> &ChannelInfo;

    /// Receive until `stop` is cancelled, handing each message to `sink`.
    /// An error ends this run; the gateway starts it again with backoff.
    /// A channel that receives elsewhere (a webhook) waits for `stop`.
    async fn run(
        &self,
        sink: &dyn InboundSink,
        stop: CancellationToken,
    ) -> Result<(), ChannelError>;

    async fn send(&self, msg: &Outgoing) -> Result<Sent, ChannelError>;

    /// Replace the text of a sent message (if [`ChannelInfo::can_edit`]).
    async fn edit(&self, _peer: &str, _platform_id: &str, _text: &str) -> Result<(), ChannelError> {
        Err(ChannelError::Unsupported)
    }

    /// Show `peer` that an answer is being written, for a few seconds (if
    /// [`ChannelInfo::can_type`]).
    async fn typing(&self, _peer: &str) -> Result<(), ChannelError> {
        Err(ChannelError::Unsupported)
    }

    /// Download an inbound file, refusing (with [`ChannelError::Rejected`])
    /// one larger than `max_bytes` without reading past the cap (if
    /// [`ChannelInfo::can_files`]).
    async fn fetch_file(
        &self,
        _file: &InboundFile,
        _max_bytes: u64,
    ) -> Result<Vec<u8>, ChannelError> {
        Err(ChannelError::Unsupported)
    }

    /// Send a file (if [`ChannelInfo::can_files`]).
    async fn send_file(&self, _file: &OutgoingFile) -> Result<Sent, ChannelError> {
        Err(ChannelError::Unsupported)
    }

    /// Put `emoji` on a message (if [`ChannelInfo::can_react`]).
    async fn react(
        &self,
        _peer: &str,
        _platform_id: &str,
        _emoji: &str,
    ) -> Result<(), ChannelError> {
        Err(ChannelError::Unsupported)
    }
}
