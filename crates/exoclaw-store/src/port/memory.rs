//! Long-term memory, written once for both backends (see [`crate::port`]).
//! A save runs in one writing transaction under a lock on its namespace:
//! the exact duplicate (same `content_key`), else a near duplicate among
//! the best full-text matches, is updated instead of a new row; then the
//! namespace's retention deletes what is too old or beyond the count
//! (least important and oldest first, never the memory just saved).
//!
//! A search fuses two lists with [`exoclaw_core::store::memory::fuse`],
//! each answered by an index (schema 24) without reading the namespace:
//! full text over a bounded set (a query word matching many memories of
//! the namespace is left out while a rarer one is in the query, and only
//! the namespace's newest matches are ranked: `$d::text_candidates!`;
//! SQLite FTS5 and BM25, PostgreSQL's stored `tsvector` and `ts_rank_cd`),
//! and vectors through `$d::vector_knn!` for the indexed dimensions
//! (sqlite-vec sign bits re-scored by the exact cosine; pgvector HNSW with
//! an iterative scan); a vector of another dimension is found by a scan of
//! the namespace's vectors, streamed, the best kept as it goes. Rules are
//! in `crate::rule::memory`.

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

        /// A full-text list for `words` in `scope`, best first, `limit`
        /// of them, with each memory's stored vector: each word's matches
        /// counted up to `COMMON_WORD_MATCHES` first, the common words left
        /// out (`rule::memory::text_terms`), then the namespace's newest
        /// `TEXT_CANDIDATES` matches ranked.
        async fn text_list(
            conn: &mut $d::Conn,
            scope: &rule::memory::Scope<'_>,
            words: &[String],
            limit: i64,
        ) -> StoreResult<Vec<(Memory, Option<Vec<u8>>)>> {
            if words.is_empty() {
                return Ok(Vec::new());
            }
            let tokens = scope.tokens();
            // One word is not counted: it is the query whether rare or not
            // (its 0 below is a placeholder, not a count).
            let counted = words.len() > 1;
            let matches = if counted {
                let each: Vec<String> = words
                    .iter()
                    .map(|w| $d::fts_query(std::slice::from_ref(w), true, &tokens))
                    .collect();
                let cap = rule::memory::COMMON_WORD_MATCHES;
                $d::count_matches(&mut *conn, &each, scope, cap).await?
            } else {
                vec![0]
            };
            let (terms, all) = rule::memory::text_terms(words, &matches);
            let sql = if counted && rule::memory::fit_candidates(&matches, all) {
                $d::sql!($d::text_candidates!(any; memory_cols!(), ", m.embedding"))
            } else {
                $d::sql!($d::text_candidates!(newest; memory_cols!(), ", m.embedding"))
            };
            let rows = sqlx::query(sql)
                .bind($d::fts_query(&terms, all, &tokens))
                .bind(scope.tenant)
                .bind(scope.agent)
                .bind(scope.user)
                .bind(scope.has_shared())
                .bind(rule::memory::TEXT_CANDIDATES)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await
                .map_err($d::err)?;
            rows.iter()
                .map(|r| Ok((row::memory(r)?, r.try_get("embedding").map_err($d::err)?)))
                .collect()
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
                    let scope = rule::memory::Scope {
                        tenant: tenant.as_str(),
                        agent,
                        user,
                        shared: false,
                    };
                    let candidates =
                        text_list(&mut tx, &scope, &words, rule::memory::DUPLICATE_CANDIDATES)
                            .await?;
                    for (m, stored) in &candidates {
                        let theirs = match (&new.embedding, &m.embedder, stored) {
                            (Some(e), Some(model), Some(b)) if *model == e.model => {
                                Some(rule::memory::decode_vector(b)?)
                            }
                            _ => None,
                        };
                        let vectors = match (&new.embedding, &theirs) {
                            (Some(e), Some(t)) => Some((e.vector.as_slice(), t.as_slice())),
                            _ => None,
                        };
                        if rule::memory::is_near_duplicate(&new.content, &m.content, vectors) {
                            same = Some(m.id.clone());
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
                let pool = pool_size(limit);
                let scope = rule::memory::Scope {
                    tenant: tenant.as_str(),
                    agent: q.agent.as_str(),
                    user,
                    shared: true,
                };
                let text = async {
                    if words.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut conn = self.pool.acquire().await.map_err($d::err)?;
                    StoreResult::Ok(text_list(&mut conn, &scope, &words, pool)
                        .await?
                        .into_iter()
                        .map(|(m, _)| m)
                        .collect())
                };
                let vector = async { StoreResult::Ok(match &q.embedding {
                    None => Vec::new(),
                    Some(e) => {
                        let knn = match e.vector.len() {
                            384 => Some($d::sql!($d::vector_knn!(384, memory_cols!()))),
                            768 => Some($d::sql!($d::vector_knn!(768, memory_cols!()))),
                            1024 => Some($d::sql!($d::vector_knn!(1024, memory_cols!()))),
                            1536 => Some($d::sql!($d::vector_knn!(1536, memory_cols!()))),
                            _ => None,
                        };
                        match knn {
                            Some(sql) => {
                                let mut tx = self.pool.begin().await.map_err($d::err)?;
                                $d::prepare_vector_search(&mut tx).await?;
                                let candidates = $d::vector_candidates(
                                    self,
                                    &mut tx,
                                    e.vector.len(),
                                    &scope,
                                    &e.model,
                                    &e.vector,
                                    rule::memory::vector_candidates(pool),
                                )
                                .await?;
                                let rows = sqlx::query(sql)
                                    .bind($d::vector_param(&e.vector))
                                    .bind(tenant.as_str())
                                    .bind(q.agent.as_str())
                                    .bind(user)
                                    .bind(&e.model)
                                    .bind(candidates)
                                    .bind(pool)
                                    .fetch_all(&mut *tx)
                                    .await
                                    .map_err($d::err)?;
                                tx.rollback().await.map_err($d::err)?;
                                row::all(&rows, row::memory)?
                            }
                            None => self.scan_vectors(tenant, q, e, pool).await?,
                        }
                    }
                })};
                let (text, vector) = futures_util::future::try_join(text, vector).await?;
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

        impl $store {
            /// The vector list for a dimension without an index: a scan of
            /// the namespace's ids and vectors of the query's embedder
            /// (no row of text per memory), each vector scored where it
            /// lies, the best `pool` kept; then the winners read whole.
            async fn scan_vectors(
                &self,
                tenant: &TenantId,
                q: &MemoryQuery,
                e: &Embedding,
                pool: i64,
            ) -> StoreResult<Vec<Memory>> {
                let pool = usize::try_from(pool).unwrap_or(usize::MAX);
                let mut best = rule::memory::Best::new(pool);
                let mut rows = sqlx::query($d::sql!(
                    "SELECT m.id, m.embedding FROM memories m WHERE m.tenant_id = ?1 \
                     AND m.agent_id = ?2 AND (m.user_id IS NULL OR m.user_id = ?3) \
                     AND m.embedder = ?4"
                ))
                .bind(tenant.as_str())
                .bind(q.agent.as_str())
                .bind(q.user.as_ref().map(UserId::as_str))
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
                Ok(found)
            }
        }
    };
}

pub(crate) use ports;
