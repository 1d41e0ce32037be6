//! The sender policy of a channel (see the module docs of `channels`):
//!
//! | `dm_policy` | direct message from an unknown sender |
//! |---|---|
//! | `pairing` (default) | answered with a pairing code; delivered once an admin approves it (`exoclaw pairing approve CODE`); senders in `allow_from` are admitted at once |
//! | `allowlist` | delivered only if the sender is in `allow_from` (paired or not) |
//! | `open` | delivered; the sender becomes a user `<channel>:<sender_id>` |
//! | `disabled` | ignored |
//!
//! Group messages are ignored unless the group is in `groups.allow` and
//! (with `groups.require_mention`, the default) the message mentions the bot;
//! then the sender must be admitted as above, except that nobody is sent a
//! pairing code in a group. Each admitted sender maps to one user, always the
//! same one.

use super::{Chat, Inbound};
use crate::config::file::{ChannelConfig, DmPolicy};
use crate::pairing::{self, Requested, Requester};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{Secret, TenantId, UnixMillis, UserId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What to do with an inbound message.
#[derive(Debug)]
pub enum Admission {
    /// Hand it to the agents as this user.
    Deliver { user: UserId, tenant: TenantId },
    /// Reply with this pairing code (and how to get it approved); the
    /// message itself is not delivered.
    PairingCode {
        code: Secret,
        expires_at: UnixMillis,
    },
    /// The sender already waits for approval of a code sent earlier (a new
    /// code only once that one expires); the adapter may say so.
    PairingPending { expires_at: UnixMillis },
    /// Drop it (logged at debug by the adapter, never answered).
    Ignore { reason: IgnoreReason },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    ChannelNotConfigured,
    DmDisabled,
    /// `allowlist` and the sender is not in `allow_from`.
    NotAllowed,
    GroupNotAllowed,
    NotMentioned,
    /// An unknown sender in a group (pairing happens in direct messages).
    UnpairedSender,
    /// The sender's user is disabled.
    UserDisabled,
    /// A sender id that cannot be one (empty, too long, control characters).
    InvalidSender,
}

pub struct ChannelGate {
    store: Arc<dyn Store>,
    tenant: TenantId,
    /// Replaced whole by [`ChannelGate::set`] (`PATCH /v1/channels/{name}`).
    channels: std::sync::RwLock<BTreeMap<String, ChannelConfig>>,
    ttl: Duration,
}

fn listed(list: &[String], id: &str) -> bool {
    list.iter().any(|a| a == "*" || a == id)
}

fn is_valid_sender(id: &str) -> bool {
    !id.trim().is_empty() && id.len() <= 256 && !id.chars().any(char::is_control)
}

impl ChannelGate {
    /// `ttl` is how long a pairing code stays valid (`gateway.pairing_ttl_sec`).
    pub fn new(
        store: Arc<dyn Store>,
        tenant: TenantId,
        channels: BTreeMap<String, ChannelConfig>,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            tenant,
            channels: std::sync::RwLock::new(channels),
            ttl,
        }
    }

    /// The sender policy of `channel` now.
    pub fn config(&self, channel: &str) -> Option<ChannelConfig> {
        self.channels
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(channel)
            .cloned()
    }

    /// Replace the policy of a configured `channel`; the next message is
    /// admitted by it. `false` when there is no such channel.
    pub fn set(&self, channel: &str, config: ChannelConfig) -> bool {
        let mut map = self
            .channels
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get_mut(channel) {
            Some(c) => {
                *c = config;
                true
            }
            None => false,
        }
    }

    pub async fn admit(&self, msg: &Inbound) -> Result<Admission, StoreError> {
        let ignore = |reason| Ok(Admission::Ignore { reason });
        let Some(cfg) = self.config(&msg.channel) else {
            return ignore(IgnoreReason::ChannelNotConfigured);
        };
        if !is_valid_sender(&msg.sender_id) {
            return ignore(IgnoreReason::InvalidSender);
        }
        let in_group = match &msg.chat {
            Chat::Group { id } => {
                if !listed(&cfg.groups.allow, id) {
                    return ignore(IgnoreReason::GroupNotAllowed);
                }
                if cfg.groups.require_mention && !msg.mentioned {
                    return ignore(IgnoreReason::NotMentioned);
                }
                true
            }
            Chat::Direct => {
                if cfg.dm_policy == DmPolicy::Disabled {
                    return ignore(IgnoreReason::DmDisabled);
                }
                false
            }
        };
        let allowed = listed(&cfg.allow_from, &msg.sender_id);
        match cfg.dm_policy {
            DmPolicy::Allowlist if !allowed => ignore(IgnoreReason::NotAllowed),
            DmPolicy::Allowlist | DmPolicy::Open => self.deliver_mapping(msg).await,
            DmPolicy::Pairing | DmPolicy::Disabled => {
                if let Some(s) = self
                    .store
                    .get_channel_sender(&self.tenant, &msg.channel, &msg.sender_id)
                    .await?
                {
                    return self.deliver(s.user_id).await;
                }
                if allowed {
                    return self.deliver_mapping(msg).await;
                }
                if in_group || cfg.dm_policy == DmPolicy::Disabled {
                    return ignore(IgnoreReason::UnpairedSender);
                }
                self.pair(msg).await
            }
        }
    }

    /// Deliver as the sender's user, mapping it to `<channel>:<sender_id>`
    /// first if it has none.
    async fn deliver_mapping(&self, msg: &Inbound) -> Result<Admission, StoreError> {
        let store = self.store.as_ref();
        if let Some(s) = store
            .get_channel_sender(&self.tenant, &msg.channel, &msg.sender_id)
            .await?
        {
            return self.deliver(s.user_id).await;
        }
        let user = pairing::channel_user(store, &self.tenant, &msg.channel, &msg.sender_id).await?;
        let mapped = store
            .map_channel_sender(
                &self.tenant,
                &msg.channel,
                &msg.sender_id,
                &user,
                pairing::now_ms(),
            )
            .await?;
        self.deliver(mapped.user_id).await
    }

    async fn deliver(&self, user: UserId) -> Result<Admission, StoreError> {
        match self.store.get_user(&self.tenant, &user).await? {
            Some(u) if !u.disabled => Ok(Admission::Deliver {
                user: u.id,
                tenant: self.tenant.clone(),
            }),
            _ => Ok(Admission::Ignore {
                reason: IgnoreReason::UserDisabled,
            }),
        }
    }

    /// One pending request per sender: a code, or "still pending".
    async fn pair(&self, msg: &Inbound) -> Result<Admission, StoreError> {
        let who = Requester::Channel {
            channel: &msg.channel,
            sender_id: &msg.sender_id,
        };
        match pairing::request(self.store.as_ref(), &self.tenant, &who, 1, self.ttl).await? {
            Requested::Created { request, code } => {
                tracing::info!(
                    event = "channel.pairing_requested",
                    channel = %msg.channel,
                    "an unknown sender was sent a pairing code"
                );
                Ok(Admission::PairingCode {
                    code,
                    expires_at: request.expires_at,
                })
            }
            Requested::TooManyPending { oldest } => Ok(Admission::PairingPending {
                expires_at: oldest.expires_at,
            }),
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
