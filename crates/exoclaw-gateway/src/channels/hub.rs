//! [`Channels`]: the running channels of a gateway. Built from config (one
//! adapter per `channels.<name>` with a `type`), started under the
//! supervisor (each adapter's receiver and its outbox sender, restarted
//! with backoff when they fail), and the one inbound path of every adapter
//! ([`Channels::handle`]): dedup by platform id, the sender gate, bindings,
//! then `Runtime::receive` (chat commands or a turn) in the session of
//! (channel, account, peer). An admitted message's files are fetched and
//! saved in the sender's workspace first (`files.rs`); an agent's files go
//! out through the outbox too (the `ChannelFiles` port, `file_port.rs`).

use super::outbox::Sender;
use super::progress::Progress;
use super::state::{ChannelState, ChannelStatus, Pending};
use super::webhook::WebhookChannel;
use super::{Admission, ChannelGate, Chat, IgnoreReason, Inbound};
use crate::access::Principal;
use crate::alerts::Alerts;
use crate::config::channels::ChannelKind;
use crate::config::file::ChannelConfig;
use crate::runtime::{self, Runtime, TurnEnd, bindings};
use crate::supervisor::Task;
use exoclaw_core::agent::Finish;
use exoclaw_core::channel::{Channel, ChatKind, InboundMessage, InboundSink};
use exoclaw_core::model::Role;
use exoclaw_core::store::channel::{NewOutbound, OutboxMessage, OutboxStatus};
use exoclaw_core::{TenantId, now_ms};
use exoclaw_store::vault::SecretVault;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// What became of an inbound message.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// Its platform id was handled before.
    Duplicate,
    /// The sender gate dropped it.
    Ignored(IgnoreReason),
    /// The answer to send back (a turn's answer, a command's, a pairing
    /// code).
    Reply(String),
    /// The gateway could not handle it (`code` is stable; the cause is in
    /// the log).
    Failed(&'static str),
}

/// The answer to `/start` and `/help` (an admitted sender's; an unknown
/// one's `/start` gets the pairing flow like any first message).
const HELP: &str = "Hi! Write to me and the assistant answers here. Commands: /new starts a \
                    new conversation, /stop stops the answer being written, /stopall also \
                    stops the work it started, /help shows this.";

/// The answer to `/new`.
const NEW: &str = "Started a new conversation: the assistant no longer sees the earlier \
                   messages (they are kept).";

/// `/new` or `/reset`, also as `/new@bot`.
fn is_new_command(text: &str) -> bool {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default();
    let first = first.split_once('@').map_or(first, |(w, _)| w);
    matches!(first, "/new" | "/reset") && words.next().is_none()
}

/// Where a conversation's generation is kept: a named position among the
/// channel cursors, per channel, user and peer. `/new` moves it on; the
/// session of generation `n > 0` is the peer's with `~n` appended, so the
/// earlier sessions stay as they were.
fn generation_key(channel: &str, user: &exoclaw_core::UserId, peer: &str) -> String {
    format!("{channel}/new/{user}/{peer}")
}

/// `/start` or `/help`, also as `/help@bot`.
fn is_help_command(text: &str) -> bool {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default();
    let first = first.split_once('@').map_or(first, |(w, _)| w);
    matches!(first, "/start" | "/help") && words.next().is_none()
}

/// The stable code of a receiver's failure, for `alert.channel_failure`.
fn failure_code(e: &exoclaw_core::channel::ChannelError) -> &'static str {
    use exoclaw_core::channel::ChannelError as E;
    match e {
        E::Auth => "receiver.auth",
        E::RateLimited { .. } => "receiver.rate_limited",
        E::Unavailable(_) => "receiver.unavailable",
        E::Rejected(_) | E::Unsupported => "receiver.rejected",
    }
}

pub(super) struct Entry {
    pub(super) adapter: Arc<dyn Channel>,
    webhook: Option<Arc<WebhookChannel>>,
    telegram: Option<Arc<super::telegram::TelegramChannel>>,
    /// The channel's settings now (the policy part replaced by
    /// [`Channels::reconfigure`]).
    config: std::sync::RwLock<ChannelConfig>,
    state: Arc<ChannelState>,
    pub(super) wake: Arc<Notify>,
}

impl Entry {
    pub(super) fn config(&self) -> ChannelConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The gateway's channels (see the module docs).
pub struct Channels {
    me: Weak<Channels>,
    pub(super) runtime: Arc<Runtime>,
    pub(super) tenant: TenantId,
    gate: ChannelGate,
    alerts: Option<Alerts>,
    pub(super) entries: BTreeMap<String, Entry>,
    tasks: Mutex<Vec<Task>>,
    /// The workspace quotas received files are saved within.
    pub(super) quota: Arc<exoclaw_tools::quota::QuotaLedger>,
    /// Where the answer of each running turn goes (session to the
    /// platform's peer), for `channel_send_file`.
    pub(super) reply_to: Mutex<std::collections::HashMap<exoclaw_core::SessionId, String>>,
}

impl Channels {
    /// One adapter per configured channel with a `type` (none started yet).
    pub fn build(
        runtime: Arc<Runtime>,
        vault: Option<&Arc<SecretVault>>,
        alerts: Option<Alerts>,
    ) -> anyhow::Result<Arc<Self>> {
        let settings = runtime.settings.clone();
        let tenant = TenantId::new(exoclaw_core::DEFAULT_TENANT);
        let mut entries = BTreeMap::new();
        for (name, config) in &settings.config.channels {
            let Some(kind) = config.kind else { continue };
            let (adapter, webhook, telegram): (Arc<dyn Channel>, _, _) = match kind {
                ChannelKind::Webhook => {
                    let client = match &config.webhook.callback_url {
                        Some(url) => Some(crate::egress::endpoint_client(
                            &settings,
                            &format!("channels.{name}.webhook.callback_url"),
                            url,
                        )?),
                        None => None,
                    };
                    let w = Arc::new(WebhookChannel::new(
                        name,
                        tenant.clone(),
                        config.webhook.clone(),
                        vault.cloned(),
                        client,
                    ));
                    (w.clone(), Some(w), None)
                }
                ChannelKind::Telegram => {
                    let client = crate::egress::endpoint_client(
                        &settings,
                        &format!("channels.{name}.telegram.api_base"),
                        &config.telegram.api_base,
                    )?;
                    let env_token = settings
                        .env
                        .get(super::telegram::TOKEN_VAR)
                        .map(|t| exoclaw_core::Secret::new(t.to_owned()));
                    let t = Arc::new(
                        super::telegram::TelegramChannel::new(
                            name,
                            tenant.clone(),
                            config.telegram.clone(),
                            runtime.store.clone(),
                            env_token,
                            vault.cloned(),
                            client,
                        )
                        .with_holder(runtime.delegations.owner()),
                    );
                    t.set_file_cap(config.files.max_bytes);
                    (t.clone() as Arc<dyn Channel>, None, Some(t))
                }
                ChannelKind::Discord => {
                    let client = crate::egress::discord_client(
                        &settings,
                        &format!("channels.{name}.discord"),
                        &config.discord.api_base,
                        config.discord.gateway_url.as_deref(),
                    )?;
                    let env_token = settings
                        .env
                        .get(super::discord::TOKEN_VAR)
                        .map(|t| exoclaw_core::Secret::new(t.to_owned()));
                    let d = Arc::new(super::discord::DiscordChannel::new(
                        name,
                        tenant.clone(),
                        config.discord.clone(),
                        env_token,
                        vault.cloned(),
                        client,
                    ));
                    (d as Arc<dyn Channel>, None, None)
                }
            };
            entries.insert(
                name.clone(),
                Entry {
                    adapter,
                    webhook,
                    telegram,
                    config: std::sync::RwLock::new(config.clone()),
                    state: Arc::default(),
                    wake: Arc::default(),
                },
            );
        }
        let gate = ChannelGate::new(
            runtime.store.clone(),
            tenant.clone(),
            settings.config.channels.clone(),
            Duration::from_secs(settings.config.gateway.pairing_ttl_sec),
        );
        let quota = runtime.workspace_quota.clone();
        let channels = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            runtime,
            tenant,
            gate,
            alerts,
            entries,
            tasks: Mutex::new(Vec::new()),
            quota,
            reply_to: Mutex::default(),
        });
        let port: Arc<dyn exoclaw_core::tool::ChannelFiles> = channels.clone();
        if channels
            .runtime
            .channel_files
            .set(Arc::downgrade(&port))
            .is_err()
        {
            tracing::warn!("the runtime's channels were set before; channel_send_file keeps those");
        }
        Ok(channels)
    }

    /// A channel's settings now (`GET /v1/channels/{name}`): the running
    /// adapter's, else a policy-only channel's.
    pub fn settings_of(&self, name: &str) -> Option<ChannelConfig> {
        match self.entries.get(name) {
            Some(e) => Some(e.config()),
            None => self.gate.config(name),
        }
    }

    /// Apply new settings of channel `name` without a restart: the sender
    /// policy (`dm_policy`, `allow_from`, `groups`), `progress` and `files`
    /// take effect with the next message; the adapter's own sections
    /// (`type`, `webhook`, `telegram`, `outbox`) stay as started. `false`
    /// when there is no such channel.
    pub fn reconfigure(&self, name: &str, config: &ChannelConfig) -> bool {
        let known = self.gate.set(name, config.clone());
        if let Some(e) = self.entries.get(name) {
            let mut live = e.config.write().unwrap_or_else(PoisonError::into_inner);
            live.dm_policy = config.dm_policy;
            live.allow_from.clone_from(&config.allow_from);
            live.groups = config.groups.clone();
            live.progress = config.progress.clone();
            live.files = config.files.clone();
            if let Some(t) = &e.telegram {
                t.set_file_cap(config.files.max_bytes);
            }
        }
        known
    }

    /// Start every channel's receiver and outbox sender.
    pub fn start(&self) {
        let sup = self.runtime.supervisor.clone();
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, e) in &self.entries {
            let sender = Arc::new(Sender {
                store: self.runtime.store.clone(),
                tenant: self.tenant.clone(),
                adapter: e.adapter.clone(),
                state: e.state.clone(),
                wake: e.wake.clone(),
                queued: self.runtime.outbox_queued.clone(),
                config: e.config().outbox.clone(),
                alerts: self.alerts.clone(),
                holder: self.runtime.delegations.owner().to_owned(),
            });
            tasks.push(sup.start_restarting("channel.outbox", move |stop| {
                let sender = sender.clone();
                async move { sender.run(stop).await }
            }));
            let adapter = e.adapter.clone();
            let state = e.state.clone();
            let sink: Arc<dyn InboundSink> = Arc::new(Sink {
                channels: self.me.clone(),
                name: name.clone(),
            });
            let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let alerts = self.alerts.clone();
            tasks.push(sup.start_restarting("channel.receive", move |stop| {
                let (adapter, state, sink) = (adapter.clone(), state.clone(), sink.clone());
                let alerts = alerts.clone();
                let first = first.swap(false, std::sync::atomic::Ordering::Relaxed);
                async move {
                    state.started(first);
                    let ended = adapter.run(sink.as_ref(), stop).await;
                    state.ended(ended.as_ref().err().map(ToString::to_string));
                    let name = &adapter.info().name;
                    if let (Err(e), Some(a)) = (&ended, &alerts) {
                        a.channel_failure(name, failure_code(e));
                    }
                    ended.map_err(|e| anyhow::anyhow!("channel {name} stopped: {e}"))
                }
            }));
        }
    }

    /// Stop the receivers and senders (a message being sent is finished or
    /// left pending for the next start).
    pub async fn stop(&self, grace: Duration) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for t in tasks {
            t.stop(grace).await;
        }
    }

    /// The webhook adapter named `name`, if that channel is one.
    pub fn webhook(&self, name: &str) -> Option<Arc<WebhookChannel>> {
        self.entries.get(name).and_then(|e| e.webhook.clone())
    }

    /// The Telegram adapter named `name`, if that channel is one.
    pub fn telegram(&self, name: &str) -> Option<Arc<super::telegram::TelegramChannel>> {
        self.entries.get(name).and_then(|e| e.telegram.clone())
    }

    /// Every channel's state, by name.
    pub async fn status(&self) -> Vec<ChannelStatus> {
        let mut out = Vec::with_capacity(self.entries.len());
        for (name, e) in &self.entries {
            let depth = self
                .runtime
                .store
                .count_pending_outbound(&self.tenant, name)
                .await
                .unwrap_or(-1);
            out.push(e.state.snapshot(name, e.adapter.info().kind, depth));
        }
        out
    }

    /// Queue `text` to `peer` on `channel` (once per `key`) and wake its
    /// sender.
    pub async fn queue(
        &self,
        channel: &str,
        peer: &str,
        text: &str,
        key: &str,
    ) -> Result<(), exoclaw_core::store::StoreError> {
        let msg = NewOutbound {
            channel: channel.to_owned(),
            peer: peer.to_owned(),
            text: text.to_owned(),
            idempotency_key: key.to_owned(),
            file: None,
        };
        self.runtime
            .store
            .enqueue_outbound(&self.tenant, &msg, now_ms())
            .await?;
        if let Some(e) = self.entries.get(channel) {
            e.wake.notify_one();
        }
        Ok(())
    }

    /// `exoclaw channels test`: queue `text` to `peer` on `channel` through
    /// the outbox like any reply, wake its sender, and wait up to `within`
    /// for the outcome. `None` when there is no such running channel.
    pub async fn test(
        &self,
        channel: &str,
        peer: &str,
        text: &str,
        within: Duration,
    ) -> Result<Option<OutboxMessage>, exoclaw_core::store::StoreError> {
        let Some(entry) = self.entries.get(channel) else {
            return Ok(None);
        };
        let key = format!("test:{}", crate::home::random_hex_32().unwrap_or_default());
        let msg = NewOutbound {
            channel: channel.to_owned(),
            peer: peer.to_owned(),
            text: text.to_owned(),
            idempotency_key: key,
            file: None,
        };
        let store = &self.runtime.store;
        let (queued, _) = store.enqueue_outbound(&self.tenant, &msg, now_ms()).await?;
        entry.wake.notify_one();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let now = store.get_outbound(&self.tenant, &queued.id).await?;
            let Some(m) = now else {
                return Ok(Some(queued));
            };
            if m.status != OutboxStatus::Pending || tokio::time::Instant::now() >= deadline {
                return Ok(Some(m));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Note an inbound platform id of `channel`: `false` for a repeat.
    pub async fn first_seen(
        &self,
        channel: &str,
        platform_id: &str,
    ) -> Result<bool, exoclaw_core::store::StoreError> {
        self.runtime
            .store
            .record_inbound(&self.tenant, channel, platform_id, now_ms())
            .await
    }

    /// The one inbound path (see the module docs); waits for the answer.
    pub async fn handle(&self, channel: &str, msg: InboundMessage) -> Handled {
        let Some(entry) = self.entries.get(channel) else {
            return Handled::Ignored(IgnoreReason::ChannelNotConfigured);
        };
        match self.first_seen(channel, &msg.platform_id).await {
            Ok(true) => {}
            Ok(false) => {
                entry.state.duplicate();
                return Handled::Duplicate;
            }
            Err(e) => {
                tracing::warn!(error = %e, channel, "cannot record an inbound message");
                return Handled::Failed("internal");
            }
        }
        self.handle_seen(channel, msg).await
    }

    /// [`Channels::handle`] after dedup (for a receiver that checked
    /// [`Channels::first_seen`] itself): the gate, bindings and the runtime.
    pub async fn handle_seen(&self, channel: &str, msg: InboundMessage) -> Handled {
        if let Some(e) = self.entries.get(channel) {
            e.state.inbound(now_ms());
        }
        let gate_msg = Inbound {
            channel: channel.to_owned(),
            sender_id: msg.sender_id.clone(),
            sender_name: msg.sender_name.clone(),
            chat: match &msg.chat {
                ChatKind::Direct => Chat::Direct,
                ChatKind::Group { id } => Chat::Group { id: id.clone() },
            },
            mentioned: msg.mentioned,
            text: msg.text.clone(),
        };
        let (user, tenant) = match self.gate.admit(&gate_msg).await {
            Ok(Admission::Deliver { user, tenant }) => (user, tenant),
            Ok(Admission::PairingCode { code, .. }) => {
                let code = code.expose();
                return Handled::Reply(format!(
                    "To talk to this assistant, ask its admin to approve pairing code {code} \
                     (exoclaw pairing approve {code})."
                ));
            }
            Ok(Admission::PairingPending { .. }) => {
                return Handled::Reply(
                    "Your pairing request is waiting for the admin's approval.".to_owned(),
                );
            }
            Ok(Admission::Ignore { reason }) => {
                tracing::debug!(channel, ?reason, "an inbound message was ignored");
                return Handled::Ignored(reason);
            }
            Err(e) => {
                tracing::warn!(error = %e, channel, "the sender gate failed");
                return Handled::Failed("internal");
            }
        };
        if is_help_command(&msg.text) {
            return Handled::Reply(HELP.to_owned());
        }
        let store = self.runtime.store.as_ref();
        let agent = match bindings::resolve(
            store,
            &tenant,
            channel,
            msg.account.as_deref(),
            &msg.peer,
            &user,
        )
        .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, channel, "cannot resolve the agent of a channel message");
                return Handled::Failed("internal");
            }
        };
        let who = Principal {
            actor: format!("channel:{channel}"),
            role: Role::User,
            tenant,
            user,
            scopes: None,
        };
        let peer = match &msg.account {
            Some(a) => format!("{a}:{}", msg.peer),
            None => msg.peer.clone(),
        };
        let key = generation_key(channel, &who.user, &peer);
        let generation = match store.get_channel_cursor(&who.tenant, &key).await {
            Ok(g) => g.and_then(|g| g.parse::<u64>().ok()).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, channel, "cannot read a conversation's generation");
                return Handled::Failed("internal");
            }
        };
        if is_new_command(&msg.text) {
            let next = (generation + 1).to_string();
            if let Err(e) = store
                .set_channel_cursor(&who.tenant, &key, &next, now_ms())
                .await
            {
                tracing::warn!(error = %e, channel, "cannot start a new conversation");
                return Handled::Failed("internal");
            }
            return Handled::Reply(NEW.to_owned());
        }
        let peer = if generation == 0 {
            peer
        } else {
            format!("{peer}~{generation}")
        };
        let input = match self.take_files(channel, &who, &agent, &msg).await {
            Ok(input) => input,
            Err(reply) => return reply,
        };
        let got = self
            .runtime
            .receive(&who, agent.as_str(), channel, &peer, input, None)
            .await;
        match got {
            Ok(runtime::turn::Inbound::Turn(mut turn)) => {
                let _reply_to = self.note_reply_to(&turn.session.id, &msg.peer);
                let mut progress = self.entries.get(channel).map(|e| {
                    Progress::new(
                        e.adapter.as_ref(),
                        &e.config().progress,
                        &msg.peer,
                        msg.message_ref.clone(),
                    )
                });
                if let Some(p) = progress.as_mut() {
                    p.start().await;
                }
                loop {
                    let event = tokio::select! {
                        event = turn.events.recv() => event,
                        () = tokio::time::sleep(super::progress::TYPING_EVERY) => {
                            if let Some(p) = progress.as_mut() {
                                p.tick().await;
                            }
                            continue;
                        }
                    };
                    let Some(event) = event else { break };
                    if let Some(p) = progress.as_mut() {
                        p.event(&event).await;
                    }
                }
                let (text, ok) = match turn.end().await {
                    TurnEnd::Ran(o) => match o.finish {
                        Finish::Complete => (o.text, true),
                        // Said in words: a chat has no error status.
                        Finish::Failed { code, .. } if o.text.trim().is_empty() => (
                            format!("Sorry, no answer this time ({code}). Please try again later."),
                            false,
                        ),
                        _ => (o.text, false),
                    },
                    TurnEnd::Broken { code, message } => {
                        tracing::warn!(channel, code, "a channel turn broke");
                        (message, false)
                    }
                };
                Handled::Reply(match progress {
                    Some(p) => p.finish(text, ok).await,
                    None => text,
                })
            }
            Ok(runtime::turn::Inbound::Stopped(s)) => Handled::Reply(s.message()),
            Ok(runtime::turn::Inbound::Replied(text)) => Handled::Reply(text),
            Err(e) => {
                tracing::warn!(error = %e, channel, "a channel message could not start a turn");
                Handled::Failed(match e {
                    runtime::StartError::InjectionBlocked(_) => "security.injection_blocked",
                    runtime::StartError::Disabled(_) => "agent.disabled",
                    runtime::StartError::NoAgent(_) => "agent.not_found",
                    _ => "internal",
                })
            }
        }
    }
}

/// An adapter's sink: each message is handled on its own task and its
/// answer queued in the outbox.
struct Sink {
    channels: Weak<Channels>,
    name: String,
}

#[async_trait::async_trait]
impl InboundSink for Sink {
    async fn deliver(&self, msg: InboundMessage) {
        let Some(channels) = self.channels.upgrade() else {
            return;
        };
        // Noted as seen before the adapter moves past it (its cursor): a
        // restart then neither repeats nor skips it.
        match channels.first_seen(&self.name, &msg.platform_id).await {
            Ok(true) => channels.answer_later(&self.name, msg, Dedup::Done),
            Ok(false) => {
                if let Some(e) = channels.entries.get(&self.name) {
                    e.state.duplicate();
                }
            }
            // Not noted: handled with the check (a repeat is still caught).
            Err(_) => channels.answer_later(&self.name, msg, Dedup::Check),
        }
    }
}

/// Whether [`Channels::answer_later`] still deduplicates the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dedup {
    Check,
    /// The receiver checked [`Channels::first_seen`] itself.
    Done,
}

impl Channels {
    /// Handle `msg` on its own task and queue its answer to its peer
    /// (idempotency key `reply:<platform id>`).
    pub fn answer_later(self: &Arc<Self>, channel: &str, msg: InboundMessage, dedup: Dedup) {
        // Counted while it is handled (the pushing receivers are not
        // bounded here: they wait for their own sends).
        let held = self
            .entries
            .get(channel)
            .and_then(|e| e.state.try_pending(u64::MAX));
        self.answer_held(channel, msg, dedup, held);
    }

    /// A place among `channel`'s pending messages, unless `max` are
    /// pending already (a webhook refuses the request then): see
    /// `webhook.max_pending`.
    pub fn admit(&self, channel: &str, max: u64) -> Option<Pending> {
        self.entries.get(channel)?.state.try_pending(max)
    }

    /// [`Self::answer_later`] for a message [`Self::admit`] counted.
    pub fn answer_held(
        self: &Arc<Self>,
        channel: &str,
        msg: InboundMessage,
        dedup: Dedup,
        held: Option<Pending>,
    ) {
        let channels = self.clone();
        let name = channel.to_owned();
        self.runtime
            .supervisor
            .detach("channel.inbound", async move {
                let _held = held;
                let key = format!("reply:{}", msg.platform_id);
                let peer = msg.peer.clone();
                let handled = match dedup {
                    Dedup::Check => channels.handle(&name, msg).await,
                    Dedup::Done => channels.handle_seen(&name, msg).await,
                };
                if let Handled::Reply(text) = handled
                    && !text.is_empty()
                {
                    channels.queue(&name, &peer, &text, &key).await?;
                }
                Ok(())
            });
    }
}
