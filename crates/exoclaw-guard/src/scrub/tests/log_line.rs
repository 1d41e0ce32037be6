//! Tests of scrubbing JSON log lines: values are redacted, keys and the
//! structural fields never, the line stays JSON with its keys in order,
//! anything else is scrubbed as text.

use crate::scrub::{Scrubber, log_line};
use std::borrow::Cow;

/// A strong-looking value that shows up as a key and as the event name.
const SNEAKY: &str = "Zq8xP4vL.auth_failure";

fn check(s: &Scrubber, line: &str, expect: &str) {
    let got = s.scrub_log_line(line);
    assert_eq!(got, expect, "scrub_log_line({line:?})");
    assert_eq!(s.scrub_log_line(&got), got, "not idempotent for {line:?}");
    if log_line::value_regions(line).is_some() {
        assert!(log_line::value_regions(&got).is_some(), "not JSON: {got}");
    }
}

#[test]
fn clean_lines_are_borrowed() {
    let s = Scrubber::new();
    s.register("gateway-Hq2mV8sJ-0c7e11fa");
    for line in [
        "",
        "{\"timestamp\":\"2026-11-21T22:05:13.412Z\",\"level\":\"INFO\",\"message\":\"request\",\"status\":200}\n",
        "not json at all",
    ] {
        assert!(
            matches!(s.scrub_log_line(line), Cow::Borrowed(_)),
            "{line:?}"
        );
    }
}

#[test]
fn keys_and_structural_fields_are_never_rewritten() {
    let s = Scrubber::new();
    // Registered at gateway level, where no strength check applies.
    s.register(SNEAKY);
    let line = format!(
        r#"{{"timestamp":"t","level":"WARN","{SNEAKY}":"value {SNEAKY}","event":"{SNEAKY}","target":"{SNEAKY}","message":"saw {SNEAKY}","span":{{"name":"{SNEAKY}","id":"{SNEAKY}"}},"spans":[{{"name":"{SNEAKY}"}}],"fields":{{"event":"{SNEAKY}","x":"{SNEAKY}"}}}}"#
    );
    let expect = format!(
        r#"{{"timestamp":"t","level":"WARN","{SNEAKY}":"value [REDACTED:registered]","event":"{SNEAKY}","target":"{SNEAKY}","message":"saw [REDACTED:registered]","span":{{"name":"{SNEAKY}","id":"[REDACTED:registered]"}},"spans":[{{"name":"{SNEAKY}"}}],"fields":{{"event":"{SNEAKY}","x":"[REDACTED:registered]"}}}}"#
    );
    check(&s, &line, &expect);
}

#[test]
fn regression_registered_values_cannot_forge_level_or_hide_the_event() {
    let s = Scrubber::new();
    s.register("security.auth_failure");
    s.register(r#""level":"WARN""#);
    s.register(r#"level":"WARN","event":"security.auth_failure"#);
    let line = r#"{"timestamp":"2026-11-21T22:05:13Z","level":"WARN","event":"security.auth_failure","message":"bad credentials","target":"exoclaw::audit"}
"#;
    let got = s.scrub_log_line(line);
    assert!(matches!(got, Cow::Borrowed(_)), "{got}");
}

#[test]
fn a_value_spanning_fields_is_cut_to_the_values() {
    let s = Scrubber::new();
    s.register(r#"x9Qp","level":"ERROR"#);
    check(
        &s,
        r#"{"message":"x9Qp","level":"ERROR"}"#,
        r#"{"message":"[REDACTED:registered]","level":"ERROR"}"#,
    );
    // Inside a value the same text is JSON-escaped: all of it goes.
    check(
        &s,
        r#"{"message":"a x9Qp\",\"level\":\"ERROR b","level":"INFO"}"#,
        r#"{"message":"a [REDACTED:registered] b","level":"INFO"}"#,
    );
}

#[test]
fn every_tenants_secrets_and_formats_in_values() {
    let s = Scrubber::new();
    s.register_for("a", "k", "tenant-a-Zq8xP4vL-9f86d081")
        .expect("strong value");
    check(
        &s,
        "{\"level\":\"INFO\",\"message\":\"login\",\"password\":\"hunter22hunter\",\"note\":\"uses tenant-a-Zq8xP4vL-9f86d081\",\"k\":\"ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789\"}\n",
        "{\"level\":\"INFO\",\"message\":\"login\",\"password\":\"[REDACTED:password]\",\"note\":\"uses [REDACTED:registered]\",\"k\":\"[REDACTED:github_token]\"}\n",
    );
}

#[test]
fn a_number_holding_a_secret_becomes_a_string() {
    let s = Scrubber::new();
    s.register("4929136452798123");
    check(
        &s,
        r#"{"card":4929136452798123,"line_number":4929136452798123,"n":[1,4929136452798123.5]}"#,
        r#"{"card":"[REDACTED:registered]","line_number":4929136452798123,"n":[1,"[REDACTED:registered]"]}"#,
    );
}

#[test]
fn secrets_with_json_escapes() {
    let s = Scrubber::new();
    s.register("pa ss/w\"rd+x?y");
    s.register("Zq8xP4vL\\9f86");
    check(
        &s,
        r#"{"message":"got pa ss/w\"rd+x?y and Zq8xP4vL\\9f86\"!"}"#,
        r#"{"message":"got [REDACTED:registered] and [REDACTED:registered]\"!"}"#,
    );
}

#[test]
fn a_redaction_never_splits_an_escape() {
    use crate::scrub::{REGISTERED, Span};
    let line = r#"{"m":"ab\"cd\u00e9f"}"#;
    let regions = log_line::value_regions(line).expect("valid");
    let span = |start, end| Span {
        start,
        end,
        rank: 0,
        kind: REGISTERED,
        quoted: false,
    };
    // Ending between `\` and `"`, starting inside `\u00e9`.
    let spans = log_line::confine(line, &regions, vec![span(6, 9), span(15, 18)]);
    let got = crate::scrub::redact(line, spans);
    assert_eq!(
        got,
        r#"{"m":"[REDACTED:registered]cd[REDACTED:registered]f"}"#
    );
    assert!(log_line::value_regions(&got).is_some());
}

#[test]
fn a_line_that_is_not_json_is_scrubbed_as_text() {
    let s = Scrubber::new();
    s.register(SNEAKY);
    check(
        &s,
        &format!("2026-11-21 WARN event={SNEAKY} password=hunter22\n"),
        "2026-11-21 WARN event=[REDACTED:registered] password=[REDACTED:password]\n",
    );
    check(
        &s,
        &format!("{{\"message\":\"{SNEAKY}\"}} trailing"),
        "{\"message\":\"[REDACTED:registered]\"} trailing",
    );
}

/// Lines built from pieces that stress the edges: registered values raw,
/// escaped and cut at escapes, structure-like text inside values, numbers.
/// Every output is JSON, keeps its keys in order and its structural fields
/// byte for byte, and is a fixed point.
#[test]
fn generated_lines_stay_json_and_keep_structure() {
    const KEYS: &[&str] = &[
        "timestamp",
        "level",
        "target",
        "event",
        "message",
        "password",
        SNEAKY,
        "n",
    ];
    const STRUCTURAL: &[&str] = &["timestamp", "level", "target", "event"];
    const PIECES: &[&str] = &[
        SNEAKY,
        "Zq8x",
        "P4vL",
        ".auth_failure",
        r#"\""#,
        r"\\",
        r"\u00e9",
        r"\n",
        "x",
        " ",
        "password=hunter22",
        r#"\",\"level\":\"ERROR"#,
        "9f86d081",
        "Zq8x\\\"P4vL\\\\9f",
        "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    ];
    let s = Scrubber::new();
    s.register(SNEAKY);
    s.register("Zq8x\"P4vL\\9f");
    s.register("9f86d081");
    s.register("4929136452798123");
    s.register(r#"ERROR","event":"x"#);
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % bound as u64).expect("small")
    };
    let mut changed = 0;
    for _ in 0..2000 {
        let mut fields = Vec::new();
        for _ in 0..1 + next(6) {
            let key = KEYS[next(KEYS.len())];
            let value = if next(5) == 0 {
                format!("{}4929136452798123{}", 1 + next(9), next(10))
            } else {
                let body: String = (0..next(6)).map(|_| PIECES[next(PIECES.len())]).collect();
                format!("\"{body}\"")
            };
            fields.push((key, value));
        }
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let line = format!(
            "{{{},\"span\":{{\"name\":{}}}}}\n",
            body.join(","),
            fields[0].1
        );
        assert!(log_line::value_regions(&line).is_some(), "{line}");
        let got = s.scrub_log_line(&line);
        assert!(log_line::value_regions(&got).is_some(), "{line} -> {got}");
        assert_eq!(s.scrub_log_line(&got), got, "{line}");
        changed += usize::from(got != line);
        let mut at = 0;
        for (key, value) in &fields {
            let field = format!("\"{key}\":");
            let found = got[at..]
                .find(&field)
                .unwrap_or_else(|| panic!("{key} in {got}"));
            at += found + field.len();
            if STRUCTURAL.contains(key) {
                assert!(
                    got[at..].starts_with(value.as_str()),
                    "{key} in {line} -> {got}"
                );
            }
        }
        let name = format!("\"span\":{{\"name\":{}}}", fields[0].1);
        assert!(got.contains(&name), "span name in {line} -> {got}");
    }
    assert!(
        changed > 1000,
        "only {changed} lines had something to redact"
    );
}
