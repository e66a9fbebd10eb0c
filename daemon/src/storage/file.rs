//! `FileStore`: the plain-file backend. One YAML file per milestone in
//! `active/` or `completed/` (by status), an in-memory index of every document
//! built at start-up by parsing the tree in parallel, and queries answered
//! from that index. The index keeps each document packed ([`PackedDoc`]),
//! beside the orders lists are read in.
//!
//! Files are the source of truth. A file that does not parse is never
//! rewritten or deleted; it is listed in [`FileKeeping::problems`] until fixed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use milestones_protocol::{Map, Page, Problem, Query};

use super::cycles;
use super::derived::Derived;
use super::error::{StorageError, StorageResult};
use super::interface::{
    id_of, note_problem, unreadable, BackendKind, FileKeeping, Requirement, Revision, Storage, Stored,
};
use super::list_index::{ListIndex, ListIndexBuilder};
use super::packed::{PackedDoc, PackedSearch};
use super::tree::{LoadedFile, MilestoneTree};
use crate::analytics::AnalyticsTally;
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
    /// Every lookup of a list or a search goes through it: hashed fast.
    docs: HashMap<String, Entry, foldhash::fast::RandomState>,
    /// Edges out of each milestone, kept in step with `docs` so that a write
    /// checks for cycles around itself without walking every document.
    requirements: HashMap<Box<str>, Vec<HeldRequirement>>,
    /// The orders lists are read in.
    lists: ListIndex,
    /// `stats`' sums over every document, kept in step with `docs`.
    tally: AnalyticsTally,
    problems: Vec<Problem>,
    /// The graph and `stats`, worked out on first request after a change
    /// (reads share the index, so it has a lock of its own).
    derived: Mutex<Derived>,
}

impl Index {
    /// Holds `doc`, milestone `id` in `folder` with file hash `hash`, in
    /// place of any earlier version.
    fn put(&mut self, id: String, doc: &Map, folder: Folder, hash: &str) -> StorageResult<()> {
        // Everything that can fail comes before the first change.
        let hash = FileHash::from_hex(hash)?;
        let old = self.docs.get(&id).map(|e| e.doc.unpack()).transpose()?;
        let packed = PackedDoc::pack(doc);
        self.lists.insert_after(old.as_ref(), doc);
        self.put_unlisted(id, doc, packed, old.as_ref(), folder, hash);
        Ok(())
    }

    /// [`Index::put`] but for the lists, which [`FileStore::open`] builds
    /// at once; `packed` is `doc` packed, `old` the version held until now.
    fn put_unlisted(
        &mut self,
        id: String,
        doc: &Map,
        packed: PackedDoc,
        old: Option<&Map>,
        folder: Folder,
        hash: FileHash,
    ) {
        if let Some(old) = old {
            self.forget_edges(old);
            self.tally.remove(old);
        }
        self.tally.add(doc);
        for (from, requirement) in Requirement::declared_by(doc) {
            let held = HeldRequirement::of(&from, requirement);
            let list = self.requirements.entry(from.into_boxed_str()).or_default();
            // Most milestones require one or two others: room for four,
            // as a first push makes, would be mostly empty.
            list.reserve_exact(usize::from(list.is_empty()));
            list.push(held);
        }
        self.follow_in_graph(&id, true, old.into_iter().chain([doc]));
        self.docs.insert(id, Entry { doc: packed, folder, hash });
    }

    fn remove(&mut self, id: &str) -> StorageResult<()> {
        if let Some(old) = self.docs.get(id).map(|e| e.doc.unpack()).transpose()? {
            self.docs.remove(id);
            self.tally.remove(&old);
            self.lists.remove(&old);
            self.forget_edges(&old);
            self.follow_in_graph(id, false, [&old]);
        }
        Ok(())
    }

    /// Forgets what was derived, but brings a kept graph up to date with a
    /// change to milestone `id` (`present` unless it went) whose versions
    /// `versions` declared edges, rather than building it again from every
    /// id and edge.
    fn follow_in_graph<'a>(&mut self, id: &str, present: bool, versions: impl IntoIterator<Item = &'a Map>) {
        let derived = self.derived.get_mut().unwrap_or_else(|p| p.into_inner());
        let Some(graph) = derived.take_graph() else { return };
        // Copied only when a request still holds it.
        let mut graph = Arc::unwrap_or_clone(graph);
        graph.set_milestone(id, present);
        let changed: HashSet<String> =
            versions.into_iter().flat_map(Requirement::declared_by).map(|(from, _)| from).collect();
        for from in changed {
            let requirements = self.requirements.get(from.as_str()).into_iter().flatten();
            graph.set_requires(&from, requirements.map(|r| &*r.to));
        }
        derived.keep_graph(Arc::new(graph));
    }

    /// Every document, read back one at a time.
    fn each(&self, visit: &mut dyn FnMut(Map)) -> StorageResult<()> {
        for entry in self.docs.values() {
            visit(entry.doc.unpack()?);
        }
        Ok(())
    }

    /// Runs `work` on what was derived from the documents as they are now.
    fn with_derived<T>(&self, work: impl FnOnce(&mut Derived) -> StorageResult<T>) -> StorageResult<T> {
        work(&mut self.derived.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The dependency graph of every document, from the ids and edges the
    /// index keeps: no document is read back.
    fn graph(&self) -> DependencyGraph {
        let mut graph = DependencyGraph::with_capacity(self.docs.len());
        // In id order, which the graph's ties by name then cost nothing to
        // sort; every document is in the lists, by the id it is held by.
        self.lists.ids().for_each(|id| graph.add_node(id));
        for (from, requirements) in &self.requirements {
            requirements.iter().for_each(|r| graph.add_edge(from, &r.to));
        }
        graph
    }

    fn forget_edges(&mut self, doc: &Map) {
        let id = document::id(doc).unwrap_or_default();
        for (from, _) in Requirement::declared_by(doc) {
            if let Some(list) = self.requirements.get_mut(from.as_str()) {
                list.retain(|r| r.declared_by(&from) != id);
                if list.is_empty() {
                    self.requirements.remove(from.as_str());
                }
            }
        }
    }

    fn requirements_of(&self, id: &str) -> StorageResult<Vec<Requirement>> {
        let held = self.requirements.get(id).into_iter().flatten();
        Ok(held.map(|r| Requirement { to: r.to.to_string(), declared_by: r.declared_by(id).to_owned() }).collect())
    }
}

/// A [`Requirement`] as the index holds it, one of about every milestone:
/// whoever declares an edge is one of its two ends (`requires` names what
/// the declaring milestone requires, `enables` what requires it), so that
/// end is a flag rather than a second copy of an id.
struct HeldRequirement {
    to: Box<str>,
    /// Declared by `to` (in its `enables`), not by the milestone that
    /// requires it.
    declared_by_required: bool,
}

impl HeldRequirement {
    fn of(from: &str, requirement: Requirement) -> HeldRequirement {
        debug_assert!(requirement.declared_by == from || requirement.declared_by == requirement.to);
        let declared_by_required = requirement.declared_by != from;
        HeldRequirement { to: requirement.to.into_boxed_str(), declared_by_required }
    }

    /// Who declares this edge out of `from`.
    fn declared_by<'a>(&'a self, from: &'a str) -> &'a str {
        if self.declared_by_required {
            &self.to
        } else {
            from
        }
    }
}

struct Entry {
    doc: PackedDoc,
    folder: Folder,
    /// SHA-256 of the file's bytes as last read or written.
    hash: FileHash,
}

/// A file's SHA-256 as its 32 bytes: the hex text the tree hands out
/// takes three times the room (8 MB more at 100,000 milestones).
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileHash([u8; 32]);

impl FileHash {
    fn from_hex(hex: &str) -> StorageResult<FileHash> {
        let not_hex = || StorageError::Damaged(format!("`{hex}` is not a SHA-256 in hex"));
        if hex.len() != 64 {
            return Err(not_hex());
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
            *byte = match (digit(pair[0]), digit(pair[1])) {
                (Some(high), Some(low)) => high << 4 | low,
                _ => return Err(not_hex()),
            };
        }
        Ok(FileHash(bytes))
    }

    fn hex(&self) -> String {
        document::hex(&self.0)
    }
}

impl FileStore {
    /// Opens the tree and indexes every milestone file.
    pub fn open(layout: ProjectLayout) -> StorageResult<FileStore> {
        let tree = MilestoneTree::new(layout);
        // Packed as they are parsed, so the parsed trees never all exist at
        // once; each is read back here for the index, one at a time.
        let (loaded, problems) = tree.load_all_as(&tree.list()?, |doc| Ok(PackedDoc::pack(&doc)))?;
        let mut index = Index { problems, ..Index::default() };
        let mut lists = ListIndexBuilder::default();
        for file in loaded {
            let doc = file.doc.unpack()?;
            lists.add(&doc);
            index.put_unlisted(file.id, &doc, file.doc, None, file.folder, FileHash::from_hex(&file.hash)?);
        }
        index.lists = lists.finish();
        crate::freed_memory::release();
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
            Some(e) => Ok(Some(Stored { doc: Arc::new(e.doc.unpack()?), revision: Revision::content(&e.hash.hex()) })),
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
        let revision = Revision::content(&hash);
        self.write().put(id, &doc, folder, &hash)?;
        Ok(Stored { doc: Arc::new(doc), revision })
    }

    fn replace(&self, doc: Map, expected: &Revision) -> StorageResult<Stored> {
        let id = id_of(&doc)?.to_owned();
        let _writes = self.lock_writes();
        let (old, old_folder, old_hash) = self
            .read()
            .docs
            .get(&id)
            .map(|e| Ok::<_, StorageError>((e.doc.unpack()?, e.folder, e.hash.hex())))
            .transpose()?
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
        let revision = Revision::content(&hash);
        self.write().put(id, &doc, folder, &hash)?;
        Ok(Stored { doc: Arc::new(doc), revision })
    }

    fn remove(&self, id: &str) -> StorageResult<bool> {
        let _writes = self.lock_writes();
        let Some(folder) = self.read().docs.get(id).map(|e| e.folder) else { return Ok(false) };
        self.tree.remove(id, folder)?;
        self.write().remove(id)?;
        Ok(true)
    }

    fn import(&self, docs: &[Doc]) -> StorageResult<()> {
        let _writes = self.lock_writes();
        let docs: Vec<&Map> = docs.iter().map(|d| &**d).collect();
        let held = |id: &str| Ok(self.read().docs.get(id).map(|e| e.folder));
        for written in self.tree.write_all(&docs, &held)? {
            self.write().put(written.id, written.doc, written.folder, &written.hash)?;
        }
        Ok(())
    }

    fn query(&self, query: &Query) -> StorageResult<Page> {
        let index = self.read();
        let read = |id: &str| index.docs.get(id).map(|e| e.doc.unpack()).transpose();
        let Some(terms) = crate::query::search_terms(query)? else {
            return match index.lists.answer(query, None, read) {
                Some(page) => page,
                None => run_over(query, index.docs.values()),
            };
        };
        // A search reads each document's bytes once (a document whose text
        // is not ASCII is read back for it); the page is then found among
        // the matches, along the list's order when the index holds it.
        let matching = {
            let mut search = PackedSearch::new(&terms);
            let mut matching = HashSet::with_hasher(foldhash::fast::RandomState::default());
            for (id, entry) in &index.docs {
                if search.matches(&entry.doc)? {
                    matching.insert(id.as_str());
                }
            }
            matching
        };
        let mut found = |id: &str| Ok(matching.contains(id));
        match index.lists.answer(query, Some(&mut found), read) {
            Some(page) => page,
            None => run_over(query, matching.iter().filter_map(|id| index.docs.get(*id))),
        }
    }

    fn dependency_graph(&self) -> StorageResult<Arc<DependencyGraph>> {
        let index = self.read();
        index.with_derived(|derived| Ok(derived.graph(|| Ok(index.graph()))?.clone()))
    }

    fn analytics(&self, today: chrono::NaiveDate) -> StorageResult<milestones_protocol::Analytics> {
        let index = self.read();
        index.with_derived(|derived| {
            derived.analytics(today, || Ok(index.graph()), |graph| Ok(index.tally.builder(today).finish(graph)))
        })
    }

    /// Holds only documents it parsed: nothing is unreadable here (files
    /// that do not load are its problems).
    fn walk(
        &self,
        visit: &mut dyn FnMut(&Doc),
        _unreadable: &mut dyn FnMut(StorageError) -> StorageResult<()>,
    ) -> StorageResult<()> {
        self.read().each(&mut |doc| visit(&Arc::new(doc)))
    }

    fn files(&self) -> Option<&dyn FileKeeping> {
        Some(self)
    }
}

/// A page of `entries` by the reference engine, each read back.
fn run_over<'a>(query: &Query, entries: impl Iterator<Item = &'a Entry>) -> StorageResult<Page> {
    let mut failed = None;
    let docs = entries.map_while(|e| e.doc.unpack().map_err(|e| failed = Some(e)).ok().map(Arc::new));
    let page = crate::query::run(query, docs)?;
    failed.map_or(Ok(page), Err)
}

impl FileKeeping for FileStore {
    fn tree(&self) -> &MilestoneTree {
        &self.tree
    }

    fn known_file(&self, id: &str) -> StorageResult<Option<(Folder, String)>> {
        Ok(self.read().docs.get(id).map(|e| (e.folder, e.hash.hex())))
    }

    fn known_files(&self) -> StorageResult<Vec<(String, String)>> {
        Ok(self.read().docs.iter().map(|(id, e)| (id.clone(), e.hash.hex())).collect())
    }

    fn absorb(&self, file: &LoadedFile, seen: Option<&(Folder, String)>) -> StorageResult<bool> {
        let _writes = self.lock_writes();
        if self.known_file(&file.id)?.as_ref() != seen {
            return Ok(false);
        }
        self.write().put(file.id.clone(), &file.doc, file.folder, &file.hash)?;
        Ok(true)
    }

    fn absorb_removal(&self, id: &str, seen: Option<&(Folder, String)>) -> StorageResult<bool> {
        let _writes = self.lock_writes();
        if seen.is_none() || self.known_file(id)?.as_ref() != seen {
            return Ok(false);
        }
        self.write().remove(id)?;
        Ok(true)
    }

    fn problems(&self) -> Vec<Problem> {
        self.read().problems.clone()
    }

    fn note_file_problem(&self, file: &str, problem: Option<Problem>) {
        note_problem(&mut self.write().problems, file, problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_hash_is_kept_as_bytes_and_given_back_as_hex() {
        let hex = document::sha256_hex(b"id: m-1\n");
        assert_eq!(FileHash::from_hex(&hex).unwrap().hex(), hex);
        for bad in ["", "ab", &hex[1..], &format!("{}g", &hex[1..]), &format!("{}é", &hex[2..])] {
            assert!(matches!(FileHash::from_hex(bad), Err(StorageError::Damaged(_))), "{bad:?}");
        }
    }
}
