//! OpenTelemetry export (feature `otel`): a chat turn with tool calls, run
//! by the real binary, arrives at a loopback OTLP/HTTP receiver as decoded
//! `ExportTraceServiceRequest`s with the turn as root span, LLM and tool
//! spans as its children, GenAI attributes, and no message text or tool
//! arguments; what is queued at shutdown is flushed. Without the feature,
//! enabling telemetry is refused at start-up, naming the feature.

#[cfg(feature = "otel")]
mod export {
    use crate::chat::{chat, setup_with};
    use crate::support::*;
    use exoclaw_core::provider::{ToolCall, Usage};
    use exoclaw_providers::fake::Reply;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
    use prost::Message as _;
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn spans(r: &[Received]) -> Vec<Span> {
        r.iter()
            .filter(|x| x.path == "/v1/traces")
            .flat_map(|x| {
                ExportTraceServiceRequest::decode(x.body.as_slice())
                    .expect("a valid ExportTraceServiceRequest")
                    .resource_spans
            })
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }

    fn attrs(s: &Span) -> BTreeMap<String, Any> {
        s.attributes
            .iter()
            .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
            .collect()
    }

    fn text(a: &BTreeMap<String, Any>, k: &str) -> String {
        match a.get(k) {
            Some(Any::StringValue(s)) => s.clone(),
            other => panic!("{k}: {other:?}"),
        }
    }

    fn int(a: &BTreeMap<String, Any>, k: &str) -> i64 {
        match a.get(k) {
            Some(Any::IntValue(i)) => *i,
            other => panic!("{k}: {other:?}"),
        }
    }

    fn roots(s: &[Span]) -> usize {
        s.iter()
            .filter(|s| s.name.starts_with("invoke_agent"))
            .count()
    }

    #[test]
    fn otel_exports_a_turn_with_genai_spans_and_no_content() {
        let collector = Receiver::start(200);
        let config = json!({"agents": {"defaults": {"model": "gpt-4o-mini"}}});
        let endpoint = collector.url("");
        let mut s = setup_with(
            &config.to_string(),
            &[
                ("EXOCLAW_TELEMETRY_ENABLED", "true"),
                ("EXOCLAW_TELEMETRY_ENDPOINT", &endpoint),
                ("EXOCLAW_TELEMETRY_PROTOCOL", "http"),
                ("EXOCLAW_TELEMETRY_SERVICE_NAME", "exoclaw-test"),
            ],
        );
        s.fake.push(
            Reply::tool_calls([
                ToolCall {
                    id: "1".into(),
                    name: "write_file".into(),
                    arguments: json!({"path": "note.txt", "content": "CANARY-tool-argument"}),
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
                cache_read_tokens: 40,
                cache_write_tokens: 5,
                estimated: false,
            }),
        );
        s.fake.push(Reply::text("CANARY-model-reply").usage(Usage {
            input_tokens: 200,
            output_tokens: 20,
            ..Usage::default()
        }));
        let body = json!({"model": "default", "messages": [{"role": "user", "content": "CANARY-user-words"}]});
        assert_eq!(chat(&s.gw, body).status, 200);

        let got = collector.wait_for(Duration::from_secs(15), |r| roots(&spans(r)) == 1);
        for r in &got {
            assert_eq!(r.method, "POST");
            assert_eq!(r.path, "/v1/traces");
            assert_eq!(r.headers["content-type"], "application/x-protobuf");
            let raw = String::from_utf8_lossy(&r.body);
            for canary in [
                "CANARY-user-words",
                "CANARY-model-reply",
                "CANARY-tool-argument",
                "/etc/passwd",
                TOKEN,
            ] {
                assert!(!raw.contains(canary), "{canary} was exported");
            }
        }
        let req = ExportTraceServiceRequest::decode(got[0].body.as_slice()).unwrap();
        let resource = req.resource_spans[0].resource.clone().unwrap();
        let service = resource
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.clone()?.value);
        assert_eq!(service, Some(Any::StringValue("exoclaw-test".into())));

        let all = spans(&got);
        let mut names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "chat gpt-4o-mini",
                "chat gpt-4o-mini",
                "execute_tool read_file",
                "execute_tool write_file",
                "invoke_agent default"
            ]
        );
        let root = all
            .iter()
            .find(|s| s.name == "invoke_agent default")
            .unwrap();
        assert!(root.parent_span_id.is_empty());
        assert_eq!(root.trace_id.len(), 16);
        assert_eq!(root.status.clone().unwrap().code, StatusCode::Ok as i32);
        let ra = attrs(root);
        assert_eq!(text(&ra, "gen_ai.operation.name"), "invoke_agent");
        assert_eq!(text(&ra, "gen_ai.agent.name"), "default");
        for child in all.iter().filter(|s| s.span_id != root.span_id) {
            assert_eq!(child.trace_id, root.trace_id, "{}", child.name);
            assert_eq!(child.parent_span_id, root.span_id, "{}", child.name);
            assert!(child.start_time_unix_nano >= root.start_time_unix_nano);
            assert!(child.end_time_unix_nano <= root.end_time_unix_nano);
            assert_eq!(child.span_id.len(), 8);
        }
        let mut llm: Vec<&Span> = all.iter().filter(|s| s.name.starts_with("chat ")).collect();
        llm.sort_by_key(|s| s.start_time_unix_nano);
        let first = attrs(llm[0]);
        assert_eq!(llm[0].kind, SpanKind::Client as i32);
        assert_eq!(text(&first, "gen_ai.operation.name"), "chat");
        assert_eq!(text(&first, "gen_ai.provider.name"), "openai");
        assert_eq!(text(&first, "gen_ai.system"), "openai");
        assert_eq!(text(&first, "gen_ai.request.model"), "gpt-4o-mini");
        // The fake's OpenAI wire reports cache writes inside prompt tokens.
        assert!(int(&first, "gen_ai.usage.input_tokens") >= 100);
        assert_eq!(
            int(&ra, "gen_ai.usage.input_tokens"),
            llm.iter()
                .map(|s| int(&attrs(s), "gen_ai.usage.input_tokens"))
                .sum::<i64>(),
            "the turn's total is its calls' sum"
        );
        assert_eq!(int(&first, "gen_ai.usage.output_tokens"), 10);
        assert_eq!(int(&first, "gen_ai.usage.cache_read.input_tokens"), 40);
        // (OpenAI's wire has no cache writes: present, but 0.)
        assert_eq!(int(&first, "gen_ai.usage.cache_creation.input_tokens"), 0);
        let reasons = |a: &BTreeMap<String, Any>| match a.get("gen_ai.response.finish_reasons") {
            Some(Any::ArrayValue(v)) => v
                .values
                .iter()
                .filter_map(|x| match &x.value {
                    Some(Any::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            other => panic!("finish reasons: {other:?}"),
        };
        assert_eq!(reasons(&first), ["tool_calls"]);
        assert_eq!(reasons(&attrs(llm[1])), ["stop"]);

        let tool = |n: &str| {
            all.iter()
                .find(|s| s.name == format!("execute_tool {n}"))
                .unwrap()
        };
        let w = tool("write_file");
        assert_eq!(text(&attrs(w), "gen_ai.tool.name"), "write_file");
        assert_eq!(w.status.clone().unwrap().code, StatusCode::Ok as i32);
        let r = tool("read_file");
        assert_eq!(text(&attrs(r), "error.type"), "security.path_denied");
        assert_eq!(r.status.clone().unwrap().code, StatusCode::Error as i32);

        // A turn still queued at SIGTERM is flushed before the exit.
        s.fake.push(Reply::text("second"));
        let body = json!({"model": "default", "messages": [{"role": "user", "content": "again"}]});
        assert_eq!(chat(&s.gw, body).status, 200);
        s.gw.signal("TERM");
        assert!(s.gw.wait_exit(Duration::from_secs(20)).success());
        assert_eq!(roots(&spans(&collector.received())), 2);
    }

    #[test]
    fn otel_a_collector_that_is_down_never_fails_a_turn() {
        let (_held, port) = occupied_port();
        drop(_held);
        let endpoint = format!("http://127.0.0.1:{port}");
        let s = setup_with(
            "{}",
            &[
                ("EXOCLAW_TELEMETRY_ENABLED", "true"),
                ("EXOCLAW_TELEMETRY_ENDPOINT", &endpoint),
            ],
        );
        s.fake.push(Reply::text("fine"));
        let body = json!({"model": "default", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(chat(&s.gw, body).status, 200);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let dropped = || {
            s.gw.log_lines()
                .iter()
                .any(|l| l.contains("telemetry.spans_dropped"))
        };
        while !dropped() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(dropped(), "a warning about the dropped spans");
        let m = s.gw.get("/metrics", Some(TOKEN)).body;
        assert!(
            m.lines()
                .any(|l| l.starts_with("exoclaw_telemetry_spans_dropped_total")
                    && !l.ends_with(" 0")),
            "{m}"
        );
    }
}

#[cfg(not(feature = "otel"))]
#[test]
fn enabling_telemetry_without_the_otel_feature_is_refused() {
    use crate::support::*;
    let home = TestHome::new();
    let env = [
        ("EXOCLAW_TELEMETRY_ENABLED", "true"),
        ("EXOCLAW_TELEMETRY_ENDPOINT", "http://127.0.0.1:4318"),
    ];
    let err = Gateway::try_start(&home.path, &env)
        .err()
        .unwrap_or_default();
    assert!(err.contains("--features otel"), "{err}");
    assert!(!home.path.exists(), "nothing was written");
}
