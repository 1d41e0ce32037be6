//! Mapping `sqlx` errors to [`StoreError`]s phrased for the caller, with
//! connection strings and passwords scrubbed out.
//!
//! Unique violations become `Conflict`, foreign-key violations `NotFound` (the
//! tenant, agent or session referred to does not exist), connection trouble
//! `Unavailable`, a damaged file `Corrupt`.

use exoclaw_core::store::StoreError;
use sqlx::error::ErrorKind;

/// Text put where a secret was.
const REDACTED: &str = "***";

/// SQLite primary result codes (the low byte of the extended code).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_NOMEM: i64 = 7;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_NOTADB: i64 = 26;

/// How [`sqlite`] names the database in a `Corrupt` message.
pub(crate) const SQLITE_DATABASE: &str = "the SQLite database";

/// Maps an error from the SQLite driver.
pub(crate) fn sqlite(err: sqlx::Error) -> StoreError {
    sqlite_in(SQLITE_DATABASE, err)
}

/// Maps an error from the SQLite driver; `what` names the database (a file).
pub(crate) fn sqlite_in(what: &str, err: sqlx::Error) -> StoreError {
    let sqlx::Error::Database(db) = err else {
        return common(err);
    };
    let message = db.message().to_owned();
    match db.kind() {
        ErrorKind::UniqueViolation => return StoreError::Conflict(message),
        ErrorKind::ForeignKeyViolation => return StoreError::NotFound,
        _ => {}
    }
    let primary = db
        .code()
        .and_then(|c| c.parse::<i64>().ok())
        .map_or(0, |c| c & 0xff);
    sqlite_primary(what, primary, &message)
}

/// Maps a result code (extended or primary) and message straight from
/// SQLite's C API, as [`sqlite`] maps the driver's.
pub(crate) fn sqlite_code(code: i64, message: String) -> StoreError {
    const CONSTRAINT_PRIMARYKEY: i64 = 1555;
    const CONSTRAINT_UNIQUE: i64 = 2067;
    const CONSTRAINT_FOREIGNKEY: i64 = 787;
    match code {
        CONSTRAINT_PRIMARYKEY | CONSTRAINT_UNIQUE => StoreError::Conflict(message),
        CONSTRAINT_FOREIGNKEY => StoreError::NotFound,
        _ => sqlite_primary(SQLITE_DATABASE, code & 0xff, &message),
    }
}

fn sqlite_primary(what: &str, primary: i64, message: &str) -> StoreError {
    match primary {
        SQLITE_BUSY | SQLITE_LOCKED => {
            StoreError::Unavailable(format!("the SQLite database is busy: {message}"))
        }
        SQLITE_NOMEM | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN => {
            StoreError::Unavailable(format!("SQLite: {message}"))
        }
        SQLITE_CORRUPT | SQLITE_NOTADB => StoreError::Corrupt(damaged(what, message)),
        _ => StoreError::Other(format!("SQLite: {message}")),
    }
}

/// Maps an error from the PostgreSQL driver. Server messages do not carry the
/// DSN, but anything URL-shaped is redacted all the same.
pub(crate) fn postgres(err: sqlx::Error) -> StoreError {
    let sqlx::Error::Database(db) = err else {
        return match common(err) {
            StoreError::Unavailable(m) => StoreError::Unavailable(redact_urls(&m)),
            StoreError::Other(m) => StoreError::Other(redact_urls(&m)),
            StoreError::Invalid(m) => StoreError::Invalid(redact_urls(&m)),
            other => other,
        };
    };
    let message = redact_urls(db.message());
    match db.kind() {
        ErrorKind::UniqueViolation => return StoreError::Conflict(message),
        ErrorKind::ForeignKeyViolation => return StoreError::NotFound,
        _ => {}
    }
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    match code.as_str() {
        // connection exceptions, insufficient resources, operator intervention,
        // serialization failure, deadlock: retrying may help
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => {
            StoreError::Unavailable(format!("PostgreSQL: {message}"))
        }
        "40001" | "40P01" => StoreError::Unavailable(format!("PostgreSQL: {message}")),
        "XX001" | "XX002" => StoreError::Corrupt(damaged("the PostgreSQL database", &message)),
        c if c.starts_with("28") => {
            StoreError::Other(format!("PostgreSQL refused the credentials: {message}"))
        }
        _ => StoreError::Other(format!("PostgreSQL: {message} (SQLSTATE {code})")),
    }
}

/// Errors that are not from the database server itself.
fn common(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".to_owned())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("the store is closed".to_owned()),
        sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable("the database worker thread crashed".to_owned())
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("cannot reach the database: {e}")),
        sqlx::Error::Tls(e) => StoreError::Unavailable(format!("TLS to the database failed: {e}")),
        // configuration errors may quote the connection string: say only what kind
        sqlx::Error::Configuration(_) => {
            StoreError::Invalid("the database connection settings are not valid".to_owned())
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(format!("a stored value cannot be read: {err}"))
        }
        other => StoreError::Other(other.to_string()),
    }
}

/// The wording of every "damaged" error.
pub(crate) fn damaged(what: &str, detail: &str) -> String {
    format!("{what} is damaged ({detail}); stop exoclaw and restore it from a backup")
}

/// A unique violation rephrased for the caller: `what` names the taken key.
pub(crate) fn conflict(what: impl FnOnce() -> String) -> impl FnOnce(StoreError) -> StoreError {
    move |e| match e {
        StoreError::Conflict(_) => StoreError::Conflict(what()),
        other => other,
    }
}

/// Replaces what follows every `://` (up to whitespace or a quote) with
/// `***`, so a DSN echoed by a driver never reaches a message.
pub(crate) fn redact_urls(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos);
        let after = &after[3..];
        let end = after
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`')
            .unwrap_or(after.len());
        out.push_str(before);
        out.push_str("://");
        out.push_str(REDACTED);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Removes each secret (a password, a whole DSN) from `message`.
pub(crate) fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut out = redact_urls(message);
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(secret, REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        let msg = "cannot connect to postgres://app:hunter2@db:5432/exo?sslmode=require: refused";
        let got = redact_urls(msg);
        assert!(!got.contains("hunter2"), "{got}");
        assert!(!got.contains("db:5432"), "{got}");
        assert_eq!(got, "cannot connect to postgres://*** refused");
    }

    #[test]
    fn urls_in_quotes_are_redacted_up_to_the_quote() {
        let got = redact_urls("bad url \"postgresql://u:p@h/d\" here");
        assert_eq!(got, "bad url \"postgresql://***\" here");
    }

    #[test]
    fn scrub_removes_passwords_and_urls() {
        let got = scrub(
            "auth failed for password=s3cretpw host=x",
            &["s3cretpw", "ab"],
        );
        assert_eq!(got, "auth failed for password=*** host=x");
    }

    #[test]
    fn messages_without_urls_are_unchanged() {
        assert_eq!(redact_urls("plain text"), "plain text");
    }
}
