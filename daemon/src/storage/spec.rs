//! `BackendSpec`: the one factory for backends. Start-up opens the backend
//! the configuration names through it, and a migration builds, switches to
//! and retires backends through it, so only this file knows which store
//! type serves which backend and which files each one keeps.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use milestones_protocol::DatabaseKind;

use super::database::SqliteStore;
use super::error::{StorageError, StorageResult};
use super::file::FileStore;
use super::file_manifest::FileManifest;
use super::hybrid::{remove_database, HybridStore};
use super::interface::{BackendKind, Storage};
use super::postgres::PostgresStore;
use super::record::Record;
use super::tree::MilestoneTree;
use crate::config::{DatabaseSetting, StorageConfig};
use crate::database_password::PasswordSource;
use crate::database_url::DatabaseUrl;
use crate::document::Doc;
use crate::document::Folder;
use crate::layout::ProjectLayout;

/// A backend and the settings it is opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub kind: BackendKind,
    /// The hybrid backend also keeps the audit events in `index.db`.
    events_in_database: bool,
    /// Where the PostgreSQL server is.
    url: Option<DatabaseUrl>,
    /// Where its password comes from when the URL holds none.
    passwords: PasswordSource,
}

impl BackendSpec {
    pub fn new(kind: BackendKind, config: &StorageConfig) -> BackendSpec {
        let passwords = config.database_passwords.clone();
        let url = config.database_url.clone().map(|u| u.with_passwords(passwords.clone()));
        BackendSpec { kind, events_in_database: config.events_in_database, url, passwords }
    }

    /// This backend on the database server at `url` (a migration's target),
    /// its password from the configured sources when it holds none.
    pub fn with_url(mut self, url: DatabaseUrl) -> BackendSpec {
        self.url = Some(url.with_passwords(self.passwords.clone()));
        self
    }

    /// [`Self::with_url`], with only the password the URL itself holds.
    pub fn with_url_alone(mut self, url: DatabaseUrl) -> BackendSpec {
        self.url = Some(url);
        self
    }

    fn url(&self) -> StorageResult<&DatabaseUrl> {
        self.url.as_ref().ok_or_else(|| {
            StorageError::Invalid(format!(
                "the milestones are in PostgreSQL, but no database URL is configured: set {}, or give it with \
                 `--url` (`msctl migrate database --database postgresql --url URL`)",
                crate::config::DATABASE_URL_ENV
            ))
        })
    }

    /// The backend `config/storage-backend.txt` names (`file` when it is
    /// missing), with the database engine `storage-config.yaml` names.
    pub fn configured(layout: &ProjectLayout, config: &StorageConfig) -> StorageResult<BackendSpec> {
        let path = layout.backend_file();
        let name = match fs::read_to_string(&path) {
            Ok(text) => text.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BackendKind::File.name().to_owned(),
            Err(e) => return Err(StorageError::io("read", path, e)),
        };
        let kind = match name.as_str() {
            "file" => BackendKind::File,
            "hybrid" => BackendKind::Hybrid,
            "database" => BackendKind::Database(config.database.kind().map_err(StorageError::Invalid)?),
            other => {
                return Err(StorageError::Invalid(format!(
                    "config/storage-backend.txt names the `{other}` backend; the backends are file, hybrid and database"
                )))
            }
        };
        Ok(BackendSpec::new(kind, config))
    }

    /// Opens this backend on the project, creating what it keeps when
    /// missing.
    pub fn open(&self, layout: &ProjectLayout) -> StorageResult<Arc<dyn Storage>> {
        Ok(match self.kind {
            BackendKind::File => Arc::new(FileStore::open(layout.clone())?),
            BackendKind::Hybrid => Arc::new(HybridStore::open(layout.clone(), self.events_in_database)?),
            BackendKind::Database(DatabaseKind::Sqlite) => Arc::new(SqliteStore::open(&layout.enterprise_db())?),
            BackendKind::Database(DatabaseKind::Postgresql) => Arc::new(PostgresStore::open(self.url()?)?),
        })
    }

    /// This backend as it stands, ready to switch to without a copy, when
    /// it is a shared database that already holds milestones (another
    /// project root put them there); `None` otherwise.
    pub fn joinable(&self) -> StorageResult<Option<Built>> {
        if self.kind != BackendKind::Database(DatabaseKind::Postgresql) {
            return Ok(None);
        }
        let url = self.url()?;
        let store = PostgresStore::open(url)?;
        if store.count()? == 0 {
            return Ok(None);
        }
        if let Some(source) = store.unfinished_copies()?.first() {
            return Err(StorageError::Invalid(format!(
                "{} is receiving a copy from {source}, or one that did not finish; join it once that migration is over",
                url.target()
            )));
        }
        Ok(Some(Built { spec: self.clone(), store: Some(Arc::new(store)), made: Vec::new() }))
    }

    /// Refuses documents this backend cannot hold value for value (a
    /// number that is not finite, in SQL), before anything is built.
    pub fn check_storable(&self, docs: &[Doc]) -> StorageResult<()> {
        if self.kind == BackendKind::File {
            return Ok(());
        }
        docs.iter().try_for_each(|d| Record::check(d).map(|_| ()))
    }

    /// Copies into the backup folder `dir` what building this backend will
    /// replace: an earlier `enterprise.db` left from a time on the database
    /// backend.
    pub fn back_up_replaced(&self, layout: &ProjectLayout, source: BackendKind, dir: &Path) -> StorageResult<()> {
        if self.kind != BackendKind::Database(DatabaseKind::Sqlite) || source == self.kind {
            return Ok(());
        }
        let enterprise = layout.enterprise_db();
        for suffix in ["", "-wal"] {
            let file = PathBuf::from(format!("{}{suffix}", enterprise.display()));
            if file.exists() {
                let target = dir.join(format!("previous-enterprise.db{suffix}"));
                fs::copy(&file, &target).map_err(|e| StorageError::io("back up", &file, e))?;
            }
        }
        Ok(())
    }

    /// The milestones a migration's backup folder `dir` holds of this
    /// backend's own: the copy of the SQLite database, or the PostgreSQL
    /// documents as JSON lines. `None` for a backend whose truth is the
    /// YAML files (the backup archives those itself).
    pub fn backed_up(&self, dir: &Path) -> StorageResult<Option<Vec<Doc>>> {
        match self.kind {
            BackendKind::Database(DatabaseKind::Postgresql) => {
                let path = dir.join(POSTGRESQL_BACKUP);
                let text = fs::read_to_string(&path).map_err(|e| StorageError::io("read", &path, e))?;
                text.lines()
                    .enumerate()
                    .map(|(n, line)| {
                        serde_json::from_str(line)
                            .map(Arc::new)
                            .map_err(|e| StorageError::Invalid(format!("{} line {}: {e}", path.display(), n + 1)))
                    })
                    .collect::<StorageResult<_>>()
                    .map(Some)
            }
            BackendKind::Database(DatabaseKind::Sqlite) => {
                let path = dir.join("enterprise.db");
                if !path.exists() {
                    return Err(StorageError::Invalid(format!("{} is missing", path.display())));
                }
                let mut docs = Vec::new();
                SqliteStore::open(&path)?.for_each(&mut |d| docs.push(d.clone()))?;
                Ok(Some(docs))
            }
            BackendKind::File | BackendKind::Hybrid => Ok(None),
        }
    }

    /// Builds this backend beside the running `source`, holding `docs`,
    /// ready to be verified and switched to. A backend that keeps files
    /// shares them with a source that keeps files; otherwise the documents
    /// are written out, in batches, `copied` told how many are after each.
    /// On failure what was made is removed again.
    pub fn build(
        &self,
        layout: &ProjectLayout,
        source: BackendKind,
        docs: &[Doc],
        copied: &mut dyn FnMut(usize) -> StorageResult<()>,
    ) -> StorageResult<Built> {
        let mut built = Built { spec: self.clone(), store: None, made: self.made_by_build(layout, source, docs) };
        match self.fill(layout, source, docs, &mut built, copied) {
            Ok(()) => Ok(built),
            Err(e) => {
                built.abandon(layout);
                Err(e)
            }
        }
    }

    /// What building this backend beside `source` makes, all of it removed
    /// again when the migration does not finish: the exported YAML files
    /// (those holding a version the export wrote), the hybrid index, the
    /// staged database, the rows of `docs` in a database server.
    fn made_by_build(&self, layout: &ProjectLayout, source: BackendKind, docs: &[Doc]) -> Vec<Made> {
        let mut made = Vec::new();
        if self.exports_from(source) {
            made.push(Made::Export);
        }
        match self.kind {
            BackendKind::File => {}
            BackendKind::Hybrid => made.push(Made::Database(layout.index_db())),
            BackendKind::Database(DatabaseKind::Sqlite) => {
                made.push(Made::Staged(staging_path(&layout.enterprise_db())))
            }
            BackendKind::Database(DatabaseKind::Postgresql) => {
                if let Some(url) = &self.url {
                    let ids = docs.iter().filter_map(|d| crate::document::id(d)).map(str::to_owned).collect();
                    made.push(Made::Rows(Box::new(url.clone()), ids));
                }
            }
        }
        made
    }

    /// True when building this backend from `source` writes YAML files
    /// (an export out of a database).
    pub fn exports_from(&self, source: BackendKind) -> bool {
        self.kind.keeps_files() && !source.keeps_files()
    }

    fn fill(
        &self,
        layout: &ProjectLayout,
        source: BackendKind,
        docs: &[Doc],
        built: &mut Built,
        copied: &mut dyn FnMut(usize) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let exports = self.exports_from(source);
        if exports {
            // Refused up front rather than half-way through the export.
            let tree = MilestoneTree::new(layout.clone());
            if let Some(id) = docs.iter().filter_map(|d| crate::document::id(d)).find(|id| tree.exists(id)) {
                return Err(StorageError::Invalid(format!(
                    "a file for milestone `{id}` already exists in .milestones/; move it away and migrate again"
                )));
            }
        }
        let mut bulk_loaded = None;
        let store: Arc<dyn Storage> = match self.kind {
            BackendKind::File => Arc::new(FileStore::open(layout.clone())?),
            BackendKind::Hybrid => Arc::new(HybridStore::open(layout.clone(), self.events_in_database)?),
            BackendKind::Database(DatabaseKind::Sqlite) => {
                let path = staging_path(&layout.enterprise_db());
                remove_database(&path)?;
                let store = Arc::new(SqliteStore::create_for_bulk_load(&path)?);
                bulk_loaded = Some(store.clone());
                store
            }
            BackendKind::Database(DatabaseKind::Postgresql) => {
                let url = self.url()?;
                let store = PostgresStore::open(url)?;
                // Built into the live tables, which other project roots may
                // share: only an empty database is filled, and undoing the
                // build removes exactly the rows it wrote.
                let source = copy_source(layout);
                let mut held = store.count()?;
                let unfinished = store.unfinished_copies()?;
                if held > 0 && unfinished == [source.clone()] {
                    // This project's own copy that could not be undone
                    // (the server went away): cleared, and made again.
                    tracing::warn!(milestones = held, target = %url.target(), "clearing what an unfinished copy from this project left");
                    store.clear()?;
                    held = 0;
                }
                if held > 0 {
                    return Err(StorageError::Invalid(format!(
                        "{} already holds {held} milestone(s); a migration copies into an empty database only \
                         (a project root with no milestones of its own joins it with `msctl init --backend database \
                         --database postgresql --url URL`)",
                        url.target()
                    )));
                }
                // Saved before anything is copied: a start after a crash
                // needs it to undo the copy.
                crate::config::save_database_url(layout, url)
                    .map_err(|e| StorageError::Invalid(format!("cannot save the database URL: {e}")))?;
                store.mark_copy(&source, false)?;
                Arc::new(store)
            }
        };
        built.store = Some(store.clone());
        let manifest = exports.then(|| FileManifest::export(layout));
        if let Some(manifest) = &manifest {
            manifest.begin()?;
        }
        if !exports && self.kind.keeps_files() {
            // The files are shared: opening the store was the copy.
            return copied(docs.len());
        }
        let mut done = 0;
        for batch in docs.chunks(IMPORT_BATCH) {
            if let Some(manifest) = &manifest {
                manifest.note(batch)?;
            }
            store.import(batch)?;
            done += batch.len();
            copied(done)?;
            crate::injected::pause("copying");
        }
        if let Some(store) = bulk_loaded {
            // Once the rows are in; the catch-up needs them.
            store.finish_bulk_load()?;
        }
        Ok(())
    }

    /// Where this backend keeps the milestones, in words (a migration's
    /// plan).
    pub fn describe(&self) -> String {
        match self.kind {
            BackendKind::File => "YAML files in .milestones/active/ and completed/".to_owned(),
            BackendKind::Hybrid => "YAML files indexed in .milestones/index.db".to_owned(),
            BackendKind::Database(DatabaseKind::Sqlite) => ".milestones/enterprise.db (SQLite)".to_owned(),
            BackendKind::Database(DatabaseKind::Postgresql) => {
                self.url.as_ref().map_or_else(|| "PostgreSQL (no URL configured)".to_owned(), DatabaseUrl::target)
            }
        }
    }

    /// What [`BackendSpec::retire`] does once `successor` serves, in words.
    pub fn retire_described(&self, successor: BackendKind) -> Vec<String> {
        let mut steps = Vec::new();
        if self.kind == BackendKind::Hybrid && successor != BackendKind::Hybrid {
            steps.push("remove .milestones/index.db".to_owned());
        }
        if self.kind.keeps_files() && !successor.keeps_files() {
            steps.push(
                "remove the YAML files (they are in the backup; in a git work tree they show as deleted)".to_owned(),
            );
        }
        if self.kind == BackendKind::Database(DatabaseKind::Sqlite) && successor != self.kind {
            steps.push("remove .milestones/enterprise.db (it is in the backup)".to_owned());
        }
        if self.kind == BackendKind::Database(DatabaseKind::Postgresql) {
            steps.push("leave the PostgreSQL database as it is: other project roots may share it".to_owned());
        }
        steps
    }

    /// Lists the YAML files of this (old) backend that
    /// [`BackendSpec::retire`] will remove once `successor` serves, so that
    /// a crash in between does not leave them for a database to take in as
    /// outside edits. Called while writes go on, then again for `written`
    /// (the milestones written since) with writes held before the switch.
    pub fn list_stale_files(
        &self,
        layout: &ProjectLayout,
        successor: BackendKind,
        store: &dyn Storage,
        written: Option<&HashSet<String>>,
    ) -> StorageResult<()> {
        let manifest = FileManifest::stale(layout);
        let Some(files) = store.files().filter(|_| !successor.keeps_files()) else { return manifest.remove() };
        match written {
            None => manifest.list(&files.known_files()?),
            Some(ids) => {
                let mut known = Vec::new();
                for id in ids {
                    if let Some((_, hash)) = files.known_file(id)? {
                        known.push((id.clone(), hash));
                    }
                }
                manifest.add(&known)
            }
        }
    }

    /// Removes what only this (old) backend kept, now that `successor`
    /// serves: its index or database, and, when the successor keeps no
    /// files, the YAML files [`BackendSpec::list_stale_files`] listed (a
    /// file edited outside meanwhile stays, for the new backend to import).
    /// Writes may go on meanwhile: they go to the successor. Everything
    /// removed is in the backup; failures are returned to be reported, not
    /// undone.
    pub fn retire(&self, layout: &ProjectLayout, successor: BackendKind) -> Vec<StorageError> {
        let tree = MilestoneTree::new(layout.clone());
        let mut results = Vec::new();
        if self.kind == BackendKind::Hybrid && successor != BackendKind::Hybrid {
            results.push(remove_database(&layout.index_db()));
        }
        if self.kind.keeps_files() && !successor.keeps_files() {
            results.push(FileManifest::stale(layout).remove_listed(&tree));
        }
        if self.kind == BackendKind::Database(DatabaseKind::Sqlite) && successor != self.kind {
            results.push(remove_database(&layout.enterprise_db()));
        }
        // A PostgreSQL database is left as it is: other project roots may
        // still be served from it (and the backup holds its documents).
        results.into_iter().filter_map(Result::err).collect()
    }
}

/// The PostgreSQL documents in a backup folder, a JSON line each.
pub const POSTGRESQL_BACKUP: &str = "postgresql-milestones.jsonl";

/// Documents imported per transaction during a migration's copy.
const IMPORT_BATCH: usize = 1_000;

/// A backend built by [`BackendSpec::build`], not yet serving.
pub struct Built {
    spec: BackendSpec,
    store: Option<Arc<dyn Storage>>,
    made: Vec<Made>,
}

/// Something a build made, removed again if the migration fails.
enum Made {
    /// YAML files an export wrote, as its manifest notes them (a file
    /// someone else put there meanwhile stays).
    Export,
    /// A database file built in place (the hybrid index).
    Database(PathBuf),
    /// A database built beside the live one, moved into place on commit.
    Staged(PathBuf),
    /// Rows written into a database server's live (and empty) tables.
    Rows(Box<DatabaseUrl>, Vec<String>),
}

impl Built {
    /// The new backend, for verifying the copy.
    pub fn store(&self) -> StorageResult<&dyn Storage> {
        self.store.as_deref().ok_or_else(|| StorageError::Invalid("the backend was not built".to_owned()))
    }

    /// Makes the built backend the project's: a staged database is moved
    /// into place, then `config/storage-backend.txt` is replaced (that
    /// rename is the moment of the switch) and `storage-config.yaml` names
    /// the database engine.
    pub fn commit(mut self, layout: &ProjectLayout, config: &StorageConfig) -> StorageResult<Arc<dyn Storage>> {
        let staged = self.made.iter().find_map(|m| match m {
            Made::Staged(path) => Some(path.clone()),
            _ => None,
        });
        let store = match (staged, self.store.take()) {
            (Some(staged), Some(store)) => {
                // Fold the copy's WAL into its file and close it before it
                // moves.
                store.flush()?;
                drop(store);
                let live = layout.enterprise_db();
                // A stale WAL beside the old file would be replayed into the
                // new one.
                remove_database(&live)?;
                crate::injected::crash_point("switch-live-removed");
                fs::rename(&staged, &live).map_err(|e| StorageError::io("move into place", &live, e))?;
                crate::injected::crash_point("switch-moved");
                remove_database(&staged)?;
                self.spec.open(layout)?
            }
            (None, Some(store)) => store,
            (_, None) => return Err(StorageError::Invalid("the backend was not built".to_owned())),
        };
        if let (Some(url), BackendKind::Database(DatabaseKind::Postgresql)) = (&self.spec.url, self.spec.kind) {
            if config.database_url.as_ref() != Some(url) {
                crate::config::save_database_url(layout, url)
                    .map_err(|e| StorageError::Invalid(format!("cannot save the database URL: {e}")))?;
            }
        }
        self.spec.name_in_config(layout)?;
        Ok(store)
    }

    /// Brings the built backend up to date with `source` for the milestones
    /// in `ids` (written since the copy began), with writes held. A backend
    /// that shares the YAML files with the source takes each file in again
    /// (or its removal); any other is written the source's version, or has
    /// the milestone removed.
    pub fn catch_up(
        &mut self,
        layout: &ProjectLayout,
        source: &dyn Storage,
        ids: &HashSet<String>,
    ) -> StorageResult<()> {
        let store = self.store()?;
        if source.kind().keeps_files() && self.spec.kind.keeps_files() {
            let files =
                store.files().ok_or_else(|| StorageError::Invalid("the built backend keeps no files".into()))?;
            let tree = MilestoneTree::new(layout.clone());
            let mut loaded_files = Vec::new();
            for id in ids {
                let seen = files.known_file(id)?;
                let mut found = None;
                for folder in [Folder::Active, Folder::Completed] {
                    if let Some(file) = tree.inspect(&tree.path_of(id, folder))? {
                        found = Some(file);
                        break;
                    }
                }
                match found.map(|file| tree.load(&file)) {
                    Some(Ok(loaded)) => loaded_files.push((loaded, seen)),
                    Some(Err(problem)) => {
                        let file = problem.file.clone().unwrap_or_else(|| id.clone());
                        files.note_file_problem(&file, Some(problem));
                    }
                    None => {
                        files.absorb_removal(id, seen.as_ref())?;
                    }
                }
            }
            files.absorb_all(&loaded_files)?;
            return Ok(());
        }
        let mut written = Vec::new();
        let ids: Vec<String> = ids.iter().cloned().collect();
        for (id, found) in ids.iter().zip(source.get_many(&ids)?) {
            match found {
                Ok(Some(stored)) => written.push(stored.doc),
                Ok(None) => {
                    store.remove(id)?;
                }
                // Known only as a file that does not load: nothing to copy.
                Err(StorageError::Unreadable { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let exports = self.made.iter().any(|m| matches!(m, Made::Export));
        for batch in written.chunks(IMPORT_BATCH) {
            if exports {
                // Undone like the rest of the export, should the switch
                // not happen.
                FileManifest::export(layout).note(batch)?;
            }
            store.import(batch)?;
        }
        Ok(())
    }

    /// Removes what the build made; the running backend was never touched.
    pub fn abandon(mut self, layout: &ProjectLayout) {
        self.store = None;
        if let Err(e) = FileManifest::stale(layout).remove() {
            tracing::warn!(error = %e, "cannot remove the list of files a failed migration was to remove");
        }
        for e in remove_made(layout, &self.made) {
            tracing::warn!(error = %e, "cannot remove what a failed migration built");
        }
    }
}

impl BackendSpec {
    /// Names this backend in the configuration: the database engine in
    /// `storage-config.yaml` first, then `config/storage-backend.txt`, whose
    /// rename is the moment of a switch (or of a switch back, when a
    /// migration away from this backend is undone: its data was never
    /// touched).
    pub fn name_in_config(&self, layout: &ProjectLayout) -> StorageResult<()> {
        if let Some(kind) = self.kind.database() {
            let named = StorageConfig::load(&layout.storage_config()).map(|c| c.database);
            if !matches!(named, Ok(DatabaseSetting::Provided(k)) if k == kind) {
                crate::config::set_database_type(&layout.storage_config(), kind)
                    .map_err(|e| StorageError::Invalid(format!("cannot record the database type: {e}")))?;
            }
        }
        let name = format!("{}\n", self.kind.name());
        Ok(crate::atomic::write_atomically(&layout.config(), "storage-backend.txt", name.as_bytes())?)
    }

    /// Undoes a build into this backend that a crash interrupted before the
    /// switch (`storage-backend.txt` still names `source`, which holds
    /// `source_docs` untouched): removes what [`BackendSpec::build`] makes,
    /// and, when the switch had begun moving a staged database into place,
    /// that database too (the one it replaced is in the backup).
    pub fn undo_interrupted_build(
        &self,
        layout: &ProjectLayout,
        source: BackendKind,
        source_docs: &[Doc],
        switch_begun: bool,
    ) -> StorageResult<()> {
        FileManifest::stale(layout).remove()?;
        let mut made = self.made_by_build(layout, source, source_docs);
        if switch_begun && self.kind == BackendKind::Database(DatabaseKind::Sqlite) {
            made.push(Made::Database(layout.enterprise_db()));
        }
        remove_made(layout, &made).into_iter().next().map_or(Ok(()), Err)
    }

    /// Tidies what a switch into this backend leaves (after a crash, or
    /// right after the switch): an export's manifest, a staged database's
    /// side files, or the mark of a copy in a shared database.
    pub fn tidy_interrupted_switch(&self, layout: &ProjectLayout) -> StorageResult<()> {
        FileManifest::export(layout).remove()?;
        match self.kind {
            BackendKind::Database(DatabaseKind::Sqlite) => remove_database(&staging_path(&layout.enterprise_db())),
            BackendKind::Database(DatabaseKind::Postgresql) => {
                PostgresStore::open(self.url()?)?.mark_copy(&copy_source(layout), true)
            }
            _ => Ok(()),
        }
    }
}

/// Who a copy into a shared database comes from: this machine and project
/// root (two machines may have the same path).
fn copy_source(layout: &ProjectLayout) -> String {
    let mut host = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    let named = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) } == 0;
    let end = host.iter().position(|b| *b == 0).unwrap_or(host.len());
    let host = if named { String::from_utf8_lossy(&host[..end]).into_owned() } else { "?".to_owned() };
    format!("{host}:{}", layout.root().display())
}

/// Removes what a build made, newest first; returns what could not be.
fn remove_made(layout: &ProjectLayout, made: &[Made]) -> Vec<StorageError> {
    let tree = MilestoneTree::new(layout.clone());
    made.iter()
        .rev()
        .filter_map(|made| {
            match made {
                Made::Database(path) | Made::Staged(path) => remove_database(path),
                Made::Export => FileManifest::export(layout).remove_listed(&tree),
                Made::Rows(url, ids) => {
                    PostgresStore::open(url).and_then(|store| store.undo_copy(&copy_source(layout), ids))
                }
            }
            .err()
        })
        .collect()
}

fn staging_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.migrating", path.display()))
}
