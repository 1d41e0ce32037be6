//! `GET /v1/security/audit`: what `exoclaw security audit` finds on this
//! gateway (its configuration, data dir, store, backups, audit chain and
//! owners) and what `--fix` would change, without changing anything: the
//! checks of the CLI over the running gateway's settings.
//! Owners only: it describes the whole gateway, not one tenant.

use super::error::ApiError;
use super::state::AppState;
use crate::security::finding::{Finding, Severity};
use crate::security::{checks, plan};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

/// One change `--fix` would make.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FixView {
    /// The finding it repairs.
    pub id: String,
    /// What it changes (`set gateway.rate_limit_rpm to 60`).
    pub change: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SecurityAudit {
    /// Every check, as `exoclaw security audit --json` lists them.
    pub findings: Vec<Finding>,
    /// The worst severity: `pass`, `warn` or `fail`.
    pub result: Severity,
    /// What `exoclaw security audit --fix` would change.
    pub fixes: Vec<FixView>,
    /// Findings `--fix` leaves, each with why (`id: reason`).
    pub left: Vec<String>,
}

/// The security audit of this gateway and what `--fix` would change.
#[utoipa::path(get, path = "/v1/security/audit", tag = "status",
    responses((status = 200, description = "The findings and the fix plan", body = SecurityAudit)))]
pub async fn audit(State(state): State<AppState>) -> Result<Json<SecurityAudit>, ApiError> {
    let settings = &*state.runtime.settings;
    let findings = checks::findings(settings, false).await;
    let (_, wrong) = checks::permission_checks(settings);
    let (remedies, left) = plan::plan(settings, &findings).await;
    let mut fixes: Vec<FixView> = wrong
        .iter()
        .map(|(path, mode)| FixView {
            id: "fs.permissions".to_owned(),
            change: format!("chmod {mode:04o} {}", path.display()),
        })
        .collect();
    fixes.extend(remedies.into_iter().map(|r| FixView {
        id: r.id.to_owned(),
        change: r.what,
    }));
    let result = findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Pass);
    Ok(Json(SecurityAudit {
        findings,
        result,
        fixes,
        left,
    }))
}
