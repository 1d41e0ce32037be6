//! The data ports of [`SqliteStore`]: tenants, users, agents, sessions and
//! messages, secrets, audit. Every statement filters on `tenant_id`.

use super::SqliteStore;
use crate::error::{self, conflict};
use crate::{DEFAULT_AUDIT_LIMIT, audit, json_text, new_id, now_millis, row};
use async_trait::async_trait;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::model::{
    Agent, AgentUpdate, AuditEvent, AuditFilter, AuditVerify, Message, NewAgent, NewAuditEvent,
    NewMessage, NewUser, SecretMeta, SecretRecord, Session, SessionFilter, SessionScope, Tenant,
    User, VaultCheck,
};
use exoclaw_core::store::{
    AgentStore, AuditStore, SecretStore, SessionStore, StoreError, StoreResult, TenantStore,
    UserStore,
};
use exoclaw_core::{AgentId, SessionId, TenantId, UserId};
use sqlx::Connection as _;
use sqlx::Row as _;
use sqlx::sqlite::SqliteConnection;

// Column lists as macros so that `concat!` can build static SQL from them.
macro_rules! user_cols {
    () => {
        "id, tenant_id, name, role, disabled, created_at"
    };
}
macro_rules! agent_cols {
    () => {
        "tenant_id, id, display_name, agent_type, config, created_at, updated_at"
    };
}
macro_rules! session_cols {
    () => {
        "id, tenant_id, agent_id, user_id, channel, peer, title, created_at, updated_at"
    };
}
macro_rules! secret_cols {
    () => {
        "tenant_id, owner, name, key_id, nonce, ciphertext, created_at, updated_at"
    };
}
macro_rules! audit_cols {
    () => {
        "seq, tenant_seq, id, tenant_id, at, actor, action, resource, decision, reason, \
         request_id, agent_id, session_id, detail, prev_hash, hash"
    };
}

fn invalid_slug(kind: &str, id: &str) -> StoreError {
    StoreError::Invalid(format!(
        "{kind} id {id:?} must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a \
         letter or digit"
    ))
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(&self, id: &TenantId, name: &str) -> StoreResult<Tenant> {
        if !is_valid_slug(id.as_str()) {
            return Err(invalid_slug("tenant", id.as_str()));
        }
        let tenant = Tenant {
            id: id.clone(),
            name: name.to_owned(),
            created_at: now_millis(),
        };
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)")
            .bind(tenant.id.as_str())
            .bind(&tenant.name)
            .bind(tenant.created_at)
            .execute(&mut *self.writer.acquire().await?)
            .await
            .map_err(error::sqlite)
            .map_err(conflict(|| format!("tenant {id}")))?;
        Ok(tenant)
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        let r = sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(error::sqlite)?;
        r.as_ref().map(row::tenant).transpose()
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(error::sqlite)?;
        row::all(&rows, row::tenant)
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, tenant: &TenantId, user: &NewUser) -> StoreResult<User> {
        if user.name.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a user name must not be empty".to_owned(),
            ));
        }
        let created = User {
            id: new_id()?.into(),
            tenant_id: tenant.clone(),
            name: user.name.clone(),
            role: user.role,
            disabled: false,
            created_at: now_millis(),
        };
        sqlx::query(
            "INSERT INTO users (id, tenant_id, name, role, disabled, created_at) \
             VALUES (?, ?, ?, ?, FALSE, ?)",
        )
        .bind(created.id.as_str())
        .bind(tenant.as_str())
        .bind(&created.name)
        .bind(created.role.as_str())
        .bind(created.created_at)
        .execute(&mut *self.writer.acquire().await?)
        .await
        .map_err(error::sqlite)
        .map_err(conflict(|| {
            format!("user {:?} in tenant {tenant}", user.name)
        }))?;
        Ok(created)
    }

    async fn get_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<Option<User>> {
        let r = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?;
        r.as_ref().map(row::user).transpose()
    }

    async fn find_user_by_name(&self, tenant: &TenantId, name: &str) -> StoreResult<Option<User>> {
        let r = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE tenant_id = ? AND name = ?"
        ))
        .bind(tenant.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?;
        r.as_ref().map(row::user).transpose()
    }

    async fn list_users(&self, tenant: &TenantId) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE tenant_id = ? ORDER BY name"
        ))
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        row::all(&rows, row::user)
    }

    async fn set_user_disabled(
        &self,
        tenant: &TenantId,
        id: &UserId,
        disabled: bool,
    ) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET disabled = ? WHERE tenant_id = ? AND id = ?")
            .bind(disabled)
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *self.writer.acquire().await?)
            .await
            .map_err(error::sqlite)?;
        found(done.rows_affected())
    }

    async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<()> {
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
        let done = sqlx::query("DELETE FROM users WHERE tenant_id = ? AND id = ?")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(error::sqlite)?;
        found(done.rows_affected())?;
        // sessions.user_id is not a foreign key (see the migration): delete
        // the user's sessions (their messages cascade) and user-owned secrets.
        sqlx::query("DELETE FROM sessions WHERE tenant_id = ? AND user_id = ?")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(error::sqlite)?;
        sqlx::query("DELETE FROM secrets WHERE tenant_id = ? AND owner = ?")
            .bind(tenant.as_str())
            .bind(format!("user:{id}"))
            .execute(&mut *tx)
            .await
            .map_err(error::sqlite)?;
        tx.commit().await.map_err(error::sqlite)
    }
}

fn found(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl AgentStore for SqliteStore {
    async fn create_agent(&self, tenant: &TenantId, agent: &NewAgent) -> StoreResult<Agent> {
        if !is_valid_slug(agent.id.as_str()) {
            return Err(invalid_slug("agent", agent.id.as_str()));
        }
        let now = now_millis();
        let created = Agent {
            id: agent.id.clone(),
            tenant_id: tenant.clone(),
            display_name: agent.display_name.clone(),
            agent_type: agent.agent_type,
            config: agent.config.clone(),
            created_at: now,
            updated_at: now,
        };
        sqlx::query(concat!(
            "INSERT INTO agents (",
            agent_cols!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(tenant.as_str())
        .bind(agent.id.as_str())
        .bind(&agent.display_name)
        .bind(agent.agent_type.as_str())
        .bind(json_text(&agent.config)?)
        .bind(now)
        .bind(now)
        .execute(&mut *self.writer.acquire().await?)
        .await
        .map_err(error::sqlite)
        .map_err(conflict(|| {
            format!("agent {} in tenant {tenant}", agent.id)
        }))?;
        Ok(created)
    }

    async fn get_agent(&self, tenant: &TenantId, id: &AgentId) -> StoreResult<Option<Agent>> {
        let r = sqlx::query(concat!(
            "SELECT ",
            agent_cols!(),
            " FROM agents WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?;
        r.as_ref().map(row::agent).transpose()
    }

    async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            agent_cols!(),
            " FROM agents WHERE tenant_id = ? ORDER BY id"
        ))
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        row::all(&rows, row::agent)
    }

    async fn update_agent(
        &self,
        tenant: &TenantId,
        id: &AgentId,
        update: &AgentUpdate,
    ) -> StoreResult<Agent> {
        let config = update.config.as_ref().map(json_text).transpose()?;
        let r = sqlx::query(concat!(
            "UPDATE agents SET display_name = COALESCE(?1, display_name), \
             agent_type = COALESCE(?2, agent_type), config = COALESCE(?3, config), \
             updated_at = ?4 WHERE tenant_id = ?5 AND id = ?6 RETURNING ",
            agent_cols!()
        ))
        .bind(update.display_name.as_deref())
        .bind(update.agent_type.map(|t| t.as_str()))
        .bind(config)
        .bind(now_millis())
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *self.writer.acquire().await?)
        .await
        .map_err(error::sqlite)?;
        r.as_ref()
            .map(row::agent)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn delete_agent(&self, tenant: &TenantId, id: &AgentId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM agents WHERE tenant_id = ? AND id = ?")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *self.writer.acquire().await?)
            .await
            .map_err(error::sqlite)?;
        found(done.rows_affected())
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn get_or_create_session(
        &self,
        tenant: &TenantId,
        scope: &SessionScope,
    ) -> StoreResult<Session> {
        let now = now_millis();
        // A unique index on the scope makes racing creators agree: the losers'
        // inserts do nothing, and everyone reads the winner's row. The winner
        // gets it back from the insert (one statement for a new session).
        let inserted = sqlx::query(concat!(
            "INSERT INTO sessions (id, tenant_id, agent_id, user_id, channel, peer, title, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?) \
             ON CONFLICT (tenant_id, agent_id, user_id, channel, peer) DO NOTHING RETURNING ",
            session_cols!()
        ))
        .bind(new_id()?)
        .bind(tenant.as_str())
        .bind(scope.agent_id.as_str())
        .bind(scope.user_id.as_str())
        .bind(&scope.channel)
        .bind(&scope.peer)
        .bind(now)
        .bind(now)
        .fetch_optional(&mut *self.writer.acquire().await?)
        .await
        .map_err(error::sqlite)?;
        if let Some(r) = inserted {
            return row::session(&r);
        }
        let r = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE tenant_id = ? AND agent_id = ? AND user_id = ? \
             AND channel = ? AND peer = ?"
        ))
        .bind(tenant.as_str())
        .bind(scope.agent_id.as_str())
        .bind(scope.user_id.as_str())
        .bind(&scope.channel)
        .bind(&scope.peer)
        .fetch_one(&self.pool)
        .await
        .map_err(error::sqlite)?;
        row::session(&r)
    }

    async fn get_session(&self, tenant: &TenantId, id: &SessionId) -> StoreResult<Option<Session>> {
        let r = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?;
        r.as_ref().map(row::session).transpose()
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        filter: &SessionFilter,
    ) -> StoreResult<Vec<Session>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE tenant_id = ?1 AND (?2 IS NULL OR agent_id = ?2) \
             AND (?3 IS NULL OR user_id = ?3) ORDER BY updated_at DESC, id DESC"
        ))
        .bind(tenant.as_str())
        .bind(filter.agent_id.as_ref().map(AgentId::as_str))
        .bind(filter.user_id.as_ref().map(UserId::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        row::all(&rows, row::session)
    }

    async fn delete_session(&self, tenant: &TenantId, id: &SessionId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM sessions WHERE tenant_id = ? AND id = ?")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *self.writer.acquire().await?)
            .await
            .map_err(error::sqlite)?;
        found(done.rows_affected())
    }

    async fn append_message(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        message: &NewMessage,
    ) -> StoreResult<Message> {
        let now = now_millis();
        let id = new_id()?;
        let content = json_text(&message.content)?;
        let meta = json_text(&message.meta)?;
        // Batched with other turns' appends (see `appends`): in order,
        // max(seq) + 1 of the session under the write lock.
        let seq = self
            .appender
            .append(super::appends::Append {
                id: id.clone(),
                role: message.role.clone(),
                content,
                meta,
                now,
                tenant: tenant.as_str().to_owned(),
                session: session.as_str().to_owned(),
            })
            .await?;
        Ok(Message {
            id: id.into(),
            tenant_id: tenant.clone(),
            session_id: session.clone(),
            seq,
            role: message.role.clone(),
            content: message.content.clone(),
            meta: message.meta.clone(),
            created_at: now,
        })
    }

    async fn list_messages(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        // LIMIT -1 is "no limit" in SQLite. A LIMIT that is a bare parameter
        // makes SQLite re-compile the statement at every new binding (it
        // plans for the bound value); behind CAST it is an expression, and
        // the cached statement is reused (the same in every LIMIT here).
        // One statement: the session's row
        // joined with its messages, so a missing session (no row at all)
        // and a session without messages (one row of NULLs) differ.
        let limit = if limit == 0 { -1 } else { i64::from(limit) };
        let rows = sqlx::query(
            "SELECT m.id, m.tenant_id, m.session_id, m.seq, m.role, m.content, m.meta, \
             m.created_at FROM sessions s LEFT JOIN messages m \
             ON m.tenant_id = s.tenant_id AND m.session_id = s.id AND m.seq > ?3 \
             WHERE s.tenant_id = ?1 AND s.id = ?2 ORDER BY m.seq LIMIT CAST(?4 AS INTEGER)",
        )
        .bind(tenant.as_str())
        .bind(session.as_str())
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        let messages: Vec<_> = rows
            .into_iter()
            .filter(|r| matches!(r.try_get::<Option<String>, _>("id"), Ok(Some(_))))
            .collect();
        row::all(&messages, row::message)
    }
}

const UPSERT_SECRET: &str = "INSERT INTO secrets (tenant_id, owner, name, key_id, nonce, ciphertext, \
     created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (tenant_id, owner, name) DO UPDATE SET key_id = excluded.key_id, \
     nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at";

const UPSERT_CHECK: &str = "INSERT INTO vault_check (id, key_id, nonce, ciphertext) \
     VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id, \
     nonce = excluded.nonce, ciphertext = excluded.ciphertext";

async fn upsert_secret(conn: &mut SqliteConnection, r: &SecretRecord) -> StoreResult<()> {
    sqlx::query(UPSERT_SECRET)
        .bind(r.tenant_id.as_str())
        .bind(&r.owner)
        .bind(&r.name)
        .bind(&r.key_id)
        .bind(&r.nonce)
        .bind(&r.ciphertext)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(conn)
        .await
        .map_err(error::sqlite)?;
    Ok(())
}

async fn upsert_check(conn: &mut SqliteConnection, check: &VaultCheck) -> StoreResult<()> {
    sqlx::query(UPSERT_CHECK)
        .bind(&check.key_id)
        .bind(&check.nonce)
        .bind(&check.ciphertext)
        .execute(conn)
        .await
        .map_err(error::sqlite)?;
    Ok(())
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn put_secret(&self, record: &SecretRecord) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        upsert_secret(&mut conn, record).await
    }

    async fn get_secret(
        &self,
        tenant: &TenantId,
        owner: &str,
        name: &str,
    ) -> StoreResult<Option<SecretRecord>> {
        let r = sqlx::query(concat!(
            "SELECT ",
            secret_cols!(),
            " FROM secrets WHERE tenant_id = ? AND owner = ? AND name = ?"
        ))
        .bind(tenant.as_str())
        .bind(owner)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?;
        r.as_ref().map(row::secret_record).transpose()
    }

    async fn list_secrets(
        &self,
        tenant: &TenantId,
        owner: Option<&str>,
    ) -> StoreResult<Vec<SecretMeta>> {
        let rows = sqlx::query(
            "SELECT tenant_id, owner, name, key_id, created_at, updated_at FROM secrets \
             WHERE tenant_id = ?1 AND (?2 IS NULL OR owner = ?2) ORDER BY owner, name",
        )
        .bind(tenant.as_str())
        .bind(owner)
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        row::all(&rows, row::secret_meta)
    }

    async fn delete_secret(&self, tenant: &TenantId, owner: &str, name: &str) -> StoreResult<()> {
        let done =
            sqlx::query("DELETE FROM secrets WHERE tenant_id = ? AND owner = ? AND name = ?")
                .bind(tenant.as_str())
                .bind(owner)
                .bind(name)
                .execute(&mut *self.writer.acquire().await?)
                .await
                .map_err(error::sqlite)?;
        found(done.rows_affected())
    }

    async fn all_secrets(&self) -> StoreResult<Vec<SecretRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            secret_cols!(),
            " FROM secrets ORDER BY tenant_id, owner, name"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        row::all(&rows, row::secret_record)
    }

    async fn replace_secrets(
        &self,
        records: &[SecretRecord],
        check: &VaultCheck,
    ) -> StoreResult<()> {
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
        for record in records {
            upsert_secret(&mut tx, record).await?;
        }
        upsert_check(&mut tx, check).await?;
        tx.commit().await.map_err(error::sqlite)
    }

    async fn vault_check(&self) -> StoreResult<Option<VaultCheck>> {
        let r = sqlx::query("SELECT key_id, nonce, ciphertext FROM vault_check WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(error::sqlite)?;
        r.as_ref().map(row::vault_check).transpose()
    }

    async fn set_vault_check(&self, check: &VaultCheck) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        upsert_check(&mut conn, check).await
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<AuditEvent> {
        let id = new_id()?;
        let detail = json_text(&event.detail)?;
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
        // BEGIN IMMEDIATE takes the write lock first: appends are serialised
        // and the head read below cannot race.
        sqlx::query(
            "INSERT INTO audit_heads (tenant_id, chain_start, last_seq, last_hash) \
             VALUES (?1, 1, 0, ?2) ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(event.tenant_id.as_str())
        .bind(hex::encode(audit::GENESIS))
        .execute(&mut *tx)
        .await
        .map_err(error::sqlite)?;
        let (last_seq, last_hash): (i64, String) =
            sqlx::query_as("SELECT last_seq, last_hash FROM audit_heads WHERE tenant_id = ?1")
                .bind(event.tenant_id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(error::sqlite)?;
        let mut e = audit::chained(event, id, now_millis(), last_seq + 1, &last_hash)?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO audit_events (id, tenant_id, tenant_seq, at, actor, action, resource, \
             decision, reason, request_id, agent_id, session_id, detail, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
             RETURNING seq",
        )
        .bind(&e.id)
        .bind(e.tenant_id.as_str())
        .bind(e.tenant_seq)
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.resource)
        .bind(&e.decision)
        .bind(&e.reason)
        .bind(e.request_id.as_deref())
        .bind(e.agent_id.as_ref().map(AgentId::as_str))
        .bind(e.session_id.as_ref().map(SessionId::as_str))
        .bind(&detail)
        .bind(e.prev_hash.as_deref())
        .bind(e.hash.as_deref())
        .fetch_one(&mut *tx)
        .await
        .map_err(error::sqlite)?;
        sqlx::query("UPDATE audit_heads SET last_seq = ?1, last_hash = ?2 WHERE tenant_id = ?3")
            .bind(e.tenant_seq)
            .bind(e.hash.as_deref())
            .bind(e.tenant_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(error::sqlite)?;
        tx.commit().await.map_err(error::sqlite)?;
        e.seq = seq;
        Ok(e)
    }

    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        let limit = if filter.limit == 0 {
            DEFAULT_AUDIT_LIMIT
        } else {
            filter.limit
        };
        // substr() rather than LIKE: LIKE is case-insensitive and treats % and _
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_cols!(),
            " FROM audit_events WHERE (?1 IS NULL OR tenant_id = ?1) \
             AND (?2 IS NULL OR substr(action, 1, length(?2)) = ?2) \
             AND (?3 IS NULL OR seq < ?3) \
             AND (?4 IS NULL OR actor = ?4) \
             AND (?5 IS NULL OR decision = ?5) \
             AND (?6 IS NULL OR at >= ?6) \
             AND (?7 IS NULL OR at < ?7) \
             ORDER BY seq DESC LIMIT CAST(?8 AS INTEGER)"
        ))
        .bind(filter.tenant_id.as_ref().map(TenantId::as_str))
        .bind(filter.action_prefix.as_deref())
        .bind(filter.before_seq)
        .bind(filter.actor.as_deref())
        .bind(filter.decision.as_deref())
        .bind(filter.since)
        .bind(filter.until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        row::all(&rows, row::audit_event)
    }

    async fn verify_audit(&self, tenant: Option<&TenantId>) -> StoreResult<AuditVerify> {
        // One read snapshot: appends made meanwhile are not half-seen.
        let mut tx = self.pool.begin().await.map_err(error::sqlite)?;
        let tenants: Vec<String> = match tenant {
            Some(t) => vec![t.as_str().to_owned()],
            None => sqlx::query_scalar(
                "SELECT tenant_id FROM audit_heads UNION SELECT tenant_id FROM audit_events \
                 ORDER BY 1",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(error::sqlite)?,
        };
        let mut out = AuditVerify::default();
        for t in tenants {
            let head: Option<(i64, i64, String)> = sqlx::query_as(
                "SELECT chain_start, last_seq, last_hash FROM audit_heads WHERE tenant_id = ?1",
            )
            .bind(&t)
            .fetch_optional(&mut *tx)
            .await
            .map_err(error::sqlite)?;
            let head = head.map(|(chain_start, last_seq, last_hash)| audit::Head {
                chain_start,
                last_seq,
                last_hash,
            });
            let mut verifier = audit::Verifier::new(TenantId::new(t.clone()), head);
            let mut after = i64::MIN;
            while !verifier.is_broken() {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    audit_cols!(),
                    " FROM audit_events WHERE tenant_id = ?1 AND tenant_seq > ?2 \
                     ORDER BY tenant_seq, seq LIMIT CAST(?3 AS INTEGER)"
                ))
                .bind(&t)
                .bind(after)
                .bind(audit::VERIFY_PAGE)
                .fetch_all(&mut *tx)
                .await
                .map_err(error::sqlite)?;
                for r in &rows {
                    let e = row::audit_event(r)?;
                    after = e.tenant_seq;
                    verifier.push(&e);
                }
                if i64::try_from(rows.len()).unwrap_or(i64::MAX) < audit::VERIFY_PAGE {
                    break;
                }
            }
            out.chains.push(verifier.finish());
        }
        tx.rollback().await.map_err(error::sqlite)?;
        Ok(out)
    }
}
