//! `normalize`: the text the injection rules match on. Undoes the cheap
//! disguises (case, width, look-alike letters, invisible characters,
//! diacritics, odd spacing, `i g n o r e`) and nothing else.

use crate::fold::fold_char;
use std::borrow::Cow;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Separators of a spelled-out word (`i g n o r e`, `i.g.n.o.r.e`,
/// `i-g-n-o-r-e`); one kind per word.
fn is_spell_separator(b: u8) -> bool {
    matches!(b, b' ' | b'.' | b'-')
}
/// Fewer single letters in a row are ordinary text (`e.g.`, `a b c`).
const SPELL_MIN_LETTERS: usize = 4;

/// Normalise `text` for matching: per-character compatibility folding
/// (fullwidth, ligatures, math letters), combining marks and invisible
/// characters (zero-width, bidi controls, tag characters, controls) dropped,
/// Cyrillic and Greek look-alikes mapped to Latin, lowercase, NFKC. Runs of
/// whitespace become one space, or one `\n` when they hold a line break (so
/// rules can still see line starts). Runs of at least four single letters
/// joined by the same separator (`i g n o r e`, `s.y.s.t.e.m`) become one
/// word.
///
/// Idempotent. Text that is already normal (ASCII, lowercase, single
/// spaces, no controls) comes back borrowed.
pub fn normalize(text: &str) -> Cow<'_, str> {
    let folded = fold_and_collapse(text);
    match join_spelled(&folded) {
        Cow::Borrowed(_) => folded,
        Cow::Owned(joined) => Cow::Owned(joined),
    }
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// True when ASCII `text` is already folded and collapsed.
fn is_folded_ascii(text: &[u8]) -> bool {
    let mut prev_space = false;
    for &b in text {
        let space = match b {
            b' ' | b'\n' => true,
            b'A'..=b'Z' | 0..=0x1f | 0x7f => return false,
            _ => false,
        };
        if space && prev_space {
            return false;
        }
        prev_space = space;
    }
    true
}

fn fold_and_collapse(text: &str) -> Cow<'_, str> {
    if text.is_ascii() && is_folded_ascii(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    if text.is_ascii() {
        return Cow::Owned(fold_ascii(text.as_bytes()));
    }
    // Fold, recompose, and repeat until stable: folding a composed character
    // (a Hangul syllable, a letter a look-alike mapping made composable) can
    // change it again. Two rounds settle real text.
    let mut folded: String = fold_all(text).nfkc().collect();
    for _ in 0..4 {
        if is_nfkc_quick(folded.chars()) == IsNormalized::Yes && folded.chars().all(is_fold_fixed) {
            break;
        }
        folded = fold_all(&folded).nfkc().collect();
    }
    Cow::Owned(collapse_whitespace(&folded))
}

/// The ASCII case of `fold_char` + `collapse_whitespace` in one pass:
/// lowercase, controls dropped, whitespace runs to one space or `\n`.
fn fold_ascii(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run: Option<char> = None;
    for &b in text {
        match b {
            b' ' | b'\t' => {
                if run.is_none() {
                    run = Some(' ');
                }
            }
            b'\n' | b'\r' | 0x0b | 0x0c => run = Some('\n'),
            0..=0x1f | 0x7f => {}
            _ => {
                if let Some(sep) = run.take() {
                    out.push(sep);
                }
                out.push(char::from(b.to_ascii_lowercase()));
            }
        }
    }
    if let Some(sep) = run {
        out.push(sep);
    }
    out
}

fn fold_all(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        fold_char(c, &mut |f| out.push(f));
    }
    out
}

fn is_fold_fixed(c: char) -> bool {
    let mut same = true;
    let mut n = 0;
    fold_char(c, &mut |f| {
        n += 1;
        same &= f == c;
    });
    same && n == 1
}

fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run: Option<char> = None;
    for c in text.chars() {
        if c.is_whitespace() {
            let sep = if is_line_break(c) { '\n' } else { ' ' };
            run = Some(match run {
                Some('\n') => '\n',
                _ => sep,
            });
            continue;
        }
        if let Some(sep) = run.take() {
            out.push(sep);
        }
        out.push(c);
    }
    if let Some(sep) = run {
        out.push(sep);
    }
    out
}

fn is_alnum_before(text: &str, i: usize) -> bool {
    text[..i]
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric)
}

fn is_alnum_at(text: &str, i: usize) -> bool {
    text[i..].chars().next().is_some_and(char::is_alphanumeric)
}

/// A lowercase ASCII letter at byte `i` standing alone (no letter or digit
/// directly before or after it).
fn is_single_letter(text: &str, i: usize) -> bool {
    let b = text.as_bytes();
    b[i].is_ascii_lowercase() && !is_alnum_before(text, i) && !is_alnum_at(text, i + 1)
}

/// Join runs of single letters separated by one repeated separator.
fn join_spelled(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        // Cheap byte tests first; `is_single_letter` decodes neighbours.
        if i + 2 < b.len()
            && is_spell_separator(b[i + 1])
            && b[i].is_ascii_lowercase()
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && is_single_letter(text, i)
        {
            let sep = b[i + 1];
            let mut last = i;
            let mut letters = 1;
            while last + 2 < b.len() && b[last + 1] == sep && is_single_letter(text, last + 2) {
                last += 2;
                letters += 1;
            }
            if letters >= SPELL_MIN_LETTERS {
                let o = out.get_or_insert_with(|| String::with_capacity(b.len()));
                o.push_str(&text[copied..i]);
                o.extend((i..=last).step_by(2).map(|k| char::from(b[k])));
                copied = last + 1;
                i = last + 1;
                continue;
            }
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;
    use std::borrow::Cow;

    fn check(input: &str, expect: &str) {
        let got = normalize(input);
        assert_eq!(got, expect, "normalize({input:?})");
        assert_eq!(normalize(&got), got, "not idempotent for {input:?}");
    }

    #[test]
    fn already_normal_ascii_is_borrowed() {
        for text in ["", "hello world", "a\nb c", "e.g. a b c", "x-ray, i.e. foo"] {
            assert!(matches!(normalize(text), Cow::Borrowed(_)), "{text:?}");
        }
    }

    #[test]
    fn case_width_and_spacing_fold() {
        check("Ignore  ALL\t\tprevious", "ignore all previous");
        check("line one\r\n\r\n  line two", "line one\nline two");
        check("ＩＧＮＯＲＥ ｐｒｅｖｉｏｕｓ", "ignore previous");
        check("ﬁle", "file");
        check("𝐢𝐠𝐧𝐨𝐫𝐞", "ignore");
        check("a\u{00A0}b", "a b");
    }

    #[test]
    fn invisible_characters_are_dropped() {
        check("ig\u{200B}no\u{200D}re", "ignore");
        check("\u{FEFF}sys\u{202E}tem\u{2066}", "system");
        check("ig\u{E0069}nore", "ignore");
        check("ig\u{180E}no\u{00AD}re\u{0007}", "ignore");
    }

    #[test]
    fn look_alikes_and_diacritics_map_to_latin() {
        // Cyrillic і, о, е and Greek ο, ρ.
        check("іgnоrе", "ignore");
        check("ΡRΕVΙΟUS", "previous");
        check("ìgnóre prëvious", "ignore previous");
        check("SYSTЕM", "system");
    }

    #[test]
    fn spelled_out_words_are_joined() {
        check("i g n o r e previous", "ignore previous");
        check("I.G.N.O.R.E p-r-e-v-i-o-u-s", "ignore previous");
        check("a.b c d e f", "a.bcdef");
    }

    #[test]
    fn ordinary_short_letter_runs_stay() {
        check("e.g. i.e. U.S.A.", "e.g. i.e. u.s.a.");
        check("a b c", "a b c");
        check("plan a or b - c", "plan a or b - c");
        check("x = a + b - c", "x = a + b - c");
        check("version 1.2.3.4 of a", "version 1.2.3.4 of a");
    }

    #[test]
    fn regression_idempotent_after_whitespace_collapse() {
        // Double-spaced letters become single-spaced after the collapse;
        // joining after collapsing keeps the result stable.
        check("a  b  c  d", "abcd");
    }
}
