//! Shell policy: the check every command string passes before anything is
//! spawned (pure logic, no processes). The command is normalised
//! ([`normalize`]: NFKC, invisible characters removed, control characters
//! refused), parsed by a POSIX shell parser ([`parse`], never regexes over
//! raw text; what cannot be parsed is refused), then every simple command —
//! including those inside substitutions, here-documents fed to shells,
//! `sh -c`/`eval` strings (re-parsed) and `find -exec` — is resolved through
//! wrappers ([`resolve`]) and judged by deny rules grouped as in
//! [`RuleGroup`] ([`analyze`], [`rules`]).
//!
//! [`check`] returns the [`ParsedCommand`] (its normalised text is what the
//! exec tool must run) or [`ShellDenied`] naming the first rule and every
//! flagged group; [`decide`] gives the same as a [`ShellDecision`].
//! [`approval_hash`] binds an operator's approval to the exact command.

mod analyze;
mod approval;
mod ast;
mod explain;
mod exposure;
pub mod gate;
mod heredoc;
mod misuse;
mod normalize;
mod parse;
mod render;
mod resolve;
mod rules;
mod splice;
mod tree;
mod value;
mod word;

pub use approval::approval_hash;
pub use ast::Script;
pub use explain::{Explanation, explanations};

use exoclaw_core::tool::ToolError;
use serde::Serialize;
use std::path::PathBuf;

/// What the policy needs to know about where the command runs.
#[derive(Clone, Debug, Default)]
pub struct ShellPolicyContext {
    /// The gateway's data dir (`EXOCLAW_HOME`): any reference beneath it
    /// (config, `.env`, database, other users' workspaces) is a secret read,
    /// except beneath `workspace`.
    pub data_dir: Option<PathBuf>,
    /// The workspace the command runs in (its cwd); relative paths are
    /// resolved against it for the path rules.
    pub workspace: Option<PathBuf>,
    /// What `~` and `$HOME` are in the sandbox, if known.
    pub home: Option<String>,
    /// The gateway's own listening port: a command reaching it on a
    /// loopback address is refused (`exfiltration.gateway_port`).
    pub gateway_port: Option<u16>,
}

/// A deny group; `ask` mode shows these to the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleGroup {
    DownloadExec,
    ReverseShell,
    EvalSubstitution,
    DecodeExec,
    Destructive,
    SystemWrite,
    SecretRead,
    Miner,
    ForkBomb,
    PrivilegeEscalation,
    ContainerEscape,
    Obfuscation,
    Unparseable,
    Interpreter,
    OptionExec,
    SystemControl,
    Persistence,
    EnvInjection,
    EnvDump,
    Exfiltration,
}

macro_rules! rule_ids {
    ($($variant:ident = $id:literal => $group:ident,)*) => {
        /// A stable rule id (`group.rule`), shown in refusals and the audit log.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId {
            $($variant,)*
        }

        impl RuleId {
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $id,)*
                }
            }

            pub fn group(self) -> RuleGroup {
                match self {
                    $(RuleId::$variant => RuleGroup::$group,)*
                }
            }
        }
    };
}

rule_ids! {
    DownloadExecPipe = "download_exec.pipe" => DownloadExec,
    DownloadExecProcSubst = "download_exec.procsubst" => DownloadExec,
    DownloadExecRunDownloaded = "download_exec.run_downloaded" => DownloadExec,
    DownloadExecSubstitution = "download_exec.substitution" => DownloadExec,
    ReverseShellNcExec = "reverse_shell.nc_exec" => ReverseShell,
    ReverseShellDevTcp = "reverse_shell.dev_tcp" => ReverseShell,
    ReverseShellSocatExec = "reverse_shell.socat_exec" => ReverseShell,
    ReverseShellPipe = "reverse_shell.pipe" => ReverseShell,
    ReverseShellInterpreter = "reverse_shell.interpreter" => ReverseShell,
    EvalSubstitution = "eval.substitution" => EvalSubstitution,
    DecodeExecPipe = "decode_exec.pipe" => DecodeExec,
    DecodeExecSubstitution = "decode_exec.substitution" => DecodeExec,
    DecodeExecInterpreter = "decode_exec.interpreter" => DecodeExec,
    DecodeExecRunDecoded = "decode_exec.run_decoded" => DecodeExec,
    DestructiveRmRoot = "destructive.rm_root" => Destructive,
    DestructiveDisk = "destructive.disk" => Destructive,
    DestructiveDeviceWrite = "destructive.device_write" => Destructive,
    DestructiveShred = "destructive.shred" => Destructive,
    SystemWrite = "system_write.path" => SystemWrite,
    SecretReadPath = "secret_read.path" => SecretRead,
    SecretReadGateway = "secret_read.gateway" => SecretRead,
    MinerBinary = "miner.binary" => Miner,
    MinerStratum = "miner.stratum" => Miner,
    ForkBombFunction = "fork_bomb.function" => ForkBomb,
    ForkBombLoop = "fork_bomb.loop" => ForkBomb,
    ForkBombInterpreter = "fork_bomb.interpreter" => ForkBomb,
    PrivilegeEscalation = "privilege.escalation" => PrivilegeEscalation,
    PrivilegeSetuid = "privilege.setuid" => PrivilegeEscalation,
    PrivilegeSetcap = "privilege.setcap" => PrivilegeEscalation,
    PrivilegeAccounts = "privilege.accounts" => PrivilegeEscalation,
    ContainerEscapeTool = "container_escape.tool" => ContainerEscape,
    ContainerEscapePath = "container_escape.path" => ContainerEscape,
    ContainerEscapeKernel = "container_escape.kernel" => ContainerEscape,
    DynamicCommand = "obfuscation.dynamic_command" => Obfuscation,
    BraceExpansion = "obfuscation.brace_expansion" => Obfuscation,
    Unparseable = "parse.unparseable" => Unparseable,
    ControlCharacter = "parse.control_character" => Unparseable,
    TooLong = "parse.too_long" => Unparseable,
    TooComplex = "parse.too_complex" => Unparseable,
    DestructivePermissionsRoot = "destructive.permissions_root" => Destructive,
    InterpreterShell = "interpreter.shell" => Interpreter,
    InterpreterSocket = "interpreter.socket" => Interpreter,
    OptionExecProgram = "option_exec.program" => OptionExec,
    OptionExecGitConfig = "option_exec.git_config" => OptionExec,
    OptionExecShellEscape = "option_exec.shell_escape" => OptionExec,
    OptionExecShellRunner = "option_exec.shell_runner" => OptionExec,
    SystemControlPower = "system_control.power" => SystemControl,
    SystemControlService = "system_control.service" => SystemControl,
    SystemControlKillAll = "system_control.kill_all" => SystemControl,
    SystemControlFirewall = "system_control.firewall" => SystemControl,
    PersistenceScheduler = "persistence.scheduler" => Persistence,
    PersistenceStartupFile = "persistence.startup_file" => Persistence,
    PersistenceService = "persistence.service" => Persistence,
    EnvInjectionLoader = "env_injection.loader" => EnvInjection,
    EnvInjectionInterpreter = "env_injection.interpreter" => EnvInjection,
    EnvInjectionProgram = "env_injection.program" => EnvInjection,
    EnvDumpCommand = "env_dump.command" => EnvDump,
    EnvDumpInterpreter = "env_dump.interpreter" => EnvDump,
    ExfiltrationUpload = "exfiltration.upload" => Exfiltration,
    ExfiltrationMetadata = "exfiltration.metadata" => Exfiltration,
    ExfiltrationGatewayPort = "exfiltration.gateway_port" => Exfiltration,
    ExfiltrationScan = "exfiltration.scan" => Exfiltration,
    ExfiltrationTunnel = "exfiltration.tunnel" => Exfiltration,
    ExfiltrationRawSocket = "exfiltration.raw_socket" => Exfiltration,
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One rule that matched, with what it matched (no secrets: command text
/// the model wrote itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: RuleId,
    pub detail: String,
}

/// A simple command found in the parse (nested ones included), in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolvedCommand {
    /// The argv as written, quotes removed; unknown words in source form.
    pub argv: Vec<String>,
    /// The canonical source of each word (quoting kept): what the approval
    /// hash covers, so `'$HOME'` and `$HOME` differ.
    pub words: Vec<String>,
    /// The program that finally runs after wrappers, when known.
    pub program: Option<String>,
    /// The wrappers in front of it, outermost first (`["sudo", "env"]`).
    pub wrappers: Vec<String>,
}

/// An allowed command, parsed.
#[derive(Clone, Debug)]
pub struct ParsedCommand {
    normalized: String,
    script: Script,
    commands: Vec<ResolvedCommand>,
}

impl ParsedCommand {
    /// The normalised command: what the exec tool must run.
    pub fn command(&self) -> &str {
        &self.normalized
    }

    pub fn script(&self) -> &Script {
        &self.script
    }

    /// Every simple command of the parse, nested ones included.
    pub fn commands(&self) -> &[ResolvedCommand] {
        &self.commands
    }

    /// The canonical text of the parse (see `render.rs`).
    pub fn canonical(&self) -> String {
        render::render(&self.script)
    }

    /// The approval binding of this command in `cwd` with `env`: covers the
    /// canonical text and the full argv (wrappers included) of every simple
    /// command. See [`approval_hash`].
    pub fn approval_hash(&self, cwd: &str, env: &[(String, String)]) -> String {
        approval::parsed_hash(self, cwd, env)
    }
}

/// A refused command.
#[derive(Clone, Debug)]
pub struct ShellDenied {
    /// The first rule that matched (in evaluation order).
    pub rule: RuleId,
    pub reason: String,
    /// Every rule that matched.
    pub findings: Vec<Finding>,
    /// The parse, when the command parsed (an operator approval in `ask`
    /// mode hashes it); `None` for unparseable input.
    pub parsed: Option<Box<ParsedCommand>>,
}

impl ShellDenied {
    pub fn flagged_groups(&self) -> Vec<RuleGroup> {
        let mut groups: Vec<RuleGroup> = self.findings.iter().map(|f| f.rule.group()).collect();
        groups.sort();
        groups.dedup();
        groups
    }

    pub fn decision(&self) -> ShellDecision {
        ShellDecision {
            allowed: false,
            rule: Some(self.rule),
            reason: self.reason.clone(),
            flagged_groups: self.flagged_groups(),
        }
    }

    /// `security.shell_unparseable` or `security.shell_denied`.
    pub fn code(&self) -> &'static str {
        if self.rule.group() == RuleGroup::Unparseable {
            "security.shell_unparseable"
        } else {
            "security.shell_denied"
        }
    }
}

impl std::fmt::Display for ShellDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused by rule {}: {}", self.rule, self.reason)
    }
}

impl From<&ShellDenied> for ToolError {
    fn from(d: &ShellDenied) -> Self {
        ToolError::new(d.code(), d.to_string())
    }
}

/// The policy's verdict as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShellDecision {
    pub allowed: bool,
    pub rule: Option<RuleId>,
    pub reason: String,
    pub flagged_groups: Vec<RuleGroup>,
}

fn refuse(rule: RuleId, reason: String) -> ShellDenied {
    ShellDenied {
        findings: vec![Finding {
            rule,
            detail: reason.clone(),
        }],
        rule,
        reason,
        parsed: None,
    }
}

/// Normalise, parse and judge `command`.
pub fn check(command: &str, ctx: &ShellPolicyContext) -> Result<ParsedCommand, ShellDenied> {
    let normalized = normalize::normalize(command).map_err(|e| {
        let rule = match e {
            normalize::NormalizeError::TooLong => RuleId::TooLong,
            _ => RuleId::ControlCharacter,
        };
        refuse(rule, e.to_string())
    })?;
    let script = parse::parse(&normalized).map_err(|e| {
        refuse(
            RuleId::Unparseable,
            format!("the command cannot be parsed exactly: {}", e.message),
        )
    })?;
    let (findings, commands) = analyze::analyze(&script, ctx);
    let parsed = ParsedCommand {
        normalized,
        script,
        commands,
    };
    match findings.first() {
        None => Ok(parsed),
        Some(first) => Err(ShellDenied {
            rule: first.rule,
            reason: first.detail.clone(),
            findings,
            parsed: Some(Box::new(parsed)),
        }),
    }
}

/// [`check`] as a [`ShellDecision`].
pub fn decide(command: &str, ctx: &ShellPolicyContext) -> ShellDecision {
    match check(command, ctx) {
        Ok(_) => ShellDecision {
            allowed: true,
            rule: None,
            reason: String::new(),
            flagged_groups: Vec::new(),
        },
        Err(d) => d.decision(),
    }
}

#[cfg(test)]
mod tests;
