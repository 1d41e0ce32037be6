//! The HTTP edge: the router, request observation (request id, access log),
//! authentication, and the handlers. Only this module knows the public JSON
//! shapes.

mod agent_files;
mod agents;
mod approvals;
mod audit;
pub mod channel_settings;
pub mod channels;
pub mod conn;
pub mod cron;
pub mod custom_tools;
pub mod quota;
pub mod server;
mod stall;
pub use agents::AgentList;
pub use approvals::ApprovalList;
pub use audit::event_json as audit_event_json;
pub use audit::{AuditEventView, AuditPage};
pub mod auth;
pub mod credential;
pub mod error;
mod extract;
mod health;
pub mod limit;
pub mod mcp;
pub mod memory;
mod metrics;
mod openai;
pub mod openapi;
pub mod orchestration;
pub mod pairing;
mod providers;
pub mod routes;
mod schema;
mod secrets;
pub mod security;
mod sessions;
pub mod skills;
pub mod state;
pub mod teams;
pub mod tenants;
mod tools;
pub mod ui;
mod usage;
mod users;
mod ws;

pub use secrets::{SecretList, SecretView, is_valid_owner, is_valid_secret_name};
pub use state::{AppState, RequestId, note_rate_limited, rate_limited};
pub use users::{KeyList, KeyView, UserList, UserView, key_json, user_json};

/// The WebSocket methods and their permissions.
pub fn ws_methods() -> &'static [(&'static str, exoclaw_gateway::access::Permission)] {
    ws::METHODS
}

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use std::time::Instant;
use tracing::Instrument as _;

/// Every route with the access it requires (see [`routes`]).
pub fn api_routes() -> routes::Routes {
    use axum::http::Method;
    use exoclaw_gateway::access::Permission as P;
    use routes::Access::{Perm, Public, SelfAuth};
    let (get, post, put, patch, delete) = (
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    );
    routes::Routes::new()
        .add(&get, "/healthz", Public, health::healthz)
        .add(&get, "/readyz", Public, health::readyz)
        .add(&get, "/v1/status", Perm(P::Status), health::status)
        .add(&get, "/v1/me", Perm(P::Status), users::me)
        .add(&get, "/v1/models", Perm(P::Status), openai::models)
        .add(
            &post,
            "/v1/chat/completions",
            Perm(P::Chat),
            openai::completions,
        )
        .add(&get, "/v1/secrets", Perm(P::SecretsManage), secrets::list)
        .add(
            &put,
            "/v1/secrets/{name}",
            Perm(P::SecretsManage),
            secrets::put,
        )
        .add(
            &delete,
            "/v1/secrets/{name}",
            Perm(P::SecretsManage),
            secrets::delete,
        )
        .add(&get, "/v1/agents", Perm(P::AgentsRead), agents::list)
        .add(&post, "/v1/agents", Perm(P::AgentsWrite), agents::create)
        .add(
            &get,
            "/v1/agents/{id}/files",
            Perm(P::AgentsRead),
            agent_files::list,
        )
        .add(
            &get,
            "/v1/agents/{id}/files/{name}",
            Perm(P::AgentsRead),
            agent_files::read,
        )
        .add(
            &put,
            "/v1/agents/{id}/files/{name}",
            Perm(P::AgentsWrite),
            agent_files::write,
        )
        .add(
            &delete,
            "/v1/agents/{id}/files/{name}",
            Perm(P::AgentsWrite),
            agent_files::delete,
        )
        .add(&get, "/v1/agents/{id}", Perm(P::AgentsRead), agents::get)
        .add(
            &patch,
            "/v1/agents/{id}",
            Perm(P::AgentsWrite),
            agents::update,
        )
        .add(
            &delete,
            "/v1/agents/{id}",
            Perm(P::AgentsWrite),
            agents::delete,
        )
        .add(
            &get,
            "/v1/agents/{id}/links",
            Perm(P::AgentsRead),
            orchestration::links::list,
        )
        .add(
            &post,
            "/v1/agents/{id}/links",
            Perm(P::AgentsWrite),
            orchestration::links::create,
        )
        .add(
            &delete,
            "/v1/agents/{id}/links/{target}",
            Perm(P::AgentsWrite),
            orchestration::links::delete,
        )
        .add(
            &get,
            "/v1/bindings",
            Perm(P::AgentsRead),
            orchestration::bindings::list,
        )
        .add(
            &post,
            "/v1/bindings",
            Perm(P::AgentsWrite),
            orchestration::bindings::create,
        )
        .add(
            &delete,
            "/v1/bindings/{id}",
            Perm(P::AgentsWrite),
            orchestration::bindings::delete,
        )
        .add(&get, "/v1/teams", Perm(P::AgentsRead), teams::list)
        .add(
            &post,
            "/v1/teams",
            Perm(P::AgentsWrite),
            teams::create_route,
        )
        .add(&get, "/v1/teams/{id}", Perm(P::AgentsRead), teams::get)
        .add(
            &patch,
            "/v1/teams/{id}",
            Perm(P::AgentsWrite),
            teams::update_route,
        )
        .add(
            &delete,
            "/v1/teams/{id}",
            Perm(P::AgentsWrite),
            teams::delete,
        )
        .add(
            &get,
            "/v1/teams/{id}/tasks",
            Perm(P::AgentsRead),
            teams::tasks::list,
        )
        .add(
            &post,
            "/v1/teams/{id}/tasks",
            Perm(P::AgentsWrite),
            teams::tasks::create,
        )
        .add(
            &get,
            "/v1/teams/{id}/tasks/{task}",
            Perm(P::AgentsRead),
            teams::tasks::get,
        )
        .add(
            &post,
            "/v1/teams/{id}/tasks/{task}/claim",
            Perm(P::AgentsWrite),
            teams::tasks::claim_route,
        )
        .add(
            &post,
            "/v1/teams/{id}/tasks/{task}/complete",
            Perm(P::AgentsWrite),
            teams::tasks::complete,
        )
        .add(
            &post,
            "/v1/teams/{id}/tasks/{task}/fail",
            Perm(P::AgentsWrite),
            teams::tasks::fail,
        )
        .add(
            &post,
            "/v1/teams/{id}/tasks/{task}/comments",
            Perm(P::AgentsWrite),
            teams::tasks::comment_route,
        )
        .add(&get, "/v1/sessions", Perm(P::SessionsRead), sessions::list)
        .add(
            &delete,
            "/v1/sessions/{id}",
            Perm(P::SessionsWrite),
            sessions::delete,
        )
        .add(
            &get,
            "/v1/sessions/{id}/messages",
            Perm(P::SessionsRead),
            sessions::messages,
        )
        .add(
            &get,
            "/v1/delegations",
            Perm(P::SessionsRead),
            orchestration::delegations::list,
        )
        .add(
            &get,
            "/v1/delegations/{id}",
            Perm(P::SessionsRead),
            orchestration::delegations::get,
        )
        .add(
            &get,
            "/v1/handoffs",
            Perm(P::SessionsRead),
            orchestration::handoffs::list,
        )
        .add(&get, "/v1/cron", Perm(P::SessionsRead), cron::list)
        .add(&post, "/v1/cron", Perm(P::Chat), cron::create)
        .add(&get, "/v1/cron/{id}", Perm(P::SessionsRead), cron::get)
        .add(&patch, "/v1/cron/{id}", Perm(P::Chat), cron::update)
        .add(&delete, "/v1/cron/{id}", Perm(P::Chat), cron::delete)
        .add(&post, "/v1/cron/{id}/run", Perm(P::Chat), cron::run)
        .add(
            &get,
            "/v1/cron/{id}/runs",
            Perm(P::SessionsRead),
            cron::runs,
        )
        .add(&get, "/v1/memory", Perm(P::SessionsRead), memory::list)
        .add(&post, "/v1/memory", Perm(P::Chat), memory::save)
        .add(
            &get,
            "/v1/memory/status",
            Perm(P::SessionsRead),
            memory::status,
        )
        .add(
            &delete,
            "/v1/memory/{id}",
            Perm(P::SessionsWrite),
            memory::forget,
        )
        .add(&get, "/v1/skills", Perm(P::AgentsRead), skills::list)
        .add(&post, "/v1/skills", Perm(P::AgentsWrite), skills::install)
        .add(&get, "/v1/skills/{name}", Perm(P::AgentsRead), skills::show)
        .add(
            &delete,
            "/v1/skills/{name}",
            Perm(P::AgentsWrite),
            skills::remove,
        )
        .add(
            &post,
            "/v1/skills/{name}/approve",
            Perm(P::AgentsWrite),
            skills::approve,
        )
        .add(&get, "/v1/usage", Perm(P::SessionsRead), usage::report)
        .add(&get, "/v1/budgets", Perm(P::MetricsRead), usage::budgets)
        .add(&get, "/v1/traces", Perm(P::SessionsRead), sessions::traces)
        .add(
            &get,
            "/v1/traces/{id}",
            Perm(P::SessionsRead),
            sessions::trace,
        )
        .add(
            &post,
            "/v1/tools/invoke",
            Perm(P::ToolsInvoke),
            tools::invoke,
        )
        .add(
            &get,
            "/v1/tools/custom",
            Perm(P::AgentsRead),
            custom_tools::list,
        )
        .add(
            &post,
            "/v1/tools/custom",
            Perm(P::AgentsWrite),
            custom_tools::put,
        )
        .add(
            &delete,
            "/v1/tools/custom/{name}",
            Perm(P::AgentsWrite),
            custom_tools::delete,
        )
        .add(&get, "/v1/mcp/servers", Perm(P::AgentsRead), mcp::list)
        .add(&post, "/v1/mcp/servers", Perm(P::AgentsWrite), mcp::put)
        .add(
            &delete,
            "/v1/mcp/servers/{name}",
            Perm(P::AgentsWrite),
            mcp::delete,
        )
        .add(&get, "/v1/mcp/grants", Perm(P::AgentsRead), mcp::grants)
        .add(&post, "/v1/mcp/grants", Perm(P::AgentsWrite), mcp::grant)
        .add(&delete, "/v1/mcp/grants", Perm(P::AgentsWrite), mcp::revoke)
        .add(&post, "/mcp", Perm(P::Status), mcp::server::handle)
        .add(
            &get,
            "/v1/approvals",
            Perm(P::ApprovalsDecide),
            approvals::list,
        )
        .add(
            &post,
            "/v1/approvals/{id}/approve",
            Perm(P::ApprovalsDecide),
            approvals::approve,
        )
        .add(
            &post,
            "/v1/approvals/{id}/deny",
            Perm(P::ApprovalsDecide),
            approvals::deny,
        )
        .add(&get, "/v1/users", Perm(P::UsersManage), users::list)
        .add(&post, "/v1/users", Perm(P::UsersManage), users::create)
        .add(&get, "/v1/users/{id}", Perm(P::UsersManage), users::get)
        .add(
            &patch,
            "/v1/users/{id}",
            Perm(P::UsersManage),
            users::update,
        )
        .add(
            &delete,
            "/v1/users/{id}",
            Perm(P::UsersManage),
            users::delete,
        )
        .add(
            &get,
            "/v1/users/{id}/keys",
            Perm(P::UsersManage),
            users::user_keys,
        )
        .add(
            &post,
            "/v1/users/{id}/keys",
            Perm(P::UsersManage),
            users::create_user_key,
        )
        .add(&get, "/v1/keys", Perm(P::KeysSelf), users::my_keys)
        .add(&post, "/v1/keys", Perm(P::KeysSelf), users::create_my_key)
        .add(
            &delete,
            "/v1/keys/{id}",
            Perm(P::KeysSelf),
            users::revoke_key,
        )
        .add(
            &get,
            "/v1/providers",
            Perm(P::ProvidersManage),
            providers::list,
        )
        .add(
            &put,
            "/v1/providers/{name}",
            Perm(P::ProvidersManage),
            providers::put,
        )
        .add(
            &delete,
            "/v1/providers/{name}",
            Perm(P::ProvidersManage),
            providers::delete,
        )
        .add(&get, "/v1/audit", Perm(P::AuditRead), audit::list)
        .add(&post, "/v1/pairing/request", Public, pairing::request)
        .add(
            &get,
            "/v1/pairing/status/{request_id}",
            Public,
            pairing::status,
        )
        .add(&get, "/v1/pairing", Perm(P::PairingManage), pairing::list)
        .add(
            &post,
            "/v1/pairing/approve",
            Perm(P::PairingManage),
            pairing::approve,
        )
        .add(
            &post,
            "/v1/pairing/deny",
            Perm(P::PairingManage),
            pairing::deny,
        )
        .add(
            &delete,
            "/v1/pairing/devices/{id}",
            Perm(P::PairingManage),
            pairing::revoke,
        )
        .add(
            &get,
            "/v1/security/audit",
            Perm(P::TenantsManage),
            security::audit,
        )
        .add(&get, "/v1/tenants", Perm(P::TenantsManage), users::tenants)
        .add(
            &post,
            "/v1/tenants",
            Perm(P::TenantsManage),
            users::create_tenant,
        )
        .add(
            &get,
            "/v1/tenants/{id}",
            Perm(P::TenantsManage),
            tenants::show,
        )
        .add(
            &patch,
            "/v1/tenants/{id}",
            Perm(P::TenantsManage),
            tenants::update,
        )
        .add(&get, "/v1/channels", Perm(P::MetricsRead), channels::list)
        .add(
            &get,
            "/v1/channels/{name}",
            Perm(P::PairingManage),
            channel_settings::show,
        )
        .add(
            &patch,
            "/v1/channels/{name}",
            Perm(P::PairingManage),
            channel_settings::update,
        )
        .add(
            &post,
            "/v1/channels/webhook/{name}",
            Public,
            channels::webhook,
        )
        .add(
            &post,
            "/v1/channels/telegram/{name}",
            Public,
            channels::telegram_update,
        )
        .add(
            &post,
            "/v1/channels/{name}/test",
            Perm(P::PairingManage),
            channels::test,
        )
        .add(&get, "/ws", SelfAuth, ws::upgrade)
        .add(&get, "/metrics", Perm(P::MetricsRead), metrics::metrics)
        .add(&get, "/v1/openapi.json", Perm(P::Status), openapi::serve)
}

/// The API's routes and the dashboard's pages, in one table.
pub fn all_routes() -> routes::Routes {
    ui::add_routes(api_routes())
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let (routes, _) = all_routes().finish();
    routes
        .route_layer(middleware::from_fn(tag_route))
        .fallback(fallback)
        .layer(middleware::from_fn(move |req, next| {
            refuse_large_body(max_body_bytes, req, next)
        }))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), limit_by_ip))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(catch_panics())
        .layer(middleware::from_fn(ui::security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// A panic in a handler or a middleware inside it answers `500 internal`
/// (the panic logged, the client told only that it was our fault) instead
/// of dropping the connection; the security headers and the request log
/// still see the answer.
fn catch_panics()
-> tower_http::catch_panic::CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response> {
    #[expect(
        clippy::needless_pass_by_value,
        reason = "the signature CatchPanicLayer::custom calls"
    )]
    fn answer(panic: Box<dyn std::any::Any + Send>) -> Response {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        error::ApiError::internal(format!("a handler panicked: {what}")).into_response()
    }
    tower_http::catch_panic::CatchPanicLayer::custom(answer as fn(_) -> Response)
}

async fn fallback() -> error::ApiError {
    error::ApiError::not_found()
}

/// Answer 413 from the declared `Content-Length` alone, before reading any of
/// the body. Bodies without a length (chunked) are capped while they are read
/// (`DefaultBodyLimit`), which the JSON extractor turns into the same 413.
async fn refuse_large_body(max: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return error::ApiError::too_large(format!("request body is larger than {max} bytes"))
            .into_response();
    }
    next.run(req).await
}

/// The per-IP limit, before authentication (probes exempt).
async fn limit_by_ip(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = state.limits.client_ip(peer.ip(), forwarded);
    req.extensions_mut().insert(limit::ClientIp(ip));
    if auth::PUBLIC_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    if let Err(wait) = state.limits.check_ip(ip) {
        return rate_limited(&state, "ip", wait);
    }
    next.run(req).await
}

/// The route template that served a response (for metrics labels).
#[derive(Clone)]
struct RouteTag(String);

async fn tag_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut resp = next.run(req).await;
    if let Some(r) = route {
        resp.extensions_mut().insert(RouteTag(r));
    }
    resp
}

/// Give every request an id (always ours: a client-sent id is ignored), run
/// it inside a span carrying that id so every log line has it, log one access
/// line, and echo the id in `x-request-id`.
async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = new_request_id();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    req.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    async move {
        let method = req.method().as_str().to_owned();
        let mut resp = next.run(req).await;
        let route = resp
            .extensions()
            .get::<RouteTag>()
            .map_or_else(|| "unmatched".to_owned(), |t| t.0.clone());
        let m = &state.runtime.metrics;
        m.http_requests
            .get_or_create(&exoclaw_gateway::metrics::HttpLabels {
                route: route.clone(),
                method,
                status: resp.status().as_u16(),
            })
            .inc();
        m.http_duration
            .get_or_create(&exoclaw_gateway::metrics::RouteLabels { route })
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            status = resp.status().as_u16(),
            latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "request finished"
        );
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        resp
    }
    .instrument(span)
    .await
}

fn new_request_id() -> String {
    let mut b = [0u8; 12];
    // A failing CSPRNG only costs uniqueness of a log id, not security.
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer as _, ServiceExt as _};

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_next_request_is_served() {
        let service = catch_panics().layer(tower::service_fn(|req: Request| async move {
            assert!(req.uri().path() != "/boom", "boom");
            Ok::<_, std::convert::Infallible>("fine".into_response())
        }));
        let get = |p: &str| {
            axum::http::Request::get(p)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let r = service.oneshot(get("/boom")).await.unwrap();
        assert_eq!(r.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(axum::body::Body::new(r.into_body()), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal");
        assert!(
            !String::from_utf8_lossy(&body).contains("boom"),
            "the panic stays in the log"
        );
        let r = service.oneshot(get("/fine")).await.unwrap();
        assert_eq!(r.status(), axum::http::StatusCode::OK);
    }
}
