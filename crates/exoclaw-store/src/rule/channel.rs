//! The rules of the channels' state above the SQL: sizes (refused as
//! `Invalid`, naming the field) and the stored status words.

use exoclaw_core::store::channel::{
    Failure, MAX_FILE_NAME_BYTES, MAX_KEY_BYTES, MAX_OUTBOX_FILE_BYTES, MAX_OUTBOX_TEXT_BYTES,
    NewOutbound, OutboxStatus,
};
use exoclaw_core::store::{StoreError, StoreResult};

/// The longest stored failure text (longer ones are cut).
const MAX_ERROR_BYTES: usize = 512;

pub(crate) fn check_key(field: &str, v: &str) -> StoreResult<()> {
    if v.is_empty() || v.len() > MAX_KEY_BYTES || v.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "{field} must be 1-{MAX_KEY_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

pub(crate) fn check_new(msg: &NewOutbound) -> StoreResult<()> {
    check_key("channel", &msg.channel)?;
    check_key("peer", &msg.peer)?;
    check_key("idempotency_key", &msg.idempotency_key)?;
    if msg.text.len() > MAX_OUTBOX_TEXT_BYTES {
        return Err(StoreError::Invalid(format!(
            "text is {} bytes, more than {MAX_OUTBOX_TEXT_BYTES}",
            msg.text.len()
        )));
    }
    if let Some(f) = &msg.file {
        let bad_name = f.name.is_empty()
            || f.name.len() > MAX_FILE_NAME_BYTES
            || f.name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\');
        if bad_name {
            return Err(StoreError::Invalid(format!(
                "file name must be 1-{MAX_FILE_NAME_BYTES} bytes without control characters \
                 or path separators"
            )));
        }
        if f.mime.as_ref().is_some_and(|m| {
            m.is_empty() || m.len() > MAX_FILE_NAME_BYTES || m.chars().any(char::is_control)
        }) {
            return Err(StoreError::Invalid(format!(
                "file mime must be 1-{MAX_FILE_NAME_BYTES} bytes without control characters"
            )));
        }
        if f.bytes.len() > MAX_OUTBOX_FILE_BYTES {
            return Err(StoreError::Invalid(format!(
                "file is {} bytes, more than {MAX_OUTBOX_FILE_BYTES}",
                f.bytes.len()
            )));
        }
    }
    Ok(())
}

/// The error text kept, cut at a character boundary.
pub(crate) fn error_text(f: &Failure) -> &str {
    let e = match f {
        Failure::Retry { error, .. } | Failure::Dead { error } => error.as_str(),
    };
    let mut end = e.len().min(MAX_ERROR_BYTES);
    while !e.is_char_boundary(end) {
        end -= 1;
    }
    &e[..end]
}

pub(crate) fn status(s: &str) -> StoreResult<OutboxStatus> {
    OutboxStatus::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("outbox status {s:?} is not known")))
}
