//! The one place a PostgreSQL error becomes a backend-neutral
//! [`StorageError`]. Every message names the server (never the password):
//! a team sharing one database needs to know which one is down.

use postgres::error::SqlState;

use crate::storage::error::StorageError;

/// Translates a failure while doing `what` on `target` (the masked
/// description of the server): an unreachable server or a transient
/// conflict is worth retrying, corrupt data is damaged, anything else is a
/// database failure.
pub fn failed(target: &str, what: &str) -> impl FnOnce(postgres::Error) -> StorageError {
    let context = format!("{target}: cannot {what}");
    move |e| classify(&context, &e)
}

pub fn classify(context: &str, e: &postgres::Error) -> StorageError {
    let detail = match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => e.to_string(),
    };
    let message = format!("{context}: {detail}");
    let Some(code) = e.code() else {
        if is_connection_failure(e) {
            let cause = std::error::Error::source(e).map(|c| format!(": {c}")).unwrap_or_default();
            return StorageError::Unavailable(format!("{context}: the server is unreachable: {e}{cause}"));
        }
        return StorageError::Database(message);
    };
    if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || *code == SqlState::QUERY_CANCELED
    {
        StorageError::Unavailable(message)
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        StorageError::Damaged(message)
    } else {
        StorageError::Database(message)
    }
}

/// True when the connection itself failed (refused, closed, timed out),
/// rather than a statement.
fn is_connection_failure(e: &postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    // The client's own words for a connection that failed without an I/O
    // error underneath (a timeout, a closed connection).
    let text = e.to_string();
    e.is_closed() || text.starts_with("error connecting") || text.starts_with("timeout waiting")
}
