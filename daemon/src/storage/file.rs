//! `FileStore`: the plain-file backend. One YAML file per milestone in
//! `active/` or `completed/` (by status), an in-memory index of every document
//! built at start-up by parsing the tree in parallel, and queries answered
//! from that index.
//!
//! Files are the source of truth. A file that does not parse is never
//! rewritten or deleted; it is listed in [`FileKeeping::problems`] until fixed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use milestones_protocol::{Map, Page, Problem, Query};

use super::cycles;
use super::derived::Derived;
use super::error::{StorageError, StorageResult};
use super::interface::{
    id_of, note_problem, unreadable, BackendKind, FileKeeping, Requirement, Revision, Storage, Stored,
};
use super::list_index::ListIndex;
use super::tree::{LoadedFile, MilestoneTree};
use crate::document::{self, Doc, Folder};
use crate::graph::DependencyGraph;
use crate::layout::ProjectLayout;

pub struct FileStore {
    tree: MilestoneTree,
    index: RwLock<Index>,
    /// Serialises this store's check-then-write sequences (a file tree has
    /// one daemon: the instance lock sees to that). Readers never take it.
    writes: Mutex<()>,
}

#[derive(Default)]
struct Index {
    docs: HashMap<String, Entry>,
    /// Edges out of each milestone, kept in step with `docs` so that a write
    /// checks for cycles around itself without walking every document.
    requirements: HashMap<String, Vec<Requirement>>,
    /// The orders lists are read in.
    lists: ListIndex,
    problems: Vec<Problem>,
    /// The graph and `stats`, worked out on first request after a change
    /// (reads share the index, so it has a lock of its own).
    derived: Mutex<Derived>,
}

impl Index {
    fn put(&mut self, id: String, entry: Entry) {
        self.lists.insert_after(self.docs.get(&id).map(|e| &*e.doc), &entry.doc);
        self.put_unlisted(id, entry);
    }

    /// [`Index::put`] but for the lists, which [`FileStore::open`] builds
    /// at once.
    fn put_unlisted(&mut self, id: String, entry: Entry) {
        self.forget_derived();
        if let Some(old) = self.docs.get(&id).map(|e| e.doc.clone()) {
            self.forget_edges(&old);
        }
        for (from, requirement) in Requirement::declared_by(&entry.doc) {
            self.requirements.entry(from).or_default().push(requirement);
        }
        self.docs.insert(id, entry);
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.docs.remove(id) {
            self.forget_derived();
            self.lists.remove(&old.doc);
            self.forget_edges(&old.doc);
        }
    }

    fn forget_derived(&mut self) {
        *self.derived.get_mut().unwrap_or_else(|p| p.into_inner()) = Derived::default();
    }

    /// Runs `work` on what was derived from the documents as they are now.
    fn with_derived<T>(&self, work: impl FnOnce(&mut Derived) -> StorageResult<T>) -> StorageResult<T> {
        work(&mut self.derived.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The dependency graph of every document.
    fn graph(&self) -> DependencyGraph {
        let mut graph = DependencyGraph::default();
        self.docs.values().for_each(|e| graph.add_document(&e.doc));
        graph
    }

    fn forget_edges(&mut self, doc: &Map) {
        let id = document::id(doc).unwrap_or_default();
        for (from, _) in Requirement::declared_by(doc) {
            if let Some(list) = self.requirements.get_mut(&from) {
                list.retain(|r| r.declared_by != id);
                if list.is_empty() {
                    self.requirements.remove(&from);
                }
            }
        }
    }

    fn requirements_of(&self, id: &str) -> StorageResult<Vec<Requirement>> {
        Ok(self.requirements.get(id).cloned().unwrap_or_default())
    }
}

struct Entry {
    doc: Doc,
    folder: Folder,
    /// SHA-256 of the file's bytes as last read or written.
    hash: String,
}

impl FileStore {
    /// Opens the tree and indexes every milestone file.
    pub fn open(layout: ProjectLayout) -> StorageResult<FileStore> {
        let tree = MilestoneTree::new(layout);
        let (loaded, problems) = tree.load_all(&tree.list()?)?;
        let mut index = Index { problems, ..Index::default() };
        for file in loaded {
            let entry = Entry { doc: Arc::new(file.doc), folder: file.folder, hash: file.hash };
            index.put_unlisted(file.id, entry);
        }
        index.lists = ListIndex::build(index.docs.values().map(|e| &e.doc));
        Ok(FileStore { tree, index: RwLock::new(index), writes: Mutex::new(()) })
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index half-updated
        // (every update is a single insert or remove), so poisoning is moot.
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Storage for FileStore {
    fn kind(&self) -> BackendKind {
        BackendKind::File
    }

    fn reads_in_memory(&self) -> bool {
        true
    }

    fn get(&self, id: &str) -> StorageResult<Option<Stored>> {
        let index = self.read();
        match index.docs.get(id) {
            Some(e) => Ok(Some(Stored { doc: e.doc.clone(), revision: Revision::content(&e.hash) })),
            None => unreadable(&index.problems, id).map_or(Ok(None), Err),
        }
    }

    fn data_bytes(&self) -> StorageResult<u64> {
        self.tree.total_bytes()
    }

    fn count(&self) -> StorageResult<u64> {
        Ok(self.read().docs.len() as u64)
    }

    fn insert(&self, doc: Map) -> StorageResult<Stored> {
        let id = id_of(&doc)?.to_owned();
        let _writes = self.lock_writes();
        // A file may exist that the index does not hold (it failed to parse):
        // never overwrite what a user wrote.
        if self.tree.exists(&id) || self.read().docs.contains_key(&id) {
            return Err(StorageError::AlreadyExists(id));
        }
        cycles::refuse_cycle(&doc, None, |node| self.read().requirements_of(node))?;
        let (folder, _, hash) = self.tree.write(&doc)?;
        let doc = Arc::new(doc);
        let revision = Revision::content(&hash);
        self.write().put(id, Entry { doc: doc.clone(), folder, hash });
        Ok(Stored { doc, revision })
    }

    fn replace(&self, doc: Map, expected: &Revision) -> StorageResult<Stored> {
        let id = id_of(&doc)?.to_owned();
        let _writes = self.lock_writes();
        let (old, old_folder, old_hash) = self
            .read()
            .docs
            .get(&id)
            .map(|e| (e.doc.clone(), e.folder, e.hash.clone()))
            .ok_or_else(|| StorageError::Missing(id.clone()))?;
        if Revision::content(&old_hash) != *expected {
            return Err(StorageError::Stale { id });
        }
        cycles::refuse_cycle(&doc, Some(&old), |node| self.read().requirements_of(node))?;
        let original = self.tree.read_unchanged(&id, old_folder, &old_hash)?;
        // Disk first, index second: readers keep seeing the old version until
        // the new one is durable, and never wait on an fsync.
        let (folder, _, hash) = self.tree.write_update(&doc, &old, &original)?;
        if folder != old_folder {
            crate::injected::crash_point("moved-before-removing");
            self.tree.remove(&id, old_folder)?;
        }
        let doc = Arc::new(doc);
        let revision = Revision::content(&hash);
        self.write().put(id, Entry { doc: doc.clone(), folder, hash });
        Ok(Stored { doc, revision })
    }

    fn remove(&self, id: &str) -> StorageResult<bool> {
        let _writes = self.lock_writes();
        let Some(folder) = self.read().docs.get(id).map(|e| e.folder) else { return Ok(false) };
        self.tree.remove(id, folder)?;
        self.write().remove(id);
        Ok(true)
    }

    fn import(&self, docs: &[Doc]) -> StorageResult<()> {
        let _writes = self.lock_writes();
        let docs: Vec<&Map> = docs.iter().map(|d| &**d).collect();
        let held = |id: &str| Ok(self.read().docs.get(id).map(|e| e.folder));
        for written in self.tree.write_all(&docs, &held)? {
            let entry = Entry { doc: Arc::new(written.doc.clone()), folder: written.folder, hash: written.hash };
            self.write().put(written.id, entry);
        }
        Ok(())
    }

    fn query(&self, query: &Query) -> StorageResult<Page> {
        let index = self.read();
        if let Some(page) = index.lists.answer(query, |id| index.docs.get(id).map(|e| &e.doc)) {
            return Ok(page);
        }
        Ok(crate::query::run(query, index.docs.values().map(|e| &e.doc))?)
    }

    fn dependency_graph(&self) -> StorageResult<Arc<DependencyGraph>> {
        let index = self.read();
        index.with_derived(|derived| Ok(derived.graph(|| Ok(index.graph()))?.clone()))
    }

    fn analytics(&self, today: chrono::NaiveDate) -> StorageResult<milestones_protocol::Analytics> {
        let index = self.read();
        index.with_derived(|derived| {
            derived.analytics(
                today,
                || Ok(index.graph()),
                |graph| {
                    let mut builder = crate::analytics::AnalyticsBuilder::new(today);
                    index.docs.values().for_each(|e| builder.add_document(&e.doc));
                    Ok(builder.finish(graph))
                },
            )
        })
    }

    /// Holds only documents it parsed: nothing is unreadable here (files
    /// that do not load are its problems).
    fn walk(
        &self,
        visit: &mut dyn FnMut(&Doc),
        _unreadable: &mut dyn FnMut(StorageError) -> StorageResult<()>,
    ) -> StorageResult<()> {
        for entry in self.read().docs.values() {
            visit(&entry.doc);
        }
        Ok(())
    }

    fn files(&self) -> Option<&dyn FileKeeping> {
        Some(self)
    }
}

impl FileKeeping for FileStore {
    fn tree(&self) -> &MilestoneTree {
        &self.tree
    }

    fn known_file(&self, id: &str) -> StorageResult<Option<(Folder, String)>> {
        Ok(self.read().docs.get(id).map(|e| (e.folder, e.hash.clone())))
    }

    fn known_files(&self) -> StorageResult<Vec<(String, String)>> {
        Ok(self.read().docs.iter().map(|(id, e)| (id.clone(), e.hash.clone())).collect())
    }

    fn absorb(&self, file: &LoadedFile, seen: Option<&(Folder, String)>) -> StorageResult<bool> {
        let _writes = self.lock_writes();
        if self.known_file(&file.id)?.as_ref() != seen {
            return Ok(false);
        }
        let entry = Entry { doc: Arc::new(file.doc.clone()), folder: file.folder, hash: file.hash.clone() };
        self.write().put(file.id.clone(), entry);
        Ok(true)
    }

    fn absorb_removal(&self, id: &str, seen: Option<&(Folder, String)>) -> StorageResult<bool> {
        let _writes = self.lock_writes();
        if seen.is_none() || self.known_file(id)?.as_ref() != seen {
            return Ok(false);
        }
        self.write().remove(id);
        Ok(true)
    }

    fn problems(&self) -> Vec<Problem> {
        self.read().problems.clone()
    }

    fn note_file_problem(&self, file: &str, problem: Option<Problem>) {
        note_problem(&mut self.write().problems, file, problem);
    }
}
