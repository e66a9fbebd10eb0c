//! `StorageError`: what a backend can fail with, in words that mean the same
//! on every backend. No backend library's error type appears here; each
//! backend translates its own (see `sqlite::failed`).

use crate::atomic::FileError;
use crate::query::QueryError;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The disk refused: a read, write, rename or sync failed.
    #[error(transparent)]
    Io(#[from] FileError),
    #[error("milestone `{0}` already exists")]
    AlreadyExists(String),
    #[error("milestone `{0}` does not exist")]
    Missing(String),
    /// The milestone's file exists but cannot be read or parsed: it is not
    /// missing, and its id stays taken.
    #[error("{message}")]
    Unreadable { id: String, message: String },
    /// Someone else wrote the milestone since it was read (the revision the
    /// write stated is not the stored one). Read again and re-apply.
    #[error("milestone `{id}` was changed by another writer since it was read")]
    Stale { id: String },
    /// The milestone's file was changed outside milestoned and that change
    /// is not taken in yet (or does not load): writing would lose it.
    #[error("{0}")]
    Conflict(String),
    /// The change would close a cycle of dependencies.
    #[error("refused: the change would create a dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A document or request this backend cannot accept as it is.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The backend cannot answer now but may soon (a busy or locked
    /// database, a server that is down): worth retrying.
    #[error("{0}; try again shortly")]
    Unavailable(String),
    /// The backend's own data is damaged or foreign (a corrupt database).
    #[error("{0}")]
    Damaged(String),
    /// Any other failure inside a database.
    #[error("{0}")]
    Database(String),
}

impl StorageError {
    pub fn io(action: &'static str, path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io(FileError::new(action, path, source))
    }

    /// True when the same request may well succeed if made again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Stale { .. } | StorageError::Unavailable(_))
    }

    /// True when the request or the data is at fault, not the backend.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, StorageError::Invalid(_) | StorageError::Query(_) | StorageError::Cycle(_))
    }
}

pub type StorageResult<T> = Result<T, StorageError>;
