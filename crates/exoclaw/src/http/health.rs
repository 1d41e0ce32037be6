//! Probes and status: `/healthz` (alive), `/readyz` (store reachable and
//! schema current), `/v1/status` (authenticated details).

use super::error::ApiError;
use super::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use exoclaw_gateway::access::Principal;
use serde_json::{Value, json};
use std::time::Duration;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 only when the store answers and its schema is the one this binary
/// needs. The reason is a stable word, never an internal error text.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Ok(Err(reason)) => not_ready(reason),
        Err(_) => not_ready("store_timeout"),
    }
}

fn not_ready(reason: &str) -> (StatusCode, Json<Value>) {
    tracing::warn!(reason, "not ready");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "not_ready", "reason": reason})),
    )
}

pub async fn status(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let schema = state.store.schema_status().await?;
    Ok(Json(json!({
        "version": exoclaw_gateway::version::VERSION,
        "commit": exoclaw_gateway::version::COMMIT,
        "protocol_version": exoclaw_gateway::version::PROTOCOL_VERSION,
        "storage": state.store.backend().to_string(),
        "schema": {"current": schema.current, "latest": schema.latest},
        "uptime_sec": state.started.elapsed().as_secs(),
        "active_runs": state.runtime.runs.active(),
        "principal": {"actor": who.actor, "role": who.role, "tenant": who.tenant},
    })))
}
