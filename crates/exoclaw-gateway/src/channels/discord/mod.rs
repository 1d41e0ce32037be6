//! The Discord adapter: a bot on the Gateway (v10, over WebSocket:
//! `gateway.rs`) for what comes in, and the REST API (`rest.rs`) for what
//! goes out; `message.rs` reads messages and splits answers; `bot.rs` holds
//! the bot's state (token, session to resume). This file is the port.
//!
//! The receiver connects to `discord.gateway_url` (or the URL `GET
//! /gateway/bot` names), identifies with the intents GUILDS,
//! GUILD_MESSAGES, DIRECT_MESSAGES and MESSAGE_CONTENT, and hands every
//! `MESSAGE_CREATE` to the sink (which deduplicates by message id, so a
//! resumed session's replayed events are not answered twice). It resumes
//! after op 7, a dropped or zombie connection and resumable close codes,
//! identifies anew when the session is gone, and ends with `Auth` on close
//! code 4004 (the channel is named in the log and in `GET /v1/channels`;
//! other channels are unaffected). The session id and sequence number
//! outlive a receiver's restart, so a restart resumes too (unless the
//! egress policy refused the resume URL: then it identifies). Connections
//! that end before READY five times in a row end the receiver with
//! `Unavailable` (the supervisor starts it again with backoff).
//!
//! Direct messages are direct; guild messages are groups (the group id is
//! the guild's), mentioned when they mention the bot or reply to it; the
//! peer is the channel, so a thread is its own session. Answers are
//! Markdown as the model wrote it (Discord renders it), split at 2,000
//! characters, sent with `allowed_mentions` empty (an answer never pings
//! `@everyone` or anyone else) and a `nonce` derived from the outbox's
//! idempotency key with `enforce_nonce`, so a retried part is not posted
//! twice. Streaming is by edits, status by typing and reactions;
//! attachments arrive as [`InboundFile`]s (the URL is the handle, fetched
//! only through the egress client under the cap) and files go out as a
//! multipart message.
//!
//! The token (`EXOCLAW_DISCORD_BOT_TOKEN`, else the vault's `bot_token` of
//! owner `channel:<name>`) is only ever in a header and the IDENTIFY
//! payload: never logged or returned.

mod bot;
mod gateway;
mod message;
mod rest;

pub use bot::{DiscordChannel, TOKEN_SECRET, TOKEN_VAR};
use exoclaw_core::channel::{
    Channel, ChannelError, ChannelInfo, InboundFile, InboundSink, Outgoing, OutgoingFile, Sent,
};
use exoclaw_egress::Method;
use gateway::End;
use message::MAX_CHARS;
use rest::Body;
use serde_json::{Value, json};
use std::sync::PoisonError;
use tokio_util::sync::CancellationToken;

pub use gateway::INTENTS;

/// Connections in a row that end before READY or RESUMED before the
/// receiver gives up.
const MAX_UNESTABLISHED: u32 = 5;

/// A Discord id (a snowflake) in a URL path: digits only.
fn snowflake<'a>(what: &str, id: &'a str) -> Result<&'a str, ChannelError> {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(ChannelError::Rejected(format!("not a Discord {what} id")))
    }
}

/// The `nonce` of part `part` of the message with idempotency key `key`
/// (Discord takes at most 25 characters).
fn nonce(key: &str, part: usize) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(format!("{key}\n{part}").as_bytes());
    hex::encode(digest).chars().take(25).collect()
}

/// A MIME type fit for a part header, else `application/octet-stream`.
fn safe_mime(mime: Option<&str>) -> &str {
    mime.filter(|m| {
        m.len() < 100
            && m.contains('/')
            && m.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/+-.".contains(&b))
    })
    .unwrap_or("application/octet-stream")
}

impl DiscordChannel {
    /// Where to connect without a session to resume.
    async fn gateway_url(&self) -> Result<String, ChannelError> {
        if let Some(url) = &self.config.gateway_url {
            return Ok(url.clone());
        }
        let r = self
            .call("gateway", Method::GET, "/gateway/bot", Body::None)
            .await?;
        match r["url"].as_str() {
            Some(u) if u.starts_with("wss://") || u.starts_with("ws://") => Ok(u.to_owned()),
            _ => Err(ChannelError::Unavailable(
                "GET /gateway/bot named no gateway URL".to_owned(),
            )),
        }
    }

    async fn post_message(&self, peer: &str, body: &Value) -> Result<Value, ChannelError> {
        let path = format!("/channels/{}/messages", snowflake("channel", peer)?);
        self.call("send", Method::POST, &path, Body::Json(body))
            .await
    }
}

#[async_trait::async_trait]
impl Channel for DiscordChannel {
    fn info(&self) -> &ChannelInfo {
        &self.info
    }

    async fn run(
        &self,
        sink: &dyn InboundSink,
        stop: CancellationToken,
    ) -> Result<(), ChannelError> {
        let mut unestablished = 0u32;
        loop {
            let kept = self
                .session
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let (url, resume) = match (kept.id, kept.resume_url) {
                (Some(_), Some(url)) => (url, true),
                _ => {
                    let url = tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        url = self.gateway_url() => url?,
                    };
                    (url, false)
                }
            };
            let (end, established) = match self.session(&url, resume, sink, &stop).await {
                Ok(ended) => ended,
                Err(e) => {
                    if resume && matches!(e, ChannelError::Rejected(_)) {
                        // A resume URL the policy refuses: identify at the
                        // Gateway's own URL next time.
                        self.forget_session();
                    }
                    return Err(e);
                }
            };
            if established {
                unestablished = 0;
            } else {
                unestablished += 1;
                if unestablished >= MAX_UNESTABLISHED && end != End::Stopped {
                    // Resuming does not take: the next start identifies.
                    self.forget_session();
                    return Err(ChannelError::Unavailable(
                        "the Discord gateway keeps closing the connection".to_owned(),
                    ));
                }
            }
            let pause = match end {
                End::Stopped => {
                    // Closed with 1000: Discord ended the session too.
                    self.forget_session();
                    return Ok(());
                }
                End::Resume => gateway::reconnect_pause(),
                End::Identify { wait } => {
                    self.forget_session();
                    if wait {
                        gateway::invalid_session_wait()
                    } else {
                        gateway::reconnect_pause()
                    }
                }
            };
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn send(&self, msg: &Outgoing) -> Result<Sent, ChannelError> {
        let mut last = None;
        for (i, part) in message::split(&msg.text).iter().enumerate() {
            let mut body = json!({"content": part, "allowed_mentions": {"parse": []}});
            if !msg.idempotency_key.is_empty() {
                body["nonce"] = json!(nonce(&msg.idempotency_key, i));
                body["enforce_nonce"] = json!(true);
            }
            let r = self.post_message(&msg.peer, &body).await?;
            last = r["id"].as_str().map(str::to_owned);
        }
        Ok(Sent { platform_id: last })
    }

    async fn edit(&self, peer: &str, platform_id: &str, text: &str) -> Result<(), ChannelError> {
        if text.trim().is_empty() || text.chars().count() > MAX_CHARS {
            return Err(ChannelError::Rejected(
                "an edit must fit one Discord message".to_owned(),
            ));
        }
        let path = format!(
            "/channels/{}/messages/{}",
            snowflake("channel", peer)?,
            snowflake("message", platform_id)?
        );
        let body = json!({"content": text, "allowed_mentions": {"parse": []}});
        self.call("edit", Method::PATCH, &path, Body::Json(&body))
            .await
            .map(|_| ())
    }

    async fn typing(&self, peer: &str) -> Result<(), ChannelError> {
        let path = format!("/channels/{}/typing", snowflake("channel", peer)?);
        self.call("typing", Method::POST, &path, Body::None)
            .await
            .map(|_| ())
    }

    async fn react(&self, peer: &str, platform_id: &str, emoji: &str) -> Result<(), ChannelError> {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let path = format!(
            "/channels/{}/messages/{}/reactions/{}/@me",
            snowflake("channel", peer)?,
            snowflake("message", platform_id)?,
            utf8_percent_encode(emoji, NON_ALPHANUMERIC)
        );
        self.call("react", Method::PUT, &path, Body::None)
            .await
            .map(|_| ())
    }

    async fn fetch_file(
        &self,
        file: &InboundFile,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ChannelError> {
        if file.size.is_some_and(|s| s > max_bytes) {
            return Err(ChannelError::Rejected(format!(
                "the file is larger than {max_bytes} bytes"
            )));
        }
        self.download(&file.file_ref, max_bytes).await
    }

    async fn send_file(&self, file: &OutgoingFile) -> Result<Sent, ChannelError> {
        let path = format!("/channels/{}/messages", snowflake("channel", &file.peer)?);
        let name = rest::safe_file_name(&file.name);
        let caption = file.caption.as_deref().unwrap_or_default().trim();
        let content = if caption.chars().count() <= MAX_CHARS {
            caption
        } else {
            // Too long to go with the file: sent before it.
            let text = Outgoing {
                peer: file.peer.clone(),
                text: caption.to_owned(),
                idempotency_key: format!("{}:caption", file.idempotency_key),
            };
            self.send(&text).await?;
            ""
        };
        let mut payload = json!({
            "content": content,
            "attachments": [{"id": 0, "filename": name}],
            "allowed_mentions": {"parse": []},
        });
        if !file.idempotency_key.is_empty() {
            payload["nonce"] = json!(nonce(&file.idempotency_key, 0));
            payload["enforce_nonce"] = json!(true);
        }
        let boundary = rest::random_hex();
        let bytes = rest::multipart(
            &boundary,
            &payload,
            &name,
            safe_mime(file.mime.as_deref()),
            &file.bytes,
        );
        let r = self
            .call(
                "send_file",
                Method::POST,
                &path,
                Body::Multipart {
                    boundary: &boundary,
                    bytes,
                },
            )
            .await?;
        Ok(Sent {
            platform_id: r["id"].as_str().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_nonces_and_mime_types_are_checked() {
        assert_eq!(snowflake("channel", "123").unwrap(), "123");
        for bad in ["", "12a", "../1", "1/2", "123456789012345678901"] {
            assert!(snowflake("channel", bad).is_err(), "{bad}");
        }
        let n = nonce("reply:11", 0);
        assert_eq!(n.len(), 25);
        assert_eq!(n, nonce("reply:11", 0));
        assert_ne!(n, nonce("reply:11", 1));
        assert_eq!(safe_mime(Some("image/png")), "image/png");
        assert_eq!(
            safe_mime(Some("text/plain\r\nX: y")),
            "application/octet-stream"
        );
        assert_eq!(safe_mime(None), "application/octet-stream");
    }
}
