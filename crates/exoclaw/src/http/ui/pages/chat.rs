//! Chat with an agent: the page lists the agents the caller may talk to;
//! the script talks over the WebSocket (`chat.send` and its events, tool
//! calls as they run, `approvals.*` inline, `chat.stop`), which the session
//! cookie authenticates and each method's permission guards.

use super::super::super::agents::{self, AgentView};
use super::super::super::state::AppState;
use super::super::{Shell, UiError, render};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Html;
use exoclaw_gateway::access::Permission;

#[derive(Template)]
#[template(path = "ui/chat.html")]
struct Page {
    shell: Shell,
    agents: Vec<AgentView>,
}

pub async fn page(shell: Shell, state: State<AppState>) -> Result<Html<String>, UiError> {
    // Chat needs the agents' ids; a chat-only key (no agents.read) types one.
    let agents = if shell.who.can(Permission::AgentsRead) {
        agents::list(state, Extension(shell.who.clone()))
            .await?
            .0
            .agents
    } else {
        Vec::new()
    };
    render(&Page { shell, agents })
}
