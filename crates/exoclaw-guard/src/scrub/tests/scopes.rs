//! Tests of the registry scopes: a tenant's values shape only that
//! tenant's outputs (and the operator's), the gateway's every output;
//! names make unregistering reference-correct.

use crate::scrub::{Refused, Scrubber};
use std::borrow::Cow;

const A_SECRET: &str = "tenant-a-Zq8xP4vL-9f86d081";
const B_SECRET: &str = "tenant-b-Kd3wR7nT-5e2c4b17";
const GATEWAY_SECRET: &str = "gateway-Hq2mV8sJ-0c7e11fa";

fn redacted(got: &str) -> bool {
    got.contains("[REDACTED:registered]")
}

#[expect(clippy::ptr_arg, reason = "whether the Cow borrows is the point")]
fn untouched(got: &Cow<'_, str>) -> bool {
    matches!(got, Cow::Borrowed(_))
}

#[test]
fn a_tenants_secret_is_redacted_for_it_and_the_operator_only() {
    let s = Scrubber::new();
    s.register_for("a", "db/password", A_SECRET)
        .expect("strong value");
    let text = format!("connect with {A_SECRET} failed");
    assert_eq!(
        s.scrub_for("a", &text),
        "connect with [REDACTED:registered] failed"
    );
    assert!(redacted(&s.scrub_all(&text)));
    // Neither rewritten for B nor confirmed to B by a redaction.
    assert!(untouched(&s.scrub_for("b", &text)));
    assert!(untouched(&s.scrub(&text)));
    assert!(untouched(&s.scrub_for("unknown", &text)));
}

#[test]
fn gateway_secrets_are_redacted_in_every_scope() {
    let s = Scrubber::new();
    s.register(GATEWAY_SECRET);
    s.register_for("a", "k", A_SECRET).expect("strong value");
    let text = format!("token {GATEWAY_SECRET}");
    for got in [
        s.scrub(&text),
        s.scrub_for("a", &text),
        s.scrub_for("b", &text),
        s.scrub_all(&text),
        s.scrub_log_line(&text),
    ] {
        assert_eq!(got, "token [REDACTED:registered]");
    }
}

#[test]
fn scrub_all_redacts_every_tenants_secret() {
    let s = Scrubber::new();
    s.register_for("a", "k", A_SECRET).expect("strong value");
    s.register_for("b", "k", B_SECRET).expect("strong value");
    s.register(GATEWAY_SECRET);
    let text = format!("{A_SECRET} {B_SECRET} {GATEWAY_SECRET}");
    assert_eq!(
        s.scrub_all(&text),
        "[REDACTED:registered] [REDACTED:registered] [REDACTED:registered]"
    );
    assert_eq!(
        s.scrub_for("a", &text),
        format!("[REDACTED:registered] {B_SECRET} [REDACTED:registered]")
    );
    assert_eq!(
        s.scrub_for("b", &text),
        format!("{A_SECRET} [REDACTED:registered] [REDACTED:registered]")
    );
}

#[test]
fn regression_deleting_one_of_two_secrets_with_the_same_value_keeps_it() {
    let s = Scrubber::new();
    s.register_for("a", "one", A_SECRET).expect("strong value");
    s.register_for("a", "two", A_SECRET).expect("strong value");
    s.unregister_for("a", "one");
    assert!(redacted(&s.scrub_for("a", A_SECRET)));
    assert!(redacted(&s.scrub_all(A_SECRET)));
    s.unregister_for("a", "two");
    assert!(untouched(&s.scrub_for("a", A_SECRET)));
    assert!(untouched(&s.scrub_all(A_SECRET)));
}

#[test]
fn regression_a_deleted_secret_is_unregistered_at_once() {
    let s = Scrubber::new();
    s.register_for("a", "k", A_SECRET).expect("strong value");
    assert!(redacted(&s.scrub_all(A_SECRET)));
    s.unregister_for("a", "k");
    assert!(untouched(&s.scrub_for("a", A_SECRET)));
    assert!(untouched(&s.scrub_all(A_SECRET)));
    assert!(untouched(&s.scrub_log_line(A_SECRET)));
}

#[test]
fn registering_a_name_twice_is_once_and_overwriting_replaces_the_value() {
    let s = Scrubber::new();
    s.register_for("a", "k", A_SECRET).expect("strong value");
    s.register_for("a", "k", A_SECRET).expect("strong value");
    s.unregister_for("a", "k");
    assert!(untouched(&s.scrub_for("a", A_SECRET)));

    s.register_for("a", "k", A_SECRET).expect("strong value");
    s.register_for("a", "k", B_SECRET).expect("strong value");
    assert!(untouched(&s.scrub_for("a", A_SECRET)));
    assert!(redacted(&s.scrub_for("a", B_SECRET)));
}

#[test]
fn regression_a_tenants_common_word_is_refused_and_rewrites_nothing() {
    let s = Scrubber::new();
    s.register_for("a", "k", A_SECRET).expect("strong value");
    assert_eq!(s.register_for("a", "k", "permission"), Err(Refused::Word));
    assert_eq!(s.register_for("b", "k", "security"), Err(Refused::Word));
    assert_eq!(
        s.register_for("b", "k", r#""level":"WARN""#),
        Err(Refused::Structure)
    );
    assert_eq!(
        s.register_for("b", "k", "12345678"),
        Err(Refused::Repetitive)
    );
    let text = "permission denied by security policy";
    for got in [
        s.scrub_for("a", text),
        s.scrub_for("b", text),
        s.scrub_all(text),
    ] {
        assert!(matches!(got, Cow::Borrowed(_)), "{got}");
    }
    // The refused value replaced what the name held.
    assert!(untouched(&s.scrub_for("a", A_SECRET)));
}

#[test]
fn scopes_are_independent_for_the_same_value() {
    let s = Scrubber::new();
    s.register(A_SECRET);
    s.register_for("a", "k", A_SECRET).expect("strong value");
    s.unregister_for("a", "k");
    assert!(redacted(&s.scrub(A_SECRET)));
    s.register_for("a", "k", A_SECRET).expect("strong value");
    s.unregister(A_SECRET);
    assert!(untouched(&s.scrub(A_SECRET)));
    assert!(redacted(&s.scrub_for("a", A_SECRET)));
    assert!(untouched(&s.scrub_for("b", A_SECRET)));
}

#[test]
fn replace_tenant_sets_the_whole_registry_and_names_refusals() {
    let s = Scrubber::new();
    s.register_for("a", "old", B_SECRET).expect("strong value");
    let refused = s.replace_tenant(
        "a",
        [
            ("db", A_SECRET),
            ("weak", "password1"),
            ("short", "abc"),
            ("copy", A_SECRET),
        ],
    );
    assert_eq!(
        refused,
        [("weak", Refused::Common), ("short", Refused::TooShort)]
    );
    assert!(redacted(&s.scrub_for("a", A_SECRET)));
    assert!(untouched(&s.scrub_for("a", B_SECRET)));
    s.unregister_for("a", "db");
    assert!(
        redacted(&s.scrub_for("a", A_SECRET)),
        "`copy` still holds it"
    );
    let none: [(&str, &str); 0] = [];
    assert!(s.replace_tenant("a", none).is_empty());
    assert!(untouched(&s.scrub_all(A_SECRET)));
}

#[test]
fn forget_tenant_drops_its_values_only() {
    let s = Scrubber::new();
    s.register_for("a", "k", A_SECRET).expect("strong value");
    s.register_for("b", "k", B_SECRET).expect("strong value");
    s.forget_tenant("a");
    s.forget_tenant("never-seen");
    assert!(untouched(&s.scrub_all(A_SECRET)));
    assert!(redacted(&s.scrub_all(B_SECRET)));
    assert!(redacted(&s.scrub_for("b", B_SECRET)));
}

#[test]
fn the_union_follows_every_change() {
    let s = Scrubber::new();
    let text = format!("{A_SECRET} {B_SECRET}");
    assert!(untouched(&s.scrub_all(&text)));
    s.register_for("a", "k", A_SECRET).expect("strong value");
    assert_eq!(
        s.scrub_all(&text),
        format!("[REDACTED:registered] {B_SECRET}")
    );
    s.register_for("b", "k", B_SECRET).expect("strong value");
    assert_eq!(
        s.scrub_all(&text),
        "[REDACTED:registered] [REDACTED:registered]"
    );
    s.register(GATEWAY_SECRET);
    assert!(redacted(&s.scrub_all(GATEWAY_SECRET)));
    s.unregister(GATEWAY_SECRET);
    assert!(untouched(&s.scrub_all(GATEWAY_SECRET)));
}

#[test]
fn scopes_are_idempotent() {
    let s = Scrubber::new();
    s.register_for("a", "k", A_SECRET).expect("strong value");
    s.register("hunter2hunter2");
    let input = format!("cGhunter2hunter2xoxb-iYou {A_SECRET}xoxb-Zz password=hunter22");
    for once in [s.scrub_for("a", &input), s.scrub_all(&input)] {
        let once = once.into_owned();
        assert!(untouched(&s.scrub_for("a", &once)), "{once}");
        assert!(untouched(&s.scrub_all(&once)), "{once}");
    }
}

#[test]
fn concurrent_registration_and_scrubbing_across_tenants() {
    let s = Scrubber::new();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let s = &s;
            scope.spawn(move || {
                let tenant = format!("tenant-{t}");
                for i in 0..25 {
                    let secret = format!("secret-Zq8x{t}P4vL-{i:02}-9f86d0");
                    s.register_for(&tenant, &format!("n{i}"), &secret)
                        .expect("strong value");
                    assert_eq!(s.scrub_for(&tenant, &secret), "[REDACTED:registered]");
                    assert_eq!(s.scrub_all(&secret), "[REDACTED:registered]");
                    assert_eq!(s.scrub_for("other", &secret), secret);
                }
            });
        }
    });
    let debug = format!("{s:?}");
    assert!(debug.contains("tenants: 4"), "{debug}");
}
