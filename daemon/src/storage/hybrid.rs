//! `HybridStore`: the hybrid backend. The YAML files stay the source of
//! truth (read and written through [`MilestoneTree`]); `index.db` holds every
//! document's JSON and query columns so that lists, searches and analytics
//! run in SQL, and the shell tooling can query it with `sqlite3`.
//!
//! The index is never trusted blindly: at open it is reconciled against the
//! files (size and mtime first, then the content hash), and an index that
//! cannot be opened is deleted and rebuilt from the files.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use milestones_protocol::{Map, Problem};
use rusqlite::OptionalExtension;

use super::cycles;
use super::error::{StorageError, StorageResult};
use super::interface::{id_of, note_problem, unreadable, BackendKind, FileKeeping, Revision, Storage, Stored};
use super::record::Record;
use super::sqlite::{reads_from_table, AfterACrash, FileColumns, Flavour, MilestoneTable};
use super::tree::{LoadedFile, MilestoneTree, Stamp, TreeFile};
use crate::document::{Doc, Folder};
use crate::event_log::AuditEvent;
use crate::layout::ProjectLayout;

pub struct HybridStore {
    tree: MilestoneTree,
    table: MilestoneTable,
    problems: Mutex<Vec<Problem>>,
    events_in_database: bool,
    /// Serialises this store's check-then-write sequences (a file tree has
    /// one daemon: the instance lock sees to that). Readers never take it.
    writes: Mutex<()>,
}

/// What a reconciliation changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub unchanged: usize,
    pub indexed: usize,
    pub removed: usize,
}

/// An index row's record of its file.
struct IndexedFile {
    path: String,
    stamp: Stamp,
    hash: String,
}

impl HybridStore {
    /// Opens (or builds) the index and reconciles it with the files.
    pub fn open(layout: ProjectLayout, events_in_database: bool) -> StorageResult<HybridStore> {
        let tree = MilestoneTree::new(layout.clone());
        let path = layout.index_db();
        let store = match Self::open_index(&tree, &path, events_in_database) {
            Ok(store) => store,
            Err(e) if is_unusable(&e) => {
                // The index is derived data: rebuild it rather than refuse to
                // start.
                tracing::warn!(index = %path.display(), error = %e, "the hybrid index cannot be used; rebuilding it from the files");
                remove_database(&path)?;
                Self::open_index(&tree, &path, events_in_database)?
            }
            // Busy, unreadable folders and the like: not the index's fault,
            // and its audit events are worth keeping.
            Err(e) => return Err(e),
        };
        Ok(store)
    }

    fn open_index(tree: &MilestoneTree, path: &Path, events_in_database: bool) -> StorageResult<HybridStore> {
        // Reconciling a new index is a bulk load (and the index is derived
        // data: a crash meanwhile only means building it again).
        let (table, _) = MilestoneTable::open_for_bulk_load(path, Flavour::Index, AfterACrash::Reopened)?;
        let store = HybridStore {
            tree: tree.clone(),
            table,
            problems: Mutex::new(Vec::new()),
            events_in_database,
            writes: Mutex::new(()),
        };
        let report = store.reconcile()?;
        store.table.finish_bulk_load()?;
        tracing::info!(
            unchanged = report.unchanged,
            indexed = report.indexed,
            removed = report.removed,
            "hybrid index reconciled"
        );
        Ok(store)
    }

    /// Brings the index in line with the files: files added or changed are
    /// parsed and indexed, rows of deleted files removed. A file that no
    /// longer parses keeps its last good row and is reported.
    pub fn reconcile(&self) -> StorageResult<Reconciled> {
        let indexed = self.indexed_files()?;
        let files = self.tree.list()?;
        let mut per_id: HashMap<&str, usize> = HashMap::new();
        for f in &files {
            *per_id.entry(f.stem.as_str()).or_default() += 1;
        }
        let mut report = Reconciled::default();
        let to_load: Vec<TreeFile> = files
            .iter()
            .filter(|f| {
                // An unreadable file is read anyway, to be reported: its row
                // stays as its last good version.
                let current = f.readable
                    && indexed.get(&f.stem).is_some_and(|row| {
                        row.path == self.tree.relative(&f.path) && row.stamp == f.stamp && per_id[f.stem.as_str()] == 1
                    });
                if current {
                    report.unchanged += 1;
                }
                !current
            })
            .cloned()
            .collect();
        let (loaded, mut problems) = self.tree.load_all(&to_load)?;
        let on_disk: HashSet<&str> = files.iter().map(|f| f.stem.as_str()).collect();
        // A document SQLite cannot hold (a .nan, say) is reported like a file
        // that does not parse; its last good row, if any, stays.
        let mut records: Vec<(&LoadedFile, Record)> = Vec::with_capacity(loaded.len());
        for file in &loaded {
            match Record::of(&file.doc) {
                Ok(record) => records.push((file, record)),
                Err(e) => problems.push(self.tree.problem(
                    &self.tree.path_of(&file.id, file.folder),
                    Some(&file.id),
                    &e.to_string(),
                )),
            }
        }
        self.table.write(|w| {
            for (file, record) in &records {
                let path = self.tree.relative(&self.tree.path_of(&file.id, file.folder));
                let columns = FileColumns { path: &path, stamp: file.stamp, hash: &file.hash };
                match indexed.get(&file.id) {
                    // Touched but not changed (a `touch`, a checkout of the
                    // same content): only the stamp moves.
                    Some(row) if row.hash == file.hash && row.path == path => {
                        w.conn()
                            .prepare_cached("UPDATE milestones SET file_size = ?, file_mtime_ns = ? WHERE id = ?")
                            .and_then(|mut s| {
                                s.execute(rusqlite::params![file.stamp.size as i64, file.stamp.mtime_ns, file.id])
                            })
                            .map_err(self.table.failed("update a file stamp"))?;
                    }
                    _ => {
                        w.put(record, Some(&columns))?;
                    }
                }
                report.indexed += 1;
            }
            for id in indexed.keys().filter(|id| !on_disk.contains(id.as_str())) {
                w.delete(id)?;
                report.removed += 1;
            }
            Ok(())
        })?;
        *self.problems.lock().unwrap_or_else(|p| p.into_inner()) = problems;
        Ok(report)
    }

    fn indexed_files(&self) -> StorageResult<HashMap<String, IndexedFile>> {
        let conn = self.table.reader()?;
        let mut stmt = conn
            .prepare("SELECT id, file_path, file_size, file_mtime_ns, file_hash FROM milestones")
            .map_err(self.table.failed("read the index"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    IndexedFile {
                        path: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        stamp: Stamp {
                            size: r.get::<_, Option<i64>>(2)?.unwrap_or(-1) as u64,
                            mtime_ns: r.get::<_, Option<i64>>(3)?.unwrap_or(-1),
                        },
                        hash: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    },
                ))
            })
            .and_then(|rows| rows.collect::<Result<HashMap<_, _>, _>>())
            .map_err(self.table.failed("read the index"))?;
        Ok(rows)
    }

    /// The folder `id`'s file is in, by the index.
    fn folder_of(&self, id: &str) -> StorageResult<Option<Folder>> {
        let conn = self.table.reader()?;
        let path: Option<Option<String>> = conn
            .prepare_cached("SELECT file_path FROM milestones WHERE id = ?")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(self.table.failed("read the index"))?;
        Ok(path.map(|p| self.folder_of_path(&p.unwrap_or_default())))
    }

    /// The folder an index row's `file_path` names.
    fn folder_of_path(&self, path: &str) -> Folder {
        let completed = self.tree.relative(&self.tree.folder_path(Folder::Completed));
        if path.starts_with(&completed) {
            Folder::Completed
        } else {
            Folder::Active
        }
    }

    /// Writes the file under a temporary name, then its index row, then
    /// renames the file into place, and returns the file's hash. Every step
    /// that may run out of space comes before anything is changed for
    /// good: a write refused (a full disk) leaves the file and the index
    /// as they were, and a write acknowledged is in both.
    fn store(&self, doc: &Map, previous: Option<&Previous>) -> StorageResult<String> {
        let record = Record::of(doc)?;
        let staged = self.tree.stage(doc, previous.map(|p| (p.doc, p.text.as_str())))?;
        let (folder, stamp, hash) = (staged.folder, staged.stamp, staged.hash.clone());
        let path = self.tree.relative(&self.tree.path_of(&record.id, folder));
        self.table.write(|w| w.put(&record, Some(&FileColumns { path: &path, stamp, hash: &hash })).map(|_| ()))?;
        crate::injected::crash_point("indexed-before-renaming");
        if let Err(e) = staged.put_in_place() {
            // The index is ahead of the file: a stamp that matches no file
            // has the next reconciliation read the file again.
            let stale = Stamp { size: u64::MAX, mtime_ns: -1 };
            let undone = match previous {
                Some(p) => Record::of(p.doc).and_then(|old| {
                    let old_path = self.tree.relative(&self.tree.path_of(&record.id, p.folder));
                    let columns = FileColumns { path: &old_path, stamp: stale, hash: "" };
                    self.table.write(|w| w.put(&old, Some(&columns)).map(|_| ()))
                }),
                None => self.table.write(|w| w.delete(&record.id).map(|_| ())),
            };
            if let Err(undo) = undone {
                tracing::warn!(id = %record.id, error = %undo, "cannot undo an index row whose file could not be put in place");
            }
            return Err(e);
        }
        if let Some(p) = previous.filter(|p| p.folder != folder) {
            crate::injected::crash_point("moved-before-removing");
            self.tree.remove(&record.id, p.folder)?;
        }
        Ok(hash)
    }
}

/// The stored version a replacement overwrites, and its file.
struct Previous<'a> {
    doc: &'a Map,
    folder: Folder,
    text: String,
}

impl HybridStore {
    fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn problems_lock(&self) -> MutexGuard<'_, Vec<Problem>> {
        self.problems.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The YAML files beside the index (for [`reads_from_table`]).
    fn files_bytes(&self) -> StorageResult<u64> {
        self.tree.total_bytes()
    }
}

impl Storage for HybridStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Hybrid
    }

    fn reads_in_memory(&self) -> bool {
        false
    }

    fn get(&self, id: &str) -> StorageResult<Option<Stored>> {
        match self.table.get(id)? {
            Some((doc, revision)) => Ok(Some(Stored { doc: Arc::new(doc), revision })),
            None => unreadable(&self.problems_lock(), id).map_or(Ok(None), Err),
        }
    }

    reads_from_table!();

    fn insert(&self, doc: Map) -> StorageResult<Stored> {
        let id = id_of(&doc)?;
        let _writes = self.lock_writes();
        // A file the index does not hold (it failed to parse) is still the
        // user's: never overwrite it.
        if self.tree.exists(id) || self.table.contains(id)? {
            return Err(StorageError::AlreadyExists(id.to_owned()));
        }
        cycles::refuse_cycle(&doc, None, |node| self.table.requirements(node))?;
        let hash = self.store(&doc, None)?;
        Ok(Stored { doc: Arc::new(doc), revision: Revision::content(&hash) })
    }

    fn replace(&self, doc: Map, expected: &Revision) -> StorageResult<Stored> {
        let id = id_of(&doc)?;
        let _writes = self.lock_writes();
        let (old, revision) = self.table.get(id)?.ok_or_else(|| StorageError::Missing(id.to_owned()))?;
        if revision != *expected {
            return Err(StorageError::Stale { id: id.to_owned() });
        }
        cycles::refuse_cycle(&doc, Some(&old), |node| self.table.requirements(node))?;
        let (folder, hash) = self.known_file(id)?.unwrap_or_else(|| (Folder::of(&old), String::new()));
        let text = self.tree.read_unchanged(id, folder, &hash)?;
        let hash = self.store(&doc, Some(&Previous { doc: &old, folder, text }))?;
        Ok(Stored { doc: Arc::new(doc), revision: Revision::content(&hash) })
    }

    fn remove(&self, id: &str) -> StorageResult<bool> {
        let _writes = self.lock_writes();
        let Some(folder) = self.folder_of(id)? else { return Ok(false) };
        self.tree.remove(id, folder)?;
        self.table.write(|w| w.delete(id))
    }

    fn import(&self, docs: &[Doc]) -> StorageResult<()> {
        let _writes = self.lock_writes();
        let docs: Vec<&Map> = docs.iter().map(|d| &**d).collect();
        let records = docs.iter().map(|d| Record::of(d)).collect::<StorageResult<Vec<_>>>()?;
        let written = self.tree.write_all(&docs, &|id| self.folder_of(id))?;
        self.table.write(|w| {
            for (file, record) in written.iter().zip(&records) {
                let path = self.tree.relative(&self.tree.path_of(&file.id, file.folder));
                w.put(record, Some(&FileColumns { path: &path, stamp: file.stamp, hash: &file.hash }))?;
            }
            Ok(())
        })
    }

    fn record_event(&self, event: &AuditEvent) -> StorageResult<()> {
        if self.events_in_database {
            self.table.record_event(event)?;
        }
        Ok(())
    }

    fn files(&self) -> Option<&dyn FileKeeping> {
        Some(self)
    }
}

impl FileKeeping for HybridStore {
    fn tree(&self) -> &MilestoneTree {
        &self.tree
    }

    fn known_file(&self, id: &str) -> StorageResult<Option<(Folder, String)>> {
        let conn = self.table.reader()?;
        let row: Option<(Option<String>, Option<String>)> = conn
            .prepare_cached("SELECT file_path, file_hash FROM milestones WHERE id = ?")
            .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(self.table.failed("read the index"))?;
        Ok(row.map(|(path, hash)| (self.folder_of_path(&path.unwrap_or_default()), hash.unwrap_or_default())))
    }

    fn known_files(&self) -> StorageResult<Vec<(String, String)>> {
        let conn = self.table.reader()?;
        let mut statement =
            conn.prepare("SELECT id, file_hash FROM milestones").map_err(self.table.failed("read the index"))?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default())))
            .map_err(self.table.failed("read the index"))?;
        rows.collect::<Result<_, _>>().map_err(self.table.failed("read the index"))
    }

    fn absorb(&self, file: &LoadedFile, seen: Option<&(Folder, String)>) -> StorageResult<bool> {
        let record = Record::of(&file.doc)?;
        let path = self.tree.relative(&self.tree.path_of(&file.id, file.folder));
        let _writes = self.lock_writes();
        // The index takes a write before its file is renamed into place:
        // a file read in between is already stale.
        if self.known_file(&file.id)?.as_ref() != seen || !self.tree.still_holds(file) {
            return Ok(false);
        }
        self.table
            .write(|w| w.put(&record, Some(&FileColumns { path: &path, stamp: file.stamp, hash: &file.hash })))?;
        Ok(true)
    }

    fn absorb_all(&self, files: &[(LoadedFile, Option<(Folder, String)>)]) -> StorageResult<usize> {
        let _writes = self.lock_writes();
        let mut taken = Vec::new();
        for (file, seen) in files {
            if self.known_file(&file.id)? == *seen && self.tree.still_holds(file) {
                let path = self.tree.relative(&self.tree.path_of(&file.id, file.folder));
                taken.push((Record::of(&file.doc)?, path, file));
            }
        }
        // One transaction, one sync.
        self.table.write(|w| {
            for (record, path, file) in &taken {
                w.put(record, Some(&FileColumns { path, stamp: file.stamp, hash: &file.hash }))?;
            }
            Ok(())
        })?;
        Ok(taken.len())
    }

    fn absorb_removal(&self, id: &str, seen: Option<&(Folder, String)>) -> StorageResult<bool> {
        let _writes = self.lock_writes();
        if seen.is_none() || self.known_file(id)?.as_ref() != seen {
            return Ok(false);
        }
        self.table.write(|w| w.delete(id))
    }

    fn problems(&self) -> Vec<Problem> {
        self.problems_lock().clone()
    }

    fn note_file_problem(&self, file: &str, problem: Option<Problem>) {
        note_problem(&mut self.problems_lock(), file, problem);
    }
}

/// True when the index itself is damaged or foreign (corrupt, not a
/// database, another schema): the cases worth rebuilding for.
fn is_unusable(e: &StorageError) -> bool {
    matches!(e, StorageError::Damaged(_) | StorageError::Invalid(_))
}

/// Deletes an SQLite database with its WAL and shared-memory files.
pub fn remove_database(path: &Path) -> StorageResult<()> {
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("remove", file, e)),
        }
    }
    Ok(())
}
