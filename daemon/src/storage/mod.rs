//! The storage interface: the seam between the server (and later the scale
//! monitor and the migrator) and the backends. Nothing above this module
//! names a backend type; it holds a `dyn Storage`.
//!
//! The interface is record-level on purpose: it stores, finds and queries
//! whole documents. The milestone rules (ids, statuses, tasks, dependencies)
//! live once, in `service`, above it, so every backend enforces the same
//! rules by construction. Queries and analytics go through the interface so
//! that database backends can answer them in SQL.

mod atomic;
mod file;

use std::path::PathBuf;
use std::sync::Arc;

use milestones_protocol::{Analytics, Map, Page, Problem, Query};

pub use self::file::FileStore;

/// A stored document: shared, immutable, cheap to hand to many readers.
pub type Doc = Arc<Map>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot {action} {}: {source}", .path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("milestone `{0}` already exists")]
    AlreadyExists(String),
    #[error("milestone `{0}` does not exist")]
    Missing(String),
    #[error("invalid query: {0}")]
    Query(String),
}

impl StorageError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io { action, path: path.into(), source }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// What every backend provides. Implementations are internally synchronised;
/// callers serialise writes themselves (the service holds one write lock), so
/// a backend never sees two writes at once.
pub trait Storage: Send + Sync + 'static {
    /// `file`, `hybrid` or `database`.
    fn backend_name(&self) -> &'static str;

    /// True when reads are answered from memory without blocking, so the
    /// server may call [`Storage::get`] and [`Storage::query`] on an async
    /// worker thread instead of paying for a hop to the blocking pool.
    fn reads_in_memory(&self) -> bool;

    fn get(&self, id: &str) -> StorageResult<Option<Doc>>;

    fn count(&self) -> StorageResult<u64>;

    /// Stores a new document; fails with `AlreadyExists` if the id is taken.
    fn insert(&self, doc: Map) -> StorageResult<Doc>;

    /// Replaces an existing document (moving it between `active/` and
    /// `completed/` when its status says so).
    fn replace(&self, doc: Map) -> StorageResult<Doc>;

    /// Removes a document for good. Returns false when it did not exist.
    fn remove(&self, id: &str) -> StorageResult<bool>;

    /// Runs a query: filters, text, order, page.
    fn query(&self, query: &Query) -> StorageResult<Page>;

    /// Visits every document (validation, the dependency graph, analytics).
    fn for_each(&self, visit: &mut dyn FnMut(&Map)) -> StorageResult<()>;

    /// Analytics over every document. The default walks them all; database
    /// backends answer in SQL.
    fn analytics(&self, today: chrono::NaiveDate) -> StorageResult<Analytics> {
        let mut docs = Vec::new();
        self.for_each(&mut |d| docs.push(d.clone()))?;
        Ok(crate::analytics::compute(docs.iter(), today))
    }

    /// Problems found in the stored data itself: files that do not parse,
    /// files whose name and id disagree.
    fn problems(&self) -> Vec<Problem>;
}
