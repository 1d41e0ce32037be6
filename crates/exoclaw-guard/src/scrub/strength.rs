//! Whether a tenant's value is distinctive enough to register for
//! scrubbing. A registered value is redacted wherever it occurs, so a value
//! that also occurs in ordinary text (a word, a short number, a piece of
//! log structure) would rewrite that text. The rule, checked in this order
//! (the first that fails is the reason):
//!
//! 1. [`Refused::TooShort`]: at least [`MIN_REGISTERED_LEN`] (8) characters.
//! 2. [`Refused::InLabel`]: not part of a redaction label such as
//!    `[REDACTED:registered]` (so not a kind name such as `password`).
//! 3. [`Refused::Repetitive`]: at least 5 distinct characters, and fewer
//!    than 3 in 4 neighbouring pairs repeat or step by one (`abcdefgh`,
//!    `12345678`, `aabbccdd`).
//! 4. [`Refused::Common`]: not one of a short list of the most common
//!    passwords, also in look-alike spelling (`p@ssw0rd`) and with digits
//!    or symbols around it (`Password123!`).
//! 5. [`Refused::Structure`]: a value with JSON or log structure in it
//!    (`"` `{` `}` `[` `]` `\` or a control character) is judged by its
//!    letters and digits alone, which must pass 1 and 6 (`"level":"WARN"`
//!    is `levelWARN`: refused).
//! 6. By shape, where words are runs of letters (also split where a
//!    lowercase letter meets an uppercase one) and separators are spaces and
//!    ASCII punctuation:
//!    - [`Refused::Number`]: a value without letters needs 16 digits;
//!    - [`Refused::Word`]: a value of only letters and separators is a
//!      passphrase: it needs 20 characters and 4 words (`correct horse
//!      battery staple`; not `permission`, `security.auth_failure`);
//!    - [`Refused::Common`]: a value that is such a refused word with at
//!      most 6 digits or separators before or after it (`password1`,
//!      `Summer2024!`, `test-key-123`).
//!
//! Everything else is accepted: random hex or base64 of 16 characters,
//! `sk-live-…` keys, passwords mixing letters with digits or symbols
//! inside (`hunter2hunter2Xy!`).

use super::MIN_REGISTERED_LEN;
use super::registry::is_in_label;
use std::collections::BTreeSet;

/// A value without letters needs this many digits.
pub const MIN_NUMBER_LEN: usize = 16;
/// A passphrase (letters and separators only) needs this many characters…
pub const MIN_PASSPHRASE_LEN: usize = 20;
/// …and this many words.
pub const MIN_PASSPHRASE_WORDS: usize = 4;
/// Fewer distinct characters than this is refused as repetitive.
const MIN_DISTINCT: usize = 5;
/// Digits and separators allowed around a word before the value is more
/// than "a word with a number added".
const MAX_AFFIX_LEN: usize = 6;

/// Why a value was not registered. `Display` is a message an API can
/// return as a warning; [`Refused::code`] a stable machine code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Under [`MIN_REGISTERED_LEN`] characters.
    TooShort,
    /// Inside a redaction label (also a kind name: `password`, `api_key`).
    InLabel,
    /// Under 5 distinct characters, or mostly a run (`12345678`).
    Repetitive,
    /// A common password, or a word with a few digits or symbols added.
    Common,
    /// JSON or log structure around too little substance.
    Structure,
    /// No letters and under [`MIN_NUMBER_LEN`] digits.
    Number,
    /// Letters and separators short of a passphrase.
    Word,
}

impl Refused {
    pub fn code(self) -> &'static str {
        match self {
            Refused::TooShort => "too_short",
            Refused::InLabel => "in_label",
            Refused::Repetitive => "repetitive",
            Refused::Common => "common",
            Refused::Structure => "structure",
            Refused::Number => "number",
            Refused::Word => "word",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refused::TooShort => "too short to scrub safely (under 8 characters)",
            Refused::InLabel => "part of a redaction label; it would make redactions unstable",
            Refused::Repetitive => {
                "too repetitive to be a secret (under 5 distinct characters or a simple sequence)"
            }
            Refused::Common => {
                "a common password or a word with digits or symbols added; it would redact ordinary text"
            }
            Refused::Structure => "looks like JSON or log structure; it would rewrite log lines",
            Refused::Number => {
                "a short number (no letters, under 16 characters); it would redact ordinary numbers"
            }
            Refused::Word => {
                "a dictionary-like word or phrase (letters only need 20 characters and 4 words); it would redact ordinary text"
            }
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Refused {}

/// The most common passwords, lowercase. Letters-only entries also match
/// in look-alike spelling (`p@ssw0rd`) and with digits or symbols around
/// them; the shape rules catch most of these anyway, the list names them.
const COMMON: &[&str] = &[
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "a1b2c3d4",
    "q1w2e3r4",
    "trustno1",
    "zaq12wsx",
    "abc123abc",
    "administrator",
    "admin",
    "baseball",
    "changeme",
    "default",
    "dragon",
    "football",
    "iloveyou",
    "letmein",
    "master",
    "monkey",
    "passwort",
    "password",
    "princess",
    "qwerty",
    "qwertyuiop",
    "qwertz",
    "secret",
    "starwars",
    "sunshine",
    "superman",
    "welcome",
];

/// `Ok` when `value` may be registered for a tenant; see the module docs.
pub fn check_strength(value: &str) -> Result<(), Refused> {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < MIN_REGISTERED_LEN {
        return Err(Refused::TooShort);
    }
    if is_in_label(value) {
        return Err(Refused::InLabel);
    }
    if is_repetitive(&chars) {
        return Err(Refused::Repetitive);
    }
    if is_common(value, &chars) {
        return Err(Refused::Common);
    }
    if chars.iter().any(|&c| is_structure(c)) {
        let substance: Vec<char> = chars
            .iter()
            .copied()
            .filter(|c| c.is_alphanumeric())
            .collect();
        if substance.len() < MIN_REGISTERED_LEN || check_shape(&substance).is_err() {
            return Err(Refused::Structure);
        }
    }
    check_shape(&chars)
}

fn is_structure(c: char) -> bool {
    matches!(c, '"' | '{' | '}' | '[' | ']' | '\\') || c.is_control()
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c.is_ascii_punctuation()
}

fn is_repetitive(chars: &[char]) -> bool {
    if chars.iter().collect::<BTreeSet<_>>().len() < MIN_DISTINCT {
        return true;
    }
    let pairs = chars.len() - 1;
    let steps = chars
        .windows(2)
        .filter(|w| (i64::from(u32::from(w[0])) - i64::from(u32::from(w[1]))).abs() <= 1)
        .count();
    4 * steps >= 3 * pairs
}

/// `chars` from the first letter to the last, and how many characters
/// (digits, separators) were around that.
fn core(chars: &[char]) -> (&[char], usize) {
    let start = chars
        .iter()
        .position(|c| c.is_alphabetic())
        .unwrap_or(chars.len());
    let end = chars
        .iter()
        .rposition(|c| c.is_alphabetic())
        .map_or(start, |i| i + 1);
    (&chars[start..end], chars.len() - (end - start))
}

fn is_common(value: &str, chars: &[char]) -> bool {
    if COMMON.contains(&value.to_lowercase().as_str()) {
        return true;
    }
    let folded: String = core(chars)
        .0
        .iter()
        .map(|&c| match c {
            '@' | '4' => 'a',
            '0' => 'o',
            '1' | '!' | '|' => 'i',
            '3' => 'e',
            '5' | '$' => 's',
            '7' => 't',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    COMMON.contains(&folded.as_str())
}

fn check_shape(chars: &[char]) -> Result<(), Refused> {
    if !chars.iter().any(|c| c.is_alphabetic()) {
        let digits = chars.iter().filter(|c| c.is_ascii_digit()).count();
        return if digits < MIN_NUMBER_LEN {
            Err(Refused::Number)
        } else {
            Ok(())
        };
    }
    if is_words(chars) {
        return if is_passphrase(chars) {
            Ok(())
        } else {
            Err(Refused::Word)
        };
    }
    let (core, affix) = core(chars);
    if affix <= MAX_AFFIX_LEN && is_words(core) && !is_passphrase(core) {
        return Err(Refused::Common);
    }
    Ok(())
}

/// Only letters and separators.
fn is_words(chars: &[char]) -> bool {
    chars.iter().all(|&c| c.is_alphabetic() || is_separator(c))
}

fn is_passphrase(chars: &[char]) -> bool {
    chars.len() >= MIN_PASSPHRASE_LEN && words(chars) >= MIN_PASSPHRASE_WORDS
}

/// Runs of letters, split where a lowercase letter meets an uppercase one.
fn words(chars: &[char]) -> usize {
    let mut count = 0;
    let mut previous: Option<char> = None;
    for &c in chars {
        if c.is_alphabetic() {
            let starts = match previous {
                Some(p) if p.is_alphabetic() => p.is_lowercase() && c.is_uppercase(),
                _ => true,
            };
            count += usize::from(starts);
        }
        previous = Some(c);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::{Refused, check_strength};

    #[test]
    fn the_rule_both_ways() {
        let table: &[(&str, Result<(), Refused>)] = &[
            // Refused.
            ("", Err(Refused::TooShort)),
            ("hunter2", Err(Refused::TooShort)),
            ("WARN", Err(Refused::TooShort)),
            ("REDACTED:registered", Err(Refused::InLabel)),
            ("[REDACTED:", Err(Refused::InLabel)),
            ("aaaaaaaaaaaa", Err(Refused::Repetitive)),
            ("abababab", Err(Refused::Repetitive)),
            ("12345678", Err(Refused::Repetitive)),
            ("1234567890123456", Err(Refused::Repetitive)),
            ("abcdefghijk", Err(Refused::Repetitive)),
            ("password", Err(Refused::InLabel)), // `[REDACTED:password]`
            ("passwort", Err(Refused::Common)),
            ("password1", Err(Refused::Common)),
            ("Password123!", Err(Refused::Common)),
            ("p@ssw0rd", Err(Refused::Common)),
            ("P@ssw0rd2024", Err(Refused::Common)),
            ("1q2w3e4r", Err(Refused::Common)),
            ("qwertyuiop", Err(Refused::Common)),
            ("iloveyou", Err(Refused::Common)),
            ("Summer2024!", Err(Refused::Common)),
            ("test-key-123", Err(Refused::Common)),
            ("permission", Err(Refused::Word)),
            ("security", Err(Refused::Word)),
            ("authentication", Err(Refused::Word)),
            ("internationalization", Err(Refused::Word)),
            ("security.auth_failure", Err(Refused::Word)),
            ("SecurityAuthFailure", Err(Refused::Word)),
            ("authentication failed", Err(Refused::Word)),
            ("exoclaw::http::secrets", Err(Refused::Word)),
            ("\"level\":\"WARN\"", Err(Refused::Structure)),
            (
                "{\"event\":\"security.auth_failure\"}",
                Err(Refused::Structure),
            ),
            ("\"timestamp\"", Err(Refused::Structure)),
            ("{\"a\":1,\"b\":2}", Err(Refused::Structure)),
            ("87654321", Err(Refused::Repetitive)),
            ("55518342", Err(Refused::Number)),
            ("2026-11-21 22:05", Err(Refused::Number)),
            ("+1 (555) 867-5309", Err(Refused::Number)),
            ("pa ss/w\"rd+x?y9", Err(Refused::Structure)),
            ("my\"secret\"pass1", Err(Refused::Structure)),
            // Accepted.
            ("9f86d081884c7d65", Ok(())),
            ("9f86d081884c7d659a2feaa0c55ad015", Ok(())),
            ("dGhpcyBpcyBhIHRlc3Q=", Ok(())),
            ("aGVsbG8gd29ybGQhIQ", Ok(())),
            ("sk-live-4eC39HqLyjWDarjtT1zdp7dc", Ok(())),
            ("sk-ant-api03-AbCdEfGhIjKlMnOp0123", Ok(())),
            ("correct horse battery staple", Ok(())),
            ("Correct-Horse-Battery-Staple", Ok(())),
            ("hunter2hunter2Xy!", Ok(())),
            ("hunter2hunter2", Ok(())),
            ("x{7\"Qp9!mZ2#", Ok(())),
            ("4929136452798123", Ok(())),
            ("registered-secret-00-Zq8xP4vL", Ok(())),
            ("correct-horse-battery-staple", Ok(())),
            ("Zq8xP4vLk2", Ok(())),
        ];
        let wrong: Vec<String> = table
            .iter()
            .filter(|(value, want)| check_strength(value) != *want)
            .map(|(value, want)| {
                format!("{value:?}: want {want:?}, got {:?}", check_strength(value))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn every_reason_has_a_message_and_a_code() {
        for r in [
            Refused::TooShort,
            Refused::InLabel,
            Refused::Repetitive,
            Refused::Common,
            Refused::Structure,
            Refused::Number,
            Refused::Word,
        ] {
            assert!(!r.to_string().is_empty());
            assert!(
                r.code()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
        assert_eq!(
            Refused::TooShort.to_string(),
            "too short to scrub safely (under 8 characters)"
        );
    }
}
