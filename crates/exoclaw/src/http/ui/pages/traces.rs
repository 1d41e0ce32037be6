//! Traces: the list (`GET /v1/traces`) and one run's waterfall
//! (`GET /v1/traces/{id}`): each span placed on the run's time line, with
//! its model, tokens, cache reads and writes, cost and latency. The bars are
//! SVG geometry, not inline styles, so the CSP needs no `unsafe-inline`.

use super::super::super::extract::{Path, Query};
use super::super::super::sessions::{self, TraceView, TracesQuery};
use super::super::super::state::AppState;
use super::super::{Shell, UiError, render, when};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Html;

/// Micro-dollars as dollars.
fn dollars(micros: i64) -> String {
    if micros == 0 {
        return "$0".to_owned();
    }
    format!("${:.6}", micros as f64 / 1e6)
}

/// A trace as a row of the list.
struct Row {
    id: String,
    started: String,
    name: String,
    agent: String,
    status: String,
    tokens: String,
    cache: String,
    cost: String,
    latency: String,
}

impl From<&TraceView> for Row {
    fn from(t: &TraceView) -> Self {
        Self {
            id: t.id.clone(),
            started: when(t.started_at),
            name: t.name.clone(),
            agent: t
                .agent_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            status: t.status.clone(),
            tokens: format!("{} / {}", t.usage.input_tokens, t.usage.output_tokens),
            cache: format!(
                "{} / {}",
                t.usage.cache_read_tokens, t.usage.cache_write_tokens
            ),
            cost: dollars(t.cost_micros),
            latency: t.ended_at.map_or_else(
                || "running".to_owned(),
                |end| format!("{} ms", end - t.started_at),
            ),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/traces.html")]
struct ListPage {
    shell: Shell,
    rows: Vec<Row>,
    next: Option<String>,
}

pub async fn list(
    shell: Shell,
    state: State<AppState>,
    q: Query<TracesQuery>,
) -> Result<Html<String>, UiError> {
    let page = sessions::traces(state, Extension(shell.who.clone()), q)
        .await?
        .0;
    let rows = page.traces.iter().map(Row::from).collect();
    let next = page
        .next_cursor
        .map(|c| url::form_urlencoded::byte_serialize(c.as_bytes()).collect());
    render(&ListPage { shell, rows, next })
}

/// A span on the waterfall: where its bar starts and how wide it is, in
/// percent of the run.
struct Bar {
    kind: &'static str,
    name: String,
    model: String,
    status: String,
    error: String,
    tokens: String,
    cache: String,
    cost: String,
    latency: String,
    offset: String,
    width: String,
}

/// Where a span's bar starts and how wide it is, in percent of the run:
/// at least half a percent wide (a visible mark), never past the end.
fn geometry(after_start_ms: i64, latency_ms: i64, total_ms: f64) -> (f64, f64) {
    let offset = (after_start_ms.max(0) as f64 / total_ms * 100.0).min(99.5);
    let width = (latency_ms.max(0) as f64 / total_ms * 100.0)
        .max(0.5)
        .min(100.0 - offset);
    (offset, width)
}

#[derive(Template)]
#[template(path = "ui/trace.html")]
struct ShowPage {
    shell: Shell,
    trace: Row,
    session: String,
    error: String,
    bars: Vec<Bar>,
}

pub async fn show(
    shell: Shell,
    state: State<AppState>,
    id: Path<String>,
) -> Result<Html<String>, UiError> {
    let detail = sessions::trace(state, Extension(shell.who.clone()), id)
        .await?
        .0;
    let t = &detail.trace;
    let start = t.started_at;
    let end = detail
        .spans
        .iter()
        .map(|s| s.started_at + s.latency_ms)
        .chain(t.ended_at)
        .max()
        .unwrap_or(start);
    let total = (end - start).max(1) as f64;
    let bars = detail
        .spans
        .iter()
        .map(|s| {
            let (offset, width) = geometry(s.started_at - start, s.latency_ms, total);
            let model = s
                .attributes
                .get("model")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .or_else(|| s.provider.clone())
                .unwrap_or_default();
            Bar {
                kind: s.kind.as_str(),
                name: s.name.clone(),
                model,
                status: s.status.clone(),
                error: s.error.clone().unwrap_or_default(),
                tokens: format!("{} / {}", s.usage.input_tokens, s.usage.output_tokens),
                cache: format!(
                    "{} / {}",
                    s.usage.cache_read_tokens, s.usage.cache_write_tokens
                ),
                cost: dollars(s.cost_micros),
                latency: format!("{} ms", s.latency_ms),
                offset: format!("{offset:.2}"),
                width: format!("{width:.2}"),
            }
        })
        .collect();
    render(&ShowPage {
        session: t
            .session_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        error: t.error.clone().unwrap_or_default(),
        trace: Row::from(t),
        shell,
        bars,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars_stay_inside_the_run() {
        use super::geometry;
        assert_eq!(geometry(0, 50, 100.0), (0.0, 50.0));
        assert_eq!(geometry(50, 0, 100.0), (50.0, 0.5));
        // A span that starts as the run ends, or runs past it.
        assert_eq!(geometry(100, 0, 100.0), (99.5, 0.5));
        assert_eq!(geometry(90, 500, 100.0), (90.0, 10.0));
        assert_eq!(geometry(-5, 10, 100.0), (0.0, 10.0));
    }

    #[test]
    fn costs_read_as_dollars() {
        assert_eq!(super::dollars(0), "$0");
        assert_eq!(super::dollars(1_234), "$0.001234");
        assert_eq!(super::dollars(2_500_000), "$2.500000");
    }
}
