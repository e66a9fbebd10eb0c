//! `FileStore`: the plain-file backend. One YAML file per milestone in
//! `active/` or `completed/` (by status), an in-memory index of every document
//! built at start-up by parsing the tree in parallel, and queries answered
//! from that index.
//!
//! Files are the source of truth. A file that does not parse is never
//! rewritten or deleted; it is listed in [`Storage::problems`] until fixed.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use milestones_protocol::{Map, Page, Problem, Query, Severity, Value};

use super::atomic::{sync_dir, write_atomically};
use super::{Doc, Storage, StorageError, StorageResult};
use crate::document::{self, Folder};
use crate::layout::ProjectLayout;

pub struct FileStore {
    layout: ProjectLayout,
    index: RwLock<Index>,
}

#[derive(Default)]
struct Index {
    docs: HashMap<String, Entry>,
    problems: Vec<Problem>,
}

struct Entry {
    doc: Doc,
    folder: Folder,
}

/// One file's outcome at load time.
type Loaded = Result<(String, Entry), Problem>;

impl FileStore {
    /// Opens the tree and indexes every milestone file.
    pub fn open(layout: ProjectLayout) -> StorageResult<FileStore> {
        let mut paths = Vec::new();
        for folder in [Folder::Active, Folder::Completed] {
            let dir = folder_path(&layout, folder);
            let entries = fs::read_dir(&dir).map_err(|e| StorageError::io("read folder", &dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| StorageError::io("read folder", &dir, e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".yaml") && !name.starts_with('.') {
                    paths.push((entry.path(), folder));
                }
            }
        }
        let index = load_all(&layout, paths);
        Ok(FileStore { layout, index: RwLock::new(index) })
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index half-updated
        // (every update is a single insert or remove), so poisoning is moot.
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    fn write_doc(&self, doc: &Map, folder: Folder) -> StorageResult<()> {
        let id = document::id(doc).ok_or_else(|| StorageError::Query("document has no id".into()))?;
        let yaml = crate::yaml::to_yaml(doc);
        write_atomically(&folder_path(&self.layout, folder), &file_name(id), yaml.as_bytes())
    }

    fn remove_file(&self, id: &str, folder: Folder) -> StorageResult<()> {
        let dir = folder_path(&self.layout, folder);
        let path = dir.join(file_name(id));
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("remove", path, e)),
        }
    }
}

impl Storage for FileStore {
    fn backend_name(&self) -> &'static str {
        "file"
    }

    fn reads_in_memory(&self) -> bool {
        true
    }

    fn get(&self, id: &str) -> StorageResult<Option<Doc>> {
        Ok(self.read().docs.get(id).map(|e| e.doc.clone()))
    }

    fn count(&self) -> StorageResult<u64> {
        Ok(self.read().docs.len() as u64)
    }

    fn insert(&self, doc: Map) -> StorageResult<Doc> {
        let id = document::id(&doc).ok_or_else(|| StorageError::Query("document has no id".into()))?.to_owned();
        // A file may exist that the index does not hold (it failed to parse):
        // never overwrite what a user wrote.
        let on_disk = [Folder::Active, Folder::Completed]
            .into_iter()
            .any(|f| folder_path(&self.layout, f).join(file_name(&id)).exists());
        if on_disk || self.read().docs.contains_key(&id) {
            return Err(StorageError::AlreadyExists(id));
        }
        let folder = Folder::of(&doc);
        self.write_doc(&doc, folder)?;
        let doc = Arc::new(doc);
        self.write().docs.insert(id, Entry { doc: doc.clone(), folder });
        Ok(doc)
    }

    fn replace(&self, doc: Map) -> StorageResult<Doc> {
        let id = document::id(&doc).ok_or_else(|| StorageError::Query("document has no id".into()))?.to_owned();
        let old_folder = self.read().docs.get(&id).map(|e| e.folder).ok_or_else(|| StorageError::Missing(id.clone()))?;
        let folder = Folder::of(&doc);
        // Disk first, index second: readers keep seeing the old version until
        // the new one is durable, and never wait on an fsync.
        self.write_doc(&doc, folder)?;
        if folder != old_folder {
            self.remove_file(&id, old_folder)?;
        }
        let doc = Arc::new(doc);
        self.write().docs.insert(id, Entry { doc: doc.clone(), folder });
        Ok(doc)
    }

    fn remove(&self, id: &str) -> StorageResult<bool> {
        let Some(folder) = self.read().docs.get(id).map(|e| e.folder) else { return Ok(false) };
        self.remove_file(id, folder)?;
        self.write().docs.remove(id);
        Ok(true)
    }

    fn query(&self, query: &Query) -> StorageResult<Page> {
        let index = self.read();
        crate::query::run(query, index.docs.values().map(|e| &e.doc))
    }

    fn for_each(&self, visit: &mut dyn FnMut(&Map)) -> StorageResult<()> {
        for entry in self.read().docs.values() {
            visit(&entry.doc);
        }
        Ok(())
    }

    fn problems(&self) -> Vec<Problem> {
        self.read().problems.clone()
    }
}

fn folder_path(layout: &ProjectLayout, folder: Folder) -> PathBuf {
    match folder {
        Folder::Active => layout.active(),
        Folder::Completed => layout.completed(),
    }
}

fn file_name(id: &str) -> String {
    format!("{id}.yaml")
}

/// Parses every file, spread over the machine's cores.
fn load_all(layout: &ProjectLayout, paths: Vec<(PathBuf, Folder)>) -> Index {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let chunk = paths.len().div_ceil(threads).max(1);
    let loaded: Vec<Loaded> = std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|(p, f)| load_file(layout, p, *f)).collect::<Vec<_>>()))
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });

    let mut index = Index::default();
    for item in loaded {
        match item {
            Err(problem) => index.problems.push(problem),
            Ok((id, entry)) => {
                let Some(existing) = index.docs.get(&id) else {
                    index.docs.insert(id, entry);
                    continue;
                };
                // The same id in both folders (a crash between writing the
                // moved file and removing the old one, or a hand copy): keep
                // the copy whose folder matches its status.
                let keep_new = Folder::of(&entry.doc) == entry.folder && Folder::of(&existing.doc) != existing.folder;
                let dropped = if keep_new { entry.folder.other() } else { entry.folder };
                index.problems.push(problem(
                    layout,
                    &folder_path(layout, dropped).join(file_name(&id)),
                    Some(&id),
                    "the same milestone id is also in the other folder; that copy is served, this one ignored",
                ));
                if keep_new {
                    index.docs.insert(id, entry);
                }
            }
        }
    }
    index.problems.sort_by(|a, b| a.file.cmp(&b.file));
    index
}

impl Folder {
    fn other(self) -> Folder {
        match self {
            Folder::Active => Folder::Completed,
            Folder::Completed => Folder::Active,
        }
    }
}

fn load_file(layout: &ProjectLayout, path: &Path, folder: Folder) -> Loaded {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if document::validate_id(&stem, "id").is_err() {
        return Err(problem(layout, path, None, "the file name is not a valid milestone id"));
    }
    let text = fs::read(path).map_err(|e| problem(layout, path, Some(&stem), &format!("cannot read: {e}")))?;
    let text = String::from_utf8(text).map_err(|_| problem(layout, path, Some(&stem), "the file is not valid UTF-8"))?;
    let rel = layout.relative(path).display().to_string();
    let mut doc = crate::yaml::parse_document(&text, &rel).map_err(|e| problem(layout, path, Some(&stem), &e.to_string()))?;
    match doc.get("id") {
        None | Some(Value::Null) => {
            doc.insert("id", Value::from(stem.as_str()));
            doc.reorder(&["id"]);
        }
        Some(Value::String(id)) if *id == stem => {}
        Some(other) => {
            return Err(problem(
                layout,
                path,
                Some(&stem),
                &format!("the file is named {stem}.yaml but its id is {other:?}"),
            ))
        }
    }
    Ok((stem, Entry { doc: Arc::new(doc), folder }))
}

fn problem(layout: &ProjectLayout, path: &Path, id: Option<&str>, message: &str) -> Problem {
    Problem {
        id: id.map(str::to_owned),
        file: Some(layout.relative(path).display().to_string()),
        severity: Severity::Error,
        field: None,
        message: message.to_owned(),
    }
}
