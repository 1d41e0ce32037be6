//! The redaction labels: `[REDACTED:<kind>]`, and every kind one can name.

/// What every redaction starts with; a value already redacted is skipped.
pub const REDACTED_PREFIX: &str = "[REDACTED:";
/// The kind of runtime-registered secrets.
pub const REGISTERED: &str = "registered";

/// Every kind a redaction can name: `[REDACTED:<kind>]`.
pub const KINDS: &[&str] = &[
    "private_key",
    "anthropic_key",
    "openai_key",
    "github_token",
    "aws_access_key_id",
    "aws_secret_access_key",
    "slack_token",
    "telegram_bot_token",
    "jwt",
    "payment_key",
    "webhook_url",
    "storage_key",
    "url_password",
    "bearer_token",
    "basic_auth",
    "password",
    "api_key",
    "token",
    "secret",
    REGISTERED,
];
