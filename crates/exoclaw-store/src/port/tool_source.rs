//! Tool sources added at run time (custom tools, MCP servers) and their
//! grants, written once for both backends (see [`crate::port`]). A grant
//! references its source (deleting the source deletes its grants; a grant
//! of a missing source is `NotFound`); "every user" is stored as `''` so
//! that the primary key covers it.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::store::{
            StoreError, StoreResult, ToolGrant, ToolSource, ToolSourceKind, ToolSourceStore,
        };
        use exoclaw_core::{TenantId, UnixMillis};
        use $crate::row;

        fn spec_text(source: &ToolSource) -> StoreResult<String> {
            serde_json::to_string(&source.spec)
                .map_err(|e| StoreError::Invalid(format!("spec: {e}")))
        }

        #[async_trait]
        impl ToolSourceStore for $store {
            async fn put_tool_source(&self, source: &ToolSource) -> StoreResult<()> {
                if source.name.is_empty() {
                    return Err(StoreError::Invalid("name: must not be empty".into()));
                }
                sqlx::query($d::sql!(
                    "INSERT INTO tool_sources (tenant_id, kind, name, spec, created_at, \
                     updated_at) VALUES (?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (tenant_id, kind, name) DO UPDATE SET \
                     spec = excluded.spec, updated_at = excluded.updated_at"
                ))
                .bind(source.tenant_id.as_str())
                .bind(source.kind.as_str())
                .bind(&source.name)
                .bind(spec_text(source)?)
                .bind(source.created_at)
                .bind(source.updated_at)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(())
            }

            async fn get_tool_source(
                &self,
                tenant: &TenantId,
                kind: ToolSourceKind,
                name: &str,
            ) -> StoreResult<Option<ToolSource>> {
                sqlx::query($d::sql!(
                    "SELECT tenant_id, kind, name, spec, created_at, updated_at \
                     FROM tool_sources WHERE tenant_id = ? AND kind = ? AND name = ?"
                ))
                .bind(tenant.as_str())
                .bind(kind.as_str())
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::tool_source)
                .transpose()
            }

            async fn list_tool_sources(
                &self,
                tenant: Option<&TenantId>,
                kind: ToolSourceKind,
            ) -> StoreResult<Vec<ToolSource>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT tenant_id, kind, name, spec, created_at, updated_at \
                     FROM tool_sources WHERE (?1 IS NULL OR tenant_id = ?1) AND kind = ?2 \
                     ORDER BY tenant_id, name"
                ))
                .bind(tenant.map(TenantId::as_str))
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::tool_source)
            }

            async fn delete_tool_source(
                &self,
                tenant: &TenantId,
                kind: ToolSourceKind,
                name: &str,
            ) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "DELETE FROM tool_sources WHERE tenant_id = ? AND kind = ? AND name = ?"
                ))
                .bind(tenant.as_str())
                .bind(kind.as_str())
                .bind(name)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                $crate::rule::found(done.rows_affected())
            }

            async fn put_tool_grant(&self, grant: &ToolGrant, now: UnixMillis) -> StoreResult<()> {
                if grant.agent.as_str().is_empty() {
                    return Err(StoreError::Invalid("agent: must not be empty".into()));
                }
                sqlx::query($d::sql!(
                    "INSERT INTO tool_grants (tenant_id, kind, source, agent_id, user_id, \
                     created_at) VALUES (?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (tenant_id, kind, source, agent_id, user_id) DO NOTHING"
                ))
                .bind(grant.tenant_id.as_str())
                .bind(grant.kind.as_str())
                .bind(&grant.source)
                .bind(grant.agent.as_str())
                .bind(grant.user.as_ref().map_or("", |u| u.as_str()))
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(())
            }

            async fn list_tool_grants(
                &self,
                tenant: Option<&TenantId>,
                kind: ToolSourceKind,
            ) -> StoreResult<Vec<ToolGrant>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT tenant_id, kind, source, agent_id, user_id FROM tool_grants \
                     WHERE (?1 IS NULL OR tenant_id = ?1) AND kind = ?2 \
                     ORDER BY tenant_id, source, agent_id, user_id"
                ))
                .bind(tenant.map(TenantId::as_str))
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::tool_grant)
            }

            async fn delete_tool_grant(&self, grant: &ToolGrant) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "DELETE FROM tool_grants WHERE tenant_id = ? AND kind = ? AND source = ? \
                     AND agent_id = ? AND user_id = ?"
                ))
                .bind(grant.tenant_id.as_str())
                .bind(grant.kind.as_str())
                .bind(&grant.source)
                .bind(grant.agent.as_str())
                .bind(grant.user.as_ref().map_or("", |u| u.as_str()))
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                $crate::rule::found(done.rows_affected())
            }
        }
    };
}

pub(crate) use ports;
