//! `Backup`: the folder a migration writes before it copies anything,
//! `.milestones/backups/<time>-<from>-to-<to>/`, and what `msctl migrate
//! rollback` reads back from it. It holds the milestone files in one tar
//! archive, `milestones.tar` (`active/` and `completed/`, byte for byte:
//! one file is written much faster than a hundred thousand, and copies,
//! unlike links, do not follow an edit made in place; `tar -xf
//! milestones.tar -C .milestones` restores them by hand), the
//! configuration, the source's own database (or its documents), whatever
//! the target will replace, and `backup.json`, which names the backends.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::journal::JournalBackend;
use crate::layout::ProjectLayout;
use crate::storage::tree::MilestoneTree;
use crate::storage::{BackendKind, BackendSpec, Doc, Storage, StorageError, StorageResult};

const MANIFEST: &str = "backup.json";
const FILES: &str = "milestones.tar";

/// A migration's backup folder, as `backup.json` describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backup {
    #[serde(skip)]
    pub dir: PathBuf,
    from: JournalBackend,
    to: JournalBackend,
    pub taken_at: String,
    /// How many milestones the source held when the migration began.
    pub milestones: usize,
}

/// Writes the backup of a migration from `source` to `target`, while
/// writes go on (what they change is caught up by the copy, not backed
/// up); returns its folder.
pub fn take(
    layout: &ProjectLayout,
    source: &dyn Storage,
    target: &BackendSpec,
    milestones: usize,
) -> StorageResult<PathBuf> {
    let taken_at = chrono::Utc::now();
    let from = source.kind();
    let dir = layout.backups().join(format!("{}-{from}-to-{}", taken_at.format("%Y%m%dT%H%M%S%.3fZ"), target.kind));
    fs::create_dir_all(&dir).map_err(|e| StorageError::io("create", &dir, e))?;
    archive_files(&MilestoneTree::new(layout.clone()), &dir.join(FILES))?;
    copy_folder(&layout.config(), &dir.join("config"))?;
    source.backup_to(&dir)?;
    target.back_up_replaced(layout, from, &dir)?;
    let backup = Backup {
        dir: dir.clone(),
        from: from.into(),
        to: target.kind.into(),
        taken_at: taken_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        milestones,
    };
    let json = serde_json::to_vec_pretty(&backup)
        .map_err(|e| StorageError::Invalid(format!("cannot describe the backup: {e}")))?;
    crate::atomic::write_atomically(&dir, MANIFEST, &json)?;
    Ok(dir)
}

impl Backup {
    /// The backup in `dir` (relative to the project root, as the
    /// migration history names it).
    pub fn open(layout: &ProjectLayout, dir: &str) -> StorageResult<Backup> {
        let dir = layout.root().join(dir);
        let path = dir.join(MANIFEST);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::Invalid(format!(
                    "{} has no {MANIFEST} (a backup taken before rollbacks existed, or one moved away); \
                     restore it by hand",
                    layout.relative(&dir).display()
                )))
            }
            Err(e) => return Err(StorageError::io("read", &path, e)),
        };
        let mut backup: Backup = serde_json::from_str(&text)
            .map_err(|e| StorageError::Invalid(format!("{} does not parse: {e}", layout.relative(&path).display())))?;
        backup.dir = dir;
        Ok(backup)
    }

    /// The backend the migration left.
    pub fn from(&self) -> BackendKind {
        self.from.into()
    }

    /// The backend the migration went to.
    pub fn to(&self) -> BackendKind {
        self.to.into()
    }

    /// Every milestone as the backup holds it: its database's, or the
    /// files in its archive.
    pub fn milestones(&self, spec: &BackendSpec) -> StorageResult<Vec<Doc>> {
        if let Some(docs) = spec.backed_up(&self.dir)? {
            return Ok(docs);
        }
        let path = self.dir.join(FILES);
        let failed = |e| StorageError::io("read the backup", &path, e);
        let mut archive = tar::Archive::new(fs::File::open(&path).map_err(failed)?);
        let mut docs = Vec::new();
        for entry in archive.entries().map_err(failed)? {
            let mut entry = entry.map_err(failed)?;
            let name = entry.path().map_err(failed)?.display().to_string();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).map_err(failed)?;
            let doc = crate::yaml::parse_document(&text, &name)
                .map_err(|e| StorageError::Invalid(format!("{} in the backup does not load: {e}", name)))?;
            docs.push(std::sync::Arc::new(doc));
        }
        Ok(docs)
    }
}

/// Writes every milestone file of both folders into the tar archive at
/// `path`, synced. Writes go on meanwhile: a file removed or renamed away
/// after the listing is passed over (a write made during the backup is
/// caught up by the copy, not backed up).
fn archive_files(tree: &MilestoneTree, path: &Path) -> StorageResult<()> {
    let failed = |e| StorageError::io("write the backup", path, e);
    let file = fs::File::create(path).map_err(failed)?;
    let mut archive = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
    for file in tree.list()? {
        let bytes = match fs::read(&file.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StorageError::io("back up", &file.path, e)),
        };
        let folder = tree.folder_path(file.folder);
        let name = Path::new(folder.file_name().unwrap_or_default()).join(file.path.file_name().unwrap_or_default());
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime((file.stamp.mtime_ns / 1_000_000_000).max(0) as u64);
        archive.append_data(&mut header, &name, bytes.as_slice()).map_err(failed)?;
    }
    let file = archive.into_inner().map_err(failed)?.into_inner().map_err(|e| failed(e.into_error()))?;
    file.sync_all().map_err(failed)
}

/// Copies a folder's files (not sub-folders, not hidden files such as the
/// temporary files of writes in flight). Writes go on during a backup: a
/// file removed or renamed away after the listing is passed over (a write
/// made during the copy is caught up later, not backed up).
fn copy_folder(from: &Path, to: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(to).map_err(|e| StorageError::io("create", to, e))?;
    let entries = fs::read_dir(from).map_err(|e| StorageError::io("read folder", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("read folder", from, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let is_file = match entry.file_type() {
            Ok(kind) => kind.is_file(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StorageError::io("inspect", entry.path(), e)),
        };
        if !is_file {
            continue;
        }
        match fs::copy(entry.path(), to.join(entry.file_name())) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("back up", entry.path(), e)),
        }
    }
    Ok(())
}
