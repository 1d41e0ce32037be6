//! The syntax tree of a POSIX shell command (plus the bash forms agents
//! use: `[[ ]]`, `(( ))`, `$'...'`, `<(...)`, `&>`, here-strings, arrays,
//! `function`). Quoting is kept in the tree because it decides what the
//! shell will expand: only unquoted text is subject to globbing, tilde and
//! brace expansion.

/// A list of commands: `a; b & c && d`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    pub items: Vec<Item>,
}

/// One and-or list, run in the background when `background` (`&`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub first: Pipeline,
    pub rest: Vec<(AndOr, Pipeline)>,
    pub background: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AndOr {
    And,
    Or,
}

/// `[!] cmd | cmd | ...`; `|&` is kept as `2>&1 |` on the left command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipeline {
    pub negated: bool,
    pub commands: Vec<Command>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Simple(SimpleCommand),
    Compound(Compound, Vec<Redirect>),
    /// `name() body` or `function name body`.
    Function {
        name: String,
        body: Box<Compound>,
        redirects: Vec<Redirect>,
    },
}

/// Assignments, words (the first is the command name) and redirections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimpleCommand {
    pub assignments: Vec<Assignment>,
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
}

/// `NAME=value` or `NAME+=value` before a command (value may be an array).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub append: bool,
    pub value: Word,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compound {
    Brace(Script),
    Subshell(Script),
    If {
        /// `if`/`elif` conditions with their `then` bodies.
        branches: Vec<(Script, Script)>,
        otherwise: Option<Script>,
    },
    Loop {
        until: bool,
        condition: Script,
        body: Script,
    },
    For {
        select: bool,
        var: String,
        /// `None` for `for x; do` (iterates the positional parameters).
        words: Option<Vec<Word>>,
        body: Script,
    },
    /// `for ((init; test; step))`.
    ArithFor {
        header: Word,
        body: Script,
    },
    Case {
        word: Word,
        arms: Vec<CaseArm>,
    },
    /// `[[ ... ]]`, kept as its words.
    Cond(Vec<Word>),
    /// `(( ... ))`.
    Arith(Word),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseArm {
    pub patterns: Vec<Word>,
    pub body: Script,
    /// `;;`, `;&` or `;;&`.
    pub terminator: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub fd: Option<u32>,
    pub op: RedirOp,
    pub target: Word,
    /// The body of a here-document (`<<` / `<<-`).
    pub heredoc: Option<HereDoc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HereDoc {
    pub delimiter: String,
    /// A quoted delimiter means the body is taken literally.
    pub quoted: bool,
    pub body: Word,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirOp {
    /// `<`
    In,
    /// `>`
    Out,
    /// `>>`
    Append,
    /// `>|`
    Clobber,
    /// `<>`
    ReadWrite,
    /// `<&`
    DupIn,
    /// `>&`
    DupOut,
    /// `&>`
    OutErr,
    /// `&>>`
    AppendOutErr,
    /// `<<`
    HereDoc,
    /// `<<-`
    HereDocStrip,
    /// `<<<`
    HereString,
}

impl RedirOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "<",
            Self::Out => ">",
            Self::Append => ">>",
            Self::Clobber => ">|",
            Self::ReadWrite => "<>",
            Self::DupIn => "<&",
            Self::DupOut => ">&",
            Self::OutErr => "&>",
            Self::AppendOutErr => "&>>",
            Self::HereDoc => "<<",
            Self::HereDocStrip => "<<-",
            Self::HereString => "<<<",
        }
    }

    /// Whether the target is a file the command may write.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Self::Out
                | Self::Append
                | Self::Clobber
                | Self::ReadWrite
                | Self::DupOut
                | Self::OutErr
                | Self::AppendOutErr
        )
    }
}

/// A word: the concatenation of its parts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Word {
    pub parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Literal text; unquoted at word level, quoted inside `Double`.
    Lit(String),
    /// A backslash-escaped character (quoted).
    Escaped(char),
    /// `'...'`
    Single(String),
    /// `$'...'`, decoded.
    AnsiC(String),
    /// `"..."`
    Double(Vec<Part>),
    Param(Param),
    /// `$(...)` or backticks.
    CmdSubst(Script),
    /// `$((...))`
    Arith(Word),
    /// `<(...)` (`output: false`) or `>(...)`.
    ProcSubst {
        output: bool,
        script: Script,
    },
    /// `(a b c)` in an array assignment.
    Array(Vec<Word>),
}

/// `$name`, `${name}`, `${#name}`, `${!name}`, `${name[i]}`, `${name:-word}`...
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub braced: bool,
    /// `#` (length) or `!` (indirection).
    pub prefix: Option<char>,
    pub index: Option<Word>,
    /// Everything after the name inside the braces: operator and word.
    pub rest: Option<Word>,
}

impl Word {
    pub fn lit(s: &str) -> Self {
        Self {
            parts: vec![Part::Lit(s.to_owned())],
        }
    }

    /// The text if the word is one unquoted literal (a reserved word, a
    /// function name, an assignment name).
    pub fn as_plain(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

impl Script {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
