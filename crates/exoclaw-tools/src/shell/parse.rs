//! A recursive-descent parser for POSIX `sh` (plus the bash forms listed in
//! `ast.rs`) over the normalised command. It parses what the shell would
//! parse — lists, pipelines, compound commands, functions, redirections,
//! here-documents — and refuses everything else: an input it cannot parse
//! exactly is never guessed at. Word-level lexing (quotes, expansions,
//! substitutions) is in `word.rs`. Nesting and size are bounded so that no
//! input can exhaust the stack.

use super::ast::*;
use std::collections::HashMap;

/// Deepest nesting of compound commands and substitutions.
pub(crate) const MAX_DEPTH: usize = 48;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// Character offset into the normalised command.
    pub offset: usize,
}

pub(crate) struct Parser<'a> {
    pub(super) src: &'a [char],
    pub(super) pos: usize,
    pub(super) depth: usize,
    /// Here-documents whose bodies start after the next newline.
    pub(super) pending: Vec<(usize, String, bool, bool)>,
    pub(super) bodies: HashMap<usize, Word>,
    pub(super) next_heredoc: usize,
    /// The first here-document body that failed to parse.
    pub(super) heredoc_error: Option<ParseError>,
    /// How many `${...}` modifiers enclose the cursor.
    pub(super) in_braces: usize,
}

/// Parse a whole command.
pub(crate) fn parse(src: &str) -> Result<Script, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    parse_chars(&chars, 0)
}

/// Parse text at nesting `depth`: 0 for a whole command, more for the text of
/// backquotes, where a here-document must end inside (as inside `$(...)`).
pub(super) fn parse_chars(src: &[char], depth: usize) -> Result<Script, ParseError> {
    let mut p = Parser {
        src,
        pos: 0,
        depth,
        pending: Vec::new(),
        bodies: HashMap::new(),
        next_heredoc: 0,
        heredoc_error: None,
        in_braces: 0,
    };
    let script = p.list(&[])?;
    if p.pos < p.src.len() {
        return Err(p.error("unexpected text"));
    }
    if !p.pending.is_empty() {
        if depth > 0 {
            return Err(p.error("a here-document inside a substitution has no body"));
        }
        // Bodies delimited by the end of input, as every shell accepts.
        p.read_heredocs();
    }
    if let Some(e) = p.heredoc_error.take() {
        return Err(e);
    }
    let mut script = script;
    super::splice::fill(&mut script, &mut p.bodies);
    Ok(script)
}

const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for",
    "select", "in", "function", "{", "}", "!", "[[", "]]", "coproc",
];

/// Whether `word` is one of the shell's reserved words.
pub(super) fn is_reserved(word: &str) -> bool {
    RESERVED.contains(&word)
}

impl Parser<'_> {
    pub(super) fn error(&self, what: &str) -> ParseError {
        let near: String = self.src.iter().skip(self.pos).take(16).collect();
        ParseError {
            message: if near.is_empty() {
                format!("{what} at the end of the command")
            } else {
                format!("{what} near {near:?}")
            },
            offset: self.pos,
        }
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.src.get(self.pos).copied()
    }

    pub(super) fn peek_at(&self, n: usize) -> Option<char> {
        self.src.get(self.pos + n).copied()
    }

    pub(super) fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    pub(super) fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        Ok(())
    }

    /// Blanks, line continuations and a comment (not the newline after it).
    pub(super) fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t') => self.pos += 1,
                Some('\\') if self.peek_at(1) == Some('\n') => self.pos += 2,
                Some('#') => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    /// Blanks, comments and newlines (reading here-document bodies).
    fn skip_newlines(&mut self) {
        loop {
            self.skip_blanks();
            if self.peek() == Some('\n') {
                self.newline();
            } else {
                return;
            }
        }
    }

    fn newline(&mut self) {
        self.pos += 1;
        if !self.pending.is_empty() {
            self.read_heredocs();
        }
    }

    /// The reserved word at the cursor, if the next word is exactly one.
    fn peek_reserved(&mut self) -> Option<&'static str> {
        self.skip_blanks();
        let mut end = self.pos;
        while let Some(c) = self.src.get(end) {
            if is_meta(*c) || matches!(c, '\'' | '"' | '\\' | '$' | '`') {
                break;
            }
            end += 1;
        }
        let after = self.src.get(end).copied();
        if after.is_some_and(|c| !is_meta(c)) {
            return None;
        }
        let word: String = self.src.get(self.pos..end)?.iter().collect();
        RESERVED.iter().find(|r| **r == word).copied()
    }

    fn eat_reserved(&mut self, word: &str) -> bool {
        if self.peek_reserved() == Some(word) {
            self.pos += word.chars().count();
            true
        } else {
            false
        }
    }

    fn expect_reserved(&mut self, word: &str) -> Result<(), ParseError> {
        if self.eat_reserved(word) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{word}`")))
        }
    }

    /// An operator at the cursor (after blanks), longest match.
    fn peek_op(&mut self) -> Option<&'static str> {
        self.skip_blanks();
        const OPS: &[&str] = &[
            ";;&", ";;", ";&", "&&", "||", "|&", ";", "&", "|", "(", ")", "\n",
        ];
        OPS.iter()
            .find(|op| self.starts_with(op))
            .copied()
            .filter(|op| !(*op == "&" && self.peek_at(1) == Some('>')))
    }

    /// A list, up to (not including) one of `ends` (reserved words, `)` or
    /// `;;`) or the end of input.
    pub(super) fn list(&mut self, ends: &[&str]) -> Result<Script, ParseError> {
        let mut script = Script::default();
        loop {
            self.skip_newlines();
            if self.pos >= self.src.len() {
                break;
            }
            if let Some(op) = self.peek_op()
                && (ends.contains(&op)
                    || (op.starts_with(";;") || op == ";&") && ends.contains(&";;"))
            {
                break;
            }
            if self.peek_reserved().is_some_and(|r| ends.contains(&r)) {
                break;
            }
            let mut item = self.and_or()?;
            match self.peek_op() {
                Some(";") => self.pos += 1,
                Some("&") => {
                    self.pos += 1;
                    item.background = true;
                }
                Some("\n") => self.newline(),
                None if self.pos >= self.src.len() => {}
                Some(op) if ends.contains(&op) || op.starts_with(";;") || op == ";&" => {}
                _ if self.peek_reserved().is_some_and(|r| ends.contains(&r)) => {}
                _ => return Err(self.error("unexpected text after a command")),
            }
            script.items.push(item);
        }
        Ok(script)
    }

    /// A list that must not be empty (compound command bodies).
    fn body(&mut self, ends: &[&str]) -> Result<Script, ParseError> {
        let script = self.list(ends)?;
        if script.is_empty() {
            return Err(self.error("expected a command"));
        }
        Ok(script)
    }

    fn and_or(&mut self) -> Result<Item, ParseError> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek_op() {
                Some("&&") => AndOr::And,
                Some("||") => AndOr::Or,
                _ => break,
            };
            self.pos += 2;
            self.skip_newlines();
            rest.push((op, self.pipeline()?));
        }
        Ok(Item {
            first,
            rest,
            background: false,
        })
    }

    fn pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let negated = self.eat_reserved("!");
        let mut commands = vec![self.command()?];
        loop {
            match self.peek_op() {
                Some("|") => self.pos += 1,
                Some("|&") => {
                    self.pos += 2;
                    if let Some(Command::Simple(c)) = commands.last_mut() {
                        c.redirects.push(Redirect {
                            fd: Some(2),
                            op: RedirOp::DupOut,
                            target: Word::lit("1"),
                            heredoc: None,
                        });
                    } else if let Some(
                        Command::Compound(_, r) | Command::Function { redirects: r, .. },
                    ) = commands.last_mut()
                    {
                        r.push(Redirect {
                            fd: Some(2),
                            op: RedirOp::DupOut,
                            target: Word::lit("1"),
                            heredoc: None,
                        });
                    }
                }
                _ => break,
            }
            self.skip_newlines();
            commands.push(self.command()?);
        }
        Ok(Pipeline { negated, commands })
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        self.enter()?;
        let command = self.command_inner();
        self.depth -= 1;
        command
    }

    fn command_inner(&mut self) -> Result<Command, ParseError> {
        if let Some(word) = self.peek_reserved() {
            let compound = match word {
                "{" | "if" | "while" | "until" | "for" | "select" | "case" | "[[" => {
                    self.compound()?
                }
                "function" => return self.function_keyword(),
                "!" => return Err(self.error("`!` in the middle of a pipeline")),
                "coproc" => return Err(self.error("`coproc` is not supported")),
                other => return Err(self.error(&format!("unexpected `{other}`"))),
            };
            return Ok(Command::Compound(compound, self.redirects()?));
        }
        if self.peek_op() == Some("(") {
            let compound = self.compound()?;
            return Ok(Command::Compound(compound, self.redirects()?));
        }
        self.simple()
    }

    fn redirects(&mut self) -> Result<Vec<Redirect>, ParseError> {
        let mut out = Vec::new();
        while let Some(r) = self.redirect()? {
            out.push(r);
        }
        Ok(out)
    }

    fn compound(&mut self) -> Result<Compound, ParseError> {
        if self.peek_op() == Some("(") {
            if self.starts_with("((") {
                let save = self.save();
                self.pos += 2;
                if let Some(w) = self.arith_body()? {
                    return Ok(Compound::Arith(w));
                }
                self.restore(save);
            }
            self.pos += 1;
            let body = self.body(&[")"])?;
            if self.peek_op() != Some(")") {
                return Err(self.error("expected `)`"));
            }
            self.pos += 1;
            return Ok(Compound::Subshell(body));
        }
        let Some(word) = self.peek_reserved() else {
            return Err(self.error("expected a compound command"));
        };
        self.pos += word.chars().count();
        match word {
            "{" => {
                let body = self.body(&["}"])?;
                self.expect_reserved("}")?;
                Ok(Compound::Brace(body))
            }
            "if" => self.if_rest(),
            "while" | "until" => {
                let condition = self.body(&["do"])?;
                self.expect_reserved("do")?;
                let body = self.body(&["done"])?;
                self.expect_reserved("done")?;
                Ok(Compound::Loop {
                    until: word == "until",
                    condition,
                    body,
                })
            }
            "for" | "select" => self.for_rest(word == "select"),
            "case" => self.case_rest(),
            "[[" => self.cond_rest(),
            _ => Err(self.error("expected a compound command")),
        }
    }

    fn if_rest(&mut self) -> Result<Compound, ParseError> {
        let mut branches = Vec::new();
        let mut otherwise = None;
        loop {
            let condition = self.body(&["then"])?;
            self.expect_reserved("then")?;
            let then = self.body(&["elif", "else", "fi"])?;
            branches.push((condition, then));
            if self.eat_reserved("elif") {
                continue;
            }
            if self.eat_reserved("else") {
                otherwise = Some(self.body(&["fi"])?);
            }
            self.expect_reserved("fi")?;
            return Ok(Compound::If {
                branches,
                otherwise,
            });
        }
    }

    fn for_rest(&mut self, select: bool) -> Result<Compound, ParseError> {
        self.skip_blanks();
        if !select && self.starts_with("((") {
            self.pos += 2;
            let header = self
                .arith_body()?
                .ok_or_else(|| self.error("expected `))`"))?;
            self.skip_blanks();
            if self.peek() == Some(';') {
                self.pos += 1;
            }
            self.skip_newlines();
            let body = self.do_group()?;
            return Ok(Compound::ArithFor { header, body });
        }
        let var = self
            .word()?
            .and_then(|w| w.as_plain().map(str::to_owned))
            .filter(|v| is_name(v))
            .ok_or_else(|| self.error("expected a variable name"))?;
        self.skip_newlines();
        let mut words = None;
        if self.eat_reserved("in") {
            let mut list = Vec::new();
            loop {
                self.skip_blanks();
                match self.peek() {
                    Some(';') => {
                        self.pos += 1;
                        break;
                    }
                    Some('\n') => break,
                    None => return Err(self.error("expected `do`")),
                    _ => {}
                }
                list.push(self.word()?.ok_or_else(|| self.error("expected a word"))?);
            }
            words = Some(list);
        } else if self.peek_op() == Some(";") {
            self.pos += 1;
        }
        self.skip_newlines();
        let body = self.do_group()?;
        Ok(Compound::For {
            select,
            var,
            words,
            body,
        })
    }

    fn do_group(&mut self) -> Result<Script, ParseError> {
        self.expect_reserved("do")?;
        let body = self.body(&["done"])?;
        self.expect_reserved("done")?;
        Ok(body)
    }

    fn case_rest(&mut self) -> Result<Compound, ParseError> {
        self.skip_blanks();
        let word = self.word()?.ok_or_else(|| self.error("expected a word"))?;
        self.skip_newlines();
        self.expect_reserved("in")?;
        let mut arms = Vec::new();
        loop {
            self.skip_newlines();
            if self.eat_reserved("esac") {
                return Ok(Compound::Case { word, arms });
            }
            if self.peek_op() == Some("(") {
                self.pos += 1;
            }
            let mut patterns = Vec::new();
            loop {
                self.skip_blanks();
                patterns.push(
                    self.word()?
                        .ok_or_else(|| self.error("expected a pattern"))?,
                );
                self.skip_blanks();
                match self.peek() {
                    Some('|') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error("expected `)` after a case pattern")),
                }
            }
            let body = self.list(&[";;", "esac"])?;
            let terminator = match self.peek_op() {
                Some(";;&") => ";;&",
                Some(";;") => ";;",
                Some(";&") => ";&",
                _ => {
                    arms.push(CaseArm {
                        patterns,
                        body,
                        terminator: ";;",
                    });
                    self.skip_newlines();
                    self.expect_reserved("esac")?;
                    return Ok(Compound::Case { word, arms });
                }
            };
            self.pos += terminator.len();
            arms.push(CaseArm {
                patterns,
                body,
                terminator,
            });
        }
    }

    /// `[[ ... ]]`: words up to `]]`, its operators kept as words.
    fn cond_rest(&mut self) -> Result<Compound, ParseError> {
        let mut words = Vec::new();
        loop {
            self.skip_blanks();
            while self.peek() == Some('\n') {
                self.pos += 1;
                self.skip_blanks();
            }
            if self.eat_reserved("]]") {
                if words.is_empty() {
                    return Err(self.error("empty `[[ ]]`"));
                }
                return Ok(Compound::Cond(words));
            }
            let op = ["&&", "||", "(", ")", "<", ">", "|"]
                .into_iter()
                .find(|op| self.starts_with(op));
            if let Some(op) = op {
                self.pos += op.len();
                words.push(Word::lit(op));
                continue;
            }
            match self.word()? {
                Some(w) => words.push(w),
                None => return Err(self.error("expected `]]`")),
            }
        }
    }

    fn function_keyword(&mut self) -> Result<Command, ParseError> {
        self.pos += "function".len();
        self.skip_blanks();
        let name = self
            .word()?
            .and_then(|w| w.as_plain().map(str::to_owned))
            .ok_or_else(|| self.error("expected a function name"))?;
        self.skip_blanks();
        if self.starts_with("()") {
            self.pos += 2;
        } else if self.peek() == Some('(') {
            self.pos += 1;
            self.skip_blanks();
            if self.peek() != Some(')') {
                return Err(self.error("expected `()`"));
            }
            self.pos += 1;
        }
        self.function_body(name)
    }

    fn function_body(&mut self, name: String) -> Result<Command, ParseError> {
        self.skip_newlines();
        let body = Box::new(self.compound()?);
        let redirects = self.redirects()?;
        Ok(Command::Function {
            name,
            body,
            redirects,
        })
    }

    fn simple(&mut self) -> Result<Command, ParseError> {
        let mut cmd = SimpleCommand::default();
        loop {
            self.skip_blanks();
            match self.peek() {
                None | Some(';' | '|' | '\n' | ')') => break,
                Some('&') if self.peek_at(1) != Some('>') => break,
                Some('(') if cmd.words.len() == 1 && cmd.assignments.is_empty() => {
                    return self.function_def(&cmd);
                }
                Some('(') => return Err(self.error("unexpected `(`")),
                _ => {}
            }
            if let Some(r) = self.redirect()? {
                cmd.redirects.push(r);
                continue;
            }
            let word = self.word()?.ok_or_else(|| self.error("expected a word"))?;
            if cmd.words.is_empty()
                && let Some(a) = as_assignment(&word)
            {
                cmd.assignments.push(a);
                continue;
            }
            cmd.words.push(word);
        }
        if cmd.words.is_empty() && cmd.assignments.is_empty() && cmd.redirects.is_empty() {
            return Err(self.error("expected a command"));
        }
        Ok(Command::Simple(cmd))
    }

    /// `name ( ) compound`: the first word was the name.
    fn function_def(&mut self, cmd: &SimpleCommand) -> Result<Command, ParseError> {
        let name = cmd
            .words
            .first()
            .and_then(Word::as_plain)
            .filter(|n| !n.contains('='))
            .map(str::to_owned)
            .ok_or_else(|| self.error("unexpected `(`"))?;
        if !cmd.redirects.is_empty() {
            return Err(self.error("unexpected `(`"));
        }
        self.pos += 1;
        self.skip_blanks();
        if self.peek() != Some(')') {
            return Err(self.error("expected `)` in a function definition"));
        }
        self.pos += 1;
        self.function_body(name)
    }

    /// A redirection at the cursor, if there is one.
    fn redirect(&mut self) -> Result<Option<Redirect>, ParseError> {
        self.skip_blanks();
        let start = self.pos;
        let mut digits = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            digits.push(c);
            self.pos += 1;
        }
        const OPS: &[(&str, RedirOp)] = &[
            ("&>>", RedirOp::AppendOutErr),
            ("&>", RedirOp::OutErr),
            ("<<<", RedirOp::HereString),
            ("<<-", RedirOp::HereDocStrip),
            ("<<", RedirOp::HereDoc),
            ("<>", RedirOp::ReadWrite),
            ("<&", RedirOp::DupIn),
            (">>", RedirOp::Append),
            (">|", RedirOp::Clobber),
            (">&", RedirOp::DupOut),
            ("<", RedirOp::In),
            (">", RedirOp::Out),
        ];
        let found = OPS.iter().find(|(s, _)| self.starts_with(s));
        let Some((text, op)) = found else {
            self.pos = start;
            return Ok(None);
        };
        // `<(` and `>(` are process substitutions, i.e. words.
        if (*text == "<" || *text == ">") && self.peek_at(1) == Some('(') {
            self.pos = start;
            return Ok(None);
        }
        if text.starts_with('&') && !digits.is_empty() {
            self.pos = start;
            return Ok(None);
        }
        let fd = if digits.is_empty() {
            None
        } else {
            Some(
                digits
                    .parse()
                    .map_err(|_| self.error("bad file descriptor"))?,
            )
        };
        self.pos += text.len();
        self.skip_blanks();
        let target = self
            .word()?
            .ok_or_else(|| self.error("expected a redirection target"))?;
        let heredoc = if matches!(op, RedirOp::HereDoc | RedirOp::HereDocStrip) {
            let (delimiter, quoted) = super::splice::delimiter(&target)
                .ok_or_else(|| self.error("bad here-document delimiter"))?;
            let id = self.next_heredoc;
            self.next_heredoc += 1;
            self.pending
                .push((id, delimiter.clone(), quoted, *op == RedirOp::HereDocStrip));
            Some(HereDoc {
                delimiter,
                quoted,
                body: Word {
                    parts: vec![Part::Lit(format!("\u{0}{id}"))],
                },
            })
        } else {
            None
        };
        Ok(Some(Redirect {
            fd,
            op: *op,
            target,
            heredoc,
        }))
    }

    pub(super) fn save(&self) -> (usize, usize, usize) {
        (self.pos, self.pending.len(), self.next_heredoc)
    }

    pub(super) fn restore(&mut self, (pos, pending, next): (usize, usize, usize)) {
        self.pos = pos;
        self.pending.truncate(pending);
        self.bodies.retain(|id, _| *id < next);
        self.next_heredoc = next;
    }
}

pub(super) fn is_meta(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')'
    )
}

pub(super) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `NAME=...` / `NAME+=...` with an unquoted literal name.
fn as_assignment(word: &Word) -> Option<Assignment> {
    let Some(Part::Lit(first)) = word.parts.first() else {
        return None;
    };
    let eq = first.find('=')?;
    let (name, append) = match first[..eq].strip_suffix('+') {
        Some(n) => (n, true),
        None => (&first[..eq], false),
    };
    if !is_name(name) {
        return None;
    }
    let mut parts = Vec::with_capacity(word.parts.len());
    let rest = &first[eq + 1..];
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_owned()));
    }
    parts.extend(word.parts.iter().skip(1).cloned());
    Some(Assignment {
        name: name.to_owned(),
        append,
        value: Word { parts },
    })
}
