//! `TreeWatcher`: notices what editors, scripts and `git` do to `active/`
//! and `completed/` (DESIGN §11). `notify` reports the changes, a debouncer
//! coalesces bursts (a checkout of thousands of files arrives as a few
//! batches), and each batch of paths goes to
//! [`MilestoneService::absorb_outside_edits`]. A watcher overflow (the
//! Rescan flag) or error triggers a full rescan. When the watcher cannot
//! start at all (inotify limits), the tree is scanned every few seconds
//! instead, and `msctl daemon status` says so.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer_opt, DebounceEventResult, Debouncer, NoCache};

use crate::config::WatcherMode;
use crate::document::Folder;
use crate::layout::ProjectLayout;
use crate::service::MilestoneService;
use crate::storage::tree::{MilestoneTree, Stamp};

/// Quiet time that ends a burst: short enough for an edit to show within
/// 100 ms, long enough to take a `mv` of a temporary file as one change.
const DEBOUNCE: Duration = Duration::from_millis(25);

/// How often the fallback scan looks at the tree.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// Keeps the watching alive; dropping it stops the notify watcher.
pub struct TreeWatcher {
    tree: MilestoneTree,
    debouncer: Option<SharedDebouncer>,
    state: State,
}

/// Shared with the consuming thread, which re-adds a folder's watch when
/// the folder is removed and created again (a `git checkout` can do that).
type SharedDebouncer = Arc<std::sync::Mutex<Debouncer<notify::RecommendedWatcher, NoCache>>>;

/// Armed but not yet serving: what has been noticed waits here.
enum State {
    Watching(std::sync::mpsc::Receiver<DebounceEventResult>),
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
            return TreeWatcher { tree, debouncer: None, state };
        }
        match watch(&tree) {
            Ok((debouncer, batches)) => {
                let debouncer = Arc::new(std::sync::Mutex::new(debouncer));
                TreeWatcher { tree, debouncer: Some(debouncer), state: State::Watching(batches) }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the file watcher could not start; scanning the tree periodically instead");
                let reason =
                    format!("scanning every {} s (the file watcher could not start: {e})", POLL_EVERY.as_secs());
                TreeWatcher { tree: tree.clone(), debouncer: None, state: poll(reason) }
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
            State::Watching(batches) => {
                service.set_watching("notify".to_owned());
                if let Some(debouncer) = &self.debouncer {
                    consume(self.tree.clone(), batches, debouncer.clone(), service);
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

fn watch(
    tree: &MilestoneTree,
) -> notify::Result<(Debouncer<notify::RecommendedWatcher, NoCache>, std::sync::mpsc::Receiver<DebounceEventResult>)> {
    let (sender, batches) = std::sync::mpsc::channel::<DebounceEventResult>();
    // No file-id cache: it would stat every milestone file at start-up (a
    // second at 100,000), and a rename reported as a removal plus a creation
    // is taken in just the same.
    let mut debouncer = new_debouncer_opt(DEBOUNCE, None, sender, NoCache, notify::Config::default())?;
    for folder in [Folder::Active, Folder::Completed] {
        debouncer.watch(tree.folder_path(folder), RecursiveMode::NonRecursive)?;
    }
    Ok((debouncer, batches))
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
    batches: std::sync::mpsc::Receiver<DebounceEventResult>,
    debouncer: SharedDebouncer,
    service: Arc<MilestoneService>,
) {
    let spawned = std::thread::Builder::new().name("watcher".into()).spawn(move || {
        for batch in batches {
            let paths = match batch {
                Ok(events) if !events.iter().any(|e| e.need_rescan()) => {
                    let paths: Vec<PathBuf> = events
                        .into_iter()
                        .filter(|e| changes_content(&e.event.kind))
                        .flat_map(|e| e.event.paths)
                        .collect();
                    if folders_changed(&tree, &paths) {
                        rewatch(&tree, &debouncer);
                        service.rescan_paths()
                    } else {
                        paths.into_iter().filter(|p| tree.classify(p).is_some()).collect()
                    }
                }
                Ok(_) => {
                    tracing::info!("the file watcher overflowed; rescanning the tree");
                    service.rescan_paths()
                }
                Err(errors) => {
                    tracing::warn!(errors = ?errors, "the file watcher reported errors; rescanning the tree");
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
fn rewatch(tree: &MilestoneTree, debouncer: &SharedDebouncer) {
    let mut debouncer = debouncer.lock().unwrap_or_else(|p| p.into_inner());
    for folder in [Folder::Active, Folder::Completed] {
        let dir = tree.folder_path(folder);
        let _ = std::fs::create_dir_all(&dir);
        let _ = debouncer.unwatch(&dir);
        if let Err(e) = debouncer.watch(&dir, RecursiveMode::NonRecursive) {
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
