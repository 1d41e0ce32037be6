//! What a store call can fail with, phrased for what the caller can do.

/// What went wrong in a store call, phrased for what the caller can do.
/// Messages never include connection strings or passwords.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique key is already taken (a tenant id, a user name, an agent id).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database cannot be reached right now; retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The schema is not what this binary expects (outdated, newer, dirty).
    #[error("{0}")]
    Schema(String),
    /// The file or data is damaged.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// Input the store refuses (an invalid id, a value out of range).
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
