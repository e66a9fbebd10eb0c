//! Outside edits: what the file watcher hands the service. Each changed
//! path is read, parsed, checked and taken into the store, or reported when
//! broken (the last good version stays served and the file is left as it
//! is), and announced on the change feed as an outside edit.

use std::path::PathBuf;

use milestones_protocol::{EventKind, EventSource, Problem, Severity};
use serde_json::json;

use super::MilestoneService;
use crate::change_feed::NewEvent;
use crate::document::{self, Folder};
use crate::error::ServiceResult;
use crate::peer::Peer;
use crate::storage::tree::{MilestoneTree, TreeFile};
use crate::storage::Storage;

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
    /// writes never come back in. Runs under the write lock.
    pub fn absorb_outside_edits(&self, paths: &[PathBuf]) -> OutsideEdits {
        let _writes = self.lock_writes();
        let storage = self.storage();
        let tree = MilestoneTree::new(self.layout.clone());
        let mut summary = OutsideEdits::default();
        let mut seen = std::collections::HashSet::new();
        for path in paths {
            if !seen.insert(path) {
                continue;
            }
            let Some((folder, id)) = tree.classify(path) else { continue };
            let file = tree.relative(path);
            let outcome = match tree.inspect(path) {
                Some(found) => self.absorb_file(&*storage, &tree, &found, &file),
                None => self.absorb_missing(&*storage, &tree, &id, folder, &file),
            };
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

    fn absorb_file(&self, storage: &dyn Storage, tree: &MilestoneTree, found: &TreeFile, file: &str) -> ServiceResult<Option<EventKind>> {
        let loaded = match tree.load(found) {
            Ok(loaded) => loaded,
            Err(problem) => return Ok(Some(self.invalid_file(storage, &found.stem, file, problem))),
        };
        let known = storage.known_file(&loaded.id)?;
        if known.as_ref() == Some(&(loaded.folder, loaded.hash.clone())) {
            // Back to what the store holds (a `git checkout --` of a broken
            // file, say): nothing to take in, but any problem is gone.
            storage.note_file_problem(file, None);
            return Ok(None);
        }
        if let Err(e) = document::check_core_fields(&loaded.doc) {
            let problem = Problem {
                id: Some(loaded.id.clone()),
                file: Some(file.to_owned()),
                severity: Severity::Error,
                field: None,
                message: e.to_string(),
            };
            return Ok(Some(self.invalid_file(storage, &loaded.id, file, problem)));
        }
        let before = storage.get(&loaded.id)?;
        if let Err(e) = storage.absorb(&loaded) {
            let problem = Problem { id: Some(loaded.id.clone()), file: Some(file.to_owned()), severity: Severity::Error, field: None, message: e.to_string() };
            return Ok(Some(self.invalid_file(storage, &loaded.id, file, problem)));
        }
        storage.note_file_problem(file, None);
        if !storage.keeps_files() {
            // The database is the truth: the file's content now lives there.
            // Removed only if it still holds what was imported; a file still
            // being written is left for its next event.
            let still = std::fs::read(&found.path).map(|b| crate::storage::tree::hash_bytes(&b) == loaded.hash);
            if still.unwrap_or(false) {
                tree.remove(&loaded.id, loaded.folder)?;
            }
        }
        let kind = match (&before, known) {
            (None, _) => EventKind::Created,
            (Some(_), Some((old, _))) if old != loaded.folder => EventKind::Moved,
            _ => EventKind::Updated,
        };
        self.outside_event(kind, &loaded.id, document::status(&loaded.doc), file, None);
        Ok(Some(kind))
    }

    fn absorb_missing(&self, storage: &dyn Storage, tree: &MilestoneTree, id: &str, folder: Folder, file: &str) -> ServiceResult<Option<EventKind>> {
        storage.note_file_problem(file, None);
        // Moved rather than deleted: the other folder's file is taken in.
        if let Some(other) = tree.inspect(&tree.path_of(id, folder.other())) {
            let other_file = tree.relative(&other.path);
            return self.absorb_file(storage, tree, &other, &other_file);
        }
        // A store without files (the database) forgets nothing here.
        if !storage.keeps_files() || !storage.absorb_removal(id)? {
            return Ok(None);
        }
        self.outside_event(EventKind::Deleted, id, None, file, None);
        Ok(Some(EventKind::Deleted))
    }

    fn invalid_file(&self, storage: &dyn Storage, id: &str, file: &str, problem: Problem) -> EventKind {
        let detail = problem.message.clone();
        // The same breakage seen again (the file touched, not fixed) is not
        // news.
        let known = storage.problems().iter().any(|p| p.file.as_deref() == Some(file) && p.message == detail);
        if known {
            return EventKind::Invalid;
        }
        storage.note_file_problem(file, Some(problem));
        tracing::warn!(file, error = %detail, "an edited file does not load; its last good version stays served");
        self.outside_event(EventKind::Invalid, id, None, file, Some(detail));
        EventKind::Invalid
    }

    fn outside_event(&self, kind: EventKind, id: &str, status: Option<&str>, file: &str, detail: Option<String>) {
        let event = format!("outside_{}", format!("{kind:?}").to_lowercase());
        let details = json!({ "file": file, "detail": detail });
        let peer = Peer { user: "(outside edit)".to_owned() };
        self.log(&event, id, &peer, details);
        let source = EventSource::OutsideEdit;
        self.feed.publish(NewEvent { kind, id: Some(id), status, source, file: Some(file.to_owned()), detail });
    }

    /// Every path a full rescan must look at: each milestone file on disk,
    /// and where each stored milestone's file should be (to see deletions).
    pub fn rescan_paths(&self) -> Vec<PathBuf> {
        let storage = self.storage();
        let tree = MilestoneTree::new(self.layout.clone());
        let mut paths: Vec<PathBuf> = tree.list().unwrap_or_default().into_iter().map(|f| f.path).collect();
        for id in storage.ids().unwrap_or_default() {
            if let Ok(Some((folder, _))) = storage.known_file(&id) {
                paths.push(tree.path_of(&id, folder));
            }
        }
        paths
    }

    /// How outside edits are noticed, for `status`.
    pub fn set_watching(&self, how: String) {
        *self.watching.write().unwrap_or_else(|p| p.into_inner()) = how;
    }

}
