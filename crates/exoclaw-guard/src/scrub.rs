//! Credential scrubbing for logs, traces, errors and model-bound text: known
//! secret formats and runtime-registered values become `[REDACTED:<kind>]`,
//! everything around them stays byte-identical. Clean text costs one
//! Aho-Corasick pass over cheap literal anchors (and one per registry in
//! scope); a format's regex runs only when one of its anchors occurs.
//!
//! Registered values live in scopes, so one tenant's secrets never shape
//! another tenant's output (neither rewriting it nor confirming a guess by
//! redacting it):
//!
//! - the **gateway** scope ([`Scrubber::register`]): the gateway's own
//!   secrets (gateway token, vault and backup keys, database password,
//!   provider keys from the environment), redacted in every output;
//! - one scope per **tenant** ([`Scrubber::register_for`]): the values a
//!   tenant stores, each under the stored secret's name so that overwriting
//!   or deleting one secret never unregisters another with the same value.
//!   A tenant's values must pass [`check_strength`] (not too short, not a
//!   word, not log structure);
//!
//! and each output is scrubbed with the scopes of whoever reads it:
//! [`Scrubber::scrub`] (formats and the gateway's secrets, for output tied
//! to no tenant), [`Scrubber::scrub_for`] (plus that tenant's),
//! [`Scrubber::scrub_all`] (plus every tenant's: for the operator) and
//! [`Scrubber::scrub_log_line`] (every scope, for one JSON log line:
//! rewriting string values only, never keys or the structural fields
//! `timestamp`, `level`, `target`, `event` and span `name`).

mod label;
mod log_line;
mod registry;
mod strength;
#[cfg(test)]
mod tests;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Captures, Regex};
use registry::{Registry, Scopes};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use strength::{
    MIN_NUMBER_LEN, MIN_PASSPHRASE_LEN, MIN_PASSPHRASE_WORDS, Refused, check_strength,
};

pub use label::{KINDS, REDACTED_PREFIX, REGISTERED};
/// Registered values shorter than this are ignored (they would redact
/// ordinary words); a tenant's are refused ([`Refused::TooShort`]).
pub const MIN_REGISTERED_LEN: usize = 8;
/// Passes after the first: each one only runs when the previous redacted
/// something, and real text settles after one more.
const MAX_PASSES: usize = 4;

/// How a format names what it found.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Fixed(&'static str),
    /// `password` / `api_key` / `token` / `secret`, from the assignment's key.
    ByKey,
}

/// A known secret format. The secret is the first participating capture
/// group other than `key`, or the whole match when there are no groups.
struct Format {
    kind: Kind,
    /// Case-insensitive literals, one of which every match contains.
    anchors: &'static [&'static str],
    pattern: &'static str,
    /// Extra check on the secret `text[start..end]`.
    accept: fn(text: &str, start: usize, end: usize) -> bool,
}

fn any(_: &str, _: usize, _: usize) -> bool {
    true
}

fn has_digit(text: &str, start: usize, end: usize) -> bool {
    text[start..end].bytes().any(|b| b.is_ascii_digit())
}

/// Assignment values that are not secrets: empty, short, booleans, nulls
/// and type names (`"password": null`, `token: true`, `secret: string`),
/// and prose (`Your password: must be 8 characters`: an unquoted word after
/// a colon with more words following on the line).
fn is_assigned_secret(text: &str, start: usize, end: usize) -> bool {
    const NOT_SECRETS: &[&str] = &[
        "true",
        "false",
        "null",
        "none",
        "nil",
        "undefined",
        "required",
        "optional",
        "string",
        "boolean",
        "redacted",
    ];
    let value = &text[start..end];
    if value.chars().count() < 4 || NOT_SECRETS.iter().any(|w| value.eq_ignore_ascii_case(w)) {
        return false;
    }
    let after_colon = text[..start].trim_end_matches([' ', '\t']).ends_with(':');
    let rest = &text[end..];
    let words_follow =
        rest.starts_with(' ') && rest[1..].starts_with(|c: char| c.is_ascii_alphabetic());
    !(after_colon && value.bytes().all(|b| b.is_ascii_alphabetic()) && words_follow)
}

/// A URL's userinfo that holds a credential: `user:password`, or a long
/// token as the user (`https://ghp_...@github.com`); `git@host` is a name.
fn is_url_credential(text: &str, start: usize, end: usize) -> bool {
    let info = &text[start..end];
    info.contains(':')
        || (info.bytes().any(|b| b.is_ascii_digit())
            && info.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// An environment-style secret assignment's value: anything but a
/// reference to another variable and the non-values of
/// [`is_assigned_secret`].
fn is_env_secret(text: &str, start: usize, end: usize) -> bool {
    let value = &text[start..end];
    !value.is_empty()
        && !value.starts_with('$')
        && !["true", "false", "null", "none", "redacted"]
            .iter()
            .any(|w| value.eq_ignore_ascii_case(w))
}

/// The known formats, most specific first (on overlap the first one names
/// the redaction). Every kind appears in [`KINDS`].
const FORMATS: &[Format] = &[
    Format {
        kind: Kind::Fixed("private_key"),
        anchors: &["-----begin"],
        // Through the END line, or to the end of the base64 body when the
        // block is cut off (truncated tool output).
        pattern: r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:(?s:.)*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,\-]*)",
        accept: any,
    },
    Format {
        kind: Kind::Fixed("anthropic_key"),
        anchors: &["sk-ant-"],
        pattern: r"\bsk-ant-[A-Za-z0-9_\-]{20,}",
        accept: any,
    },
    Format {
        kind: Kind::Fixed("openai_key"),
        anchors: &["sk-"],
        pattern: r"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|[A-Za-z0-9]{32,})",
        accept: any,
    },
    Format {
        kind: Kind::Fixed("github_token"),
        anchors: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        pattern: r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
        accept: any,
    },
    Format {
        kind: Kind::Fixed("aws_access_key_id"),
        anchors: &["akia", "asia"],
        pattern: r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        accept: any,
    },
    Format {
        kind: Kind::Fixed("aws_secret_access_key"),
        anchors: &["aws"],
        pattern: r#"(?i)aws_?secret_?access_?key\\?["']?\s*(?::=|=>|[:=])\s*\\?["']?([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        accept: any,
    },
    Format {
        kind: Kind::Fixed("slack_token"),
        anchors: &["xox", "xapp-"],
        pattern: r"\b(?:xox[abeprs]-[A-Za-z0-9\-]{10,}|xapp-[0-9]-[A-Za-z0-9\-]{10,})",
        accept: any,
    },
    Format {
        kind: Kind::Fixed("telegram_bot_token"),
        anchors: &[":aa"],
        pattern: r"(?:^|[^0-9])([0-9]{8,10}:AA[A-Za-z0-9_\-]{33,})",
        accept: any,
    },
    Format {
        kind: Kind::Fixed("jwt"),
        anchors: &["eyj"],
        pattern: r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
        accept: any,
    },
    Format {
        kind: Kind::Fixed("payment_key"),
        anchors: &[
            "sk_live_",
            "rk_live_",
            "sk_test_",
            "rk_test_",
            "whsec_",
            "sq0csp-",
            "sq0atp-",
            "access_token$production$",
        ],
        // Stripe secret and restricted keys and webhook secrets (never the
        // publishable `pk_`), Square secrets and tokens, Braintree tokens.
        pattern: r"\b(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9+/=]{24,}|sq0(?:csp|atp)-[A-Za-z0-9_\-]{22,}|access_token\$production\$[a-z0-9]{16}\$[a-f0-9]{32})",
        accept: any,
    },
    Format {
        kind: Kind::Fixed("webhook_url"),
        anchors: &[
            "hooks.slack.com/",
            "/api/webhooks/",
            ".webhook.office.com/",
            "outlook.office.com/webhook",
            "logic.azure.com",
            "chat.googleapis.com/",
        ],
        // Incoming-webhook URLs are credentials: whoever has one posts as
        // the integration. Host and route stay readable, the secret part
        // goes.
        pattern: r"(?i)(?:hooks\.slack\.com/(?:services|workflows|triggers)/|discord(?:app)?\.com/api/webhooks/|\.webhook\.office\.com/webhookb2/|outlook\.office\.com/webhook/|logic\.azure\.com(?::443)?/workflows/|chat\.googleapis\.com/v1/spaces/)([A-Za-z0-9_\-@/.%?=&]{16,})",
        accept: any,
    },
    Format {
        kind: Kind::Fixed("storage_key"),
        anchors: &[
            "accountkey",
            "sharedaccesssignature",
            "sharedaccesskey",
            "sig=",
        ],
        // Azure storage, Service Bus and Event Hubs connection strings and
        // SAS tokens: the key or signature goes, the account name stays.
        pattern: r#"(?i)(?:\b(?:AccountKey|SharedAccessKey|SharedAccessSignature)\s*=\s*([^;\s"'<>]+)|[?&]sig=([A-Za-z0-9%+/=]{16,}))"#,
        accept: any,
    },
    Format {
        kind: Kind::Fixed("url_password"),
        anchors: &["://"],
        // The whole userinfo (`user:password`, or a long token standing as
        // the user): scheme, host, port and path stay readable. Greedy up
        // to the last `@` before the host, so a password holding `@`
        // leaks nothing.
        pattern: r#"\b[A-Za-z][A-Za-z0-9+.\-]{0,30}://(?:([^\s:/?#@\[\]"'<>]*:[^\s/?#"'<>\[\]]*)|([A-Za-z0-9_\-.~]{20,}))@[^\s@/?#"'<>]"#,
        accept: is_url_credential,
    },
    Format {
        kind: Kind::Fixed("bearer_token"),
        anchors: &["bearer"],
        pattern: r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{16,}=*)",
        accept: has_digit,
    },
    Format {
        kind: Kind::Fixed("basic_auth"),
        anchors: &["authorization"],
        pattern: r#"(?i)\bauthorization\\?["']?\s*[:=]\s*\\?["']?basic\s+([A-Za-z0-9+/]{8,}=*)"#,
        accept: any,
    },
    Format {
        kind: Kind::ByKey,
        anchors: &[
            "_key",
            "_token",
            "_secret",
            "_pass",
            "_credential",
            "_apikey",
        ],
        // Environment-style assignments (`EXOCLAW_VAULT_KEY=...`,
        // `export STRIPE_TOKEN="..."`) of a name that says what it holds:
        // the value goes whatever it is (not only registered secrets), the
        // name stays. References (`$X`) and placeholders are kept.
        pattern: r#"(?:^|[^A-Za-z0-9_])(?P<key>[A-Z][A-Z0-9_]*_(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PASSPHRASE|APIKEY|CREDENTIALS?))(?:\\?["'])?[ \t]*[:=][ \t]*(?:"((?:[^"\\\n]|\\[^\n])*)"|'([^'\n]*)'|([^\s"'`,;&<>(){}\[\]\\]+))"#,
        accept: is_env_secret,
    },
    Format {
        kind: Kind::ByKey,
        anchors: &["pass", "secret", "key", "token", "credential"],
        // key = value, key: value, "key": "value", key := value, key => value,
        // and the JSON-in-a-string form \"key\": \"value\". The key must end
        // in one of the words, so `max_tokens` and `token_count` stay.
        pattern: r#"(?i)(?:^|[^A-Za-z0-9_.\-])(?P<key>[A-Za-z0-9_.\-]*?(?:password|passwd|passphrase|secret|secret[_\-]?key|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|token|credentials?))(?:\\?["'])?\s*(?::=|=>|[:=])\s*(?:"((?:[^"\\\n]|\\[^\n])*)"|'([^'\n]*)'|\\"((?:[^"\\\n])*)\\"|([^\s"'`,;&<>(){}\[\]\\]+))"#,
        accept: is_assigned_secret,
    },
];

fn kind_of_key(key: &str) -> &'static str {
    let key = key.to_ascii_lowercase();
    if key.contains("pass") {
        "password"
    } else if key.ends_with("token") {
        "token"
    } else if key.contains("api") {
        "api_key"
    } else {
        "secret"
    }
}

struct CompiledFormat {
    kind: Kind,
    pattern: &'static str,
    /// Compiled on first use: a process whose text never contains a
    /// format's anchor (most log lines) never builds its regex, which keeps
    /// start-up fast and the regex compiler's pages out of memory.
    compiled: OnceLock<(Regex, Option<usize>)>,
    accept: fn(&str, usize, usize) -> bool,
}

impl CompiledFormat {
    fn regex(&self) -> &Regex {
        &self.compiled().0
    }

    fn key_group(&self) -> Option<usize> {
        self.compiled().1
    }

    fn compiled(&self) -> &(Regex, Option<usize>) {
        self.compiled.get_or_init(|| {
            let regex = Regex::new(self.pattern).expect("secret format regex is valid");
            let key_group = regex.capture_names().position(|n| n == Some("key"));
            (regex, key_group)
        })
    }
}

/// Replaces secrets with `[REDACTED:<kind>]`. `Send + Sync`; build once
/// (or use [`global`]) and share. Registration may run concurrently with
/// scrubbing: a scrub sees the registries as they were when it started.
pub struct Scrubber {
    prefilter: AhoCorasick,
    /// For each prefilter pattern, the bit of the format it belongs to.
    anchor_format: Vec<u32>,
    formats: Vec<CompiledFormat>,
    scopes: RwLock<Scopes>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scopes = self.read();
        f.debug_struct("Scrubber")
            .field("formats", &self.formats.len())
            .field("registered", &scopes.gateway.len())
            .field("tenants", &scopes.tenants.len())
            .finish()
    }
}

impl Default for Scrubber {
    fn default() -> Self {
        Self::new()
    }
}

/// The process-wide scrubber for logs, traces and errors; secrets the
/// gateway learns are registered here, each in its scope (module docs).
pub fn global() -> &'static Scrubber {
    static GLOBAL: OnceLock<Scrubber> = OnceLock::new();
    GLOBAL.get_or_init(Scrubber::new)
}

impl Scrubber {
    pub fn new() -> Self {
        let mut anchors = Vec::new();
        let mut anchor_format = Vec::new();
        let mut formats = Vec::new();
        for (bit, format) in FORMATS.iter().enumerate() {
            for anchor in format.anchors {
                anchors.push(*anchor);
                anchor_format.push(1u32 << bit);
            }
            formats.push(CompiledFormat {
                kind: format.kind,
                pattern: format.pattern,
                compiled: OnceLock::new(),
                accept: format.accept,
            });
        }
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&anchors)
            .expect("secret anchors build an automaton");
        Scrubber {
            prefilter,
            anchor_format,
            formats,
            scopes: RwLock::new(Scopes::default()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Scopes> {
        self.scopes.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Scopes> {
        self.scopes.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Redact `secret` (and its URL-encoded, JSON-escaped and base64 forms)
    /// in every output from now on: a secret of the gateway itself (its
    /// token, vault and backup keys, database password, provider keys from
    /// the environment), never a tenant's value. Values shorter than
    /// [`MIN_REGISTERED_LEN`] characters are ignored; nothing else is
    /// checked (the operator chose them: [`check_strength`] tells whether
    /// to warn). Registering a value twice is registering it once.
    pub fn register(&self, secret: &str) {
        if secret.chars().count() < MIN_REGISTERED_LEN {
            return;
        }
        let mut scopes = self.write();
        if let Some(next) = scopes.gateway.with(secret, secret) {
            scopes.set_gateway(next);
        }
    }

    /// Stop redacting the gateway-level `secret` (however often it was
    /// registered). Tenants' values are not touched.
    pub fn unregister(&self, secret: &str) {
        let mut scopes = self.write();
        if let Some(next) = scopes.gateway.without(secret) {
            scopes.set_gateway(next);
        }
    }

    /// Redact `secret` in `tenant`'s outputs (and the operator's) from now
    /// on, held under `name`: the stored secret's identity within the
    /// tenant, such as `owner/name` in the vault. `name` holds one value:
    /// registering it again replaces the value it held (an overwritten
    /// secret), and a value stays registered while any name holds it (two
    /// secrets with the same value: deleting one keeps the other). So the
    /// caller never needs the old value and calling twice is harmless.
    ///
    /// A value that fails [`check_strength`] is refused and `name` then
    /// holds nothing (the secret it named has a new value, which is not
    /// scrubbed); the reason is a warning for whoever stored it.
    pub fn register_for(&self, tenant: &str, name: &str, secret: &str) -> Result<(), Refused> {
        let checked = check_strength(secret);
        let mut scopes = self.write();
        let current = scopes
            .tenants
            .get(tenant)
            .map(Arc::clone)
            .unwrap_or_default();
        let next = match checked {
            Ok(()) => current.with(name, secret),
            Err(_) => current.without(name),
        };
        if let Some(next) = next {
            scopes.set_tenant(tenant, next);
        }
        checked
    }

    /// Stop redacting what `name` held for `tenant` (a deleted secret);
    /// the value stays registered while another of the tenant's names
    /// holds it.
    pub fn unregister_for(&self, tenant: &str, name: &str) {
        let mut scopes = self.write();
        let Some(current) = scopes.tenants.get(tenant).map(Arc::clone) else {
            return;
        };
        if let Some(next) = current.without(name) {
            scopes.set_tenant(tenant, next);
        }
    }

    /// Make `secrets` (name, value) the whole of `tenant`'s registry: the
    /// start-up load from the vault, or a resync. One change for the
    /// tenant however many values (one automaton build on first use).
    /// Returns the names refused by [`check_strength`] with the reason.
    pub fn replace_tenant<N, V>(
        &self,
        tenant: &str,
        secrets: impl IntoIterator<Item = (N, V)>,
    ) -> Vec<(N, Refused)>
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut refused = Vec::new();
        let mut entries = BTreeMap::new();
        for (name, secret) in secrets {
            match check_strength(secret.as_ref()) {
                Ok(()) => {
                    entries.insert(name.as_ref().to_owned(), secret.as_ref().to_owned());
                }
                Err(reason) => refused.push((name, reason)),
            }
        }
        let mut scopes = self.write();
        let current = scopes
            .tenants
            .get(tenant)
            .map(Arc::clone)
            .unwrap_or_default();
        if let Some(next) = current.replaced(entries) {
            scopes.set_tenant(tenant, next);
        }
        refused
    }

    /// Drop every value registered for `tenant` (a deleted tenant).
    pub fn forget_tenant(&self, tenant: &str) {
        self.write().remove_tenant(tenant);
    }

    /// `text` with known formats and the gateway's secrets replaced by
    /// `[REDACTED:<kind>]`; borrowed when there was nothing to redact. For
    /// output tied to no tenant (an unauthenticated request's error).
    /// Idempotent: a redaction can expose a new match (a registered value
    /// glued to the front of a token made `\b` fail before it), so passes
    /// repeat until nothing changes.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let gateway = Arc::clone(&self.read().gateway);
        self.scrub_with(text, &[&gateway])
    }

    /// [`Scrubber::scrub`] plus `tenant`'s registered values: for what
    /// `tenant`'s callers and models read (API errors of an authenticated
    /// request, tool output, traces). Another tenant's values are left as
    /// they are.
    pub fn scrub_for<'a>(&self, tenant: &str, text: &'a str) -> Cow<'a, str> {
        let (gateway, own) = {
            let scopes = self.read();
            (
                Arc::clone(&scopes.gateway),
                scopes.tenants.get(tenant).map(Arc::clone),
            )
        };
        match &own {
            Some(own) => self.scrub_with(text, &[&gateway, own]),
            None => self.scrub_with(text, &[&gateway]),
        }
    }

    /// [`Scrubber::scrub`] plus every tenant's registered values: for what
    /// only the operator reads (exported traces, alerts). For log lines use
    /// [`Scrubber::scrub_log_line`].
    pub fn scrub_all<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let union = self.union();
        self.scrub_with(text, &[&union])
    }

    /// One line of the JSON log (as `tracing-subscriber`'s JSON formatter
    /// writes it) scrubbed like [`Scrubber::scrub_all`], but only inside
    /// values: keys and the structural fields (`timestamp`, `level`,
    /// `target`, `event`, `fields.event`, span `name`, the formatter's file
    /// and thread fields) are never rewritten, so no registered value can
    /// forge a level or hide an event from alerting. A number holding a
    /// secret becomes a redaction string. The line stays valid JSON with
    /// its keys in order. A line that is not JSON is scrubbed as text.
    pub fn scrub_log_line<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let union = self.union();
        let registries: [&Registry; 1] = [&union];
        let mut out = Cow::Borrowed(line);
        for _ in 0..=MAX_PASSES {
            let spans = self.find(&out, &registries);
            if spans.is_empty() {
                break;
            }
            let spans = match log_line::value_regions(&out) {
                Some(regions) => log_line::confine(&out, &regions, spans),
                None => spans,
            };
            if spans.is_empty() {
                break;
            }
            out = Cow::Owned(redact(&out, spans));
        }
        out
    }

    /// The union of every scope, built on first use after a change.
    fn union(&self) -> Arc<Registry> {
        let (generation, parts) = match self.read().union() {
            Ok(union) => return union,
            Err(build_from) => build_from,
        };
        let built = Arc::new(Registry::union(parts.iter().map(|r| &**r)));
        self.write().cache_union(generation, built)
    }

    fn scrub_with<'a>(&self, text: &'a str, registries: &[&Registry]) -> Cow<'a, str> {
        let Some(mut out) = self.scrub_once(text, registries) else {
            return Cow::Borrowed(text);
        };
        for _ in 0..MAX_PASSES {
            match self.scrub_once(&out, registries) {
                Some(again) => out = again,
                None => break,
            }
        }
        Cow::Owned(out)
    }

    /// One pass; `None` when there was nothing to redact.
    fn scrub_once(&self, text: &str, registries: &[&Registry]) -> Option<String> {
        let spans = self.find(text, registries);
        (!spans.is_empty()).then(|| redact(text, spans))
    }

    /// Where `text` holds a secret, unordered and possibly overlapping.
    fn find(&self, text: &str, registries: &[&Registry]) -> Vec<Span> {
        let mut spans: Vec<Span> = Vec::new();
        for registry in registries {
            registry.find(text, &mut |start, end| {
                spans.push(Span {
                    start,
                    end,
                    rank: FORMATS.len(),
                    kind: REGISTERED,
                    quoted: false,
                });
            });
        }
        let mut wanted = 0u32;
        let every = (1u32 << FORMATS.len()) - 1;
        for m in self.prefilter.find_overlapping_iter(text) {
            wanted |= self.anchor_format[m.pattern().as_usize()];
            if wanted == every {
                break;
            }
        }
        for (rank, format) in self.formats.iter().enumerate() {
            if wanted & (1 << rank) != 0 {
                format.find(text, rank, &mut spans);
            }
        }
        spans
    }
}

impl CompiledFormat {
    fn find(&self, text: &str, rank: usize, spans: &mut Vec<Span>) {
        let mut push = |start: usize, end: usize, kind: &'static str| {
            let secret = &text[start..end];
            if start < end
                && !secret.starts_with(REDACTED_PREFIX)
                && (self.accept)(text, start, end)
            {
                spans.push(Span {
                    start,
                    end,
                    rank,
                    kind,
                    quoted: false,
                });
            }
        };
        if self.regex().captures_len() == 1 {
            for m in self.regex().find_iter(text) {
                push(m.start(), m.end(), self.kind_name(None));
            }
            return;
        }
        for caps in self.regex().captures_iter(text) {
            let secret = caps
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(i, _)| Some(*i) != self.key_group())
                .find_map(|(_, m)| m);
            if let Some(m) = secret {
                push(m.start(), m.end(), self.kind_name(Some(&caps)));
            }
        }
    }

    fn kind_name(&self, caps: Option<&Captures<'_>>) -> &'static str {
        match self.kind {
            Kind::Fixed(kind) => kind,
            Kind::ByKey => {
                let key = self
                    .key_group()
                    .and_then(|g| caps.and_then(|c| c.get(g)))
                    .map_or("", |m| m.as_str());
                kind_of_key(key)
            }
        }
    }
}

struct Span {
    start: usize,
    end: usize,
    rank: usize,
    kind: &'static str,
    /// The redaction goes between double quotes (it replaces a JSON
    /// number).
    quoted: bool,
}

/// Replace the union of `spans`; overlapping spans merge and take the kind
/// of the one that starts first (the more specific format on a tie).
fn redact(text: &str, mut spans: Vec<Span>) -> String {
    spans.sort_unstable_by_key(|s| (s.start, s.rank));
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut current: Option<Span> = None;
    let mut flush = |out: &mut String, span: Span| {
        out.push_str(&text[copied..span.start]);
        if span.quoted {
            out.push('"');
        }
        out.push_str(REDACTED_PREFIX);
        out.push_str(span.kind);
        out.push(']');
        if span.quoted {
            out.push('"');
        }
        copied = span.end;
    };
    for span in spans {
        current = match current {
            Some(mut merged) if span.start < merged.end => {
                merged.end = merged.end.max(span.end);
                Some(merged)
            }
            Some(done) => {
                flush(&mut out, done);
                Some(span)
            }
            None => Some(span),
        };
    }
    if let Some(done) = current {
        flush(&mut out, done);
    }
    out.push_str(&text[copied..]);
    out
}
