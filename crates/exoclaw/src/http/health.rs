//! Probes and status: `/healthz` (alive), `/readyz` (store reachable and
//! schema current), `/v1/status` (authenticated details).

use super::error::ApiError;
use super::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use exoclaw_core::TenantId;
use exoclaw_core::model::Role;
use exoclaw_gateway::access::Principal;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
pub struct Alive {
    #[schema(schema_with = alive_words)]
    pub status: &'static str,
}

fn alive_words() -> utoipa::openapi::schema::Object {
    super::schema::words(&["ok"])
}

/// Ready (`status: ready`) or not (`status: not_ready` with a reason).
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(schema_with = ready_words)]
    pub status: &'static str,
    /// Why not: `store_unreachable`, `schema_not_current` or `store_timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = reason_words)]
    pub reason: Option<&'static str>,
}

fn ready_words() -> utoipa::openapi::schema::Object {
    super::schema::words(&["ready", "not_ready"])
}

fn reason_words() -> utoipa::openapi::schema::Object {
    super::schema::words(&["store_unreachable", "schema_not_current", "store_timeout"])
}

/// Whether the process is alive (no credential, no store call).
#[utoipa::path(get, path = "/healthz", tag = "status",
    responses((status = 200, description = "Alive", body = Alive)))]
pub async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

/// Whether the gateway can serve: 200 only when the store answers and its
/// schema is the one this binary needs. The reason is a stable word, never an
/// internal error text.
#[utoipa::path(get, path = "/readyz", tag = "status",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready, with the reason", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let check = async {
        state.store.ping().await.map_err(|_| "store_unreachable")?;
        let status = state
            .store
            .schema_status()
            .await
            .map_err(|_| "store_unreachable")?;
        if status.is_current() {
            Ok(())
        } else {
            Err("schema_not_current")
        }
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                reason: None,
            }),
        ),
        Ok(Err(reason)) => not_ready(reason),
        Err(_) => not_ready("store_timeout"),
    }
}

fn not_ready(reason: &'static str) -> (StatusCode, Json<Readiness>) {
    tracing::warn!(reason, "not ready");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Readiness {
            status: "not_ready",
            reason: Some(reason),
        }),
    )
}

/// The gateway's version, storage and load, and who is asking.
#[derive(Serialize, ToSchema)]
pub struct Status {
    pub version: &'static str,
    /// The git commit the binary was built from.
    pub commit: &'static str,
    /// The WebSocket protocol version (docs/protocol.md).
    pub protocol_version: u32,
    /// `sqlite` or `postgres`.
    pub storage: String,
    pub schema: SchemaVersion,
    pub uptime_sec: u64,
    /// Agent runs in progress.
    pub active_runs: usize,
    pub principal: StatusPrincipal,
}

/// The store's schema version and the one this binary needs.
#[derive(Serialize, ToSchema)]
pub struct SchemaVersion {
    pub current: i64,
    pub latest: i64,
}

/// Who the credential is.
#[derive(Serialize, ToSchema)]
pub struct StatusPrincipal {
    pub actor: String,
    #[schema(schema_with = super::schema::role)]
    pub role: Role,
    #[schema(value_type = String)]
    pub tenant: TenantId,
}

/// The gateway's status.
#[utoipa::path(get, path = "/v1/status", tag = "status",
    responses((status = 200, description = "Status", body = Status)))]
pub async fn status(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Status>, ApiError> {
    let schema = state.store.schema_status().await?;
    Ok(Json(Status {
        version: exoclaw_gateway::version::VERSION,
        commit: exoclaw_gateway::version::COMMIT,
        protocol_version: exoclaw_gateway::version::PROTOCOL_VERSION,
        storage: state.store.backend().to_string(),
        schema: SchemaVersion {
            current: schema.current,
            latest: schema.latest,
        },
        uptime_sec: state.started.elapsed().as_secs(),
        active_runs: state.runtime.runs.active(),
        principal: StatusPrincipal {
            actor: who.actor,
            role: who.role,
            tenant: who.tenant,
        },
    }))
}
