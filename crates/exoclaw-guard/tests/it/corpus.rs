//! The corpora in `tests/corpus/`: every attack line hits exactly its
//! annotated rules, every ordinary line hits none.

use exoclaw_guard::inject::{EXCERPT_MAX_CHARS, RULES, Scanner};
use std::collections::BTreeSet;

const POSITIVE: &str = include_str!("../corpus/injection_positive.txt");
const NEGATIVE: &str = include_str!("../corpus/injection_negative.txt");

/// Decode the corpus escapes: `\u{XXXX}` and `\n`.
fn unescape(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("\\n") {
            out.push('\n');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("\\u{") {
            let end = after.find('}').expect("closed \\u{ escape");
            let code = u32::from_str_radix(&after[..end], 16).expect("hex escape");
            out.push(char::from_u32(code).expect("valid scalar"));
            rest = &after[end + 1..];
        } else {
            out.push('\\');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

fn lines(corpus: &str) -> impl Iterator<Item = &str> {
    corpus
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
}

#[test]
fn corpora_are_big_enough() {
    assert!(lines(POSITIVE).count() >= 40);
    assert!(lines(NEGATIVE).count() >= 40);
}

#[test]
fn every_attack_hits_exactly_its_rules() {
    let scanner = Scanner::new();
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    for line in lines(POSITIVE) {
        let (text, ids) = line.rsplit_once("  # ").expect("annotated line");
        let expected: BTreeSet<&str> = ids.split(',').map(str::trim).collect();
        for id in &expected {
            assert!(RULES.iter().any(|(r, _)| r == id), "unknown rule {id}");
        }
        // The rules' own ids; the classifier is measured in classifier.rs.
        let hits = scanner.scan_rules(&unescape(text));
        let got: BTreeSet<&str> = hits.iter().map(|h| h.rule).collect();
        for hit in &hits {
            assert!(hit.excerpt.chars().count() <= EXCERPT_MAX_CHARS);
            assert!(!hit.excerpt.is_empty());
        }
        covered.extend(got.iter().copied());
        if got != expected {
            failures.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for (id, _) in RULES.iter().filter(|(id, _)| *id != "inject.classifier") {
        assert!(
            covered.contains(id),
            "no attack in the corpus exercises {id}"
        );
    }
}

#[test]
fn ordinary_text_hits_nothing() {
    let scanner = Scanner::new();
    let failures: Vec<String> = lines(NEGATIVE)
        .map(unescape)
        .filter_map(|text| {
            let hits = scanner.scan(&text);
            (!hits.is_empty()).then(|| format!("{text:?}: {hits:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_whole_negative_corpus_as_one_message_hits_nothing() {
    let text: String = lines(NEGATIVE).map(unescape).collect::<Vec<_>>().join("\n");
    assert_eq!(Scanner::new().scan(&text), vec![]);
}
