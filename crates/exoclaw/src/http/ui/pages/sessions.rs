//! Sessions: the list (`GET /v1/sessions`), one session's messages
//! (`GET /v1/sessions/{id}/messages`) and deleting one
//! (`DELETE /v1/sessions/{id}`).

use super::super::super::extract::{Path, Query};
use super::super::super::sessions::{self, MessageView, MessagesQuery, SessionView, SessionsQuery};
use super::super::super::state::AppState;
use super::super::form::{api, param};
use super::super::{Shell, UiError, render, when};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::{Html, Redirect};

#[derive(Template)]
#[template(path = "ui/sessions.html")]
struct ListPage {
    shell: Shell,
    sessions: Vec<SessionView>,
    text: String,
    older: Option<String>,
}

impl ListPage {
    fn when(&self, ms: &i64) -> String {
        when(*ms)
    }
}

/// Sessions a page shows.
const PAGE: u32 = 100;

pub async fn list(
    shell: Shell,
    state: State<AppState>,
    uri: axum::http::Uri,
) -> Result<Html<String>, UiError> {
    let (agent, text) = (param(uri.query(), "agent"), param(uri.query(), "q"));
    let q: SessionsQuery = api(serde_json::json!({
        "agent": agent,
        "q": text,
        "limit": PAGE,
        "cursor": param(uri.query(), "cursor"),
    }))?;
    let list = sessions::list(state, Extension(shell.who.clone()), Query(q))
        .await?
        .0;
    let older = list.next_cursor.map(|cursor| {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        if let Some(a) = &agent {
            next.append_pair("agent", a);
        }
        if let Some(t) = &text {
            next.append_pair("q", t);
        }
        next.append_pair("cursor", &cursor).finish()
    });
    render(&ListPage {
        shell,
        sessions: list.sessions,
        text: text.unwrap_or_default(),
        older,
    })
}

/// A message as the page shows it.
struct Line {
    role: String,
    text: String,
    at: String,
}

fn text_of(m: &MessageView) -> String {
    match &m.content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .map(|p| match p.get("text").and_then(|t| t.as_str()) {
                Some(t) => t.to_owned(),
                None => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

#[derive(Template)]
#[template(path = "ui/session.html")]
struct ShowPage {
    shell: Shell,
    session: SessionView,
    lines: Vec<Line>,
}

pub async fn show(
    shell: Shell,
    state: State<AppState>,
    id: Path<String>,
    q: Query<MessagesQuery>,
) -> Result<Html<String>, UiError> {
    let found = sessions::messages(state, Extension(shell.who.clone()), id, q)
        .await?
        .0;
    let lines = found
        .messages
        .iter()
        .map(|m| Line {
            role: m.role.clone(),
            text: text_of(m),
            at: when(m.created_at),
        })
        .collect();
    render(&ShowPage {
        shell,
        session: found.session,
        lines,
    })
}

pub async fn delete(
    shell: Shell,
    state: State<AppState>,
    id: Path<String>,
) -> Result<Redirect, UiError> {
    sessions::delete(state, Extension(shell.who), id).await?;
    Ok(Redirect::to("/ui/sessions"))
}
