//! `MilestoneTree`: the `active/` and `completed/` folders of YAML files that
//! the file and hybrid backends keep as their source of truth (and that
//! migrations export to). It lists, reads, parses and writes milestone files;
//! it keeps no state of its own.
//!
//! A file that fails to parse becomes a [`Problem`], never an error that
//! stops the caller, and is never rewritten or deleted here.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use milestones_protocol::{Map, Problem, Severity, Value};

use super::error::{StorageError, StorageResult};
use crate::atomic::{sync_dir, sync_filesystem, write_atomically, write_renamed, write_temporary, write_unsynced};

/// Up to this many files, [`MilestoneTree::write_all`] syncs each.
const SYNC_EACH_AT_MOST: usize = 64;
use crate::document::{self, sha256_hex, Folder};
use crate::document_limits::MAX_FILE_BYTES;
use crate::layout::ProjectLayout;

#[derive(Debug, Clone)]
pub struct MilestoneTree {
    layout: ProjectLayout,
}

/// A milestone file found on disk, not yet read.
#[derive(Debug, Clone)]
pub struct TreeFile {
    pub path: PathBuf,
    pub folder: Folder,
    /// The file name without `.yaml`: the id the file should hold.
    pub stem: String,
    pub stamp: Stamp,
    /// Whether its mode lets this process read it (a `chmod 000` does not),
    /// and it is a file of its own (a symbolic link is not read).
    pub readable: bool,
    /// A symbolic link: never followed, reported instead. Writes replace
    /// a file by renaming over it, which would silently turn a link into a
    /// copy, and a link may point anywhere outside the project.
    pub link: bool,
}

/// What cheaply tells whether a file changed: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
}

/// A milestone's new file, written and synced under a temporary name, for
/// a store that keeps an index beside the files: the index takes the new
/// version first, and the file goes into place by a rename, which needs no
/// disk space. Whatever fails (a full disk included), nothing is changed
/// that cannot be undone, and no answer says a write failed that in fact
/// stayed. Dropped without [`StagedFile::put_in_place`], it is removed.
pub struct StagedFile {
    /// `None` once in place.
    temp: Option<PathBuf>,
    target: PathBuf,
    dir: PathBuf,
    pub folder: Folder,
    /// Size and modification time, which the rename keeps.
    pub stamp: Stamp,
    /// SHA-256 of the bytes, hex.
    pub hash: String,
}

impl StagedFile {
    /// Renames the file into place and makes the rename durable.
    pub fn put_in_place(mut self) -> StorageResult<()> {
        if let Some(temp) = self.temp.take() {
            if let Err(e) = fs::rename(&temp, &self.target) {
                self.temp = Some(temp);
                return Err(StorageError::io("rename into place", &self.target, e));
            }
        }
        Ok(sync_dir(&self.dir)?)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            let _ = fs::remove_file(temp);
        }
    }
}

/// A file [`MilestoneTree::write_all`] wrote.
pub struct Written<'a> {
    pub id: String,
    pub doc: &'a Map,
    pub folder: Folder,
    pub stamp: Stamp,
    /// SHA-256 of the bytes written, hex.
    pub hash: String,
}

impl TreeFile {
    fn new(path: PathBuf, folder: Folder, stem: String, meta: &fs::Metadata) -> TreeFile {
        let link = meta.file_type().is_symlink();
        TreeFile { path, folder, stem, stamp: stamp_of(meta), readable: !link && readable_by_this_process(meta), link }
    }
}

/// What the mode bits say about reading the file as this process (root
/// reads anything). Cheap: no system call beyond the stat already made. The
/// read itself stays the final word.
fn readable_by_this_process(meta: &fs::Metadata) -> bool {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mode = meta.mode();
    if uid == 0 {
        true
    } else if meta.uid() == uid {
        mode & 0o400 != 0
    } else if meta.gid() == gid {
        mode & 0o040 != 0
    } else {
        mode & 0o004 != 0
    }
}

/// A file read and parsed; `D` is its document as the caller keeps it
/// (see [`MilestoneTree::load_all_as`]).
#[derive(Debug, Clone)]
pub struct LoadedFile<D = Map> {
    pub id: String,
    pub doc: D,
    pub folder: Folder,
    pub stamp: Stamp,
    /// SHA-256 of the file's bytes, hex.
    pub hash: String,
}

impl MilestoneTree {
    pub fn new(layout: ProjectLayout) -> Self {
        MilestoneTree { layout }
    }

    /// The size of every file in the two folders.
    pub fn total_bytes(&self) -> StorageResult<u64> {
        let mut total = 0;
        self.each_entry(|_, entry| {
            // A file removed since the listing counts for nothing.
            total += entry.metadata().map_or(0, |m| if m.is_file() { m.len() } else { 0 });
            Ok(())
        })?;
        Ok(total)
    }

    /// Visits every entry of both folders; a folder that is not there (a
    /// checkout removed it) holds none.
    fn each_entry(&self, mut visit: impl FnMut(Folder, &fs::DirEntry) -> StorageResult<()>) -> StorageResult<()> {
        for folder in [Folder::Active, Folder::Completed] {
            let dir = self.folder_path(folder);
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::io("read folder", &dir, e)),
            };
            for entry in entries {
                visit(folder, &entry.map_err(|e| StorageError::io("read folder", &dir, e))?)?;
            }
        }
        Ok(())
    }

    pub fn folder_path(&self, folder: Folder) -> PathBuf {
        match folder {
            Folder::Active => self.layout.active(),
            Folder::Completed => self.layout.completed(),
        }
    }

    pub fn path_of(&self, id: &str, folder: Folder) -> PathBuf {
        self.folder_path(folder).join(file_name(id))
    }

    /// Whether the file of `id` has a flow list or map on a line longer
    /// than the daemon writes ([`crate::yaml::LINE_LIMIT`]): what `msctl
    /// upgrade` tidies. No file, nothing to tidy.
    pub fn has_long_flow_line(&self, id: &str, folder: Folder) -> StorageResult<bool> {
        let path = self.path_of(id, folder);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(crate::yaml::has_long_flow_line(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError::io("read", path, e)),
        }
    }

    /// The path as the shell tooling writes it: relative to the project root.
    pub fn relative(&self, path: &Path) -> String {
        self.layout.relative(path).display().to_string()
    }

    /// True when a file for `id` exists in either folder, parsed or not.
    pub fn exists(&self, id: &str) -> bool {
        [Folder::Active, Folder::Completed].into_iter().any(|f| self.path_of(id, f).exists())
    }

    /// What `path` is, if it names a milestone file of this tree (a
    /// `*.yaml` directly in `active/` or `completed/`, not hidden): its
    /// folder and id. Editor and temporary files (`*.tmp`, `*.swp`, `*~`,
    /// `4913`, `.#*`) are not.
    pub fn classify(&self, path: &Path) -> Option<(Folder, String)> {
        let folder =
            [Folder::Active, Folder::Completed].into_iter().find(|f| path.parent() == Some(&self.folder_path(*f)))?;
        let name = path.file_name()?.to_str()?;
        let stem = name.strip_suffix(".yaml")?;
        (!name.starts_with('.') && !stem.is_empty()).then(|| (folder, stem.to_owned()))
    }

    /// The milestone file at `path` as it is now: `None` when it does not
    /// exist (or `path` names no milestone file). Any other failure to look
    /// is an error, never "no file": it must not read as a deletion.
    pub fn inspect(&self, path: &Path) -> StorageResult<Option<TreeFile>> {
        let Some((folder, stem)) = self.classify(path) else { return Ok(None) };
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() || meta.file_type().is_symlink() => {
                Ok(Some(TreeFile::new(path.to_path_buf(), folder, stem, &meta)))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("inspect", path, e)),
        }
    }

    /// Every `*.yaml` file in both folders (hidden and temporary files are
    /// not milestones).
    pub fn list(&self) -> StorageResult<Vec<TreeFile>> {
        let mut files = Vec::new();
        self.each_entry(|folder, entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(stem) = name.strip_suffix(".yaml") else { return Ok(()) };
            if name.starts_with('.') {
                return Ok(());
            }
            let path = entry.path();
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                // Removed between listing and looking (a checkout).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(StorageError::io("inspect", &path, e)),
            };
            if meta.is_file() || meta.file_type().is_symlink() {
                files.push(TreeFile::new(path, folder, stem.to_owned(), &meta));
            }
            Ok(())
        })?;
        Ok(files)
    }

    /// Reads and parses one file.
    pub fn load(&self, file: &TreeFile) -> Result<LoadedFile, Problem> {
        let path = &file.path;
        let stem = &file.stem;
        if document::validate_id(stem, "id").is_err() {
            return Err(self.problem(path, None, "the file name is not a valid milestone id"));
        }
        if file.link {
            return Err(self.problem(
                path,
                Some(stem),
                "is a symbolic link, which milestoned does not follow; put the milestone's file itself here",
            ));
        }
        let before = fs::metadata(path).ok().map(|m| stamp_of(&m));
        // Refused unread: parsing a huge file would hold up the watcher
        // and start-up for everyone.
        let too_large = |size: u64| {
            self.problem(
                path,
                Some(stem),
                &format!("the file is {size} bytes; a milestone file may hold at most {MAX_FILE_BYTES} bytes"),
            )
        };
        if let Some(size) = before.map(|b| b.size).filter(|size| *size > MAX_FILE_BYTES) {
            return Err(too_large(size));
        }
        let mut bytes = Vec::new();
        fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| self.problem(path, Some(stem), &format!("cannot read: {e}")))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            // It grew after the look at its size.
            return Err(too_large(bytes.len() as u64));
        }
        let hash = sha256_hex(&bytes);
        let text =
            String::from_utf8(bytes).map_err(|_| self.problem(path, Some(stem), "the file is not valid UTF-8"))?;
        if let Some(line) = crate::merge::conflict_marker_line(&text) {
            return Err(self.problem(
                path,
                Some(stem),
                &format!("an unresolved git merge conflict (markers from line {line}); resolve it and save the file"),
            ));
        }
        // The problem names the file already; the message need not.
        let source = self.relative(path);
        let mut doc = crate::yaml::parse_document(&text, &source).map_err(|e| {
            let message = e.to_string();
            self.problem(path, Some(stem), message.strip_prefix(&format!("{source}: ")).unwrap_or(&message))
        })?;
        match doc.get("id") {
            None | Some(Value::Null) => {
                doc.insert("id", Value::from(stem.as_str()));
                doc.reorder(&["id"]);
            }
            Some(Value::String(id)) if id == stem => {}
            Some(other) => {
                return Err(self.problem(
                    path,
                    Some(stem),
                    &format!("the file is named {stem}.yaml but its id is {other:?}"),
                ))
            }
        }
        crate::document_limits::check(&doc).map_err(|e| self.problem(path, Some(stem), &e.to_string()))?;
        // The stamp must describe the bytes parsed: when the file changed
        // while it was read, record a stamp that matches nothing, so the
        // next reconciliation reads it again.
        let after = fs::metadata(path).ok().map(|m| stamp_of(&m));
        let stamp = match (before, after) {
            (Some(b), Some(a)) if a == b => a,
            _ => Stamp { size: u64::MAX, mtime_ns: -1 },
        };
        Ok(LoadedFile { id: stem.clone(), doc, folder: file.folder, stamp, hash })
    }

    /// Loads many files, spread over the machine's cores, then settles ids
    /// found in both folders. Returns the documents and the problems. A
    /// loader thread that dies fails the whole load: its share of the
    /// milestones must not silently go missing.
    pub fn load_all(&self, files: &[TreeFile]) -> StorageResult<(Vec<LoadedFile>, Vec<Problem>)> {
        self.load_all_as(files, Ok)
    }

    /// [`MilestoneTree::load_all`], each document turned by `keep` on the
    /// thread that parsed it: what a parse leaves behind is then freed and
    /// reused at once, rather than scattered among what is kept.
    pub fn load_all_as<D: Send>(
        &self,
        files: &[TreeFile],
        keep: impl Fn(Map) -> StorageResult<D> + Sync,
    ) -> StorageResult<(Vec<LoadedFile<D>>, Vec<Problem>)> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let chunk = files.len().div_ceil(threads).max(1);
        let load = |f: &TreeFile| -> StorageResult<Result<(LoadedFile<D>, Precedence), Problem>> {
            let file = match self.load(f) {
                Ok(file) => file,
                Err(problem) => return Ok(Err(problem)),
            };
            let precedence = Precedence::of(&file);
            let LoadedFile { id, doc, folder, stamp, hash } = file;
            Ok(Ok((LoadedFile { id, doc: keep(doc)?, folder, stamp, hash }, precedence)))
        };
        let parts: Vec<Option<StorageResult<Vec<_>>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = files
                .chunks(chunk)
                .map(|part| scope.spawn(|| part.iter().map(load).collect::<StorageResult<Vec<_>>>()))
                .collect();
            workers.into_iter().map(|w| w.join().ok()).collect()
        });
        let mut loaded = Vec::with_capacity(files.len());
        for part in parts {
            let part = part.ok_or_else(|| {
                StorageError::Invalid("a thread loading milestone files panicked; nothing was loaded".to_owned())
            })?;
            loaded.extend(part?);
        }

        let mut problems = Vec::new();
        let mut by_id: std::collections::HashMap<String, (LoadedFile<D>, Precedence)> =
            std::collections::HashMap::new();
        for item in loaded {
            let file = match item {
                Ok(file) => file,
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            };
            let Some(existing) = by_id.remove(&file.0.id) else {
                by_id.insert(file.0.id.clone(), file);
                continue;
            };
            let (kept, other) = if file.1 > existing.1 { (file, existing) } else { (existing, file) };
            problems.push(self.set_aside(&kept.0, &other.0));
            by_id.insert(kept.0.id.clone(), kept);
        }
        problems.sort_by(|a, b| a.file.cmp(&b.file));
        Ok((by_id.into_values().map(|(file, _)| file).collect(), problems))
    }

    /// The same id in both folders, at load: a move (complete, reopen) that
    /// a kill cut short between writing the new file and removing the old,
    /// or a copy by hand. `kept` is served; `other` goes into
    /// `backups/duplicates/`, so that nothing is lost and the pair cannot
    /// come back (a purge removing one copy while the other stays). The
    /// warning says what happened; should the move fail, `other` stays where
    /// it is, ignored, and the error says so.
    fn set_aside<D>(&self, kept: &LoadedFile<D>, other: &LoadedFile<D>) -> Problem {
        let kept_path = self.path_of(&kept.id, kept.folder);
        let other_path = self.path_of(&other.id, other.folder);
        let dir = self.layout.backups().join("duplicates");
        let name =
            format!("{}.{}.{}.yaml", other.id, other.folder.name(), chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
        let moved = fs::create_dir_all(&dir)
            .and_then(|()| fs::rename(&other_path, dir.join(&name)))
            .and_then(|()| crate::atomic::sync_dir(&dir).map_err(std::io::Error::other))
            .and_then(|()| crate::atomic::sync_dir(&self.folder_path(other.folder)).map_err(std::io::Error::other));
        match moved {
            Ok(()) => {
                let (kept, backup) = (self.relative(&kept_path), self.relative(&dir.join(&name)));
                tracing::warn!(id = %other.id, %kept, set_aside = %backup, "a milestone was in both folders");
                // Named by the copy set aside: no edit of the served file
                // clears what happened.
                Problem {
                    severity: Severity::Warning,
                    ..self.problem(
                        &dir.join(&name),
                        Some(&other.id),
                        &format!(
                            "milestone `{}` was in both active/ and completed/ (a move cut short, or a copy by \
                             hand): {kept}, the newer, is served, and the other copy was moved here",
                            other.id
                        ),
                    )
                }
            }
            Err(e) => self.problem(
                &other_path,
                Some(&other.id),
                &format!(
                    "the same milestone id is also in {}, which is served; this copy could not be moved to {} \
                     ({e}) and is ignored",
                    self.relative(&kept_path),
                    self.relative(&dir)
                ),
            ),
        }
    }

    /// Writes a document to its folder atomically and returns the new file's
    /// stamp and hash.
    pub fn write(&self, doc: &Map) -> StorageResult<(Folder, Stamp, String)> {
        self.write_text(doc, &crate::yaml::to_yaml(doc))
    }

    /// The text of `id`'s file, provided it still holds the bytes the store
    /// last read or wrote (`hash`); otherwise a conflict: an outside edit
    /// not yet taken in, a file that does not load, or one that was removed.
    pub fn read_unchanged(&self, id: &str, folder: Folder, hash: &str) -> StorageResult<String> {
        let path = self.path_of(id, folder);
        let why = match fs::read(&path) {
            Ok(bytes) if sha256_hex(&bytes) == hash => {
                // Bytes the store parsed are UTF-8.
                return String::from_utf8(bytes).map_err(|_| StorageError::Invalid(format!("{} is not UTF-8", self.relative(&path))));
            }
            Ok(_) => "was changed outside milestoned and that change is not taken in (it may not load; `msctl validate` says)",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was removed outside milestoned",
            Err(e) => return Err(StorageError::io("read", path, e)),
        };
        Err(StorageError::Conflict(format!(
            "{} {why}; not overwriting it. Try again once it is fixed or taken in",
            self.relative(&path)
        )))
    }

    /// Writes a changed document over its file (whose text is `original`),
    /// changing only what changed: the user's comments, key order and
    /// formatting elsewhere stay. When the edit cannot be made faithfully the
    /// document is written afresh.
    pub fn write_update(&self, doc: &Map, old: &Map, original: &str) -> StorageResult<(Folder, Stamp, String)> {
        match crate::yaml::edit_preserving(original, old, doc) {
            Some(text) => self.write_text(doc, &text),
            None => self.write(doc),
        }
    }

    /// [`MilestoneTree::write_update`]'s file (or a new document's, without
    /// `previous`), written and synced but not yet in place: see
    /// [`StagedFile`].
    pub fn stage(&self, doc: &Map, previous: Option<(&Map, &str)>) -> StorageResult<StagedFile> {
        let text = previous.and_then(|(old, original)| crate::yaml::edit_preserving(original, old, doc));
        let text = text.unwrap_or_else(|| crate::yaml::to_yaml(doc));
        let id = document::id(doc).ok_or_else(|| StorageError::Invalid("document has no id".into()))?;
        let folder = Folder::of(doc);
        let dir = self.folder_path(folder);
        fs::create_dir_all(&dir).map_err(|e| StorageError::io("create", &dir, e))?;
        let temp = write_temporary(&dir, &file_name(id), text.as_bytes(), true, 0o666)?;
        let hash = sha256_hex(text.as_bytes());
        let unknown = Stamp { size: u64::MAX, mtime_ns: -1 };
        let mut staged =
            StagedFile { temp: Some(temp.clone()), target: dir.join(file_name(id)), dir, folder, stamp: unknown, hash };
        let meta = fs::metadata(&temp).map_err(|e| StorageError::io("inspect", &temp, e))?;
        staged.stamp = stamp_of(&meta);
        Ok(staged)
    }

    fn write_text(&self, doc: &Map, yaml: &str) -> StorageResult<(Folder, Stamp, String)> {
        let id = document::id(doc).ok_or_else(|| StorageError::Invalid("document has no id".into()))?;
        let folder = Folder::of(doc);
        let dir = self.folder_path(folder);
        // A `git checkout` may have removed an empty folder.
        fs::create_dir_all(&dir).map_err(|e| StorageError::io("create", &dir, e))?;
        write_atomically(&dir, &file_name(id), yaml.as_bytes())?;
        let path = dir.join(file_name(id));
        let meta = fs::metadata(&path).map_err(|e| StorageError::io("inspect", &path, e))?;
        Ok((folder, stamp_of(&meta), sha256_hex(yaml.as_bytes())))
    }

    /// Writes many documents (a migration's copy): each file by rename, all
    /// made durable by one filesystem sync at the end. `held` says where
    /// the caller's store already has a milestone's file: that file is
    /// replaced (and moved when the status says so). A file the store does
    /// not hold is someone's own and is never overwritten. Stops at the
    /// first failure (what it wrote stays, for the caller to remove).
    pub fn write_all<'a>(
        &self,
        docs: &[&'a Map],
        held: &dyn Fn(&str) -> StorageResult<Option<Folder>>,
    ) -> StorageResult<Vec<Written<'a>>> {
        let mut places = Vec::with_capacity(docs.len());
        for doc in docs {
            let id = document::id(doc).ok_or_else(|| StorageError::Invalid("document has no id".into()))?;
            let old = held(id)?;
            if old.is_none() && self.exists(id) {
                return Err(StorageError::Invalid(format!(
                    "{} already exists; move it away and try again",
                    self.relative(&self.path_of(id, Folder::of(doc)))
                )));
            }
            places.push(old);
        }
        // A few files are synced one by one; many, by one filesystem sync
        // (which also flushes whatever else is waiting on the disk: too
        // slow for the few a migration copies with writes held).
        let few = docs.len() <= SYNC_EACH_AT_MOST;
        let mut written = Vec::with_capacity(docs.len());
        for (doc, old) in docs.iter().zip(places) {
            let id = document::id(doc).ok_or_else(|| StorageError::Invalid("document has no id".into()))?;
            let folder = Folder::of(doc);
            let yaml = crate::yaml::to_yaml(doc);
            let dir = self.folder_path(folder);
            if few {
                write_renamed(&dir, &file_name(id), yaml.as_bytes(), true, 0o666)?;
            } else {
                write_unsynced(&dir, &file_name(id), yaml.as_bytes())?;
            }
            if let Some(old) = old.filter(|old| *old != folder) {
                let moved = self.path_of(id, old);
                match fs::remove_file(&moved) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io("remove", moved, e)),
                }
            }
            let path = dir.join(file_name(id));
            let stamp = fs::metadata(&path).map(|m| stamp_of(&m)).map_err(|e| StorageError::io("inspect", &path, e))?;
            written.push(Written { id: id.to_owned(), doc, folder, stamp, hash: sha256_hex(yaml.as_bytes()) });
        }
        if few {
            self.sync_folders()?;
        } else {
            sync_filesystem(&self.folder_path(Folder::Active))?;
        }
        Ok(written)
    }

    /// Removes many files, syncing the folders once at the end.
    pub fn remove_all(&self, files: &[(String, Folder)]) -> StorageResult<()> {
        for (id, folder) in files {
            let path = self.path_of(id, *folder);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("remove", path, e)),
            }
        }
        self.sync_folders()
    }

    fn sync_folders(&self) -> StorageResult<()> {
        sync_dir(&self.folder_path(Folder::Active))?;
        Ok(sync_dir(&self.folder_path(Folder::Completed))?)
    }

    /// Removes `id`'s file from `folder`; a file already gone is not an error.
    /// Whether `file`'s path still holds the bytes it was loaded from.
    /// Checked under a store's write lock before an outside edit is taken
    /// in: a file read while a write of the store's own was under way may
    /// already be gone, and must not be taken in over that write.
    pub fn still_holds(&self, file: &LoadedFile) -> bool {
        fs::read(self.path_of(&file.id, file.folder)).is_ok_and(|bytes| sha256_hex(&bytes) == file.hash)
    }

    /// Moves `id`'s file, bytes untouched, from `from` into the other
    /// folder (an outside edit changed its status across the line, and a
    /// status change moves the file). Never replaces a file: false, and
    /// nothing moved, when the other folder already has one for `id`.
    pub fn refile(&self, id: &str, from: Folder) -> StorageResult<bool> {
        let (source, target) = (self.path_of(id, from), self.path_of(id, from.other()));
        // A link then an unlink: unlike a rename, the link fails rather
        // than replace a file that is there. A kill in between leaves the
        // same bytes in both folders, which start-up settles.
        match fs::hard_link(&source, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(StorageError::io("move", source, e)),
        }
        sync_dir(&self.folder_path(from.other()))?;
        self.remove(id, from)?;
        Ok(true)
    }

    pub fn remove(&self, id: &str, folder: Folder) -> StorageResult<()> {
        let dir = self.folder_path(folder);
        let path = dir.join(file_name(id));
        match fs::remove_file(&path) {
            Ok(()) => Ok(sync_dir(&dir)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("remove", path, e)),
        }
    }

    pub fn problem(&self, path: &Path, id: Option<&str>, message: &str) -> Problem {
        Problem {
            id: id.map(str::to_owned),
            file: Some(self.relative(path)),
            severity: Severity::Error,
            field: None,
            message: message.to_owned(),
        }
    }
}

/// Which of two files holding one id is kept: the later `updated_at`, then
/// the one whose folder matches its status (the move's destination), then
/// the completed one.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Precedence(Option<String>, bool, bool);

impl Precedence {
    fn of(file: &LoadedFile) -> Precedence {
        let updated = file.doc.get("updated_at").and_then(Value::as_str).map(str::to_owned);
        Precedence(updated, Folder::of(&file.doc) == file.folder, file.folder == Folder::Completed)
    }
}

pub fn file_name(id: &str) -> String {
    format!("{id}.yaml")
}

fn stamp_of(meta: &fs::Metadata) -> Stamp {
    Stamp { size: meta.len(), mtime_ns: meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec()) }
}
