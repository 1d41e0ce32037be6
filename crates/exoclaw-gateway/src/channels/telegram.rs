//! The Telegram adapter (Bot API, long polling or a webhook). `getMe` first (a wrong
//! token ends the receiver with `Auth`, logged with the channel's name;
//! other channels are unaffected and the supervisor retries with backoff),
//! then `getUpdates` from the stored offset (`ChannelStore` cursor): each
//! update is noted as seen (its `update_id`) and handed to the sink before
//! the offset moves past it, so a restart neither repeats nor skips one.
//! A poll that stays silent longer than its timeout plus a margin is
//! abandoned and the receiver restarted (a stalled connection). Several
//! gateways on one database poll one bot in turn: only the holder of the
//! channel's receive lease (`telegram.poll_lease_sec`, renewed before each
//! poll) calls `getUpdates`, which Telegram answers with 409 Conflict when
//! two overlap; a standby takes over when the lease lapses (a crash) or is
//! given up (a clean stop).
//!
//! Private chats are direct; groups and supergroups are groups, mentioned
//! when the text names `@<bot username>` or replies to the bot; a forum
//! topic is its own peer (`<chat>:<topic>`). Answers are sent as HTML
//! rendered from Markdown (`telegram_format`), split at 4,096 characters,
//! and as plain text when Telegram refuses the markup.
//!
//! Files (`telegram_files.rs`): photos, voice notes, audio, video and
//! documents are announced with the message (the caption is its text) and
//! downloaded only when the gateway asks ([`Channel::fetch_file`], after
//! the sender gate), under its size cap; files go out with `sendPhoto` or
//! `sendDocument`.
//!
//! Webhook mode (`telegram.webhook_url`): instead of polling, the receiver
//! registers `<webhook_url>/v1/channels/telegram/<name>` with `setWebhook`
//! and a secret token (the vault's `webhook_secret` of owner
//! `channel:<name>`, created once, so several gateways behind one URL
//! agree), then waits; each update reaches [`TelegramChannel::accept`] from
//! the HTTP route, which refuses any request without the token. Polling
//! mode deletes a webhook left from before (Telegram refuses `getUpdates`
//! while one is set).
//!
//! The token is in every URL: no URL and no transport error text is ever
//! logged or returned.

use super::{telegram_files, telegram_format};
use crate::config::channels::TelegramChannelConfig;
use exoclaw_core::channel::{
    Channel, ChannelError, ChannelInfo, ChatKind, InboundFile, InboundMessage, InboundSink,
    Outgoing, OutgoingFile, Sent,
};
use exoclaw_core::store::Store;
use exoclaw_core::{Secret, TenantId, now_ms};
use exoclaw_store::vault::SecretVault;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The token's variable, read through the settings' environment snapshot.
pub const TOKEN_VAR: &str = "EXOCLAW_TELEGRAM_BOT_TOKEN";
/// The vault name of a bot token (owner `channel:<name>`).
pub const TOKEN_SECRET: &str = "bot_token";
/// How much longer than its timeout a long poll may stay silent.
const POLL_MARGIN: Duration = Duration::from_secs(15);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct TelegramChannel {
    info: ChannelInfo,
    tenant: TenantId,
    config: TelegramChannelConfig,
    store: Arc<dyn Store>,
    env_token: Option<Secret>,
    vault: Option<Arc<SecretVault>>,
    client: exoclaw_egress::EgressClient,
    /// Webhook mode: the bot, and the token updates must carry, once the
    /// receiver registered the webhook.
    hook: std::sync::RwLock<Option<(Arc<Me>, Secret)>>,
    /// The channel's `files.max_bytes`: which size of a photo is announced.
    file_cap: AtomicU64,
    /// This gateway instance, the holder of the channel's receive lease.
    holder: String,
}

/// The path of a Telegram channel's webhook: this prefix and the name.
pub const HOOK_PREFIX: &str = "/v1/channels/telegram/";
/// The header Telegram sends the secret token in.
pub const HOOK_HEADER: &str = "x-telegram-bot-api-secret-token";
/// The vault name of the webhook's secret token (owner `channel:<name>`).
const HOOK_SECRET: &str = "webhook_secret";

/// Why a webhook request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookRefusal {
    /// The receiver has not registered the webhook (yet).
    NotReady,
    BadSecret,
    Malformed,
}

/// The bot itself, from `getMe`.
struct Me {
    id: i64,
    username: String,
}

impl TelegramChannel {
    pub fn new(
        name: &str,
        tenant: TenantId,
        config: TelegramChannelConfig,
        store: Arc<dyn Store>,
        env_token: Option<Secret>,
        vault: Option<Arc<SecretVault>>,
        client: exoclaw_egress::EgressClient,
    ) -> Self {
        Self {
            info: ChannelInfo {
                name: name.to_owned(),
                kind: "telegram",
                can_edit: true,
                can_react: true,
                can_type: true,
                can_files: true,
            },
            tenant,
            config,
            store,
            env_token,
            vault,
            client,
            hook: std::sync::RwLock::new(None),
            file_cap: AtomicU64::new(crate::config::channels::FilesConfig::default().max_bytes),
            holder: String::new(),
        }
    }

    /// Poll as gateway instance `holder` (the receive lease's holder).
    #[must_use]
    pub fn with_holder(mut self, holder: &str) -> Self {
        holder.clone_into(&mut self.holder);
        self
    }

    /// Take or renew the receive lease; `false` while another gateway holds
    /// it.
    async fn hold_lease(&self) -> Result<bool, ChannelError> {
        let now = now_ms();
        let lease =
            i64::try_from(self.config.poll_lease_sec.saturating_mul(1000)).unwrap_or(60_000);
        self.store
            .hold_channel_lease(
                &self.tenant,
                &self.info.name,
                &self.holder,
                now,
                now.saturating_add(lease),
            )
            .await
            .map_err(|e| ChannelError::Unavailable(format!("store: {e}")))
    }

    /// Wait until this gateway holds the receive lease (`false`: stopped
    /// first). A standby looks again every quarter lease.
    async fn wait_for_lease(&self, stop: &CancellationToken) -> Result<bool, ChannelError> {
        let mut told = false;
        loop {
            if self.hold_lease().await? {
                if told {
                    tracing::info!(channel = %self.info.name, "telegram receive lease taken over: polling");
                }
                return Ok(true);
            }
            if !told {
                tracing::info!(channel = %self.info.name, "another gateway polls this bot; standing by");
                told = true;
            }
            let wait = Duration::from_millis(self.config.poll_lease_sec.saturating_mul(250));
            tokio::select! {
                () = stop.cancelled() => return Ok(false),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Long polling under the receive lease; the lease is given up on a
    /// clean stop so another gateway takes over at once.
    async fn poll(
        &self,
        sink: &dyn InboundSink,
        me: &Me,
        stop: &CancellationToken,
    ) -> Result<(), ChannelError> {
        let ended = self.poll_leased(sink, me, stop).await;
        if let Err(e) = self
            .store
            .release_channel_lease(&self.tenant, &self.info.name, &self.holder)
            .await
        {
            tracing::warn!(channel = %self.info.name, error = %e, "the receive lease was not released; it lapses");
        }
        ended
    }

    async fn poll_leased(
        &self,
        sink: &dyn InboundSink,
        me: &Me,
        stop: &CancellationToken,
    ) -> Result<(), ChannelError> {
        if !self.wait_for_lease(stop).await? {
            return Ok(());
        }
        self.call(
            "deleteWebhook",
            &json!({"drop_pending_updates": false}),
            CALL_TIMEOUT,
        )
        .await?;
        tracing::info!(channel = %self.info.name, bot = %me.username, "telegram channel polling");
        let poll = Duration::from_secs(self.config.poll_timeout_sec);
        loop {
            if !self.wait_for_lease(stop).await? {
                return Ok(());
            }
            let offset = self.offset().await?;
            let body = json!({"offset": offset, "timeout": self.config.poll_timeout_sec,
                "allowed_updates": ["message", "edited_message"]});
            let updates = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                r = self.call("getUpdates", &body, poll + POLL_MARGIN) => r?,
            };
            let Some(updates) = updates.as_array() else {
                tracing::warn!(channel = %self.info.name, "getUpdates answered no list; skipped");
                continue;
            };
            for u in updates {
                let Some(id) = u["update_id"].as_i64() else {
                    tracing::warn!(channel = %self.info.name, "an update without an id; skipped");
                    continue;
                };
                if id < offset {
                    continue;
                }
                match parse(u, me, self.file_cap()) {
                    Some(msg) => sink.deliver(msg).await,
                    None => {
                        tracing::debug!(channel = %self.info.name, update = id, "an update without text or files; skipped")
                    }
                }
                self.store
                    .set_channel_cursor(
                        &self.tenant,
                        &self.info.name,
                        &(id + 1).to_string(),
                        now_ms(),
                    )
                    .await
                    .map_err(|e| ChannelError::Unavailable(format!("store: {e}")))?;
            }
        }
    }

    /// The channel's `files.max_bytes` (set at start and when the settings
    /// change): a photo is announced in the largest size within it.
    pub fn set_file_cap(&self, max_bytes: u64) {
        self.file_cap.store(max_bytes, Ordering::Relaxed);
    }

    fn file_cap(&self) -> u64 {
        self.file_cap.load(Ordering::Relaxed)
    }

    /// The webhook's secret token: from the vault (created there once), or
    /// for this process only without a vault.
    async fn hook_secret(&self) -> Result<Secret, ChannelError> {
        let Some(v) = &self.vault else {
            let t = crate::home::random_hex_32()
                .map_err(|e| ChannelError::Unavailable(e.to_string()))?;
            return Ok(Secret::new(t));
        };
        let owner = super::webhook::secret_owner(&self.info.name);
        let unavailable =
            |_| ChannelError::Unavailable("cannot read the webhook secret".to_owned());
        if let Some(s) = v
            .get(&self.tenant, &owner, HOOK_SECRET)
            .await
            .map_err(unavailable)?
        {
            return Ok(s);
        }
        let t = Secret::new(
            crate::home::random_hex_32().map_err(|e| ChannelError::Unavailable(e.to_string()))?,
        );
        v.put(&self.tenant, &owner, HOOK_SECRET, &t)
            .await
            .map_err(unavailable)?;
        Ok(t)
    }

    /// One webhook request: its update as a message (`None`: neither text
    /// nor files), or why it is refused. The token is compared by digest.
    pub fn accept(
        &self,
        token: Option<&str>,
        body: &[u8],
    ) -> Result<Option<InboundMessage>, HookRefusal> {
        use sha2::{Digest as _, Sha256};
        let hook = self
            .hook
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some((me, secret)) = hook else {
            return Err(HookRefusal::NotReady);
        };
        let given = Sha256::digest(token.unwrap_or_default().as_bytes());
        if token.is_none() || given != Sha256::digest(secret.expose().as_bytes()) {
            return Err(HookRefusal::BadSecret);
        }
        let update: Value = serde_json::from_slice(body).map_err(|_| HookRefusal::Malformed)?;
        if update["update_id"].as_i64().is_none() {
            return Err(HookRefusal::Malformed);
        }
        Ok(parse(&update, &me, self.file_cap()))
    }

    /// Webhook mode's receiver: register, then wait for `stop`.
    async fn serve_hook(
        &self,
        url: &str,
        me: Me,
        stop: CancellationToken,
    ) -> Result<(), ChannelError> {
        let secret = self.hook_secret().await?;
        let target = format!(
            "{}{HOOK_PREFIX}{}",
            url.trim_end_matches('/'),
            self.info.name
        );
        let body = json!({"url": target, "secret_token": secret.expose(),
            "allowed_updates": ["message", "edited_message"]});
        let bot = me.username.clone();
        // Ready before Telegram knows the URL: its first update may come
        // before `setWebhook` answers.
        *self
            .hook
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Arc::new(me), secret));
        self.call("setWebhook", &body, CALL_TIMEOUT).await?;
        tracing::info!(channel = %self.info.name, %bot, "telegram channel on a webhook");
        stop.cancelled().await;
        Ok(())
    }

    async fn token(&self) -> Result<Secret, ChannelError> {
        if let Some(t) = &self.env_token {
            return Ok(t.clone());
        }
        let Some(v) = &self.vault else {
            return Err(ChannelError::Auth);
        };
        match v
            .get(
                &self.tenant,
                &super::webhook::secret_owner(&self.info.name),
                TOKEN_SECRET,
            )
            .await
        {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(ChannelError::Auth),
            Err(_) => Err(ChannelError::Unavailable(
                "cannot read the bot token".to_owned(),
            )),
        }
    }

    /// One Bot API call: its `result`, or the error by what to do.
    async fn call(
        &self,
        method: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, ChannelError> {
        self.call_raw(
            method,
            "application/json",
            body.to_string().into_bytes(),
            timeout,
        )
        .await
    }

    /// [`Self::call`] with a body of any type (a multipart upload).
    async fn call_raw(
        &self,
        method: &str,
        content_type: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Value, ChannelError> {
        let token = self.token().await?;
        let url = format!(
            "{}/bot{}/{method}",
            self.config.api_base.trim_end_matches('/'),
            token.expose()
        );
        let request = self
            .client
            .request(exoclaw_egress::Method::POST, &url)
            .map_err(|r| {
                ChannelError::Rejected(format!("refused by the egress policy ({})", r.rule))
            })?;
        let resp = request
            .header(exoclaw_egress::header::CONTENT_TYPE, content_type)
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                ChannelError::Unavailable(if e.is_timeout() {
                    format!("{method} timed out")
                } else {
                    format!("cannot reach the Telegram API ({method})")
                })
            })?;
        let status = resp.status().as_u16();
        let v: Value = match resp.bytes().await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        if v["ok"] == true {
            return Ok(v["result"].clone());
        }
        let description = v["description"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        match v["error_code"]
            .as_u64()
            .map_or(status, |c| u16::try_from(c).unwrap_or(status))
        {
            429 => Err(ChannelError::RateLimited {
                retry_after: Duration::from_secs(
                    v["parameters"]["retry_after"]
                        .as_u64()
                        .unwrap_or(1)
                        .min(3600),
                ),
            }),
            401 | 404 => Err(ChannelError::Auth),
            400..=499 => Err(ChannelError::Rejected(format!("{method}: {description}"))),
            _ => Err(ChannelError::Unavailable(format!(
                "{method} answered {status}"
            ))),
        }
    }

    async fn me(&self) -> Result<Me, ChannelError> {
        let r = self.call("getMe", &json!({}), CALL_TIMEOUT).await?;
        Ok(Me {
            id: r["id"].as_i64().unwrap_or_default(),
            username: r["username"].as_str().unwrap_or_default().to_owned(),
        })
    }

    async fn offset(&self) -> Result<i64, ChannelError> {
        let c = self
            .store
            .get_channel_cursor(&self.tenant, &self.info.name)
            .await
            .map_err(|e| ChannelError::Unavailable(format!("store: {e}")))?;
        Ok(c.and_then(|c| c.parse().ok()).unwrap_or(0))
    }

    /// `chat_id` and the forum topic of a peer.
    fn target(peer: &str) -> Value {
        match peer.split_once(':') {
            Some((chat, topic)) => {
                json!({"chat_id": chat, "message_thread_id": topic.parse::<i64>().ok()})
            }
            None => json!({"chat_id": peer}),
        }
    }

    async fn send_part(&self, peer: &str, md: &str, html: &str) -> Result<Value, ChannelError> {
        let mut body = Self::target(peer);
        body["text"] = json!(html);
        body["parse_mode"] = json!("HTML");
        match self.call("sendMessage", &body, CALL_TIMEOUT).await {
            Err(ChannelError::Rejected(why)) if why.contains("parse") => {
                tracing::debug!(channel = %self.info.name, "Telegram refused the markup; sending plain text");
                let mut plain = Self::target(peer);
                plain["text"] = json!(md);
                self.call("sendMessage", &plain, CALL_TIMEOUT).await
            }
            other => other,
        }
    }
}

/// An update as an inbound message, if it has text (or a caption) or
/// files; a photo is announced in the largest size within `file_cap`.
fn parse(u: &Value, me: &Me, file_cap: u64) -> Option<InboundMessage> {
    let m = u.get("message").or_else(|| u.get("edited_message"))?;
    // An edit (of a caption) brings no new file: the original's were taken.
    let files = if u.get("message").is_some() {
        telegram_files::files_of(m, file_cap)
    } else {
        Vec::new()
    };
    let text = m["text"].as_str().or_else(|| m["caption"].as_str());
    if text.is_none() && files.is_empty() {
        return None;
    }
    let text = text.unwrap_or_default().to_owned();
    let chat_id = m["chat"]["id"].as_i64()?;
    let from = &m["from"];
    let sender_id = from["id"].as_i64()?.to_string();
    let sender_name = from["username"]
        .as_str()
        .or_else(|| from["first_name"].as_str())
        .unwrap_or_default()
        .to_owned();
    let private = m["chat"]["type"] == "private";
    let peer = match (
        m["is_topic_message"] == true,
        m["message_thread_id"].as_i64(),
    ) {
        (true, Some(topic)) => format!("{chat_id}:{topic}"),
        _ => chat_id.to_string(),
    };
    let mention = !me.username.is_empty() && text.contains(&format!("@{}", me.username));
    let reply_to_bot = m["reply_to_message"]["from"]["id"].as_i64() == Some(me.id);
    Some(InboundMessage {
        platform_id: u["update_id"].as_i64()?.to_string(),
        sender_id,
        sender_name,
        chat: if private {
            ChatKind::Direct
        } else {
            ChatKind::Group {
                id: chat_id.to_string(),
            }
        },
        peer,
        account: None,
        mentioned: mention || reply_to_bot,
        text,
        message_ref: m["message_id"].as_i64().map(|id| id.to_string()),
        files,
    })
}

#[async_trait::async_trait]
impl Channel for TelegramChannel {
    fn info(&self) -> &ChannelInfo {
        &self.info
    }

    async fn run(
        &self,
        sink: &dyn InboundSink,
        stop: CancellationToken,
    ) -> Result<(), ChannelError> {
        let me = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            me = self.me() => me?,
        };
        if let Some(url) = &self.config.webhook_url {
            return self.serve_hook(url, me, stop).await;
        }
        self.poll(sink, &me, &stop).await
    }

    async fn send(&self, msg: &Outgoing) -> Result<Sent, ChannelError> {
        let mut last = None;
        for (md, html) in telegram_format::split(&msg.text, 3000)
            .iter()
            .flat_map(|p| {
                telegram_format::render(p)
                    .into_iter()
                    .map(move |h| (p.clone(), h))
            })
        {
            let r = self.send_part(&msg.peer, &md, &html).await?;
            last = r["message_id"].as_i64();
        }
        Ok(Sent {
            platform_id: last.map(|id| id.to_string()),
        })
    }

    async fn edit(&self, peer: &str, platform_id: &str, text: &str) -> Result<(), ChannelError> {
        let mut body = Self::target(peer);
        body["message_id"] = json!(platform_id.parse::<i64>().unwrap_or_default());
        body["text"] = json!(telegram_format::to_html(text));
        body["parse_mode"] = json!("HTML");
        self.call("editMessageText", &body, CALL_TIMEOUT)
            .await
            .map(|_| ())
    }

    async fn fetch_file(
        &self,
        file: &InboundFile,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ChannelError> {
        if file.size.is_some_and(|s| s > max_bytes) {
            return Err(telegram_files::too_large(max_bytes));
        }
        let r = self
            .call("getFile", &json!({"file_id": file.file_ref}), CALL_TIMEOUT)
            .await?;
        if r["file_size"].as_u64().is_some_and(|s| s > max_bytes) {
            return Err(telegram_files::too_large(max_bytes));
        }
        let path = r["file_path"].as_str().unwrap_or_default();
        if !telegram_files::is_safe_file_path(path) {
            return Err(ChannelError::Rejected(
                "getFile answered an unusable file path".to_owned(),
            ));
        }
        let token = self.token().await?;
        let url = format!(
            "{}/file/bot{}/{path}",
            self.config.api_base.trim_end_matches('/'),
            token.expose()
        );
        telegram_files::download(&self.client, &url, max_bytes).await
    }

    async fn send_file(&self, file: &OutgoingFile) -> Result<Sent, ChannelError> {
        let (method, field) = telegram_files::method_for(file);
        let mut fields = Vec::new();
        match file.peer.split_once(':') {
            Some((chat, topic)) => {
                fields.push(("chat_id", chat.to_owned()));
                if let Ok(topic) = topic.parse::<i64>() {
                    fields.push(("message_thread_id", topic.to_string()));
                }
            }
            None => fields.push(("chat_id", file.peer.clone())),
        }
        let boundary = format!(
            "exoclaw-{}",
            crate::home::random_hex_32().map_err(|e| ChannelError::Unavailable(e.to_string()))?
        );
        let (content_type, body) = telegram_files::multipart(&fields, field, file, &boundary);
        let r = self
            .call_raw(
                method,
                &content_type,
                body,
                telegram_files::DOWNLOAD_TIMEOUT,
            )
            .await?;
        Ok(Sent {
            platform_id: r["message_id"].as_i64().map(|id| id.to_string()),
        })
    }

    async fn typing(&self, peer: &str) -> Result<(), ChannelError> {
        let mut body = Self::target(peer);
        body["action"] = json!("typing");
        self.call("sendChatAction", &body, CALL_TIMEOUT)
            .await
            .map(|_| ())
    }

    async fn react(&self, peer: &str, platform_id: &str, emoji: &str) -> Result<(), ChannelError> {
        let mut body = Self::target(peer);
        body["message_id"] = json!(platform_id.parse::<i64>().unwrap_or_default());
        body["reaction"] = json!([{"type": "emoji", "emoji": emoji}]);
        self.call("setMessageReaction", &body, CALL_TIMEOUT)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_become_messages_with_mentions_groups_and_topics() {
        let me = Me {
            id: 9,
            username: "exo_bot".to_owned(),
        };
        let dm = json!({"update_id": 5, "message": {"message_id": 1, "text": "hi",
            "chat": {"id": 42, "type": "private"}, "from": {"id": 42, "username": "ann"}}});
        let m = parse(&dm, &me, 1 << 20).unwrap();
        assert_eq!(
            (
                m.platform_id.as_str(),
                m.peer.as_str(),
                m.sender_id.as_str()
            ),
            ("5", "42", "42")
        );
        assert_eq!((m.chat, m.mentioned), (ChatKind::Direct, false));
        let group = json!({"update_id": 6, "message": {"message_id": 2, "text": "@exo_bot hi",
            "chat": {"id": -100, "type": "supergroup"}, "from": {"id": 42},
            "is_topic_message": true, "message_thread_id": 7}});
        let m = parse(&group, &me, 1 << 20).unwrap();
        assert_eq!(
            m.chat,
            ChatKind::Group {
                id: "-100".to_owned()
            }
        );
        assert_eq!((m.peer.as_str(), m.mentioned), ("-100:7", true));
        let reply = json!({"update_id": 7, "message": {"text": "yes", "chat": {"id": -1, "type": "group"},
            "from": {"id": 3}, "reply_to_message": {"from": {"id": 9}}}});
        assert!(parse(&reply, &me, 1 << 20).unwrap().mentioned);
        let sticker = json!({"update_id": 8, "message": {"chat": {"id": 1, "type": "private"}, "from": {"id": 1}}});
        assert!(parse(&sticker, &me, 1 << 20).is_none());
        // A photo without a caption is a message with a file and no text.
        let photo = json!({"update_id": 9, "message": {"chat": {"id": 1, "type": "private"},
            "from": {"id": 1}, "photo": [{"file_id": "p1", "file_size": 10}]}});
        let m = parse(&photo, &me, 1 << 20).unwrap();
        assert_eq!((m.text.as_str(), m.files.len()), ("", 1));
        let edited = json!({"update_id": 10, "edited_message": {"chat": {"id": 1, "type": "private"},
            "from": {"id": 1}, "caption": "better caption", "photo": [{"file_id": "p1"}]}});
        let m = parse(&edited, &me, 1 << 20).unwrap();
        assert_eq!((m.text.as_str(), m.files.len()), ("better caption", 0));
        assert!(parse(&json!({"update_id": "x"}), &me, 1 << 20).is_none());
    }
}
