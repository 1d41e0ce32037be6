//! The audit log (`GET /v1/audit`): newest first, filtered by action, actor
//! and decision, paged to older events; and verifying the tenant's hash
//! chain (what `exoclaw audit verify` checks), under the same permission.

use super::super::super::audit::{self, AuditEventView, ListQuery};
use super::super::super::error::ApiError;
use super::super::super::extract::Query;
use super::super::super::state::AppState;
use super::super::form::{api, param};
use super::super::{Shell, UiError, render};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Html;

/// The filter as the form shows it again.
#[derive(Default)]
struct Filter {
    action: String,
    actor: String,
    decision: String,
}

#[derive(Template)]
#[template(path = "ui/audit.html")]
struct Page {
    shell: Shell,
    events: Vec<AuditEventView>,
    filter: Filter,
    older: Option<String>,
    verified: Option<Verified>,
}

/// The chain's verification, as the page says it.
struct Verified {
    intact: bool,
    checked: u64,
    unchained: u64,
    head_seq: i64,
    problem: String,
}

impl Page {
    fn detail(&self, e: &AuditEventView) -> String {
        if e.detail.is_null() || e.detail == serde_json::json!({}) {
            String::new()
        } else {
            e.detail.to_string()
        }
    }
}

pub async fn list(
    shell: Shell,
    state: State<AppState>,
    uri: axum::http::Uri,
) -> Result<Html<String>, UiError> {
    let query = uri.query();
    let (action, actor, decision) = (
        param(query, "action"),
        param(query, "actor"),
        param(query, "decision"),
    );
    let before_seq = param(query, "before_seq")
        .map(|b| b.parse::<i64>())
        .transpose()
        .map_err(|_| ApiError::invalid("before_seq: a number"))?;
    let q: ListQuery = api(serde_json::json!({
        "action": action,
        "actor": actor,
        "decision": decision,
        "before_seq": before_seq,
    }))?;
    let filter = Filter {
        action: action.unwrap_or_default(),
        actor: actor.unwrap_or_default(),
        decision: decision.unwrap_or_default(),
    };
    let page = audit::list(state.clone(), Extension(shell.who.clone()), Query(q))
        .await?
        .0;
    let older = page.next_before_seq.map(|seq| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("action", &filter.action)
            .append_pair("actor", &filter.actor)
            .append_pair("decision", &filter.decision)
            .append_pair("before_seq", &seq.to_string())
            .finish()
    });
    let verified = if param(query, "verify").as_deref() == Some("1") {
        let v = state
            .store
            .verify_audit(Some(&shell.who.tenant))
            .await
            .map_err(ApiError::from)?;
        let chain = v.chains.first();
        Some(Verified {
            intact: v.is_intact(),
            checked: v.checked(),
            unchained: chain.map_or(0, |c| c.unchained),
            head_seq: chain.map_or(0, |c| c.head_seq),
            problem: v
                .first_break()
                .map(|(_, b)| format!("broken at event {}: {}", b.seq, b.reason))
                .unwrap_or_default(),
        })
    } else {
        None
    };
    render(&Page {
        shell,
        events: page.events,
        filter,
        older,
        verified,
    })
}
