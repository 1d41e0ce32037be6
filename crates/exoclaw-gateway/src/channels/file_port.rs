//! Files on the one inbound path and back out: [`Channels::take_files`]
//! (an admitted message's files into the sender's workspace, `files.rs`,
//! the person told of any refused), and the [`ChannelFiles`] port of the
//! `channel_send_file` tool: the session's channel and peer, the cap, and
//! the file queued in the durable outbox with its bytes (a restart, or
//! another gateway on the same database, still delivers it, once: the
//! idempotency key is the tool call's).

use super::hub::Handled;
use super::{Channels, files};
use crate::access::Principal;
use crate::runtime::turn::Input;
use exoclaw_core::channel::InboundMessage;
use exoclaw_core::store::channel::{MAX_OUTBOX_FILE_BYTES, NewOutbound, OutboxFile};
use exoclaw_core::tool::{ChannelFile, ChannelFiles, ToolContext, ToolError};
use exoclaw_core::{AgentId, SessionId, now_ms};
use std::sync::PoisonError;

fn no_channel() -> ToolError {
    ToolError::new(
        "channel.no_channel",
        "this conversation is not on a messaging channel: there is no one to send a file to",
    )
}

/// A channel session's peer without its conversation generation (`~n`,
/// see `hub.rs`): where its messages go.
fn platform_peer(session_peer: &str) -> &str {
    match session_peer.rsplit_once('~') {
        Some((peer, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => peer,
        _ => session_peer,
    }
}

/// While a turn runs, where its channel answers go (see
/// [`Channels::note_reply_to`]).
pub(super) struct ReplyTo<'a> {
    channels: &'a Channels,
    session: SessionId,
}

impl Drop for ReplyTo<'_> {
    fn drop(&mut self) {
        self.channels
            .reply_to
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.session);
    }
}

impl Channels {
    /// Note that `session`'s turn answers `peer`, until the guard drops.
    pub(super) fn note_reply_to(&self, session: &SessionId, peer: &str) -> ReplyTo<'_> {
        self.reply_to
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(session.clone(), peer.to_owned());
        ReplyTo {
            channels: self,
            session: session.clone(),
        }
    }

    /// The turn's input: the text with a note per file (see `files.rs`).
    /// Refused files are told to the person (one outbox message); a
    /// message with no text whose files were all refused starts no turn
    /// (`Err` with nothing more to say).
    pub(super) async fn take_files(
        &self,
        channel: &str,
        who: &Principal,
        agent: &AgentId,
        msg: &InboundMessage,
    ) -> Result<Input, Handled> {
        let text = msg.text.clone();
        let Some(entry) = self.entries.get(channel) else {
            return Ok(text.into());
        };
        if msg.files.is_empty() {
            return Ok(text.into());
        }
        let workspace = crate::runtime::context::user_workspace(
            &self.runtime.home,
            who.tenant.as_str(),
            who.user.as_str(),
        );
        if let Err(e) = create_private_dir(&workspace) {
            tracing::warn!(error = %e, channel, "cannot prepare the workspace for a received file");
            return Err(Handled::Failed("internal"));
        }
        let ctx = ToolContext::new(
            who.tenant.clone(),
            who.user.clone(),
            agent.clone(),
            workspace,
        );
        let intake = files::take(
            entry.adapter.as_ref(),
            &msg.files,
            &entry.config().files,
            &ctx,
            Some(&self.quota),
        )
        .await;
        if !intake.refused.is_empty() {
            let notice = format!("Not received: {}.", intake.refused.join("; "));
            let key = format!("files:{}", msg.platform_id);
            if let Err(e) = self.queue(channel, &msg.peer, &notice, &key).await {
                tracing::warn!(error = %e, channel, "cannot tell the sender a file was refused");
            }
        }
        if text.trim().is_empty() && intake.saved == 0 {
            return Err(Handled::Reply(String::new()));
        }
        Ok(Input {
            text,
            attached: intake.notes,
        })
    }

    /// The channel, peer and cap of `ctx`'s session.
    async fn file_target(&self, ctx: &ToolContext) -> Result<(String, String, u64), ToolError> {
        let Some(id) = &ctx.session else {
            return Err(no_channel());
        };
        if ctx.tenant != self.tenant {
            return Err(no_channel());
        }
        let session = self
            .runtime
            .store
            .get_session(&ctx.tenant, id)
            .await
            .map_err(|_| ToolError::failed("cannot read the conversation"))?
            .ok_or_else(no_channel)?;
        let Some(entry) = self.entries.get(&session.channel) else {
            return Err(no_channel());
        };
        let files = entry.config().files;
        if !files.enabled || !entry.adapter.info().can_files {
            return Err(ToolError::new(
                "channel.files_disabled",
                format!("channel {} does not send files", session.channel),
            ));
        }
        let peer = self
            .reply_to
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
            .unwrap_or_else(|| platform_peer(&session.peer).to_owned());
        let cap = files
            .max_bytes
            .min(u64::try_from(MAX_OUTBOX_FILE_BYTES).unwrap_or(u64::MAX));
        Ok((session.channel, peer, cap))
    }
}

#[async_trait::async_trait]
impl ChannelFiles for Channels {
    async fn file_cap(&self, ctx: &ToolContext) -> Result<u64, ToolError> {
        Ok(self.file_target(ctx).await?.2)
    }

    async fn send_file(&self, ctx: &ToolContext, file: ChannelFile) -> Result<String, ToolError> {
        let (channel, peer, cap) = self.file_target(ctx).await?;
        let len = u64::try_from(file.bytes.len()).unwrap_or(u64::MAX);
        if len > cap {
            return Err(ToolError::new(
                "tool.too_large",
                format!("the file is {len} bytes; channel {channel} sends at most {cap}"),
            ));
        }
        // Once per tool call: a call retried after a crash queues nothing new.
        let call = match &ctx.call_id {
            Some(c) => c.clone(),
            None => crate::home::random_hex_32()
                .map_err(|_| ToolError::failed("no randomness for the message key"))?,
        };
        let session = ctx.session.as_ref().map_or("-", SessionId::as_str);
        let key: String = format!("file:{session}:{call}").chars().take(500).collect();
        let name = file.name.clone();
        let msg = NewOutbound {
            channel: channel.clone(),
            peer,
            text: file.caption.unwrap_or_default(),
            idempotency_key: key,
            file: Some(OutboxFile {
                name: file.name,
                mime: file.mime,
                bytes: file.bytes,
            }),
        };
        self.runtime
            .store
            .enqueue_outbound(&self.tenant, &msg, now_ms())
            .await
            .map_err(|e| match e {
                exoclaw_core::store::StoreError::Invalid(why) => ToolError::invalid_args(why),
                _ => ToolError::failed("cannot queue the file"),
            })?;
        if let Some(e) = self.entries.get(&channel) {
            e.wake.notify_one();
        }
        Ok(format!(
            "Queued {name} ({}) for the person on {channel}; it is delivered shortly.",
            files::human(len)
        ))
    }
}

fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::platform_peer;

    #[test]
    fn a_sessions_generation_is_not_part_of_its_peer() {
        assert_eq!(platform_peer("42"), "42");
        assert_eq!(platform_peer("42~3"), "42");
        assert_eq!(platform_peer("-100:7~12"), "-100:7");
        assert_eq!(platform_peer("a~b"), "a~b");
        assert_eq!(platform_peer("x~"), "x~");
    }
}
