//! Here-documents after parsing: the delimiter a redirection names (and
//! whether it was quoted), and splicing the bodies the parser collected
//! into the commands they belong to.

use super::ast::*;
use std::collections::HashMap;

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
