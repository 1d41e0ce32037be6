//! Team mailboxes and conversation handoffs, written once for both backends
//! (see [`crate::port`]).
//!
//! A message is read once per reader: `take_unread` inserts its reader's
//! rows into `team_mail_reads` with `ON CONFLICT DO NOTHING`, tagged with a
//! fresh take id, and returns the messages of the rows it inserted, in the
//! same transaction. Two takers for one agent never both insert a row (on
//! PostgreSQL the second waits on the first's uncommitted row and then does
//! nothing; on SQLite writers are serialised), so never both get a message.
//! Handoffs are one row per conversation, replaced by an upsert.
//!
//! `require_team` (a team must exist) is the team ports' own, brought into
//! scope by `crate::port::expand`.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::store::teams::{Handoff, Mail};
        use exoclaw_core::store::{HandoffStore, MailStore, StoreError, StoreResult};
        use exoclaw_core::{AgentId, TenantId, UnixMillis, UserId};
        use sqlx::Connection as _;
        use $crate::rule::orchestration as orch;
        use $crate::{new_id, now_millis, row, rule};

        /// The columns of a `team_mail` row `m`.
        macro_rules! mail_cols {
            () => {
                "m.id, m.tenant_id, m.team_id, m.from_agent, m.to_agent, m.text, m.sent_at"
            };
        }

        /// What makes message `m` unread for agent `?3` of team `?2` in
        /// tenant `?1`: to it or to all, not its own, no read row of it.
        macro_rules! unread {
            () => {
                concat!(
                    " FROM team_mail m WHERE m.tenant_id = ?1 AND m.team_id = ?2 ",
                    "AND m.from_agent <> ?3 AND (m.to_agent IS NULL OR m.to_agent = ?3) ",
                    "AND NOT EXISTS (SELECT 1 FROM team_mail_reads r ",
                    "WHERE r.tenant_id = m.tenant_id AND r.mail_id = m.id AND r.agent = ?3)"
                )
            };
        }

        /// The columns of a `handoffs` row, in insert order.
        macro_rules! handoff_cols {
            () => {
                "tenant_id, channel, peer, user_id, from_agent, to_agent, reason, created_at, \
                 last_active_at"
            };
        }

        #[async_trait]
        impl MailStore for $store {
            async fn send_mail(
                &self,
                tenant: &TenantId,
                team: &str,
                from: &AgentId,
                to: Option<&AgentId>,
                text: &str,
                now: UnixMillis,
            ) -> StoreResult<Mail> {
                orch::check_mail(from, to, text)?;
                let id = new_id()?;
                // The team is the message's foreign key: an unknown one is
                // `NotFound`.
                sqlx::query($d::sql!(
                    "INSERT INTO team_mail (id, tenant_id, team_id, from_agent, to_agent, text, \
                     sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ))
                .bind(&id)
                .bind(tenant.as_str())
                .bind(team)
                .bind(from.as_str())
                .bind(to.map(AgentId::as_str))
                .bind(text)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(Mail {
                    id,
                    tenant_id: tenant.clone(),
                    team_id: team.to_owned(),
                    from: from.clone(),
                    to: to.cloned(),
                    text: text.to_owned(),
                    sent_at: now,
                })
            }

            async fn take_unread(
                &self,
                tenant: &TenantId,
                team: &str,
                agent: &AgentId,
                limit: u32,
            ) -> StoreResult<Vec<Mail>> {
                rule::check_slug("reading agent", agent.as_str())?;
                let take = new_id()?;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                require_team(&mut tx, tenant, team).await?;
                sqlx::query($d::sql!(
                    "INSERT INTO team_mail_reads (tenant_id, mail_id, agent, take_id, read_at) \
                     SELECT m.tenant_id, m.id, ?3, ?4, ?5",
                    unread!(),
                    " ORDER BY m.sent_at, m.seq LIMIT ",
                    $d::limit!("?6"),
                    " ON CONFLICT (tenant_id, mail_id, agent) DO NOTHING"
                ))
                .bind(tenant.as_str())
                .bind(team)
                .bind(agent.as_str())
                .bind(&take)
                .bind(now_millis())
                .bind(rule::page_limit(limit))
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    mail_cols!(),
                    " FROM team_mail_reads r JOIN team_mail m \
                     ON m.tenant_id = r.tenant_id AND m.id = r.mail_id \
                     WHERE r.take_id = ? ORDER BY m.sent_at, m.seq"
                ))
                .bind(&take)
                .fetch_all(&mut *tx)
                .await
                .map_err($d::err)?;
                tx.commit().await.map_err($d::err)?;
                row::all(&rows, row::mail)
            }

            async fn count_unread(
                &self,
                tenant: &TenantId,
                team: &str,
                agent: &AgentId,
            ) -> StoreResult<u64> {
                let mut conn = self.pool.acquire().await.map_err($d::err)?;
                require_team(&mut conn, tenant, team).await?;
                let n: i64 = sqlx::query_scalar($d::sql!("SELECT count(*)", unread!()))
                    .bind(tenant.as_str())
                    .bind(team)
                    .bind(agent.as_str())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err($d::err)?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("an unread count of {n}")))
            }
        }

        #[async_trait]
        impl HandoffStore for $store {
            async fn set_handoff(&self, handoff: &Handoff) -> StoreResult<()> {
                orch::check_handoff(handoff)?;
                // Both agents are foreign keys: an unknown one is `NotFound`.
                sqlx::query($d::sql!(
                    "INSERT INTO handoffs (",
                    handoff_cols!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (tenant_id, channel, peer, user_id) DO UPDATE SET \
                     from_agent = excluded.from_agent, to_agent = excluded.to_agent, \
                     reason = excluded.reason, created_at = excluded.created_at, \
                     last_active_at = excluded.last_active_at"
                ))
                .bind(handoff.tenant_id.as_str())
                .bind(&handoff.channel)
                .bind(&handoff.peer)
                .bind(handoff.user_id.as_str())
                .bind(handoff.from_agent.as_str())
                .bind(handoff.to_agent.as_str())
                .bind(&handoff.reason)
                .bind(handoff.created_at)
                .bind(handoff.last_active_at)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(())
            }

            async fn any_handoff(&self, tenant: &TenantId) -> StoreResult<bool> {
                let any = sqlx::query($d::sql!(
                    "SELECT 1 AS one FROM handoffs WHERE tenant_id = ? LIMIT 1"
                ))
                .bind(tenant.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?;
                Ok(any.is_some())
            }

            async fn get_handoff(
                &self,
                tenant: &TenantId,
                channel: &str,
                peer: &str,
                user: &UserId,
            ) -> StoreResult<Option<Handoff>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    handoff_cols!(),
                    " FROM handoffs WHERE tenant_id = ? AND channel = ? AND peer = ? \
                     AND user_id = ?"
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .bind(peer)
                .bind(user.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::handoff)
                .transpose()
            }

            async fn touch_handoff(
                &self,
                tenant: &TenantId,
                channel: &str,
                peer: &str,
                user: &UserId,
                now: UnixMillis,
            ) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "UPDATE handoffs SET last_active_at = ? WHERE tenant_id = ? AND channel = ? \
                     AND peer = ? AND user_id = ?"
                ))
                .bind(now)
                .bind(tenant.as_str())
                .bind(channel)
                .bind(peer)
                .bind(user.as_str())
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())
            }

            async fn clear_handoff(
                &self,
                tenant: &TenantId,
                channel: &str,
                peer: &str,
                user: &UserId,
            ) -> StoreResult<bool> {
                let done = sqlx::query($d::sql!(
                    "DELETE FROM handoffs WHERE tenant_id = ? AND channel = ? AND peer = ? \
                     AND user_id = ?"
                ))
                .bind(tenant.as_str())
                .bind(channel)
                .bind(peer)
                .bind(user.as_str())
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_handoffs(&self, tenant: &TenantId) -> StoreResult<Vec<Handoff>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    handoff_cols!(),
                    " FROM handoffs WHERE tenant_id = ? \
                     ORDER BY last_active_at DESC, channel, peer, user_id LIMIT 1000"
                ))
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::handoff)
            }
        }
    };
}

pub(crate) use ports;
