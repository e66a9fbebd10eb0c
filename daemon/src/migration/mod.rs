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

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use milestones_protocol::{MigrationReport, Query};

use crate::config::StorageConfig;
use crate::document::fingerprint;
use crate::layout::ProjectLayout;
use crate::storage::{BackendKind, BackendSpec, Built, Doc, Storage, StorageError, StorageResult};

mod backup;
mod journal;

pub use self::backup::Backup;
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
    #[error("the {to} backend failed its health check after the switch ({reason}); switched back to {from}, which is unchanged")]
    Unhealthy { from: BackendKind, to: BackendKind, reason: String },
}

impl MigrationError {
    /// True when something was built and removed again (rather than the
    /// migration refused before it began).
    pub fn rolled_back(&self) -> bool {
        !matches!(self, MigrationError::AlreadyThere(_) | MigrationError::BrokenFiles(_))
    }

    /// True when the request or the data is at fault (the user can fix it),
    /// rather than the disk or the database.
    pub fn is_bad_input(&self) -> bool {
        match self {
            MigrationError::AlreadyThere(_) | MigrationError::BrokenFiles(_) => true,
            MigrationError::Step { source, .. } => source.is_bad_input(),
            MigrationError::Mismatch(_) | MigrationError::Unhealthy { .. } => false,
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

/// The new backend, ready to serve, what was done, and what the old one
/// leaves behind.
pub struct Migrated {
    pub store: Arc<dyn Storage>,
    pub report: MigrationReport,
    pub leftovers: Leftovers,
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

    /// Everything up to the switch, while writes go on: the journal, a
    /// snapshot, the backup, the target built from the snapshot, and a
    /// check of every copied record that no write has touched since
    /// (`written_so_far` names those that were; they are copied again by
    /// [`Prepared::catch_up`] and [`Prepared::finish`]). On failure what was built is removed and the
    /// journal closed: the running backend was never touched.
    pub fn prepare(self, written_so_far: &dyn Fn() -> HashSet<String>) -> MigrationResult<Prepared<'a>> {
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
        let mut lap = Lap::new();
        let built = (|| {
            let docs = self.snapshot().map_err(step("reading the current backend"))?;
            self.target.check_storable(&docs).map_err(step("checking the documents"))?;
            lap.done("read", docs.len());
            let total = docs.len();
            let (built, backup) = self.copy_and_back_up(&docs, &mut journal)?;
            lap.done("copied and backed up", total);
            let checked = journal
                .advance(self.layout, Phase::BackedUp)
                .map_err(step("journaling the backup"))
                .and_then(|()| built.store().map_err(step("copying milestones")))
                .and_then(|store| differing(&docs, store, &written_so_far()))
                .and_then(|pending| {
                    lap.done("checked", total);
                    self.stale_files(None)?;
                    journal.advance(self.layout, Phase::Copied).map_err(step("journaling the copy"))?;
                    Ok(pending)
                });
            match checked {
                Ok(pending) => Ok((docs, backup, built, pending)),
                Err(e) => {
                    built.abandon(self.layout);
                    Err(e)
                }
            }
        })();
        match built {
            Ok((docs, backup, built, pending)) => {
                lap.done("listed the files to remove", docs.len());
                let (copied, caught_up) = (docs.len(), HashSet::new());
                Ok(Prepared { migration: self, journal, built, copied, backup, started, lap, caught_up, pending })
            }
            Err(e) => {
                close_journal(self.layout);
                Err(e)
            }
        }
    }

    /// Joins a shared database that already holds milestones, from a
    /// project whose backend holds none: there is nothing to back up, copy
    /// or verify, so the switch is all there is (and the old backend's
    /// leftovers go). `None` when this is not such a case, for
    /// [`Migration::prepare`] to handle.
    pub fn join(
        layout: &ProjectLayout,
        config: &StorageConfig,
        source: &dyn Storage,
        target: &BackendSpec,
    ) -> MigrationResult<Option<Joined>> {
        let started = Instant::now();
        let (from, to) = (source.kind(), target.kind);
        let broken = source.files().is_some_and(|f| !f.problems().is_empty());
        if from == to || broken || source.count().map_err(step("counting the milestones"))? > 0 {
            return Ok(None);
        }
        let Some(built) = target.joinable().map_err(step("opening the database"))? else { return Ok(None) };
        let store = built.commit(layout, config).map_err(step("switching backends"))?;
        for e in BackendSpec::new(from, config).retire(layout, to) {
            tracing::warn!(error = %e, "joined the database, but a leftover of the old backend could not be removed");
        }
        let milestones = store.count().map_err(step("counting the milestones"))?;
        let report = MigrationReport {
            from: from.name().to_owned(),
            to: to.name().to_owned(),
            database: to.database().map(|d| d.name().to_owned()),
            milestones,
            backup: String::new(),
            duration_ms: started.elapsed().as_millis() as u64,
        };
        Ok(Some(Joined { store, report }))
    }

    /// Lists the source's files the switch will leave stale (see
    /// [`BackendSpec::list_stale_files`]): all of them while writes go on,
    /// those `written` since with writes held.
    fn stale_files(&self, written: Option<&HashSet<String>>) -> MigrationResult<()> {
        let old = BackendSpec::new(self.source.kind(), self.config);
        old.list_stale_files(self.layout, self.target.kind, &*self.source, written)
            .map_err(step("listing the files to remove"))
    }

    /// Copies `docs` into the target (moving the journal's cursor) and
    /// takes the backup alongside, on another thread: they read and write
    /// different things, and the backup is complete before anything is
    /// switched or removed. Not alongside an export, which writes into the
    /// folders the backup archives. Whichever fails, the other's work is
    /// undone (a backup left is only a folder in `backups/`).
    fn copy_and_back_up(&self, docs: &[Doc], journal: &mut Journal) -> MigrationResult<(Built, PathBuf)> {
        let (from, total) = (self.source.kind(), docs.len());
        let take_backup = || backup::take(self.layout, &*self.source, &self.target, total);
        let mut build = || {
            let mut copied = |copied| journal.copying(self.layout, copied, total);
            self.target.build(self.layout, from, docs, &mut copied)
        };
        let (built, backup) = if self.target.exports_from(from) {
            let backup = take_backup().map_err(step("taking the backup"))?;
            (build(), Ok(backup))
        } else {
            std::thread::scope(|scope| {
                let backup = scope.spawn(take_backup);
                let built = build();
                let backup = backup
                    .join()
                    .unwrap_or_else(|_| Err(StorageError::Invalid("the backup stopped on an internal error".into())));
                (built, backup)
            })
        };
        let built = built.map_err(step("copying milestones"))?;
        match backup {
            Ok(backup) => Ok((built, backup)),
            Err(e) => {
                built.abandon(self.layout);
                Err(step("taking the backup")(e))
            }
        }
    }

    /// Step 1: every document of the running backend.
    fn snapshot(&self) -> Result<Vec<Doc>, StorageError> {
        snapshot(&*self.source)
    }
}

/// A migration ready to switch: the target holds the snapshot.
pub struct Prepared<'a> {
    migration: Migration<'a>,
    journal: Journal,
    built: Built,
    /// How many milestones the snapshot held (for the log).
    copied: usize,
    backup: PathBuf,
    started: Instant,
    lap: Lap,
    /// Every milestone copied again since the snapshot, checked at the end.
    caught_up: HashSet<String>,
    /// Milestones whose copy differed from the snapshot (a write in flight
    /// when the copy was made), copied again with the first catch-up.
    pending: HashSet<String>,
}

impl<'a> Prepared<'a> {
    /// `written`, with the milestones whose copy differed from the snapshot
    /// (copied again with the first catch-up).
    fn with_pending(&mut self, written: &HashSet<String>) -> HashSet<String> {
        std::mem::take(&mut self.pending).into_iter().chain(written.iter().cloned()).collect()
    }

    /// Copies again the milestones in `written` (written since the
    /// migration began), while writes go on: rounds of this before writes
    /// are held leave only the last few for [`Prepared::finish`]. Each
    /// round also compares what it copied (a copy that differs, or was
    /// written again meanwhile, is copied again with the next), lists the
    /// files its writes left to remove, and folds the target's log into
    /// its file, so that the moment writes are held has only the last few
    /// to deal with. A failure removes what was built and closes the
    /// journal.
    pub fn catch_up(mut self, written: &HashSet<String>) -> MigrationResult<Self> {
        let layout = self.migration.layout;
        let written = self.with_pending(written);
        let source = &*self.migration.source;
        let settled = self
            .built
            .catch_up(layout, source, &written)
            .and_then(|()| self.built.store())
            .map_err(step("catching up with writes made during the copy"))
            .and_then(|store| {
                let differ = differing_copies(source, store, &written)?;
                self.migration.stale_files(Some(&written))?;
                store.flush().map_err(step("catching up with writes made during the copy"))?;
                Ok(differ)
            });
        match settled {
            Ok(differ) => {
                self.pending = differ;
                self.caught_up.extend(written);
                Ok(self)
            }
            Err(e) => {
                self.built.abandon(layout);
                close_journal(layout);
                Err(e)
            }
        }
    }

    /// The final catch-up and the switch, while the caller holds writes:
    /// every milestone in `written` (written since the last round) is
    /// copied again from the source and checked, with those whose copy
    /// differed at the last round, and the count compared; then the
    /// switch. A failure before the switch removes what was built; one at
    /// the switch itself is left to the next start to finish or undo, as
    /// after a crash.
    pub fn finish(mut self, written: &HashSet<String>) -> MigrationResult<Migrated> {
        let mut written = self.with_pending(written);
        let Migration { layout, config, source, target } = self.migration;
        let (from, to) = (source.kind(), target.kind);
        self.caught_up.extend(written.iter().cloned());
        self.lap.done("caught up while writes went on", self.caught_up.len());
        let (journal, lap, held) = (&mut self.journal, &mut self.lap, written.len());
        let caught_up = self
            .built
            .catch_up(layout, &*source, &written)
            .map_err(step("catching up with writes made during the copy"))
            .and_then(|()| journal.advance(layout, Phase::CaughtUp).map_err(step("journaling the catch-up")))
            .and_then(|()| self.built.store().map_err(step("catching up")))
            .and_then(|store| {
                lap.done("writes held: caught up", held);
                if crate::injected::fault("verify") {
                    written.extend(corrupt_one(&*source, store, &self.caught_up)?);
                }
                verify_written(&*source, store, &written)
            })
            .and_then(|()| journal.advance(layout, Phase::Verified).map_err(step("journaling the check")))
            .and_then(|()| {
                lap.done("writes held: checked", held);
                let old = BackendSpec::new(from, config);
                old.list_stale_files(layout, to, &*source, Some(&written)).map_err(step("listing the files to remove"))
            })
            .and_then(|()| journal.advance(layout, Phase::Switching).map_err(step("journaling the switch")));
        if let Err(e) = caught_up {
            self.built.abandon(layout);
            close_journal(layout);
            return Err(e);
        }
        self.lap.done("writes held: listed the files to remove", held);
        let store = match self.built.commit(layout, config) {
            Ok(store) => store,
            Err(e) => {
                tracing::error!(error = %e, "the switch failed; the next start finishes or undoes this migration");
                return Err(step("switching backends")(e));
            }
        };
        crate::injected::crash_point("switch-recorded");
        self.lap.done("writes held: switched", held);
        if let Err(reason) = healthy(&*store, &*source) {
            drop(store);
            switch_back(layout, config, from, &target, &*source);
            return Err(MigrationError::Unhealthy { from, to, reason });
        }
        // The switch is done and the new backend must serve now; a journal
        // left at `switching` is finished by the next start all the same.
        if let Err(e) = self.journal.advance(layout, Phase::Switched) {
            tracing::warn!(error = %e, "cannot record the switch in the migration journal");
        }
        if let Err(e) = target.tidy_interrupted_switch(layout) {
            tracing::warn!(error = %e, "switched, but cannot tidy what the copy left");
        }
        self.lap.done("writes held: health checked", self.copied);
        let milestones = store.count().map_err(step("counting the milestones"))?;
        let leftovers = Leftovers {
            layout: layout.clone(),
            config: config.clone(),
            source,
            to,
            lap: self.lap,
            milestones: self.copied,
        };
        Ok(Migrated {
            report: MigrationReport {
                from: from.name().to_owned(),
                to: to.name().to_owned(),
                database: to.database().map(|d| d.name().to_owned()),
                milestones,
                backup: layout.relative(&self.backup).display().to_string(),
                duration_ms: self.started.elapsed().as_millis() as u64,
            },
            store,
            leftovers,
        })
    }
}

/// A shared database joined without a copy ([`Migration::join`]).
pub struct Joined {
    pub store: Arc<dyn Storage>,
    pub report: MigrationReport,
}

/// What the old backend leaves once the new one serves: nothing serves
/// from it any more. Owned, so that another thread can remove it while
/// the client has its answer.
pub struct Leftovers {
    layout: ProjectLayout,
    config: StorageConfig,
    source: Arc<dyn Storage>,
    to: BackendKind,
    lap: Lap,
    /// How many milestones the old backend held (for the log).
    milestones: usize,
}

impl Leftovers {
    /// Removes the old backend's index, database or YAML files (all in the
    /// backup) and closes the journal: the migration is over. Writes may go
    /// on meanwhile (they go to the new backend); the files removed are
    /// those listed before the switch whose bytes are unchanged, so an edit
    /// made outside meanwhile stays for the new backend to import.
    pub fn remove(mut self) {
        crate::injected::crash_point("cleaning_up");
        for e in BackendSpec::new(self.source.kind(), &self.config).retire(&self.layout, self.to) {
            tracing::warn!(error = %e, "migration finished, but a leftover of the old backend could not be removed");
        }
        crate::injected::crash_point("cleaned_up");
        close_journal(&self.layout);
        self.lap.done("cleaned up", self.milestones);
    }
}

/// The health check of a backend just switched to, with writes still
/// held: it answers a count equal to the source's, reads back a milestone
/// and runs a query, and a database server is reachable.
fn healthy(store: &dyn Storage, source: &dyn Storage) -> Result<(), String> {
    if crate::injected::fault("health") {
        return Err("injected by MILESTONED_FAULT_AT=health".to_owned());
    }
    let (held, expected) = (store.count().map_err(|e| e.to_string())?, source.count().map_err(|e| e.to_string())?);
    if held != expected {
        return Err(format!("it holds {held} milestones, the source {expected}"));
    }
    let page = store.query(&Query { limit: Some(1), ..Query::default() }).map_err(|e| e.to_string())?;
    if let Some(id) = page.items.first().and_then(|d| d.as_map()?.get("id")?.as_str()) {
        store.get(id).map_err(|e| e.to_string())?.ok_or_else(|| format!("`{id}` is listed but cannot be read"))?;
    }
    // Not listening yet is no fault: the service starts that once it serves.
    match store.database_health() {
        Some(health) if health.connection == "unreachable" => {
            Err(format!("the database is unreachable: {}", health.error.unwrap_or_default()))
        }
        _ => Ok(()),
    }
}

/// Undoes a switch whose new backend failed its health check: the old
/// backend, untouched since writes are held, is named again in
/// `storage-backend.txt` (that rename is the moment of the switch back),
/// and what the build made is removed, as after a crash at `switching`.
fn switch_back(
    layout: &ProjectLayout,
    config: &StorageConfig,
    from: BackendKind,
    target: &BackendSpec,
    source: &dyn Storage,
) {
    let undone = BackendSpec::new(from, config)
        .name_in_config(layout)
        .and_then(|()| snapshot(source))
        .and_then(|docs| target.undo_interrupted_build(layout, from, &docs, true));
    match undone {
        Ok(()) => close_journal(layout),
        // The journal stays: the next start finishes the undoing.
        Err(e) => tracing::error!(error = %e, "cannot switch back after a failed health check; the next start will"),
    }
}

fn close_journal(layout: &ProjectLayout) {
    if let Err(e) = Journal::close(layout) {
        tracing::warn!(error = %e, "cannot remove the migration journal");
    }
}

fn snapshot(store: &dyn Storage) -> StorageResult<Vec<Doc>> {
    let mut docs = Vec::new();
    store.for_each(&mut |d| docs.push(d.clone()))?;
    Ok(docs)
}

/// The migration under way (or one a crash interrupted, until the next
/// start deals with it), as its journal records it.
pub fn in_progress(layout: &ProjectLayout) -> StorageResult<Option<milestones_protocol::MigrationProgress>> {
    Ok(Journal::read(layout)?.map(|journal| milestones_protocol::MigrationProgress {
        from: journal.from().name().to_owned(),
        to: journal.to().name().to_owned(),
        phase: journal.describe(),
        started_at: journal.started_at.clone(),
    }))
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
        for e in source.retire(layout, to) {
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

/// Step 4: compares the copy with the snapshot, record by record, by a
/// content hash. Milestones written since the snapshot (`written`) are left
/// out; any other that differs or is missing on one side (a write still in
/// flight while the copy was made) is returned, to be copied again by the
/// next catch-up round. Each round compares what it copied
/// ([`differing_copies`]), the last with writes held ([`verify_written`]):
/// at the switch every record has been compared since its last copy.
fn differing(docs: &[Doc], target: &dyn Storage, written: &HashSet<String>) -> MigrationResult<HashSet<String>> {
    // The snapshot's hashes on another thread while the copy is read back.
    let (expected, copied) = std::thread::scope(|scope| {
        let expected = scope.spawn(|| {
            docs.iter()
                .map(|d| (crate::document::id(d).unwrap_or_default(), d))
                .filter(|(id, _)| !written.contains(*id))
                .map(|(id, d)| (id, fingerprint(d)))
                .collect::<HashMap<&str, String>>()
        });
        let mut copied = Vec::with_capacity(docs.len());
        let read = target.for_each(&mut |doc| {
            let id = crate::document::id(doc).unwrap_or_default();
            if !written.contains(id) {
                copied.push((id.to_owned(), fingerprint(doc)));
            }
        });
        let expected = expected.join().map_err(|_| StorageError::Invalid("stopped on an internal error".into()));
        (expected, read.map(|()| copied))
    });
    let mut expected = expected.map_err(step("checking the copy"))?;
    let mut differ = HashSet::new();
    for (id, hash) in copied.map_err(step("reading back the copy"))? {
        if expected.remove(id.as_str()) != Some(hash) {
            differ.insert(id);
        }
    }
    differ.extend(expected.into_keys().map(str::to_owned));
    if !differ.is_empty() {
        tracing::debug!(milestones = differ.len(), "copies differ from the snapshot; they are copied again");
    }
    Ok(differ)
}

/// The milestones of `ids` whose copy in `target` differs from the
/// source (or is there on one side only).
fn differing_copies(
    source: &dyn Storage,
    target: &dyn Storage,
    ids: &HashSet<String>,
) -> MigrationResult<HashSet<String>> {
    let ids: Vec<String> = ids.iter().cloned().collect();
    let hashes = |store: &dyn Storage| -> MigrationResult<Vec<Option<String>>> {
        let found = store.get_many(&ids).and_then(|found| {
            found.into_iter().map(|r| r.map(|s| s.map(|s| fingerprint(&s.doc)))).collect::<StorageResult<_>>()
        });
        found.map_err(step("reading back the catch-up"))
    };
    let (here, there) = (hashes(source)?, hashes(target)?);
    Ok(ids.into_iter().zip(here.into_iter().zip(there)).filter(|(_, (a, b))| a != b).map(|(id, _)| id).collect())
}

/// After the last catch-up, with writes held: the milestones it copied
/// are the same on both sides (every other was compared after its last
/// copy, while writes went on), and so is the count.
fn verify_written(source: &dyn Storage, target: &dyn Storage, written: &HashSet<String>) -> MigrationResult<()> {
    mismatch(differing_copies(source, target, written)?.into_iter().collect())?;
    let (here, there) = (source.count(), target.count());
    match (here, there) {
        (Ok(a), Ok(b)) if a == b => Ok(()),
        (Ok(a), Ok(b)) => Err(MigrationError::Mismatch(format!("{a} milestones in the source, {b} in the copy"))),
        (Err(e), _) | (_, Err(e)) => Err(step("counting the milestones")(e)),
    }
}

/// The fault `MILESTONED_FAULT_AT=verify` injects: the copy of one
/// milestone written during the migration comes out different, as a
/// faulty target would store it.
fn corrupt_one(
    source: &dyn Storage,
    target: &dyn Storage,
    caught_up: &HashSet<String>,
) -> MigrationResult<Option<String>> {
    let Some(id) = caught_up.iter().min() else { return Ok(None) };
    if let Some(stored) = source.get(id).map_err(step("reading back the catch-up"))? {
        let mut doc = (*stored.doc).clone();
        doc.insert("title", milestones_protocol::Value::from("corrupted by MILESTONED_FAULT_AT=verify"));
        target.import(&[Arc::new(doc)]).map_err(step("catching up"))?;
    }
    Ok(Some(id.clone()))
}

fn mismatch(mut wrong: Vec<String>) -> MigrationResult<()> {
    if wrong.is_empty() {
        return Ok(());
    }
    wrong.sort();
    Err(MigrationError::Mismatch(format!("{} milestone(s) differ after copying, first `{}`", wrong.len(), wrong[0])))
}
