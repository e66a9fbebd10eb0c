//! The one place an SQLite error becomes a backend-neutral [`StorageError`].

use crate::storage::error::StorageError;

/// Translates an SQLite failure into the backend-neutral error, once, here:
/// a busy or locked database is worth retrying, a corrupt one is damaged,
/// a full disk says so plainly, anything else is a database failure named
/// by `context`.
pub fn failed(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StorageError {
    let context = context.into();
    move |e| {
        let message = format!("{context}: {e}");
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StorageError::Unavailable(message)
            }
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                StorageError::Damaged(message)
            }
            // In the words the file backends use for the same thing.
            Some(rusqlite::ErrorCode::DiskFull) => StorageError::Database(format!(
                "{context}: no space left on device (the disk is full); nothing was changed"
            )),
            _ => StorageError::Database(message),
        }
    }
}
