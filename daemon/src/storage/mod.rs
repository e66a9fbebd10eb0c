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
mod database;
mod file;
mod hybrid;
mod sqlite;
pub mod tree;

use std::path::PathBuf;

use crate::config::StorageConfig;
use crate::layout::ProjectLayout;
use std::sync::Arc;

use milestones_protocol::{Analytics, Map, Page, Problem, Query};

pub use self::atomic::write_atomically as write_file_atomically;
pub use self::database::SqliteStore;
pub use self::file::FileStore;
pub use self::hybrid::{remove_database, HybridStore};
pub use self::sqlite::check_storable;
use crate::event_log::AuditEvent;
use crate::graph::DependencyGraph;

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
    /// A document this backend cannot store as it is.
    #[error("{0}")]
    Invalid(String),
    /// The file was changed outside the daemon since the store last read it
    /// (and not yet taken in, or it does not load): writing would lose
    /// someone's edit.
    #[error("{0}")]
    Conflict(String),
    #[error("{context}: {source}")]
    Sqlite { context: String, source: rusqlite::Error },
}

impl StorageError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io { action, path: path.into(), source }
    }

    pub fn sqlite(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StorageError {
        let context = context.into();
        move |source| StorageError::Sqlite { context, source }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// What every backend provides. Implementations are internally synchronised;
/// callers serialise writes themselves (the service holds one write lock), so
/// a backend never sees two writes at once.
pub trait Storage: Send + Sync + 'static {
    /// `file`, `hybrid` or `database`.
    fn backend_name(&self) -> &'static str;

    /// The database engine behind the `database` backend (`sqlite`).
    fn database_kind(&self) -> Option<&'static str> {
        None
    }

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

    /// Every id. The default walks the documents; SQL backends read one
    /// column.
    fn ids(&self) -> StorageResult<Vec<String>> {
        let mut ids = Vec::new();
        self.for_each(&mut |d| ids.extend(crate::document::id(d).map(str::to_owned)))?;
        Ok(ids)
    }

    /// The whole dependency graph. SQL backends build it from their
    /// dependency table without reading documents.
    fn dependency_graph(&self) -> StorageResult<DependencyGraph> {
        let mut graph = DependencyGraph::default();
        self.for_each(&mut |d| graph.add_document(d))?;
        Ok(graph)
    }

    /// What `id` requires, each with the milestone whose document declares
    /// the edge (`id` itself through `requires`, another through `enables`).
    /// Lets a write check for cycles around itself without reading the whole
    /// graph. The default walks every document.
    fn requirements(&self, id: &str) -> StorageResult<Vec<Requirement>> {
        let mut found = Vec::new();
        self.for_each(&mut |d| found.extend(Requirement::declared_by(d).filter(|(from, _)| from == id).map(|(_, r)| r)))?;
        Ok(found)
    }

    /// Analytics over every document. The default walks them all; SQL
    /// backends aggregate in SQL.
    fn analytics(&self, today: chrono::NaiveDate) -> StorageResult<Analytics> {
        let mut builder = crate::analytics::AnalyticsBuilder::new(today);
        let mut graph = DependencyGraph::default();
        self.for_each(&mut |d| {
            builder.add_document(d);
            graph.add_document(d);
        })?;
        Ok(builder.finish(&graph))
    }

    /// Makes the backend's files complete on their own (an SQLite
    /// checkpoint), before they are moved.
    fn flush(&self) -> StorageResult<()> {
        Ok(())
    }

    /// Writes a consistent copy of what only this backend holds (a
    /// database file) into the backup folder `dir`. The milestone files and
    /// configuration are backed up by the caller.
    fn backup_to(&self, _dir: &std::path::Path) -> StorageResult<()> {
        Ok(())
    }

    /// Records an audit event where the backend keeps them (the
    /// `milestone_events` table); the JSONL log is written regardless.
    fn record_event(&self, _event: &AuditEvent) {}

    /// Problems found in the stored data itself: files that do not parse,
    /// files whose name and id disagree.
    fn problems(&self) -> Vec<Problem>;

    // ---- outside edits (the file watcher) ----

    /// True when the YAML files are the source of truth (file, hybrid); the
    /// database backend imports a dropped-in file and removes it.
    fn keeps_files(&self) -> bool {
        false
    }

    /// Where the file behind `id` is and the SHA-256 of its bytes, as this
    /// store last wrote or read it: an event on a file with that hash is
    /// the store's own write (or no change) and is not taken in again.
    fn known_file(&self, _id: &str) -> StorageResult<Option<(crate::document::Folder, String)>> {
        Ok(None)
    }

    /// Takes in a document someone wrote to a file directly.
    fn absorb(&self, file: &tree::LoadedFile) -> StorageResult<()>;

    /// Someone removed the file of `id` and none is left in either folder.
    /// Returns true when the milestone was dropped.
    fn absorb_removal(&self, _id: &str) -> StorageResult<bool> {
        Ok(false)
    }

    /// Records (or, with `None`, clears) the problem with one file, named
    /// relative to the project root.
    fn note_file_problem(&self, _file: &str, _problem: Option<Problem>) {}
}

/// Replaces the problems recorded for `file` with `problem`.
fn note_problem(problems: &mut Vec<Problem>, file: &str, problem: Option<Problem>) {
    problems.retain(|p| p.file.as_deref() != Some(file));
    problems.extend(problem);
    problems.sort_by(|a, b| a.file.cmp(&b.file));
}

/// One edge out of a milestone, and who declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub to: String,
    pub declared_by: String,
}

impl Requirement {
    /// The edges a document declares, as (from, requirement).
    pub fn declared_by(doc: &Map) -> impl Iterator<Item = (String, Requirement)> {
        let by = crate::document::id(doc).unwrap_or_default().to_owned();
        crate::graph::declared_edges(doc)
            .into_iter()
            .map(move |e| (e.from, Requirement { to: e.to, declared_by: by.clone() }))
    }
}

/// Opens the backend `config/storage-backend.txt` names.
pub fn open(layout: &ProjectLayout, config: &StorageConfig, backend: &str) -> StorageResult<Arc<dyn Storage>> {
    Ok(match backend {
        "file" => Arc::new(FileStore::open(layout.clone())?),
        "hybrid" => Arc::new(HybridStore::open(layout.clone(), config.events_in_database)?),
        "database" => match config.database_type.as_str() {
            "sqlite" => Arc::new(SqliteStore::open(&layout.enterprise_db())?),
            other => {
                return Err(StorageError::Invalid(format!(
                    "storage-config.yaml names the `{other}` database, which this milestoned {} does not provide (it has: sqlite)",
                    env!("CARGO_PKG_VERSION")
                )))
            }
        },
        other => {
            return Err(StorageError::Invalid(format!(
                "config/storage-backend.txt names the `{other}` backend; the backends are file, hybrid and database"
            )))
        }
    })
}
