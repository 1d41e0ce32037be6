//! The web dashboard under `/ui/`: server-rendered pages (askama templates
//! in `crates/exoclaw/templates/ui`, compiled in), one stylesheet and one
//! small script (`crates/exoclaw/assets/ui`, embedded), no inline script.
//!
//! - Every page is a route in the one route table with the permission of
//!   the API route it shows, and calls that route's handler for its data:
//!   a page can show nothing its API would not. Adding a page: a module in
//!   `pages/`, its template, its routes in [`add_routes`] and its entry in
//!   `nav.rs`.
//! - Sign-in trades a credential for a session cookie (`session.rs`); the
//!   authentication middleware accepts that cookie for pages and for the
//!   API the script calls, with a CSRF token on everything that changes
//!   something.
//! - Every answer under `/ui/` carries the security headers
//!   ([`security_headers`]): a CSP without inline script or eval,
//!   `frame-ancestors 'none'`, no referrer to other sites (`same-origin`:
//!   with `no-referrer` browsers send `Origin: null` on our own form posts,
//!   which the CSRF check refuses), no sniffing.

mod assets;
mod form;
mod nav;
mod pages;
pub mod session;
mod table;

use super::error::ApiError;
use super::routes::{Access, Routes};
use super::state::AppState;
use askama::Template;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use exoclaw_gateway::access::Principal;

/// Where the dashboard lives.
pub const PREFIX: &str = "/ui/";
/// The sign-in page.
pub const SIGN_IN: &str = "/ui/signin";

/// Paths served without a session: the root's redirect, the sign-in page,
/// pairing a browser and the assets.
pub fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/ui" | SIGN_IN | PAIR | PAIR_WAIT) || assets::is_asset(path)
}

/// Asking to pair this browser, and waiting for the approval.
const PAIR: &str = "/ui/pair";
const PAIR_WAIT: &str = "/ui/pair/wait";

/// Whether a path is the dashboard's (answered with pages, and with a
/// redirect to the sign-in page instead of a JSON 401).
pub fn is_dashboard(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with(PREFIX)
}

/// The dashboard's routes, each with the permission of the API it shows.
pub fn add_routes(routes: Routes) -> Routes {
    use Access::{Perm, Public};
    use axum::http::Method;
    use exoclaw_gateway::access::Permission as P;
    let (get, post) = (Method::GET, Method::POST);
    routes
        .add(&get, "/", Public, root)
        .add(&get, "/ui", Public, root)
        .add(&get, SIGN_IN, Public, pages::signin::form)
        .add(&post, SIGN_IN, Public, pages::signin::submit)
        .add(
            &post,
            "/ui/signout",
            Perm(P::Status),
            pages::signin::sign_out,
        )
        .add(&post, PAIR, Public, pages::pairing::request)
        .add(&get, PAIR_WAIT, Public, pages::pairing::wait)
        .add(
            &get,
            "/ui/pairing",
            Perm(P::PairingManage),
            pages::pairing::page,
        )
        .add(
            &post,
            "/ui/pairing/decide",
            Perm(P::PairingManage),
            pages::pairing::decide,
        )
        .add(
            &post,
            "/ui/pairing/devices/{id}/revoke",
            Perm(P::PairingManage),
            pages::pairing::revoke,
        )
        .add(&get, "/ui/assets/{name}", Public, assets::serve)
        .add(&get, PREFIX, Perm(P::Status), pages::home::page)
        .add(&get, "/ui/chat", Perm(P::Chat), pages::chat::page)
        .add(&get, "/ui/agents", Perm(P::AgentsRead), pages::agents::list)
        .add(
            &post,
            "/ui/agents",
            Perm(P::AgentsWrite),
            pages::agent::create,
        )
        .add(
            &get,
            "/ui/agents/{id}",
            Perm(P::AgentsRead),
            pages::agent::show,
        )
        .add(
            &post,
            "/ui/agents/{id}",
            Perm(P::AgentsWrite),
            pages::agent::update,
        )
        .add(
            &post,
            "/ui/agents/{id}/delete",
            Perm(P::AgentsWrite),
            pages::agent::delete,
        )
        .add(
            &post,
            "/ui/agents/{id}/files/{name}",
            Perm(P::AgentsWrite),
            pages::agent::write_file,
        )
        .add(
            &post,
            "/ui/agents/{id}/files/{name}/delete",
            Perm(P::AgentsWrite),
            pages::agent::delete_file,
        )
        .add(
            &get,
            "/ui/sessions",
            Perm(P::SessionsRead),
            pages::sessions::list,
        )
        .add(
            &get,
            "/ui/sessions/{id}",
            Perm(P::SessionsRead),
            pages::sessions::show,
        )
        .add(
            &post,
            "/ui/sessions/{id}/delete",
            Perm(P::SessionsWrite),
            pages::sessions::delete,
        )
        .add(
            &get,
            "/ui/traces",
            Perm(P::SessionsRead),
            pages::traces::list,
        )
        .add(
            &get,
            "/ui/traces/{id}",
            Perm(P::SessionsRead),
            pages::traces::show,
        )
        .add(&get, "/ui/usage", Perm(P::SessionsRead), pages::usage::page)
        .add(
            &get,
            "/ui/security",
            Perm(P::TenantsManage),
            pages::security::page,
        )
        .add(&get, "/ui/audit", Perm(P::AuditRead), pages::audit::list)
        .add(&get, "/ui/teams", Perm(P::AgentsRead), pages::teams::list)
        .add(
            &get,
            "/ui/teams/{id}",
            Perm(P::AgentsRead),
            pages::teams::board,
        )
        .add(
            &get,
            "/ui/delegations",
            Perm(P::SessionsRead),
            pages::delegations::list,
        )
        .add(
            &get,
            "/ui/memory",
            Perm(P::SessionsRead),
            pages::memory::list,
        )
        .add(
            &post,
            "/ui/memory/{id}/forget",
            Perm(P::SessionsWrite),
            pages::memory::forget,
        )
        .add(&get, "/ui/skills", Perm(P::AgentsRead), pages::skills::list)
        .add(
            &post,
            "/ui/skills/{name}/approve",
            Perm(P::AgentsWrite),
            pages::skills::approve,
        )
        .add(
            &post,
            "/ui/skills/{name}/remove",
            Perm(P::AgentsWrite),
            pages::skills::remove,
        )
        .add(
            &get,
            "/ui/channels",
            Perm(P::MetricsRead),
            pages::channels::list,
        )
        .add(&get, "/ui/mcp", Perm(P::AgentsRead), pages::mcp::list)
        .add(&get, "/ui/cron", Perm(P::SessionsRead), pages::cron::list)
        .add(
            &get,
            "/ui/cron/{id}",
            Perm(P::SessionsRead),
            pages::cron::runs,
        )
        .add(&get, "/ui/users", Perm(P::UsersManage), pages::users::list)
        .add(
            &post,
            "/ui/users",
            Perm(P::UsersManage),
            pages::users::create,
        )
        .add(
            &get,
            "/ui/users/{id}",
            Perm(P::UsersManage),
            pages::users::show,
        )
        .add(
            &post,
            "/ui/users/{id}/keys",
            Perm(P::UsersManage),
            pages::users::create_key,
        )
        .add(
            &post,
            "/ui/users/{id}/keys/{key}/revoke",
            Perm(P::KeysSelf),
            pages::users::revoke_key,
        )
        .add(
            &get,
            "/ui/approvals",
            Perm(P::ApprovalsDecide),
            pages::approvals::list,
        )
        .add(
            &post,
            "/ui/approvals/{id}/{decision}",
            Perm(P::ApprovalsDecide),
            pages::approvals::decide,
        )
}

async fn root() -> Redirect {
    Redirect::to(PREFIX)
}

/// The Content-Security-Policy of every dashboard answer: own origin only,
/// no inline script, no eval, no framing, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Put the security headers on every dashboard answer (and keep pages out
/// of shared caches).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let dashboard = is_dashboard(req.uri().path());
    let asset = assets::is_asset(req.uri().path());
    let mut resp = next.run(req).await;
    if dashboard {
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
        if !asset {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    resp
}

/// Where an unauthenticated browser is sent: the sign-in page, coming back
/// here afterwards.
pub fn to_sign_in(path_and_query: &str) -> Response {
    let next = url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect::<String>();
    Redirect::to(&format!("{SIGN_IN}?next={next}")).into_response()
}

/// What every page's frame shows: who is signed in, the navigation they may
/// use, the CSRF token for forms and the script.
pub struct Shell {
    pub who: Principal,
    pub csrf: String,
    pub nav: Vec<nav::Item>,
    pub path: String,
}

impl FromRequestParts<AppState> for Shell {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, UiError> {
        let who = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)?;
        let csrf = parts
            .extensions
            .get::<session::UiSession>()
            .map(|s| s.csrf.clone())
            .unwrap_or_default();
        let path = parts.uri.path().to_owned();
        Ok(Self {
            nav: nav::for_principal(&who, &path),
            who,
            csrf,
            path,
        })
    }
}

impl Shell {
    pub fn asset(&self, name: &str) -> String {
        assets::url(name)
    }
}

/// A page's error: the API's error, shown as a page with its status.
pub struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

/// The JSON of an API handler that answers a whole `Response`, or its
/// error (code and message as the API gave them) for the page.
pub async fn json_of(resp: Response) -> Result<serde_json::Value, UiError> {
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::internal(format!("reading an answer: {e}")))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if status.is_success() {
        return Ok(value);
    }
    let code = value
        .pointer("/error/code")
        .and_then(|c| c.as_str())
        .and_then(super::error::ErrorCode::from_wire)
        .unwrap_or(super::error::ErrorCode::Internal);
    let message = value
        .pointer("/error/message")
        .and_then(|m| m.as_str())
        .unwrap_or("the request failed");
    Err(UiError(ApiError::new(code, message)))
}

impl From<askama::Error> for UiError {
    fn from(e: askama::Error) -> Self {
        Self(ApiError::internal(format!("rendering a page: {e}")))
    }
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage<'a> {
    status: u16,
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = self.0.body();
        let page = ErrorPage {
            status: status.as_u16(),
            code: body.error.code.as_str(),
            message: &body.error.message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        }
    }
}

/// Render a page.
pub fn render(page: &impl Template) -> Result<Html<String>, UiError> {
    Ok(Html(page.render()?))
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn when(ms: i64) -> String {
    let rem = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02}",
        exoclaw_providers::calendar::format_date(ms),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(when(0), "1970-01-01 00:00:00");
        assert_eq!(when(1_800_000_000_000), "2027-01-15 08:00:00");
        assert_eq!(when(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn public_paths_are_only_the_sign_in_and_assets() {
        assert!(is_public("/ui/signin"));
        assert!(is_public("/ui/pair") && is_public("/ui/pair/wait"));
        assert!(!is_public("/ui/pairing"));
        assert!(is_public("/ui/assets/app.css"));
        assert!(!is_public("/ui/"));
        assert!(!is_public("/ui/sessions"));
        assert!(!is_public("/ui/assets/../sessions"));
    }
}
