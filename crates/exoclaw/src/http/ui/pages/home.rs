//! The overview: the gateway's status (`GET /v1/status`).

use super::super::super::health::{self, Status};
use super::super::super::state::AppState;
use super::super::{Shell, UiError, render};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Html;

#[derive(Template)]
#[template(path = "ui/home.html")]
struct Page {
    shell: Shell,
    status: Status,
}

pub async fn page(shell: Shell, state: State<AppState>) -> Result<Html<String>, UiError> {
    let status = health::status(state, Extension(shell.who.clone())).await?.0;
    render(&Page { shell, status })
}
