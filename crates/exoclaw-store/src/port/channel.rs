//! Messaging channels' state, written once for both backends (see
//! [`crate::port`]): the outbox (queued once per idempotency key; claimed
//! by one gateway at a time under a lease, `UPDATE ... WHERE` re-checked
//! with `SKIP LOCKED` on PostgreSQL; a delivery is marked only while the
//! message is still pending, so two senders cannot both mark it), inbound
//! ids seen, channel cursors and receive leases.
//! Rules (sizes) are in `crate::rule::channel`.

/// The columns of a `channel_outbox` row, in insert order.
macro_rules! outbox_cols {
    () => {
        "tenant_id, id, channel, peer, text, idempotency_key, status, attempts, \
         next_attempt_at, last_error, platform_id, created_at, sent_at, file_name, \
         file_mime, claimed_by, claimed_until"
    };
}
pub(crate) use outbox_cols;

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::store::channel::{Failure, NewOutbound, OutboxMessage};
        use exoclaw_core::store::{ChannelStore, StoreResult};
        use exoclaw_core::{TenantId, UnixMillis};
        use $crate::port::channel::outbox_cols;
        use $crate::port::grouped::Small;
        use $crate::{new_id, row, rule};

        #[async_trait]
        impl ChannelStore for $store {
            async fn enqueue_outbound(
                &self,
                tenant: &TenantId,
                msg: &NewOutbound,
                now: UnixMillis,
            ) -> StoreResult<(OutboxMessage, bool)> {
                rule::channel::check_new(msg)?;
                let id = new_id()?;
                let grouped = if msg.file.is_none() {
                    self.write_grouped(|| Small::Outbox {
                        tenant: tenant.as_str().to_owned(),
                        id: id.clone(),
                        channel: msg.channel.clone(),
                        peer: msg.peer.clone(),
                        text: msg.text.clone(),
                        idempotency_key: msg.idempotency_key.clone(),
                        now,
                    })
                    .await?
                } else {
                    None
                };
                let inserted = match grouped {
                    Some(done) => done.outbox()?,
                    None => {
                        let file = msg.file.as_ref();
                        sqlx::query($d::sql!(
                            "INSERT INTO channel_outbox (",
                            outbox_cols!(),
                            ", file_bytes) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, NULL, NULL, \
                             ?, NULL, ?, ?, NULL, NULL, ?) \
                             ON CONFLICT (tenant_id, channel, idempotency_key) DO NOTHING \
                             RETURNING ",
                            outbox_cols!()
                        ))
                        .bind(tenant.as_str())
                        .bind(&id)
                        .bind(&msg.channel)
                        .bind(&msg.peer)
                        .bind(&msg.text)
                        .bind(&msg.idempotency_key)
                        .bind(now)
                        .bind(now)
                        .bind(file.map(|f| f.name.as_str()))
                        .bind(file.and_then(|f| f.mime.as_deref()))
                        .bind(file.map(|f| f.bytes.as_slice()))
                        .fetch_optional(&mut *self.write_conn().await?)
                        .await
                        .map_err($d::err)?
                        .as_ref()
                        .map(row::outbox_message)
                        .transpose()?
                    }
                };
                if let Some(queued) = inserted {
                    return Ok((queued, true));
                }
                // Queued before under this key (committed: read anywhere).
                let r = sqlx::query($d::sql!(
                    "SELECT ",
                    outbox_cols!(),
                    " FROM channel_outbox WHERE tenant_id = ? AND channel = ? \
                     AND idempotency_key = ?"
                ))
                .bind(tenant.as_str())
                .bind(&msg.channel)
                .bind(&msg.idempotency_key)
                .fetch_one(&self.pool)
                .await
                .map_err($d::err)?;
                Ok((row::outbox_message(&r)?, false))
            }

            async fn due_outbound(
                &self,
                tenant: &TenantId,
                channel: &str,
                now: UnixMillis,
                limit: u32,
            ) -> StoreResult<Vec<OutboxMessage>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    outbox_cols!(),
                    " FROM channel_outbox WHERE tenant_id = ?1 AND channel = ?2 \
                     AND status = 'pending' AND next_attempt_at <= ?3 \
                     ORDER BY next_attempt_at, created_at, id LIMIT ",
                    $d::limit!("?4")
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::outbox_message)
            }

            async fn claim_outbound(
                &self,
                tenant: &TenantId,
                channel: &str,
                holder: &str,
                now: UnixMillis,
                until: UnixMillis,
                limit: u32,
            ) -> StoreResult<Vec<OutboxMessage>> {
                rule::channel::check_key("holder", holder)?;
                // The claimed ids are picked once (a locking CTE is not
                // inlined; a subquery could be re-run per row on
                // PostgreSQL), and the update re-checks the claim, so two
                // claims never both take a message.
                let rows = sqlx::query($d::sql!(
                    "WITH picked AS (SELECT id FROM channel_outbox WHERE tenant_id = ?3 \
                     AND channel = ?4 AND status = 'pending' AND next_attempt_at <= ?5 \
                     AND (claimed_until IS NULL OR claimed_until <= ?5 OR claimed_by = ?1) \
                     ORDER BY next_attempt_at, created_at, id LIMIT ",
                    $d::limit!("?6"),
                    $d::skip_locked!(),
                    ") UPDATE channel_outbox SET claimed_by = ?1, claimed_until = ?2 \
                     WHERE tenant_id = ?3 AND id IN (SELECT id FROM picked) \
                     AND status = 'pending' \
                     AND (claimed_until IS NULL OR claimed_until <= ?5 OR claimed_by = ?1) \
                     RETURNING ",
                    outbox_cols!()
                ))
                .bind(holder)
                .bind(until)
                .bind(tenant.as_str())
                .bind(channel)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                let mut out = row::all(&rows, row::outbox_message)?;
                out.sort_by(|a, b| {
                    (a.next_attempt_at, a.created_at, &a.id).cmp(&(
                        b.next_attempt_at,
                        b.created_at,
                        &b.id,
                    ))
                });
                Ok(out)
            }

            async fn next_outbound_at(
                &self,
                tenant: &TenantId,
                channel: &str,
            ) -> StoreResult<Option<UnixMillis>> {
                sqlx::query_scalar($d::sql!(
                    "SELECT MIN(CASE WHEN claimed_until > next_attempt_at THEN claimed_until \
                     ELSE next_attempt_at END) FROM channel_outbox WHERE tenant_id = ? \
                     AND channel = ? AND status = 'pending'"
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .fetch_one(&self.pool)
                .await
                .map_err($d::err)
            }

            async fn count_pending_outbound(
                &self,
                tenant: &TenantId,
                channel: &str,
            ) -> StoreResult<i64> {
                sqlx::query_scalar($d::sql!(
                    "SELECT COUNT(*) FROM channel_outbox WHERE tenant_id = ? AND channel = ? \
                     AND status = 'pending'"
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .fetch_one(&self.pool)
                .await
                .map_err($d::err)
            }

            async fn mark_outbound_sent(
                &self,
                tenant: &TenantId,
                id: &str,
                platform_id: Option<&str>,
                now: UnixMillis,
            ) -> StoreResult<bool> {
                if let Some(done) = self
                    .write_grouped(|| Small::Sent {
                        tenant: tenant.as_str().to_owned(),
                        id: id.to_owned(),
                        platform_id: platform_id.map(str::to_owned),
                        now,
                    })
                    .await?
                {
                    return done.sent();
                }
                let done = sqlx::query($d::sql!(
                    "UPDATE channel_outbox SET status = 'sent', platform_id = ?, sent_at = ?, \
                     file_bytes = NULL, claimed_by = NULL, claimed_until = NULL WHERE tenant_id = ? AND id = ? AND status = 'pending'"
                ))
                .bind(platform_id)
                .bind(now)
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn mark_outbound_failed(
                &self,
                tenant: &TenantId,
                id: &str,
                failure: &Failure,
            ) -> StoreResult<bool> {
                let (status, retry_at) = match failure {
                    Failure::Retry { retry_at, .. } => ("pending", Some(*retry_at)),
                    Failure::Dead { .. } => ("dead", None),
                };
                let done = sqlx::query($d::sql!(
                    "UPDATE channel_outbox SET status = ?1, attempts = attempts + 1, \
                     next_attempt_at = COALESCE(?2, next_attempt_at), last_error = ?3, \
                     claimed_by = NULL, claimed_until = NULL, \
                     file_bytes = CASE WHEN ?1 = 'dead' THEN NULL ELSE file_bytes END \
                     WHERE tenant_id = ?4 AND id = ?5 AND status = 'pending'"
                ))
                .bind(status)
                .bind(retry_at)
                .bind(rule::channel::error_text(failure))
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_outbound(
                &self,
                tenant: &TenantId,
                id: &str,
            ) -> StoreResult<Option<OutboxMessage>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    outbox_cols!(),
                    " FROM channel_outbox WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::outbox_message)
                .transpose()
            }

            async fn outbound_file(
                &self,
                tenant: &TenantId,
                id: &str,
            ) -> StoreResult<Option<Vec<u8>>> {
                let bytes: Option<Option<Vec<u8>>> = sqlx::query_scalar($d::sql!(
                    "SELECT file_bytes FROM channel_outbox WHERE tenant_id = ? AND id = ? \
                     AND status = 'pending'"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?;
                Ok(bytes.flatten())
            }

            async fn record_inbound(
                &self,
                tenant: &TenantId,
                channel: &str,
                platform_id: &str,
                now: UnixMillis,
            ) -> StoreResult<bool> {
                rule::channel::check_key("channel", channel)?;
                rule::channel::check_key("platform_id", platform_id)?;
                if let Some(done) = self
                    .write_grouped(|| Small::Inbound {
                        tenant: tenant.as_str().to_owned(),
                        channel: channel.to_owned(),
                        platform_id: platform_id.to_owned(),
                        now,
                    })
                    .await?
                {
                    return done.inbound();
                }
                let done = sqlx::query($d::sql!(
                    "INSERT INTO channel_inbound (tenant_id, channel, platform_id, seen_at) \
                     VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, channel, platform_id) DO NOTHING"
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .bind(platform_id)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn prune_inbound(
                &self,
                tenant: &TenantId,
                before: UnixMillis,
            ) -> StoreResult<u64> {
                let done = sqlx::query($d::sql!(
                    "DELETE FROM channel_inbound WHERE tenant_id = ? AND seen_at < ?"
                ))
                .bind(tenant.as_str())
                .bind(before)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected())
            }

            async fn hold_channel_lease(
                &self,
                tenant: &TenantId,
                channel: &str,
                holder: &str,
                now: UnixMillis,
                until: UnixMillis,
            ) -> StoreResult<bool> {
                rule::channel::check_key("channel", channel)?;
                rule::channel::check_key("holder", holder)?;
                let done = sqlx::query($d::sql!(
                    "INSERT INTO channel_leases (tenant_id, channel, holder, until_ms) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, channel) DO UPDATE \
                     SET holder = excluded.holder, until_ms = excluded.until_ms \
                     WHERE channel_leases.holder = excluded.holder \
                     OR channel_leases.until_ms <= ?5"
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .bind(holder)
                .bind(until)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_channel_lease(
                &self,
                tenant: &TenantId,
                channel: &str,
                holder: &str,
            ) -> StoreResult<()> {
                sqlx::query($d::sql!(
                    "DELETE FROM channel_leases WHERE tenant_id = ? AND channel = ? \
                     AND holder = ?"
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .bind(holder)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(())
            }

            async fn get_channel_cursor(
                &self,
                tenant: &TenantId,
                channel: &str,
            ) -> StoreResult<Option<String>> {
                sqlx::query_scalar($d::sql!(
                    "SELECT cursor FROM channel_cursors WHERE tenant_id = ? AND channel = ?"
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)
            }

            async fn set_channel_cursor(
                &self,
                tenant: &TenantId,
                channel: &str,
                cursor: &str,
                now: UnixMillis,
            ) -> StoreResult<()> {
                rule::channel::check_key("channel", channel)?;
                rule::channel::check_key("cursor", cursor)?;
                sqlx::query($d::sql!(
                    "INSERT INTO channel_cursors (tenant_id, channel, cursor, updated_at) \
                     VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, channel) \
                     DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at"
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .bind(cursor)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(())
            }
        }
    };
}

pub(crate) use ports;
