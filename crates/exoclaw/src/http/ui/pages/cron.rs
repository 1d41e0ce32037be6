//! Cron jobs (`GET /v1/cron`) and a job's runs (`GET /v1/cron/{id}/runs`).

use super::super::super::cron::{self, CronQuery, RunsQuery};
use super::super::super::extract::{Path, Query};
use super::super::super::state::AppState;
use super::super::table::{TablesPage, section, seg};
use super::super::{Shell, UiError, render};
use axum::Extension;
use axum::extract::State;
use axum::response::Html;

pub async fn list(
    shell: Shell,
    state: State<AppState>,
    q: Query<CronQuery>,
) -> Result<Html<String>, UiError> {
    let list = cron::list(state, Extension(shell.who.clone()), q).await?.0;
    let list = serde_json::to_value(&list).unwrap_or_default();
    let items = list["jobs"].as_array().cloned().unwrap_or_default();
    let table = section(
        "",
        "No cron jobs. Agents schedule them with the `cron` tool; people with `exoclaw cron add`.",
        &items,
        &[
            ("Job", "name"),
            ("Agent", "agent"),
            ("Schedule", "schedule"),
            ("Enabled", "enabled"),
            ("State", "state"),
            ("Next run (UTC)", "next_run_at"),
            ("Last run (UTC)", "last_run_at"),
        ],
    )
    .link(0, |j| {
        j["id"].as_str().map(|id| format!("/ui/cron/{}", seg(id)))
    });
    render(&TablesPage {
        shell,
        title: "Cron jobs".to_owned(),
        intro: String::new(),
        sections: vec![table],
        live: true,
        upload: None,
    })
}

pub async fn runs(
    shell: Shell,
    state: State<AppState>,
    id: Path<String>,
    q: Query<RunsQuery>,
) -> Result<Html<String>, UiError> {
    let job = id.0.clone();
    let list = cron::runs(state, Extension(shell.who.clone()), id, q)
        .await?
        .0;
    let list = serde_json::to_value(&list).unwrap_or_default();
    let items = list["runs"].as_array().cloned().unwrap_or_default();
    let table = section(
        "",
        "This job has not run yet.",
        &items,
        &[
            ("Due (UTC)", "due_at"),
            ("Status", "status"),
            ("Started (UTC)", "started_at"),
            ("Finished (UTC)", "finished_at"),
            ("Error", "error"),
            ("Run", "trace_id"),
        ],
    )
    .link(5, |r| {
        r["trace_id"]
            .as_str()
            .map(|t| format!("/ui/traces/{}", seg(t)))
    });
    render(&TablesPage {
        shell,
        title: format!("Cron job {job}: runs"),
        intro: String::new(),
        sections: vec![table],
        live: true,
        upload: None,
    })
}
