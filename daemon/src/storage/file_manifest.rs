//! `FileManifest`: YAML files a migration will remove, noted on disk first
//! so that a crash cannot leave one behind. A database takes in a YAML
//! file it finds in its folders as an outside edit: a file left over from
//! a migration, older than what the database holds, would overwrite a
//! newer write. Two migrations need one:
//!
//! - an export out of a database ([`FileManifest::export`]) goes on while
//!   writes go on, so a milestone exported at one version may be written
//!   again before the catch-up copies it once more. Every version the
//!   export writes is noted first (appended and synced before its file is
//!   written); undoing the export removes a file only when it holds one of
//!   them (compared by document);
//! - a move into a database ([`FileManifest::stale`]) lists, with writes
//!   held before the switch, the bytes of every file the old backend
//!   knows, so that they are removed after writes resume, and again after
//!   a crash, by their bytes.
//!
//! A file anyone else put there stays.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{StorageError, StorageResult};
use super::tree::MilestoneTree;
use crate::document::{Doc, Folder};
use crate::layout::ProjectLayout;

#[derive(Serialize, Deserialize)]
struct Line {
    id: String,
    /// What the file holds, as [`Version`] says.
    version: String,
}

/// How a manifest names a file's version.
#[derive(Clone, Copy)]
enum Version {
    /// [`crate::document::fingerprint`] of the document it holds.
    Document,
    /// The SHA-256 of its bytes.
    Bytes,
}

pub struct FileManifest {
    path: PathBuf,
    version: Version,
}

impl FileManifest {
    /// The files an export out of a database wrote.
    pub fn export(layout: &ProjectLayout) -> Self {
        FileManifest { path: layout.migration_export(), version: Version::Document }
    }

    /// The files a backend that keeps them leaves to the database that
    /// takes over.
    pub fn stale(layout: &ProjectLayout) -> Self {
        FileManifest { path: layout.migration_stale(), version: Version::Bytes }
    }

    /// Starts an empty manifest (one a finished migration left is stale).
    pub fn begin(&self) -> StorageResult<()> {
        File::create(&self.path).map_err(|e| StorageError::io("create", &self.path, e))?;
        Ok(crate::atomic::sync_dir(self.path.parent().unwrap_or(Path::new(".")))?)
    }

    /// Notes the versions about to be written, durably, before they are.
    pub fn note(&self, docs: &[Doc]) -> StorageResult<()> {
        let mut text = Vec::new();
        for doc in docs {
            line(&mut text, crate::document::id(doc).unwrap_or_default(), &crate::document::fingerprint(doc))?;
        }
        self.append(&text)
    }

    /// Adds `files` (id, and the SHA-256 of the bytes) to the list, durably.
    pub fn add(&self, files: &[(String, String)]) -> StorageResult<()> {
        let mut text = Vec::new();
        for (id, hash) in files {
            line(&mut text, id, hash)?;
        }
        self.append(&text)
    }

    fn append(&self, text: &[u8]) -> StorageResult<()> {
        let mut file =
            OpenOptions::new().append(true).open(&self.path).map_err(|e| StorageError::io("open", &self.path, e))?;
        file.write_all(text).map_err(|e| StorageError::io("write", &self.path, e))?;
        file.sync_data().map_err(|e| StorageError::io("sync", &self.path, e))
    }

    /// Lists `files` (id, and the SHA-256 of the bytes), durably, in place
    /// of any list there was.
    pub fn list(&self, files: &[(String, String)]) -> StorageResult<()> {
        let mut text = Vec::new();
        for (id, hash) in files {
            line(&mut text, id, hash)?;
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(crate::atomic::write_atomically(dir, &name, &text)?)
    }

    /// Removes every file that holds a version the manifest lists, then
    /// the manifest. No manifest means there is nothing to remove.
    pub fn remove_listed(&self, tree: &MilestoneTree) -> StorageResult<()> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io("read", &self.path, e)),
        };
        let mut versions: HashMap<String, HashSet<String>> = HashMap::new();
        for line in text.lines() {
            // A line cut short by a crash noted a write that never began.
            let Ok(line) = serde_json::from_str::<Line>(line) else { continue };
            versions.entry(line.id).or_default().insert(line.version);
        }
        let mut listed = Vec::new();
        for (id, versions) in &versions {
            for folder in [Folder::Active, Folder::Completed] {
                if self.holds(tree, id, folder, versions)? {
                    listed.push((id.clone(), folder));
                }
            }
        }
        tree.remove_all(&listed)?;
        self.remove()
    }

    /// True when `id`'s file in `folder` holds one of `versions`.
    fn holds(&self, tree: &MilestoneTree, id: &str, folder: Folder, versions: &HashSet<String>) -> StorageResult<bool> {
        let path = tree.path_of(id, folder);
        Ok(match self.version {
            Version::Document => tree.inspect(&path)?.is_some_and(|file| {
                tree.load(&file).is_ok_and(|f| versions.contains(&crate::document::fingerprint(&f.doc)))
            }),
            Version::Bytes => match fs::read(&path) {
                Ok(bytes) => versions.contains(&crate::document::sha256_hex(&bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(StorageError::io("read", &path, e)),
            },
        })
    }

    /// The migration is over (switched, or undone).
    pub fn remove(&self) -> StorageResult<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("remove", &self.path, e)),
        }
    }
}

fn line(text: &mut Vec<u8>, id: &str, version: &str) -> StorageResult<()> {
    let line = Line { id: id.to_owned(), version: version.to_owned() };
    serde_json::to_writer(&mut *text, &line).map_err(|e| StorageError::Invalid(format!("cannot note a file: {e}")))?;
    text.push(b'\n');
    Ok(())
}
