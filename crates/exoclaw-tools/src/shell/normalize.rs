//! Normalisation before parsing, so that what is checked is what runs: NFKC
//! (fullwidth `ｃｕｒｌ` becomes `curl`, a no-break space a space), invisible
//! characters removed (zero-width space/joiners, word joiner, BOM, soft
//! hyphen, variation selectors, ...), CRLF line ends made LF, and refused:
//! NUL, other control characters (C0 except tab and newline, DEL, C1),
//! bidirectional overrides (Trojan Source), line/paragraph separators and
//! non-characters. The exec tool runs the normalised text, never the
//! original.

use unicode_normalization::UnicodeNormalization as _;

/// Longest command accepted, in bytes (before and after normalisation).
pub(crate) const MAX_COMMAND_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NormalizeError {
    TooLong,
    Nul,
    Control(char),
}

impl std::fmt::Display for NormalizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong => write!(f, "the command is longer than {MAX_COMMAND_BYTES} bytes"),
            Self::Nul => write!(f, "the command contains a NUL character"),
            Self::Control(c) => write!(
                f,
                "the command contains the control or formatting character U+{:04X}",
                u32::from(*c)
            ),
        }
    }
}

/// Characters with no visible effect that could hide text from a reader.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2060}'..='\u{2064}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// Characters refused outright.
fn is_refused(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{FFFE}'
                | '\u{FFFF}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

pub(crate) fn normalize(input: &str) -> Result<String, NormalizeError> {
    if input.len() > MAX_COMMAND_BYTES {
        return Err(NormalizeError::TooLong);
    }
    if input.contains('\0') {
        return Err(NormalizeError::Nul);
    }
    let mut out = String::with_capacity(input.len());
    for c in input.replace("\r\n", "\n").nfkc() {
        if is_invisible(c) {
            continue;
        }
        if c == '\0' {
            return Err(NormalizeError::Nul);
        }
        if is_refused(c) {
            return Err(NormalizeError::Control(c));
        }
        out.push(c);
    }
    if out.len() > MAX_COMMAND_BYTES {
        return Err(NormalizeError::TooLong);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fullwidth_and_invisible_characters_are_normalised() {
        assert_eq!(normalize("ｃｕｒｌ x").unwrap(), "curl x");
        assert_eq!(normalize("cu\u{200B}rl\u{FEFF} x").unwrap(), "curl x");
        assert_eq!(normalize("rm\u{00A0}-rf").unwrap(), "rm -rf");
        assert_eq!(normalize("a\r\nb").unwrap(), "a\nb");
        assert_eq!(normalize("ls\tsrc\n").unwrap(), "ls\tsrc\n");
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(normalize("ls\0x"), Err(NormalizeError::Nul));
        for bad in [
            "ls\u{1b}[2J",
            "a\rb",
            "x\u{202E}y",
            "x\u{7f}",
            "x\u{85}",
            "x\u{2028}",
        ] {
            assert!(
                matches!(normalize(bad), Err(NormalizeError::Control(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            normalize(&"a".repeat(MAX_COMMAND_BYTES + 1)),
            Err(NormalizeError::TooLong)
        );
    }
}
