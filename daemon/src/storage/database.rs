//! `SqliteStore`: the database backend on SQLite. `enterprise.db` holds the
//! milestones (seed 001's schema, WAL mode); there are no YAML files.

use std::path::Path;
use std::sync::Arc;

use milestones_protocol::{Map, Problem};

use super::sqlite::{reads_from_table, Flavour, MilestoneTable, Record};
use super::{Doc, Storage, StorageError, StorageResult};
use crate::event_log::AuditEvent;

pub struct SqliteStore {
    table: MilestoneTable,
    /// Dropped-in files that could not be imported.
    problems: std::sync::Mutex<Vec<Problem>>,
}

impl SqliteStore {
    /// Opens `enterprise.db`, creating it (and its tables) when missing.
    pub fn open(path: &Path) -> StorageResult<SqliteStore> {
        let (table, _) = MilestoneTable::open(path, Flavour::Database)?;
        Ok(SqliteStore { table, problems: Default::default() })
    }

    /// Stores many documents in one transaction (a migration's batch).
    pub fn insert_batch(&self, docs: &[Doc]) -> StorageResult<()> {
        let records = docs.iter().map(|d| Record::of(d)).collect::<StorageResult<Vec<_>>>()?;
        self.table.write(|w| {
            for record in &records {
                w.put(record, None)?;
            }
            Ok(())
        })
    }
}

fn id_of(doc: &Map) -> StorageResult<String> {
    crate::document::id(doc).map(str::to_owned).ok_or_else(|| StorageError::Invalid("document has no id".into()))
}

impl Storage for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "database"
    }

    fn database_kind(&self) -> Option<&'static str> {
        Some("sqlite")
    }

    fn reads_in_memory(&self) -> bool {
        false
    }

    reads_from_table!();

    fn insert(&self, doc: Map) -> StorageResult<Doc> {
        let id = id_of(&doc)?;
        let record = Record::of(&doc)?;
        self.table.write(|w| {
            if w.contains(&id)? {
                return Err(StorageError::AlreadyExists(id.clone()));
            }
            w.put(&record, None)
        })?;
        Ok(Arc::new(doc))
    }

    fn replace(&self, doc: Map) -> StorageResult<Doc> {
        let id = id_of(&doc)?;
        let record = Record::of(&doc)?;
        self.table.write(|w| {
            if !w.contains(&id)? {
                return Err(StorageError::Missing(id.clone()));
            }
            w.put(&record, None)
        })?;
        Ok(Arc::new(doc))
    }

    fn remove(&self, id: &str) -> StorageResult<bool> {
        self.table.write(|w| w.delete(id))
    }

    fn record_event(&self, event: &AuditEvent) {
        if let Err(e) = self.table.record_event(event) {
            tracing::warn!(error = %e, "cannot record the event in enterprise.db");
        }
    }

    fn flush(&self) -> StorageResult<()> {
        self.table.checkpoint()
    }

    fn backup_to(&self, dir: &Path) -> StorageResult<()> {
        self.table.backup_to(&dir.join("enterprise.db"))
    }

    fn problems(&self) -> Vec<Problem> {
        self.problems.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn note_file_problem(&self, file: &str, problem: Option<Problem>) {
        super::note_problem(&mut self.problems.lock().unwrap_or_else(|p| p.into_inner()), file, problem);
    }

    fn absorb(&self, file: &super::tree::LoadedFile) -> StorageResult<()> {
        let record = Record::of(&file.doc)?;
        self.table.write(|w| w.put(&record, None))
    }
}
