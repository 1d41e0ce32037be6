//! The adapter half of a channel's configuration (`channels.<name>.type`
//! and its section); the sender policy beside it is `file::ChannelConfig`. A channel without a `type` only sets the
//! sender policy.

use serde::{Deserialize, Serialize};

/// Which adapter runs a channel: one closed enum, one arm per platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// `POST /v1/channels/webhook/{name}`, signed (see `channels::webhook`).
    Webhook,
    /// The Telegram Bot API, long polling (see `channels::telegram`).
    Telegram,
    /// A Discord bot: the Gateway over WebSocket and REST (see
    /// `channels::discord`).
    Discord,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Discord => "discord",
        }
    }
}

/// `channels.<name>.webhook`: a generic signed webhook. Its secret is the
/// vault's `webhook_secret` of owner `channel:<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookChannelConfig {
    /// Where replies are POSTed (signed the same way) instead of in the
    /// response; through the egress client.
    pub callback_url: Option<String>,
    /// The most a request's timestamp may differ from the gateway's clock
    /// (1 to 3600, default 300).
    pub max_skew_sec: u64,
    /// The largest body accepted (1 to 1048576, default 65536).
    pub max_body_bytes: usize,
    /// How long a synchronous reply is waited for (1 to 600, default 120).
    pub reply_timeout_sec: u64,
    /// The most messages accepted and not yet answered at once (1 to
    /// 100000, default 1000); past it a request is refused with `503
    /// server.busy` and `Retry-After` before it is noted as seen, so the
    /// sender's retry is taken later. Bounds what a burst holds in memory.
    pub max_pending: u64,
}

impl Default for WebhookChannelConfig {
    fn default() -> Self {
        Self {
            callback_url: None,
            max_skew_sec: 300,
            max_body_bytes: 64 * 1024,
            reply_timeout_sec: 120,
            max_pending: 1000,
        }
    }
}

/// `channels.<name>.telegram`: a Telegram bot, long polling. Its token is
/// `EXOCLAW_TELEGRAM_BOT_TOKEN`, else the vault's `bot_token` of owner
/// `channel:<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelegramChannelConfig {
    /// The Bot API (a self-hosted Bot API server, a test server).
    pub api_base: String,
    /// Seconds one `getUpdates` long poll waits (1 to 50, default 30); a
    /// poll silent for 15 seconds longer is abandoned and the receiver
    /// restarted.
    pub poll_timeout_sec: u64,
    /// Seconds of the receive lease a polling gateway holds (2 to 3600,
    /// more than `poll_timeout_sec`, default 60), renewed before each
    /// poll: with several gateways on one database only the holder polls
    /// (Telegram refuses a second `getUpdates`), and another takes over
    /// when a holder stops renewing.
    pub poll_lease_sec: u64,
    /// Webhook mode instead of long polling: the public HTTPS base URL at
    /// which Telegram reaches this gateway (a reverse proxy in front); the
    /// gateway registers `<webhook_url>/v1/channels/telegram/<name>` with a
    /// secret token (kept in the vault) that every update must carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

impl Default for TelegramChannelConfig {
    fn default() -> Self {
        Self {
            api_base: "https://api.telegram.org".to_owned(),
            poll_timeout_sec: 30,
            poll_lease_sec: 60,
            webhook_url: None,
        }
    }
}

/// `channels.<name>.discord`: a Discord bot. Its token is
/// `EXOCLAW_DISCORD_BOT_TOKEN`, else the vault's `bot_token` of owner
/// `channel:<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscordChannelConfig {
    /// The REST API (a test server otherwise).
    pub api_base: String,
    /// The Gateway's WebSocket URL (`wss://` or `ws://`); none (default):
    /// asked of the REST API (`GET /gateway/bot`) at each start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_url: Option<String>,
}

impl Default for DiscordChannelConfig {
    fn default() -> Self {
        Self {
            api_base: "https://discord.com/api/v10".to_owned(),
            gateway_url: None,
        }
    }
}

/// `channels.<name>.progress`: what a person sees while the answer is
/// written, on adapters that can (Telegram, Discord): a typing indicator, a reaction
/// on their message (👀 while working, 👍 done, 👎 failed) and the answer
/// streamed into a placeholder message by edits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgressConfig {
    /// Typing indicator and status reactions (default true).
    pub status: bool,
    /// Stream the answer by editing a placeholder (default true).
    pub stream: bool,
    /// At most one edit per this many milliseconds (250 to 60000, default
    /// 1000: Telegram limits edits per chat).
    pub edit_interval_ms: u64,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        Self {
            status: true,
            stream: true,
            edit_interval_ms: 1000,
        }
    }
}

/// `channels.<name>.files`: files both ways, on adapters that can
/// (`ChannelInfo::can_files`: Telegram). Files that come with an admitted
/// sender's message are saved in the sender's workspace under `inbox/`;
/// the agent's `channel_send_file` sends one back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesConfig {
    /// Receive and send files (default true).
    pub enabled: bool,
    /// The largest file received or sent, in bytes (1 to 52428800, default
    /// 20971520: 20 MiB, what the public Bot API lets a bot download).
    pub max_bytes: u64,
}

/// The largest `files.max_bytes` (Telegram's upload limit for a bot).
pub const MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: 20 * 1024 * 1024,
        }
    }
}

/// `channels.<name>.outbox`: how outbound messages are retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboxConfig {
    /// Failed deliveries before a message is dead-lettered (1 to 100,
    /// default 8).
    pub max_attempts: u32,
    /// The first wait after a failure in milliseconds, doubled each time up
    /// to `backoff_max_ms` (default 1000 and 300000).
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
    /// Seconds a gateway's claim on a message it sends lasts (2 to 3600,
    /// default 60): with several gateways on one database each message is
    /// sent by its claimer only, and a crashed claimer's messages are sent
    /// by another once the claim lapses. Longer than a send takes.
    pub lease_sec: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_ms: 1_000,
            backoff_max_ms: 300_000,
            lease_sec: 60,
        }
    }
}

/// Every problem of a channel's adapter settings, with its path under
/// `channels.<name>`.
pub fn problems(
    webhook: &WebhookChannelConfig,
    telegram: &TelegramChannelConfig,
    discord: &DiscordChannelConfig,
    outbox: &OutboxConfig,
    progress: &ProgressConfig,
    files: &FilesConfig,
) -> Vec<(String, String)> {
    let mut p = Vec::new();
    if !(discord.api_base.starts_with("https://") || discord.api_base.starts_with("http://")) {
        p.push((
            "discord.api_base".to_owned(),
            "must be an http(s) URL".to_owned(),
        ));
    }
    if let Some(url) = &discord.gateway_url
        && !(url.starts_with("wss://") || url.starts_with("ws://"))
    {
        p.push((
            "discord.gateway_url".to_owned(),
            "must be a ws(s) URL".to_owned(),
        ));
    }
    if !(telegram.api_base.starts_with("https://") || telegram.api_base.starts_with("http://")) {
        p.push((
            "telegram.api_base".to_owned(),
            "must be an http(s) URL".to_owned(),
        ));
    }
    if let Some(url) = &telegram.webhook_url
        && (!url.starts_with("https://") || url.len() > 200 || url.contains(char::is_whitespace))
    {
        p.push((
            "telegram.webhook_url".to_owned(),
            "must be an https URL (Telegram posts updates only over HTTPS)".to_owned(),
        ));
    }
    let mut range = |path: &str, v: u64, min: u64, max: u64| {
        if v < min || v > max {
            p.push((path.to_owned(), format!("must be between {min} and {max}")));
        }
    };
    range(
        "telegram.poll_timeout_sec",
        telegram.poll_timeout_sec,
        1,
        50,
    );
    range("telegram.poll_lease_sec", telegram.poll_lease_sec, 2, 3600);
    range("outbox.lease_sec", outbox.lease_sec, 2, 3600);
    range("webhook.max_skew_sec", webhook.max_skew_sec, 1, 3600);
    range(
        "progress.edit_interval_ms",
        progress.edit_interval_ms,
        250,
        60_000,
    );
    range(
        "webhook.max_body_bytes",
        u64::try_from(webhook.max_body_bytes).unwrap_or(u64::MAX),
        1,
        1 << 20,
    );
    range(
        "webhook.reply_timeout_sec",
        webhook.reply_timeout_sec,
        1,
        600,
    );
    range("webhook.max_pending", webhook.max_pending, 1, 100_000);
    range(
        "outbox.max_attempts",
        u64::from(outbox.max_attempts),
        1,
        100,
    );
    range("outbox.backoff_ms", outbox.backoff_ms, 1, 3_600_000);
    range("files.max_bytes", files.max_bytes, 1, MAX_FILE_BYTES);
    range(
        "outbox.backoff_max_ms",
        outbox.backoff_max_ms,
        1,
        86_400_000,
    );
    if telegram.poll_lease_sec <= telegram.poll_timeout_sec {
        p.push((
            "telegram.poll_lease_sec".to_owned(),
            "must be more than telegram.poll_timeout_sec".to_owned(),
        ));
    }
    if let Some(url) = &webhook.callback_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        p.push((
            "webhook.callback_url".to_owned(),
            "must be an http(s) URL".to_owned(),
        ));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discord_urls_are_checked_and_the_defaults_pass() {
        let check = |discord: &DiscordChannelConfig| {
            problems(
                &WebhookChannelConfig::default(),
                &TelegramChannelConfig::default(),
                discord,
                &OutboxConfig::default(),
                &ProgressConfig::default(),
                &FilesConfig::default(),
            )
        };
        assert!(check(&DiscordChannelConfig::default()).is_empty());
        let local = DiscordChannelConfig {
            api_base: "http://127.0.0.1:9/api/v10".to_owned(),
            gateway_url: Some("ws://127.0.0.1:9".to_owned()),
        };
        assert!(check(&local).is_empty());
        let bad = DiscordChannelConfig {
            api_base: "ftp://discord.com".to_owned(),
            gateway_url: Some("https://gateway.discord.gg".to_owned()),
        };
        let paths: Vec<String> = check(&bad).into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["discord.api_base", "discord.gateway_url"]);
    }
}
