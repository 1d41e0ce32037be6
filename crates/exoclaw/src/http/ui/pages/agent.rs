//! One agent: its settings edited (`PATCH /v1/agents/{id}`: display name,
//! type, the settings object, checked as the runtime reads them), its
//! permission links (`GET /v1/agents/{id}/links`), deleting it (`DELETE
//! /v1/agents/{id}`); and creating one (`POST /v1/agents`). The forms post
//! here; the API's refusal (a setting out of range, with its field named)
//! is shown on the form, which keeps what was typed. Its context files
//! (`/v1/agents/{id}/files`): each shown, replaced or removed from its own
//! form.

use super::super::super::agent_files::{self, PutFile};
use super::super::super::agents::{self, AgentView, CreateAgent, UpdateAgent};
use super::super::super::extract::{Body, Path};
use super::super::super::orchestration::links;
use super::super::super::state::{AppState, RequestId};
use super::super::form::{api, field};
use super::super::table::{Section, section, seg};
use super::super::{Shell, UiError, render};
use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use exoclaw_gateway::access::Permission;
use serde_json::{Value, json};

#[derive(Template)]
#[template(path = "ui/agent.html")]
struct Page {
    shell: Shell,
    id: String,
    display_name: String,
    open: bool,
    config: String,
    error: String,
    links: Section,
    can_write: bool,
    files: Vec<FileRow>,
    max_bytes: usize,
}

/// A context file on the page.
struct FileRow {
    name: String,
    exists: bool,
    bytes: u64,
    content: String,
}

async fn page(
    shell: Shell,
    state: State<AppState>,
    agent: AgentView,
    config: String,
    error: String,
) -> Result<Html<String>, UiError> {
    let list = links::list(
        state.clone(),
        Extension(shell.who.clone()),
        Path(agent.id.to_string()),
    )
    .await?
    .0;
    let list = serde_json::to_value(&list).unwrap_or_default();
    let who = Extension(shell.who.clone());
    let listed = agent_files::list(state.clone(), who.clone(), Path(agent.id.to_string()))
        .await?
        .0;
    let mut files = Vec::new();
    for f in listed.files {
        let content = if f.exists {
            agent_files::read(
                state.clone(),
                who.clone(),
                Path((agent.id.to_string(), f.name.clone())),
            )
            .await
            .map(|t| t.0.content)
            .unwrap_or_default()
        } else {
            String::new()
        };
        files.push(FileRow {
            name: f.name,
            exists: f.exists,
            bytes: f.bytes,
            content,
        });
    }
    let links = section(
        "Permission links",
        "No links: this agent delegates to no one, and no one to it \
         (`exoclaw agent link SOURCE TARGET`).",
        list["links"].as_array().map_or(&[][..], Vec::as_slice),
        &[
            ("From", "source"),
            ("To", "target"),
            ("Direction", "direction"),
            ("At most at once", "max_concurrent"),
        ],
    );
    render(&Page {
        can_write: shell.who.can(Permission::AgentsWrite),
        id: agent.id.to_string(),
        display_name: agent.display_name,
        open: agent.agent_type == exoclaw_core::model::AgentType::Open,
        config,
        error,
        links,
        files,
        max_bytes: listed.max_bytes,
        shell,
    })
}

pub async fn show(
    shell: Shell,
    state: State<AppState>,
    id: Path<String>,
) -> Result<Html<String>, UiError> {
    let agent = agents::get(state.clone(), Extension(shell.who.clone()), id)
        .await?
        .0;
    let config = serde_json::to_string_pretty(&agent.config).unwrap_or_default();
    page(shell, state, agent, config, String::new()).await
}

/// The settings object of a form, or why it is not one.
fn config_of(text: &str) -> Result<Value, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("settings: a JSON object, such as {\"max_iterations\": 10}".to_owned()),
        Err(e) => Err(format!("settings: not JSON ({e})")),
    }
}

pub async fn update(
    shell: Shell,
    state: State<AppState>,
    rid: Extension<RequestId>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    let typed = field(&body, "config");
    let who = Extension(shell.who.clone());
    let outcome = match config_of(&typed) {
        Err(e) => Err(e),
        Ok(config) => {
            let change: UpdateAgent = api(json!({
                "display_name": field(&body, "display_name"),
                "agent_type": if field(&body, "agent_type") == "predefined" { "predefined" } else { "open" },
                "config": config,
            }))?;
            agents::update(
                state.clone(),
                who.clone(),
                rid,
                Path(id.clone()),
                Body(change),
            )
            .await
            .map_err(|e| e.message)
        }
    };
    match outcome {
        Ok(_) => Ok(Redirect::to(&format!("/ui/agents/{}", seg(&id))).into_response()),
        Err(error) => {
            let agent = agents::get(state.clone(), who, Path(id)).await?.0;
            Ok(page(shell, state, agent, typed, error)
                .await?
                .into_response())
        }
    }
}

pub async fn create(
    shell: Shell,
    state: State<AppState>,
    rid: Extension<RequestId>,
    body: Bytes,
) -> Result<Redirect, UiError> {
    let id = field(&body, "id");
    let new: CreateAgent = api(json!({
        "id": id,
        "display_name": Some(field(&body, "display_name")).filter(|n| !n.is_empty()),
    }))?;
    let _created = agents::create(state, Extension(shell.who), rid, Body(new)).await?;
    Ok(Redirect::to(&format!("/ui/agents/{}", seg(&id))))
}

pub async fn delete(
    shell: Shell,
    state: State<AppState>,
    rid: Extension<RequestId>,
    id: Path<String>,
) -> Result<Redirect, UiError> {
    agents::delete(state, Extension(shell.who), rid, id).await?;
    Ok(Redirect::to("/ui/agents"))
}

/// Replaces a context file with the form's text (browsers send CRLF line
/// ends; the file gets LF and a final newline).
pub async fn write_file(
    shell: Shell,
    state: State<AppState>,
    rid: Extension<RequestId>,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Redirect, UiError> {
    let mut content = field(&body, "content").replace("\r\n", "\n");
    if !content.is_empty() {
        content.push('\n');
    }
    let _written = agent_files::write(
        state,
        Extension(shell.who),
        rid,
        Path((id.clone(), name.clone())),
        Body(PutFile { content }),
    )
    .await?;
    Ok(Redirect::to(&format!(
        "/ui/agents/{}#file-{}",
        seg(&id),
        seg(&name)
    )))
}

pub async fn delete_file(
    shell: Shell,
    state: State<AppState>,
    rid: Extension<RequestId>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Redirect, UiError> {
    agent_files::delete(state, Extension(shell.who), rid, Path((id.clone(), name))).await?;
    Ok(Redirect::to(&format!("/ui/agents/{}", seg(&id))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn settings_must_be_an_object() {
        assert_eq!(super::config_of("").unwrap(), serde_json::json!({}));
        assert!(super::config_of("{\"max_iterations\": 3}").is_ok());
        assert!(super::config_of("[1]").unwrap_err().contains("object"));
        assert!(super::config_of("{").unwrap_err().contains("not JSON"));
    }
}
