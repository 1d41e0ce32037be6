//! Bodies written in tiny chunks (1..7 bytes, and a mixed cycle), with LF
//! and CRLF line ends and multi-byte characters, decode to the same answer
//! in both wire formats.

use crate::support::{both, request};
use exoclaw_core::provider::{StopReason, ToolCall, Usage};
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::json;

fn scripted() -> Reply {
    Reply::tool_calls([
        ToolCall {
            id: "c1".into(),
            name: "search".into(),
            arguments: json!({"q": "crème brûlée 😀", "n": 5}),
        },
        ToolCall {
            id: "c2".into(),
            name: "open".into(),
            arguments: json!({"url": "https://example.com/ü"}),
        },
    ])
    .with_text("Grüße — 你好, wörld! 😀🎉")
    .deltas(5)
    .pings()
    .usage(Usage {
        input_tokens: 9,
        output_tokens: 8,
        cache_read_tokens: 7,
        cache_write_tokens: 0,
        estimated: false,
    })
}

#[tokio::test]
async fn every_chunk_size_from_one_to_seven() {
    let fake = FakeProvider::start().await.unwrap();
    for (wire, provider) in both(&fake) {
        let mut sizes: Vec<Vec<usize>> = (1..=7).map(|n| vec![n]).collect();
        sizes.push(vec![1, 2, 3, 4, 5, 6, 7]);
        sizes.push(vec![7, 3, 1]);
        for chunking in sizes {
            for crlf in [false, true] {
                let reply = scripted().chunked(&chunking);
                fake.push(if crlf { reply.crlf() } else { reply });
                let response = provider.complete(request("x")).await.unwrap_or_else(|e| {
                    panic!("{wire} with chunks {chunking:?} (crlf {crlf}): {e}")
                });
                let ctx = format!("{wire} {chunking:?} crlf={crlf}");
                assert_eq!(response.text, "Grüße — 你好, wörld! 😀🎉", "{ctx}");
                assert_eq!(response.tool_calls.len(), 2, "{ctx}");
                assert_eq!(
                    response.tool_calls[0].arguments,
                    json!({"q": "crème brûlée 😀", "n": 5}),
                    "{ctx}"
                );
                assert_eq!(
                    response.tool_calls[1].arguments,
                    json!({"url": "https://example.com/ü"}),
                    "{ctx}"
                );
                assert_eq!(response.usage.cache_read_tokens, 7, "{ctx}");
                assert_eq!(response.stop, StopReason::ToolUse, "{ctx}");
            }
        }
    }
}
