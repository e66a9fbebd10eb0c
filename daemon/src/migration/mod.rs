//! `Migration`: moving every milestone from the running backend to another
//! (DESIGN §10). The steps: back up, build the target, copy, verify (count
//! and a content hash of every record), switch `storage-backend.txt`, clean
//! up what the old backend leaves behind. Any failure before the switch
//! removes what was built and leaves the running backend untouched.
//!
//! Every backend-specific step (building the target, switching to it,
//! removing what the old one leaves) goes through [`BackendSpec`], so this
//! file names no store. Each step is its own call taking what the previous
//! one produced, so a journal (for crash safety) and an online copy (for
//! migrations while writes go on) can slot in between them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use milestones_protocol::{Map, MigrationReport};

use crate::config::StorageConfig;
use crate::document::Folder;
use crate::layout::ProjectLayout;
use crate::storage::tree::MilestoneTree;
use crate::storage::{BackendKind, BackendSpec, Doc, Storage, StorageError, StorageResult};

mod journal;

pub use self::journal::Phase;
use self::journal::{phase_name, Journal};

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
        match self {
            MigrationError::AlreadyThere(_) | MigrationError::BrokenFiles(_) => true,
            MigrationError::Step { source, .. } => source.is_bad_input(),
            MigrationError::Mismatch(_) => false,
        }
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
    target: BackendSpec,
}

/// The new backend, ready to serve, and what was done.
pub struct Migrated {
    pub store: Arc<dyn Storage>,
    pub report: MigrationReport,
}

impl<'a> Migration<'a> {
    pub fn new(
        layout: &'a ProjectLayout,
        config: &'a StorageConfig,
        source: Arc<dyn Storage>,
        target: BackendSpec,
    ) -> Self {
        Migration { layout, config, source, target }
    }

    pub fn run(self) -> MigrationResult<Migrated> {
        let started = Instant::now();
        let (from, to) = (self.source.kind(), self.target.kind);
        if from == to {
            return Err(MigrationError::AlreadyThere(to.name().to_owned()));
        }
        let broken = self.source.files().map_or(0, |f| f.problems().len());
        if broken > 0 && !to.keeps_files() {
            return Err(MigrationError::BrokenFiles(broken));
        }
        let mut journal = Journal::begin(self.layout, from, to).map_err(step("starting the migration journal"))?;
        let result = self.steps(&mut journal, started);
        let over = match &result {
            Ok(_) => true,
            // Below the switch every step removed what it built. At the
            // switch itself, whether `storage-backend.txt` was replaced is
            // for the next start to find out and act on, as after a crash.
            Err(e) if journal.phase >= Phase::Switching => {
                tracing::error!(error = %e, "the switch failed; the next start finishes or undoes this migration");
                false
            }
            Err(_) => true,
        };
        if over {
            if let Err(e) = Journal::close(self.layout) {
                tracing::warn!(error = %e, "cannot remove the migration journal");
            }
        }
        result
    }

    /// The migration's steps, each recorded in the journal once done.
    fn steps(&self, journal: &mut Journal, started: Instant) -> MigrationResult<Migrated> {
        let (from, to) = (self.source.kind(), self.target.kind);
        let mut lap = Lap::new();
        let docs = self.snapshot().map_err(step("reading the current backend"))?;
        self.target.check_storable(&docs).map_err(step("checking the documents"))?;
        lap.done("read", docs.len());
        let backup = self.back_up().map_err(step("taking the backup"))?;
        journal.advance(self.layout, Phase::BackedUp).map_err(step("journaling the backup"))?;
        lap.done("backed up", docs.len());
        let built = self.target.build(self.layout, from, &docs).map_err(step("copying milestones"))?;
        let checked = journal
            .advance(self.layout, Phase::Copied)
            .map_err(step("journaling the copy"))
            .and_then(|()| built.store().map_err(step("copying milestones")))
            .and_then(|store| verify(&docs, store))
            .and_then(|()| journal.advance(self.layout, Phase::Verified).map_err(step("journaling the verification")))
            .and_then(|()| journal.advance(self.layout, Phase::Switching).map_err(step("journaling the switch")));
        if let Err(e) = checked {
            if journal.phase < Phase::Switching {
                built.abandon(self.layout);
            }
            return Err(e);
        }
        lap.done("copied and verified", docs.len());
        let store = built.commit(self.layout, self.config).map_err(step("switching backends"))?;
        crate::crash_points::reached("switch-recorded");
        journal.advance(self.layout, Phase::Switched).map_err(step("journaling the switch"))?;
        lap.done("switched", docs.len());
        let source_spec = BackendSpec::new(from, self.config);
        for e in source_spec.retire(self.layout, to, &docs) {
            tracing::warn!(error = %e, "migration finished, but a leftover of the old backend could not be removed");
        }
        crate::crash_points::reached("cleaned_up");
        lap.done("cleaned up", docs.len());
        Ok(Migrated {
            report: MigrationReport {
                from: from.name().to_owned(),
                to: to.name().to_owned(),
                database: to.database().map(|d| d.name().to_owned()),
                milestones: docs.len() as u64,
                backup: self.layout.relative(&backup).display().to_string(),
                duration_ms: started.elapsed().as_millis() as u64,
            },
            store,
        })
    }

    /// Step 2: `backups/<time>-<from>-to-<to>/` with copies of the milestone
    /// files (copies, not links: a link would follow an edit made in place),
    /// the configuration, a copy of the source's own database, and whatever
    /// the target will replace.
    fn back_up(&self) -> Result<PathBuf, StorageError> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let from = self.source.kind();
        let dir = self.layout.backups().join(format!("{stamp}-{from}-to-{}", self.target.kind));
        let tree = MilestoneTree::new(self.layout.clone());
        for folder in [Folder::Active, Folder::Completed] {
            let from = tree.folder_path(folder);
            let name = from.file_name().map(|n| n.to_owned()).unwrap_or_default();
            copy_folder(&from, &dir.join(name))?;
        }
        copy_folder(&self.layout.config(), &dir.join("config"))?;
        self.source.backup_to(&dir)?;
        self.target.back_up_replaced(self.layout, from, &dir)?;
        Ok(dir)
    }

    /// Step 1: every document of the running backend.
    fn snapshot(&self) -> Result<Vec<Doc>, StorageError> {
        snapshot(&*self.source)
    }
}

fn snapshot(store: &dyn Storage) -> StorageResult<Vec<Doc>> {
    let mut docs = Vec::new();
    store.for_each(&mut |d| docs.push(Arc::new(d.clone())))?;
    Ok(docs)
}

/// What start-up did about a migration a crash interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub from: BackendKind,
    pub to: BackendKind,
    /// The last phase the journal recorded.
    pub phase: Phase,
    /// True when the migration was finished, false when it was undone.
    pub finished: bool,
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (done, serving) = if self.finished { ("finished", self.to) } else { ("undone", self.from) };
        write!(
            f,
            "a migration from {} to {} was interrupted after `{}`; it was {done}, and the {serving} backend serves",
            self.from,
            self.to,
            phase_name(self.phase)
        )
    }
}

/// Finishes or undoes a migration a crash interrupted. Runs at start-up
/// before any backend serves. `config/storage-backend.txt` decides, since
/// its rename is the moment of the switch: when it names the target, the
/// old backend's leftovers are removed; when it still names the source
/// (which was never touched), what the build made is removed. Either way
/// every milestone is in exactly one backend afterwards. `None` when no
/// migration was under way.
pub fn recover(layout: &ProjectLayout, config: &StorageConfig) -> StorageResult<Option<Recovered>> {
    let Some(journal) = Journal::read(layout)? else { return Ok(None) };
    let (from, to) = (journal.from(), journal.to());
    let (source, target) = (BackendSpec::new(from, config), BackendSpec::new(to, config));
    let configured = BackendSpec::configured(layout, config)?.kind;
    let finished = if configured == to {
        target.tidy_interrupted_switch(layout)?;
        let docs = snapshot(&*target.open(layout)?)?;
        for e in source.retire(layout, to, &docs) {
            tracing::warn!(error = %e, "a leftover of the old backend could not be removed");
        }
        true
    } else if configured == from {
        let docs = snapshot(&*source.open(layout)?)?;
        target.undo_interrupted_build(layout, from, &docs, journal.phase >= Phase::Switching)?;
        false
    } else {
        return Err(StorageError::Invalid(format!(
            "a migration from {from} to {to} was interrupted, but config/storage-backend.txt names {configured}; \
             milestoned will not guess: see {} and .milestones/backups/",
            layout.relative(&layout.migration_journal()).display()
        )));
    };
    Journal::close(layout)?;
    Ok(Some(Recovered { from, to, phase: journal.phase, finished }))
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

/// A document's content hash: SHA-256 of its JSON, keys in order. A
/// document that cannot be written as JSON hashes as its error, which
/// matches nothing a stored copy can hash to.
fn fingerprint(doc: &Map) -> String {
    let json = serde_json::to_vec(doc).unwrap_or_else(|e| format!("unhashable: {e}").into_bytes());
    crate::storage::tree::hash_bytes(&json)
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
