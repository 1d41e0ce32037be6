//! The memory browser (`GET /v1/memory`, `?q=` to search, `GET
//! /v1/memory/status`) and forgetting one (`DELETE /v1/memory/{id}`).

use super::super::super::extract::{Path, Query};
use super::super::super::memory::{self, MemoryQueryParams};
use super::super::super::state::AppState;
use super::super::table::{Action, TablesPage, section, seg};
use super::super::{Shell, UiError, render};
use axum::Extension;
use axum::extract::State;
use axum::response::{Html, Redirect};

pub async fn list(
    shell: Shell,
    state: State<AppState>,
    q: Query<MemoryQueryParams>,
) -> Result<Html<String>, UiError> {
    let who = Extension(shell.who.clone());
    let status = memory::status(state.clone(), who.clone()).await?.0;
    let status = serde_json::to_value(&status).unwrap_or_default();
    let found = memory::list(state, who, q).await?.0;
    let found = serde_json::to_value(&found).unwrap_or_default();
    let items = found["memories"].as_array().cloned().unwrap_or_default();
    let table = section(
        "",
        "No memories match. Agents save what they should remember with `memory_save`.",
        &items,
        &[
            ("Memory", "content"),
            ("Agent", "agent"),
            ("User", "user"),
            ("Shared", "shared"),
            ("Untrusted", "untrusted"),
            ("Importance", "importance"),
            ("Updated (UTC)", "updated_at"),
        ],
    )
    .actions(|m| {
        m["id"]
            .as_str()
            .map(|id| {
                vec![Action::danger(
                    "Forget",
                    format!("/ui/memory/{}/forget", seg(id)),
                    "Forget this memory?",
                )]
            })
            .unwrap_or_default()
    });
    let embedder = status["embedder"]
        .as_str()
        .map_or_else(|| "none: full-text search only".to_owned(), str::to_owned);
    render(&TablesPage {
        shell,
        title: "Memory".to_owned(),
        intro: format!(
            "{} memories, {} with a vector of the current embedder ({embedder}). Search with ?q=words.",
            status["total"], status["embedded"]
        ),
        sections: vec![table],
        live: false,
        upload: None,
    })
}

pub async fn forget(
    shell: Shell,
    state: State<AppState>,
    id: Path<String>,
) -> Result<Redirect, UiError> {
    memory::forget(state, Extension(shell.who), id).await?;
    Ok(Redirect::to("/ui/memory"))
}
