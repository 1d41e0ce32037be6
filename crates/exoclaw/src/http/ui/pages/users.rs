//! Users and API keys, for admins (`/v1/users`, `/v1/users/{id}/keys`,
//! `DELETE /v1/keys/{id}`). A new key is shown once, on the page that
//! answers its creation (never stored, never cached: pages are `no-store`),
//! as the CLI does.

use super::super::super::extract::{Body, Path, Query};
use super::super::super::state::AppState;
use super::super::super::users::{self, CreateUser, KeyBody, KeyView, TenantQuery, UserView};
use super::super::form::{api, field};
use super::super::{Shell, UiError, render, when};
use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{Html, Redirect};
use serde_json::json;

#[derive(Template)]
#[template(path = "ui/users.html")]
struct ListPage {
    shell: Shell,
    users: Vec<UserView>,
}

impl ListPage {
    fn when(&self, ms: &i64) -> String {
        when(*ms)
    }
}

pub async fn list(
    shell: Shell,
    state: State<AppState>,
    q: Query<TenantQuery>,
) -> Result<Html<String>, UiError> {
    let users = users::list(state, Extension(shell.who.clone()), q)
        .await?
        .0
        .users;
    render(&ListPage { shell, users })
}

/// The page that shows a new key, once.
#[derive(Template)]
#[template(path = "ui/key_once.html")]
struct KeyOnce {
    shell: Shell,
    user_id: String,
    user_name: String,
    key: String,
}

pub async fn create(
    shell: Shell,
    state: State<AppState>,
    body: Bytes,
) -> Result<Html<String>, UiError> {
    let role = field(&body, "role");
    let request: CreateUser = api(json!({
        "name": field(&body, "name"),
        "role": if role.is_empty() { serde_json::Value::Null } else { json!(role) },
        "key": { "name": "dashboard" },
    }))?;
    let (_, created) = users::create(state, Extension(shell.who.clone()), Body(request)).await?;
    let created = created.0;
    render(&KeyOnce {
        shell,
        user_id: created.id.to_string(),
        user_name: created.name,
        key: created.api_key,
    })
}

/// A key as the user page lists it.
struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    state: String,
    live: bool,
}

impl From<KeyView> for KeyRow {
    fn from(k: KeyView) -> Self {
        let now = exoclaw_core::now_ms();
        let state = if let Some(at) = k.revoked_at {
            format!("revoked {}", when(at))
        } else if let Some(at) = k.expires_at.filter(|at| *at <= now) {
            format!("expired {}", when(at))
        } else if let Some(at) = k.last_used_at {
            format!("last used {}", when(at))
        } else {
            "never used".to_owned()
        };
        Self {
            live: k.revoked_at.is_none() && k.expires_at.is_none_or(|at| at > now),
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: if k.scopes.is_empty() {
                "all of the role's".to_owned()
            } else {
                k.scopes.join(", ")
            },
            created: when(k.created_at),
            state,
        }
    }
}

#[derive(Template)]
#[template(path = "ui/user.html")]
struct ShowPage {
    shell: Shell,
    user: UserView,
    keys: Vec<KeyRow>,
}

pub async fn show(
    shell: Shell,
    state: State<AppState>,
    id: Path<String>,
    q: Query<TenantQuery>,
) -> Result<Html<String>, UiError> {
    let who = Extension(shell.who.clone());
    let tenant: TenantQuery = api(json!({ "tenant": q.0.tenant() }))?;
    let user = users::get(state.clone(), who.clone(), Path(id.0.clone()), q)
        .await?
        .0;
    let keys = users::user_keys(state, who, id, Query(tenant))
        .await?
        .0
        .keys
        .into_iter()
        .map(KeyRow::from)
        .collect();
    render(&ShowPage { shell, user, keys })
}

pub async fn create_key(
    shell: Shell,
    state: State<AppState>,
    id: Path<String>,
    q: Query<TenantQuery>,
    body: Bytes,
) -> Result<Html<String>, UiError> {
    let scopes: Vec<String> = field(&body, "scopes")
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let name = field(&body, "name");
    let request: KeyBody = api(json!({ "name": name, "scopes": scopes }))?;
    let user_id = id.0.clone();
    let (_, issued) =
        users::create_user_key(state, Extension(shell.who.clone()), id, q, Body(request)).await?;
    render(&KeyOnce {
        shell,
        user_name: user_id.clone(),
        user_id,
        key: issued.0.api_key,
    })
}

pub async fn revoke_key(
    shell: Shell,
    state: State<AppState>,
    Path((user, key)): Path<(String, String)>,
) -> Result<Redirect, UiError> {
    users::revoke_key(state, Extension(shell.who), Path(key)).await?;
    let user: String = url::form_urlencoded::byte_serialize(user.as_bytes()).collect();
    Ok(Redirect::to(&format!("/ui/users/{user}")))
}
