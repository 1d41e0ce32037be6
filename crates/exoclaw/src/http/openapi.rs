//! The OpenAPI 3.1 document of the HTTP API, `GET /v1/openapi.json`
//! (checked in as docs/openapi.json).
//!
//! The handlers describe themselves (`#[utoipa::path]`, with the request and
//! response types beside them); [`document`] collects them and then applies
//! the route table, the one place that says who may call what: each
//! operation's security (none, bearer, or either for `/ws`), its required
//! permission in the description, and the error answers every route can
//! give (`ErrorBody`: 400, 401/403 when authenticated, 404 with path
//! parameters, 413/415/422 with a body, 429, 500, 503). Where a handler
//! documents one of those statuses with a body of its own (the tool
//! invocation's `{"ok": false, ...}`), the two are offered as `anyOf`.
//!
//! The binary serves docs/openapi.json as compiled in: rendering the
//! document at run time would link every schema builder utoipa derives,
//! 680 KiB of the release binary (5.6 %) for a page few clients ask for.
//! The unit test `docs_openapi_json_is_what_the_types_generate` keeps the
//! file equal to [`render`]'s output; `UPDATE_OPENAPI=1` on it rewrites the
//! file.

use super::error::{ErrorBody, ErrorCode};
use super::orchestration::{bindings, delegations, handoffs, links};
use super::routes::{Access, RouteSpec};
use super::{
    agent_files, agents, approvals, audit, channel_settings, channels, cron, custom_tools, health,
    mcp, memory, metrics, openai, pairing, providers, secrets, security, sessions, skills, teams,
    tenants, tools, usage, users, ws,
};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use teams::tasks;
use utoipa::OpenApi as _;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::Response as Answer;
use utoipa::openapi::schema::{AnyOfBuilder, Ref, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, RefOr};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "exoclaw",
        description = "The HTTP API of the exoclaw gateway. Every route but the probes and the \
            two public pairing routes needs `Authorization: Bearer <token>` (the gateway token, \
            an API key or a paired device's credential) holding the permission the route \
            names. Errors answer `{\"error\": {\"code\", \"message\"}}` with a stable code \
            (`ErrorCode`). The WebSocket RPC at `/ws` is described in docs/protocol.md.",
    ),
    paths(
        health::healthz,
        health::readyz,
        health::status,
        users::me,
        openai::models,
        openai::completions,
        secrets::list,
        secrets::put,
        secrets::delete,
        agents::list,
        agents::create,
        agents::get,
        agents::update,
        agents::delete,
        agent_files::list,
        agent_files::read,
        agent_files::write,
        agent_files::delete,
        links::list,
        links::create,
        links::delete,
        bindings::list,
        bindings::create,
        bindings::delete,
        teams::list,
        teams::create_route,
        teams::get,
        teams::update_route,
        teams::delete,
        tasks::list,
        tasks::create,
        tasks::get,
        tasks::claim_route,
        tasks::complete,
        tasks::fail,
        tasks::comment_route,
        sessions::list,
        sessions::delete,
        sessions::messages,
        delegations::list,
        handoffs::list,
        delegations::get,
        cron::list,
        cron::create,
        cron::get,
        cron::update,
        cron::delete,
        cron::run,
        cron::runs,
        memory::list,
        memory::save,
        memory::forget,
        memory::status,
        skills::list,
        skills::show,
        skills::install,
        skills::remove,
        skills::approve,
        channels::list,
        channel_settings::show,
        channel_settings::update,
        channels::webhook,
        channels::test,
        channels::telegram_update,
        sessions::traces,
        sessions::trace,
        usage::report,
        usage::budgets,
        tools::invoke,
        custom_tools::list,
        custom_tools::put,
        custom_tools::delete,
        mcp::list,
        mcp::put,
        mcp::delete,
        mcp::grants,
        mcp::grant,
        mcp::revoke,
        mcp::server::handle,
        approvals::list,
        approvals::approve,
        approvals::deny,
        users::list,
        users::create,
        users::get,
        users::update,
        users::delete,
        users::user_keys,
        users::create_user_key,
        users::my_keys,
        users::create_my_key,
        users::revoke_key,
        providers::list,
        providers::put,
        providers::delete,
        audit::list,
        pairing::request,
        pairing::status,
        pairing::list,
        pairing::approve,
        pairing::deny,
        pairing::revoke,
        security::audit,
        users::tenants,
        users::create_tenant,
        tenants::show,
        tenants::update,
        ws::upgrade,
        metrics::metrics,
        serve,
    ),
    components(schemas(ErrorBody, ErrorCode)),
    tags(
        (name = "status", description = "Probes, status, metrics and this document"),
        (name = "chat", description = "The OpenAI-compatible API: agents as models"),
        (name = "agents", description = "Agents of the caller's tenant"),
        (name = "sessions", description = "Conversations and run traces"),
        (name = "usage", description = "The usage ledger per day, and budgets against their limits"),
        (name = "delegations", description = "The history of delegations between agents and subagent spawns"),
        (name = "bindings", description = "Which agent answers a conversation that names none"),
        (name = "teams", description = "Agent teams: a lead and members, their task board"),
        (name = "channels", description = "Messaging channels: their state, and the signed generic webhook"),
        (name = "cron", description = "Cron jobs: an agent's scheduled messages and their runs"),
        (name = "memory", description = "Long-term memory: agents' saved facts, hybrid search"),
        (name = "skills", description = "Skills: installed know-how agents search and read; the install pipeline and quarantine"),
        (name = "tools", description = "Tool invocation through the agent's policy path"),
        (name = "mcp", description = "MCP servers as tool sources, and who may use their tools"),
        (name = "approvals", description = "Exec approvals waiting for an operator"),
        (name = "users", description = "Who you are, users, API keys and tenants"),
        (name = "secrets", description = "Write-only secrets in the encrypted vault"),
        (name = "providers", description = "A tenant's own provider keys"),
        (name = "audit", description = "The tenant's hash-chained audit log"),
        (name = "pairing", description = "Pairing browsers by code"),
        (name = "websocket", description = "The WebSocket RPC (docs/protocol.md)"),
    ),
)]
struct ApiDoc;

/// docs/openapi.json, as compiled in (see the module docs).
pub const CHECKED_IN: &str = include_str!("../../../../docs/openapi.json");

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "status",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API",
        content_type = "application/json", body = Object)))]
pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], CHECKED_IN).into_response()
}

/// The document from the types and the route table: pretty JSON with a
/// final newline, the bytes of docs/openapi.json.
pub fn render(table: &[RouteSpec]) -> String {
    let mut out = serde_json::to_string_pretty(&document(table)).unwrap_or_default();
    out.push('\n');
    out
}

/// The handlers' operations with the route table applied (see the module
/// docs).
pub fn document(table: &[RouteSpec]) -> OpenApi {
    let mut doc = ApiDoc::openapi();
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some(
            "The gateway token, an API key (`exo_...`) or a device credential (`exd_...`)",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    components.responses.extend(error_responses());
    for spec in table {
        let Some(item) = doc.paths.paths.get_mut(spec.path) else {
            continue;
        };
        let Some(op) = operation_mut(item, &spec.method) else {
            continue;
        };
        apply(op, spec);
    }
    doc
}

/// The operation of `method` in `item`.
pub fn operation_mut<'a>(item: &'a mut PathItem, method: &str) -> Option<&'a mut Operation> {
    match method {
        "GET" => item.get.as_mut(),
        "POST" => item.post.as_mut(),
        "PUT" => item.put.as_mut(),
        "PATCH" => item.patch.as_mut(),
        "DELETE" => item.delete.as_mut(),
        _ => None,
    }
}

/// The error answers routes share: status, name under
/// `components/responses`, description.
const ERRORS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "Bad request (`request.invalid`, `request.invalid_json`, `auth.ambiguous`, ...)",
    ),
    (
        "401",
        "Unauthorized",
        "No valid credential (`auth.unauthorized`, `auth.key_expired`, `auth.key_revoked`, \
         `auth.user_disabled`)",
    ),
    (
        "403",
        "Forbidden",
        "The credential lacks the permission or rank (`auth.forbidden`)",
    ),
    ("404", "NotFound", "No such resource (`not_found`)"),
    (
        "413",
        "TooLarge",
        "The body is too large (`request.too_large`)",
    ),
    (
        "415",
        "NotJson",
        "Not `Content-Type: application/json` (`request.invalid_json`)",
    ),
    (
        "422",
        "WrongShape",
        "JSON, but not this route's shape (`request.invalid_json`)",
    ),
    (
        "429",
        "RateLimited",
        "Over a rate limit (`rate_limited`); `Retry-After` says when to retry",
    ),
    (
        "500",
        "Internal",
        "Internal error (`internal`); the detail is in the gateway log under the request id",
    ),
    (
        "503",
        "Unavailable",
        "The store is unavailable (`store.unavailable`); retry",
    ),
];

/// The shared error answers, for `components/responses`.
fn error_responses() -> impl Iterator<Item = (String, RefOr<Answer>)> {
    ERRORS.iter().map(|(_, name, description)| {
        let mut answer = Answer::new(*description);
        answer.content.insert(
            JSON.to_owned(),
            RefOr::T(Content::new(Some(error_schema()))),
        );
        ((*name).to_owned(), RefOr::T(answer))
    })
}

const JSON: &str = "application/json";

/// Give `op` the security, description and error answers of its route.
fn apply(op: &mut Operation, spec: &RouteSpec) {
    op.operation_id = Some(operation_id(&spec.method, spec.path));
    let bearer = || SecurityRequirement::new("bearer", Vec::<String>::new());
    let (security, who) = match spec.access {
        Access::Public => (Vec::new(), "Public: no credential.".to_owned()),
        Access::SelfAuth => (
            vec![SecurityRequirement::default(), bearer()],
            "Authenticates itself: the bearer header or the `connect` frame's token; each \
             method then needs its own permission (docs/protocol.md)."
                .to_owned(),
        ),
        Access::Perm(p) => (vec![bearer()], format!("Requires the permission `{p}`.")),
    };
    op.security = Some(security);
    op.description = Some(match op.description.take() {
        Some(d) if !d.is_empty() => format!("{d}\n\n{who}"),
        _ => who,
    });
    // The probes answer only what they document (no limits, no store).
    if super::auth::PUBLIC_PATHS.contains(&spec.path) {
        return;
    }
    let authenticated = matches!(spec.access, Access::Perm(_));
    let has_body = op.request_body.is_some();
    for (status, name, _) in ERRORS {
        let applies = match *status {
            "401" | "403" => authenticated,
            "404" => spec.path.contains('{'),
            "413" | "415" | "422" => has_body,
            _ => true,
        };
        let answers = &mut op.responses.responses;
        if applies && !answers.contains_key(*status) {
            let shared = Ref::new(format!("#/components/responses/{name}"));
            answers.insert((*status).to_owned(), RefOr::Ref(shared));
        }
    }
    // A handler's own error body at a status is offered with the API's.
    for (status, answer) in &mut op.responses.responses {
        if status.as_str() >= "400"
            && let RefOr::T(answer) = answer
        {
            or_error_body(answer);
        }
    }
}

/// `get_v1_agents_id` for `GET /v1/agents/{id}`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    format!("{}_{}", method.to_ascii_lowercase(), words.join("_"))
}

fn error_schema() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name("ErrorBody"))
}

/// Make `answer`'s JSON body "its own schema, or the error body".
fn or_error_body(answer: &mut Answer) {
    let Some(RefOr::T(content)) = answer.content.get_mut(JSON) else {
        return;
    };
    let is_error_body =
        |s: &RefOr<Schema>| matches!(s, RefOr::Ref(r) if r.ref_location.ends_with("/ErrorBody"));
    content.schema = Some(match content.schema.take() {
        Some(s) if !is_error_body(&s) => {
            let either = AnyOfBuilder::new().item(s).item(error_schema()).build();
            RefOr::T(Schema::AnyOf(either))
        }
        _ => error_schema(),
    });
}

#[cfg(test)]
mod tests;
