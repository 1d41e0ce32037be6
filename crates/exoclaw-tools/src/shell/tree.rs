//! Queries over the syntax tree used by the analysis: the scripts inside
//! compound commands, every pipeline, literal command names, background
//! jobs, substitutions and parameter names inside words, and lexical path
//! normalisation over word tokens.

use super::ast::*;
use super::value::{Tok, values};

/// Deepest nesting walked by these queries.
const MAX_NESTING: usize = 24;

/// The text a here-document or here-string feeds, when static.
pub(super) fn stdin_text(r: &Redirect) -> Option<String> {
    let word = match (&r.heredoc, r.op) {
        (Some(h), _) => &h.body,
        (None, RedirOp::HereString) => &r.target,
        _ => return None,
    };
    values(word, None).ok()?.posix.literal().map(str::to_owned)
}

/// `/a/./b/../c` -> `/a/c`, on tokens (only fully literal components).
pub(super) fn normalize_path(toks: &[Tok]) -> Vec<Tok> {
    let mut comps: Vec<&[Tok]> = Vec::new();
    for comp in toks.split(|t| *t == Tok::Char('/')) {
        match comp {
            [] | [Tok::Char('.')] => {}
            [Tok::Char('.'), Tok::Char('.')] => {
                comps.pop();
            }
            c => comps.push(c),
        }
    }
    let mut out = vec![Tok::Char('/')];
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push(Tok::Char('/'));
        }
        out.extend_from_slice(c);
    }
    out
}

/// The scripts directly inside a compound command.
pub(super) fn compound_scripts(c: &Compound) -> Vec<&Script> {
    match c {
        Compound::Brace(s) | Compound::Subshell(s) => vec![s],
        Compound::If {
            branches,
            otherwise,
        } => branches
            .iter()
            .flat_map(|(a, b)| [a, b])
            .chain(otherwise.iter())
            .collect(),
        Compound::Loop {
            condition, body, ..
        } => vec![condition, body],
        Compound::For { body, .. } | Compound::ArithFor { body, .. } => vec![body],
        Compound::Case { arms, .. } => arms.iter().map(|a| &a.body).collect(),
        Compound::Cond(_) | Compound::Arith(_) => Vec::new(),
    }
}

/// Every pipeline of a script, compound bodies included.
pub(super) fn each_pipeline<'a>(s: &'a Script, out: &mut Vec<&'a Pipeline>, depth: usize) {
    if depth > MAX_NESTING {
        return;
    }
    for item in &s.items {
        for p in std::iter::once(&item.first).chain(item.rest.iter().map(|(_, p)| p)) {
            out.push(p);
            for c in &p.commands {
                if let Command::Compound(comp, _) = c {
                    for inner in compound_scripts(comp) {
                        each_pipeline(inner, out, depth + 1);
                    }
                }
            }
        }
    }
}

/// The literal command name of a simple command.
pub(super) fn command_name(c: &Command) -> Option<String> {
    match c {
        Command::Simple(sc) => values(sc.words.first()?, None)
            .ok()?
            .posix
            .literal()
            .map(str::to_owned),
        _ => None,
    }
}

/// Literal command names in a script (compound bodies included).
pub(super) fn simple_names(s: &Script) -> Vec<String> {
    let mut pipelines = Vec::new();
    each_pipeline(s, &mut pipelines, 0);
    pipelines
        .iter()
        .flat_map(|p| &p.commands)
        .filter_map(command_name)
        .collect()
}

/// Whether any item of the script (compound bodies included) runs in the
/// background.
pub(super) fn has_background(s: &Script) -> bool {
    if s.items.iter().any(|i| i.background) {
        return true;
    }
    let mut pipelines = Vec::new();
    each_pipeline(s, &mut pipelines, 0);
    pipelines.iter().flat_map(|p| &p.commands).any(|c| match c {
        Command::Compound(comp, _) => compound_scripts(comp)
            .iter()
            .any(|s| s.items.iter().any(|i| i.background)),
        _ => false,
    })
}

/// A pipeline of two or more stages, one of which calls `name`.
pub(super) fn has_pipe_with(s: &Script, name: &str) -> bool {
    let mut pipelines = Vec::new();
    each_pipeline(s, &mut pipelines, 0);
    pipelines.iter().any(|p| {
        p.commands.len() > 1
            && p.commands.iter().any(|c| match c {
                Command::Compound(comp, _) => compound_scripts(comp)
                    .iter()
                    .any(|s| simple_names(s).iter().any(|n| n == name)),
                c => command_name(c).is_some_and(|n| n == name),
            })
    })
}

/// Substitutions in a word, at any depth of quoting: `(is_output, script)`.
pub(super) fn substitutions(w: &Word) -> Vec<(bool, &Script)> {
    let mut out = Vec::new();
    collect_substitutions(&w.parts, &mut out);
    out
}

fn collect_substitutions<'a>(parts: &'a [Part], out: &mut Vec<(bool, &'a Script)>) {
    for p in parts {
        match p {
            Part::CmdSubst(s) => out.push((false, s)),
            Part::ProcSubst { output, script } => out.push((*output, script)),
            Part::Double(inner) => collect_substitutions(inner, out),
            Part::Arith(w) => collect_substitutions(&w.parts, out),
            Part::Param(param) => {
                for w in param.index.iter().chain(param.rest.iter()) {
                    collect_substitutions(&w.parts, out);
                }
            }
            Part::Array(words) => {
                for w in words {
                    collect_substitutions(&w.parts, out);
                }
            }
            Part::Lit(_) | Part::Escaped(_) | Part::Single(_) | Part::AnsiC(_) => {}
        }
    }
}

/// Parameter names used in a word, at any depth.
pub(super) fn param_names(w: &Word) -> Vec<&str> {
    fn walk<'a>(parts: &'a [Part], out: &mut Vec<&'a str>) {
        for p in parts {
            match p {
                Part::Param(param) => {
                    out.push(&param.name);
                    for w in param.index.iter().chain(param.rest.iter()) {
                        walk(&w.parts, out);
                    }
                }
                Part::Double(inner) => walk(inner, out),
                Part::Arith(w) => walk(&w.parts, out),
                Part::Array(words) => {
                    for w in words {
                        walk(&w.parts, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&w.parts, &mut out);
    out
}
