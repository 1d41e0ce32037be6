//! The route table: every HTTP route is added through [`Routes::add`] with the
//! access it requires, so a route without a declared permission cannot be
//! written. The same table drives the authorisation layer (checked after
//! routing, against the matched route) and `exoclaw routes`, which the
//! role × route matrix test walks.

use super::error::{ApiError, ErrorCode};
use super::state::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use exoclaw_gateway::access::{Permission, Principal};
use serde::Serialize;
use std::sync::Arc;

/// What a route requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "permission")]
pub enum Access {
    /// No credential (health probes, the pairing request).
    Public,
    /// Authenticates in its own protocol (the WebSocket `connect` frame),
    /// then checks each method's permission.
    SelfAuth,
    /// A credential holding this permission.
    Perm(#[serde(serialize_with = "perm_name")] Permission),
}

fn perm_name<S: serde::Serializer>(p: &Permission, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}

#[derive(Clone, Debug, Serialize)]
pub struct RouteSpec {
    pub method: String,
    pub path: &'static str,
    pub access: Access,
}

/// The router under construction and its declared table.
pub struct Routes {
    router: Router<AppState>,
    specs: Vec<RouteSpec>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            specs: Vec::new(),
        }
    }

    /// Route `method path` to `handler`, requiring `access`.
    pub fn add<H, T>(self, method: &Method, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        // Every method used here has a filter; an unknown one is a bug in
        // this file, caught by the route-table test at once.
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::TRACE);
        self.add_boxed(method, path, access, on(filter, handler))
    }

    /// The part of [`Self::add`] that is the same for every handler, kept out
    /// of line: inlined into each of the ~160 copies of `add`, it made the
    /// route table's construction a few hundred KiB of code that every start
    /// runs (and keeps resident).
    #[inline(never)]
    fn add_boxed(
        mut self,
        method: &Method,
        path: &'static str,
        access: Access,
        route: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, route);
        self.specs.push(RouteSpec {
            method: method.as_str().to_owned(),
            path,
            access,
        });
        self
    }

    /// The router with the authorisation layer applied to every route, and
    /// the table.
    pub fn finish(self) -> (Router<AppState>, Arc<Vec<RouteSpec>>) {
        let specs = Arc::new(self.specs);
        let table = specs.clone();
        let router = self
            .router
            .route_layer(axum::middleware::from_fn(move |req, next| {
                authorize(table.clone(), req, next)
            }));
        (router, specs)
    }
}

/// Check the matched route's declared access against the principal that
/// `require_auth` established. A route missing from the table is refused
/// (fail closed).
async fn authorize(table: Arc<Vec<RouteSpec>>, req: Request, next: Next) -> Response {
    let Some(path) = req.extensions().get::<MatchedPath>().map(|p| p.as_str()) else {
        return ApiError::not_found().into_response();
    };
    // HEAD is served by GET handlers.
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    // A linear scan of a few dozen entries: cheaper than hashing the key.
    let access = table
        .iter()
        .find(|s| s.path == path && s.method == method.as_str())
        .map(|s| s.access);
    match access {
        Some(Access::Public | Access::SelfAuth) => next.run(req).await,
        Some(Access::Perm(perm)) => match req.extensions().get::<Principal>() {
            Some(who) if who.can(perm) => next.run(req).await,
            Some(who) => {
                tracing::warn!(
                    event = "security.forbidden",
                    actor = %who.actor,
                    role = %who.role,
                    permission = %perm,
                    route = path,
                    "permission denied"
                );
                forbidden(perm).into_response()
            }
            None => ApiError::unauthorized().into_response(),
        },
        None => method_not_allowed(&table, path, &method),
    }
}

/// `405` with `Allow` for a method the matched path does not serve (the
/// router hands such requests to this layer too). A path without any entry
/// cannot be matched, since every route is added through [`Routes::add`];
/// should one appear anyway, it is refused the same way (fail closed).
fn method_not_allowed(table: &[RouteSpec], path: &str, method: &Method) -> Response {
    let mut allowed: Vec<&str> = table
        .iter()
        .filter(|s| s.path == path)
        .map(|s| s.method.as_str())
        .collect();
    if allowed.contains(&"GET") {
        allowed.push("HEAD");
    }
    allowed.sort_unstable();
    allowed.dedup();
    let allow = allowed.join(", ");
    tracing::debug!(route = path, method = %method, "method not allowed");
    let mut resp = ApiError::new(
        ErrorCode::RequestMethodNotAllowed,
        format!("{method} is not allowed here; allowed: {allow}"),
    )
    .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(axum::http::header::ALLOW, v);
    }
    resp
}

pub fn forbidden(perm: Permission) -> ApiError {
    ApiError::forbidden(format!("this credential lacks the permission {perm}"))
}
