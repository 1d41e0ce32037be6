//! Prompt-injection scanner: rules with stable ids matched on `normalize`d
//! text, and a linear classifier over hashed n-grams ([`classifier`],
//! `inject.classifier`) for the paraphrases the rules miss. A hit is a
//! signal for the caller (log, warn, wrap, refuse), never a verdict; both
//! favour precision so ordinary mail, code reviews, READMEs and questions
//! about prompt formats stay quiet.

pub mod classifier;
mod normalize;
mod rules;
#[cfg(test)]
mod tests;

pub use normalize::normalize;
pub use rules::RULES;

use base64::Engine as _;
use regex::Regex;

/// Longest excerpt of normalised text in a [`Hit`], in characters.
pub const EXCERPT_MAX_CHARS: usize = 80;
/// Context kept before a match in an excerpt, in characters.
const EXCERPT_LEAD_CHARS: usize = 20;
/// Shortest run of base64 characters worth decoding.
const BASE64_MIN_LEN: usize = 40;
/// At most this many encoded blobs are decoded per scan, each at most
/// `BASE64_MAX_LEN` characters: the check stays cheap on hostile input.
const BASE64_MAX_BLOBS: usize = 8;
const BASE64_MAX_LEN: usize = 64 * 1024;

/// One rule that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The rule's stable id (`inject.ignore_previous`, ...; see [`RULES`]).
    pub rule: &'static str,
    /// Up to [`EXCERPT_MAX_CHARS`] characters of normalised text around the
    /// first match, line breaks as spaces. It quotes the scanned text: scan
    /// scrubbed text if hits are logged.
    pub excerpt: String,
}

/// The compiled rules. Build once (`Scanner::new()` compiles every regex),
/// share freely: `scan` takes `&self` and allocates only for hits.
#[derive(Debug)]
pub struct Scanner {
    /// Every pattern with the index of its rule in `RULES`, in rule order.
    /// Separate regexes, not a `RegexSet` or one alternation per rule: each
    /// keeps its own literal prefilter, and a rule stops at its first hit
    /// (the set was 2x, the alternations 1.5x slower on 4 KB).
    patterns: Vec<(usize, Regex)>,
    encoded_rule: usize,
    classifier: &'static classifier::Classifier,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    pub fn new() -> Self {
        let mut patterns = Vec::new();
        for (index, rule) in rules::PATTERNS.iter().enumerate() {
            for source in rule.1 {
                // An ASCII word boundary keeps the DFA engines usable on
                // non-ASCII text (a Unicode `\b` would fall back to the
                // slow NFA there).
                let source = source.replace(r"\b", r"(?-u:\b)");
                patterns.push((
                    index,
                    Regex::new(&source).expect("injection rule regex is valid"),
                ));
            }
        }
        let encoded_rule = RULES
            .iter()
            .position(|(id, _)| *id == rules::ENCODED_PAYLOAD)
            .expect("encoded payload rule is listed");
        Scanner {
            patterns,
            encoded_rule,
            classifier: classifier::builtin(),
        }
    }

    /// The rules only, without the classifier: what the scanner was before
    /// issue 17.3 (the corpus figures compare both).
    pub fn scan_rules(&self, text: &str) -> Vec<Hit> {
        let mut hits = self.scan(text);
        hits.retain(|h| h.rule != rules::CLASSIFIER);
        hits
    }

    /// Every rule that matches `text`, once each, in the order of [`RULES`].
    pub fn scan(&self, text: &str) -> Vec<Hit> {
        let normal = normalize(text);
        let mut hits = self.scan_normal(&normal);
        if hits.iter().all(|h| h.rule != rules::ENCODED_PAYLOAD)
            && let Some(excerpt) = self.encoded_hit(text)
        {
            hits.push(Hit {
                rule: RULES[self.encoded_rule].0,
                excerpt,
            });
            hits.sort_by_key(|h| RULES.iter().position(|(id, _)| *id == h.rule));
        }
        let (score, at) = self.classifier.score_normal(&normal);
        if score >= self.classifier.threshold && !normal.trim().is_empty() {
            hits.push(Hit {
                rule: rules::CLASSIFIER,
                excerpt: excerpt(&normal, at),
            });
        }
        hits
    }

    fn scan_normal(&self, normal: &str) -> Vec<Hit> {
        let mut hits: Vec<Hit> = Vec::new();
        for (rule, regex) in &self.patterns {
            let id = RULES[*rule].0;
            if hits.last().is_some_and(|h| h.rule == id) {
                continue;
            }
            if let Some(m) = regex.find(normal) {
                hits.push(Hit {
                    rule: id,
                    excerpt: excerpt(normal, m.start()),
                });
            }
        }
        hits
    }

    /// Long base64 runs in the raw text that decode to text some other rule
    /// flags: `inject.encoded_payload` with the decoded excerpt.
    fn encoded_hit(&self, text: &str) -> Option<String> {
        for blob in base64_runs(text).take(BASE64_MAX_BLOBS) {
            let Some(decoded) = decode_base64(blob) else {
                continue;
            };
            let normal = normalize(&decoded);
            if let Some(hit) = self.scan_normal(&normal).into_iter().next() {
                return Some(hit.excerpt);
            }
        }
        None
    }
}

/// Maximal runs of base64 (standard or URL-safe) characters at least
/// `BASE64_MIN_LEN` long, trailing `=` included.
fn base64_runs(text: &str) -> impl Iterator<Item = &str> {
    let b = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'+' | b'/' | b'-' | b'_'))
            {
                i += 1;
            }
            while i < b.len() && b[i] == b'=' {
                i += 1;
            }
            if i - start >= BASE64_MIN_LEN && i - start <= BASE64_MAX_LEN {
                return Some(&text[start..i]);
            }
            i += 1;
        }
        None
    })
}

/// Decode a blob as standard or URL-safe base64, padded or not; `None`
/// unless the result is mostly printable UTF-8 text.
fn decode_base64(blob: &str) -> Option<String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = blob.trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let printable = text
        .chars()
        .filter(|c| !c.is_control() || c.is_whitespace())
        .count();
    (printable * 10 >= text.chars().count() * 9).then_some(text)
}

/// At most `EXCERPT_MAX_CHARS` characters of `normal` from a little before
/// `start`, line breaks as spaces.
fn excerpt(normal: &str, start: usize) -> String {
    let lead_start = normal[..start]
        .char_indices()
        .rev()
        .take(EXCERPT_LEAD_CHARS)
        .last()
        .map_or(start, |(i, _)| i);
    normal[lead_start..]
        .chars()
        .take(EXCERPT_MAX_CHARS)
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect()
}
