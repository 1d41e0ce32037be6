//! Agent teams (`GET /v1/teams`) and a team's task board
//! (`GET /v1/teams/{id}/tasks`), one table per task status.

use super::super::super::extract::{Path, Query};
use super::super::super::state::AppState;
use super::super::super::teams::{self, tasks};
use super::super::table::{TablesPage, section, seg};
use super::super::{Shell, UiError, render};
use axum::Extension;
use axum::extract::State;
use axum::response::Html;
use serde_json::Value;

pub async fn list(shell: Shell, state: State<AppState>) -> Result<Html<String>, UiError> {
    let teams = teams::list(state, Extension(shell.who.clone())).await?.0;
    let teams = serde_json::to_value(&teams).unwrap_or_default();
    let items = teams["teams"].as_array().cloned().unwrap_or_default();
    let table = section(
        "",
        "No teams yet. A team is a lead agent and its members sharing a task board \
         (`exoclaw team create`, `POST /v1/teams`).",
        &items,
        &[
            ("Team", "id"),
            ("Name", "name"),
            ("Lead", "lead"),
            ("Members", "members"),
            ("Updated (UTC)", "updated_at"),
        ],
    )
    .link(0, |t| {
        t["id"].as_str().map(|id| format!("/ui/teams/{}", seg(id)))
    });
    render(&TablesPage {
        shell,
        title: "Teams".to_owned(),
        intro: String::new(),
        sections: vec![table],
        live: false,
        upload: None,
    })
}

pub async fn board(
    shell: Shell,
    state: State<AppState>,
    id: Path<String>,
    q: Query<tasks::TasksQuery>,
) -> Result<Html<String>, UiError> {
    let team = id.0.clone();
    let list = tasks::list(state, Extension(shell.who.clone()), id, q)
        .await?
        .0;
    let list = serde_json::to_value(&list).unwrap_or_default();
    let all = list["tasks"].as_array().cloned().unwrap_or_default();
    let sections = [
        ("In progress", "in_progress"),
        ("Pending", "pending"),
        ("Blocked", "blocked"),
        ("Done", "done"),
        ("Failed", "failed"),
    ]
    .into_iter()
    .map(|(title, status)| {
        let items: Vec<Value> = all
            .iter()
            .filter(|t| t["status"] == status)
            .cloned()
            .collect();
        section(
            title,
            "None.",
            &items,
            &[
                ("Task", "title"),
                ("Owner", "owner"),
                ("Blocked by", "blocked_by"),
                ("Result", "result"),
                ("Updated (UTC)", "updated_at"),
            ],
        )
    })
    .collect();
    render(&TablesPage {
        shell,
        title: format!("Team {team}: task board"),
        intro: "Tasks move from pending (or blocked) to in progress when a member claims one, then to done or failed.".to_owned(),
        sections,
        live: true,
        upload: None,
    })
}
