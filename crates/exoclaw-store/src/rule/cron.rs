//! The rules of cron jobs above the SQL: sizes (refused as `Invalid`,
//! naming the field) and the stored words. The schedule itself is checked
//! by the gateway with the core schedule primitive before it gets here.

use exoclaw_core::store::cron::{
    CronJobUpdate, Delivery, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_TARGET_BYTES, MissedPolicy,
    NewCronJob,
};
use exoclaw_core::store::{StoreError, StoreResult};

/// A new job: named, a message, an agent id that is a slug, sizes in range.
pub(crate) fn check_new_job(job: &NewCronJob) -> StoreResult<()> {
    super::check_slug("agent", job.agent_id.as_str())?;
    check_name(&job.name)?;
    check_text(
        "schedule",
        &job.schedule,
        exoclaw_core::schedule::MAX_TEXT_LEN,
    )?;
    check_message(&job.message)?;
    check_delivery(&job.delivery)?;
    check_jitter(job.jitter_ms)?;
    check_text("created_by", &job.created_by, MAX_NAME_BYTES)
}

/// The fields an update sets, by the same rules.
pub(crate) fn check_update(u: &CronJobUpdate) -> StoreResult<()> {
    if let Some(n) = &u.name {
        check_name(n)?;
    }
    if let Some(s) = &u.schedule {
        check_text("schedule", s, exoclaw_core::schedule::MAX_TEXT_LEN)?;
    }
    if let Some(m) = &u.message {
        check_message(m)?;
    }
    if let Some(d) = &u.delivery {
        check_delivery(d)?;
    }
    if let Some(j) = u.jitter_ms {
        check_jitter(j)?;
    }
    Ok(())
}

fn check_name(name: &str) -> StoreResult<()> {
    check_text("name", name, MAX_NAME_BYTES)
}

fn check_message(message: &str) -> StoreResult<()> {
    check_text("message", message, MAX_MESSAGE_BYTES)
}

fn check_delivery(d: &Delivery) -> StoreResult<()> {
    match d.target() {
        Some(t) => check_text("delivery target", &t, MAX_TARGET_BYTES),
        None => Ok(()),
    }
}

fn check_jitter(ms: i64) -> StoreResult<()> {
    if ms < 0 {
        return Err(StoreError::Invalid(
            "jitter must not be negative".to_owned(),
        ));
    }
    Ok(())
}

fn check_text(field: &str, value: &str, max: usize) -> StoreResult<()> {
    if value.trim().is_empty() {
        return Err(StoreError::Invalid(format!(
            "the {field} must not be blank"
        )));
    }
    if value.len() > max {
        return Err(StoreError::Invalid(format!(
            "the {field} is {} bytes, at most {max}",
            value.len()
        )));
    }
    Ok(())
}

/// A stored row's delivery, missed-run policy: refused as corrupt when the
/// words do not fit.
pub(crate) fn parts(
    delivery: &str,
    target: Option<&str>,
    missed: &str,
) -> StoreResult<(Delivery, MissedPolicy)> {
    let d = Delivery::from_parts(delivery, target).ok_or_else(|| {
        StoreError::Corrupt(format!("cron job delivery {delivery:?} with its target"))
    })?;
    let m = MissedPolicy::parse(missed)
        .ok_or_else(|| StoreError::Corrupt(format!("cron job missed-run policy {missed:?}")))?;
    Ok((d, m))
}
