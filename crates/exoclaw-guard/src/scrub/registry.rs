//! Runtime-registered secrets by scope: the gateway's, one registry per
//! tenant, and their union. Each value is matched with the encodings it
//! travels in (URL, JSON string, base64 at every byte alignment) by one
//! Aho-Corasick automaton per registry, built on first use after the
//! registry's set of values changed; other tenants' registries are not
//! rebuilt.

use super::label::{KINDS, REDACTED_PREFIX};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

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

/// One scope's registered secrets: stored-secret name to value (the
/// gateway's scope names each value by itself), matched by an automaton
/// over the distinct values' forms. Immutable: a change makes a new
/// registry, so a scrub that holds one sees a consistent set. The automaton
/// is built on first use, so registering many values (start-up) costs one
/// build, not one per value.
#[derive(Default)]
pub(super) struct Registry {
    entries: BTreeMap<String, String>,
    matcher: OnceLock<Option<AhoCorasick>>,
}

impl Registry {
    /// How many names hold a value.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn values(&self) -> BTreeSet<&str> {
        self.entries.values().map(String::as_str).collect()
    }

    /// A registry where `name` holds `value`; `None` when it already does.
    pub(super) fn with(&self, name: &str, value: &str) -> Option<Registry> {
        if self.entries.get(name).is_some_and(|v| v == value) {
            return None;
        }
        let mut entries = self.entries.clone();
        entries.insert(name.to_owned(), value.to_owned());
        Some(self.succeeded_by(entries))
    }

    /// A registry without `name`; `None` when nothing held it.
    pub(super) fn without(&self, name: &str) -> Option<Registry> {
        if !self.entries.contains_key(name) {
            return None;
        }
        let mut entries = self.entries.clone();
        entries.remove(name);
        Some(self.succeeded_by(entries))
    }

    /// A registry of exactly `entries` (name to value); `None` when this
    /// one is that already.
    pub(super) fn replaced(&self, entries: BTreeMap<String, String>) -> Option<Registry> {
        (entries != self.entries).then(|| self.succeeded_by(entries))
    }

    /// The registry of `entries`, keeping this one's automaton when the
    /// distinct values did not change (a second name for a value already
    /// held, or one of two names of a value dropped).
    fn succeeded_by(&self, entries: BTreeMap<String, String>) -> Registry {
        let next = Registry {
            entries,
            matcher: OnceLock::new(),
        };
        if let Some(built) = self.matcher.get()
            && next.values() == self.values()
        {
            let _ = next.matcher.set(built.clone());
        }
        next
    }

    /// Every value of every registry in `parts`, each named by itself.
    pub(super) fn union<'a>(parts: impl IntoIterator<Item = &'a Registry>) -> Registry {
        let entries = parts
            .into_iter()
            .flat_map(|r| r.entries.values())
            .map(|v| (v.clone(), v.clone()))
            .collect();
        Registry {
            entries,
            matcher: OnceLock::new(),
        }
    }

    fn matcher(&self) -> Option<&AhoCorasick> {
        self.matcher
            .get_or_init(|| {
                let mut forms: Vec<String> = self.values().into_iter().flat_map(forms).collect();
                forms.sort_unstable();
                forms.dedup();
                // A form inside a redaction label would make scrubbing not
                // idempotent.
                forms.retain(|f| f.len() >= MIN_FORM_LEN && !is_in_label(f));
                (!forms.is_empty()).then(|| {
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::LeftmostLongest)
                        .build(&forms)
                        .expect("registered secrets build an automaton")
                })
            })
            .as_ref()
    }

    pub(super) fn find(&self, text: &str, found: &mut impl FnMut(usize, usize)) {
        if self.is_empty() {
            return;
        }
        if let Some(matcher) = self.matcher() {
            for m in matcher.find_iter(text) {
                found(m.start(), m.end());
            }
        }
    }
}

/// Every scope's registry: the gateway's, one per tenant, and their union
/// for outputs every secret must stay out of (the operator's log), built
/// on first use after a change.
#[derive(Default)]
pub(super) struct Scopes {
    pub(super) gateway: Arc<Registry>,
    pub(super) tenants: HashMap<String, Arc<Registry>>,
    union: Option<Arc<Registry>>,
    /// Bumped on every change, so a union built from an older set is not
    /// cached.
    generation: u64,
}

impl Scopes {
    pub(super) fn set_gateway(&mut self, next: Registry) {
        self.gateway = Arc::new(next);
        self.changed();
    }

    pub(super) fn set_tenant(&mut self, tenant: &str, next: Registry) {
        if next.is_empty() {
            self.tenants.remove(tenant);
        } else {
            self.tenants.insert(tenant.to_owned(), Arc::new(next));
        }
        self.changed();
    }

    pub(super) fn remove_tenant(&mut self, tenant: &str) {
        if self.tenants.remove(tenant).is_some() {
            self.changed();
        }
    }

    fn changed(&mut self) {
        self.union = None;
        self.generation = self.generation.wrapping_add(1);
    }

    /// The cached union, or what to build it from (and the generation to
    /// hand back to [`Scopes::cache_union`]).
    pub(super) fn union(&self) -> Result<Arc<Registry>, (u64, Vec<Arc<Registry>>)> {
        if let Some(union) = &self.union {
            return Ok(Arc::clone(union));
        }
        let parts = std::iter::once(&self.gateway)
            .chain(self.tenants.values())
            .map(Arc::clone)
            .collect();
        Err((self.generation, parts))
    }

    /// Cache `built` if nothing changed since `generation`; the registry
    /// to use (another caller's when it cached one first).
    pub(super) fn cache_union(&mut self, generation: u64, built: Arc<Registry>) -> Arc<Registry> {
        if generation != self.generation {
            return built;
        }
        Arc::clone(self.union.get_or_insert(built))
    }
}

pub(super) fn is_in_label(form: &str) -> bool {
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
