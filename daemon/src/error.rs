//! The daemon's error type, and how it reaches a client as an `ErrorInfo`.

use milestones_protocol::{ErrorInfo, ErrorKind};

use crate::migration::MigrationError;
use crate::storage::StorageError;

/// Everything a request can fail with. Each variant maps to one protocol
/// error kind, so clients (and `msctl`'s exit codes) can tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("milestone `{0}` does not exist")]
    NotFound(String),
    #[error("milestone `{milestone}` has no task `{task}`")]
    TaskNotFound { milestone: String, task: String },
    #[error("invalid id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str, field: &'static str },
    #[error("{message}")]
    Invalid { message: String, field: Option<String> },
    #[error("milestone `{0}` already exists")]
    AlreadyExists(String),
    #[error("refused: the change would create a dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Migration(MigrationError),
}

impl ServiceError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Invalid { message: message.into(), field: None }
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::Invalid { message: message.into(), field: Some(field.into()) }
    }

    pub fn to_info(&self) -> ErrorInfo {
        let message = self.to_string();
        match self {
            ServiceError::NotFound(_) => ErrorInfo::new(ErrorKind::NotFound, message).with_field("id"),
            ServiceError::TaskNotFound { .. } => ErrorInfo::new(ErrorKind::NotFound, message).with_field("task"),
            ServiceError::InvalidId { field, .. } => ErrorInfo::new(ErrorKind::InvalidId, message).with_field(*field),
            ServiceError::Invalid { field, .. } => ErrorInfo { kind: ErrorKind::InvalidInput, message, field: field.clone() },
            ServiceError::AlreadyExists(_) => ErrorInfo::new(ErrorKind::AlreadyExists, message).with_field("id"),
            ServiceError::Cycle(_) => {
                ErrorInfo::new(ErrorKind::DependencyCycle, message).with_field("dependencies.requires")
            }
            ServiceError::Storage(StorageError::Query(_) | StorageError::Invalid(_)) => {
                ErrorInfo::new(ErrorKind::InvalidInput, message)
            }
            ServiceError::Storage(StorageError::Conflict(_)) => ErrorInfo::new(ErrorKind::Busy, message),
            ServiceError::Storage(_) => ErrorInfo::new(ErrorKind::Storage, message),
            ServiceError::Migration(e) if e.is_bad_input() => ErrorInfo::new(ErrorKind::InvalidInput, message),
            ServiceError::Migration(_) => ErrorInfo::new(ErrorKind::Storage, message),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
