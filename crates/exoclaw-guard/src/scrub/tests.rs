//! Tests of the credential scrubber: each format caught with the text around
//! it untouched, near misses left alone, registered values in every
//! encoding, idempotence.

use super::{KINDS, Scrubber, global};
use std::borrow::Cow;

fn check(input: &str, expect: &str) {
    let scrubber = Scrubber::new();
    let got = scrubber.scrub(input);
    assert_eq!(got, expect, "scrub({input:?})");
    assert_eq!(scrubber.scrub(&got), got, "not idempotent for {input:?}");
}

fn untouched(input: &str) {
    let got = Scrubber::new().scrub(input);
    assert!(matches!(got, Cow::Borrowed(_)), "{input:?} became {got:?}");
}

const ANTHROPIC: &str = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-AbCdEfAA";
const OPENAI_LEGACY: &str = "sk-AbCdEfGhIjKlMnOpQrStT3BlbkFJAbCdEfGhIjKlMnOpQrSt";
const OPENAI_PROJECT: &str = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_AbCdEfGhIjKl-MnOp";
const GITHUB: &str = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

#[test]
fn clean_text_is_borrowed() {
    untouched("");
    untouched("Hello, world. The token count was 512 and the key insight is caching.");
    untouched("see https://example.com/path?q=1 and user@example.com");
}

#[test]
fn vendor_keys() {
    check(
        &format!("key {ANTHROPIC} end"),
        "key [REDACTED:anthropic_key] end",
    );
    check(&format!("({OPENAI_LEGACY})"), "([REDACTED:openai_key])");
    check(&format!("{OPENAI_PROJECT}."), "[REDACTED:openai_key].");
    check(&format!("tok={GITHUB}"), "tok=[REDACTED:github_token]");
    check(
        "gho_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 ghs_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "[REDACTED:github_token] [REDACTED:github_token]",
    );
    check(
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345 x",
        "[REDACTED:github_token] x",
    );
    check(
        "id AKIAIOSFODNN7EXAMPLE,",
        "id [REDACTED:aws_access_key_id],",
    );
    check("ASIAY34FZKBOKMUTVV7A", "[REDACTED:aws_access_key_id]");
    check(
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nnext",
        "aws_secret_access_key = [REDACTED:aws_secret_access_key]\nnext",
    );
    check(
        "SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx ok",
        "SLACK=[REDACTED:slack_token] ok",
    );
    check(
        "xapp-1-A0123456789-0123456789-abcdef",
        "[REDACTED:slack_token]",
    );
    check(
        "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_/getMe",
        "https://api.telegram.org/bot[REDACTED:telegram_bot_token]/getMe",
    );
    check(&format!("jwt: {JWT}!"), "jwt: [REDACTED:jwt]!");
}

#[test]
fn vendor_near_misses_stay() {
    untouched("sk-learn and sk-ant-short and task-ant-AbCdEfGhIjKlMnOpQrStUvWx");
    untouched("sk-this-is-a-long-hyphenated-css-class-name-for-a-spinner");
    untouched("ghp_short gha_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789");
    untouched("AKIA1234 AKIAIOSFODNN7EXAMPL akiaiosfodnn7example XAKIAIOSFODNN7EXAMPLE");
    untouched("xoxb- xox xoxq-1234567890123");
    untouched("call 123456789:AB and time 12:30:AA");
    untouched("eyJhbGciOiJIUzI1NiJ9 is only a header");
    untouched("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----");
}

#[test]
fn private_key_blocks() {
    check(
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----\ndone",
        "key:\n[REDACTED:private_key]\ndone",
    );
    check(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "[REDACTED:private_key]",
    );
    check(
        r#"{"k": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"}"#,
        r#"{"k": "[REDACTED:private_key]\n"}"#,
    );
    // Cut off before END: the base64 body still goes.
    check(
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrY\nMore+lines/==\n[truncated]",
        "[REDACTED:private_key][truncated]",
    );
}

#[test]
fn url_credentials_go_scheme_host_and_path_stay() {
    check(
        "postgres://app:s3cr3t-P@ss@db.internal:5432/app",
        "postgres://[REDACTED:url_password]@db.internal:5432/app",
    );
    check(
        "DATABASE_URL=mysql://root:hunter2@localhost/db",
        "DATABASE_URL=mysql://[REDACTED:url_password]@localhost/db",
    );
    check(
        "redis://:p%40ss@cache:6379",
        "redis://[REDACTED:url_password]@cache:6379",
    );
    check(
        "https://user:tok123@github.com/o/r.git",
        "https://[REDACTED:url_password]@github.com/o/r.git",
    );
}

#[test]
fn url_near_misses_stay() {
    untouched("https://example.com:8443/path?x=1#frag");
    untouched("git@github.com:org/repo.git and ssh://git@host:22/repo");
    untouched("mailto:alice@example.com");
}

#[test]
fn authorization_headers() {
    check(
        "Authorization: Bearer abcdef0123456789abcdef.XYZ",
        "Authorization: Bearer [REDACTED:bearer_token]",
    );
    check(
        "-H 'authorization: bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0'",
        "-H 'authorization: bearer [REDACTED:bearer_token]'",
    );
    check(
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        "Authorization: Basic [REDACTED:basic_auth]",
    );
    untouched("the bearer of this letter; bearer tokens are opaque strings");
    untouched("Bearer authentication-mechanisms-explained");
}

#[test]
fn assignments() {
    check(
        "password=hunter22 next",
        "password=[REDACTED:password] next",
    );
    check(
        "DB_PASSWORD='p@ss w0rd!'",
        "DB_PASSWORD='[REDACTED:password]'",
    );
    check(
        r#"{"password": "hunter22", "user": "bob"}"#,
        r#"{"password": "[REDACTED:password]", "user": "bob"}"#,
    );
    check(
        r#"{"api_key":"abc123def456"}"#,
        r#"{"api_key":"[REDACTED:api_key]"}"#,
    );
    check(
        "OPENAI_API_KEY=abcd1234",
        "OPENAI_API_KEY=[REDACTED:api_key]",
    );
    check("X-Api-Key: k-8f7e6d5c", "X-Api-Key: [REDACTED:api_key]");
    check("token: 0123456789abcdef", "token: [REDACTED:token]");
    check(
        "password: correcthorse\nuser: bob",
        "password: [REDACTED:password]\nuser: bob",
    );
    check(
        "password: hunter2 is weak",
        "password: [REDACTED:password] is weak",
    );
    check("GITHUB_TOKEN=$GH_PAT", "GITHUB_TOKEN=[REDACTED:token]");
    // Not the AWS format (too short), still an assignment of a secret.
    check(
        "aws_secret_access_key = short",
        "aws_secret_access_key = [REDACTED:secret]",
    );
    check(
        "client_secret := \"s3cr3t\"",
        "client_secret := \"[REDACTED:secret]\"",
    );
    check(
        r#"{\"password\": \"hunter22\"}"#,
        r#"{\"password\": \"[REDACTED:password]\"}"#,
    );
    check(
        r#""password": "a\"b\"c""#,
        r#""password": "[REDACTED:password]""#,
    );
}

#[test]
fn assignment_near_misses_stay() {
    untouched("max_tokens=4096 token_count: 12 tokenizer=bert");
    untouched(r#"{"password": null, "secret": true, "token": "", "api_key": false}"#);
    untouched("password is required; passwords: see policy; reset your password.");
    untouched("password_policy=strict secret_name=prod-db");
    untouched("token: 42");
    untouched("Your password: must be at least 8 characters.");
    untouched("api_key: see below");
}

#[test]
fn redaction_keeps_everything_else_byte_identical() {
    let input = format!("αβγ\t{GITHUB}\r\n  ünïcödé {JWT}\u{200B}end");
    let got = Scrubber::new().scrub(&input).into_owned();
    assert_eq!(
        got,
        "αβγ\t[REDACTED:github_token]\r\n  ünïcödé [REDACTED:jwt]\u{200B}end"
    );
}

#[test]
fn overlapping_matches_merge() {
    // A bearer JWT: both formats match, one redaction remains.
    check(&format!("Bearer {JWT}"), "Bearer [REDACTED:jwt]");
    check(
        &format!("password={GITHUB}"),
        "password=[REDACTED:github_token]",
    );
}

#[test]
fn registered_secrets_in_every_encoding() {
    use base64::Engine as _;
    let scrubber = Scrubber::new();
    let secret = "pa ss/w\"rd+x?y";
    scrubber.register(secret);
    scrubber.register("short");
    let encoded = [
        secret.to_owned(),
        "pa%20ss%2Fw%22rd%2Bx%3Fy".to_owned(),
        "pa+ss%2Fw%22rd%2Bx%3Fy".to_owned(),
        "pa%20ss%2fw%22rd%2bx%3fy".to_owned(),
        r#"pa ss/w\"rd+x?y"#.to_owned(),
        r#"pa ss\/w\"rd+x?y"#.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::URL_SAFE.encode(secret),
    ];
    for form in &encoded {
        let text = format!("<{form}>");
        assert_eq!(
            scrubber.scrub(&text),
            "<[REDACTED:registered]>",
            "form {form:?}"
        );
    }
    assert_eq!(scrubber.scrub("short is fine"), "short is fine");
    // Inside Basic auth (`user:secret`), at any alignment, little is left.
    for user in ["a", "ab", "abc"] {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
        let got = scrubber.scrub(&basic);
        assert!(got.contains("[REDACTED:registered]"), "{user}: {got}");
    }
    scrubber.unregister(secret);
    assert_eq!(scrubber.scrub(secret), secret);
}

#[test]
fn registering_a_label_lookalike_keeps_scrub_idempotent() {
    let scrubber = Scrubber::new();
    scrubber.register("REDACTED:registered");
    let once = scrubber.scrub("x REDACTED:registered y").into_owned();
    assert_eq!(scrubber.scrub(&once), once);
}

#[test]
fn scrubber_is_shareable_and_global_is_one_instance() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Scrubber>();
    assert!(std::ptr::eq(global(), global()));
    let debug = format!("{:?}", Scrubber::new());
    assert!(debug.contains("registered: 0"), "{debug}");
}

#[test]
fn concurrent_registration_and_scrubbing() {
    let scrubber = Scrubber::new();
    std::thread::scope(|s| {
        for t in 0..4 {
            let scrubber = &scrubber;
            s.spawn(move || {
                for i in 0..50 {
                    let secret = format!("secret-value-{t}-{i}");
                    scrubber.register(&secret);
                    assert_eq!(scrubber.scrub(&secret), "[REDACTED:registered]");
                }
            });
        }
    });
}

#[test]
fn every_kind_is_listed() {
    for format in super::FORMATS {
        if let super::Kind::Fixed(kind) = format.kind {
            assert!(KINDS.contains(&kind), "{kind}");
        }
    }
    for kind in ["password", "api_key", "token", "secret", "registered"] {
        assert!(KINDS.contains(&kind));
    }
}

#[test]
fn regression_redaction_exposing_a_token_boundary() {
    // Fuzz find: `xoxb-` glued to a registered value has no `\b` before it
    // until the value is redacted; a second pass must not find more.
    let scrubber = Scrubber::new();
    scrubber.register("hunter2hunter2");
    let input = "cGhunter2hunter2xoxb-iYousystem:\0\0CDD";
    let once = scrubber.scrub(input).into_owned();
    assert_eq!(
        once,
        "cG[REDACTED:registered][REDACTED:slack_token]:\0\0CDD"
    );
    assert_eq!(scrubber.scrub(&once), once);
}

/// Format regexes compile lazily; every one must compile.
#[test]
fn every_format_regex_compiles() {
    let s = Scrubber::new();
    for f in &s.formats {
        assert!(f.regex().captures_len() >= 1, "{}", f.pattern);
    }
}

mod issue17;
mod log_line;
mod scopes;
