//! `SqliteStore`: the database backend on SQLite. `enterprise.db` holds the
//! milestones (seed 001's schema, WAL mode); there are no YAML files.
//!
//! Every write is one `BEGIN IMMEDIATE` transaction that reads what it
//! depends on (the revision, the dependency rows) and writes, so several
//! processes sharing the file never lose an update to each other.

use std::path::Path;
use std::sync::Arc;

use milestones_protocol::Map;

use super::cycles;
use super::error::{StorageError, StorageResult};
use super::interface::{id_of, BackendKind, Revision, Storage, Stored};
use super::record::Record;
use super::sqlite::{reads_from_table, AfterACrash, Flavour, MilestoneTable};
use crate::document::Doc;
use crate::event_log::AuditEvent;
use milestones_protocol::DatabaseKind;

pub struct SqliteStore {
    table: MilestoneTable,
}

impl SqliteStore {
    /// Opens `enterprise.db` (or a migration's copy of it), creating it and
    /// its tables when missing.
    pub fn open(path: &Path) -> StorageResult<SqliteStore> {
        let (table, _) = MilestoneTable::open(path, Flavour::Database)?;
        Ok(SqliteStore { table })
    }

    /// Creates a migration's copy at `path` for a bulk load, ended by
    /// [`SqliteStore::finish_bulk_load`] (see
    /// [`MilestoneTable::open_for_bulk_load`]).
    pub fn create_for_bulk_load(path: &Path) -> StorageResult<SqliteStore> {
        let (table, _) = MilestoneTable::open_for_bulk_load(path, Flavour::Database, AfterACrash::Removed)?;
        Ok(SqliteStore { table })
    }

    pub fn finish_bulk_load(&self) -> StorageResult<()> {
        self.table.finish_bulk_load()
    }
}

impl SqliteStore {
    /// No files beside the database (for [`reads_from_table`]).
    fn files_bytes(&self) -> StorageResult<u64> {
        Ok(0)
    }
}

impl Storage for SqliteStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Database(DatabaseKind::Sqlite)
    }

    fn reads_in_memory(&self) -> bool {
        false
    }

    fn get(&self, id: &str) -> StorageResult<Option<Stored>> {
        Ok(self.table.get(id)?.map(|(doc, revision)| Stored { doc: Arc::new(doc), revision }))
    }

    reads_from_table!();

    fn insert(&self, doc: Map) -> StorageResult<Stored> {
        let id = id_of(&doc)?.to_owned();
        let record = Record::of(&doc)?;
        let revision = self.table.write(|w| {
            if w.contains(&id)? {
                return Err(StorageError::AlreadyExists(id.clone()));
            }
            cycles::refuse_cycle(&doc, None, |node| w.requirements(node))?;
            stored_revision(w.put(&record, None)?)
        })?;
        Ok(Stored { doc: Arc::new(doc), revision: Revision::counter(revision) })
    }

    fn replace(&self, doc: Map, expected: &Revision) -> StorageResult<Stored> {
        let id = id_of(&doc)?.to_owned();
        let record = Record::of(&doc)?;
        let revision = self.table.write(|w| {
            let (previous, revision) = w.current(&id)?.ok_or_else(|| StorageError::Missing(id.clone()))?;
            if expected.as_counter() != Some(revision) {
                return Err(StorageError::Stale { id: id.clone() });
            }
            cycles::refuse_cycle(&doc, Some(&previous), |node| w.requirements(node))?;
            stored_revision(w.put(&record, None)?)
        })?;
        Ok(Stored { doc: Arc::new(doc), revision: Revision::counter(revision) })
    }

    fn remove(&self, id: &str) -> StorageResult<bool> {
        self.table.write(|w| w.delete(id))
    }

    fn import(&self, docs: &[Doc]) -> StorageResult<()> {
        self.table.write(|w| Record::each_of(docs, |record| w.put(record, None).map(|_| ())))
    }

    fn record_event(&self, event: &AuditEvent) -> StorageResult<()> {
        self.table.record_event(event)
    }

    fn flush(&self) -> StorageResult<()> {
        self.table.checkpoint()
    }

    fn backup_to(&self, dir: &Path) -> StorageResult<()> {
        self.table.backup_to(&dir.join("enterprise.db"))
    }
}

/// The revision the database flavour reports for every row it stores.
fn stored_revision(revision: Option<i64>) -> StorageResult<i64> {
    revision.ok_or_else(|| StorageError::Database("enterprise.db: a stored row reported no revision".to_owned()))
}
