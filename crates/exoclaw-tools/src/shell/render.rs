//! The canonical text of a parsed command: one spelling per tree (comments
//! dropped, blanks normalised, backquotes written as `$(...)`). Rendering is
//! a fixpoint — `render(parse(render(t)))` equals `render(t)` — which the
//! tests and the fuzz target check; the approval hash covers it.

use super::ast::*;

#[derive(Default)]
struct Renderer {
    out: String,
    /// Here-document bodies to write after the next newline.
    pending: Vec<HereDoc>,
}

pub(crate) fn render(script: &Script) -> String {
    let mut r = Renderer::default();
    r.list(script);
    r.flush_heredocs();
    r.out
}

/// The canonical text of one word.
pub(crate) fn render_word(word: &Word) -> String {
    let mut r = Renderer::default();
    r.word(word);
    r.out
}

impl Renderer {
    fn newline(&mut self) {
        self.out.push('\n');
        self.flush_heredocs();
    }

    fn flush_heredocs(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if !self.out.ends_with('\n') {
            self.out.push('\n');
        }
        for h in std::mem::take(&mut self.pending) {
            if h.quoted {
                for p in &h.body.parts {
                    if let Part::Single(s) | Part::Lit(s) = p {
                        self.out.push_str(s);
                    }
                }
            } else {
                self.parts(&h.body.parts);
            }
            self.out.push_str(&h.delimiter);
            self.out.push('\n');
        }
    }

    /// Items separated by `;` (a newline when a here-document is waiting).
    fn list(&mut self, script: &Script) {
        for (i, item) in script.items.iter().enumerate() {
            if i > 0 {
                let prev = &script.items[i - 1];
                if !prev.background {
                    if self.pending.is_empty() {
                        self.out.push_str("; ");
                    } else {
                        self.newline();
                    }
                } else if self.pending.is_empty() {
                    self.out.push(' ');
                } else {
                    self.newline();
                }
            }
            self.item(item);
        }
    }

    /// A list used as a body, ending so that a closing keyword may follow.
    fn body(&mut self, script: &Script) {
        self.list(script);
        let bg = script.items.last().is_some_and(|i| i.background);
        if !self.pending.is_empty() {
            self.newline();
        } else if bg {
            self.out.push(' ');
        } else {
            self.out.push_str("; ");
        }
    }

    fn item(&mut self, item: &Item) {
        self.pipeline(&item.first);
        for (op, p) in &item.rest {
            self.out.push_str(match op {
                AndOr::And => " && ",
                AndOr::Or => " || ",
            });
            self.pipeline(p);
        }
        if item.background {
            self.out.push_str(" &");
        }
    }

    fn pipeline(&mut self, p: &Pipeline) {
        if p.negated {
            self.out.push_str("! ");
        }
        for (i, c) in p.commands.iter().enumerate() {
            if i > 0 {
                self.out.push_str(" | ");
            }
            self.command(c);
        }
    }

    fn command(&mut self, c: &Command) {
        match c {
            Command::Simple(s) => {
                let mut first = true;
                let mut space = |out: &mut String| {
                    if !first {
                        out.push(' ');
                    }
                    first = false;
                };
                for a in &s.assignments {
                    space(&mut self.out);
                    self.out.push_str(&a.name);
                    self.out.push_str(if a.append { "+=" } else { "=" });
                    self.word(&a.value);
                }
                for (i, w) in s.words.iter().enumerate() {
                    space(&mut self.out);
                    let text = render_word(w);
                    // `<o }` runs a command named `}`; written first, the
                    // name would read as a reserved word, so quote it.
                    if i == 0 && s.assignments.is_empty() && super::parse::is_reserved(&text) {
                        self.out.push('\'');
                        self.out.push_str(&text);
                        self.out.push('\'');
                    } else {
                        self.out.push_str(&text);
                    }
                }
                for r in &s.redirects {
                    space(&mut self.out);
                    self.redirect(r);
                }
            }
            Command::Compound(c, redirects) => {
                self.compound(c);
                self.redirects(redirects);
            }
            Command::Function {
                name,
                body,
                redirects,
            } => {
                self.out.push_str(name);
                self.out.push_str("() ");
                self.compound(body);
                self.redirects(redirects);
            }
        }
    }

    fn redirects(&mut self, redirects: &[Redirect]) {
        for r in redirects {
            self.out.push(' ');
            self.redirect(r);
        }
    }

    fn redirect(&mut self, r: &Redirect) {
        if let Some(fd) = r.fd {
            self.out.push_str(&fd.to_string());
        }
        self.out.push_str(r.op.as_str());
        match &r.heredoc {
            Some(h) => {
                // `<< -x` must not become `<<-x` (the tab-stripping form).
                if r.op == RedirOp::HereDoc && h.delimiter.starts_with('-') {
                    self.out.push(' ');
                }
                if h.quoted && h.delimiter.contains('\'') {
                    self.out.push('"');
                    for c in h.delimiter.chars() {
                        if matches!(c, '"' | '\\' | '$' | '`') {
                            self.out.push('\\');
                        }
                        self.out.push(c);
                    }
                    self.out.push('"');
                } else if h.quoted {
                    self.out.push('\'');
                    self.out.push_str(&h.delimiter);
                    self.out.push('\'');
                } else {
                    self.out.push_str(&h.delimiter);
                }
                self.pending.push(h.clone());
            }
            None => {
                let target = render_word(&r.target);
                // `< <(x)` must not become `<<(x)`.
                if r.op == RedirOp::HereString || target.starts_with(['<', '>', '(', '&', '|']) {
                    self.out.push(' ');
                }
                self.out.push_str(&target);
            }
        }
    }

    fn compound(&mut self, c: &Compound) {
        match c {
            Compound::Brace(s) => {
                self.out.push_str("{ ");
                self.body(s);
                self.out.push('}');
            }
            Compound::Subshell(s) => {
                self.out.push_str("( ");
                self.list(s);
                if !self.pending.is_empty() {
                    self.newline();
                } else {
                    self.out.push(' ');
                }
                self.out.push(')');
            }
            Compound::If {
                branches,
                otherwise,
            } => {
                for (i, (cond, then)) in branches.iter().enumerate() {
                    self.out.push_str(if i == 0 { "if " } else { "elif " });
                    self.body(cond);
                    self.out.push_str("then ");
                    self.body(then);
                }
                if let Some(o) = otherwise {
                    self.out.push_str("else ");
                    self.body(o);
                }
                self.out.push_str("fi");
            }
            Compound::Loop {
                until,
                condition,
                body,
            } => {
                self.out.push_str(if *until { "until " } else { "while " });
                self.body(condition);
                self.out.push_str("do ");
                self.body(body);
                self.out.push_str("done");
            }
            Compound::For {
                select,
                var,
                words,
                body,
            } => {
                self.out.push_str(if *select { "select " } else { "for " });
                self.out.push_str(var);
                if let Some(words) = words {
                    self.out.push_str(" in");
                    for w in words {
                        self.out.push(' ');
                        self.word(w);
                    }
                }
                self.out.push_str("; do ");
                self.body(body);
                self.out.push_str("done");
            }
            Compound::ArithFor { header, body } => {
                self.out.push_str("for ((");
                self.arith(header);
                self.out.push_str(")); do ");
                self.body(body);
                self.out.push_str("done");
            }
            Compound::Case { word, arms } => {
                self.out.push_str("case ");
                self.word(word);
                self.out.push_str(" in ");
                for arm in arms {
                    for (i, p) in arm.patterns.iter().enumerate() {
                        if i > 0 {
                            self.out.push('|');
                        }
                        self.word(p);
                    }
                    self.out.push_str(") ");
                    self.list(&arm.body);
                    if !self.pending.is_empty() {
                        self.newline();
                    } else if !arm.body.is_empty() {
                        self.out.push(' ');
                    }
                    self.out.push_str(arm.terminator);
                    self.out.push(' ');
                }
                self.out.push_str("esac");
            }
            Compound::Cond(words) => {
                self.out.push_str("[[");
                for w in words {
                    self.out.push(' ');
                    self.word(w);
                }
                self.out.push_str(" ]]");
            }
            Compound::Arith(w) => {
                self.out.push_str("((");
                self.arith(w);
                self.out.push_str("))");
            }
        }
    }

    fn word(&mut self, w: &Word) {
        self.parts(&w.parts);
    }

    /// Parts in sequence. A literal `$` right before another part would
    /// join it (`$` + `$(x)` is `$$(x)`): it is written `\$`.
    fn parts(&mut self, parts: &[Part]) {
        for (i, p) in parts.iter().enumerate() {
            match p {
                Part::Lit(s) if s.ends_with('$') && i + 1 < parts.len() => {
                    self.out.push_str(&s[..s.len() - 1]);
                    self.out.push_str("\\$");
                }
                _ => self.part(p),
            }
        }
    }

    fn part(&mut self, p: &Part) {
        match p {
            Part::Lit(s) => self.out.push_str(s),
            Part::Escaped(c) => {
                self.out.push('\\');
                self.out.push(*c);
            }
            Part::Single(s) => {
                self.out.push('\'');
                self.out.push_str(s);
                self.out.push('\'');
            }
            Part::AnsiC(s) => {
                self.out.push_str("$'");
                for c in s.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '\'' => self.out.push_str("\\'"),
                        c if c.is_control() => {
                            self.out.push_str(&format!("\\x{:02x}", u32::from(c)));
                        }
                        c => self.out.push(c),
                    }
                }
                self.out.push('\'');
            }
            Part::Double(parts) => {
                self.out.push('"');
                self.parts(parts);
                self.out.push('"');
            }
            Part::Param(param) => self.param(param),
            Part::CmdSubst(s) => self.substitution("$(", s),
            Part::Arith(w) => {
                self.out.push_str("$((");
                self.arith(w);
                self.out.push_str("))");
            }
            Part::ProcSubst { output, script } => {
                self.substitution(if *output { ">(" } else { "<(" }, script);
            }
            Part::Array(words) => {
                self.out.push('(');
                for (i, w) in words.iter().enumerate() {
                    if i > 0 {
                        self.out.push(' ');
                    }
                    self.word(w);
                }
                self.out.push(')');
            }
        }
    }

    /// `$(`/`<(`/`>(` + list + `)`, with its own here-documents inside.
    fn substitution(&mut self, open: &str, script: &Script) {
        let mut inner = Renderer::default();
        inner.list(script);
        if !inner.pending.is_empty() {
            inner.newline();
        }
        self.out.push_str(open);
        if inner.out.starts_with('(') {
            self.out.push(' ');
        }
        self.out.push_str(&inner.out);
        self.out.push(')');
    }

    fn param(&mut self, p: &Param) {
        if !p.braced {
            self.out.push('$');
            self.out.push_str(&p.name);
            return;
        }
        self.out.push_str("${");
        if let Some(c) = p.prefix {
            self.out.push(c);
        }
        self.out.push_str(&p.name);
        if let Some(i) = &p.index {
            self.out.push('[');
            self.word(i);
            self.out.push(']');
        }
        if let Some(r) = &p.rest {
            self.word(r);
        }
        self.out.push('}');
    }

    fn arith(&mut self, w: &Word) {
        self.parts(&w.parts);
    }
}
