//! Delegation history (`GET /v1/delegations`): every delegation to a named
//! agent and every subagent, newest first, with its traces.

use super::super::super::extract::Query;
use super::super::super::orchestration::delegations::{self, DelegationsQuery};
use super::super::super::state::AppState;
use super::super::table::{TablesPage, section, seg};
use super::super::{Shell, UiError, render};
use axum::Extension;
use axum::extract::State;
use axum::response::Html;

pub async fn list(
    shell: Shell,
    state: State<AppState>,
    q: Query<DelegationsQuery>,
) -> Result<Html<String>, UiError> {
    let list = delegations::list(state, Extension(shell.who.clone()), q)
        .await?
        .0;
    let list = serde_json::to_value(&list).unwrap_or_default();
    let items = list["delegations"].as_array().cloned().unwrap_or_default();
    let table = section(
        "",
        "No delegations yet. Agents delegate to linked agents (`delegate`) and start subagents (`spawn`).",
        &items,
        &[
            ("Started (UTC)", "started_at"),
            ("Kind", "kind"),
            ("Mode", "mode"),
            ("From", "caller_agent"),
            ("To", "target_agent"),
            ("Status", "status"),
            ("Tokens in", "input_tokens"),
            ("Tokens out", "output_tokens"),
            ("Child run", "child_trace_id"),
        ],
    )
    .link(8, |d| d["child_trace_id"].as_str().map(|t| format!("/ui/traces/{}", seg(t))))
    .link(0, |d| d["parent_trace_id"].as_str().map(|t| format!("/ui/traces/{}", seg(t))));
    render(&TablesPage {
        shell,
        title: "Delegations".to_owned(),
        intro: "The started time links to the caller's run; the child run to the delegate's."
            .to_owned(),
        sections: vec![table],
        live: true,
        upload: None,
    })
}
