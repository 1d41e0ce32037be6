//! `GET /metrics`: authenticated OpenMetrics text with HTTP, LLM, tool,
//! budget and window cache metrics under the `exoclaw_` prefix.

use crate::chat::{chat, setup_with};
use crate::support::*;
use exoclaw_core::provider::{ToolCall, Usage};
use exoclaw_providers::fake::Reply;
use serde_json::json;

fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric line starting with {prefix}\n{text}"))
}

#[test]
fn metrics_cover_requests_llm_calls_tools_and_budgets() {
    let config = json!({
        "budgets": {"models": {"gpt-4o-mini": {"daily_usd": 10.0}}},
        "agents": {"defaults": {"model": "gpt-4o-mini"}}
    });
    let s = setup_with(&config.to_string(), &[]);
    assert_eq!(
        s.gw.get("/metrics", None).status,
        401,
        "metrics are authenticated"
    );

    s.fake.push(
        Reply::tool_calls([
            ToolCall {
                id: "1".into(),
                name: "write_file".into(),
                arguments: json!({"path": "a.txt", "content": "x"}),
            },
            ToolCall {
                id: "2".into(),
                name: "read_file".into(),
                arguments: json!({"path": "/etc/passwd"}),
            },
        ])
        .usage(Usage {
            input_tokens: 100,
            output_tokens: 10,
            cache_read_tokens: 50,
            ..Usage::default()
        }),
    );
    s.fake.push(Reply::text("done").usage(Usage {
        input_tokens: 200,
        output_tokens: 20,
        ..Usage::default()
    }));
    let body = json!({"model": "default", "messages": [{"role": "user", "content": "go"}]});
    assert_eq!(chat(&s.gw, body).status, 200);

    let r = s.gw.get("/metrics", Some(TOKEN));
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"].contains("openmetrics"),
        "{:?}",
        r.headers
    );
    let t = r.body;
    assert_eq!(
        value(
            &t,
            r#"exoclaw_http_requests_total{route="/v1/chat/completions",method="POST",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &t,
            r#"exoclaw_llm_calls_total{provider="openai",model="gpt-4o-mini",status="ok"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &t,
            r#"exoclaw_llm_tokens_total{provider="openai",model="gpt-4o-mini",kind="input"}"#
        ),
        300.0
    );
    assert_eq!(
        value(
            &t,
            r#"exoclaw_llm_cache_hits_total{provider="openai",model="gpt-4o-mini"}"#
        ),
        1.0
    );
    assert!(
        value(
            &t,
            r#"exoclaw_llm_cost_usd_total{provider="openai",model="gpt-4o-mini"}"#
        ) > 0.0
    );
    assert!(t.contains("exoclaw_llm_call_duration_seconds_bucket"));
    assert_eq!(
        value(
            &t,
            r#"exoclaw_tool_calls_total{tool="write_file",status="ok"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &t,
            r#"exoclaw_tool_denials_total{tool="read_file",code="security.path_denied"}"#
        ),
        1.0
    );
    let ratio = value(
        &t,
        r#"exoclaw_budget_usage_ratio{scope="model",name="gpt-4o-mini",window="daily"}"#,
    );
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    assert!(t.contains("exoclaw_build_info{"));
    assert!(t.contains("exoclaw_websocket_connections"));
    assert!(t.contains("exoclaw_agent_runs_active"));
    // The finished turn's session window stays cached for the next turn.
    assert_eq!(value(&t, "exoclaw_window_cache_sessions "), 1.0);
    assert!(value(&t, "exoclaw_window_cache_bytes ") > 0.0);
    assert!(
        !t.contains(TOKEN) && !t.contains("sk-test"),
        "no secrets in metrics"
    );
}

#[test]
fn with_the_window_cache_off_no_window_is_kept() {
    let config = json!({
        "agents": {"defaults": {"model": "gpt-4o-mini"}, "window_cache_mib": 0}
    });
    let s = setup_with(&config.to_string(), &[]);
    s.fake.push(Reply::text("done"));
    let body = json!({"model": "default", "messages": [{"role": "user", "content": "go"}]});
    assert_eq!(chat(&s.gw, body).status, 200);
    let t = s.gw.get("/metrics", Some(TOKEN)).body;
    assert_eq!(value(&t, "exoclaw_window_cache_sessions "), 0.0);
    assert_eq!(value(&t, "exoclaw_window_cache_bytes "), 0.0);
}
