//! `TreeWatcher`: notices what editors, scripts and `git` do to `active/`
//! and `completed/` (DESIGN §11). `notify` reports the changes; the paths
//! they name are gathered until a burst goes quiet (a checkout of
//! thousands of files arrives as a few batches), and each batch of paths
//! goes to [`MilestoneService::absorb_outside_edits`], which looks at what
//! each path holds now. Only paths are kept, never the events' kinds: a
//! file the daemon wrote and `git checkout` removed a moment later must
//! still be looked at, where an event debouncer cancels the creation
//! against the removal and reports nothing. A watcher overflow (the
//! Rescan flag) or error triggers a full rescan. When the watcher cannot
//! start at all (inotify limits), the tree is scanned every few seconds
//! instead, and `msctl daemon status` says so.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use crate::config::WatcherMode;
use crate::document::Folder;
use crate::layout::ProjectLayout;
use crate::service::MilestoneService;
use crate::storage::tree::{MilestoneTree, Stamp};

/// Quiet time that ends a burst: short enough for an edit to show within
/// 100 ms, long enough to take a `mv` of a temporary file as one change.
const DEBOUNCE: Duration = Duration::from_millis(25);

/// The longest a burst that never goes quiet (a checkout of 100,000 files)
/// is gathered before what it touched so far is taken in.
const LONGEST_BATCH: Duration = Duration::from_millis(500);

/// How often the fallback scan looks at the tree.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// Keeps the watching alive; dropping it stops the notify watcher.
pub struct TreeWatcher {
    tree: MilestoneTree,
    watcher: Option<SharedWatcher>,
    state: State,
}

/// Shared with the consuming thread, which re-adds a folder's watch when
/// the folder is removed and created again (a `git checkout` can do that).
type SharedWatcher = Arc<std::sync::Mutex<notify::RecommendedWatcher>>;

/// Armed but not yet serving: what has been noticed waits here.
enum State {
    Watching(Receiver<notify::Result<Event>>),
    Polling { since: HashMap<PathBuf, Stamp>, reason: String },
    Serving,
}

impl TreeWatcher {
    /// Starts noticing changes. Called before the store reads the tree, so
    /// that an edit made while it loads is not missed: it waits until
    /// [`TreeWatcher::serve`].
    pub fn arm(layout: &ProjectLayout, mode: WatcherMode) -> TreeWatcher {
        let tree = MilestoneTree::new(layout.clone());
        let poll = |reason: String| State::Polling { since: listing(&tree).unwrap_or_default(), reason };
        if mode == WatcherMode::Poll {
            let state = poll(format!("scanning every {} s (storage.watcher: poll)", POLL_EVERY.as_secs()));
            return TreeWatcher { tree, watcher: None, state };
        }
        match watch(&tree) {
            Ok((watcher, events)) => {
                let watcher = Arc::new(std::sync::Mutex::new(watcher));
                TreeWatcher { tree, watcher: Some(watcher), state: State::Watching(events) }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the file watcher could not start; scanning the tree periodically instead");
                let reason =
                    format!("scanning every {} s (the file watcher could not start: {e})", POLL_EVERY.as_secs());
                TreeWatcher { tree: tree.clone(), watcher: None, state: poll(reason) }
            }
        }
    }

    /// Hands what was noticed since arming, and everything from now on, to
    /// the service. On the database backend, files already in the folders
    /// (dropped in while no daemon ran) are imported first.
    pub fn serve(&mut self, service: Arc<MilestoneService>) {
        if !service.keeps_files() {
            match self.tree.list() {
                Ok(waiting) => absorb(&service, waiting.into_iter().map(|f| f.path).collect()),
                Err(e) => tracing::warn!(error = %e, "cannot look for files waiting to be imported"),
            }
        }
        match std::mem::replace(&mut self.state, State::Serving) {
            State::Watching(events) => {
                service.set_watching("notify".to_owned());
                if let Some(watcher) = &self.watcher {
                    consume(self.tree.clone(), events, watcher.clone(), service);
                }
            }
            State::Polling { since, reason } => {
                service.set_watching(reason);
                poll(self.tree.clone(), since, service);
            }
            State::Serving => {}
        }
    }
}

fn watch(tree: &MilestoneTree) -> notify::Result<(notify::RecommendedWatcher, Receiver<notify::Result<Event>>)> {
    let (sender, events) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(sender)?;
    for folder in [Folder::Active, Folder::Completed] {
        watcher.watch(&tree.folder_path(folder), RecursiveMode::NonRecursive)?;
    }
    Ok((watcher, events))
}

/// What one quiet-ended burst of events touched.
enum Batch {
    Paths(Vec<PathBuf>),
    /// The watcher overflowed or failed: only a rescan can tell.
    Rescan(String),
}

/// Waits for the next burst and gathers it: every path an event that may
/// change content names, each once, until no event comes for
/// [`DEBOUNCE`] (or [`LONGEST_BATCH`] has passed). `None` once the
/// watcher is gone.
fn next_batch(events: &Receiver<notify::Result<Event>>) -> Option<Batch> {
    let mut first = Some(events.recv().ok()?);
    let started = Instant::now();
    let (mut seen, mut paths, mut rescan) = (HashSet::new(), Vec::new(), None);
    loop {
        let event = match first.take() {
            Some(event) => event,
            None => {
                let left = LONGEST_BATCH.saturating_sub(started.elapsed());
                match events.recv_timeout(DEBOUNCE.min(left)) {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return None,
                }
            }
        };
        match event {
            Ok(event) if event.need_rescan() => {
                rescan.get_or_insert_with(|| "the file watcher overflowed".to_owned());
            }
            Ok(event) if changes_content(&event.kind) => {
                paths.extend(event.paths.into_iter().filter(|p| seen.insert(p.clone())));
            }
            Ok(_) => {}
            Err(e) => {
                rescan.get_or_insert_with(|| format!("the file watcher reported an error: {e}"));
            }
        }
        if started.elapsed() >= LONGEST_BATCH {
            break;
        }
    }
    Some(match rescan {
        Some(why) => Batch::Rescan(why),
        None => Batch::Paths(paths),
    })
}

/// True when the batch touched `active/` or `completed/` themselves (a
/// removed folder reports its own removal, and loses its watch); the
/// folders are then created and watched again and the tree rescanned. The
/// parent `.milestones/` is not watched: its databases' writes would flood
/// the watcher.
fn folders_changed(tree: &MilestoneTree, paths: &[PathBuf]) -> bool {
    let folders = [tree.folder_path(Folder::Active), tree.folder_path(Folder::Completed)];
    paths.iter().any(|p| folders.contains(p))
}

/// The thread that takes each batch to the service.
fn consume(
    tree: MilestoneTree,
    events: Receiver<notify::Result<Event>>,
    watcher: SharedWatcher,
    service: Arc<MilestoneService>,
) {
    let spawned = std::thread::Builder::new().name("watcher".into()).spawn(move || {
        while let Some(batch) = next_batch(&events) {
            let paths = match batch {
                Batch::Paths(paths) if folders_changed(&tree, &paths) => {
                    rewatch(&tree, &watcher);
                    service.rescan_paths()
                }
                Batch::Paths(paths) => paths.into_iter().filter(|p| tree.classify(p).is_some()).collect(),
                Batch::Rescan(why) => {
                    tracing::info!("{why}; rescanning the tree");
                    service.rescan_paths()
                }
            };
            absorb(&service, paths);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the watcher thread; outside edits are seen only after a restart");
    }
}

/// Watches `active/` and `completed/` again, creating them when missing.
fn rewatch(tree: &MilestoneTree, watcher: &SharedWatcher) {
    let mut watcher = watcher.lock().unwrap_or_else(|p| p.into_inner());
    for folder in [Folder::Active, Folder::Completed] {
        let dir = tree.folder_path(folder);
        let _ = std::fs::create_dir_all(&dir);
        let _ = watcher.unwatch(&dir);
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %dir.display(), error = %e, "cannot watch the folder again");
        }
    }
}

/// Every milestone file and its stamp; `None` when the folders cannot be
/// read (a scan that fails must not look like every file was deleted).
fn listing(tree: &MilestoneTree) -> Option<HashMap<PathBuf, Stamp>> {
    match tree.list() {
        Ok(files) => Some(files.into_iter().map(|f| (f.path, f.stamp)).collect()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot scan the milestone folders; trying again");
            None
        }
    }
}

/// True for events that may change what a file holds. Opening and reading
/// are not (the daemon's own reads would otherwise feed back into it).
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

/// The fallback: compare each file's size and mtime with the last look.
fn poll(tree: MilestoneTree, mut last: HashMap<PathBuf, Stamp>, service: Arc<MilestoneService>) {
    let spawned = std::thread::Builder::new().name("tree-scan".into()).spawn(move || loop {
        let Some(now) = listing(&tree) else {
            std::thread::sleep(POLL_EVERY);
            continue;
        };
        let changed: Vec<PathBuf> = now
            .iter()
            .filter(|(path, stamp)| last.get(*path) != Some(stamp))
            .map(|(path, _)| path.clone())
            .chain(last.keys().filter(|path| !now.contains_key(*path)).cloned())
            .collect();
        absorb(&service, changed);
        last = now;
        std::thread::sleep(POLL_EVERY);
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the tree scan; outside edits are seen only after a restart");
    }
}

fn absorb(service: &MilestoneService, paths: Vec<PathBuf>) {
    if paths.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let done = service.absorb_outside_edits(&paths);
    if done.total() > 0 || done.failed > 0 {
        tracing::info!(
            paths = paths.len(),
            created = done.created,
            updated = done.updated,
            deleted = done.deleted,
            invalid = done.invalid,
            failed = done.failed,
            ms = started.elapsed().as_millis() as u64,
            "outside edits taken in"
        );
    }
}
