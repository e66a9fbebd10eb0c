//! Outside edits: what the file watcher hands the service. Each changed
//! path is read, parsed, checked and taken into the store, or reported when
//! broken (the last good version stays served and the file is left as it
//! is), and announced on the change feed as an outside edit. A backend that
//! keeps files takes the edit in through its `FileKeeping` capability; a
//! database imports a dropped-in file as an ordinary write and removes it.

use std::collections::HashSet;
use std::path::PathBuf;

use milestones_protocol::{EventKind, EventSource, Problem, Severity};
use serde_json::json;

use super::{MilestoneService, ServiceResult};
use crate::change_feed::NewEvent;
use crate::document::{self, sha256_hex, Folder, Status};
use crate::peer::Peer;
use crate::storage::tree::{LoadedFile, MilestoneTree, TreeFile};
use crate::storage::{Storage, StorageError, StorageResult};

/// The file name rescan problems are recorded under.
pub(super) const RESCAN: &str = ".milestones (rescan)";

/// What one batch of outside edits did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutsideEdits {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub invalid: usize,
    pub failed: usize,
}

impl OutsideEdits {
    fn count(&mut self, kind: EventKind) {
        match kind {
            EventKind::Created => self.created += 1,
            EventKind::Deleted => self.deleted += 1,
            EventKind::Invalid => self.invalid += 1,
            _ => self.updated += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.created + self.updated + self.deleted + self.invalid
    }
}

impl MilestoneService {
    /// Takes in what someone changed in `active/` or `completed/` directly
    /// (an editor, a script, `git checkout`): each path is read, parsed,
    /// checked and stored, or reported when broken (the last good version
    /// stays served and the file is left as it is). Files whose bytes match
    /// what the store last wrote or read are skipped, so the daemon's own
    /// writes never come back in. A path that cannot even be looked at is
    /// counted as failed, never taken for a deletion.
    pub fn absorb_outside_edits(&self, paths: &[PathBuf]) -> OutsideEdits {
        // Taken in against the backend that serves once a migration is over.
        let _migrating = self.migrating.acquire();
        let _gate = self.write_gate();
        let storage = self.storage();
        let tree = MilestoneTree::new(self.layout.clone());
        let mut summary = OutsideEdits::default();
        let mut seen = HashSet::new();
        for path in paths {
            if !seen.insert(path) {
                continue;
            }
            let Some((folder, id)) = tree.classify(path) else { continue };
            let file = tree.relative(path);
            let outcome = self.known(&*storage, &id).and_then(|seen| match tree.inspect(path)? {
                Some(found) => self.absorb_file(&*storage, &tree, &found, &file, seen),
                None => self.absorb_missing(&*storage, &tree, &id, folder, &file, seen),
            });
            match outcome {
                Ok(Some(kind)) => summary.count(kind),
                Ok(None) => {}
                Err(e) => {
                    summary.failed += 1;
                    tracing::warn!(file, error = %e, "cannot take in an outside edit");
                }
            }
        }
        summary
    }

    /// Where the store has `id`'s file and which bytes it holds, read
    /// before the file is looked at: a write of the store's own that comes
    /// after makes what is read then stale (see `FileKeeping::absorb`).
    fn known(&self, storage: &dyn Storage, id: &str) -> ServiceResult<Option<(Folder, String)>> {
        Ok(match storage.files() {
            Some(files) => files.known_file(id)?,
            None => None,
        })
    }

    fn absorb_file(
        &self,
        storage: &dyn Storage,
        tree: &MilestoneTree,
        found: &TreeFile,
        file: &str,
        known: Option<(Folder, String)>,
    ) -> ServiceResult<Option<EventKind>> {
        let mut loaded = match tree.load(found) {
            Ok(loaded) => loaded,
            Err(problem) => return Ok(Some(self.invalid_file(storage, &found.stem, file, problem))),
        };
        if known.as_ref() == Some(&(loaded.folder, loaded.hash.clone())) {
            // Back to what the store holds (a `git checkout --` of a broken
            // file, a mode put back): nothing to take in, but any problem
            // is gone.
            self.note_problem(storage, file, None);
            return Ok(None);
        }
        if let Err(e) = document::check_core_fields(&loaded.doc) {
            let problem = file_problem(&loaded.id, file, e.to_string());
            return Ok(Some(self.invalid_file(storage, &loaded.id, file, problem)));
        }
        let (previous, previous_status) = match storage.get(&loaded.id) {
            Ok(stored) => (stored.as_ref().map(|s| Folder::of(&s.doc)), stored.and_then(|s| document::status(&s.doc))),
            // Known only as a broken file until now.
            Err(StorageError::Unreadable { .. }) => (None, None),
            Err(e) => return Err(e.into()),
        };
        // A status edited across the line moves the file, as a request's
        // would; the file is taken in where it then is. A file moved by
        // hand stays where it was put (seed 003 archives by moving a file
        // into completed/ as it is).
        let refiled;
        let mut file = file;
        let crossed = previous.is_some_and(|before| before != Folder::of(&loaded.doc) && before == loaded.folder);
        if storage.files().is_some() && crossed && tree.refile(&loaded.id, loaded.folder)? {
            loaded.folder = loaded.folder.other();
            refiled = tree.relative(&tree.path_of(&loaded.id, loaded.folder));
            file = &refiled;
        }
        let taken_in = match storage.files() {
            Some(files) => files.absorb(&loaded, known.as_ref()),
            None => import(storage, &loaded).map(|()| true),
        };
        match taken_in {
            Ok(true) => {}
            // The store wrote the file after it was read: its own newer
            // version stands, and that write's event follows.
            Ok(false) => return Ok(None),
            Err(e) => {
                let problem = file_problem(&loaded.id, file, e.to_string());
                return Ok(Some(self.invalid_file(storage, &loaded.id, file, problem)));
            }
        }
        self.note_problem(storage, file, None);
        if storage.files().is_none() {
            // The database is the truth: the file's content now lives there.
            // Removed only if it still holds what was imported; a file still
            // being written is left for its next event.
            let still = std::fs::read(&found.path).map(|b| sha256_hex(&b) == loaded.hash);
            if still.unwrap_or(false) {
                tree.remove(&loaded.id, loaded.folder)?;
            }
        }
        // Moved when its status crossed the line or its file changed
        // folders: the same rule as a request's.
        let kind = match previous {
            None => EventKind::Created,
            Some(before) if before != Folder::of(&loaded.doc) => EventKind::Moved,
            Some(_) if known.is_some_and(|(old, _)| old != loaded.folder) => EventKind::Moved,
            Some(_) => EventKind::Updated,
        };
        let statuses = (previous_status, document::status(&loaded.doc));
        self.outside_event(kind, &loaded.id, statuses, file, None);
        Ok(Some(kind))
    }

    fn absorb_missing(
        &self,
        storage: &dyn Storage,
        tree: &MilestoneTree,
        id: &str,
        folder: Folder,
        file: &str,
        known: Option<(Folder, String)>,
    ) -> ServiceResult<Option<EventKind>> {
        self.note_problem(storage, file, None);
        // Moved rather than deleted: the other folder's file is taken in.
        if let Some(other) = tree.inspect(&tree.path_of(id, folder.other()))? {
            let other_file = tree.relative(&other.path);
            return self.absorb_file(storage, tree, &other, &other_file, known);
        }
        // A store without files (the database) forgets nothing here.
        let Some(files) = storage.files() else { return Ok(None) };
        if !files.absorb_removal(id, known.as_ref())? {
            return Ok(None);
        }
        self.outside_event(EventKind::Deleted, id, (None, None), file, None);
        Ok(Some(EventKind::Deleted))
    }

    fn invalid_file(&self, storage: &dyn Storage, id: &str, file: &str, problem: Problem) -> EventKind {
        let detail = problem.message.clone();
        // The same breakage seen again (the file touched, not fixed) is not
        // news.
        let known = self.problems().iter().any(|p| p.file.as_deref() == Some(file) && p.message == detail);
        if known {
            return EventKind::Invalid;
        }
        self.note_problem(storage, file, Some(problem));
        tracing::warn!(file, error = %detail, "an edited file does not load; its last good version stays served");
        self.outside_event(EventKind::Invalid, id, (None, None), file, Some(detail));
        EventKind::Invalid
    }

    /// Records (or clears) a file's problem where it belongs: with the store
    /// when it keeps files, else with the service (a file dropped into a
    /// database backend's folders).
    fn note_problem(&self, storage: &dyn Storage, file: &str, problem: Option<Problem>) {
        match storage.files() {
            Some(files) => files.note_file_problem(file, problem),
            None => self.note_outside_problem(file, problem),
        }
    }

    /// Forgets the problems of files dropped into a database backend's
    /// folders (after a migration, the new backend judges those files).
    pub(super) fn forget_dropped_file_problems(&self) {
        let mut problems = self.outside_problems.write().unwrap_or_else(|p| p.into_inner());
        problems.retain(|p| p.file.as_deref() == Some(RESCAN));
    }

    fn note_outside_problem(&self, file: &str, problem: Option<Problem>) {
        let mut problems = self.outside_problems.write().unwrap_or_else(|p| p.into_inner());
        problems.retain(|p| p.file.as_deref() != Some(file));
        problems.extend(problem);
    }

    /// Logs and announces an outside edit; `statuses` are the milestone's
    /// before and after, where known.
    fn outside_event(
        &self,
        kind: EventKind,
        id: &str,
        (previous_status, status): (Option<Status>, Option<Status>),
        file: &str,
        detail: Option<String>,
    ) {
        let event = format!("outside_{}", format!("{kind:?}").to_lowercase());
        let details = json!({ "file": file, "detail": detail });
        let peer = Peer::daemon("(outside edit)");
        self.log(&event, id, &peer, details);
        let source = EventSource::OutsideEdit;
        let file = Some(file.to_owned());
        self.feed.publish(NewEvent { kind, id: Some(id), status, previous_status, source, file, detail });
    }

    /// Every path a full rescan must look at: each milestone file on disk,
    /// and where each stored milestone's file should be (to see deletions).
    /// When the tree or the store cannot be read, the rescan looks at
    /// nothing (what is known stays served) and `health` names the cause.
    pub fn rescan_paths(&self) -> Vec<PathBuf> {
        match self.collect_rescan_paths() {
            Ok(paths) => {
                self.note_outside_problem(RESCAN, None);
                paths
            }
            Err(e) => {
                tracing::warn!(error = %e, "the rescan cannot read the tree; keeping what is known");
                let problem = Problem {
                    id: None,
                    file: Some(RESCAN.to_owned()),
                    severity: Severity::Error,
                    field: None,
                    message: format!("a rescan of the milestone folders failed, so outside edits may be missed: {e}"),
                };
                self.note_outside_problem(RESCAN, Some(problem));
                Vec::new()
            }
        }
    }

    fn collect_rescan_paths(&self) -> StorageResult<Vec<PathBuf>> {
        let storage = self.storage();
        let tree = MilestoneTree::new(self.layout.clone());
        let mut paths: Vec<PathBuf> = tree.list()?.into_iter().map(|f| f.path).collect();
        if let Some(files) = storage.files() {
            for id in storage.ids()? {
                if let Some((folder, _)) = files.known_file(&id)? {
                    paths.push(tree.path_of(&id, folder));
                }
            }
        }
        Ok(paths)
    }

    /// How outside edits are noticed, for `status`.
    pub fn set_watching(&self, how: String) {
        *self.watching.write().unwrap_or_else(|p| p.into_inner()) = how;
    }

    /// True when the backend keeps the YAML files as its truth (the watcher
    /// imports files waiting in a database backend's folders at start-up).
    pub fn keeps_files(&self) -> bool {
        self.storage().files().is_some()
    }
}

fn file_problem(id: &str, file: &str, message: String) -> Problem {
    Problem { id: Some(id.to_owned()), file: Some(file.to_owned()), severity: Severity::Error, field: None, message }
}

/// Imports a file dropped into a database backend's folders: a new
/// milestone, or a replacement of the stored one, through the same
/// compare-and-swap as any write.
fn import(storage: &dyn Storage, loaded: &LoadedFile) -> StorageResult<()> {
    for _ in 0..super::MAX_ATTEMPTS {
        let result = match storage.get(&loaded.id)? {
            Some(stored) => storage.replace(loaded.doc.clone(), &stored.revision),
            None => storage.insert(loaded.doc.clone()),
        };
        match result {
            Err(StorageError::Stale { .. } | StorageError::AlreadyExists(_)) => continue,
            other => return other.map(|_| ()),
        }
    }
    Err(StorageError::Unavailable(format!("milestone `{}` kept changing while its file was imported", loaded.id)))
}
