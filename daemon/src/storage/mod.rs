//! The storage interface: the seam between the service (and the migrator,
//! and later the scale monitor) and the backends. Nothing outside this
//! module names a concrete store or a backend's files: a [`BackendSpec`]
//! opens, builds and retires backends, and everyone else holds a
//! `dyn Storage`.
//!
//! The interface is record-level: it stores, finds and queries whole
//! documents, each with a [`Revision`]. Writes are compare-and-swap (a
//! replacement states the revision it read and fails with
//! [`StorageError::Stale`] when another writer came in between), inserts
//! fail when the id is taken, and the dependency-cycle check runs inside
//! the write, so correctness never rests on a lock in the caller: several
//! service instances may share one database. The milestone rules (ids,
//! statuses, tasks) live once, in `service`, above it.

#[cfg(test)]
mod common_lists;
mod cycles;
mod database;
mod derived;
mod error;
mod file;
mod file_manifest;
mod hybrid;
mod ids;
mod interface;
mod list_index;
mod packed;
mod postgres;
mod record;
mod spec;
mod sqlite;
pub mod tree;
mod work_nodes;

pub use self::error::{StorageError, StorageResult};
pub use self::ids::IdAllocator;
pub use self::interface::{BackendKind, ChangeSink, FileKeeping, Requirement, Revision, SharedChange, Storage, Stored};
pub use self::spec::{BackendSpec, Built};
pub use crate::database_url::DatabaseUrl;
pub use crate::document::Doc;
