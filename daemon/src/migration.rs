//! `Migration`: moving every milestone from the running backend to another
//! (DESIGN §10). The steps: back up, build the target, copy, verify (count
//! and a content hash of every record), switch `storage-backend.txt`, clean
//! up what the old backend leaves behind. Any failure before the switch
//! removes what was built and leaves the running backend untouched.
//!
//! Each step is its own method taking what the previous one produced, so a
//! journal (for crash safety) and an online copy (for migrations while
//! writes go on) can slot in between them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use milestones_protocol::{BackendTarget, Map, MigrationReport};

use crate::config::StorageConfig;
use crate::document::Folder;
use crate::layout::ProjectLayout;
use crate::storage::tree::MilestoneTree;
use crate::storage::{self, Doc, FileStore, HybridStore, SqliteStore, Storage, StorageError};

/// Documents copied per database transaction.
const BATCH: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("the project is already on the {0} backend")]
    AlreadyThere(String),
    #[error(
        "{0} milestone file(s) cannot be read, and the database backend keeps no files; \
         fix or remove them first (`msctl validate --all` lists them)"
    )]
    BrokenFiles(usize),
    #[error("the migration stopped while {step}, and the current backend is unchanged: {source}")]
    Step { step: &'static str, source: StorageError },
    #[error("the copy did not verify, and the current backend is unchanged: {0}")]
    Mismatch(String),
}

impl MigrationError {
    /// True when the request or the data is at fault (the user can fix it),
    /// rather than the disk or the database.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            MigrationError::AlreadyThere(_)
                | MigrationError::BrokenFiles(_)
                | MigrationError::Step { source: StorageError::Invalid(_), .. }
        )
    }
}

type MigrationResult<T> = Result<T, MigrationError>;

fn step(name: &'static str) -> impl FnOnce(StorageError) -> MigrationError {
    move |source| MigrationError::Step { step: name, source }
}

pub struct Migration<'a> {
    layout: &'a ProjectLayout,
    config: &'a StorageConfig,
    source: Arc<dyn Storage>,
    target: BackendTarget,
}

/// The new backend, ready to serve, and what was done.
pub struct Migrated {
    pub store: Arc<dyn Storage>,
    pub report: MigrationReport,
}

/// Something built on the way, removed again if the migration fails.
enum Built {
    Database(PathBuf),
    Files(Vec<(String, Folder)>),
}

impl<'a> Migration<'a> {
    pub fn new(layout: &'a ProjectLayout, config: &'a StorageConfig, source: Arc<dyn Storage>, target: BackendTarget) -> Self {
        Migration { layout, config, source, target }
    }

    fn from(&self) -> &'static str {
        self.source.backend_name()
    }

    pub fn run(self) -> MigrationResult<Migrated> {
        let started = Instant::now();
        let to = self.target.backend_name();
        let same_database = match self.target {
            BackendTarget::Database(kind) => self.source.database_kind() == Some(kind.name()),
            _ => true,
        };
        if self.from() == to && same_database {
            return Err(MigrationError::AlreadyThere(to.to_owned()));
        }
        let broken = self.source.problems().len();
        if broken > 0 && matches!(self.target, BackendTarget::Database(_)) {
            return Err(MigrationError::BrokenFiles(broken));
        }
        let mut lap = Lap::new();
        let docs = self.snapshot().map_err(step("reading the current backend"))?;
        if !matches!(self.target, BackendTarget::File) {
            for doc in &docs {
                storage::check_storable(doc).map_err(step("checking the documents"))?;
            }
        }
        lap.done("read", docs.len());
        let backup = self.back_up().map_err(step("taking the backup"))?;
        lap.done("backed up", docs.len());
        let mut built = Vec::new();
        let result = self.build(&docs, &mut built).and_then(|store| {
            lap.done("copied", docs.len());
            verify(&docs, &*store)?;
            lap.done("verified", docs.len());
            Ok(store)
        });
        let store = match result {
            Ok(store) => store,
            Err(e) => {
                self.undo(built);
                return Err(e);
            }
        };
        let store = self.switch(store).map_err(step("switching backends"))?;
        lap.done("switched", docs.len());
        self.clean_up(&docs);
        lap.done("cleaned up", docs.len());
        Ok(Migrated {
            report: MigrationReport {
                from: self.from().to_owned(),
                to: to.to_owned(),
                database: store.database_kind().map(str::to_owned),
                milestones: docs.len() as u64,
                backup: self.layout.relative(&backup).display().to_string(),
                duration_ms: started.elapsed().as_millis() as u64,
            },
            store,
        })
    }

    /// Step 2: `backups/<time>-<from>-to-<to>/` with copies of the milestone
    /// files (copies, not links: a link would follow an edit made in place),
    /// the configuration and a copy of any database.
    fn back_up(&self) -> Result<PathBuf, StorageError> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let dir = self.layout.backups().join(format!("{stamp}-{}-to-{}", self.from(), self.target.backend_name()));
        let tree = MilestoneTree::new(self.layout.clone());
        for folder in [Folder::Active, Folder::Completed] {
            let from = tree.folder_path(folder);
            let name = from.file_name().map(|n| n.to_owned()).unwrap_or_default();
            copy_folder(&from, &dir.join(name))?;
        }
        copy_folder(&self.layout.config(), &dir.join("config"))?;
        self.source.backup_to(&dir)?;
        // A database left from an earlier time on the database backend is
        // about to be replaced: keep it too.
        let enterprise = self.layout.enterprise_db();
        if self.source.database_kind().is_none() && enterprise.exists() {
            for suffix in ["", "-wal"] {
                let file = PathBuf::from(format!("{}{suffix}", enterprise.display()));
                if file.exists() {
                    let target = dir.join(format!("previous-enterprise.db{suffix}"));
                    fs::copy(&file, &target).map_err(|e| StorageError::io("back up", &file, e))?;
                }
            }
        }
        Ok(dir)
    }

    /// Step 1: every document of the running backend.
    fn snapshot(&self) -> Result<Vec<Doc>, StorageError> {
        let mut docs = Vec::new();
        self.source.for_each(&mut |d| docs.push(Arc::new(d.clone())))?;
        Ok(docs)
    }

    /// Step 3: the target, filled.
    fn build(&self, docs: &[Doc], built: &mut Vec<Built>) -> MigrationResult<Arc<dyn Storage>> {
        let has_files = self.source.database_kind().is_none();
        match self.target {
            BackendTarget::File => {
                if !has_files {
                    self.export_files(docs, built).map_err(step("writing the YAML files"))?;
                }
                let store = FileStore::open(self.layout.clone()).map_err(step("opening the files"))?;
                Ok(Arc::new(store))
            }
            BackendTarget::Hybrid => {
                if !has_files {
                    self.export_files(docs, built).map_err(step("writing the YAML files"))?;
                }
                built.push(Built::Database(self.layout.index_db()));
                let store = HybridStore::open(self.layout.clone(), self.config.events_in_database)
                    .map_err(step("building index.db"))?;
                Ok(Arc::new(store))
            }
            BackendTarget::Database(_) => {
                let path = migrating_path(&self.layout.enterprise_db());
                storage::remove_database(&path).map_err(step("clearing a previous attempt"))?;
                built.push(Built::Database(path.clone()));
                let store = SqliteStore::open(&path).map_err(step("creating the database"))?;
                for batch in docs.chunks(BATCH) {
                    store.insert_batch(batch).map_err(step("copying milestones"))?;
                }
                Ok(Arc::new(store))
            }
        }
    }

    /// Writes each document as a YAML file, refusing to overwrite one that
    /// is already there.
    fn export_files(&self, docs: &[Doc], built: &mut Vec<Built>) -> Result<(), StorageError> {
        let tree = MilestoneTree::new(self.layout.clone());
        if let Some(doc) = docs.iter().find(|d| tree.exists(crate::document::id(d).unwrap_or_default())) {
            let id = crate::document::id(doc).unwrap_or_default();
            return Err(StorageError::Invalid(format!(
                "{} already exists; move it away and migrate again",
                tree.relative(&tree.path_of(id, Folder::of(doc)))
            )));
        }
        let docs: Vec<&Map> = docs.iter().map(|d| &**d).collect();
        let mut written = Vec::new();
        let result = tree.write_all(&docs, &mut written);
        built.push(Built::Files(written));
        result
    }

    fn undo(&self, built: Vec<Built>) {
        let tree = MilestoneTree::new(self.layout.clone());
        for item in built.into_iter().rev() {
            let result = match &item {
                Built::Database(path) => storage::remove_database(path),
                Built::Files(files) => tree.remove_all(files),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot remove what a failed migration built");
            }
        }
    }

    /// Step 5: the target becomes the backend. The rename of
    /// `storage-backend.txt` is the moment of the switch.
    fn switch(&self, store: Arc<dyn Storage>) -> Result<Arc<dyn Storage>, StorageError> {
        let store = match self.target {
            BackendTarget::Database(kind) => {
                // Fold the copy's WAL into its file, close it, move it into
                // place.
                store.flush()?;
                drop(store);
                let built = migrating_path(&self.layout.enterprise_db());
                let path = self.layout.enterprise_db();
                // A stale WAL beside the old file would be replayed into the
                // new one.
                storage::remove_database(&path)?;
                fs::rename(&built, &path).map_err(|e| StorageError::io("move into place", &path, e))?;
                storage::remove_database(&built)?;
                if self.config.database_type != kind.name() {
                    crate::config::set_database_type(&self.layout.storage_config(), kind.name())
                        .map_err(|e| StorageError::io("update", self.layout.storage_config(), e))?;
                }
                Arc::new(SqliteStore::open(&path)?) as Arc<dyn Storage>
            }
            _ => store,
        };
        let config = self.layout.config();
        storage::write_file_atomically(&config, "storage-backend.txt", format!("{}\n", self.target.backend_name()).as_bytes())?;
        Ok(store)
    }

    /// Step 6: remove what only the old backend used (all of it is in the
    /// backup). Failures here are reported, not fatal: the switch is done.
    fn clean_up(&self, docs: &[Doc]) {
        let tree = MilestoneTree::new(self.layout.clone());
        let mut results = Vec::new();
        match (self.from(), self.target) {
            ("hybrid", BackendTarget::File) => results.push(storage::remove_database(&self.layout.index_db())),
            (from, BackendTarget::Database(_)) if from != "database" => {
                // Both folders (a file may sit in the one its status does not
                // call for), and only files that still hold what was copied:
                // an edit made during the migration stays, and the watcher
                // imports it.
                let files: Vec<(String, Folder)> = docs
                    .iter()
                    .flat_map(|d| {
                        let id = crate::document::id(d).unwrap_or_default();
                        [Folder::Active, Folder::Completed].map(|f| (d, id.to_owned(), f))
                    })
                    .filter(|(doc, id, folder)| {
                        tree.inspect(&tree.path_of(id, *folder)).is_some_and(|found| {
                            tree.load(&found).is_ok_and(|loaded| loaded.doc == ***doc)
                        })
                    })
                    .map(|(_, id, folder)| (id, folder))
                    .collect();
                results.push(tree.remove_all(&files));
                if from == "hybrid" {
                    results.push(storage::remove_database(&self.layout.index_db()));
                }
            }
            ("database", BackendTarget::File | BackendTarget::Hybrid) => {
                results.push(storage::remove_database(&self.layout.enterprise_db()));
            }
            _ => {}
        }
        for e in results.into_iter().filter_map(Result::err) {
            tracing::warn!(error = %e, "migration finished, but a leftover of the old backend could not be removed");
        }
    }
}

/// Logs each step's duration: a migration of a large project is slow, and
/// where the time goes is the first thing to know.
struct Lap(Instant);

impl Lap {
    fn new() -> Self {
        Lap(Instant::now())
    }

    fn done(&mut self, step: &'static str, milestones: usize) {
        tracing::info!(step, milestones, ms = self.0.elapsed().as_millis() as u64, "migration step");
        self.0 = Instant::now();
    }
}

/// Step 4: the target holds exactly the documents read from the source,
/// compared by a content hash of every record.
fn verify(docs: &[Doc], target: &dyn Storage) -> MigrationResult<()> {
    let expected: HashMap<&str, String> =
        docs.iter().map(|d| (crate::document::id(d).unwrap_or_default(), fingerprint(d))).collect();
    let mut found = 0usize;
    let mut wrong = Vec::new();
    target
        .for_each(&mut |doc| {
            found += 1;
            let id = crate::document::id(doc).unwrap_or_default();
            if expected.get(id) != Some(&fingerprint(doc)) {
                wrong.push(id.to_owned());
            }
        })
        .map_err(step("reading back the copy"))?;
    if found != expected.len() {
        return Err(MigrationError::Mismatch(format!("{} milestones read, {found} in the copy", expected.len())));
    }
    if !wrong.is_empty() {
        wrong.sort();
        return Err(MigrationError::Mismatch(format!(
            "{} milestone(s) differ after copying, first `{}`",
            wrong.len(),
            wrong[0]
        )));
    }
    Ok(())
}

/// A document's content hash: SHA-256 of its JSON, keys in order.
fn fingerprint(doc: &Map) -> String {
    crate::storage::tree::hash_bytes(&serde_json::to_vec(doc).unwrap_or_default())
}

fn migrating_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.migrating", path.display()))
}

/// Copies a folder's files (not sub-folders).
fn copy_folder(from: &Path, to: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(to).map_err(|e| StorageError::io("create", to, e))?;
    let entries = fs::read_dir(from).map_err(|e| StorageError::io("read folder", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("read folder", from, e))?;
        if !entry.file_type().map_err(|e| StorageError::io("inspect", entry.path(), e))?.is_file() {
            continue;
        }
        let target = to.join(entry.file_name());
        fs::copy(entry.path(), &target).map_err(|e| StorageError::io("back up", entry.path(), e))?;
    }
    Ok(())
}
