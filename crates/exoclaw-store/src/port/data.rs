//! Tenants, users (and what deleting one takes along), agents, sessions and
//! their messages, written once for both backends (see [`crate::port`]).
//! Every statement filters on `tenant_id`.

use exoclaw_core::{SessionId, TenantId, UnixMillis};

/// A message to insert; the backend's `insert_message` assigns `seq`
/// (`max(seq) + 1` of the session) and touches the session's `updated_at`.
pub(crate) struct MessageRow<'a> {
    pub(crate) id: &'a str,
    pub(crate) tenant: &'a TenantId,
    pub(crate) session: &'a SessionId,
    pub(crate) role: &'a str,
    /// JSON text.
    pub(crate) content: String,
    /// JSON text.
    pub(crate) meta: String,
    pub(crate) now: UnixMillis,
}

/// A session to insert; the backend's `insert_session` returns its row, or
/// `None` when a session of the same scope exists (then it inserts nothing).
pub(crate) struct SessionRow {
    pub(crate) id: String,
    pub(crate) tenant: String,
    pub(crate) agent: String,
    pub(crate) user: String,
    pub(crate) channel: String,
    pub(crate) peer: String,
    pub(crate) now: UnixMillis,
}

/// Inserts a session (8 parameters, [`SessionRow`]'s fields in order, `now`
/// twice); a unique index on the scope makes racing creators agree: the
/// losers' inserts do nothing (and return no row).
macro_rules! insert_session_sql {
    () => {
        concat!(
            "INSERT INTO sessions (id, tenant_id, agent_id, user_id, channel, peer, \
             title, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?) \
             ON CONFLICT (tenant_id, agent_id, user_id, channel, peer) DO NOTHING \
             RETURNING ",
            $crate::port::data::session_cols!()
        )
    };
}

/// The columns of a `tenants` row (`settings` is JSON).
macro_rules! tenant_cols {
    ($d:ident) => {
        concat!(
            "id, name, created_at, ",
            $d::json_col!("settings"),
            ", settings_version"
        )
    };
}

/// The columns of a `users` row.
macro_rules! user_cols {
    () => {
        "id, tenant_id, name, role, disabled, created_at"
    };
}

/// The columns of an `agents` row (`config` is JSON).
macro_rules! agent_cols {
    ($d:ident) => {
        concat!(
            "tenant_id, id, display_name, agent_type, ",
            $d::json_col!("config"),
            ", created_at, updated_at"
        )
    };
}

/// The columns of a `sessions` row.
macro_rules! session_cols {
    () => {
        "id, tenant_id, agent_id, user_id, channel, peer, title, created_at, updated_at"
    };
}

pub(crate) use {agent_cols, insert_session_sql, session_cols, tenant_cols, user_cols};

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::model::{
            Agent, AgentUpdate, Message, NewAgent, NewMessage, NewUser, Session, SessionFilter,
            SessionScope, Tenant, User,
        };
        use exoclaw_core::store::{
            AgentStore, SessionStore, StoreError, StoreResult, TenantStore, UserStore,
        };
        use exoclaw_core::{AgentId, SessionId, TenantId, UserId};
        use sqlx::Connection as _;
        use $crate::error::conflict;
        use $crate::port::data::{MessageRow, SessionRow};
        use $crate::port::data::{agent_cols, session_cols, tenant_cols, user_cols};
        use $crate::row::{self, Columns as _};
        use $crate::{json_text, new_id, now_millis, rule};

        #[async_trait]
        impl TenantStore for $store {
            async fn create_tenant(&self, id: &TenantId, name: &str) -> StoreResult<Tenant> {
                rule::check_slug("tenant", id.as_str())?;
                let tenant = Tenant {
                    id: id.clone(),
                    name: name.to_owned(),
                    created_at: now_millis(),
                    settings: serde_json::json!({}),
                    settings_version: 0,
                };
                sqlx::query($d::sql!(
                    "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)"
                ))
                .bind(tenant.id.as_str())
                .bind(&tenant.name)
                .bind(tenant.created_at)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)
                .map_err(conflict(|| format!("tenant {id}")))?;
                Ok(tenant)
            }

            async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    tenant_cols!($d),
                    " FROM tenants WHERE id = ?"
                ))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::tenant)
                .transpose()
            }

            async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    tenant_cols!($d),
                    " FROM tenants ORDER BY created_at, id"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::tenant)
            }

            async fn set_tenant_settings(
                &self,
                id: &TenantId,
                settings: &serde_json::Value,
                expected: Option<i64>,
            ) -> StoreResult<Tenant> {
                if !settings.is_object() {
                    return Err(StoreError::Invalid(
                        "tenant settings must be a JSON object".to_owned(),
                    ));
                }
                let changed = sqlx::query($d::sql!(
                    "UPDATE tenants SET settings = ",
                    $d::json_arg!("?"),
                    ", settings_version = settings_version + 1 \
                     WHERE id = ? AND settings_version = COALESCE(?, settings_version)"
                ))
                .bind(json_text(settings)?)
                .bind(id.as_str())
                .bind(expected)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?
                .rows_affected();
                let stored = self.get_tenant(id).await?.ok_or(StoreError::NotFound)?;
                if changed == 0 {
                    return Err(StoreError::Conflict(format!(
                        "the settings of tenant {id} changed meanwhile (now version {})",
                        stored.settings_version
                    )));
                }
                Ok(stored)
            }
        }

        #[async_trait]
        impl UserStore for $store {
            async fn create_user(&self, tenant: &TenantId, user: &NewUser) -> StoreResult<User> {
                rule::check_user_name(&user.name)?;
                let created = User {
                    id: new_id()?.into(),
                    tenant_id: tenant.clone(),
                    name: user.name.clone(),
                    role: user.role,
                    disabled: false,
                    created_at: now_millis(),
                };
                if let Some(done) = self
                    .write_grouped(|| $crate::port::grouped::Small::User {
                        id: created.id.as_str().to_owned(),
                        tenant: tenant.as_str().to_owned(),
                        name: created.name.clone(),
                        role: created.role.as_str().to_owned(),
                        now: created.created_at,
                    })
                    .await?
                {
                    return if done.user()? {
                        Ok(created)
                    } else {
                        Err(StoreError::Conflict(format!(
                            "user {:?} in tenant {tenant}",
                            user.name
                        )))
                    };
                }
                sqlx::query($d::sql!(
                    "INSERT INTO users (id, tenant_id, name, role, disabled, created_at) \
                     VALUES (?, ?, ?, ?, FALSE, ?)"
                ))
                .bind(created.id.as_str())
                .bind(tenant.as_str())
                .bind(&created.name)
                .bind(created.role.as_str())
                .bind(created.created_at)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)
                .map_err(conflict(|| {
                    format!("user {:?} in tenant {tenant}", user.name)
                }))?;
                Ok(created)
            }

            async fn get_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<Option<User>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::user)
                .transpose()
            }

            async fn find_user_by_name(
                &self,
                tenant: &TenantId,
                name: &str,
            ) -> StoreResult<Option<User>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users WHERE tenant_id = ? AND name = ?"
                ))
                .bind(tenant.as_str())
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::user)
                .transpose()
            }

            async fn list_users(&self, tenant: &TenantId) -> StoreResult<Vec<User>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users WHERE tenant_id = ? ORDER BY name"
                ))
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::user)
            }

            async fn set_user_disabled(
                &self,
                tenant: &TenantId,
                id: &UserId,
                disabled: bool,
            ) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "UPDATE users SET disabled = ? WHERE tenant_id = ? AND id = ?"
                ))
                .bind(disabled)
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())
            }

            async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<()> {
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                let done =
                    sqlx::query($d::sql!("DELETE FROM users WHERE tenant_id = ? AND id = ?"))
                        .bind(tenant.as_str())
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err($d::err)?;
                rule::found(done.rows_affected())?;
                // The rest of the cascade (see `rule::user_secret_owner`); the
                // sessions' messages cascade in the schema.
                sqlx::query($d::sql!(
                    "DELETE FROM sessions WHERE tenant_id = ? AND user_id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                sqlx::query($d::sql!(
                    "DELETE FROM secrets WHERE tenant_id = ? AND owner = ?"
                ))
                .bind(tenant.as_str())
                .bind(rule::user_secret_owner(id))
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                sqlx::query($d::sql!(
                    "DELETE FROM handoffs WHERE tenant_id = ? AND user_id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                tx.commit().await.map_err($d::err)
            }
        }

        #[async_trait]
        impl AgentStore for $store {
            async fn create_agent(
                &self,
                tenant: &TenantId,
                agent: &NewAgent,
            ) -> StoreResult<Agent> {
                rule::check_slug("agent", agent.id.as_str())?;
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
                sqlx::query($d::sql!(
                    "INSERT INTO agents (tenant_id, id, display_name, agent_type, config, \
                     created_at, updated_at) VALUES (?, ?, ?, ?, ",
                    $d::json_arg!("?"),
                    ", ?, ?)"
                ))
                .bind(tenant.as_str())
                .bind(agent.id.as_str())
                .bind(&agent.display_name)
                .bind(agent.agent_type.as_str())
                .bind(json_text(&agent.config)?)
                .bind(now)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)
                .map_err(conflict(|| {
                    format!("agent {} in tenant {tenant}", agent.id)
                }))?;
                Ok(created)
            }

            async fn get_agent(
                &self,
                tenant: &TenantId,
                id: &AgentId,
            ) -> StoreResult<Option<Agent>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    agent_cols!($d),
                    " FROM agents WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::agent)
                .transpose()
            }

            async fn directory_version(&self, tenant: &TenantId) -> StoreResult<Option<i64>> {
                // Kept by triggers (schema 16); no row yet is version 0.
                let version = sqlx::query($d::sql!(
                    "SELECT version FROM directory_versions WHERE tenant_id = ?"
                ))
                .bind(tenant.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?;
                Ok(Some(match version {
                    Some(r) => r.int("version")?,
                    None => 0,
                }))
            }

            async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    agent_cols!($d),
                    " FROM agents WHERE tenant_id = ? ORDER BY id"
                ))
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::agent)
            }

            async fn update_agent(
                &self,
                tenant: &TenantId,
                id: &AgentId,
                update: &AgentUpdate,
            ) -> StoreResult<Agent> {
                let config = update.config.as_ref().map(json_text).transpose()?;
                sqlx::query($d::sql!(
                    "UPDATE agents SET display_name = COALESCE(?1, display_name), \
                     agent_type = COALESCE(?2, agent_type), config = COALESCE(",
                    $d::json_arg!("?3"),
                    ", config), updated_at = ?4 WHERE tenant_id = ?5 AND id = ?6 RETURNING ",
                    agent_cols!($d)
                ))
                .bind(update.display_name.as_deref())
                .bind(update.agent_type.map(|t| t.as_str()))
                .bind(config)
                .bind(now_millis())
                .bind(tenant.as_str())
                .bind(id.as_str())
                .fetch_optional(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::agent)
                .transpose()?
                .ok_or(StoreError::NotFound)
            }

            async fn delete_agent(&self, tenant: &TenantId, id: &AgentId) -> StoreResult<()> {
                // Its sessions, links, bindings, team memberships and
                // handoffs cascade in the schema; a team it leads does not
                // (`teams.lead` has no ON DELETE action), so the statement
                // fails on that foreign key and deletes nothing.
                let deleted = sqlx::query($d::sql!(
                    "DELETE FROM agents WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err);
                let done = match deleted {
                    Err(StoreError::NotFound) => {
                        let team: Option<String> = sqlx::query_scalar($d::sql!(
                            "SELECT id FROM teams WHERE tenant_id = ? AND lead = ? \
                             ORDER BY id LIMIT 1"
                        ))
                        .bind(tenant.as_str())
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($d::err)?;
                        return Err(rule::lead_conflict(id, team.as_deref()));
                    }
                    other => other?,
                };
                rule::found(done.rows_affected())
            }
        }

        #[async_trait]
        impl SessionStore for $store {
            async fn get_or_create_session(
                &self,
                tenant: &TenantId,
                scope: &SessionScope,
            ) -> StoreResult<Session> {
                // An existing session (the common case: every turn but a
                // conversation's first) is one read, no write.
                let existing = sqlx::query($d::sql!(
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
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?;
                if let Some(r) = existing {
                    return row::session(&r);
                }
                // The winner of racing creators gets its row back from the
                // insert; the others read the winner's.
                let now = now_millis();
                let inserted = self
                    .insert_session(SessionRow {
                        id: new_id()?,
                        tenant: tenant.as_str().to_owned(),
                        agent: scope.agent_id.as_str().to_owned(),
                        user: scope.user_id.as_str().to_owned(),
                        channel: scope.channel.clone(),
                        peer: scope.peer.clone(),
                        now,
                    })
                    .await?;
                if let Some(session) = inserted {
                    return Ok(session);
                }
                let r = sqlx::query($d::sql!(
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
                .map_err($d::err)?;
                row::session(&r)
            }

            async fn get_session(
                &self,
                tenant: &TenantId,
                id: &SessionId,
            ) -> StoreResult<Option<Session>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    session_cols!(),
                    " FROM sessions WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::session)
                .transpose()
            }

            async fn list_sessions(
                &self,
                tenant: &TenantId,
                filter: &SessionFilter,
            ) -> StoreResult<Vec<Session>> {
                let text = filter.text.as_deref().map(rule::like_pattern);
                let (after_at, after_id) = match &filter.after {
                    Some((at, id)) => (Some(*at), Some(id.as_str())),
                    None => (None, None),
                };
                let limit = filter.limit.map_or(i64::MAX, i64::from);
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    session_cols!(),
                    " FROM sessions WHERE tenant_id = ?1 AND (?2 IS NULL OR agent_id = ?2) \
                     AND (?3 IS NULL OR user_id = ?3) \
                     AND (?4 IS NULL OR lower(coalesce(title, '')) LIKE ?4 ESCAPE '\\' \
                          OR lower(peer) LIKE ?4 ESCAPE '\\') \
                     AND (?5 IS NULL OR updated_at < ?5 OR (updated_at = ?5 AND id < ?6)) \
                     ORDER BY updated_at DESC, id DESC LIMIT ?7"
                ))
                .bind(tenant.as_str())
                .bind(filter.agent_id.as_ref().map(AgentId::as_str))
                .bind(filter.user_id.as_ref().map(UserId::as_str))
                .bind(text)
                .bind(after_at)
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::session)
            }

            async fn delete_session(&self, tenant: &TenantId, id: &SessionId) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "DELETE FROM sessions WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())
            }

            async fn append_message(
                &self,
                tenant: &TenantId,
                session: &SessionId,
                message: &NewMessage,
            ) -> StoreResult<Message> {
                let now = now_millis();
                let id = new_id()?;
                let seq = self
                    .insert_message(MessageRow {
                        id: &id,
                        tenant,
                        session,
                        role: &message.role,
                        content: json_text(&message.content)?,
                        meta: json_text(&message.meta)?,
                        now,
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
                // One statement: the session's row joined with its messages,
                // so a missing session (no row at all) and a session without
                // messages (one row of NULLs) differ.
                let rows = sqlx::query($d::sql!(
                    "SELECT m.id, m.tenant_id, m.session_id, m.seq, m.role, ",
                    $d::json_col!("m.", "content"),
                    ", ",
                    $d::json_col!("m.", "meta"),
                    ", m.created_at FROM sessions s LEFT JOIN messages m \
                     ON m.tenant_id = s.tenant_id AND m.session_id = s.id AND m.seq > ?3 \
                     WHERE s.tenant_id = ?1 AND s.id = ?2 ORDER BY m.seq LIMIT ",
                    $d::limit!("?4")
                ))
                .bind(tenant.as_str())
                .bind(session.as_str())
                .bind(after_seq)
                .bind(rule::message_limit(limit, $d::NO_LIMIT))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                if rows.is_empty() {
                    return Err(StoreError::NotFound);
                }
                let mut messages = Vec::with_capacity(rows.len());
                for r in &rows {
                    if r.opt_text("id")?.is_some() {
                        messages.push(row::message(r)?);
                    }
                }
                Ok(messages)
            }

            async fn list_window(
                &self,
                tenant: &TenantId,
                session: &SessionId,
            ) -> StoreResult<Vec<Message>> {
                // `list_messages` after what the latest summary covers, in one
                // statement; the literal role lets both planners use the
                // partial index of summaries (schema 16).
                let rows = sqlx::query($d::sql!(
                    "SELECT m.id, m.tenant_id, m.session_id, m.seq, m.role, ",
                    $d::json_col!("m.", "content"),
                    ", ",
                    $d::json_col!("m.", "meta"),
                    ", m.created_at FROM sessions s LEFT JOIN messages m \
                     ON m.tenant_id = s.tenant_id AND m.session_id = s.id AND m.seq > \
                     COALESCE((SELECT ",
                    $d::summary_covered!(),
                    " FROM messages x WHERE x.tenant_id = s.tenant_id \
                     AND x.session_id = s.id AND x.role = 'summary' ORDER BY x.seq DESC \
                     LIMIT 1), 0) \
                     WHERE s.tenant_id = ?1 AND s.id = ?2 ORDER BY m.seq"
                ))
                .bind(tenant.as_str())
                .bind(session.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                if rows.is_empty() {
                    return Err(StoreError::NotFound);
                }
                let mut messages = Vec::with_capacity(rows.len());
                for r in &rows {
                    if r.opt_text("id")?.is_some() {
                        messages.push(row::message(r)?);
                    }
                }
                Ok(messages)
            }
        }
    };
}

pub(crate) use ports;
