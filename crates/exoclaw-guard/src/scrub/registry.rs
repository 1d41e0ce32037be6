//! Runtime-registered secrets: each value with the encodings it travels in
//! (URL, JSON string, base64 at every byte alignment), matched by one
//! Aho-Corasick automaton that is rebuilt when the set changes.

use super::{KINDS, REDACTED_PREFIX};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// `encodeURIComponent`: everything but letters, digits and `-_.!~*'()`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');
/// Query strings and forms as `url` and most clients write them: the
/// unreserved characters only.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encoded forms shorter than this are not matched (too likely by chance).
const MIN_FORM_LEN: usize = 8;

#[derive(Default)]
pub(super) struct Registry {
    secrets: Vec<String>,
    matcher: Option<AhoCorasick>,
}

impl Registry {
    pub(super) fn len(&self) -> usize {
        self.secrets.len()
    }

    /// A registry that also holds `secret`; `None` when it already does.
    pub(super) fn with(&self, secret: &str) -> Option<Registry> {
        if self.secrets.iter().any(|s| s == secret) {
            return None;
        }
        let mut secrets = self.secrets.clone();
        secrets.push(secret.to_owned());
        Some(Registry::build(secrets))
    }

    /// A registry without `secret`; `None` when it was not registered.
    pub(super) fn without(&self, secret: &str) -> Option<Registry> {
        if !self.secrets.iter().any(|s| s == secret) {
            return None;
        }
        let secrets = self
            .secrets
            .iter()
            .filter(|s| *s != secret)
            .cloned()
            .collect();
        Some(Registry::build(secrets))
    }

    fn build(secrets: Vec<String>) -> Registry {
        let mut forms: Vec<String> = secrets.iter().flat_map(|s| forms(s)).collect();
        forms.sort_unstable();
        forms.dedup();
        // A form inside a redaction label would make scrubbing not idempotent.
        forms.retain(|f| f.len() >= MIN_FORM_LEN && !is_in_label(f));
        let matcher = (!forms.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&forms)
                .expect("registered secrets build an automaton")
        });
        Registry { secrets, matcher }
    }

    pub(super) fn find(&self, text: &str, found: &mut impl FnMut(usize, usize)) {
        if let Some(matcher) = &self.matcher {
            for m in matcher.find_iter(text) {
                found(m.start(), m.end());
            }
        }
    }
}

fn is_in_label(form: &str) -> bool {
    KINDS
        .iter()
        .any(|kind| format!("{REDACTED_PREFIX}{kind}]").contains(form))
}

/// The raw value and the forms it takes in URLs, JSON and base64.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    for set in [COMPONENT, FORM] {
        let encoded = utf8_percent_encode(secret, set).to_string();
        out.push(encoded.replace("%20", "+"));
        out.push(lowercase_hex(&encoded));
        out.push(encoded);
    }
    let json = json_escape(secret);
    out.push(json.replace('/', "\\/"));
    out.push(json);
    let bytes = secret.as_bytes();
    for engine in [&STANDARD, &URL_SAFE] {
        out.push(engine.encode(bytes));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        // The secret inside a longer encoded value (`user:secret` in Basic
        // auth) starts at any of three byte alignments; keep the characters
        // that depend on the secret's bytes only.
        for skip in 0..3usize {
            let mut padded = vec![0u8; skip];
            padded.extend_from_slice(bytes);
            let encoded = engine.encode(&padded);
            let first = (8 * skip).div_ceil(6);
            let last = 8 * (skip + bytes.len()) / 6;
            if let Some(core) = encoded.get(first..last) {
                out.push(core.to_owned());
            }
        }
    }
    out
}

/// `%2F` to `%2f`, leaving the rest as it is.
fn lowercase_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The body of a JSON string holding `s` (as `serde_json` writes it).
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if c.is_control() && (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}
