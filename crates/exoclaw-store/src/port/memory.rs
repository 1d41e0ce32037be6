//! Long-term memory, written once for both backends (see [`crate::port`]).
//! What differs is the full-text match (`$d::fts_from!`, `$d::fts_order!`,
//! `$d::fts_query`: SQLite FTS5 and BM25, PostgreSQL `tsvector` and
//! `ts_rank_cd`). A save runs in one writing transaction under a lock on
//! its namespace: the exact duplicate (same `content_key`), else a near
//! duplicate among the best full-text matches, is updated instead of a new
//! row; then the namespace's retention deletes what is too old or beyond
//! the count (least important and oldest first, never the memory just
//! saved). Vector ranking is by cosine over the namespace's vectors of the
//! query's embedder: a scan (no vector index yet; BENCHMARKS.md, issue 14)
//! of ids and vectors only, streamed, the best kept as it goes, the
//! winners read whole after; the two lists are fused by
//! [`exoclaw_core::store::memory::fuse`]. Rules are in
//! `crate::rule::memory`.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use futures_util::TryStreamExt as _;
        use exoclaw_core::store::memory::{
            Embedding, Memory, MemoryFilter, MemoryHit, MemoryQuery, MemoryStats, NewMemory,
            Retention, SavedMemory, fuse,
        };
        use exoclaw_core::store::{MemoryStore, StoreError, StoreResult};
        use exoclaw_core::{AgentId, TenantId, UnixMillis, UserId};
        use sqlx::Connection as _;
        use sqlx::Row as _;
        use $crate::{new_id, row, rule};

        /// The columns of a memory (without its vector), as `m.`.
        macro_rules! memory_cols {
            () => {
                "m.tenant_id, m.id, m.agent_id, m.user_id, m.content, m.untrusted, \
                 m.importance, m.embedder, m.created_at, m.updated_at"
            };
        }

        /// How many of each list a search fuses, for `limit` hits: as many.
        /// Longer lists let a weak full-text match that is also somewhere
        /// in the vector list outrank the best vector match (measured on
        /// the labelled retrieval set: recall@5 fell from 0.98 to 0.88
        /// with 20 of each).
        fn pool_size(limit: i64) -> i64 {
            limit
        }

        #[async_trait]
        impl MemoryStore for $store {
            async fn save_memory(
                &self,
                tenant: &TenantId,
                new: &NewMemory,
                retention: &Retention,
                now: UnixMillis,
            ) -> StoreResult<SavedMemory> {
                rule::memory::check_new(new)?;
                let key = rule::memory::content_key(&new.content);
                let words = rule::memory::query_words(&new.content);
                let user = new.user_id.as_ref().map(UserId::as_str);
                let agent = new.agent_id.as_str();
                let (model, vector) = match &new.embedding {
                    Some(e) => (
                        Some(e.model.as_str()),
                        Some(rule::memory::encode_vector(&e.vector)),
                    ),
                    None => (None, None),
                };
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                $d::lock(&mut tx, || {
                    format!("memory/{tenant}/{agent}/{}", user.unwrap_or("*"))
                })
                .await?;
                let mut same: Option<String> = sqlx::query_scalar($d::sql!(
                    "SELECT m.id FROM memories m WHERE m.tenant_id = ?1 AND m.agent_id = ?2 \
                     AND m.user_id IS NOT DISTINCT FROM ?3 AND m.content_key = ?4 LIMIT 1"
                ))
                .bind(tenant.as_str())
                .bind(agent)
                .bind(user)
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await
                .map_err($d::err)?;
                if same.is_none() && !words.is_empty() {
                    let rows = sqlx::query($d::sql!(
                        "SELECT m.id, m.content, m.embedder, m.embedding FROM ",
                        $d::fts_from!(),
                        " AND m.tenant_id = ?2 AND m.agent_id = ?3 \
                         AND m.user_id IS NOT DISTINCT FROM ?4 ORDER BY ",
                        $d::fts_order!(),
                        " LIMIT ",
                        $d::limit!("?5")
                    ))
                    .bind($d::fts_query(&words))
                    .bind(tenant.as_str())
                    .bind(agent)
                    .bind(user)
                    .bind(rule::memory::DUPLICATE_CANDIDATES)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err($d::err)?;
                    for r in &rows {
                        let content: String = r.try_get("content").map_err($d::err)?;
                        let theirs: Option<String> = r.try_get("embedder").map_err($d::err)?;
                        let stored: Option<Vec<u8>> =
                            r.try_get("embedding").map_err($d::err)?;
                        let theirs = match (&new.embedding, theirs, stored) {
                            (Some(e), Some(m), Some(b)) if m == e.model => {
                                Some(rule::memory::decode_vector(&b)?)
                            }
                            _ => None,
                        };
                        let vectors = match (&new.embedding, &theirs) {
                            (Some(e), Some(t)) => Some((e.vector.as_slice(), t.as_slice())),
                            _ => None,
                        };
                        if rule::memory::is_near_duplicate(&new.content, &content, vectors) {
                            same = Some(r.try_get("id").map_err($d::err)?);
                            break;
                        }
                    }
                }
                let merged = same.is_some();
                let id = match same {
                    Some(id) => {
                        sqlx::query($d::sql!(
                            "UPDATE memories SET content = ?1, content_key = ?2, \
                             untrusted = (untrusted OR ?3), \
                             importance = CASE WHEN importance < ?4 THEN ?4 ELSE importance END, \
                             embedder = ?5, embedding = ?6, updated_at = ?7 \
                             WHERE tenant_id = ?8 AND id = ?9"
                        ))
                        .bind(&new.content)
                        .bind(&key)
                        .bind(new.untrusted)
                        .bind(new.importance)
                        .bind(model)
                        .bind(vector.as_deref())
                        .bind(now)
                        .bind(tenant.as_str())
                        .bind(&id)
                        .execute(&mut *tx)
                        .await
                        .map_err($d::err)?;
                        id
                    }
                    None => {
                        let id = new_id()?;
                        sqlx::query($d::sql!(
                            "INSERT INTO memories (tenant_id, id, agent_id, user_id, content, \
                             content_key, untrusted, importance, embedder, embedding, created_at, \
                             updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        ))
                        .bind(tenant.as_str())
                        .bind(&id)
                        .bind(agent)
                        .bind(user)
                        .bind(&new.content)
                        .bind(&key)
                        .bind(new.untrusted)
                        .bind(new.importance)
                        .bind(model)
                        .bind(vector.as_deref())
                        .bind(now)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err($d::err)?;
                        id
                    }
                };
                let mut pruned = 0;
                if let Some(age) = retention.max_age_ms {
                    pruned += sqlx::query($d::sql!(
                        "DELETE FROM memories WHERE tenant_id = ?1 AND agent_id = ?2 \
                         AND user_id IS NOT DISTINCT FROM ?3 AND updated_at < ?4 AND id <> ?5"
                    ))
                    .bind(tenant.as_str())
                    .bind(agent)
                    .bind(user)
                    .bind(now.saturating_sub(age))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err($d::err)?
                    .rows_affected();
                }
                if let Some(count) = retention.max_count {
                    pruned += sqlx::query($d::sql!(
                        "DELETE FROM memories WHERE tenant_id = ?1 AND id IN (SELECT id FROM \
                         memories WHERE tenant_id = ?1 AND agent_id = ?2 \
                         AND user_id IS NOT DISTINCT FROM ?3 \
                         ORDER BY CASE WHEN id = ?4 THEN 1 ELSE 0 END DESC, importance DESC, \
                         updated_at DESC, id DESC LIMIT ",
                        $d::limit!("?5"),
                        " OFFSET ?6)"
                    ))
                    .bind(tenant.as_str())
                    .bind(agent)
                    .bind(user)
                    .bind(&id)
                    .bind($d::NO_LIMIT)
                    .bind(i64::from(count.max(1)))
                    .execute(&mut *tx)
                    .await
                    .map_err($d::err)?
                    .rows_affected();
                }
                let r = sqlx::query($d::sql!(
                    "SELECT ",
                    memory_cols!(),
                    " FROM memories m WHERE m.tenant_id = ? AND m.id = ?"
                ))
                .bind(tenant.as_str())
                .bind(&id)
                .fetch_one(&mut *tx)
                .await
                .map_err($d::err)?;
                let memory = row::memory(&r)?;
                tx.commit().await.map_err($d::err)?;
                Ok(SavedMemory {
                    memory,
                    merged,
                    pruned,
                })
            }

            async fn get_memory(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Memory>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    memory_cols!(),
                    " FROM memories m WHERE m.tenant_id = ? AND m.id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::memory)
                .transpose()
            }

            async fn list_memories(
                &self,
                tenant: &TenantId,
                filter: &MemoryFilter,
            ) -> StoreResult<Vec<Memory>> {
                let limit = if filter.limit == 0 { 100 } else { filter.limit };
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    memory_cols!(),
                    " FROM memories m WHERE m.tenant_id = ?1 \
                     AND (?2 IS NULL OR m.agent_id = ?2) \
                     AND (?3 IS NULL OR m.user_id IS NULL OR m.user_id = ?3) \
                     ORDER BY m.updated_at DESC, m.id DESC LIMIT ",
                    $d::limit!("?4")
                ))
                .bind(tenant.as_str())
                .bind(filter.agent.as_ref().map(AgentId::as_str))
                .bind(filter.user.as_ref().map(UserId::as_str))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::memory)
            }

            async fn search_memories(
                &self,
                tenant: &TenantId,
                q: &MemoryQuery,
            ) -> StoreResult<Vec<MemoryHit>> {
                let limit = rule::memory::check_query(q)?;
                let words = rule::memory::query_words(&q.text);
                let user = q.user.as_ref().map(UserId::as_str);
                let text = if words.is_empty() {
                    Vec::new()
                } else {
                    let rows = sqlx::query($d::sql!(
                        "SELECT ",
                        memory_cols!(),
                        " FROM ",
                        $d::fts_from!(),
                        " AND m.tenant_id = ?2 AND m.agent_id = ?3 \
                         AND (m.user_id IS NULL OR m.user_id = ?4) ORDER BY ",
                        $d::fts_order!(),
                        ", m.importance DESC, m.updated_at DESC LIMIT ",
                        $d::limit!("?5")
                    ))
                    .bind($d::fts_query(&words))
                    .bind(tenant.as_str())
                    .bind(q.agent.as_str())
                    .bind(user)
                    .bind(pool_size(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($d::err)?;
                    row::all(&rows, row::memory)?
                };
                let vector = match &q.embedding {
                    None => Vec::new(),
                    Some(e) => {
                        // Only ids and vectors are read for the scan (no
                        // row of text per memory), each vector scored where
                        // it lies, the best `pool` kept; then the few
                        // winners are read whole.
                        let pool = usize::try_from(pool_size(limit)).unwrap_or(usize::MAX);
                        let mut best = rule::memory::Best::new(pool);
                        let mut rows = sqlx::query($d::sql!(
                            "SELECT m.id, m.embedding FROM memories m WHERE m.tenant_id = ?1 \
                             AND m.agent_id = ?2 AND (m.user_id IS NULL OR m.user_id = ?3) \
                             AND m.embedder = ?4"
                        ))
                        .bind(tenant.as_str())
                        .bind(q.agent.as_str())
                        .bind(user)
                        .bind(&e.model)
                        .fetch(&self.pool);
                        while let Some(r) = rows.try_next().await.map_err($d::err)? {
                            let stored: Option<&[u8]> = r.try_get("embedding").map_err($d::err)?;
                            if let Some(b) = stored {
                                let score = rule::memory::cosine_stored(&e.vector, b)?;
                                if best.admits(score) {
                                    best.push(score, r.try_get("id").map_err($d::err)?);
                                }
                            }
                        }
                        drop(rows);
                        let mut found = Vec::new();
                        for id in best.into_sorted() {
                            // Gone since the scan: left out.
                            if let Some(m) = self.get_memory(tenant, &id).await? {
                                found.push(m);
                            }
                        }
                        found
                    }
                };
                Ok(fuse(text, vector, usize::try_from(limit).unwrap_or(0)))
            }

            async fn delete_memory(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
                let mut conn = self.write_conn().await?;
                let done = sqlx::query($d::sql!(
                    "DELETE FROM memories WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err($d::err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn memory_stats(
                &self,
                tenant: Option<&TenantId>,
                model: Option<&str>,
            ) -> StoreResult<MemoryStats> {
                let r = sqlx::query($d::sql!(
                    "SELECT COUNT(*) AS total, \
                     COUNT(CASE WHEN embedder = ?2 THEN 1 END) AS embedded \
                     FROM memories WHERE (?1 IS NULL OR tenant_id = ?1)"
                ))
                .bind(tenant.map(TenantId::as_str))
                .bind(model)
                .fetch_one(&self.pool)
                .await
                .map_err($d::err)?;
                let count = |col: &'static str| -> StoreResult<u64> {
                    let n: i64 = r.try_get(col).map_err($d::err)?;
                    Ok(u64::try_from(n).unwrap_or(0))
                };
                Ok(MemoryStats {
                    total: count("total")?,
                    embedded: count("embedded")?,
                })
            }

            async fn memories_to_embed(&self, model: &str, limit: u32) -> StoreResult<Vec<Memory>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    memory_cols!(),
                    " FROM memories m WHERE m.embedder IS NULL OR m.embedder <> ?1 \
                     ORDER BY m.created_at, m.id LIMIT ",
                    $d::limit!("?2")
                ))
                .bind(model)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::memory)
            }

            async fn set_memory_embedding(
                &self,
                memory: &Memory,
                embedding: &Embedding,
            ) -> StoreResult<bool> {
                let mut conn = self.write_conn().await?;
                let done = sqlx::query($d::sql!(
                    "UPDATE memories SET embedder = ?, embedding = ? \
                     WHERE tenant_id = ? AND id = ? AND updated_at = ?"
                ))
                .bind(&embedding.model)
                .bind(rule::memory::encode_vector(&embedding.vector))
                .bind(memory.tenant_id.as_str())
                .bind(&memory.id)
                .bind(memory.updated_at)
                .execute(&mut *conn)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

pub(crate) use ports;
