//! Custom tools defined at run time ([`CustomToolDef`]): a name, a
//! description, a JSON Schema for the arguments and a command template.
//!
//! The template is an argv, never a shell string: its first word is the
//! program (a literal), and `{arg}` in any word is replaced by the argument
//! `arg`, the word staying one argv entry whatever the value holds (`;`,
//! `$(...)`, quotes, newlines are just bytes). Arguments may also be handed
//! over as environment variables (`env`), and the values of `secret_env`
//! come from the vault. A value that would be read as an option (it starts
//! with `-` and begins its word) is refused unless a literal `--` word comes
//! before it; a NUL byte is refused everywhere. The command runs through
//! [`CommandRunner::run_argv`]: the sandbox, the shell policy (which sees the
//! argv quoted), the quotas and the output caps of `exec`.
//!
//! [`CustomToolDef::validate`] refuses a bad definition with the reason: a
//! schema that does not compile or is not an object schema, a placeholder
//! naming no property (or a non-scalar one), a program that is not a
//! literal, unbalanced braces, an environment name that is reserved.

use crate::exec::CommandRunner;
use async_trait::async_trait;
use exoclaw_core::Secret;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Check, Provenance, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest name of a custom tool.
const MAX_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 2048;
const MAX_WORDS: usize = 64;
const MAX_WORD_BYTES: usize = 4096;
const MAX_ENV: usize = 32;
/// Longest `timeout_sec`.
pub const MAX_TIMEOUT_SEC: u64 = 3600;

/// Environment names a definition may not set: the sandbox's own, and the
/// ones that change how programs load or where traffic goes.
const RESERVED_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER", "SHELL", "IFS", "ENV", "BASH_ENV",
    "PWD",
];

/// A custom tool as its owner defined it (the stored form).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomToolDef {
    /// Letters, digits, `_` and `-` (no `__`: that separates an MCP
    /// server's prefix).
    pub name: String,
    pub description: String,
    /// JSON Schema (draft 2020-12) of the arguments: an object schema.
    pub parameters: Value,
    /// The program, then its arguments; `{arg}` is replaced by an argument,
    /// `{{` and `}}` are literal braces.
    pub command: Vec<String>,
    /// Environment variables set from arguments: name -> template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values are stored in the vault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<String>,
    /// At most the sandbox's `timeout_sec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_sec: Option<u64>,
}

/// One piece of a template word.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Arg(String),
}

/// Split a template word into text and `{arg}` placeholders.
fn pieces(word: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                            name.push(c);
                        }
                        Some(c) => {
                            return Err(format!(
                                "{word:?}: {c:?} in a placeholder (write {{{{ for a literal brace)"
                            ));
                        }
                        None => return Err(format!("{word:?}: a placeholder is not closed")),
                    }
                }
                if name.is_empty() {
                    return Err(format!("{word:?}: an empty placeholder"));
                }
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(Piece::Arg(name));
            }
            '}' => {
                return Err(format!(
                    "{word:?}: a lone '}}' (write }}}} for a literal brace)"
                ));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

fn check_env_name(name: &str, field: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if !valid {
        return Err(format!(
            "{field}: {name:?} is not an environment name (A-Z, 0-9, _; not starting with a digit)"
        ));
    }
    if RESERVED_ENV.contains(&name)
        || name.starts_with("LD_")
        || name.starts_with("EXOCLAW_")
        || name.ends_with("_PROXY")
    {
        return Err(format!("{field}: {name:?} is reserved"));
    }
    Ok(())
}

impl CustomToolDef {
    /// Every reason this definition cannot be a tool, or `Ok`.
    pub fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        if n.is_empty()
            || n.len() > MAX_NAME
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "name: {n:?} must be 1-{MAX_NAME} letters, digits, '_' and '-'"
            ));
        }
        if n.contains("__") {
            return Err(format!(
                "name: {n:?} may not contain '__' (it separates an MCP server's tools)"
            ));
        }
        if self.description.trim().is_empty() || self.description.len() > MAX_DESCRIPTION {
            return Err(format!(
                "description: must be 1-{MAX_DESCRIPTION} bytes, saying what the tool does"
            ));
        }
        let props = self.check_schema()?;
        if self.command.is_empty() || self.command.len() > MAX_WORDS {
            return Err(format!("command: must be 1-{MAX_WORDS} words"));
        }
        let mut templates: Vec<(String, &str)> = Vec::new();
        for (i, word) in self.command.iter().enumerate() {
            templates.push((format!("command[{i}]"), word));
        }
        for (k, v) in &self.env {
            check_env_name(k, "env")?;
            templates.push((format!("env.{k}"), v));
        }
        if self.env.len() + self.secret_env.len() > MAX_ENV {
            return Err(format!("env: at most {MAX_ENV} variables in all"));
        }
        for (i, name) in self.secret_env.iter().enumerate() {
            check_env_name(name, "secret_env")?;
            if self.env.contains_key(name) || self.secret_env[..i].contains(name) {
                return Err(format!("secret_env: {name:?} is set twice"));
            }
        }
        for (field, word) in templates {
            if word.len() > MAX_WORD_BYTES || word.contains('\0') {
                return Err(format!(
                    "{field}: at most {MAX_WORD_BYTES} bytes, no NUL byte"
                ));
            }
            for piece in pieces(word).map_err(|e| format!("{field}: {e}"))? {
                if let Piece::Arg(a) = piece {
                    match props.get(&a) {
                        None => {
                            return Err(format!(
                                "{field}: {{{a}}} names no property of the parameters"
                            ));
                        }
                        Some(false) => {
                            return Err(format!(
                                "{field}: {{{a}}} must be a string, number, integer or boolean property"
                            ));
                        }
                        Some(true) => {}
                    }
                }
            }
        }
        match pieces(&self.command[0]) {
            Ok(p) if p.iter().all(|p| matches!(p, Piece::Text(_))) && !p.is_empty() => {}
            _ => {
                return Err("command[0]: the program must be a literal, not an argument".to_owned());
            }
        }
        if let Some(t) = self.timeout_sec
            && !(1..=MAX_TIMEOUT_SEC).contains(&t)
        {
            return Err(format!("timeout_sec: 1-{MAX_TIMEOUT_SEC}"));
        }
        Ok(())
    }

    /// The schema compiles, is an object schema; its properties, each
    /// `true` when it is a scalar (what a placeholder may name).
    fn check_schema(&self) -> Result<BTreeMap<String, bool>, String> {
        let p = &self.parameters;
        if p.get("type").and_then(Value::as_str) != Some("object") {
            return Err(r#"parameters: must be an object schema ("type": "object")"#.to_owned());
        }
        jsonschema::draft202012::new(p).map_err(|e| format!("parameters: {e}"))?;
        let mut props = BTreeMap::new();
        match p.get("properties") {
            None => {}
            Some(Value::Object(m)) => {
                for (name, s) in m {
                    let scalar = match s.get("type") {
                        Some(Value::String(t)) => {
                            matches!(t.as_str(), "string" | "number" | "integer" | "boolean")
                        }
                        _ => s.get("enum").is_some(),
                    };
                    props.insert(name.clone(), scalar);
                }
            }
            Some(_) => return Err("parameters.properties: must be an object".to_owned()),
        }
        Ok(props)
    }

    /// The argv and the environment for `args` (already checked against
    /// the schema by the policy path).
    pub fn render(&self, args: &Value) -> Result<Rendered, ToolError> {
        let mut argv = Vec::with_capacity(self.command.len());
        let mut after_dashdash = false;
        for word in &self.command {
            let Some(value) = render_word(word, args, !after_dashdash)? else {
                continue;
            };
            if word == "--" {
                after_dashdash = true;
            }
            argv.push(value);
        }
        let mut env = Vec::new();
        for (k, v) in &self.env {
            if let Some(value) = render_word(v, args, false)? {
                env.push((k.clone(), value));
            }
        }
        Ok(Rendered { argv, env })
    }
}

/// The command a call runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Rendered {
    /// The argv as a shell would need it quoted (for the shell policy and
    /// for an operator to read).
    pub fn shown(&self) -> String {
        self.argv
            .iter()
            .map(|w| quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One word with its placeholders filled; `None` when it names an absent
/// argument (the word is left out). With `guard_options`, a word that
/// begins with an argument whose value starts with `-` is refused.
fn render_word(word: &str, args: &Value, guard_options: bool) -> Result<Option<String>, ToolError> {
    let parts = pieces(word).map_err(ToolError::invalid_args)?;
    let mut out = String::new();
    for (i, piece) in parts.iter().enumerate() {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Arg(name) => {
                let value = match args.get(name) {
                    None | Some(Value::Null) => return Ok(None),
                    Some(Value::String(s)) => s.clone(),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                    Some(_) => {
                        return Err(ToolError::invalid_args(format!(
                            "{name}: must be a string, number or boolean"
                        )));
                    }
                };
                if value.contains('\0') {
                    return Err(ToolError::invalid_args(format!(
                        "{name}: contains a NUL byte"
                    )));
                }
                if guard_options && i == 0 && value.starts_with('-') {
                    return Err(ToolError::invalid_args(format!(
                        "{name}: may not start with '-' (the program would read it as an option)"
                    )));
                }
                out.push_str(&value);
            }
        }
    }
    Ok(Some(out))
}

/// A custom tool, ready to be registered.
pub struct CustomTool {
    def: CustomToolDef,
    /// `secret_env` with the vault's values.
    secrets: Vec<(String, Secret)>,
    runner: Arc<CommandRunner>,
}

impl CustomTool {
    /// `def` must have passed [`CustomToolDef::validate`].
    pub fn new(
        def: CustomToolDef,
        secrets: Vec<(String, Secret)>,
        runner: Arc<CommandRunner>,
    ) -> Self {
        Self {
            def,
            secrets,
            runner,
        }
    }

    pub fn def(&self) -> &CustomToolDef {
        &self.def
    }
}

#[async_trait]
impl Tool for CustomTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.def.name.clone(),
            description: self.def.description.clone(),
            parameters: self.def.parameters.clone(),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::SideEffect
    }

    /// A command may print anything it read (files, the network).
    fn provenance(&self) -> Provenance {
        Provenance::Untrusted
    }

    fn source(&self, _args: &Value) -> String {
        format!("custom:{}", self.def.name)
    }

    fn asks_approval(&self) -> bool {
        true
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let r = self.def.render(args)?;
        self.runner
            .check_argv(ctx, &r.shown(), self.def.timeout_sec)
            .await
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let r = self.def.render(args)?;
        let mut env = r.env.clone();
        env.extend(
            self.secrets
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned())),
        );
        self.runner
            .run_argv(ctx, &r.argv, &env, &r.shown(), self.def.timeout_sec)
            .await
    }
}

#[cfg(test)]
mod tests;
