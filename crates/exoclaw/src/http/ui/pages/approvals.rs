//! Approvals: the queue (`GET /v1/approvals`) and deciding one
//! (`POST /v1/approvals/{id}/approve|deny`). The page refreshes itself while
//! it is open, so new requests show up.

use super::super::super::approvals::{self, ApprovalView, ListQuery};
use super::super::super::error::ApiError;
use super::super::super::extract::{Path, Query};
use super::super::super::state::{AppState, RequestId};
use super::super::{Shell, UiError, render, when};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::{Html, Redirect};

#[derive(Template)]
#[template(path = "ui/approvals.html")]
struct Page {
    shell: Shell,
    approvals: Vec<ApprovalView>,
}

impl Page {
    fn when(&self, ms: &i64) -> String {
        when(*ms)
    }
}

pub async fn list(
    shell: Shell,
    state: State<AppState>,
    q: Query<ListQuery>,
) -> Result<Html<String>, UiError> {
    let approvals = approvals::list(state, Extension(shell.who.clone()), q)
        .await?
        .0
        .approvals;
    render(&Page { shell, approvals })
}

pub async fn decide(
    shell: Shell,
    state: State<AppState>,
    rid: Extension<RequestId>,
    Path((id, decision)): Path<(String, String)>,
) -> Result<Redirect, UiError> {
    let who = Extension(shell.who);
    let id = Path(id);
    // The decided approval is not shown: the queue is, again.
    let _decided = match decision.as_str() {
        "approve" => approvals::approve(state, who, rid, id).await?,
        "deny" => approvals::deny(state, who, rid, id).await?,
        _ => return Err(ApiError::not_found().into()),
    };
    Ok(Redirect::to("/ui/approvals"))
}
