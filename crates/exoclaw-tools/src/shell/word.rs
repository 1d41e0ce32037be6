//! Word-level lexing for the parser: quotes, escapes, parameter expansion,
//! command substitution (`$(...)` parsed with the same cursor, backticks
//! unescaped and parsed recursively), arithmetic, process substitution,
//! ANSI-C strings, array values and here-document bodies.

use super::ast::*;
use super::parse::{ParseError, Parser, is_meta, is_name, parse_chars};

/// Where double-quote-like text ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoted {
    /// Inside `"..."`: `\` escapes `$ \` " \` and newline.
    Double,
    /// A here-document body: like `Double`, but `"` is ordinary and there is
    /// no terminator.
    HereDoc,
}

impl Parser<'_> {
    /// One word at the cursor (after blanks), or `None` at an operator or
    /// the end of input.
    pub(super) fn word(&mut self) -> Result<Option<Word>, ParseError> {
        self.skip_blanks();
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        while let Some(c) = self.peek() {
            if (c == '<' || c == '>') && self.peek_at(1) == Some('(') {
                flush(&mut lit, &mut parts);
                self.pos += 2;
                let script = self.substitution()?;
                parts.push(Part::ProcSubst {
                    output: c == '>',
                    script,
                });
                continue;
            }
            if c == '(' && is_array_start(&parts, &lit) {
                flush(&mut lit, &mut parts);
                self.pos += 1;
                parts.push(Part::Array(self.array()?));
                continue;
            }
            if is_meta(c) {
                break;
            }
            if matches!(c, '?' | '*' | '+' | '@' | '!') && self.peek_at(1) == Some('(') {
                return Err(self.error("extended glob patterns are not supported"));
            }
            match c {
                '\'' => {
                    flush(&mut lit, &mut parts);
                    self.pos += 1;
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c != '\'') {
                        self.pos += 1;
                    }
                    if self.peek().is_none() {
                        return Err(self.error("unterminated single quote"));
                    }
                    parts.push(Part::Single(self.src[start..self.pos].iter().collect()));
                    self.pos += 1;
                }
                '"' => {
                    flush(&mut lit, &mut parts);
                    self.pos += 1;
                    parts.push(Part::Double(self.quoted(Quoted::Double)?));
                }
                '\\' => match self.peek_at(1) {
                    Some('\n') => self.pos += 2,
                    Some(e) => {
                        flush(&mut lit, &mut parts);
                        parts.push(Part::Escaped(e));
                        self.pos += 2;
                    }
                    None => return Err(self.error("a backslash at the end of the command")),
                },
                '$' => {
                    if let Some(part) = self.dollar(false)? {
                        flush(&mut lit, &mut parts);
                        parts.push(part);
                    } else {
                        lit.push('$');
                    }
                }
                '`' => {
                    flush(&mut lit, &mut parts);
                    parts.push(self.backtick(false)?);
                }
                _ => {
                    lit.push(c);
                    self.pos += 1;
                }
            }
        }
        flush(&mut lit, &mut parts);
        Ok((!parts.is_empty()).then_some(Word { parts }))
    }

    /// The parts of quoted text after the opening `"` (consumes the closing
    /// one), or of a whole here-document body.
    fn quoted(&mut self, mode: Quoted) -> Result<Vec<Part>, ParseError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            let Some(c) = self.peek() else {
                if mode == Quoted::Double {
                    return Err(self.error("unterminated double quote"));
                }
                break;
            };
            match c {
                '"' if mode == Quoted::Double => {
                    self.pos += 1;
                    break;
                }
                '\\' => {
                    let next = self.peek_at(1);
                    match next {
                        Some('\n') => self.pos += 2,
                        Some(e @ ('$' | '`' | '\\')) => {
                            flush(&mut lit, &mut parts);
                            parts.push(Part::Escaped(e));
                            self.pos += 2;
                        }
                        Some('"') if mode == Quoted::Double => {
                            flush(&mut lit, &mut parts);
                            parts.push(Part::Escaped('"'));
                            self.pos += 2;
                        }
                        _ => {
                            lit.push('\\');
                            self.pos += 1;
                        }
                    }
                }
                '$' => {
                    if let Some(part) = self.dollar(true)? {
                        flush(&mut lit, &mut parts);
                        parts.push(part);
                    } else {
                        lit.push('$');
                    }
                }
                '`' => {
                    flush(&mut lit, &mut parts);
                    parts.push(self.backtick(mode == Quoted::Double)?);
                }
                _ => {
                    lit.push(c);
                    self.pos += 1;
                }
            }
        }
        flush(&mut lit, &mut parts);
        Ok(parts)
    }

    /// An expansion at a `$`, or `None` (cursor past the `$`) for a literal
    /// dollar sign.
    fn dollar(&mut self, in_double: bool) -> Result<Option<Part>, ParseError> {
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        match c {
            '\'' if !in_double => {
                self.pos += 1;
                Ok(Some(Part::AnsiC(self.ansi_c()?)))
            }
            '"' if !in_double => {
                self.pos += 1;
                Ok(Some(Part::Double(self.quoted(Quoted::Double)?)))
            }
            '(' => {
                if self.peek_at(1) == Some('(') {
                    let save = self.save();
                    self.pos += 2;
                    self.enter()?;
                    let arith = self.arith_body();
                    self.depth -= 1;
                    if let Some(w) = arith? {
                        return Ok(Some(Part::Arith(w)));
                    }
                    self.restore(save);
                }
                self.pos += 1;
                Ok(Some(Part::CmdSubst(self.substitution()?)))
            }
            '{' => {
                self.pos += 1;
                self.enter()?;
                let p = self.braced_param();
                self.depth -= 1;
                Ok(Some(Part::Param(p?)))
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c == '_' || c.is_ascii_alphanumeric())
                {
                    self.pos += 1;
                }
                Ok(Some(Part::Param(simple_param(
                    self.src[start..self.pos].iter().collect(),
                ))))
            }
            c if c.is_ascii_digit() || matches!(c, '@' | '*' | '#' | '?' | '$' | '!' | '-') => {
                self.pos += 1;
                Ok(Some(Part::Param(simple_param(c.to_string()))))
            }
            _ => Ok(None),
        }
    }

    /// A command list after `$(`, `<(` or `>(`, through the closing `)`.
    /// A line break inside it while an outer here-document waits for its body
    /// is refused: where that body starts is unclear (shells disagree), and
    /// the canonical text must mean the same as the original.
    fn substitution(&mut self) -> Result<Script, ParseError> {
        self.enter()?;
        let first_heredoc = self.next_heredoc;
        let start = self.pos;
        let outer_pending = !self.pending.is_empty();
        let script = self.list(&[")"]);
        self.depth -= 1;
        let mut script = script?;
        self.skip_blanks();
        if self.peek() != Some(')') {
            return Err(self.error("unterminated substitution"));
        }
        if outer_pending
            && self
                .src
                .get(start..self.pos)
                .is_some_and(|t| t.contains(&'\n'))
        {
            return Err(self.error(OUTER_HEREDOC));
        }
        if self.in_braces > 0
            && self
                .src
                .get(start..self.pos)
                .is_some_and(|t| t.contains(&'}'))
        {
            return Err(self.error(BRACE_IN_SUBSTITUTION));
        }
        self.pos += 1;
        if self.pending.iter().any(|(id, ..)| *id >= first_heredoc) {
            return Err(self.error("a here-document inside a substitution has no body"));
        }
        if let Some(e) = self.heredoc_error.take() {
            return Err(e);
        }
        super::splice::fill(&mut script, &mut self.bodies);
        Ok(script)
    }

    /// `` `...` ``: unescape, then parse the text as its own command (refused
    /// like `$(...)` when it spans lines while a here-document is pending).
    fn backtick(&mut self, in_double: bool) -> Result<Part, ParseError> {
        self.pos += 1;
        let mut text = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated backquote")),
                Some('`') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => {
                    let next = self.peek_at(1);
                    match next {
                        Some(e @ ('$' | '`' | '\\')) => text.push(e),
                        Some('"') if in_double => text.push('"'),
                        Some(e) => {
                            text.push('\\');
                            text.push(e);
                        }
                        None => return Err(self.error("unterminated backquote")),
                    }
                    self.pos += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        if self.depth + 1 > super::parse::MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        if !self.pending.is_empty() && text.contains(&'\n') {
            return Err(self.error(OUTER_HEREDOC));
        }
        if self.in_braces > 0 && text.contains(&'}') {
            return Err(self.error(BRACE_IN_SUBSTITUTION));
        }
        let script = parse_chars(&text, self.depth + 1).map_err(|mut e| {
            e.offset = self.pos;
            e.message = format!("inside backquotes: {}", e.message);
            e
        })?;
        Ok(Part::CmdSubst(script))
    }

    /// The decoded text of `$'...'` after the opening quote.
    fn ansi_c(&mut self) -> Result<String, ParseError> {
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("unterminated $'...'"));
            };
            self.pos += 1;
            match c {
                '\'' => return Ok(out),
                '\\' => {
                    let e = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated $'...'"))?;
                    self.pos += 1;
                    let decoded = match e {
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'e' | 'E' => '\u{1b}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'v' => '\u{b}',
                        '\\' | '\'' | '"' | '?' => e,
                        'c' => {
                            let k = self.peek().ok_or_else(|| self.error("bad \\c escape"))?;
                            self.pos += 1;
                            char::from(u8::try_from(u32::from(k) & 0x1f).unwrap_or(0))
                        }
                        '0'..='7' => {
                            self.pos -= 1;
                            self.radix_escape(8, 3)?
                        }
                        'x' => self.radix_escape(16, 2)?,
                        'u' => self.radix_escape(16, 4)?,
                        'U' => self.radix_escape(16, 8)?,
                        other => {
                            out.push('\\');
                            other
                        }
                    };
                    if decoded == '\0' || decoded == '\u{ffff}' {
                        return Err(self.error("$'...' decodes to NUL"));
                    }
                    out.push(decoded);
                }
                _ => out.push(c),
            }
        }
    }

    fn radix_escape(&mut self, radix: u32, max: usize) -> Result<char, ParseError> {
        let mut value = 0u32;
        let mut n = 0;
        while n < max {
            let Some(d) = self.peek().and_then(|c| c.to_digit(radix)) else {
                break;
            };
            value = value * radix + d;
            self.pos += 1;
            n += 1;
        }
        if n == 0 {
            return Err(self.error("bad escape in $'...'"));
        }
        // Octal and `\x` escapes above 0x7f are raw bytes, not characters.
        if max <= 3 && value > 0x7f {
            return Err(self.error("non-ASCII byte escape in $'...'"));
        }
        char::from_u32(value).ok_or_else(|| self.error("bad escape in $'...'"))
    }

    /// After `${`: the parameter and its operator word, through `}`.
    fn braced_param(&mut self) -> Result<Param, ParseError> {
        let mut prefix = None;
        if let Some(c @ ('#' | '!')) = self.peek() {
            let next = self.peek_at(1);
            if next.is_some_and(|n| n != '}' && (is_name_char(n) || "@*#?$!-".contains(n))) {
                prefix = Some(c);
                self.pos += 1;
            }
        }
        let start = self.pos;
        match self.peek() {
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                while self.peek().is_some_and(is_name_char) {
                    self.pos += 1;
                }
            }
            Some(c) if c.is_ascii_digit() => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
            Some('@' | '*' | '#' | '?' | '$' | '!' | '-') => self.pos += 1,
            _ => return Err(self.error("bad substitution")),
        }
        let name: String = self.src[start..self.pos].iter().collect();
        let index = if self.peek() == Some('[') {
            self.pos += 1;
            let index = self.until_close(']')?;
            self.pos += 1;
            Some(index)
        } else {
            None
        };
        let rest = if self.peek() == Some('}') {
            None
        } else {
            self.in_braces += 1;
            let rest = self.until_close('}');
            self.in_braces -= 1;
            Some(rest?)
        };
        if self.peek() != Some('}') {
            return Err(self.error("unterminated ${...}"));
        }
        self.pos += 1;
        Ok(Param {
            name,
            braced: true,
            prefix,
            index,
            rest,
        })
    }

    /// Word parts up to an unquoted `close` (`}` or `]`), nesting counted;
    /// the cursor is left on `close`.
    fn until_close(&mut self, close: char) -> Result<Word, ParseError> {
        let open = if close == '}' { '{' } else { '[' };
        let mut depth = 0usize;
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("unterminated ${...}"));
            };
            match c {
                c if c == close && depth == 0 => break,
                '\'' if close == '}' => {
                    flush(&mut lit, &mut parts);
                    self.pos += 1;
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c != '\'') {
                        self.pos += 1;
                    }
                    if self.peek().is_none() {
                        return Err(self.error("unterminated single quote"));
                    }
                    parts.push(Part::Single(self.src[start..self.pos].iter().collect()));
                    self.pos += 1;
                }
                '"' => {
                    flush(&mut lit, &mut parts);
                    self.pos += 1;
                    parts.push(Part::Double(self.quoted(Quoted::Double)?));
                }
                '\\' => match self.peek_at(1) {
                    Some('\n') => self.pos += 2,
                    Some(e) => {
                        flush(&mut lit, &mut parts);
                        parts.push(Part::Escaped(e));
                        self.pos += 2;
                    }
                    None => return Err(self.error("unterminated ${...}")),
                },
                '$' => {
                    if let Some(part) = self.dollar(false)? {
                        flush(&mut lit, &mut parts);
                        parts.push(part);
                    } else {
                        lit.push('$');
                    }
                }
                '`' => {
                    flush(&mut lit, &mut parts);
                    parts.push(self.backtick(false)?);
                }
                _ => {
                    if c == open {
                        depth += 1;
                    } else if c == close {
                        depth -= 1;
                    }
                    lit.push(c);
                    self.pos += 1;
                }
            }
        }
        flush(&mut lit, &mut parts);
        Ok(Word { parts })
    }

    /// After `$((` or `((`: the expression through `))`, or `None` if the
    /// text is not arithmetic (the caller backtracks to a subshell).
    pub(super) fn arith_body(&mut self) -> Result<Option<Word>, ParseError> {
        let mut depth = 0usize;
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Ok(None);
            };
            match c {
                ')' if depth == 0 => {
                    if self.peek_at(1) != Some(')') {
                        return Ok(None);
                    }
                    self.pos += 2;
                    flush(&mut lit, &mut parts);
                    return Ok(Some(Word { parts }));
                }
                '$' => {
                    if let Some(part) = self.dollar(true)? {
                        flush(&mut lit, &mut parts);
                        parts.push(part);
                    } else {
                        lit.push('$');
                    }
                }
                '`' => {
                    flush(&mut lit, &mut parts);
                    parts.push(self.backtick(false)?);
                }
                '\\' if self.peek_at(1) == Some('\n') => self.pos += 2,
                '\\' => return Err(self.error("a backslash inside arithmetic")),
                _ => {
                    if c == '(' {
                        depth += 1;
                    } else if c == ')' {
                        depth -= 1;
                    }
                    lit.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// The words of `(a b c)` after `(`, through `)`.
    fn array(&mut self) -> Result<Vec<Word>, ParseError> {
        let mut words = Vec::new();
        loop {
            self.skip_blanks();
            match self.peek() {
                Some(')') => {
                    self.pos += 1;
                    return Ok(words);
                }
                Some('\n') => self.pos += 1,
                None => return Err(self.error("unterminated array")),
                _ => match self.word()? {
                    Some(w) => words.push(w),
                    None => return Err(self.error("unexpected text in an array")),
                },
            }
        }
    }

    /// A here-document body as a word: literal when the delimiter was
    /// quoted, else with `$`, backquote and backslash processing.
    pub(super) fn heredoc_word(&self, body: &str, quoted: bool) -> Result<Word, ParseError> {
        if quoted {
            return Ok(Word {
                parts: vec![Part::Single(body.to_owned())],
            });
        }
        let chars: Vec<char> = body.chars().collect();
        let mut sub = Parser {
            src: &chars,
            pos: 0,
            depth: self.depth + 1,
            pending: Vec::new(),
            bodies: std::collections::HashMap::new(),
            next_heredoc: 0,
            heredoc_error: None,
            in_braces: 0,
        };
        let parts = sub.quoted(Quoted::HereDoc).map_err(|mut e| {
            e.offset = self.pos;
            e.message = format!("in a here-document: {}", e.message);
            e
        })?;
        Ok(Word { parts })
    }
}

fn flush(lit: &mut String, parts: &mut Vec<Part>) {
    if !lit.is_empty() {
        parts.push(Part::Lit(std::mem::take(lit)));
    }
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

fn simple_param(name: String) -> Param {
    Param {
        name,
        braced: false,
        prefix: None,
        index: None,
        rest: None,
    }
}

/// `NAME=(` or `NAME+=(` so far: an array value follows.
fn is_array_start(parts: &[Part], lit: &str) -> bool {
    parts.is_empty()
        && lit
            .strip_suffix('=')
            .map(|n| n.strip_suffix('+').unwrap_or(n))
            .is_some_and(is_name)
}

const OUTER_HEREDOC: &str = "a substitution spans lines while a here-document waits for its body";

/// A `}` inside a substitution inside `${...}`: where the expansion ends
/// would depend on the quoting style, so the canonical text could differ.
const BRACE_IN_SUBSTITUTION: &str = "a substitution inside ${...} contains a `}`";
