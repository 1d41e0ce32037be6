//! The outbox sender of one channel: delivers the channel's due messages
//! oldest first through its adapter, marks each sent, and on a failure
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
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Messages claimed per look at the outbox.
const BATCH: u32 = 8;
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
            for m in due {
                if stop.is_cancelled() {
                    return Ok(());
                }
                // A send starts with at least half its claim left (the
                // rest of the batch is claimed again, at once, as ours).
                if now_ms() > m.claimed_until.unwrap_or(0).saturating_sub(lease / 2) {
                    break;
                }
                self.deliver(&m).await?;
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
