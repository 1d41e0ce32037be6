//! Skills, written once for both backends (see [`crate::port`]). A scope is
//! a tenant or (`tenant_id` NULL) the gateway; what a tenant sees is its
//! own skills and the gateway's it does not shadow by name (`visible!`).
//! Storing replaces the scope's skill of that name, files and all, in one
//! writing transaction. Search ranks active skills by full text
//! (`$d::skill_fts_from!`, `$d::skill_fts_order!`) and, with a query
//! vector, by cosine over their vectors of that embedder, fused like
//! memories ([`exoclaw_core::store::memory::fuse_by`]).

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::embed::cosine;
        use exoclaw_core::store::memory::fuse_by;
        use exoclaw_core::store::skill::{
            NewSkill, Skill, SkillHit, SkillQuery, SkillStats, SkillStatus, SkillStore,
        };
        use exoclaw_core::store::memory::Embedding;
        use exoclaw_core::store::{StoreError, StoreResult};
        use exoclaw_core::{TenantId, UnixMillis};
        use sqlx::Connection as _;
        use sqlx::Row as _;
        use $crate::{new_id, row, rule};

        /// The columns of a skill (without its vector), as `s.`.
        macro_rules! skill_cols {
            () => {
                "s.id, s.tenant_id, s.name, s.description, s.version, s.tools, s.status, \
                 s.sha256, s.warnings, s.size, s.paths, s.embedder, s.installed_by, \
                 s.installed_at, s.approved_by, s.approved_at"
            };
        }

        /// The skills tenant `?1` sees (its own, and the gateway's it does
        /// not shadow); with `?1` NULL, the gateway's.
        macro_rules! visible {
            () => {
                "(s.tenant_id = ?1 OR (s.tenant_id IS NULL AND NOT EXISTS (SELECT 1 FROM \
                 skills o WHERE o.tenant_id = ?1 AND o.name = s.name)))"
            };
        }

        fn list_json(items: &[String]) -> StoreResult<String> {
            serde_json::to_string(items).map_err(|e| StoreError::Other(e.to_string()))
        }

        #[async_trait]
        impl SkillStore for $store {
            async fn put_skill(
                &self,
                scope: Option<&TenantId>,
                new: &NewSkill,
                now: UnixMillis,
            ) -> StoreResult<Skill> {
                rule::skill::check_new(new)?;
                let scope = scope.map(TenantId::as_str);
                let paths: Vec<String> = new.files.iter().map(|f| f.path.clone()).collect();
                let size: usize = new.files.iter().map(|f| f.content.len()).sum();
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
                    format!("skill/{}/{}", scope.unwrap_or("*"), new.name)
                })
                .await?;
                // The same content, approved before, stays approved.
                let before = sqlx::query($d::sql!(
                    "SELECT s.sha256, s.status, s.approved_by, s.approved_at FROM skills s \
                     WHERE s.tenant_id IS NOT DISTINCT FROM ?1 AND s.name = ?2"
                ))
                .bind(scope)
                .bind(&new.name)
                .fetch_optional(&mut *tx)
                .await
                .map_err($d::err)?;
                let mut status = new.status;
                let mut approved: (Option<String>, Option<i64>) = (None, None);
                if let Some(r) = &before {
                    let sha: String = r.try_get("sha256").map_err($d::err)?;
                    let by: Option<String> = r.try_get("approved_by").map_err($d::err)?;
                    if sha == new.sha256 && by.is_some() {
                        status = SkillStatus::Active;
                        approved = (by, r.try_get("approved_at").map_err($d::err)?);
                    }
                }
                sqlx::query($d::sql!(
                    "DELETE FROM skill_files WHERE skill_id IN (SELECT id FROM skills \
                     WHERE tenant_id IS NOT DISTINCT FROM ?1 AND name = ?2)"
                ))
                .bind(scope)
                .bind(&new.name)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                sqlx::query($d::sql!(
                    "DELETE FROM skills WHERE tenant_id IS NOT DISTINCT FROM ?1 AND name = ?2"
                ))
                .bind(scope)
                .bind(&new.name)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                let id = new_id()?;
                sqlx::query($d::sql!(
                    "INSERT INTO skills (id, tenant_id, name, description, version, tools, \
                     status, sha256, warnings, size, paths, search_text, embedder, embedding, \
                     installed_by, installed_at, approved_by, approved_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ))
                .bind(&id)
                .bind(scope)
                .bind(&new.name)
                .bind(&new.description)
                .bind(&new.version)
                .bind(list_json(&new.tools)?)
                .bind(status.as_str())
                .bind(&new.sha256)
                .bind(list_json(&new.warnings)?)
                .bind(i64::try_from(size).unwrap_or(i64::MAX))
                .bind(list_json(&paths)?)
                .bind(&new.search_text)
                .bind(model)
                .bind(vector.as_deref())
                .bind(&new.installed_by)
                .bind(now)
                .bind(approved.0.as_deref())
                .bind(approved.1)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                for f in &new.files {
                    sqlx::query($d::sql!(
                        "INSERT INTO skill_files (skill_id, path, content) VALUES (?, ?, ?)"
                    ))
                    .bind(&id)
                    .bind(&f.path)
                    .bind(&f.content)
                    .execute(&mut *tx)
                    .await
                    .map_err($d::err)?;
                }
                let r = sqlx::query($d::sql!(
                    "SELECT ",
                    skill_cols!(),
                    " FROM skills s WHERE s.id = ?"
                ))
                .bind(&id)
                .fetch_one(&mut *tx)
                .await
                .map_err($d::err)?;
                let skill = row::skill(&r)?;
                tx.commit().await.map_err($d::err)?;
                Ok(skill)
            }

            async fn get_skill(
                &self,
                scope: Option<&TenantId>,
                name: &str,
            ) -> StoreResult<Option<Skill>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    skill_cols!(),
                    " FROM skills s WHERE s.tenant_id IS NOT DISTINCT FROM ? AND s.name = ?"
                ))
                .bind(scope.map(TenantId::as_str))
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::skill)
                .transpose()
            }

            async fn list_skills(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<Skill>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    skill_cols!(),
                    " FROM skills s WHERE ",
                    visible!(),
                    " ORDER BY s.name"
                ))
                .bind(tenant.map(TenantId::as_str))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::skill)
            }

            async fn read_skill_file(
                &self,
                tenant: Option<&TenantId>,
                name: &str,
                path: &str,
            ) -> StoreResult<Option<(Skill, String)>> {
                let Some(r) = sqlx::query($d::sql!(
                    "SELECT ",
                    skill_cols!(),
                    ", f.content FROM skills s JOIN skill_files f ON f.skill_id = s.id \
                     WHERE ",
                    visible!(),
                    " AND s.name = ?2 AND f.path = ?3"
                ))
                .bind(tenant.map(TenantId::as_str))
                .bind(name)
                .bind(path)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                else {
                    return Ok(None);
                };
                let content: String = r.try_get("content").map_err($d::err)?;
                Ok(Some((row::skill(&r)?, content)))
            }

            async fn search_skills(
                &self,
                tenant: &TenantId,
                q: &SkillQuery,
            ) -> StoreResult<Vec<SkillHit>> {
                let limit = rule::skill::check_query(q)?;
                let words = rule::memory::query_words(&q.text);
                let text = if words.is_empty() {
                    Vec::new()
                } else {
                    // `visible!` reads `?1`: the tenant goes first here and
                    // the full-text query second.
                    let rows = sqlx::query($d::sql!(
                        "SELECT ",
                        skill_cols!(),
                        " FROM ",
                        $d::skill_fts_from!(),
                        " AND (s.tenant_id = ?2 OR (s.tenant_id IS NULL AND NOT EXISTS \
                         (SELECT 1 FROM skills o WHERE o.tenant_id = ?2 AND o.name = s.name))) \
                         AND s.status = 'active' ORDER BY ",
                        $d::skill_fts_order!(),
                        ", s.name LIMIT ",
                        $d::limit!("?3")
                    ))
                    .bind($d::skill_fts_query(&words))
                    .bind(tenant.as_str())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($d::err)?;
                    row::all(&rows, row::skill)?
                };
                let vector = match &q.embedding {
                    None => Vec::new(),
                    Some(e) => {
                        let rows = sqlx::query($d::sql!(
                            "SELECT ",
                            skill_cols!(),
                            ", s.embedding FROM skills s WHERE ",
                            visible!(),
                            " AND s.status = 'active' AND s.embedder = ?2"
                        ))
                        .bind(tenant.as_str())
                        .bind(&e.model)
                        .fetch_all(&self.pool)
                        .await
                        .map_err($d::err)?;
                        let mut scored = Vec::with_capacity(rows.len());
                        for r in &rows {
                            let skill = row::skill(r)?;
                            if let Some(b) = r.try_get::<Option<Vec<u8>>, _>("embedding").map_err($d::err)? {
                                let v = rule::memory::decode_vector(&b)?;
                                scored.push((cosine(&e.vector, &v), skill));
                            }
                        }
                        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
                        scored.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                        scored.into_iter().map(|(_, s)| s).collect()
                    }
                };
                let fused = fuse_by(
                    text,
                    vector,
                    |s: &Skill| s.name.as_str(),
                    |a, b| a.name.cmp(&b.name),
                    usize::try_from(limit).unwrap_or(0),
                );
                Ok(fused
                    .into_iter()
                    .map(|f| SkillHit {
                        skill: f.item,
                        score: f.score,
                        text_rank: f.text_rank,
                        vector_rank: f.vector_rank,
                    })
                    .collect())
            }

            async fn delete_skill(&self, scope: Option<&TenantId>, name: &str) -> StoreResult<()> {
                let scope = scope.map(TenantId::as_str);
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                sqlx::query($d::sql!(
                    "DELETE FROM skill_files WHERE skill_id IN (SELECT id FROM skills \
                     WHERE tenant_id IS NOT DISTINCT FROM ?1 AND name = ?2)"
                ))
                .bind(scope)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                let done = sqlx::query($d::sql!(
                    "DELETE FROM skills WHERE tenant_id IS NOT DISTINCT FROM ?1 AND name = ?2"
                ))
                .bind(scope)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.commit().await.map_err($d::err)?;
                Ok(())
            }

            async fn skills_to_embed(&self, model: &str, limit: u32) -> StoreResult<Vec<Skill>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    skill_cols!(),
                    " FROM skills s WHERE s.embedder IS DISTINCT FROM ? \
                     ORDER BY s.installed_at, s.id LIMIT ",
                    $d::limit!("?")
                ))
                .bind(model)
                .bind(i64::from(limit.clamp(1, 1000)))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::skill)
            }

            async fn set_skill_embedding(
                &self,
                skill: &Skill,
                embedding: &Embedding,
            ) -> StoreResult<bool> {
                let vector = rule::memory::encode_vector(&embedding.vector);
                let mut conn = self.write_conn().await?;
                let done = sqlx::query($d::sql!(
                    "UPDATE skills SET embedder = ?, embedding = ? \
                     WHERE tenant_id IS NOT DISTINCT FROM ? AND name = ? AND sha256 = ? \
                     AND installed_at = ? AND embedder IS DISTINCT FROM ?"
                ))
                .bind(&embedding.model)
                .bind(&vector)
                .bind(skill.tenant_id.as_ref().map(TenantId::as_str))
                .bind(&skill.name)
                .bind(&skill.sha256)
                .bind(skill.installed_at)
                .bind(&embedding.model)
                .execute(&mut *conn)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn skill_stats(
                &self,
                tenant: Option<&TenantId>,
                model: Option<&str>,
            ) -> StoreResult<SkillStats> {
                let r = sqlx::query($d::sql!(
                    "SELECT COUNT(*) AS total, \
                     COUNT(CASE WHEN s.embedder = ?2 THEN 1 END) AS embedded \
                     FROM skills s WHERE (?3 OR ",
                    visible!(),
                    ")"
                ))
                .bind(tenant.map(TenantId::as_str))
                .bind(model)
                .bind(tenant.is_none())
                .fetch_one(&self.pool)
                .await
                .map_err($d::err)?;
                let total: i64 = r.try_get("total").map_err($d::err)?;
                let embedded: i64 = r.try_get("embedded").map_err($d::err)?;
                Ok(SkillStats {
                    total: u64::try_from(total).unwrap_or(0),
                    embedded: u64::try_from(embedded).unwrap_or(0),
                })
            }

            async fn approve_skill(
                &self,
                scope: Option<&TenantId>,
                name: &str,
                sha256: &str,
                by: &str,
                now: UnixMillis,
            ) -> StoreResult<Skill> {
                let Some(found) = self.get_skill(scope, name).await? else {
                    return Err(StoreError::NotFound);
                };
                if found.sha256 != sha256 {
                    return Err(StoreError::Conflict(format!(
                        "skill {name:?} changed since it was reviewed (its content is now {})",
                        found.sha256
                    )));
                }
                if found.status == SkillStatus::Active {
                    return Ok(found);
                }
                let mut conn = self.write_conn().await?;
                let done = sqlx::query($d::sql!(
                    "UPDATE skills SET status = 'active', approved_by = ?, approved_at = ? \
                     WHERE tenant_id IS NOT DISTINCT FROM ? AND name = ? AND sha256 = ?"
                ))
                .bind(by)
                .bind(now)
                .bind(scope.map(TenantId::as_str))
                .bind(name)
                .bind(sha256)
                .execute(&mut *conn)
                .await
                .map_err($d::err)?;
                drop(conn);
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict(format!(
                        "skill {name:?} changed while it was approved"
                    )));
                }
                self.get_skill(scope, name)
                    .await?
                    .ok_or(StoreError::NotFound)
            }
        }
    };
}

pub(crate) use ports;
