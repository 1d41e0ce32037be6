//! A hardening finding: what `exoclaw security audit` reports and what
//! `--fix` (`audit_fix.rs`) repairs, with a stable id, a severity, the reason
//! and the fix.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Pass,
    Warn,
    Fail,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub reason: String,
    pub fix: String,
}

pub fn pass(id: &'static str, reason: impl Into<String>) -> Finding {
    Finding {
        id,
        severity: Severity::Pass,
        reason: reason.into(),
        fix: String::new(),
    }
}

pub fn finding(
    id: &'static str,
    severity: Severity,
    reason: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        id,
        severity,
        reason: reason.into(),
        fix: fix.into(),
    }
}
