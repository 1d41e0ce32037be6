//! A hardening finding: what `exoclaw security audit` reports and what
//! `--fix` ([`super::plan`]) repairs, with a stable id, a severity, the reason
//! and the fix.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Pass,
    Warn,
    Fail,
}

/// One check's result.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// Stable, e.g. `gateway.rate_limit`.
    #[schema(value_type = String)]
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
