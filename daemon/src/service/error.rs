//! `ServiceError`: everything a request can fail with, and how each reaches
//! a client as an `ErrorInfo`. Every storage error maps to one protocol
//! kind here, once.

use milestones_protocol::{ErrorInfo, ErrorKind};

use crate::document::DocumentError;
use crate::migration::MigrationError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("milestone `{0}` does not exist")]
    NotFound(String),
    #[error("milestone `{milestone}` has no task `{task}`")]
    TaskNotFound { milestone: String, task: String },
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Migration(MigrationError),
    /// Other writers kept changing the milestone while this request tried
    /// to apply its change.
    #[error("milestone `{id}` kept changing while this request applied its change ({attempts} attempts); try again")]
    Contended { id: String, attempts: usize },
    /// The caller's role (`storage.access`) does not cover the request.
    #[error("{0}")]
    Denied(String),
}

impl From<crate::yaml::YamlError> for ServiceError {
    fn from(e: crate::yaml::YamlError) -> Self {
        ServiceError::Document(e.into())
    }
}

impl ServiceError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Document(DocumentError::invalid(message))
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::Document(DocumentError::invalid_field(field, message))
    }

    pub fn to_info(&self) -> ErrorInfo {
        let message = self.to_string();
        let info = |kind| ErrorInfo::new(kind, message.clone());
        match self {
            ServiceError::NotFound(_) => info(ErrorKind::NotFound).with_field("id"),
            ServiceError::TaskNotFound { .. } => info(ErrorKind::NotFound).with_field("task"),
            ServiceError::Document(e @ DocumentError::InvalidId { .. }) => {
                ErrorInfo { kind: ErrorKind::InvalidId, message, field: e.field().map(str::to_owned) }
            }
            ServiceError::Document(e @ DocumentError::TooLarge { .. }) => {
                ErrorInfo { kind: ErrorKind::TooLarge, message, field: e.field().map(str::to_owned) }
            }
            ServiceError::Document(e) => {
                ErrorInfo { kind: ErrorKind::InvalidInput, message, field: e.field().map(str::to_owned) }
            }
            ServiceError::Storage(e) => storage_info(e, message),
            ServiceError::Migration(e) if e.is_bad_input() => info(ErrorKind::InvalidInput),
            ServiceError::Migration(_) => info(ErrorKind::Storage),
            ServiceError::Contended { .. } => info(ErrorKind::Conflict).with_field("id"),
            ServiceError::Denied(_) => info(ErrorKind::PermissionDenied),
        }
    }
}

fn storage_info(e: &StorageError, message: String) -> ErrorInfo {
    match e {
        StorageError::AlreadyExists(_) => ErrorInfo::new(ErrorKind::AlreadyExists, message).with_field("id"),
        StorageError::Missing(_) => ErrorInfo::new(ErrorKind::NotFound, message).with_field("id"),
        StorageError::Cycle(_) => {
            ErrorInfo::new(ErrorKind::DependencyCycle, message).with_field("dependencies.requires")
        }
        StorageError::Invalid(_) | StorageError::Query(_) => ErrorInfo::new(ErrorKind::InvalidInput, message),
        StorageError::Stale { .. } | StorageError::Conflict(_) => ErrorInfo::new(ErrorKind::Conflict, message),
        StorageError::Unavailable(_) => ErrorInfo::new(ErrorKind::Unavailable, message),
        StorageError::Unreadable { .. } => ErrorInfo::new(ErrorKind::Storage, message).with_field("id"),
        StorageError::Io(_) | StorageError::Damaged(_) | StorageError::Database(_) => {
            ErrorInfo::new(ErrorKind::Storage, message)
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
