//! Character folding shared by the injection scanner and the marker check:
//! which characters are invisible (dropped), which look like Latin letters
//! (mapped), and the per-character NFKD + lowercase step.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Characters a reader does not see and a matcher must skip: zero-width and
/// joiners, bidi controls and isolates, the BOM, the Mongolian vowel
/// separator, soft hyphen, variation selectors, tag characters, and C0/C1
/// controls other than whitespace.
pub(crate) fn is_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    ) || (c.is_control() && !c.is_whitespace())
}

/// Latin look-alikes from Cyrillic, Greek and a few symbol blocks, mapped to
/// the lowercase Latin letter (or `<`/`>`) they imitate. Applied before and
/// after lowercasing, so uppercase forms map to what they look like (Cyrillic
/// `В` to `b`), not to what they lowercase to (`в`).
pub(crate) fn homoglyph(c: char) -> char {
    match c {
        // Cyrillic
        'а' | 'А' => 'a',
        'В' | 'ь' => 'b',
        'с' | 'С' | 'ϲ' | 'Ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'Е' | 'ё' | 'Ё' => 'e',
        'һ' | 'Һ' | 'Н' => 'h',
        'і' | 'І' | 'ї' | 'Ї' | 'ӏ' | 'Ӏ' => 'i',
        'ј' | 'Ј' => 'j',
        'К' | 'к' => 'k',
        'М' | 'м' => 'm',
        'о' | 'О' => 'o',
        'р' | 'Р' => 'p',
        'ԛ' | 'Ԛ' => 'q',
        'ѕ' | 'Ѕ' => 's',
        'Т' | 'т' => 't',
        'ԝ' | 'Ԝ' => 'w',
        'х' | 'Х' => 'x',
        'у' | 'У' | 'ү' | 'Ү' => 'y',
        // Greek
        'α' | 'Α' => 'a',
        'β' | 'Β' => 'b',
        'ε' | 'Ε' => 'e',
        'η' | 'Η' => 'h',
        'ι' | 'Ι' => 'i',
        'κ' | 'Κ' => 'k',
        'Μ' => 'm',
        'ν' | 'Ν' => 'n',
        'ο' | 'Ο' | 'σ' => 'o',
        'ρ' | 'Ρ' => 'p',
        'τ' | 'Τ' => 't',
        'υ' | 'Υ' => 'y',
        'χ' | 'Χ' => 'x',
        'Ζ' => 'z',
        // Latin extensions and symbols that pass NFKC unchanged
        'ı' => 'i',
        'ɡ' => 'g',
        'ɑ' => 'a',
        'ɩ' => 'i',
        'ʟ' => 'l',
        'ɴ' => 'n',
        'ʀ' => 'r',
        'ꜱ' => 's',
        'ᴀ' => 'a',
        'ᴄ' => 'c',
        'ᴅ' => 'd',
        'ᴇ' => 'e',
        'ᴍ' => 'm',
        'ᴏ' => 'o',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        // Angle brackets that read as `<` / `>` (not U+2039/U+203A, which
        // the marker module uses to defang forged markers).
        '˂' | 'ᐸ' | '〈' | '❮' | '⟨' | '＜' => '<',
        '˃' | 'ᐳ' | '〉' | '❯' | '⟩' | '＞' => '>',
        _ => c,
    }
}

/// Fold one character: compatibility decomposition (NFKD), drop invisibles
/// and combining marks (so `ìgnóre` reads `ignore`), map look-alikes,
/// lowercase. Pushes zero or more characters to `out`; every character pushed
/// folds to itself again.
pub(crate) fn fold_char(c: char, out: &mut impl FnMut(char)) {
    if c.is_ascii() {
        if !is_ignorable(c) {
            out(c.to_ascii_lowercase());
        }
        return;
    }
    decompose_compatible(c, |d| {
        if is_ignorable(d) || is_combining_mark(d) {
            return;
        }
        for l in homoglyph(d).to_lowercase() {
            if !is_ignorable(l) && !is_combining_mark(l) {
                out(homoglyph(l));
            }
        }
    });
}
