//! The gateway driven in-process: the router answered with
//! `tower::ServiceExt::oneshot` (no socket), and `Gateway::serve` on a
//! listener the test binds, stopped by a future the test resolves
//! (mini-redis's `run(listener, shutdown)`).

use crate::support::{KEY, TOKEN, TestHome};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use exoclaw::config::env::Env;
use exoclaw::serve::Gateway;
use std::net::SocketAddr;
use std::time::Duration;
use tower::ServiceExt as _;

async fn gateway(home: &TestHome) -> Gateway {
    gateway_with(home, "{}").await
}

/// The gateway of `home` with `config` (a `config.json` text), opened
/// in-process with the test token and key.
pub async fn gateway_with(home: &TestHome, config: &str) -> Gateway {
    let env = Env::from_pairs([
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ("EXOCLAW_ENCRYPTION_KEY", KEY),
        ("EXOCLAW_PORT", "0"),
    ]);
    let home_dir = exoclaw_gateway::home::Home::new(home.path.clone());
    let settings =
        exoclaw::config::from_parts(home_dir.clone(), home_dir.config_path(), config, false, env)
            .unwrap();
    Gateway::open_checked(settings).await.unwrap()
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let mut req = req.body(Body::empty()).unwrap();
    // What the accept loop adds for every connection.
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
    req
}

async fn body(resp: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_answers_in_process_with_the_same_auth() {
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let app = gw.router();
    let r = app.clone().oneshot(get("/healthz", None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.clone().oneshot(get("/v1/status", None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(r).await["error"]["code"], "auth.unauthorized");
    let r = app
        .clone()
        .oneshot(get("/v1/agents", Some(TOKEN)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["agents"][0]["id"], "default");
    gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_a_given_listener_until_told_to_stop() {
    let home = TestHome::new();
    let gw = gateway(&home).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    #[expect(
        clippy::disallowed_methods,
        reason = "a test's own concurrent load, awaited by the test"
    )]
    let serving = tokio::task::spawn(gw.serve(listener, async move {
        let _ = stopped.await;
    }));
    let r = tokio::task::spawn_blocking(move || {
        crate::support::request(addr, "GET", "/healthz", None, None)
    })
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returns after the shutdown future resolves")
        .unwrap()
        .unwrap();
}

/// `agents.window_cache_idle_sec` reaches the history window cache: a
/// window idle for longer is dropped when the trim expires windows, one
/// within the default 10 minutes is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_cache_drops_windows_idle_past_the_configured_time() {
    use exoclaw_core::agent::history::History;
    use exoclaw_core::agent::window::Window;
    for (config, kept) in [
        (r#"{"agents": {"window_cache_idle_sec": 1}}"#, 0),
        ("{}", 1),
    ] {
        let home = TestHome::new();
        let gw = gateway_with(&home, config).await;
        let windows = &gw.state().runtime.windows;
        let history = History::default();
        windows.put(
            exoclaw_core::SessionId::new("s1"),
            Window {
                history,
                last_seq: 0,
            },
        );
        assert_eq!(windows.usage().0, 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        windows.expire();
        assert_eq!(windows.usage().0, kept, "{config}");
        gw.close(tokio::time::Instant::now() + Duration::from_secs(5))
            .await;
    }
}
