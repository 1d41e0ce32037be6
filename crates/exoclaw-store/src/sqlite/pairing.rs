//! The pairing port of [`SqliteStore`]: requests created under a write lock
//! (`BEGIN IMMEDIATE`) so the pending cap holds under races, decisions and
//! credential issue taken once (conditional UPDATEs), devices looked up by
//! credential hash, channel senders mapped first-wins.

use super::SqliteStore;
use crate::{error, new_id};
use async_trait::async_trait;
use exoclaw_core::model::{
    ChannelSender, Device, NewDevice, NewPairingRequest, PairingCreated, PairingDecision,
    PairingFailure, PairingKind, PairingRequest, PairingStatus,
};
use exoclaw_core::store::{PairingStore, StoreError, StoreResult};
use exoclaw_core::{TenantId, UnixMillis, UserId};
use sqlx::Connection as _;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

// The column lists as macros so that `concat!` builds static SQL.
macro_rules! request_cols {
    () => {
        "id, tenant_id, kind, user_id, channel, sender_id, code_hash, status, created_at, \
         expires_at, approved_by, approved_at"
    };
}
macro_rules! device_cols {
    () => {
        "id, tenant_id, user_id, label, created_at, last_seen_at, revoked_at"
    };
}

/// How long failed attempts are kept (the lockout window is much shorter).
const FAILURES_KEPT_MS: i64 = 24 * 3600 * 1000;

fn request(r: &SqliteRow) -> StoreResult<PairingRequest> {
    let kind: String = r.try_get("kind").map_err(error::sqlite)?;
    let status: String = r.try_get("status").map_err(error::sqlite)?;
    Ok(PairingRequest {
        id: r.try_get("id").map_err(error::sqlite)?,
        tenant_id: TenantId::new(r.try_get::<String, _>("tenant_id").map_err(error::sqlite)?),
        kind: PairingKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown pairing kind {kind:?}")))?,
        user_id: r
            .try_get::<Option<String>, _>("user_id")
            .map_err(error::sqlite)?
            .map(UserId::new),
        channel: r.try_get("channel").map_err(error::sqlite)?,
        sender_id: r.try_get("sender_id").map_err(error::sqlite)?,
        code_hash: r.try_get("code_hash").map_err(error::sqlite)?,
        status: PairingStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown pairing status {status:?}")))?,
        created_at: r.try_get("created_at").map_err(error::sqlite)?,
        expires_at: r.try_get("expires_at").map_err(error::sqlite)?,
        approved_by: r.try_get("approved_by").map_err(error::sqlite)?,
        approved_at: r.try_get("approved_at").map_err(error::sqlite)?,
    })
}

fn device(r: &SqliteRow) -> StoreResult<Device> {
    Ok(Device {
        id: r.try_get("id").map_err(error::sqlite)?,
        tenant_id: TenantId::new(r.try_get::<String, _>("tenant_id").map_err(error::sqlite)?),
        user_id: UserId::new(r.try_get::<String, _>("user_id").map_err(error::sqlite)?),
        label: r.try_get("label").map_err(error::sqlite)?,
        created_at: r.try_get("created_at").map_err(error::sqlite)?,
        last_seen_at: r.try_get("last_seen_at").map_err(error::sqlite)?,
        revoked_at: r.try_get("revoked_at").map_err(error::sqlite)?,
    })
}

fn sender(r: &SqliteRow) -> StoreResult<ChannelSender> {
    Ok(ChannelSender {
        tenant_id: TenantId::new(r.try_get::<String, _>("tenant_id").map_err(error::sqlite)?),
        channel: r.try_get("channel").map_err(error::sqlite)?,
        sender_id: r.try_get("sender_id").map_err(error::sqlite)?,
        user_id: UserId::new(r.try_get::<String, _>("user_id").map_err(error::sqlite)?),
        created_at: r.try_get("created_at").map_err(error::sqlite)?,
    })
}

/// The requester's identity columns must match the kind.
pub(crate) fn check_new_request(new: &NewPairingRequest) -> StoreResult<()> {
    let ok = match new.kind {
        PairingKind::Device => {
            new.user_id.is_some() && new.channel.is_none() && new.sender_id.is_none()
        }
        PairingKind::Channel => {
            new.user_id.is_none() && new.channel.is_some() && new.sender_id.is_some()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "a device request names a user, a channel request a channel and sender".into(),
        ))
    }
}

#[async_trait]
impl PairingStore for SqliteStore {
    async fn create_pairing_request(
        &self,
        new: &NewPairingRequest,
        max_pending: u32,
        now: UnixMillis,
    ) -> StoreResult<PairingCreated> {
        check_new_request(new)?;
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
        let user = new.user_id.as_ref().map(UserId::as_str);
        // The requester: (user) for a device, (channel, sender) for a channel.
        sqlx::query(
            "UPDATE pairing_requests SET status = 'expired' \
             WHERE tenant_id = ? AND kind = ? AND status = 'pending' AND expires_at <= ? \
             AND user_id IS ? AND channel IS ? AND sender_id IS ?",
        )
        .bind(new.tenant_id.as_str())
        .bind(new.kind.as_str())
        .bind(now)
        .bind(user)
        .bind(new.channel.as_deref())
        .bind(new.sender_id.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(error::sqlite)?;
        let pending = sqlx::query(concat!(
            "SELECT ",
            request_cols!(),
            " FROM pairing_requests WHERE tenant_id = ? AND kind = ? AND status = 'pending' \
             AND user_id IS ? AND channel IS ? AND sender_id IS ? ORDER BY expires_at, id"
        ))
        .bind(new.tenant_id.as_str())
        .bind(new.kind.as_str())
        .bind(user)
        .bind(new.channel.as_deref())
        .bind(new.sender_id.as_deref())
        .fetch_all(&mut *tx)
        .await
        .map_err(error::sqlite)?;
        if pending.len() >= max_pending as usize
            && let Some(oldest) = pending.first()
        {
            let oldest = request(oldest)?;
            tx.commit().await.map_err(error::sqlite)?;
            return Ok(PairingCreated::TooManyPending { oldest });
        }
        let id = new_id()?;
        sqlx::query(concat!(
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
        .map_err(error::sqlite)
        .map_err(error::conflict(|| "pairing code".to_owned()))?;
        tx.commit().await.map_err(error::sqlite)?;
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
        sqlx::query(concat!(
            "SELECT ",
            request_cols!(),
            " FROM pairing_requests WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?
        .as_ref()
        .map(request)
        .transpose()
    }

    async fn find_pairing_request_by_code(
        &self,
        tenant: &TenantId,
        code_hash: &str,
    ) -> StoreResult<Option<PairingRequest>> {
        sqlx::query(concat!(
            "SELECT ",
            request_cols!(),
            " FROM pairing_requests WHERE tenant_id = ? AND code_hash = ?"
        ))
        .bind(tenant.as_str())
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?
        .as_ref()
        .map(request)
        .transpose()
    }

    async fn list_pairing_requests(
        &self,
        tenant: &TenantId,
        status: Option<PairingStatus>,
    ) -> StoreResult<Vec<PairingRequest>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            request_cols!(),
            " FROM pairing_requests WHERE tenant_id = ? AND (? IS NULL OR status = ?) \
             ORDER BY created_at DESC, id LIMIT 500"
        ))
        .bind(tenant.as_str())
        .bind(status.map(PairingStatus::as_str))
        .bind(status.map(PairingStatus::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        rows.iter().map(request).collect()
    }

    async fn decide_pairing_request(
        &self,
        tenant: &TenantId,
        id: &str,
        decision: &PairingDecision,
        by: &str,
        now: UnixMillis,
    ) -> StoreResult<PairingRequest> {
        let (to, user) = match decision {
            PairingDecision::Approve { user } => (PairingStatus::Approved, Some(user.as_str())),
            PairingDecision::Deny => (PairingStatus::Denied, None),
        };
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
        let done = sqlx::query(
            "UPDATE pairing_requests SET status = ?, approved_by = ?, approved_at = ?, \
             user_id = COALESCE(?, user_id) \
             WHERE tenant_id = ? AND id = ? AND status = 'pending' AND expires_at > ?",
        )
        .bind(to.as_str())
        .bind(by)
        .bind(now)
        .bind(user)
        .bind(tenant.as_str())
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(error::sqlite)?;
        let current = sqlx::query(concat!(
            "SELECT ",
            request_cols!(),
            " FROM pairing_requests WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(error::sqlite)?
        .as_ref()
        .map(request)
        .transpose()?
        .ok_or(StoreError::NotFound)?;
        if done.rows_affected() == 0 {
            tx.commit().await.map_err(error::sqlite)?;
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
            sqlx::query(
                "INSERT INTO channel_senders (tenant_id, channel, sender_id, user_id, created_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, channel, sender_id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(channel)
            .bind(sender_id)
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(error::sqlite)?;
        }
        tx.commit().await.map_err(error::sqlite)?;
        Ok(current)
    }

    async fn issue_device(
        &self,
        tenant: &TenantId,
        request_id: &str,
        new: &NewDevice,
        now: UnixMillis,
    ) -> StoreResult<Option<Device>> {
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
        let done = sqlx::query(
            "UPDATE pairing_requests SET status = 'issued' \
             WHERE tenant_id = ? AND id = ? AND kind = 'device' AND status = 'approved' \
             AND user_id = ?",
        )
        .bind(tenant.as_str())
        .bind(request_id)
        .bind(new.user_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(error::sqlite)?;
        if done.rows_affected() == 0 {
            tx.commit().await.map_err(error::sqlite)?;
            return Ok(None);
        }
        let id = new_id()?;
        sqlx::query(concat!(
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
        .map_err(error::sqlite)
        .map_err(error::conflict(|| "device credential".to_owned()))?;
        tx.commit().await.map_err(error::sqlite)?;
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

    async fn find_device_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Device>> {
        sqlx::query(concat!(
            "SELECT ",
            device_cols!(),
            " FROM devices WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?
        .as_ref()
        .map(device)
        .transpose()
    }

    async fn touch_device(&self, tenant: &TenantId, id: &str, now: UnixMillis) -> StoreResult<()> {
        sqlx::query("UPDATE devices SET last_seen_at = ? WHERE tenant_id = ? AND id = ?")
            .bind(now)
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *self.writer.acquire().await?)
            .await
            .map_err(error::sqlite)?;
        Ok(())
    }

    async fn list_devices(&self, tenant: &TenantId) -> StoreResult<Vec<Device>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            device_cols!(),
            " FROM devices WHERE tenant_id = ? ORDER BY created_at DESC, id LIMIT 1000"
        ))
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        rows.iter().map(device).collect()
    }

    async fn revoke_device(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixMillis,
    ) -> StoreResult<Device> {
        let done = sqlx::query(
            "UPDATE devices SET revoked_at = ? \
             WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *self.writer.acquire().await?)
        .await
        .map_err(error::sqlite)?;
        let current = sqlx::query(concat!(
            "SELECT ",
            device_cols!(),
            " FROM devices WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?
        .as_ref()
        .map(device)
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
        sqlx::query(
            "SELECT tenant_id, channel, sender_id, user_id, created_at FROM channel_senders \
             WHERE tenant_id = ? AND channel = ? AND sender_id = ?",
        )
        .bind(tenant.as_str())
        .bind(channel)
        .bind(sender_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?
        .as_ref()
        .map(sender)
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
        sqlx::query(
            "INSERT INTO channel_senders (tenant_id, channel, sender_id, user_id, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, channel, sender_id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(channel)
        .bind(sender_id)
        .bind(user.as_str())
        .bind(now)
        .execute(&mut *self.writer.acquire().await?)
        .await
        .map_err(error::sqlite)?;
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
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
        sqlx::query("DELETE FROM pairing_failures WHERE tenant_id = ? AND at < ?")
            .bind(tenant.as_str())
            .bind(now.saturating_sub(FAILURES_KEPT_MS))
            .execute(&mut *tx)
            .await
            .map_err(error::sqlite)?;
        sqlx::query("INSERT INTO pairing_failures (id, tenant_id, actor, at) VALUES (?, ?, ?, ?)")
            .bind(new_id()?)
            .bind(tenant.as_str())
            .bind(actor)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(error::sqlite)?;
        tx.commit().await.map_err(error::sqlite)?;
        Ok(())
    }

    async fn pairing_failures(
        &self,
        tenant: &TenantId,
        since: UnixMillis,
    ) -> StoreResult<Vec<PairingFailure>> {
        let rows = sqlx::query(
            "SELECT actor, at FROM pairing_failures WHERE tenant_id = ? AND at >= ? \
             ORDER BY at, id LIMIT 10000",
        )
        .bind(tenant.as_str())
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        rows.iter()
            .map(|r| {
                Ok(PairingFailure {
                    actor: r.try_get("actor").map_err(error::sqlite)?,
                    at: r.try_get("at").map_err(error::sqlite)?,
                })
            })
            .collect()
    }
}
