//! Walking the parse and applying the rules where they belong: every simple
//! command (inside substitutions, compound commands, functions, re-parsed
//! `sh -c`/`eval` strings, here-documents fed to shells, `find -exec`) is
//! resolved through its wrappers and checked link by link; pipelines are
//! checked for code flowing into a shell (`curl | sh`, `base64 -d | sh`,
//! `nc ... | sh`), lists for a download followed by running it, functions
//! and loops for fork bombs. Relative paths are resolved against the
//! workspace and `cd`s with known targets.

use super::ast::*;
use super::parse::parse;
use super::render::render_word;
use super::resolve::{Resolution, SHELLS, interpreter, program_name, resolve};
use super::rules::{self, Hit, basename};
use super::tree::{
    compound_scripts, has_background, has_pipe_with, normalize_path, param_names, simple_names,
    stdin_text, substitutions,
};
use super::value::{Tok, Val, could_match, rule_glob, values};
use super::{Finding, ResolvedCommand, RuleId, ShellPolicyContext};
use super::{exposure, misuse};
use std::collections::HashMap;

/// Deepest nesting of re-parsed code and function expansion.
const MAX_NESTING: usize = 24;
/// Most simple commands looked at in one command string.
const MAX_WORK: usize = 10_000;
/// Most word values (brace expansions included) checked in one command.
const MAX_VALUES: usize = 50_000;
/// Most words one simple command may expand to through brace expansion.
const MAX_EXPANDED_WORDS: usize = 1024;

pub(crate) fn analyze(
    script: &Script,
    policy: &ShellPolicyContext,
) -> (Vec<Finding>, Vec<ResolvedCommand>) {
    let workspace = policy
        .workspace
        .as_ref()
        .and_then(|w| w.to_str())
        .map(|w| w.trim_end_matches('/').to_owned());
    let mut a = Analyzer {
        policy,
        findings: Vec::new(),
        commands: Vec::new(),
        functions: HashMap::new(),
        values_checked: 0,
        fetched: Vec::new(),
        cwd: workspace.clone(),
        workspace,
        depth: 0,
        work: 0,
    };
    a.script(script);
    (a.findings, a.commands)
}

struct Analyzer<'p> {
    policy: &'p ShellPolicyContext,
    findings: Vec<Finding>,
    commands: Vec<ResolvedCommand>,
    /// What each function defined so far does with data, computed once at
    /// its definition (a call to it is a stage with these facts).
    functions: HashMap<String, Facts>,
    /// Word values checked so far, against [`MAX_VALUES`].
    values_checked: usize,
    /// Basenames of files downloaded or decoded earlier in this command,
    /// with the rule that running one of them breaks.
    fetched: Vec<(String, RuleId)>,
    /// The working directory when known.
    cwd: Option<String>,
    workspace: Option<String>,
    depth: usize,
    work: usize,
}

/// What a pipeline stage does with data.
#[derive(Clone, Default)]
struct Facts {
    downloads: bool,
    decodes: bool,
    network: bool,
    /// Runs its standard input as code in this language (`sh` or an
    /// interpreter family).
    runs_stdin: Option<&'static str>,
    /// Text it prints, when known (`echo 'ls' | sh`).
    printed: Vec<String>,
}

impl Facts {
    fn merge(&mut self, other: Facts, with_stdin: bool) {
        self.downloads |= other.downloads;
        self.decodes |= other.decodes;
        self.network |= other.network;
        if with_stdin && self.runs_stdin.is_none() {
            self.runs_stdin = other.runs_stdin;
        }
        self.printed.extend(other.printed);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CodeFrom {
    /// A string a shell evaluates (`eval`, `sh -c`): a substitution there
    /// is run as code.
    Eval,
    /// A script file or standard input (`sh <(...)`, `source <(...)`).
    Input,
}

impl Analyzer<'_> {
    fn hit(&mut self, rule: RuleId, detail: impl Into<String>) {
        let detail = detail.into();
        if !self
            .findings
            .iter()
            .any(|f| f.rule == rule && f.detail == detail)
        {
            self.findings.push(Finding { rule, detail });
        }
    }

    fn hits(&mut self, hits: Vec<Hit>) {
        for (rule, detail) in hits {
            self.hit(rule, detail);
        }
    }

    /// Run `f` one nesting level deeper, refusing past the limit.
    fn nested(&mut self, f: impl FnOnce(&mut Self)) {
        if self.depth >= MAX_NESTING {
            self.hit(RuleId::TooComplex, "the command nests too deeply to check");
            return;
        }
        self.depth += 1;
        f(self);
        self.depth -= 1;
    }

    fn script(&mut self, s: &Script) {
        for item in &s.items {
            self.pipeline(&item.first);
            for (_, p) in &item.rest {
                self.pipeline(p);
            }
        }
    }

    fn pipeline(&mut self, p: &Pipeline) {
        if p.commands.len() > 1 {
            self.pipe_rules(&p.commands);
        }
        for c in &p.commands {
            self.command(c);
        }
    }

    /// Code flowing through a pipe into a stage that runs its input.
    fn pipe_rules(&mut self, commands: &[Command]) {
        let facts: Vec<Facts> = commands.iter().map(|c| self.facts(c, 0)).collect();
        for (k, stage) in facts.iter().enumerate() {
            let Some(lang) = stage.runs_stdin else {
                continue;
            };
            for prev in &facts[..k] {
                if prev.downloads {
                    self.hit(
                        RuleId::DownloadExecPipe,
                        "a download is piped into a shell or interpreter",
                    );
                }
                if prev.decodes {
                    self.hit(
                        RuleId::DecodeExecPipe,
                        "decoded data is piped into a shell or interpreter",
                    );
                }
                for text in &prev.printed {
                    self.code_in(lang, text, "text piped into a shell");
                }
            }
            if facts.iter().enumerate().any(|(j, f)| j != k && f.network) {
                self.hit(
                    RuleId::ReverseShellPipe,
                    "a shell's input or output is a network connection",
                );
            }
        }
    }

    fn facts(&self, c: &Command, depth: usize) -> Facts {
        let mut f = Facts::default();
        if depth > MAX_NESTING {
            return f;
        }
        match c {
            Command::Simple(sc) => self.simple_facts(sc, depth, &mut f),
            Command::Compound(comp, _) => {
                for s in compound_scripts(comp) {
                    f.merge(self.script_facts(s, depth + 1), true);
                }
            }
            Command::Function { .. } => {}
        }
        f
    }

    fn script_facts(&self, s: &Script, depth: usize) -> Facts {
        let mut f = Facts::default();
        for item in &s.items {
            for p in std::iter::once(&item.first).chain(item.rest.iter().map(|(_, p)| p)) {
                for c in &p.commands {
                    f.merge(self.facts(c, depth + 1), true);
                }
            }
        }
        f
    }

    fn simple_facts(&self, sc: &SimpleCommand, depth: usize, f: &mut Facts) {
        for w in sc
            .words
            .iter()
            .chain(sc.redirects.iter().map(|r| &r.target))
        {
            for (output, s) in substitutions(w) {
                let inner = self.script_facts(s, depth + 1);
                // `tee >(sh)`: what this stage reads reaches the shell.
                if output && inner.runs_stdin.is_some() && f.runs_stdin.is_none() {
                    f.runs_stdin = inner.runs_stdin;
                }
                f.merge(inner, false);
            }
        }
        let Some(argv) = self.argv(sc) else { return };
        let res = resolve(&argv);
        for link in &res.chain {
            let Some(name) = link.name.as_deref() else {
                continue;
            };
            f.downloads |= rules::is_downloader(name, &link.argv);
            f.decodes |= rules::is_decoder(name, &link.argv);
            f.network |= rules::is_network_client(name, &link.argv);
            if let Some(facts) = self.functions.get(name) {
                f.merge(facts.clone(), true);
            }
        }
        let program = res.program().unwrap_or_default();
        let via_xargs = res.chain.iter().any(|l| l.name.as_deref() == Some("xargs"));
        let xargs_lang = if SHELLS.contains(&program) {
            Some("sh")
        } else {
            interpreter(program)
        };
        if f.runs_stdin.is_none() {
            f.runs_stdin = res
                .reads_code_from_stdin
                .or(xargs_lang.filter(|_| via_xargs));
        }
        if let Some(last) = res.chain.last() {
            f.printed.extend(rules::printed_text(program, &last.argv));
        }
        if program == "cat" {
            f.printed.extend(sc.redirects.iter().filter_map(stdin_text));
        }
    }

    fn command(&mut self, c: &Command) {
        match c {
            Command::Simple(sc) => self.simple(sc),
            Command::Compound(comp, redirects) => {
                self.nested(|a| a.compound(comp));
                for r in redirects {
                    self.redirect(r);
                }
            }
            Command::Function {
                name,
                body,
                redirects,
            } => {
                self.fork_bomb(name, body);
                let mut facts = Facts::default();
                for s in compound_scripts(body) {
                    facts.merge(self.script_facts(s, 1), true);
                }
                self.functions.insert(name.clone(), facts);
                self.nested(|a| a.compound(body));
                for r in redirects {
                    self.redirect(r);
                }
            }
        }
    }

    fn compound(&mut self, c: &Compound) {
        match c {
            Compound::Loop {
                until,
                condition,
                body,
            } => {
                let always = simple_names(condition).iter().all(|n| {
                    if *until {
                        n == "false"
                    } else {
                        n == "true" || n == ":"
                    }
                });
                if always && has_background(body) {
                    self.hit(
                        RuleId::ForkBombLoop,
                        "an endless loop starting background jobs",
                    );
                }
            }
            Compound::For { words, .. } => {
                for w in words.iter().flatten() {
                    self.word_substs(w);
                }
            }
            Compound::ArithFor { header: w, .. } | Compound::Arith(w) => self.word_substs(w),
            Compound::Case { word, arms } => {
                self.word_substs(word);
                for p in arms.iter().flat_map(|a| &a.patterns) {
                    self.word_substs(p);
                }
            }
            Compound::Cond(words) => {
                for w in words {
                    self.word_substs(w);
                }
            }
            _ => {}
        }
        for s in compound_scripts(c) {
            self.script(s);
        }
    }

    /// Substitutions inside a word are commands too; `$EXOCLAW_*` is the
    /// gateway's secret environment.
    fn word_substs(&mut self, w: &Word) {
        for name in param_names(w) {
            if name.starts_with("EXOCLAW_") {
                self.hit(
                    RuleId::SecretReadGateway,
                    format!("reads the gateway's variable ${name}"),
                );
            }
        }
        for (_, s) in substitutions(w) {
            self.nested(|a| a.script(s));
        }
    }

    /// Check code given as text in `lang`: shell code is parsed and
    /// checked in full, other languages by the one-liner rules.
    fn code_in(&mut self, lang: &str, text: &str, origin: &str) {
        if lang == "sh" {
            self.code(text, origin);
        } else {
            self.hits(rules::code_rules(lang, text));
            self.hits(exposure::code_rules(lang, text));
        }
    }

    /// Parse and check code given as text (`sh -c`, `eval`, piped text).
    fn code(&mut self, text: &str, origin: &str) {
        let text = match super::normalize::normalize(text) {
            Ok(t) => t,
            Err(e) => {
                self.hit(RuleId::ControlCharacter, format!("{origin}: {e}"));
                return;
            }
        };
        match parse(&text) {
            Ok(script) => self.nested(|a| a.script(&script)),
            Err(e) => self.hit(
                RuleId::Unparseable,
                format!("{origin} cannot be parsed exactly: {}", e.message),
            ),
        }
    }

    /// The POSIX argv of `sc` (`None` when it has no words or a brace
    /// expansion is too large, which is reported).
    fn argv(&self, sc: &SimpleCommand) -> Option<Vec<Val>> {
        let mut argv = Vec::with_capacity(sc.words.len());
        for (i, w) in sc.words.iter().enumerate() {
            let mut v = values(w, self.policy.home.as_deref()).ok()?.posix;
            v.word = Some(i);
            argv.push(v);
        }
        (!argv.is_empty()).then_some(argv)
    }

    fn simple(&mut self, sc: &SimpleCommand) {
        self.work += 1;
        if self.work > MAX_WORK {
            self.hit(
                RuleId::TooComplex,
                "the command has too many parts to check",
            );
            return;
        }
        for w in &sc.words {
            self.word_substs(w);
        }
        for a in &sc.assignments {
            self.word_substs(&a.value);
            if let Ok(v) = values(&a.value, self.policy.home.as_deref()) {
                self.word_rules(&v.posix);
                self.hits(exposure::assignment_rules(&a.name, &v.posix));
            }
        }
        for r in &sc.redirects {
            self.redirect(r);
        }
        let (mut posix, mut bash, mut expands) = (Vec::new(), Vec::new(), false);
        for (i, w) in sc.words.iter().enumerate() {
            let Ok(mut v) = values(w, self.policy.home.as_deref()) else {
                self.hit(
                    RuleId::BraceExpansion,
                    "a brace expansion too large to check",
                );
                return;
            };
            v.posix.word = Some(i);
            match v.bash {
                Some(words) => {
                    expands = true;
                    if bash.len() + words.len() > MAX_EXPANDED_WORDS {
                        self.hit(
                            RuleId::BraceExpansion,
                            "brace expansions too large to check",
                        );
                        return;
                    }
                    bash.extend(words.into_iter().map(|mut b| {
                        b.word = Some(i);
                        b
                    }));
                }
                None => bash.push(v.posix.clone()),
            }
            posix.push(v.posix);
        }
        if posix.is_empty() {
            return;
        }
        let res = self.invocation(&posix, sc);
        self.commands.push(ResolvedCommand {
            argv: posix.iter().map(|v| v.text.clone()).collect(),
            words: sc.words.iter().map(render_word).collect(),
            program: res.program().map(str::to_owned),
            wrappers: res.chain[..res.chain.len().saturating_sub(1)]
                .iter()
                .map(|l| l.name.clone().unwrap_or_else(|| "?".into()))
                .collect(),
        });
        if expands {
            self.invocation(&bash, sc);
        }
    }

    /// All rules for one argv (a simple command, or `find -exec`'s).
    fn invocation(&mut self, argv: &[Val], sc: &SimpleCommand) -> Resolution {
        let res = resolve(argv);
        // A command name built by a substitution is obfuscation even when
        // its output is known (`$(echo rm) -rf`).
        let built =
            |l: &&super::resolve::Link| l.name.is_none() || l.argv.first().is_some_and(|v| v.subst);
        if let Some(link) = res.chain.iter().find(built) {
            let shown = link
                .argv
                .first()
                .map(|v| v.text.clone())
                .unwrap_or_default();
            self.hit(
                RuleId::DynamicCommand,
                format!("the command name {shown} is only known when it runs"),
            );
        }
        for link in &res.chain {
            let Some(name) = link.name.as_deref() else {
                continue;
            };
            self.hits(rules::program_rules(name, &link.argv));
            self.hits(misuse::permissions_root(name, &link.argv));
            let found = misuse::program_rules(name, &link.argv, self.policy.gateway_port);
            self.hits(found.hits);
            for code in found.code {
                self.code(&code, "a program given in an option");
            }
            for t in rules::write_targets(name, &link.argv) {
                self.write_path(&t);
            }
            let rule = if rules::is_downloader(name, &link.argv) {
                RuleId::DownloadExecRunDownloaded
            } else if rules::is_decoder(name, &link.argv) {
                RuleId::DecodeExecRunDecoded
            } else {
                continue;
            };
            let mut outputs = rules::download_outputs(name, &link.argv);
            outputs.extend(stdout_files(sc));
            self.fetched.extend(outputs.into_iter().map(|n| (n, rule)));
        }
        for (i, v) in argv.iter().enumerate() {
            // A command name is a path only when it has a slash.
            if i > 0 || v.toks.contains(&Tok::Char('/')) {
                self.word_rules(v);
            }
        }
        if let Some(prog) = argv.first().and_then(program_name) {
            self.run_fetched(&prog);
        }
        for code in &res.shell_code {
            self.code_value(code, sc, CodeFrom::Eval);
        }
        for (lang, code) in &res.interp_code {
            if code.subst {
                self.run_substitution(&word_of(sc, code), CodeFrom::Eval);
            } else {
                self.hits(rules::code_rules(lang, &code.code));
                self.hits(exposure::code_rules(lang, &code.code));
            }
        }
        for f in &res.code_files {
            self.code_file(f, sc);
        }
        if let Some(lang) = res.reads_code_from_stdin {
            for r in &sc.redirects {
                self.stdin_code(lang, r);
            }
        }
        // `ls | xargs sh`: every line read becomes a script to run.
        let program = res.program().unwrap_or_default();
        if res.chain.iter().any(|l| l.name.as_deref() == Some("xargs"))
            && (SHELLS.contains(&program) || interpreter(program).is_some())
            && res.shell_code.is_empty()
            && res.interp_code.is_empty()
        {
            self.hit(
                RuleId::OptionExecShellRunner,
                format!("`xargs {program}` runs what it reads as scripts"),
            );
        }
        for exec in &res.execs {
            self.nested(|a| {
                a.invocation(exec, sc);
            });
        }
        self.track_cd(&res);
        res
    }

    fn code_value(&mut self, code: &Val, sc: &SimpleCommand, from: CodeFrom) {
        if code.subst {
            let words = match code.word {
                Some(_) => word_of(sc, code),
                None => sc.words.iter().collect(),
            };
            self.run_substitution(&words, from);
        } else {
            self.code(&code.code, "a shell string");
        }
    }

    /// A script file: a `<(...)` substitution, or a file downloaded earlier.
    fn code_file(&mut self, f: &Val, sc: &SimpleCommand) {
        if f.subst {
            self.run_substitution(&word_of(sc, f), CodeFrom::Input);
        } else if let Some(path) = f.literal() {
            self.run_fetched(&basename(path));
        }
    }

    /// Running a file this command downloaded or decoded.
    fn run_fetched(&mut self, name: &str) {
        if let Some((_, rule)) = self.fetched.iter().find(|(n, _)| n == name) {
            let rule = *rule;
            self.hit(
                rule,
                format!("runs {name}, fetched or decoded by this command"),
            );
        }
    }

    /// Code a shell or interpreter reads on its standard input from a
    /// redirection.
    fn stdin_code(&mut self, lang: &str, r: &Redirect) {
        if r.fd.is_some_and(|fd| fd != 0) {
            return;
        }
        match (r.op, &r.heredoc) {
            (RedirOp::HereDoc | RedirOp::HereDocStrip, Some(h)) => self.code_word(lang, &h.body),
            (RedirOp::HereString, _) => self.code_word(lang, &r.target),
            (RedirOp::In, _) => {
                if let Ok(v) = values(&r.target, self.policy.home.as_deref()) {
                    let sc = SimpleCommand {
                        words: vec![r.target.clone()],
                        ..SimpleCommand::default()
                    };
                    let mut v = v.posix;
                    v.word = Some(0);
                    self.code_file(&v, &sc);
                }
            }
            _ => {}
        }
    }

    /// A word whose text a shell or interpreter runs (a here-document or
    /// here-string).
    fn code_word(&mut self, lang: &str, w: &Word) {
        let Ok(v) = values(w, self.policy.home.as_deref()) else {
            return;
        };
        if v.posix.subst {
            self.run_substitution(&[w], CodeFrom::Eval);
        } else {
            self.code_in(lang, &v.posix.code, "input of a shell");
        }
    }

    /// The output of substitutions in `words` is run as code.
    fn run_substitution(&mut self, words: &[&Word], from: CodeFrom) {
        let mut f = Facts::default();
        for w in words {
            for (_, s) in substitutions(w) {
                f.merge(self.script_facts(s, 0), false);
            }
        }
        if f.downloads {
            let rule = match from {
                CodeFrom::Input => RuleId::DownloadExecProcSubst,
                CodeFrom::Eval => RuleId::DownloadExecSubstitution,
            };
            self.hit(rule, "runs the output of a download as code");
        } else if f.decodes {
            self.hit(RuleId::DecodeExecSubstitution, "runs decoded data as code");
        } else if from == CodeFrom::Eval {
            self.hit(
                RuleId::EvalSubstitution,
                "evaluates the output of a command substitution as code",
            );
        }
    }

    fn redirect(&mut self, r: &Redirect) {
        self.word_substs(&r.target);
        if let Some(h) = &r.heredoc {
            self.word_substs(&h.body);
            return;
        }
        if r.op == RedirOp::HereString {
            return;
        }
        let Ok(v) = values(&r.target, self.policy.home.as_deref()) else {
            return;
        };
        let v = v.posix;
        let is_fd = v
            .literal()
            .is_some_and(|t| t == "-" || t.chars().all(|c| c.is_ascii_digit()));
        if matches!(r.op, RedirOp::DupIn | RedirOp::DupOut) && is_fd {
            return;
        }
        self.word_rules(&v);
        if r.op.writes() {
            self.write_path(&v);
        }
    }

    /// Rules for any word, its `--opt=value` part and its `-f/path` part.
    fn word_rules(&mut self, v: &Val) {
        self.values_checked += 1;
        if self.values_checked > MAX_VALUES {
            self.hit(
                RuleId::TooComplex,
                "the command has too many words to check",
            );
            return;
        }
        let mut candidates = vec![v.clone()];
        candidates.extend(v.after_eq());
        if v.text.starts_with('-')
            && let Some(i) = v.toks.iter().position(|t| *t == Tok::Char('/'))
        {
            let mut tail = v.clone();
            tail.toks = v.toks[i..].to_vec();
            candidates.push(tail);
        }
        for c in candidates {
            let abs = self.absolute(&c);
            self.hits(rules::any_word_rules(&c, abs.as_deref()));
            self.hits(exposure::word_rules(&c, self.policy.gateway_port));
            if let Some(abs) = abs {
                self.gateway_path(&c, &abs);
            }
        }
    }

    fn write_path(&mut self, v: &Val) {
        self.hits(misuse::persistence_path(v));
        if let Some(abs) = self.absolute(v) {
            self.hits(rules::write_rules(v, &abs));
            self.gateway_path(v, &abs);
        }
    }

    /// Anything beneath the data dir but outside this workspace.
    fn gateway_path(&mut self, v: &Val, abs: &[Tok]) {
        let Some(data) = self.policy.data_dir.as_ref().and_then(|d| d.to_str()) else {
            return;
        };
        let data = data.trim_end_matches('/');
        let inside = could_match(abs, &rule_glob(data))
            || could_match(abs, &rule_glob(&format!("{data}/*")));
        if !inside {
            return;
        }
        let known: String = abs
            .iter()
            .map_while(|t| match t {
                Tok::Char(c) => Some(*c),
                _ => None,
            })
            .collect();
        let own = self
            .workspace
            .as_ref()
            .is_some_and(|w| known == *w || known.starts_with(&format!("{w}/")));
        if !own {
            self.hit(
                RuleId::SecretReadGateway,
                format!("touches the gateway's data dir: {}", v.text),
            );
        }
    }

    /// The value as an absolute, lexically normalised path, when it is one
    /// or is relative to a known working directory.
    fn absolute(&self, v: &Val) -> Option<Vec<Tok>> {
        match v.toks.first()? {
            Tok::Char('/') => Some(normalize_path(&v.toks)),
            Tok::Char(_) | Tok::Star | Tok::StarNoDot | Tok::One => {
                let cwd = self.cwd.as_ref()?;
                let mut toks: Vec<Tok> = cwd.chars().map(Tok::Char).collect();
                toks.push(Tok::Char('/'));
                toks.extend(&v.toks);
                Some(normalize_path(&toks))
            }
            Tok::Any => None,
        }
    }

    fn track_cd(&mut self, res: &Resolution) {
        let Some(last) = res.chain.last() else { return };
        if !matches!(last.name.as_deref(), Some("cd" | "pushd")) {
            return;
        }
        let target = last.argv.iter().skip(1).find(|a| !a.text.starts_with('-'));
        self.cwd = match target {
            None => self.policy.home.clone(),
            Some(t) => self.absolute(t).and_then(|toks| {
                toks.iter()
                    .map(|t| match t {
                        Tok::Char(c) => Some(*c),
                        _ => None,
                    })
                    .collect()
            }),
        };
    }

    /// A function that calls itself concurrently (`:(){ :|:& };:`).
    fn fork_bomb(&mut self, name: &str, body: &Compound) {
        let scripts = compound_scripts(body);
        let calls_self = scripts
            .iter()
            .any(|s| simple_names(s).iter().any(|n| n == name));
        let concurrent = scripts
            .iter()
            .any(|s| has_background(s) || has_pipe_with(s, name));
        if calls_self && concurrent {
            self.hit(
                RuleId::ForkBombFunction,
                format!("function {name} calls itself concurrently"),
            );
        }
    }
}

/// Files the command's standard output is redirected to, by basename.
fn stdout_files(sc: &SimpleCommand) -> Vec<String> {
    sc.redirects
        .iter()
        .filter(|r| {
            r.fd.is_none_or(|fd| fd == 1)
                && matches!(
                    r.op,
                    RedirOp::Out
                        | RedirOp::Append
                        | RedirOp::Clobber
                        | RedirOp::OutErr
                        | RedirOp::AppendOutErr
                )
        })
        .filter_map(|r| values(&r.target, None).ok())
        .filter_map(|v| v.posix.literal().map(basename))
        .collect()
}

fn word_of<'a>(sc: &'a SimpleCommand, v: &Val) -> Vec<&'a Word> {
    match v.word.and_then(|i| sc.words.get(i)) {
        Some(w) => vec![w],
        None => sc.words.iter().collect(),
    }
}
