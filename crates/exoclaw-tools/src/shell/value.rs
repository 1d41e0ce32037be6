//! What a word can expand to, as far as it is known before it runs. Quote
//! removal is done; parameter and command substitutions are unknown text
//! (they may contain `/`); unquoted `*`, `?` and `[...]` are globs (never
//! matching `/`); a leading unquoted `~` is the home directory (unknown
//! unless the policy knows it). Bash brace expansion (`{rm,-rf,/}`) can turn
//! one word into several, so a word has one value per expansion.
//!
//! Path rules compare these values with rule globs by language
//! intersection ([`could_match`]): `/e?c/sha*` could be `/etc/shadow`.

use super::ast::{Command, Part, Script, Word};
use super::render::render_word;

/// Most words one brace expansion may produce before it is refused.
pub(crate) const MAX_BRACE_WORDS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    Char(char),
    /// `?` or `[...]`: one character, not `/`.
    One,
    /// `*`: any run of characters without `/`.
    Star,
    /// `*` at the start of a path component, which never matches a leading
    /// `.`; taken as matching no `.` at all (a slight under-match).
    StarNoDot,
    /// Unknown text from an expansion: anything, `/` included.
    Any,
}

/// One possible value of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Val {
    /// Quote-removed text when fully known, else the word's source.
    pub text: String,
    /// Quote-removed text with unknown parts spelled as in the source
    /// (`echo $HOME` for `"echo $HOME"`): what a shell given this value
    /// as code (`sh -c`, `eval`) would parse.
    pub code: String,
    pub toks: Vec<Tok>,
    /// Contains an expansion whose value is unknown.
    pub dynamic: bool,
    /// Contains a command or process substitution.
    pub subst: bool,
    /// The whole word is one expansion (`$f`, `"$(cmd)"`): nothing known.
    pub opaque: bool,
    /// Index of the source word in its simple command, when there is one.
    pub word: Option<usize>,
}

impl Val {
    /// The exact text, when nothing is unknown and no glob applies.
    pub fn literal(&self) -> Option<&str> {
        self.toks
            .iter()
            .all(|t| matches!(t, Tok::Char(_)))
            .then_some(self.text.as_str())
    }

    pub fn from_str(s: &str) -> Self {
        Self {
            text: s.to_owned(),
            code: s.to_owned(),
            toks: s.chars().map(Tok::Char).collect(),
            dynamic: false,
            subst: false,
            opaque: false,
            word: None,
        }
    }

    /// The known characters, unknown and glob parts left out
    /// (`/.ss${x}h` gives `/.ssh`).
    pub fn known_text(&self) -> String {
        self.toks
            .iter()
            .filter_map(|t| match t {
                Tok::Char(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// The value after the first `=` (`--file=/etc/x`, `of=/dev/sda`).
    pub fn after_eq(&self) -> Option<Val> {
        let i = self.toks.iter().position(|t| *t == Tok::Char('='))?;
        let toks = self.toks[i + 1..].to_vec();
        let text = self.text.split_once('=').map(|x| x.1).unwrap_or_default();
        let code = self.code.split_once('=').map(|x| x.1).unwrap_or_default();
        Some(Val {
            text: text.to_owned(),
            code: code.to_owned(),
            dynamic: toks.contains(&Tok::Any),
            opaque: false,
            subst: self.subst,
            word: self.word,
            toks,
        })
    }
}

/// A piece of a word before brace expansion: a character (quoted or not)
/// or an unknown expansion.
#[derive(Clone, Debug)]
enum Piece {
    Ch(char, bool),
    /// An expansion, with its source spelling.
    Unknown(String),
}

/// A brace expansion larger than [`MAX_BRACE_WORDS`].
#[derive(Debug)]
pub(crate) struct TooMany;

/// What a word expands to: its value as POSIX `sh` sees it, and the words
/// bash's brace expansion makes of it when that differs.
#[derive(Clone, Debug)]
pub(crate) struct WordVals {
    pub posix: Val,
    pub bash: Option<Vec<Val>>,
}

pub(crate) fn values(word: &Word, home: Option<&str>) -> Result<WordVals, TooMany> {
    let mut pieces = Vec::new();
    let mut subst = false;
    for (i, part) in word.parts.iter().enumerate() {
        match part {
            Part::Lit(s) => {
                let mut s = s.as_str();
                if i == 0 && (s == "~" || s.starts_with("~/")) {
                    match home {
                        Some(h) => pieces.extend(h.chars().map(|c| Piece::Ch(c, true))),
                        None => pieces.push(Piece::Unknown("~".to_owned())),
                    }
                    s = &s[1..];
                }
                pieces.extend(s.chars().map(|c| Piece::Ch(c, false)));
            }
            Part::Escaped(c) => pieces.push(Piece::Ch(*c, true)),
            Part::Single(s) | Part::AnsiC(s) => {
                pieces.extend(s.chars().map(|c| Piece::Ch(c, true)))
            }
            Part::Double(inner) => {
                for p in inner {
                    match p {
                        Part::Lit(s) => pieces.extend(s.chars().map(|c| Piece::Ch(c, true))),
                        Part::Escaped(c) => pieces.push(Piece::Ch(*c, true)),
                        Part::CmdSubst(script) if printed_output(script, home).is_some() => {
                            subst = true;
                            let out = printed_output(script, home).unwrap_or_default();
                            pieces.extend(out.chars().map(|c| Piece::Ch(c, true)));
                        }
                        other => {
                            subst |= is_subst(other);
                            pieces.push(Piece::Unknown(render_part(other)));
                        }
                    }
                }
            }
            // `$(echo /etc/sha)dow`: the output of `echo` or `printf` with
            // literal arguments is known (unquoted, it is one field here:
            // a path has no blanks).
            Part::CmdSubst(script) if printed_output(script, home).is_some() => {
                subst = true;
                let out = printed_output(script, home).unwrap_or_default();
                pieces.extend(out.chars().map(|c| Piece::Ch(c, true)));
            }
            other => {
                subst |= is_subst(other);
                pieces.push(Piece::Unknown(render_part(other)));
            }
        }
    }
    let opaque = matches!(pieces.as_slice(), [Piece::Unknown(s)] if s != "~");
    let source = render_word(word);
    let posix = to_val(&pieces, &source, subst, opaque);
    let bash = brace_expand(&pieces)?.map(|variants| {
        variants
            .iter()
            .map(|v| to_val(v, &source, subst, opaque))
            .collect()
    });
    Ok(WordVals { posix, bash })
}

/// What a command substitution prints when it is one `echo` or `printf`
/// with literal arguments (trailing newlines removed, as the shell does).
fn printed_output(script: &Script, home: Option<&str>) -> Option<String> {
    let [item] = script.items.as_slice() else {
        return None;
    };
    if !item.rest.is_empty() || item.first.commands.len() != 1 {
        return None;
    }
    let Command::Simple(sc) = &item.first.commands[0] else {
        return None;
    };
    if !sc.redirects.is_empty() || !sc.assignments.is_empty() {
        return None;
    }
    let mut words = Vec::with_capacity(sc.words.len());
    for w in &sc.words {
        let v = values(w, home).ok()?.posix;
        words.push(v.literal()?.to_owned());
    }
    let (name, args) = words.split_first()?;
    let out = match name.as_str() {
        "echo" => args
            .iter()
            .skip_while(|a| matches!(a.as_str(), "-n" | "-e" | "-E" | "-ne" | "-en"))
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        "printf" => {
            let (format, rest) = args.split_first()?;
            let mut rest = rest.iter();
            let mut out = String::new();
            let mut parts = format.split("%s");
            out.push_str(parts.next().unwrap_or(""));
            for part in parts {
                out.push_str(rest.next().map_or("", String::as_str));
                out.push_str(part);
            }
            out.replace("\\n", "\n")
        }
        _ => return None,
    };
    Some(out.trim_end_matches('\n').to_owned())
}

fn render_part(p: &Part) -> String {
    render_word(&Word {
        parts: vec![p.clone()],
    })
}

fn is_subst(p: &Part) -> bool {
    match p {
        Part::CmdSubst(_) | Part::ProcSubst { .. } => true,
        Part::Param(param) => param
            .rest
            .iter()
            .chain(param.index.iter())
            .any(|w| w.parts.iter().any(is_subst)),
        Part::Double(inner) => inner.iter().any(is_subst),
        Part::Arith(w) => w.parts.iter().any(is_subst),
        _ => false,
    }
}

fn to_val(pieces: &[Piece], source: &str, subst: bool, opaque: bool) -> Val {
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(p) = pieces.get(i) {
        match p {
            Piece::Unknown(_) => toks.push(Tok::Any),
            Piece::Ch('*', false) => {
                let lead = matches!(toks.last(), None | Some(Tok::Char('/')));
                toks.push(if lead { Tok::StarNoDot } else { Tok::Star });
            }
            Piece::Ch('?', false) => toks.push(Tok::One),
            Piece::Ch('[', false) => {
                // A bracket expression up to an unquoted `]` (a `]` right
                // after the `[` is part of it), else a literal `[`.
                let close = pieces
                    .iter()
                    .enumerate()
                    .skip(i + 2)
                    .find(|(_, p)| matches!(p, Piece::Ch(']', false)))
                    .map(|(k, _)| k);
                match close {
                    Some(end) => {
                        toks.push(Tok::One);
                        i = end;
                    }
                    None => toks.push(Tok::Char('[')),
                }
            }
            Piece::Ch(c, _) => toks.push(Tok::Char(*c)),
        }
        i += 1;
    }
    let code: String = pieces
        .iter()
        .map(|p| match p {
            Piece::Ch(c, _) => c.to_string(),
            Piece::Unknown(src) => src.clone(),
        })
        .collect();
    let literal: Option<String> = toks
        .iter()
        .map(|t| match t {
            Tok::Char(c) => Some(*c),
            _ => None,
        })
        .collect();
    Val {
        text: literal.unwrap_or_else(|| source.to_owned()),
        code,
        dynamic: toks.contains(&Tok::Any),
        toks,
        subst,
        opaque,
        word: None,
    }
}

/// Bash brace expansion over unquoted `{a,b}` and `{1..3}`/`{a..c}`:
/// `None` when nothing expands, `Err` when it would produce too many words.
fn brace_expand(pieces: &[Piece]) -> Result<Option<Vec<Vec<Piece>>>, TooMany> {
    let mut todo = vec![pieces.to_vec()];
    let mut done = Vec::new();
    let mut changed = false;
    while let Some(p) = todo.pop() {
        match expand_one(&p) {
            Some(variants) => {
                changed = true;
                todo.extend(variants.into_iter().rev());
            }
            None => done.push(p),
        }
        if todo.len() + done.len() > MAX_BRACE_WORDS {
            return Err(TooMany);
        }
    }
    Ok(changed.then_some(done))
}

/// Expand the first expandable brace group of `p`, if any.
fn expand_one(p: &[Piece]) -> Option<Vec<Vec<Piece>>> {
    for open in 0..p.len() {
        if !matches!(p[open], Piece::Ch('{', false)) {
            continue;
        }
        let mut depth = 0;
        let mut commas = Vec::new();
        let mut close = None;
        for (k, piece) in p.iter().enumerate().skip(open + 1) {
            match piece {
                Piece::Ch('{', false) => depth += 1,
                Piece::Ch('}', false) if depth == 0 => {
                    close = Some(k);
                    break;
                }
                Piece::Ch('}', false) => depth -= 1,
                Piece::Ch(',', false) if depth == 0 => commas.push(k),
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        let (pre, inner, post) = (&p[..open], &p[open + 1..close], &p[close + 1..]);
        let alternatives: Vec<Vec<Piece>> = if commas.is_empty() {
            match sequence(inner) {
                Some(seq) => seq,
                None => continue,
            }
        } else {
            let mut bounds = vec![open];
            bounds.extend(&commas);
            bounds.push(close);
            bounds
                .windows(2)
                .map(|w| p[w[0] + 1..w[1]].to_vec())
                .collect()
        };
        if alternatives.len() > MAX_BRACE_WORDS {
            return Some(vec![Vec::new(); MAX_BRACE_WORDS + 1]);
        }
        return Some(
            alternatives
                .into_iter()
                .map(|alt| {
                    pre.iter()
                        .cloned()
                        .chain(alt)
                        .chain(post.iter().cloned())
                        .collect()
                })
                .collect(),
        );
    }
    None
}

/// `{1..5}`, `{a..e}`, `{1..10..2}`.
fn sequence(inner: &[Piece]) -> Option<Vec<Vec<Piece>>> {
    let text: String = inner
        .iter()
        .map(|p| match p {
            Piece::Ch(c, _) => Some(*c),
            Piece::Unknown(_) => None,
        })
        .collect::<Option<String>>()?;
    let parts: Vec<&str> = text.split("..").collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let step: i64 = match parts.get(2) {
        Some(s) => s.parse::<i64>().ok()?.checked_abs()?.max(1),
        None => 1,
    };
    let chars = |s: &str| -> Vec<Piece> { s.chars().map(|c| Piece::Ch(c, true)).collect() };
    if let (Ok(a), Ok(b)) = (parts[0].parse::<i64>(), parts[1].parse::<i64>()) {
        let count = (a - b).unsigned_abs() / step.unsigned_abs() + 1;
        if count > MAX_BRACE_WORDS as u64 {
            return Some(vec![Vec::new(); MAX_BRACE_WORDS + 1]);
        }
        let dir = if a <= b { step } else { -step };
        return Some(
            (0..count as i64)
                .map(|k| chars(&(a + k * dir).to_string()))
                .collect(),
        );
    }
    let (mut a, mut b) = (parts[0].chars(), parts[1].chars());
    let (Some(x), None, Some(y), None) = (a.next(), a.next(), b.next(), b.next()) else {
        return None;
    };
    if !x.is_ascii_alphabetic() || !y.is_ascii_alphabetic() {
        return None;
    }
    let (lo, hi) = (u32::from(x.min(y)), u32::from(x.max(y)));
    Some(
        (lo..=hi)
            .step_by(usize::try_from(step).ok()?)
            .filter_map(char::from_u32)
            .map(|c| vec![Piece::Ch(c, true)])
            .collect(),
    )
}

/// Whether some string matches both `a` (a word's value) and `b` (a rule
/// glob). Dynamic programming over positions; both sides may hold stars.
pub(crate) fn could_match(a: &[Tok], b: &[Tok]) -> bool {
    let (n, m) = (a.len(), b.len());
    // next[j]: a[i+1..] and b[j..] can match a common string; cur[j]: a[i..].
    let mut next = vec![false; m + 1];
    let mut cur = vec![false; m + 1];
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            if i == n && j == m {
                cur[j] = true;
                continue;
            }
            let mut ok = false;
            if let Some(ta) = a.get(i).filter(|t| is_star(t)) {
                // The star of `a` matches nothing, or absorbs one char of `b`.
                ok |= i < n && next[j];
                if let Some(tb) = b.get(j) {
                    ok |= absorbs(*ta, *tb) && cur[j + 1];
                }
            }
            if let Some(tb) = b.get(j).filter(|t| is_star(t)) {
                ok |= cur[j + 1];
                if let Some(ta) = a.get(i) {
                    ok |= absorbs(*tb, *ta) && next[j];
                }
            }
            if let (Some(ta), Some(tb)) = (a.get(i), b.get(j))
                && !is_star(ta)
                && !is_star(tb)
                && chars_meet(*ta, *tb)
            {
                ok |= next[j + 1];
            }
            cur[j] = ok;
        }
        std::mem::swap(&mut next, &mut cur);
    }
    next[0]
}

fn is_star(t: &Tok) -> bool {
    matches!(t, Tok::Star | Tok::StarNoDot | Tok::Any)
}

/// Whether `star` can consume the single-character token `t`.
fn absorbs(star: Tok, t: Tok) -> bool {
    match (star, t) {
        (Tok::Any, _) => true,
        (Tok::Star, Tok::Char(c)) => c != '/',
        (Tok::StarNoDot, Tok::Char(c)) => c != '/' && c != '.',
        (Tok::Star | Tok::StarNoDot, Tok::One) => true,
        // Another star is skipped by its own rule.
        _ => false,
    }
}

fn chars_meet(a: Tok, b: Tok) -> bool {
    match (a, b) {
        (Tok::Char(x), Tok::Char(y)) => x == y,
        (Tok::Char(c), Tok::One) | (Tok::One, Tok::Char(c)) => c != '/',
        (Tok::One, Tok::One) => true,
        _ => false,
    }
}

/// A rule glob: `*` is any text (`/` included), everything else literal.
pub(crate) fn rule_glob(s: &str) -> Vec<Tok> {
    s.chars()
        .map(|c| if c == '*' { Tok::Any } else { Tok::Char(c) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::ast::Command;
    use crate::shell::parse::parse;

    fn word_vals(src: &str) -> WordVals {
        let script = parse(&format!("x {src}")).unwrap();
        let Command::Simple(c) = &script.items[0].first.commands[0] else {
            panic!()
        };
        values(&c.words[1], None).unwrap()
    }

    fn toks(src: &str) -> Vec<Tok> {
        word_vals(src).posix.toks
    }

    #[test]
    fn intersection_of_word_values_and_rule_globs() {
        let rule = rule_glob("/etc/shadow*");
        assert!(could_match(&toks("/etc/sha*"), &rule));
        assert!(could_match(&toks("/e?c/shadow"), &rule));
        assert!(could_match(&toks("/etc/sha${x}dow"), &rule));
        assert!(could_match(&toks("'/etc/shadow'"), &rule));
        assert!(
            !could_match(&toks("'/etc/sha*'"), &rule),
            "a quoted star is literal"
        );
        assert!(!could_match(&toks("/tmp/shadow"), &rule));
        assert!(
            !could_match(&toks("*"), &rule_glob("/etc/*")),
            "a glob star never crosses /"
        );
        assert!(
            !could_match(&toks("build/*"), &rule_glob("*/.profile")),
            "nor matches a leading dot"
        );
        assert!(could_match(&toks("/*"), &[Tok::Char('/'), Tok::Star]));
    }

    #[test]
    fn values_quote_removal_and_brace_expansion() {
        let v = word_vals(r#"'a'"b"\c$'\x64'"#);
        assert_eq!(v.posix.literal(), Some("abcd"));
        assert!(v.bash.is_none());
        let v = word_vals("{rm,-rf,/}");
        let words: Vec<_> = v.bash.unwrap().iter().map(|v| v.text.clone()).collect();
        assert_eq!(words, ["rm", "-rf", "/"]);
        assert_eq!(v.posix.text, "{rm,-rf,/}", "POSIX sh does not brace-expand");
        let v = word_vals("x{1..3}");
        assert_eq!(v.bash.unwrap().len(), 3);
        let v = word_vals("\"$HOME\"/x");
        assert!(v.posix.dynamic && !v.posix.opaque);
        assert_eq!(v.posix.code, "$HOME/x");
        assert!(word_vals("\"$(id)\"").posix.opaque);
    }
}
