//! Here-documents: their bodies are read after the newline that ends the
//! line of their `<<` redirection, so the parser records them as pending
//! and fills the bodies into the tree once read (by id).

use super::ast::*;
use super::parse::Parser;
use std::collections::HashMap;

impl Parser<'_> {
    /// Read the bodies of the pending here-documents, line by line.
    pub(super) fn read_heredocs(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for (id, delimiter, quoted, strip) in pending {
            let mut body = String::new();
            let mut ended = false;
            // The last body line ends in `\<newline>` (unquoted body).
            let mut continues = false;
            while self.pos < self.src.len() {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
                let mut line: String = self.src[start..self.pos].iter().collect();
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
                if strip {
                    line = line.trim_start_matches('\t').to_owned();
                }
                if line == delimiter {
                    ended = true;
                    break;
                }
                continues =
                    !quoted && line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1;
                body.push_str(&line);
                body.push('\n');
            }
            if continues {
                // `\<newline>` joins lines in an unquoted body; joining the
                // last one with the delimiter line (or the end) is where
                // shells differ, so it is refused. Inner lines are fine.
                let e = self.error("a here-document's last line ends in a line continuation");
                self.heredoc_error.get_or_insert(e);
                continue;
            }
            if !ended && self.depth > 0 {
                // Inside backquotes the text ends where the substitution
                // does; a body cut off there has no end of its own.
                let e = self.error("a here-document inside a substitution has no end");
                self.heredoc_error.get_or_insert(e);
                continue;
            }
            match self.heredoc_word(&body, quoted) {
                Ok(word) => {
                    self.bodies.insert(id, word);
                }
                Err(e) => {
                    self.heredoc_error.get_or_insert(e);
                }
            }
        }
    }
}

/// The delimiter text of a here-document and whether it was quoted.
pub(super) fn delimiter(word: &Word) -> Option<(String, bool)> {
    let mut text = String::new();
    let mut quoted = false;
    for part in &word.parts {
        match part {
            Part::Lit(s) => text.push_str(s),
            Part::Escaped(c) => {
                quoted = true;
                text.push(*c);
            }
            Part::Single(s) | Part::AnsiC(s) => {
                quoted = true;
                text.push_str(s);
            }
            Part::Double(inner) => {
                quoted = true;
                for p in inner {
                    match p {
                        Part::Lit(s) => text.push_str(s),
                        Part::Escaped(c) => text.push(*c),
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
    }
    (!text.is_empty() && !text.contains('\n')).then_some((text, quoted))
}

pub(super) fn fill(script: &mut Script, bodies: &mut HashMap<usize, Word>) {
    for item in &mut script.items {
        for pipeline in std::iter::once(&mut item.first).chain(item.rest.iter_mut().map(|(_, p)| p))
        {
            for cmd in &mut pipeline.commands {
                fill_heredocs_command(cmd, bodies);
            }
        }
    }
}

fn fill_heredocs_command(cmd: &mut Command, bodies: &mut HashMap<usize, Word>) {
    let redirects = match cmd {
        Command::Simple(s) => &mut s.redirects,
        Command::Compound(c, r) => {
            fill_heredocs_compound(c, bodies);
            r
        }
        Command::Function {
            body, redirects, ..
        } => {
            fill_heredocs_compound(body, bodies);
            redirects
        }
    };
    for r in redirects {
        let Some(h) = &mut r.heredoc else { continue };
        let id = match h.body.parts.as_slice() {
            [Part::Lit(s)] => s
                .strip_prefix('\u{0}')
                .and_then(|n| n.parse::<usize>().ok()),
            _ => None,
        };
        if let Some(id) = id {
            h.body = bodies.remove(&id).unwrap_or_default();
        }
    }
}

fn fill_heredocs_compound(c: &mut Compound, bodies: &mut HashMap<usize, Word>) {
    match c {
        Compound::Brace(s) | Compound::Subshell(s) => fill(s, bodies),
        Compound::If {
            branches,
            otherwise,
        } => {
            for (a, b) in branches {
                fill(a, bodies);
                fill(b, bodies);
            }
            if let Some(o) = otherwise {
                fill(o, bodies);
            }
        }
        Compound::Loop {
            condition, body, ..
        } => {
            fill(condition, bodies);
            fill(body, bodies);
        }
        Compound::For { body, .. } | Compound::ArithFor { body, .. } => fill(body, bodies),
        Compound::Case { arms, .. } => {
            for arm in arms {
                fill(&mut arm.body, bodies);
            }
        }
        Compound::Cond(_) | Compound::Arith(_) => {}
    }
}
