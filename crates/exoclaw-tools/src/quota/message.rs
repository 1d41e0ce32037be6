//! The words of the workspace quota: refusals that name whose quota
//! (the user's or the tenant's), the limit and the usage, in units people
//! read, and never a host path.

use super::measure::{MeasureError, Usage};

/// The error code of every refusal for lack of quota.
pub const QUOTA_EXCEEDED: &str = "tool.quota_exceeded";
use exoclaw_core::tool::ToolError;

/// Whose quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    User,
    Tenant,
}

impl Scope {
    pub(super) fn subject(self) -> &'static str {
        match self {
            Self::User => "the user workspace",
            Self::Tenant => "the tenant's workspaces",
        }
    }

    pub(super) fn holds(self) -> &'static str {
        match self {
            Self::User => "holds",
            Self::Tenant => "hold",
        }
    }
}

/// Which limit, and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Limit {
    Bytes(u64),
    Files(u64),
}

/// `1.0 GiB of 1.0 GiB`, `12 of 10 files`.
pub(super) fn describe(limit: Limit, usage: Usage, partial: bool) -> String {
    let at_least = if partial { "at least " } else { "" };
    match limit {
        Limit::Bytes(max) => format!(
            "{at_least}{} of {}",
            human_bytes(usage.bytes),
            human_bytes(max)
        ),
        Limit::Files(max) => format!("{at_least}{} of {max} files", usage.files),
    }
}

/// The refusal, naming whose quota, the limit and the usage.
pub(super) fn exceeded(
    scope: Scope,
    limit: Limit,
    usage: Usage,
    partial: bool,
    adds: Option<i64>,
) -> ToolError {
    let more = match (limit, adds) {
        (Limit::Bytes(_), Some(n)) => {
            format!(" and this write adds {}", human_bytes(n.unsigned_abs()))
        }
        (Limit::Files(_), Some(n)) => format!(" and this write adds {}", n.unsigned_abs()),
        (_, None) => String::new(),
    };
    let fix = match limit {
        Limit::Bytes(_) => "delete or truncate files first",
        Limit::Files(_) => "delete files first",
    };
    ToolError::new(
        QUOTA_EXCEEDED,
        format!(
            "workspace quota exceeded: {} {} {}{more}; {fix}",
            scope.subject(),
            scope.holds(),
            describe(limit, usage, partial)
        ),
    )
}

/// `1536` -> `1.5 KiB`; below 1 KiB, `N bytes`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub(super) fn unavailable() -> ToolError {
    ToolError::failed("the workspace quota ledger is unavailable")
}

pub(super) fn unmeasurable(scope: Scope, e: &MeasureError) -> ToolError {
    let what = scope.subject();
    let why = match (scope, e) {
        (_, MeasureError::Moved) => "it kept changing while it was measured".to_owned(),
        // Another user's paths are not this user's business.
        (Scope::Tenant, MeasureError::Unreadable { errno, .. }) => {
            format!("a directory in them is not readable ({errno})")
        }
        (Scope::User, MeasureError::Unreadable { rel, errno }) => {
            format!("{rel:?} is not readable ({errno}); make it readable again or ask the operator")
        }
    };
    ToolError::failed(format!("workspace quota: cannot measure {what}: {why}"))
}
