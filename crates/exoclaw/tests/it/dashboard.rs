//! The dashboard's edge, in-process (router `oneshot`): sign-in trades a
//! credential for a cookie with the right flags, pages need a session and
//! send the security headers, the API accepts the cookie only with the
//! CSRF token and from our own origin, sign-out and revoking the credential
//! end the session, and pages keep their API route's permission.

use crate::support::{TOKEN, TestHome};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use exoclaw::serve::Gateway;
use std::net::SocketAddr;
use std::time::Duration;
use tower::ServiceExt as _;

async fn gateway(home: &TestHome) -> Gateway {
    // Pages are walked quickly; the rate limit has its own tests.
    crate::inprocess::gateway_with(home, r#"{"gateway": {"rate_limit_rpm": 0}}"#).await
}

const HOST: &str = "127.0.0.1:8787";

/// A request as a browser on our own origin sends it.
fn req(method: &str, path: &str, cookie: Option<&str>) -> axum::http::request::Builder {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, format!("exoclaw_ui={c}"));
    }
    b
}

fn with_peer(mut r: Request<Body>) -> Request<Body> {
    r.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
    r
}

fn form(method: &str, path: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    with_peer(
        req(method, path, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, format!("http://{HOST}"))
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    with_peer(req("GET", path, cookie).body(Body::empty()).unwrap())
}

async fn text(resp: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(resp.into_body(), 4 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn location(resp: &axum::response::Response) -> &str {
    resp.headers()
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
}

/// Sign in with `token`: the cookie's value and the whole `Set-Cookie`.
async fn sign_in(app: &axum::Router, token: &str) -> (String, String) {
    let body = format!("token={}&next=%2Fui%2Fsessions", urlenc(token));
    let r = app
        .clone()
        .oneshot(form("POST", "/ui/signin", None, &body))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", text(r).await);
    assert_eq!(location(&r), "/ui/sessions");
    let set = r
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let value = set
        .strip_prefix("exoclaw_ui=")
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    (value, set)
}

/// A new user (role `user`) created with the gateway token, signed in with
/// their first key: the session cookie.
async fn user_session(app: &axum::Router, name: &str) -> String {
    let create = with_peer(
        req("POST", "/v1/users", None)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!(r#"{{"name":"{name}","role":"user"}}"#)))
            .unwrap(),
    );
    let created: serde_json::Value =
        serde_json::from_str(&text(app.clone().oneshot(create).await.unwrap()).await).unwrap();
    sign_in(app, created["api_key"].as_str().unwrap()).await.0
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The CSRF token a page carries in its `<meta name="csrf-token">`.
async fn csrf_of(app: &axum::Router, cookie: &str) -> String {
    let page = text(
        app.clone()
            .oneshot(get("/ui/", Some(cookie)))
            .await
            .unwrap(),
    )
    .await;
    let at = page.find("name=\"csrf-token\" content=\"").unwrap() + 27;
    page[at..at + 64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_carry_the_security_headers() {
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let app = gw.router();
    let r = app.clone().oneshot(get("/", None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/ui/");
    let r = app
        .clone()
        .oneshot(get("/ui/sessions?agent=a", None))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/ui/signin?next=%2Fui%2Fsessions%3Fagent%3Da");
    let r = app.clone().oneshot(get("/ui/signin", None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::REFERRER_POLICY], "same-origin");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    let page = text(r).await;
    assert!(!page.contains("<script>"), "no inline script");
    let handler = page.split(" on").skip(1).any(|rest| {
        let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    });
    assert!(!handler, "no inline event handler");
    // Assets: cached for good, under their digest; nothing else is served.
    let r = app
        .clone()
        .oneshot(get("/ui/assets/app.js", None))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let r = app
        .clone()
        .oneshot(get("/ui/assets/nope.js", None))
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::OK);
    // The JSON API still answers 401, not a redirect.
    let r = app.clone().oneshot(get("/v1/status", None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_strict_cookie_and_sign_out_ends_it() {
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let app = gw.router();
    // A wrong credential: back to the form, which says why; no cookie.
    let r = app
        .clone()
        .oneshot(form(
            "POST",
            "/ui/signin",
            None,
            "token=wrong&next=%2Fui%2Fagents",
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(location(&r), "/ui/signin?next=%2Fui%2Fagents&error=invalid");
    let r = app.clone().oneshot(get(location(&r), None)).await.unwrap();
    assert!(text(r).await.contains("not a valid"));
    // Elsewhere than a dashboard path, `next` is ignored.
    let r = app
        .clone()
        .oneshot(get("/ui/signin?next=https%3A%2F%2Fevil.example%2F", None))
        .await
        .unwrap();
    let page = text(r).await;
    assert!(
        page.contains("value=\"/ui/\"") && !page.contains("evil"),
        "{page}"
    );
    // From another site's form: refused.
    let mut cross = form("POST", "/ui/signin", None, &format!("token={TOKEN}"));
    cross
        .headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    let r = app.clone().oneshot(cross).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The gateway token.
    let (cookie, set) = sign_in(&app, TOKEN).await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP without a trusted proxy"
    );
    assert!(!set.contains(TOKEN));
    let r = app
        .clone()
        .oneshot(get("/ui/", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = text(r).await;
    assert!(page.contains("Overview") && page.contains("gateway-token"));
    assert!(!page.contains(TOKEN), "the credential is never rendered");
    // The API takes the cookie for reads.
    let r = app
        .clone()
        .oneshot(get("/v1/status", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Sign-out needs the CSRF token; with it, the session is over.
    let r = app
        .clone()
        .oneshot(form("POST", "/ui/signout", Some(&cookie), "csrf=nope"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let csrf = csrf_of(&app, &cookie).await;
    let r = app
        .clone()
        .oneshot(form(
            "POST",
            "/ui/signout",
            Some(&cookie),
            &format!("csrf={csrf}"),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = app
        .clone()
        .oneshot(get("/ui/", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed out");
    let r = app
        .clone()
        .oneshot(get("/v1/status", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_takes_the_cookie_only_with_the_csrf_token_from_our_origin() {
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let app = gw.router();
    let (cookie, _) = sign_in(&app, TOKEN).await;
    let csrf = csrf_of(&app, &cookie).await;
    let call = |token: Option<&str>, origin: Option<&str>| {
        let mut b = req("POST", "/v1/agents", Some(&cookie))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            b = b.header("x-csrf-token", t);
        }
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        with_peer(
            b.body(Body::from(r#"{"id":"helper","display_name":"Helper"}"#))
                .unwrap(),
        )
    };
    for (token, origin) in [
        (None, None),
        (Some("0".repeat(64)), None),
        (Some(csrf.clone()), Some("http://evil.example")),
    ] {
        let r = app
            .clone()
            .oneshot(call(token.as_deref(), origin))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(text(r).await.contains("auth.csrf"));
    }
    let r = app
        .clone()
        .oneshot(call(Some(&csrf), Some(&format!("http://{HOST}"))))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", text(r).await);
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_key_ends_its_sessions_and_pages_keep_their_permissions() {
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let app = gw.router();
    let create = with_peer(
        req("POST", "/v1/users", None)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"name":"alice","key":{"scopes":["chat"]}}"#))
            .unwrap(),
    );
    let r = app.clone().oneshot(create).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    let (cookie, _) = sign_in(&app, &key).await;
    // A chat-scoped key: the chat page, not the approvals queue.
    let r = app
        .clone()
        .oneshot(get("/ui/chat", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = text(r).await;
    assert!(
        !page.contains("/ui/approvals"),
        "no nav entry without the permission"
    );
    let r = app
        .clone()
        .oneshot(get("/ui/approvals", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The owner revokes the key: the session is over at its next request.
    let revoke = with_peer(
        req("DELETE", &format!("/v1/keys/{key_id}"), None)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    );
    let r = app.clone().oneshot(revoke).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = app
        .clone()
        .oneshot(get("/ui/chat", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/ui/signin"));
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

/// Every page of the dashboard (read from the route table, so a new page is
/// covered at once): an owner gets it, with a heading and no inline style
/// or script; a `user` gets exactly the pages its role's permissions allow
/// (the others answer 403), and its navigation shows only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_and_keeps_its_route_permission() {
    use exoclaw::http::routes::Access;
    use exoclaw_gateway::access::role_allows;
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let app = gw.router();
    let (_, table) = exoclaw::http::all_routes().finish();
    let pages: Vec<(String, Access)> = table
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/ui/") && !r.path.contains('{'))
        .filter(|r| !matches!(r.access, Access::Public))
        .map(|r| (r.path.to_owned(), r.access))
        .collect();
    assert!(pages.len() >= 15, "{pages:?}");
    let (owner, _) = sign_in(&app, TOKEN).await;
    for (path, _) in &pages {
        let r = app.clone().oneshot(get(path, Some(&owner))).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let page = text(r).await;
        assert!(page.contains("<h1>"), "{path}");
        assert!(
            !page.contains("style=") && !page.contains("<script>"),
            "{path}"
        );
    }
    // Pages with a query: the chain verified, sessions searched.
    for (path, says) in [
        ("/ui/audit?verify=1", "The chain is intact"),
        (
            "/ui/audit?action=auth.success&decision=allow",
            "auth.success",
        ),
        ("/ui/sessions?q=nothing-like-it", "No session"),
    ] {
        let r = app.clone().oneshot(get(path, Some(&owner))).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(text(r).await.contains(says), "{path}");
    }
    // A user's key (all of the role's permissions).
    let user = user_session(&app, "carol").await;
    let home_page = text(app.clone().oneshot(get("/ui/", Some(&user))).await.unwrap()).await;
    for (path, access) in &pages {
        let Access::Perm(perm) = access else { continue };
        let allowed = role_allows(exoclaw_core::model::Role::User, *perm);
        let r = app.clone().oneshot(get(path, Some(&user))).await.unwrap();
        let expected = if allowed {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(r.status(), expected, "{path} for a user");
        let in_nav = home_page.contains(&format!("<a href=\"{path}\""));
        if !allowed {
            assert!(!in_nav, "{path} is not in a user's navigation");
        }
    }
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

/// Agents from the dashboard: created, their settings refused with the
/// field named (the typed text kept on the form) or saved, then deleted;
/// each form is the API's operation, audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_created_edited_and_deleted_from_their_page() {
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let app = gw.router();
    let (cookie, _) = sign_in(&app, TOKEN).await;
    let csrf = csrf_of(&app, &cookie).await;
    let post = |path: &str, body: String| form("POST", path, Some(&cookie), &body);
    let r = app
        .clone()
        .oneshot(post(
            "/ui/agents",
            format!("csrf={csrf}&id=scribe&display_name=Scribe"),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/ui/agents/scribe");
    let bad = format!(
        "csrf={csrf}&display_name=Scribe&agent_type=open&config={}",
        urlenc(r#"{"max_iterations": -5}"#)
    );
    let r = app
        .clone()
        .oneshot(post("/ui/agents/scribe", bad))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = text(r).await;
    assert!(
        page.contains("id=\"agent-error\"") && page.contains("max_iterations"),
        "{page}"
    );
    assert!(page.contains("-5"), "what was typed stays on the form");
    let good = format!(
        "csrf={csrf}&display_name=Scribe+II&agent_type=predefined&config={}",
        urlenc(r#"{"max_iterations": 7}"#)
    );
    let r = app
        .clone()
        .oneshot(post("/ui/agents/scribe", good))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let api = with_peer(
        req("GET", "/v1/agents/scribe", None)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    );
    let agent: serde_json::Value =
        serde_json::from_str(&text(app.clone().oneshot(api).await.unwrap()).await).unwrap();
    assert_eq!(agent["display_name"], "Scribe II");
    assert_eq!(agent["agent_type"], "predefined");
    assert_eq!(agent["config"]["max_iterations"], 7);
    let r = app
        .clone()
        .oneshot(post("/ui/agents/scribe/delete", format!("csrf={csrf}")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app
        .clone()
        .oneshot(get("/ui/agents/scribe", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

/// Behind a TLS proxy listed in `gateway.trusted_proxies` that says so, the
/// cookie is `Secure`; the same header from anyone else changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_is_secure_behind_a_trusted_tls_proxy_only() {
    let home = TestHome::new();
    let config = r#"{"gateway": {"rate_limit_rpm": 0, "trusted_proxies": ["127.0.0.1"]}}"#;
    let gw = crate::inprocess::gateway_with(&home, config).await;
    let app = gw.router();
    let sign_in_from = |peer: [u8; 4]| {
        let mut r = req("POST", "/ui/signin", None)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, format!("http://{HOST}"))
            .header("x-forwarded-proto", "https")
            .body(Body::from(format!("token={TOKEN}")))
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((peer, 1))));
        r
    };
    let r = app
        .clone()
        .oneshot(sign_in_from([127, 0, 0, 1]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set.ends_with("; Secure"), "{set}");
    let r = app
        .clone()
        .oneshot(sign_in_from([127, 0, 0, 2]))
        .await
        .unwrap();
    let set = r.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(!set.contains("Secure"), "an untrusted peer's header: {set}");
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

/// The usage page draws each day's cost stacked per model, lists the
/// totals, and shows every budget limit against its use to those who may
/// read budgets (not to a user).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_page_charts_the_ledger_and_budgets_against_their_limits() {
    use exoclaw_core::provider::Usage;
    use exoclaw_core::trace::UsageEntry;
    let home = TestHome::new();
    let gw = crate::inprocess::gateway_with(
        &home,
        r#"{"gateway": {"rate_limit_rpm": 0},
            "budgets": {"models": {"m1": {"daily_usd": 1}}}}"#,
    )
    .await;
    let app = gw.router();
    let (owner, _) = sign_in(&app, TOKEN).await;
    let r = app
        .clone()
        .oneshot(get("/ui/usage", Some(&owner)))
        .await
        .unwrap();
    let page = text(r).await;
    assert!(page.contains("No model calls in this range"), "{page}");
    assert!(page.contains("model m1"), "a limit shows before any use");
    let usage = gw.state().runtime.usage();
    for (model, cost) in [("m1", 250_000), ("m1", 250_000), ("m2", 40_000)] {
        usage
            .record_usage(&UsageEntry {
                tenant_id: exoclaw_core::TenantId::new("default"),
                provider: "openai".to_owned(),
                model: model.to_owned(),
                agent_id: Some(exoclaw_core::AgentId::new("default")),
                user_id: Some(exoclaw_core::UserId::new("owner")),
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                    ..Usage::default()
                },
                cost_micros: cost,
            })
            .await
            .unwrap();
    }
    let r = app
        .clone()
        .oneshot(get("/ui/usage?days=7", Some(&owner)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = text(r).await;
    assert!(page.contains(r#"<rect class="s0""#), "m1's bar: {page}");
    assert!(page.contains(r#"<rect class="s1""#), "m2's bar");
    assert!(page.contains("the tallest day is $0.54"), "{page}");
    assert!(
        page.contains("<td>m1</td><td>2</td><td>20 / 10</td>"),
        "{page}"
    );
    assert!(page.contains("$0.50"), "m1's use against its limit");
    assert!(page.contains("50 %"), "{page}");
    assert!(page.contains(r#"<meter min="0" max="1000000""#), "{page}");
    assert!(!page.contains("style="));
    let r = app
        .clone()
        .oneshot(get("/ui/usage?days=0", Some(&owner)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("days"));
    // A user: their own calls (none), no budgets.
    let user = user_session(&app, "dora").await;
    let page = text(
        app.clone()
            .oneshot(get("/ui/usage", Some(&user)))
            .await
            .unwrap(),
    )
    .await;
    assert!(page.contains("your own calls"), "{page}");
    assert!(page.contains("No model calls in this range"));
    assert!(!page.contains("Budgets"), "budgets need metrics.read");
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

/// An agent's context files from its page: saved from a form (a browser's
/// CRLF line ends stored as LF), shown, refused over the cap with the
/// reason, removed; the forms need the session's CSRF token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_files_are_edited_from_the_agent_page() {
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let app = gw.router();
    let (cookie, _) = sign_in(&app, TOKEN).await;
    let csrf = csrf_of(&app, &cookie).await;
    let page = text(
        app.clone()
            .oneshot(get("/ui/agents/default", Some(&cookie)))
            .await
            .unwrap(),
    )
    .await;
    assert!(page.contains("<h2>Context files</h2>"), "{page}");
    assert!(page.contains(r#"<details id="file-TOOLS.md">"#), "{page}");
    let save = |body: String| {
        form(
            "POST",
            "/ui/agents/default/files/SOUL.md",
            Some(&cookie),
            &body,
        )
    };
    let r = app
        .clone()
        .oneshot(save("content=Be%20brief.%0D%0ANo%20emoji.".to_owned()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let r = app
        .clone()
        .oneshot(save(format!(
            "csrf={csrf}&content=Be%20brief.%0D%0ANo%20emoji."
        )))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/ui/agents/default#file-SOUL.md");
    let on_disk = std::fs::read_to_string(home.path.join("agents/default/SOUL.md")).unwrap();
    assert_eq!(on_disk, "Be brief.\nNo emoji.\n");
    let page = text(
        app.clone()
            .oneshot(get("/ui/agents/default", Some(&cookie)))
            .await
            .unwrap(),
    )
    .await;
    assert!(page.contains("Be brief.\nNo emoji.\n</textarea>"), "{page}");
    assert!(page.contains(r#"<details id="file-SOUL.md" open>"#));
    let big = "x".repeat(70_000);
    let r = app
        .clone()
        .oneshot(save(format!("csrf={csrf}&content={big}")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(text(r).await.contains("at most 65536 bytes"));
    let r = app
        .clone()
        .oneshot(form(
            "POST",
            "/ui/agents/default/files/SOUL.md/delete",
            Some(&cookie),
            &format!("csrf={csrf}"),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!home.path.join("agents/default/SOUL.md").exists());
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

/// A session ends after 30 idle minutes and after 12 hours whatever its
/// use: the next page leads to the sign-in form and the stored session is
/// gone; a session in use within the idle time keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_when_idle_and_at_their_absolute_end() {
    use exoclaw::http::ui::session::{ABSOLUTE_MS, IDLE_MS};
    use sha2::Digest as _;
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let app = gw.router();
    let store = gw.state().store.clone();
    let now = exoclaw_providers::calendar::now_millis();
    let digest = |c: &str| hex::encode(sha2::Sha256::digest(c.as_bytes()));
    // The stored session of `cookie` moved back in time (activity only
    // ever moves forward through the store's own calls).
    let age = |cookie: String, created: i64, last_seen: i64| {
        let store = store.clone();
        let id = digest(&cookie);
        async move {
            let mut s = store.dashboard_session(&id).await.unwrap().unwrap();
            assert_eq!(s.expires_at - s.created_at, ABSOLUTE_MS);
            assert!(store.delete_dashboard_session(&id).await.unwrap());
            s.created_at = created;
            s.expires_at = created + ABSOLUTE_MS;
            s.last_seen_at = last_seen;
            store.create_dashboard_session(&s).await.unwrap();
        }
    };
    let status = |cookie: String| {
        let app = app.clone();
        async move {
            let r = app.oneshot(get("/ui/agents", Some(&cookie))).await.unwrap();
            (
                r.status(),
                r.headers()
                    .get(header::LOCATION)
                    .map(|l| l.to_str().unwrap().to_owned()),
            )
        }
    };

    // Used 29 minutes ago: still in.
    let (fresh, _) = sign_in(&app, TOKEN).await;
    age(fresh.clone(), now - 3_600_000, now - IDLE_MS + 60_000).await;
    assert_eq!(status(fresh.clone()).await.0, StatusCode::OK);

    // Idle for 30 minutes: out, and forgotten.
    let (idle, _) = sign_in(&app, TOKEN).await;
    age(idle.clone(), now - 3_600_000, now - IDLE_MS - 1).await;
    let (code, to) = status(idle.clone()).await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    assert!(to.unwrap().starts_with("/ui/signin"));
    assert!(
        store
            .dashboard_session(&digest(&idle))
            .await
            .unwrap()
            .is_none()
    );

    // Used a minute ago but 12 hours old: out.
    let (old, _) = sign_in(&app, TOKEN).await;
    age(old.clone(), now - ABSOLUTE_MS - 1, now - 60_000).await;
    let (code, to) = status(old.clone()).await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    assert!(to.unwrap().starts_with("/ui/signin"));
    assert!(
        store
            .dashboard_session(&digest(&old))
            .await
            .unwrap()
            .is_none()
    );
    // The fresh one was not touched by the others' ends.
    assert_eq!(status(fresh).await.0, StatusCode::OK);
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

/// The skills page offers installing to those who may change agents only
/// (the API refuses the others anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_skill_upload_is_offered_to_agent_writers_only() {
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let app = gw.router();
    let (owner, _) = sign_in(&app, TOKEN).await;
    let page = text(
        app.clone()
            .oneshot(get("/ui/skills", Some(&owner)))
            .await
            .unwrap(),
    )
    .await;
    assert!(page.contains(r#"data-upload="/v1/skills""#), "{page}");
    let user = user_session(&app, "erin").await;
    let page = text(
        app.clone()
            .oneshot(get("/ui/skills", Some(&user)))
            .await
            .unwrap(),
    )
    .await;
    assert!(page.contains("<h1>Skills</h1>"), "{page}");
    assert!(!page.contains("data-upload"), "{page}");
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}
