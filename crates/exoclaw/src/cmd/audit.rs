//! `exoclaw security audit [--deep] [--fix] [--json]`: the checks of
//! [`crate::security::checks`], printed; any `fail` makes the exit status
//! non-zero.
//!
//! `--fix` repairs file permissions at once (never following symlinks), and
//! what a safe value repairs ([`crate::security::plan`]: configuration, the
//! gateway token) after confirmation or with `--yes` (`audit_fix.rs`); it is
//! idempotent and lists what it changed and what it left.

use crate::config::Settings;
use crate::security::checks;
use crate::security::finding::Severity;
use anyhow::Context as _;

pub struct Options {
    pub deep: bool,
    pub fix: bool,
    /// With `fix`: apply without asking.
    pub yes: bool,
    pub json: bool,
}

pub async fn run(settings: &Settings, opts: Options) -> anyhow::Result<bool> {
    let mut findings = checks::findings(settings, opts.deep).await;
    let mut changed = Vec::new();
    let mut left = Vec::new();
    if opts.fix {
        let (_, wrong) = checks::permission_checks(settings);
        for (path, mode) in &wrong {
            match checks::fix_mode(path, *mode) {
                Ok(()) => changed.push(format!("chmod {mode:04o} {}", path.display())),
                Err(e) => left.push(format!("{}: {e}", path.display())),
            }
        }
        let (remedies, not_mechanical) = crate::security::plan::plan(settings, &findings).await;
        let confirm = super::audit_fix::Confirm::from_flags(opts.yes, opts.json);
        let (fixed, unfixed) = super::audit_fix::apply(settings, remedies, confirm).await;
        let reload = !fixed.is_empty();
        changed.extend(fixed);
        left.extend(unfixed);
        left.extend(not_mechanical);
        // Re-check what was fixed, with the configuration as it now loads.
        let again = if reload {
            crate::config::load(Some(&settings.config_path), settings.env.process_only())
                .context("cannot reload the configuration after fixing it")?
        } else {
            settings.clone()
        };
        if reload || !wrong.is_empty() {
            findings = checks::findings(&again, opts.deep).await;
        }
    }
    let worst = findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Pass);
    if opts.json {
        let mut v = serde_json::json!({"findings": findings, "result": worst});
        if opts.fix {
            v["changed"] = serde_json::json!(changed);
            v["left"] = serde_json::json!(left);
        }
        crate::outln!("{v}");
    } else {
        for f in &findings {
            let tag = match f.severity {
                Severity::Pass => "pass",
                Severity::Warn => "warn",
                Severity::Fail => "FAIL",
            };
            if f.fix.is_empty() {
                crate::outln!("{tag}  {:<20} {}", f.id, f.reason);
            } else {
                crate::outln!("{tag}  {:<20} {}; fix: {}", f.id, f.reason, f.fix);
            }
        }
        if opts.fix {
            for c in &changed {
                crate::outln!("changed: {c}");
            }
            for l in &left {
                crate::outln!("left: {l}");
            }
        }
        crate::outln!(
            "result: {}",
            serde_json::to_value(worst)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("?")
        );
    }
    Ok(worst != Severity::Fail)
}
