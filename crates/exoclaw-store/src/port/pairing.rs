//! Browser and channel pairing, written once for both backends (see
//! [`crate::port`]): requests created one at a time per requester (SQLite:
//! under the write lock; PostgreSQL: under an advisory lock, also across
//! gateways) so the pending cap holds under races, decisions and credential
//! issue taken once (conditional UPDATEs), devices looked up by credential
//! hash, channel senders mapped first-wins.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use $crate::row::{self, Columns as _};
        use $crate::{error, new_id, new_secret_id, rule};
        use async_trait::async_trait;
        use exoclaw_core::model::{
            ChannelSender, Device, NewDevice, NewPairingRequest, PairingCreated,
            PairingDecision, PairingFailure, PairingKind, PairingRequest, PairingStatus,
        };
        use exoclaw_core::store::{PairingStore, StoreError, StoreResult};
        use exoclaw_core::{TenantId, UnixMillis, UserId};
        use sqlx::Connection as _;

        /// The columns of a `pairing_requests` row, in insert order.
        macro_rules! request_cols {
            () => {
                "id, tenant_id, kind, user_id, channel, sender_id, code_hash, status, \
                 created_at, expires_at, approved_by, approved_at"
            };
        }

        /// The columns of a `devices` row (not its credential digest).
        macro_rules! device_cols {
            () => {
                "id, tenant_id, user_id, label, created_at, last_seen_at, revoked_at"
            };
        }

        /// Maps a channel sender to a user unless it is mapped already.
        macro_rules! map_sender_sql {
            () => {
                $d::sql!(
                    "INSERT INTO channel_senders (tenant_id, channel, sender_id, user_id, \
                     created_at) VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT (tenant_id, channel, sender_id) DO NOTHING"
                )
            };
        }

        #[async_trait]
        impl PairingStore for $store {
            async fn create_pairing_request(
                &self,
                new: &NewPairingRequest,
                max_pending: u32,
                now: UnixMillis,
            ) -> StoreResult<PairingCreated> {
                rule::check_new_request(new)?;
                let user = new.user_id.as_ref().map(UserId::as_str);
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                // One creation per requester at a time: (user) for a device,
                // (channel, sender) for a channel.
                $d::lock(&mut tx, || {
                    format!(
                        "pairing/{}/{}/{}/{}/{}",
                        new.tenant_id,
                        new.kind.as_str(),
                        user.unwrap_or_default(),
                        new.channel.as_deref().unwrap_or_default(),
                        new.sender_id.as_deref().unwrap_or_default()
                    )
                })
                .await?;
                sqlx::query($d::sql!(
                    "UPDATE pairing_requests SET status = 'expired' \
                     WHERE tenant_id = ? AND kind = ? AND status = 'pending' AND expires_at <= ? \
                     AND user_id IS NOT DISTINCT FROM ? AND channel IS NOT DISTINCT FROM ? \
                     AND sender_id IS NOT DISTINCT FROM ?"
                ))
                .bind(new.tenant_id.as_str())
                .bind(new.kind.as_str())
                .bind(now)
                .bind(user)
                .bind(new.channel.as_deref())
                .bind(new.sender_id.as_deref())
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                let pending = sqlx::query($d::sql!(
                    "SELECT ",
                    request_cols!(),
                    " FROM pairing_requests WHERE tenant_id = ? AND kind = ? \
                     AND status = 'pending' AND user_id IS NOT DISTINCT FROM ? \
                     AND channel IS NOT DISTINCT FROM ? AND sender_id IS NOT DISTINCT FROM ? \
                     ORDER BY expires_at, id"
                ))
                .bind(new.tenant_id.as_str())
                .bind(new.kind.as_str())
                .bind(user)
                .bind(new.channel.as_deref())
                .bind(new.sender_id.as_deref())
                .fetch_all(&mut *tx)
                .await
                .map_err($d::err)?;
                if pending.len() >= max_pending as usize
                    && let Some(oldest) = pending.first()
                {
                    let oldest = row::pairing_request(oldest)?;
                    tx.commit().await.map_err($d::err)?;
                    return Ok(PairingCreated::TooManyPending { oldest });
                }
                // The browser polls with this id: a secret, all random.
                let id = new_secret_id()?;
                sqlx::query($d::sql!(
                    "INSERT INTO pairing_requests (",
                    request_cols!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, NULL, NULL)"
                ))
                .bind(&id)
                .bind(new.tenant_id.as_str())
                .bind(new.kind.as_str())
                .bind(user)
                .bind(new.channel.as_deref())
                .bind(new.sender_id.as_deref())
                .bind(&new.code_hash)
                .bind(now)
                .bind(new.expires_at)
                .execute(&mut *tx)
                .await
                .map_err($d::err)
                .map_err(error::conflict(|| "pairing code".to_owned()))?;
                tx.commit().await.map_err($d::err)?;
                drop(conn);
                self.get_pairing_request(&new.tenant_id, &id)
                    .await?
                    .map(PairingCreated::Created)
                    .ok_or(StoreError::NotFound)
            }

            async fn get_pairing_request(
                &self,
                tenant: &TenantId,
                id: &str,
            ) -> StoreResult<Option<PairingRequest>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    request_cols!(),
                    " FROM pairing_requests WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::pairing_request)
                .transpose()
            }

            async fn find_pairing_request_by_code(
                &self,
                tenant: &TenantId,
                code_hash: &str,
            ) -> StoreResult<Option<PairingRequest>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    request_cols!(),
                    " FROM pairing_requests WHERE tenant_id = ? AND code_hash = ?"
                ))
                .bind(tenant.as_str())
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::pairing_request)
                .transpose()
            }

            async fn list_pairing_requests(
                &self,
                tenant: &TenantId,
                status: Option<PairingStatus>,
            ) -> StoreResult<Vec<PairingRequest>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    request_cols!(),
                    " FROM pairing_requests WHERE tenant_id = ?1 \
                     AND (?2 IS NULL OR status = ?2) ORDER BY created_at DESC, id LIMIT 500"
                ))
                .bind(tenant.as_str())
                .bind(status.map(PairingStatus::as_str))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::pairing_request)
            }

            async fn decide_pairing_request(
                &self,
                tenant: &TenantId,
                id: &str,
                decision: &PairingDecision,
                by: &str,
                now: UnixMillis,
            ) -> StoreResult<PairingRequest> {
                let (to, user) = rule::pairing_outcome(decision);
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                let done = sqlx::query($d::sql!(
                    "UPDATE pairing_requests SET status = ?, approved_by = ?, approved_at = ?, \
                     user_id = COALESCE(?, user_id) \
                     WHERE tenant_id = ? AND id = ? AND status = 'pending' AND expires_at > ?"
                ))
                .bind(to.as_str())
                .bind(by)
                .bind(now)
                .bind(user)
                .bind(tenant.as_str())
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                let current = sqlx::query($d::sql!(
                    "SELECT ",
                    request_cols!(),
                    " FROM pairing_requests WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::pairing_request)
                .transpose()?
                .ok_or(StoreError::NotFound)?;
                if done.rows_affected() == 0 {
                    tx.commit().await.map_err($d::err)?;
                    return Err(StoreError::Conflict(format!(
                        "pairing request {id} is already {}",
                        current.status_at(now).as_str()
                    )));
                }
                if let (Some(user), Some(channel), Some(sender_id), PairingKind::Channel) = (
                    user,
                    current.channel.as_deref(),
                    current.sender_id.as_deref(),
                    current.kind,
                ) {
                    sqlx::query(map_sender_sql!())
                        .bind(tenant.as_str())
                        .bind(channel)
                        .bind(sender_id)
                        .bind(user)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err($d::err)?;
                }
                tx.commit().await.map_err($d::err)?;
                Ok(current)
            }

            async fn issue_device(
                &self,
                tenant: &TenantId,
                request_id: &str,
                new: &NewDevice,
                now: UnixMillis,
            ) -> StoreResult<Option<Device>> {
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                let done = sqlx::query($d::sql!(
                    "UPDATE pairing_requests SET status = 'issued' \
                     WHERE tenant_id = ? AND id = ? AND kind = 'device' AND status = 'approved' \
                     AND user_id = ?"
                ))
                .bind(tenant.as_str())
                .bind(request_id)
                .bind(new.user_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                if done.rows_affected() == 0 {
                    tx.commit().await.map_err($d::err)?;
                    return Ok(None);
                }
                let id = new_id()?;
                sqlx::query($d::sql!(
                    "INSERT INTO devices (",
                    device_cols!(),
                    ", token_hash) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)"
                ))
                .bind(&id)
                .bind(tenant.as_str())
                .bind(new.user_id.as_str())
                .bind(&new.label)
                .bind(now)
                .bind(&new.token_hash)
                .execute(&mut *tx)
                .await
                .map_err($d::err)
                .map_err(error::conflict(|| "device credential".to_owned()))?;
                tx.commit().await.map_err($d::err)?;
                Ok(Some(Device {
                    id,
                    tenant_id: tenant.clone(),
                    user_id: new.user_id.clone(),
                    label: new.label.clone(),
                    created_at: now,
                    last_seen_at: None,
                    revoked_at: None,
                }))
            }

            async fn find_device_by_token_hash(
                &self,
                token_hash: &str,
            ) -> StoreResult<Option<Device>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    device_cols!(),
                    " FROM devices WHERE token_hash = ?"
                ))
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::device)
                .transpose()
            }

            async fn touch_device(
                &self,
                tenant: &TenantId,
                id: &str,
                now: UnixMillis,
            ) -> StoreResult<()> {
                sqlx::query($d::sql!(
                    "UPDATE devices SET last_seen_at = ? WHERE tenant_id = ? AND id = ?"
                ))
                .bind(now)
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(())
            }

            async fn list_devices(&self, tenant: &TenantId) -> StoreResult<Vec<Device>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    device_cols!(),
                    " FROM devices WHERE tenant_id = ? ORDER BY created_at DESC, id LIMIT 1000"
                ))
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::device)
            }

            async fn revoke_device(
                &self,
                tenant: &TenantId,
                id: &str,
                now: UnixMillis,
            ) -> StoreResult<Device> {
                let done = sqlx::query($d::sql!(
                    "UPDATE devices SET revoked_at = ? \
                     WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL"
                ))
                .bind(now)
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                let current = sqlx::query($d::sql!(
                    "SELECT ",
                    device_cols!(),
                    " FROM devices WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::device)
                .transpose()?
                .ok_or(StoreError::NotFound)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict(format!(
                        "device {id} is already revoked"
                    )));
                }
                Ok(current)
            }

            async fn get_channel_sender(
                &self,
                tenant: &TenantId,
                channel: &str,
                sender_id: &str,
            ) -> StoreResult<Option<ChannelSender>> {
                sqlx::query($d::sql!(
                    "SELECT tenant_id, channel, sender_id, user_id, created_at \
                     FROM channel_senders WHERE tenant_id = ? AND channel = ? AND sender_id = ?"
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .bind(sender_id)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::channel_sender)
                .transpose()
            }

            async fn map_channel_sender(
                &self,
                tenant: &TenantId,
                channel: &str,
                sender_id: &str,
                user: &UserId,
                now: UnixMillis,
            ) -> StoreResult<ChannelSender> {
                if let Some(done) = self
                    .write_grouped(|| $crate::port::grouped::Small::Sender {
                        tenant: tenant.as_str().to_owned(),
                        channel: channel.to_owned(),
                        sender_id: sender_id.to_owned(),
                        user: user.as_str().to_owned(),
                        now,
                    })
                    .await?
                {
                    done.sender()?;
                } else {
                    sqlx::query(map_sender_sql!())
                        .bind(tenant.as_str())
                        .bind(channel)
                        .bind(sender_id)
                        .bind(user.as_str())
                        .bind(now)
                        .execute(&mut *self.write_conn().await?)
                        .await
                        .map_err($d::err)?;
                }
                self.get_channel_sender(tenant, channel, sender_id)
                    .await?
                    .ok_or(StoreError::NotFound)
            }

            async fn record_pairing_failure(
                &self,
                tenant: &TenantId,
                actor: &str,
                now: UnixMillis,
            ) -> StoreResult<()> {
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                sqlx::query($d::sql!(
                    "DELETE FROM pairing_failures WHERE tenant_id = ? AND at < ?"
                ))
                .bind(tenant.as_str())
                .bind(now.saturating_sub(rule::PAIRING_FAILURES_KEPT_MS))
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                sqlx::query($d::sql!(
                    "INSERT INTO pairing_failures (id, tenant_id, actor, at) VALUES (?, ?, ?, ?)"
                ))
                .bind(new_id()?)
                .bind(tenant.as_str())
                .bind(actor)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                tx.commit().await.map_err($d::err)?;
                Ok(())
            }

            async fn pairing_failures(
                &self,
                tenant: &TenantId,
                since: UnixMillis,
            ) -> StoreResult<Vec<PairingFailure>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT actor, at FROM pairing_failures WHERE tenant_id = ? AND at >= ? \
                     ORDER BY at, id LIMIT 10000"
                ))
                .bind(tenant.as_str())
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                rows.iter()
                    .map(|r| {
                        Ok(PairingFailure {
                            actor: r.text("actor")?,
                            at: r.int("at")?,
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use ports;
