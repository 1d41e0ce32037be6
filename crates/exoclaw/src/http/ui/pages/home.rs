//! The overview: the gateway's status (`GET /v1/status`) and, for the
//! gateway's own people (alerts are gateway-wide), the alerts raised lately.

use super::super::super::health::{self, Status};
use super::super::super::state::AppState;
use super::super::{Shell, UiError, render, when};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Html;

/// An alert as the overview lists it.
struct AlertRow {
    at: String,
    event: &'static str,
    severity: &'static str,
    subject: String,
    summary: String,
}

#[derive(Template)]
#[template(path = "ui/home.html")]
struct Page {
    shell: Shell,
    status: Status,
    /// `None`: not shown (alerts are not watched, or not this caller's to see).
    alerts: Option<Vec<AlertRow>>,
}

pub async fn page(shell: Shell, state: State<AppState>) -> Result<Html<String>, UiError> {
    let alerts = state
        .runtime
        .alerts()
        .filter(|_| shell.who.is_gateway_level())
        .map(|a| {
            a.recent()
                .into_iter()
                .map(|r| AlertRow {
                    at: when(r.at_ms),
                    event: r.event,
                    severity: r.severity,
                    subject: r.subject,
                    summary: r.summary,
                })
                .collect()
        });
    let status = health::status(state, Extension(shell.who.clone())).await?.0;
    render(&Page {
        shell,
        status,
        alerts,
    })
}
