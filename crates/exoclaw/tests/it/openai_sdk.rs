//! The official `openai` Python SDK against the real binary: the client API
//! must work with the real client, not just with our reading of its wire
//! format. The SDK comes from the project virtualenv `cargo xtask test`
//! provisions (`EXOCLAW_TEST_PYTHON`); without it the test skips, unless
//! `REQUIRE_PYTHON=1`.

use crate::chat::setup;
use crate::support::*;
use exoclaw_core::provider::Usage;
use exoclaw_providers::fake::Reply;
use std::process::Command;

const SCRIPT: &str = r#"
import json, sys
import openai
from openai import OpenAI

base, token = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base, api_key=token, max_retries=0)
out = {}

models = client.models.list()
out["models"] = [m.id for m in models.data]

r = client.chat.completions.create(
    model="default", user="sdk-user",
    messages=[{"role": "user", "content": "hello sdk"}])
out["text"] = r.choices[0].message.content
out["finish"] = r.choices[0].finish_reason
out["prompt_tokens"] = r.usage.prompt_tokens

stream = client.chat.completions.create(
    model="default", user="sdk-user", stream=True,
    stream_options={"include_usage": True},
    messages=[{"role": "user", "content": "stream please"}])
pieces, usage = [], None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage:
        usage = chunk.usage.completion_tokens
out["stream_pieces"] = len(pieces)
out["stream_text"] = "".join(pieces)
out["stream_usage"] = usage

try:
    client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    out["missing"] = "no error"
except openai.NotFoundError as e:
    out["missing"] = e.code if hasattr(e, "code") else "404"

bad = OpenAI(base_url=base, api_key="wrong-token-wrong-token-wrong-token", max_retries=0)
try:
    bad.models.list()
    out["auth"] = "no error"
except openai.AuthenticationError:
    out["auth"] = "401"

print(json.dumps(out))
"#;

/// The virtualenv's interpreter `cargo xtask test` provides; `None` (the
/// test skips) without it, unless `REQUIRE_PYTHON=1`.
#[expect(
    clippy::disallowed_methods,
    reason = "tests read the harness's variables"
)]
pub fn python() -> Option<String> {
    match std::env::var("EXOCLAW_TEST_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(
                std::env::var("REQUIRE_PYTHON").as_deref() != Ok("1"),
                "REQUIRE_PYTHON=1 but EXOCLAW_TEST_PYTHON is unset: run `cargo xtask test`"
            );
            eprintln!("skipping: EXOCLAW_TEST_PYTHON not set (run `cargo xtask test`)");
            None
        }
    }
}

#[test]
fn the_official_openai_sdk_works_against_the_gateway() {
    let Some(py) = python() else { return };
    let s = setup();
    s.fake.push(Reply::text("hi from exoclaw").usage(Usage {
        input_tokens: 9,
        output_tokens: 4,
        ..Usage::default()
    }));
    s.fake.push(
        Reply::text("a streamed reply in parts")
            .deltas(5)
            .usage(Usage {
                input_tokens: 20,
                output_tokens: 5,
                ..Usage::default()
            }),
    );
    let out = Command::new(&py)
        .args(["-c", SCRIPT, &format!("http://{}/v1", s.gw.addr), TOKEN])
        .output()
        .expect("run python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    assert_eq!(v["models"], serde_json::json!(["default"]));
    assert_eq!(v["text"], "hi from exoclaw");
    assert_eq!(v["finish"], "stop");
    assert_eq!(v["prompt_tokens"], 9);
    assert_eq!(v["stream_text"], "a streamed reply in parts");
    assert!(v["stream_pieces"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["stream_usage"], 5);
    assert_eq!(v["missing"], "model_not_found");
    assert_eq!(v["auth"], "401");
}
