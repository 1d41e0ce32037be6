//! The security audit (`GET /v1/security/audit`): every check with its
//! severity, reason and fix, and what `exoclaw security audit --fix` would
//! change. Read-only: the fixes edit the configuration file and the data
//! dir, which the operator applies on the host.

use super::super::super::security::{self, SecurityAudit};
use super::super::super::state::AppState;
use super::super::{Shell, UiError, render};
use crate::security::finding::Severity;
use askama::Template;
use axum::extract::State;
use axum::response::Html;

struct Row {
    id: &'static str,
    severity: &'static str,
    reason: String,
    fix: String,
}

#[derive(Template)]
#[template(path = "ui/security.html")]
struct Page {
    shell: Shell,
    result: &'static str,
    fails: usize,
    warns: usize,
    rows: Vec<Row>,
    audit: SecurityAudit,
}

fn name(s: Severity) -> &'static str {
    match s {
        Severity::Pass => "pass",
        Severity::Warn => "warn",
        Severity::Fail => "fail",
    }
}

pub async fn page(shell: Shell, state: State<AppState>) -> Result<Html<String>, UiError> {
    let audit = security::audit(state).await?.0;
    let count = |s: Severity| audit.findings.iter().filter(|f| f.severity == s).count();
    let mut rows: Vec<Row> = audit
        .findings
        .iter()
        .map(|f| Row {
            id: f.id,
            severity: name(f.severity),
            reason: f.reason.clone(),
            fix: f.fix.clone(),
        })
        .collect();
    // Failures first, then warnings, each in the audit's order.
    rows.sort_by_key(|r| match r.severity {
        "fail" => 0,
        "warn" => 1,
        _ => 2,
    });
    render(&Page {
        shell,
        result: name(audit.result),
        fails: count(Severity::Fail),
        warns: count(Severity::Warn),
        rows,
        audit,
    })
}
