//! The interface every backend implements ([`Storage`], and
//! [`FileKeeping`] for those whose truth is the YAML files), the types it
//! speaks in, and the little both need. See the module docs of `storage`.

use std::sync::Arc;

use milestones_protocol::{
    Analytics, BackendTarget, DatabaseHealth, DatabaseKind, EventKind, Map, Page, Problem, Query, Value,
};

use super::error::{StorageError, StorageResult};
use super::tree;
use crate::document::{Doc, Folder};
use crate::event_log::AuditEvent;
use crate::graph::DependencyGraph;

/// A stored document and the revision it was stored at.
#[derive(Debug, Clone)]
pub struct Stored {
    pub doc: Doc,
    pub revision: Revision,
}

/// Which version of a milestone a reader saw. Opaque to callers: they hand
/// it back with a write. The file-keeping backends use the SHA-256 of the
/// file's bytes, the SQL backends a counter column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision(String);

impl Revision {
    pub(super) fn counter(n: i64) -> Self {
        Revision(n.to_string())
    }

    pub(super) fn content(hash: &str) -> Self {
        Revision(hash.to_owned())
    }

    /// A revision as a backend stored it (a counter or a hash, as text).
    pub(super) fn from_text(text: String) -> Self {
        Revision(text)
    }

    /// The counter, for SQL backends; `None` for one another backend made.
    pub(super) fn as_counter(&self) -> Option<i64> {
        self.0.parse().ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A content hash is long; its head tells versions apart in logs.
        f.write_str(&self.0[..self.0.len().min(12)])
    }
}

/// A starting revision counter for a new row: random, 40 bits (positive,
/// with room to count up), so a milestone removed and created again under
/// the same id never repeats a revision a writer may still hold.
pub(super) fn fresh_counter() -> i64 {
    use std::hash::{BuildHasher, Hasher};
    // Each RandomState is keyed afresh from a randomly seeded source.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    (hasher.finish() >> 24) as i64
}

/// What every backend provides. Implementations are internally synchronised
/// and safe to call from many threads; none relies on its caller to
/// serialise writes.
pub trait Storage: Send + Sync + 'static {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// True when reads are answered from memory without blocking, so the
    /// server may call [`Storage::get`] and [`Storage::query`] on an async
    /// worker thread instead of paying for a hop to the blocking pool.
    fn reads_in_memory(&self) -> bool;

    /// The milestone `id` and its revision; `None` when there is none, and
    /// [`StorageError::Unreadable`] when its file exists but cannot be read.
    fn get(&self, id: &str) -> StorageResult<Option<Stored>>;

    /// [`Storage::get`] for many ids at once (a migration's catch-up): one
    /// answer per id, in order. The outer error fails the whole read; the
    /// default asks for each in turn, a database server in one round trip.
    fn get_many(&self, ids: &[String]) -> StorageResult<Vec<StorageResult<Option<Stored>>>> {
        Ok(ids.iter().map(|id| self.get(id)).collect())
    }

    fn count(&self) -> StorageResult<u64>;

    /// How many bytes the milestones take where this backend keeps them
    /// (files, a database), for the scale monitor's data volume.
    fn data_bytes(&self) -> StorageResult<u64>;

    /// Stores a new document, atomically: [`StorageError::AlreadyExists`]
    /// when the id is taken (by a stored milestone or by a file that does
    /// not load), [`StorageError::Cycle`] when its dependencies would close
    /// a cycle.
    fn insert(&self, doc: Map) -> StorageResult<Stored>;

    /// Replaces the stored document whose revision is `expected` (moving its
    /// file between `active/` and `completed/` when its status says so):
    /// [`StorageError::Stale`] when it has changed since,
    /// [`StorageError::Missing`] when it is gone, [`StorageError::Cycle`]
    /// when changed dependencies would close a cycle.
    fn replace(&self, doc: Map, expected: &Revision) -> StorageResult<Stored>;

    /// Removes a document for good. Returns false when it did not exist.
    fn remove(&self, id: &str) -> StorageResult<bool>;

    /// Stores documents copied from another backend, as they are (a
    /// migration's copy and catch-up: the source already checked them),
    /// replacing any this backend holds, in as few transactions and syncs
    /// as the backend can.
    fn import(&self, docs: &[Doc]) -> StorageResult<()>;

    /// Runs a query: filters, text, order, page. A stored record that
    /// cannot be read back is left out (and logged): one bad record must
    /// not break every list; `validate` names it.
    fn query(&self, query: &Query) -> StorageResult<Page>;

    /// [`Storage::query`]'s page, cut before the first item `fits` refuses
    /// (what a reply has room for), so that a list with no limit over
    /// 100,000 milestones reads one reply's worth, not all of them, each
    /// time the client asks for more. A backend that reads its rows one by
    /// one stops there; this default reads the page whole and cuts it.
    fn query_within(&self, query: &Query, fits: &mut dyn FnMut(&Value) -> bool) -> StorageResult<Page> {
        let mut page = self.query(query)?;
        if let Some(cut) = page.items.iter().position(|item| !fits(item)) {
            page.items.truncate(cut);
        }
        Ok(page)
    }

    /// Visits every document, in no particular order. A stored record that
    /// cannot be read back goes to `unreadable`, which decides: its error
    /// stops the walk, `Ok` goes on without it (`validate` reports it).
    fn walk(
        &self,
        visit: &mut dyn FnMut(&Doc),
        unreadable: &mut dyn FnMut(StorageError) -> StorageResult<()>,
    ) -> StorageResult<()>;

    /// Every milestone; a stored record that cannot be read back is an
    /// error naming it, so that a migration or a backup never leaves one
    /// behind unnoticed.
    fn for_each(&self, visit: &mut dyn FnMut(&Doc)) -> StorageResult<()> {
        self.walk(visit, &mut |e| Err(e))
    }

    /// Every id. The default walks the documents; SQL backends read one
    /// column.
    fn ids(&self) -> StorageResult<Vec<String>> {
        let mut ids = Vec::new();
        self.for_each(&mut |d| ids.extend(crate::document::id(d).map(str::to_owned)))?;
        Ok(ids)
    }

    /// The whole dependency graph, shared: a store may keep it for the
    /// requests that follow (see `storage/derived.rs`). SQL backends build
    /// it from their dependency table without reading documents.
    fn dependency_graph(&self) -> StorageResult<Arc<DependencyGraph>> {
        let mut graph = DependencyGraph::default();
        self.for_each(&mut |d| graph.add_document(d))?;
        Ok(Arc::new(graph))
    }

    /// Every milestone's [`WorkNode`](crate::work::WorkNode), with
    /// `with_tasks` the open ones' tasks: what `msctl ready` and `blocked`
    /// are made of (see [`crate::work`]). The default walks the documents;
    /// SQL backends answer with one query (two with tasks) in one snapshot.
    fn work_nodes(&self, with_tasks: bool) -> StorageResult<Vec<crate::work::WorkNode>> {
        let mut nodes = Vec::new();
        self.for_each(&mut |d| nodes.extend(crate::work::WorkNode::of(d, with_tasks)))?;
        Ok(nodes)
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
    fn record_event(&self, _event: &AuditEvent) -> StorageResult<()> {
        Ok(())
    }

    /// Starts telling `sink` about changes other writers make to a shared
    /// database (other daemons, `psql`), until the store is dropped.
    /// Backends nobody else writes to ignore it.
    fn listen(&self, _sink: ChangeSink) {}

    /// The database server's connection and figures; `None` for backends
    /// without a server.
    fn database_health(&self) -> Option<DatabaseHealth> {
        None
    }

    /// How the connection to a database server is secured; `None` for
    /// backends without one.
    fn database_tls(&self) -> StorageResult<Option<milestones_protocol::DatabaseTls>> {
        Ok(None)
    }

    /// What only a backend whose truth is the YAML files does; `None` for a
    /// database.
    fn files(&self) -> Option<&dyn FileKeeping> {
        None
    }
}

/// A change another writer made to a shared database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedChange {
    /// `Created`, `Updated` or `Deleted`.
    pub kind: EventKind,
    pub id: String,
    /// The status it was left in (none for a deletion).
    pub status: Option<String>,
}

/// Where a store hands the changes others made (see [`Storage::listen`]).
pub type ChangeSink = Arc<dyn Fn(SharedChange) + Send + Sync>;

/// The capability of a backend whose source of truth is the YAML files
/// (file, hybrid): it knows which bytes each file held when it last read or
/// wrote it, takes in edits made outside the daemon, and keeps the problems
/// of files that do not load.
pub trait FileKeeping {
    /// Where the file behind `id` is and the SHA-256 of its bytes, as this
    /// store last wrote or read it: an event on a file with that hash is the
    /// store's own write (or no change) and is not taken in again.
    fn known_file(&self, id: &str) -> StorageResult<Option<(Folder, String)>>;

    /// [`FileKeeping::known_file`] for every milestone: (id, SHA-256).
    fn known_files(&self) -> StorageResult<Vec<(String, String)>>;

    /// Takes in a document someone wrote to a file directly. `seen` is what
    /// [`FileKeeping::known_file`] said before the file was read: when the
    /// store has written the file since, what was read is older than what
    /// it holds, and nothing changes. Returns whether it was taken in.
    fn absorb(&self, file: &tree::LoadedFile, seen: Option<&(Folder, String)>) -> StorageResult<bool>;

    /// [`FileKeeping::absorb`] for many files (a migration's catch-up), in
    /// as few transactions as the backend can. Returns how many were taken
    /// in.
    fn absorb_all(&self, files: &[(tree::LoadedFile, Option<(Folder, String)>)]) -> StorageResult<usize> {
        let mut taken = 0;
        for (file, seen) in files {
            taken += usize::from(self.absorb(file, seen.as_ref())?);
        }
        Ok(taken)
    }

    /// Someone removed the file of `id` and none is left in either folder.
    /// `seen` as for [`FileKeeping::absorb`]. Returns true when the
    /// milestone was dropped.
    fn absorb_removal(&self, id: &str, seen: Option<&(Folder, String)>) -> StorageResult<bool>;

    /// Files that do not load (parse errors, unreadable files, a name that
    /// disagrees with the id inside): each is left as it is, and its last
    /// good version, if any, stays served.
    fn problems(&self) -> Vec<Problem>;

    /// Records (or, with `None`, clears) the problem with one file, named
    /// relative to the project root.
    fn note_file_problem(&self, file: &str, problem: Option<Problem>);

    /// The `active/` and `completed/` folders the store keeps.
    fn tree(&self) -> &tree::MilestoneTree;

    /// Whether the file of `id` holds a long flow list or map that
    /// `msctl upgrade` writes in block style, one item per line.
    fn needs_tidying(&self, id: &str) -> StorageResult<bool> {
        match self.known_file(id)? {
            Some((folder, _)) => self.tree().has_long_flow_line(id, folder),
            None => Ok(false),
        }
    }
}

/// Replaces the problems recorded for `file` with `problem`.
pub(super) fn note_problem(problems: &mut Vec<Problem>, file: &str, problem: Option<Problem>) {
    problems.retain(|p| p.file.as_deref() != Some(file));
    problems.extend(problem);
    problems.sort_by(|a, b| a.file.cmp(&b.file));
}

/// The error for a milestone whose file is known only by its problem (it
/// never loaded): it exists, but cannot be served.
pub(super) fn unreadable(problems: &[Problem], id: &str) -> Option<StorageError> {
    let problem = problems.iter().find(|p| p.id.as_deref() == Some(id))?;
    let file = problem.file.as_deref().unwrap_or("its file");
    Some(StorageError::Unreadable {
        id: id.to_owned(),
        message: format!("milestone `{id}` cannot be served: {file}: {}", problem.message),
    })
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

pub(super) fn id_of(doc: &Map) -> StorageResult<&str> {
    crate::document::id(doc).ok_or_else(|| StorageError::Invalid("document has no id".into()))
}

/// Which backend: `config/storage-backend.txt`'s word, and for the database
/// backend its engine (`storage-config.yaml`'s `database.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    File,
    Hybrid,
    Database(DatabaseKind),
}

impl BackendKind {
    /// The name `config/storage-backend.txt` uses.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::File => "file",
            BackendKind::Hybrid => "hybrid",
            BackendKind::Database(_) => "database",
        }
    }

    /// The database engine, for the database backend.
    pub fn database(self) -> Option<DatabaseKind> {
        match self {
            BackendKind::Database(kind) => Some(kind),
            _ => None,
        }
    }

    /// True when the YAML files are the source of truth.
    pub fn keeps_files(self) -> bool {
        !matches!(self, BackendKind::Database(_))
    }

    pub fn from_target(target: BackendTarget) -> BackendKind {
        match target {
            BackendTarget::File => BackendKind::File,
            BackendTarget::Hybrid => BackendKind::Hybrid,
            BackendTarget::Database(kind) => BackendKind::Database(kind),
        }
    }

    /// The request's name for this backend.
    pub fn target(self) -> BackendTarget {
        match self {
            BackendKind::File => BackendTarget::File,
            BackendKind::Hybrid => BackendTarget::Hybrid,
            BackendKind::Database(kind) => BackendTarget::Database(kind),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
