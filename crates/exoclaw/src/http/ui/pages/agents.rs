//! Agents (`GET /v1/agents`).

use super::super::super::agents::{self, AgentView};
use super::super::super::state::AppState;
use super::super::{Shell, UiError, render, when};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Html;

#[derive(Template)]
#[template(path = "ui/agents.html")]
struct Page {
    shell: Shell,
    agents: Vec<AgentView>,
}

impl Page {
    fn when(&self, ms: &i64) -> String {
        when(*ms)
    }
}

pub async fn list(shell: Shell, state: State<AppState>) -> Result<Html<String>, UiError> {
    let agents = agents::list(state, Extension(shell.who.clone()))
        .await?
        .0
        .agents;
    render(&Page { shell, agents })
}
