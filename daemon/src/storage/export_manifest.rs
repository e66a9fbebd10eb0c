//! `ExportManifest`: which YAML files a migration out of a database wrote,
//! so that undoing it (after a failure or a crash) removes exactly those.
//!
//! An export goes on while writes go on: a milestone exported at one
//! version may be written again in the database before the catch-up copies
//! it once more. Undoing the export by "files that hold what the database
//! holds" would then leave the older file behind, for the database to take
//! in as an outside edit over the newer write. So every version the export
//! writes is noted here first (appended and synced before its file is
//! written), and undoing removes a file only when it holds one of the
//! versions noted for it. A file anyone else put there stays.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{StorageError, StorageResult};
use super::tree::MilestoneTree;
use crate::document::{Doc, Folder};

#[derive(Serialize, Deserialize)]
struct Line {
    id: String,
    /// [`crate::document::fingerprint`] of the version written.
    version: String,
}

/// The manifest file of one export.
pub struct ExportManifest {
    path: PathBuf,
}

impl ExportManifest {
    pub fn at(path: PathBuf) -> Self {
        ExportManifest { path }
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
            let id = crate::document::id(doc).unwrap_or_default().to_owned();
            let line = Line { id, version: crate::document::fingerprint(doc) };
            serde_json::to_writer(&mut text, &line)
                .map_err(|e| StorageError::Invalid(format!("cannot note an exported milestone: {e}")))?;
            text.push(b'\n');
        }
        let mut file =
            OpenOptions::new().append(true).open(&self.path).map_err(|e| StorageError::io("open", &self.path, e))?;
        file.write_all(&text).map_err(|e| StorageError::io("write", &self.path, e))?;
        file.sync_data().map_err(|e| StorageError::io("sync", &self.path, e))
    }

    /// Removes every file that holds a version the export wrote, then the
    /// manifest. No manifest means the export wrote nothing yet.
    pub fn undo(&self, tree: &MilestoneTree) -> StorageResult<()> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io("read", &self.path, e)),
        };
        let mut written: HashMap<String, HashSet<String>> = HashMap::new();
        for line in text.lines() {
            // A line cut short by a crash noted a write that never began.
            let Ok(line) = serde_json::from_str::<Line>(line) else { continue };
            written.entry(line.id).or_default().insert(line.version);
        }
        let mut exported = Vec::new();
        for (id, versions) in &written {
            for folder in [Folder::Active, Folder::Completed] {
                match tree.inspect(&tree.path_of(id, folder))? {
                    Some(file)
                        if tree.load(&file).is_ok_and(|f| versions.contains(&crate::document::fingerprint(&f.doc))) =>
                    {
                        exported.push((id.clone(), folder))
                    }
                    _ => {}
                }
            }
        }
        tree.remove_all(&exported)?;
        self.remove()
    }

    /// The export is over (switched to, or undone).
    pub fn remove(&self) -> StorageResult<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("remove", &self.path, e)),
        }
    }
}
