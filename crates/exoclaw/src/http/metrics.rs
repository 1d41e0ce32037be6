//! `GET /metrics`: the gateway's metrics as OpenMetrics text, the gauges
//! refreshed at each scrape.

use super::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse as _, Response};

/// The gateway's metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "status",
    responses((status = 200, description = "OpenMetrics text",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.runtime.metrics;
    m.runs_active
        .set(i64::try_from(state.runtime.runs.active()).unwrap_or(i64::MAX));
    let (authenticated, unauthenticated) = state.conns.counts();
    for (label, n) in [
        ("authenticated", authenticated),
        ("unauthenticated", unauthenticated),
    ] {
        m.connections
            .get_or_create(&exoclaw_gateway::metrics::ConnStateLabels {
                state: label.to_owned(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    for c in state.channels.status().await {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        m.set_channel(
            &c.name,
            &[
                ("inbound", n(c.inbound)),
                ("duplicate", n(c.duplicates)),
                ("sent", n(c.sent)),
                ("failed", n(c.failed)),
                ("dead", n(c.dead)),
                ("busy", n(c.busy)),
            ],
            &[
                ("queued", c.queue_depth),
                ("pending", n(c.pending)),
                ("restarts", n(c.restarts)),
                ("up", i64::from(c.running)),
            ],
        );
    }
    let (sessions, bytes) = state.runtime.windows.usage();
    m.window_cache_sessions
        .set(i64::try_from(sessions).unwrap_or(i64::MAX));
    m.window_cache_bytes
        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    m.refresh_budgets(
        &state.runtime.settings.config.budgets,
        state.runtime.usage().as_ref(),
        now,
    )
    .await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}
