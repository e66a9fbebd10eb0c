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
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

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
    _debouncer: Option<Debouncer<notify::RecommendedWatcher, RecommendedCache>>,
}

impl TreeWatcher {
    pub fn start(layout: &ProjectLayout, mode: WatcherMode, service: Arc<MilestoneService>) -> TreeWatcher {
        let tree = MilestoneTree::new(layout.clone());
        if mode == WatcherMode::Poll {
            service.set_watching(format!("scanning every {} s (storage.watcher: poll)", POLL_EVERY.as_secs()));
            poll(tree, service);
            return TreeWatcher { _debouncer: None };
        }
        match watch(&tree, service.clone()) {
            Ok(debouncer) => {
                service.set_watching("notify".to_owned());
                TreeWatcher { _debouncer: Some(debouncer) }
            }
            Err(e) => {
                let reason = format!("scanning every {} s (the file watcher could not start: {e})", POLL_EVERY.as_secs());
                tracing::warn!(error = %e, "the file watcher could not start; scanning the tree periodically instead");
                service.set_watching(reason);
                poll(tree, service);
                TreeWatcher { _debouncer: None }
            }
        }
    }
}

fn watch(
    tree: &MilestoneTree,
    service: Arc<MilestoneService>,
) -> notify::Result<Debouncer<notify::RecommendedWatcher, RecommendedCache>> {
    let (sender, batches) = std::sync::mpsc::channel::<DebounceEventResult>();
    let mut debouncer = new_debouncer(DEBOUNCE, None, sender)?;
    for folder in [Folder::Active, Folder::Completed] {
        debouncer.watch(tree.folder_path(folder), RecursiveMode::NonRecursive)?;
    }
    let tree = tree.clone();
    std::thread::Builder::new()
        .name("watcher".into())
        .spawn(move || {
            for batch in batches {
                let paths = match batch {
                    Ok(events) if !events.iter().any(|e| e.need_rescan()) => events
                        .into_iter()
                        .filter(|e| changes_content(&e.event.kind))
                        .flat_map(|e| e.event.paths)
                        .filter(|p| tree.classify(p).is_some())
                        .collect(),
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
        })
        .map_err(|e| notify::Error::generic(&format!("cannot start the watcher thread: {e}")))?;
    Ok(debouncer)
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
fn poll(tree: MilestoneTree, service: Arc<MilestoneService>) {
    let spawned = std::thread::Builder::new().name("tree-scan".into()).spawn(move || {
        let listing = |tree: &MilestoneTree| -> HashMap<PathBuf, Stamp> {
            tree.list().unwrap_or_default().into_iter().map(|f| (f.path, f.stamp)).collect()
        };
        let mut last = listing(&tree);
        loop {
            std::thread::sleep(POLL_EVERY);
            let now = listing(&tree);
            let changed: Vec<PathBuf> = now
                .iter()
                .filter(|(path, stamp)| last.get(*path) != Some(stamp))
                .map(|(path, _)| path.clone())
                .chain(last.keys().filter(|path| !now.contains_key(*path)).cloned())
                .collect();
            absorb(&service, changed);
            last = now;
        }
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
