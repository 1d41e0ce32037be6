//! The outbox sender of one channel: delivers the channel's due messages
//! oldest first through its adapter, each chat's in order and up to
//! [`IN_FLIGHT`] chats at once, marks each sent, and on a failure
//! schedules the next try (a platform's `retry_after`, else exponential
//! backoff) or, after `outbox.max_attempts`, dead-letters it and raises
//! `alert.channel_failure`. Messages written while the gateway was down (or
//! left pending by a crash) are simply due at start.
//!
//! Several gateways may share one database: the sender claims the messages
//! it sends (`ChannelStore::claim_outbound`, a lease of `outbox.lease_sec`),
//! so no two gateways send one message; a crashed gateway's claims lapse
//! and another sends them (its own restart takes them back at once).
//!
//! A message is marked sent after the platform accepted it: a crash between
//! the two sends it again after the restart, with the same idempotency key
//! (the webhook's `event_id`), so a receiver can drop the repeat.
//!
//! A message that carries a file (an agent's `channel_send_file`) goes out
//! with [`Channel::send_file`], its text as the caption; its bytes are read
//! from the store only when it is sent.

use super::state::ChannelState;
use crate::alerts::Alerts;
use crate::config::channels::OutboxConfig;
use exoclaw_core::channel::{Channel, ChannelError, Outgoing, OutgoingFile};
use exoclaw_core::store::Store;
use exoclaw_core::store::channel::{Failure, OutboxMessage};
use exoclaw_core::{TenantId, UnixMillis, now_ms};
use futures_util::TryStreamExt as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Messages claimed per look at the outbox.
const BATCH: u32 = 32;
/// Chats sent to at once. One at a time, a send's round trip and its mark
/// bounded a channel to about 940 messages/s (BENCHMARKS.md, issue 15); a
/// chat's own messages still go one after another, so it sees them in order.
pub(crate) const IN_FLIGHT: usize = 8;
/// The longest wait between two looks when nothing is due sooner (another
/// gateway on the same database may have queued something).
const IDLE: Duration = Duration::from_secs(30);

/// What the sender needs (one per channel).
pub(crate) struct Sender {
    pub store: Arc<dyn Store>,
    pub tenant: TenantId,
    pub adapter: Arc<dyn Channel>,
    pub state: Arc<ChannelState>,
    pub wake: Arc<Notify>,
    /// The runtime's `outbox_queued`.
    pub queued: Arc<Notify>,
    pub config: OutboxConfig,
    pub alerts: Option<Alerts>,
    /// This gateway instance, the holder of its claims.
    pub holder: String,
}

impl Sender {
    fn name(&self) -> &str {
        &self.adapter.info().name
    }

    /// Deliver until `stop` (a store failure ends the run; the supervisor
    /// starts it again).
    pub(crate) async fn run(&self, stop: CancellationToken) -> anyhow::Result<()> {
        loop {
            let now = now_ms();
            let lease = i64::try_from(self.config.lease_sec.saturating_mul(1000)).unwrap_or(60_000);
            let due = self
                .store
                .claim_outbound(
                    &self.tenant,
                    self.name(),
                    &self.holder,
                    now,
                    now.saturating_add(lease),
                    BATCH,
                )
                .await?;
            let full = due.len() == BATCH as usize;
            let mut chats: Vec<Vec<OutboxMessage>> = Vec::new();
            for m in due {
                match chats
                    .iter_mut()
                    .find(|c| c.first().is_some_and(|f| f.peer == m.peer))
                {
                    Some(chat) => chat.push(m),
                    None => chats.push(vec![m]),
                }
            }
            futures_util::stream::iter(chats.into_iter().map(Ok))
                .try_for_each_concurrent(IN_FLIGHT, |chat| {
                    let stop = &stop;
                    async move {
                        for m in chat {
                            // A send starts with at least half its claim
                            // left (the rest is claimed again, at once, as
                            // ours).
                            if stop.is_cancelled()
                                || now_ms() > m.claimed_until.unwrap_or(0).saturating_sub(lease / 2)
                            {
                                break;
                            }
                            self.deliver(&m).await?;
                        }
                        anyhow::Ok(())
                    }
                })
                .await?;
            if stop.is_cancelled() {
                return Ok(());
            }
            if full {
                continue;
            }
            let next = self
                .store
                .next_outbound_at(&self.tenant, self.name())
                .await?;
            let wait = next.map_or(IDLE, |at| {
                Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(IDLE)
            });
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = self.wake.notified() => {}
                () = self.queued.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Send `m` through the adapter: its text, or its file.
    async fn send(
        &self,
        m: &OutboxMessage,
    ) -> anyhow::Result<Result<exoclaw_core::channel::Sent, ChannelError>> {
        let Some(name) = &m.file_name else {
            let out = Outgoing {
                peer: m.peer.clone(),
                text: m.text.clone(),
                idempotency_key: m.idempotency_key.clone(),
            };
            return Ok(self.adapter.send(&out).await);
        };
        let Some(bytes) = self.store.outbound_file(&self.tenant, &m.id).await? else {
            return Ok(Err(ChannelError::Rejected(
                "the file of this message is gone".to_owned(),
            )));
        };
        let file = OutgoingFile {
            peer: m.peer.clone(),
            name: name.clone(),
            mime: m.file_mime.clone(),
            bytes,
            caption: (!m.text.trim().is_empty()).then(|| m.text.clone()),
            idempotency_key: m.idempotency_key.clone(),
        };
        Ok(self.adapter.send_file(&file).await)
    }

    async fn deliver(&self, m: &OutboxMessage) -> anyhow::Result<()> {
        match self.send(m).await? {
            Ok(sent) => {
                let now = now_ms();
                self.store
                    .mark_outbound_sent(&self.tenant, &m.id, sent.platform_id.as_deref(), now)
                    .await?;
                self.state.sent(now);
            }
            Err(e) => {
                let failure = self.failure(m, &e, now_ms());
                let dead = matches!(failure, Failure::Dead { .. });
                tracing::warn!(
                    event = "channel.send_failed",
                    channel = %self.name(),
                    outbox_id = %m.id,
                    attempts = m.attempts + 1,
                    dead,
                    error = %e,
                    "a channel message was not delivered"
                );
                self.state.failed(e.to_string(), dead);
                self.store
                    .mark_outbound_failed(&self.tenant, &m.id, &failure)
                    .await?;
                if dead && let Some(a) = &self.alerts {
                    a.channel_failure(self.name(), "outbox.dead_letter");
                }
            }
        }
        Ok(())
    }

    /// The next try of `m` after `e`, or none.
    fn failure(&self, m: &OutboxMessage, e: &ChannelError, now: UnixMillis) -> Failure {
        let error = e.to_string();
        let attempts = m.attempts.saturating_add(1);
        if !e.is_retryable() || attempts >= i64::from(self.config.max_attempts) {
            return Failure::Dead { error };
        }
        let wait = match e {
            ChannelError::RateLimited { retry_after } => *retry_after,
            _ => backoff(&self.config, attempts),
        };
        let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        Failure::Retry {
            retry_at: now.saturating_add(wait),
            error,
        }
    }
}

/// `backoff_ms` doubled for each earlier failure, capped.
pub(crate) fn backoff(c: &OutboxConfig, attempts: i64) -> Duration {
    let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let ms = c
        .backoff_ms
        .saturating_mul(1u64 << shift)
        .min(c.backoff_max_ms);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use exoclaw_core::DEFAULT_TENANT;
    use exoclaw_core::channel::{ChannelInfo, InboundSink, Sent};
    use exoclaw_core::store::channel::NewOutbound;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Records what it is sent, in order, and the most sends at once.
    struct Recorder {
        info: ChannelInfo,
        sent: Mutex<Vec<(String, String)>>,
        now: AtomicUsize,
        most: AtomicUsize,
    }

    #[async_trait]
    impl Channel for Recorder {
        fn info(&self) -> &ChannelInfo {
            &self.info
        }
        async fn run(
            &self,
            _sink: &dyn InboundSink,
            stop: CancellationToken,
        ) -> Result<(), ChannelError> {
            stop.cancelled().await;
            Ok(())
        }
        async fn send(&self, msg: &Outgoing) -> Result<Sent, ChannelError> {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.sent
                .lock()
                .unwrap()
                .push((msg.peer.clone(), msg.text.clone()));
            self.now.fetch_sub(1, Ordering::SeqCst);
            Ok(Sent { platform_id: None })
        }
    }

    /// Twelve chats of three messages each: every message sent once, each
    /// chat's in the order queued, several chats at once but never more
    /// than [`IN_FLIGHT`].
    #[tokio::test]
    async fn chats_are_sent_to_at_once_and_each_chat_in_order() {
        let db = crate::test_store::sqlite().await;
        let tenant = TenantId::new(DEFAULT_TENANT);
        let mut at = 1_000;
        for n in 0..3 {
            for chat in 0..12 {
                let msg = NewOutbound {
                    channel: "hook".to_owned(),
                    peer: format!("chat{chat}"),
                    text: format!("message {n}"),
                    idempotency_key: format!("chat{chat}-{n}"),
                    file: None,
                };
                db.store.enqueue_outbound(&tenant, &msg, at).await.unwrap();
                at += 1;
            }
        }
        let adapter = Arc::new(Recorder {
            info: ChannelInfo {
                name: "hook".to_owned(),
                kind: "webhook",
                can_edit: false,
                can_react: false,
                can_type: false,
                can_files: false,
            },
            sent: Mutex::new(Vec::new()),
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        });
        let sender = Sender {
            store: db.store.clone(),
            tenant: tenant.clone(),
            adapter: adapter.clone(),
            state: Arc::new(ChannelState::default()),
            wake: Arc::new(Notify::new()),
            queued: Arc::new(Notify::new()),
            config: OutboxConfig::default(),
            alerts: None,
            holder: "test".to_owned(),
        };
        let stop = CancellationToken::new();
        let run = sender.run(stop.clone());
        let done = async {
            for _ in 0..500 {
                if adapter.sent.lock().unwrap().len() == 36 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stop.cancel();
        };
        let (ran, ()) = tokio::join!(run, done);
        ran.unwrap();
        let sent = adapter.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 36, "{sent:?}");
        for chat in 0..12 {
            let texts: Vec<&str> = sent
                .iter()
                .filter(|(p, _)| *p == format!("chat{chat}"))
                .map(|(_, t)| t.as_str())
                .collect();
            assert_eq!(texts, ["message 0", "message 1", "message 2"], "chat{chat}");
        }
        let most = adapter.most.load(Ordering::SeqCst);
        assert!((2..=IN_FLIGHT).contains(&most), "{most} at once");
        assert_eq!(
            db.store
                .count_pending_outbound(&tenant, "hook")
                .await
                .unwrap(),
            0
        );
        db.finish().await;
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = OutboxConfig {
            max_attempts: 8,
            backoff_ms: 100,
            backoff_max_ms: 1_000,
            lease_sec: 60,
        };
        let got: Vec<u128> = (1..=6).map(|a| backoff(&c, a).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff(&c, 400).as_millis(), 1_000);
    }
}
