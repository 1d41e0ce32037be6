//! Messaging channels. [`Channels`] (`hub.rs`) runs the configured
//! adapters (`channels.<name>.type`; the port is `exoclaw_core::channel`)
//! under the supervisor, each with its outbox sender (`outbox.rs`), and is
//! the one inbound path: dedup, then [`ChannelGate`], the per-channel
//! sender policy (`channels.<name>` in `config.json`: `dm_policy`,
//! `allow_from`, `groups`), which decides whether a message is delivered
//! (and as which user), answered with a pairing code, or ignored; then
//! bindings pick the agent and the runtime receives it; `progress.rs` shows
//! the person a typing indicator, status reactions and the answer streamed
//! by edits while the turn runs. Adapters:
//! `webhook.rs` (signed generic webhook), `telegram.rs` (Bot API, long
//! polling; `telegram_format.rs` Markdown to Telegram HTML,
//! `telegram_files.rs` media in and files out), `discord/` (the Gateway
//! over WebSocket and REST).

pub mod discord;
mod file_port;
pub mod files;
mod hub;
mod outbox;
mod policy;
mod progress;
mod state;
pub mod telegram;
mod telegram_files;
mod telegram_format;
pub mod webhook;

pub use hub::{Channels, Dedup, Handled};
pub use policy::{Admission, ChannelGate, IgnoreReason};
pub use state::{ChannelState, ChannelStatus, Pending};

/// Where a message was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chat {
    /// A direct (one-to-one) message to the bot.
    Direct,
    /// A group chat, by the channel's group id.
    Group { id: String },
}

/// One message as a channel adapter receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The configured channel name (`channels.<name>`).
    pub channel: String,
    /// The sender's stable id on that channel (not the display name).
    pub sender_id: String,
    pub sender_name: String,
    pub chat: Chat,
    /// Whether the message mentions (or replies to) the bot.
    pub mentioned: bool,
    pub text: String,
}
