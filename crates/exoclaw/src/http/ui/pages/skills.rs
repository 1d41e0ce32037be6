//! Skills (`GET /v1/skills`): installed, pinned by their SHA-256, active or
//! quarantined; approving a quarantined one (`POST /v1/skills/{name}/approve`)
//! and removing one (`DELETE /v1/skills/{name}`); installing one from a
//! `.tar.gz` or `.zip` (`POST /v1/skills`, the file sent by the page's
//! script) for those who may change agents.

use super::super::super::extract::{Path, Query};
use super::super::super::skills;
use super::super::super::state::{AppState, RequestId};
use super::super::table::{Action, TablesPage, Upload, section, seg};
use super::super::{Shell, UiError, render};
use axum::Extension;
use axum::extract::State;
use axum::response::{Html, Redirect};

pub async fn list(shell: Shell, state: State<AppState>) -> Result<Html<String>, UiError> {
    let can_install = shell
        .who
        .can(exoclaw_gateway::access::Permission::AgentsWrite);
    let list = skills::list(state, Extension(shell.who.clone())).await?.0;
    let list = serde_json::to_value(&list).unwrap_or_default();
    let items = list["skills"].as_array().cloned().unwrap_or_default();
    let table = section(
        "",
        "No skills installed. Install one with `exoclaw skills install` or `POST /v1/skills`.",
        &items,
        &[
            ("Skill", "name"),
            ("Version", "version"),
            ("Scope", "scope"),
            ("Status", "status"),
            ("Warnings", "warnings"),
            ("Tools", "tools"),
            ("Installed (UTC)", "installed_at"),
        ],
    )
    .actions(|s| {
        let Some(name) = s["name"].as_str() else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        if s["status"] == "quarantined" {
            actions.push(Action::post(
                "Approve",
                format!("/ui/skills/{}/approve", seg(name)),
            ));
        }
        actions.push(Action::danger(
            "Remove",
            format!("/ui/skills/{}/remove", seg(name)),
            "Remove this skill?",
        ));
        actions
    });
    render(&TablesPage {
        shell,
        title: "Skills".to_owned(),
        intro: "A skill whose content the scanners flagged stays quarantined until approved."
            .to_owned(),
        sections: vec![table],
        live: false,
        upload: can_install.then_some(Upload {
            label: "Install a skill",
            endpoint: "/v1/skills",
            accept: ".tar.gz,.tgz,.zip,application/gzip,application/zip",
            hint: "A skill folder (SKILL.md and its files) as a .tar.gz or a .zip. It is \
                   checked before anything is stored; one the scanners flag waits here, \
                   quarantined, until approved.",
        }),
    })
}

pub async fn approve(
    shell: Shell,
    state: State<AppState>,
    rid: Extension<RequestId>,
    name: Path<String>,
    q: Query<skills::ApproveParams>,
) -> Result<Redirect, UiError> {
    let _approved = skills::approve(state, Extension(shell.who), rid, name, q).await?;
    Ok(Redirect::to("/ui/skills"))
}

pub async fn remove(
    shell: Shell,
    state: State<AppState>,
    rid: Extension<RequestId>,
    name: Path<String>,
) -> Result<Redirect, UiError> {
    skills::remove(state, Extension(shell.who), rid, name).await?;
    Ok(Redirect::to("/ui/skills"))
}
