//! MCP servers as tool sources (`GET /v1/mcp/servers`) and the grants that
//! offer their tools to agents (`GET /v1/mcp/grants`).

use super::super::super::mcp;
use super::super::super::state::AppState;
use super::super::table::{TablesPage, section};
use super::super::{Shell, UiError, render};
use axum::Extension;
use axum::extract::State;
use axum::response::Html;

pub async fn list(shell: Shell, state: State<AppState>) -> Result<Html<String>, UiError> {
    let who = Extension(shell.who.clone());
    let servers = mcp::list(state.clone(), who.clone()).await?.0;
    let servers = serde_json::to_value(&servers).unwrap_or_default();
    let grants = mcp::grants(state, who).await?.0;
    let grants = serde_json::to_value(&grants).unwrap_or_default();
    let servers = section(
        "Servers",
        "No MCP servers (`exoclaw mcp add`, `POST /v1/mcp/servers`).",
        servers["servers"].as_array().map_or(&[][..], Vec::as_slice),
        &[
            ("Server", "name"),
            ("Transport", "transport"),
            ("State", "state"),
            ("Tools", "tools"),
            ("Error", "error"),
            ("Updated (UTC)", "updated_at"),
        ],
    );
    let grants = section(
        "Grants",
        "No grants: no agent is offered an MCP server's tools.",
        grants["grants"].as_array().map_or(&[][..], Vec::as_slice),
        &[("Server", "server"), ("Agent", "agent"), ("User", "user")],
    );
    render(&TablesPage {
        shell,
        title: "MCP servers".to_owned(),
        intro: String::new(),
        sections: vec![servers, grants],
        live: true,
        upload: None,
    })
}
