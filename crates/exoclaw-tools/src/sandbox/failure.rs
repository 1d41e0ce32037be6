//! A setup step of the sandbox's init that failed, and the failure a test
//! can inject at a named step (`InitSpec::fail_at`).

use super::spec::InitSpec;

/// A setup step that failed, and why.
#[derive(Debug)]
pub(crate) struct Failure {
    pub step: String,
    pub detail: String,
}

impl Failure {
    pub(crate) fn new(step: &str, detail: impl Into<String>) -> Self {
        Self {
            step: step.to_owned(),
            detail: detail.into(),
        }
    }
}

/// `Err` when the spec asks this step to fail (tests of each setup step).
pub(crate) fn maybe_fail(spec: &InitSpec, step: &str) -> Result<(), Failure> {
    match &spec.fail_at {
        Some(s) if s == step => Err(Failure::new(step, "injected failure")),
        _ => Ok(()),
    }
}
