//! The audit log, written once for both backends (see [`crate::port`]): an
//! append links the event to its tenant's chain head in one transaction
//! (SQLite: under the write lock `BEGIN IMMEDIATE` takes; PostgreSQL: with
//! the head row locked `FOR UPDATE`, also across processes); the verifier
//! reads one snapshot. The chain itself is [`crate::audit`].

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::model::{AuditEvent, AuditFilter, AuditVerify, NewAuditEvent};
        use exoclaw_core::store::{AuditStore, StoreResult};
        use exoclaw_core::{AgentId, SessionId, TenantId};
        use sqlx::Connection as _;
        use $crate::{audit, json_text, new_id, now_millis, row, rule};

        /// The columns of an `audit_events` row (`detail` is JSON).
        macro_rules! audit_cols {
            () => {
                concat!(
                    "seq, tenant_seq, id, tenant_id, at, actor, action, resource, decision, \
                     reason, request_id, agent_id, session_id, ",
                    $d::json_col!("detail"),
                    ", prev_hash, hash"
                )
            };
        }

        #[async_trait]
        impl AuditStore for $store {
            async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<AuditEvent> {
                let id = new_id()?;
                let detail = json_text(&event.detail)?;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                sqlx::query($d::sql!(
                    "INSERT INTO audit_heads (tenant_id, chain_start, last_seq, last_hash) \
                     VALUES (?1, 1, 0, ?2) ON CONFLICT (tenant_id) DO NOTHING"
                ))
                .bind(event.tenant_id.as_str())
                .bind(hex::encode(audit::GENESIS))
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                // The head read below cannot race another append of this
                // tenant until the commit.
                let (last_seq, last_hash): (i64, String) = sqlx::query_as($d::sql!(
                    "SELECT last_seq, last_hash FROM audit_heads WHERE tenant_id = ?1",
                    $d::for_update!()
                ))
                .bind(event.tenant_id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err($d::err)?;
                let mut e = audit::chained(event, id, now_millis(), last_seq + 1, &last_hash)?;
                let seq: i64 = sqlx::query_scalar($d::sql!(
                    "INSERT INTO audit_events (id, tenant_id, tenant_seq, at, actor, action, \
                     resource, decision, reason, request_id, agent_id, session_id, detail, \
                     prev_hash, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ",
                    $d::json_arg!("?13"),
                    ", ?14, ?15) RETURNING seq"
                ))
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
                .map_err($d::err)?;
                sqlx::query($d::sql!(
                    "UPDATE audit_heads SET last_seq = ?1, last_hash = ?2 WHERE tenant_id = ?3"
                ))
                .bind(e.tenant_seq)
                .bind(e.hash.as_deref())
                .bind(e.tenant_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                tx.commit().await.map_err($d::err)?;
                e.seq = seq;
                Ok(e)
            }

            async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
                // substr() rather than LIKE: LIKE treats % and _ as wildcards
                // (and is case-insensitive in SQLite).
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    audit_cols!(),
                    " FROM audit_events WHERE (?1 IS NULL OR tenant_id = ?1) \
                     AND (?2 IS NULL OR substr(action, 1, length(?2)) = ?2) \
                     AND (?3 IS NULL OR seq < ?3) \
                     AND (?4 IS NULL OR actor = ?4) \
                     AND (?5 IS NULL OR decision = ?5) \
                     AND (?6 IS NULL OR at >= ?6) \
                     AND (?7 IS NULL OR at < ?7) \
                     ORDER BY seq DESC LIMIT ",
                    $d::limit!("?8")
                ))
                .bind(filter.tenant_id.as_ref().map(TenantId::as_str))
                .bind(filter.action_prefix.as_deref())
                .bind(filter.before_seq)
                .bind(filter.actor.as_deref())
                .bind(filter.decision.as_deref())
                .bind(filter.since)
                .bind(filter.until)
                .bind(rule::audit_limit(filter.limit))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::audit_event)
            }

            async fn verify_audit(&self, tenant: Option<&TenantId>) -> StoreResult<AuditVerify> {
                // One read snapshot: appends made meanwhile are not half-seen.
                let mut tx = self
                    .pool
                    .begin_with($d::BEGIN_SNAPSHOT)
                    .await
                    .map_err($d::err)?;
                let tenants: Vec<String> = match tenant {
                    Some(t) => vec![t.as_str().to_owned()],
                    None => sqlx::query_scalar($d::sql!(
                        "SELECT tenant_id FROM audit_heads UNION \
                         SELECT tenant_id FROM audit_events ORDER BY 1"
                    ))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err($d::err)?,
                };
                let mut out = AuditVerify::default();
                for t in tenants {
                    let head: Option<(i64, i64, String)> = sqlx::query_as($d::sql!(
                        "SELECT chain_start, last_seq, last_hash FROM audit_heads \
                         WHERE tenant_id = ?1"
                    ))
                    .bind(&t)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err($d::err)?;
                    let head = head.map(|(chain_start, last_seq, last_hash)| audit::Head {
                        chain_start,
                        last_seq,
                        last_hash,
                    });
                    let mut verifier = audit::Verifier::new(TenantId::new(t.clone()), head);
                    let mut after = i64::MIN;
                    while !verifier.is_broken() {
                        let rows = sqlx::query($d::sql!(
                            "SELECT ",
                            audit_cols!(),
                            " FROM audit_events WHERE tenant_id = ?1 AND tenant_seq > ?2 \
                             ORDER BY tenant_seq, seq LIMIT ",
                            $d::limit!("?3")
                        ))
                        .bind(&t)
                        .bind(after)
                        .bind(audit::VERIFY_PAGE)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err($d::err)?;
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
                tx.rollback().await.map_err($d::err)?;
                Ok(out)
            }
        }
    };
}

pub(crate) use ports;
