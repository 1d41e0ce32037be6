//! Messaging channels. The adapters (Telegram, Discord, ...) come later; what
//! is here is what every adapter will pass each inbound message through
//! first: [`ChannelGate`], the per-channel sender policy (`channels.<name>`
//! in `config.json`: `dm_policy`, `allow_from`, `groups`), which decides
//! whether a message is delivered (and as which user), answered with a
//! pairing code, or ignored.

mod policy;

pub use policy::{Admission, ChannelGate, IgnoreReason};

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
