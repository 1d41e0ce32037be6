//! The shell policy as the command tools' gate ([`CommandCheck`]): a command
//! the policy allows runs; one it refuses is refused (`full`), waits for an
//! operator's approval bound to its exact hash (`ask`: resolved argv, cwd
//! and environment, so a wrapper never inherits it), or runs anyway inside
//! the sandbox (`off`). A command that normalisation changes, or that cannot
//! be parsed, is refused in every mode.

use super::{ShellPolicyContext, check};
use crate::exec::{CommandCheck, CommandRequest};
use async_trait::async_trait;
use exoclaw_core::tool::{ApprovalNeed, Check, ToolContext, ToolError};
use std::path::PathBuf;

/// `tools.exec_approval.security`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellMode {
    /// Refuse what the policy denies.
    Full,
    /// Ask an operator about what the policy denies.
    Ask,
    /// Run it anyway (the sandbox still applies).
    Off,
}

/// The shell policy of the command tools.
pub struct ShellGate {
    pub mode: ShellMode,
    /// The gateway's data dir, which commands must not reach.
    pub data_dir: PathBuf,
    /// The gateway's listening port, which commands must not reach on
    /// loopback.
    pub gateway_port: Option<u16>,
}

#[async_trait]
impl CommandCheck for ShellGate {
    async fn check(&self, ctx: &ToolContext, req: &CommandRequest<'_>) -> Result<Check, ToolError> {
        let policy_ctx = ShellPolicyContext {
            data_dir: Some(self.data_dir.clone()),
            workspace: Some(ctx.workspace.clone()),
            home: Some(req.cwd.to_owned()),
            gateway_port: self.gateway_port,
        };
        let denied = match check(req.command, &policy_ctx) {
            // What was checked is what runs: a command that normalisation
            // changes (zero-width or compatibility characters) is refused
            // rather than run in a form the policy did not see.
            Ok(parsed) if parsed.command() != req.command => {
                return Err(ToolError::new(
                    "security.shell_unparseable",
                    "the command changes under Unicode normalisation; send it in plain form",
                ));
            }
            Ok(_) => return Ok(Check::Allow),
            Err(d) => d,
        };
        let unparseable = denied.code() == "security.shell_unparseable";
        match self.mode {
            ShellMode::Off if !unparseable => Ok(Check::Allow),
            ShellMode::Ask if !unparseable => match &denied.parsed {
                Some(p) => Ok(Check::NeedsApproval(ApprovalNeed {
                    rule: denied.rule.to_string(),
                    shown: req.command.to_owned(),
                    cwd: req.cwd.to_owned(),
                    binding: p.approval_hash(req.cwd, req.env),
                })),
                None => Err(ToolError::from(&denied)),
            },
            _ => {
                tracing::warn!(
                    event = "security.shell_denied",
                    rule = %denied.rule,
                    "a command was refused by the shell policy"
                );
                Err(ToolError::from(&denied))
            }
        }
    }
}
