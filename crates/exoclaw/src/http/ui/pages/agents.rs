//! Agents (`GET /v1/agents`), with the form that creates one (`agent.rs`).

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
    can_write: bool,
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
    let can_write = shell
        .who
        .can(exoclaw_gateway::access::Permission::AgentsWrite);
    render(&Page {
        shell,
        agents,
        can_write,
    })
}
