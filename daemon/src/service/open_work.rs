//! The project's open work (a [`WorkIndex`]) kept between `ready` and
//! `blocked` requests, and brought up to date from the change feed before
//! each one.
//!
//! Every change the daemon hears of is on the feed: its own requests
//! (published before they are answered, so a client's next `ready` sees
//! its own change), outside edits, and other daemons' writes to a shared
//! database (the store's listener, which catches up after an outage). The
//! milestones named since the last request are read again, in one
//! `get_many`. A burst the feed could not keep (it lagged) or a new store
//! (after a migration or a rollback) has the index built again instead,
//! from one `work_nodes` query.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::broadcast::{self, error::TryRecvError};

use crate::change_feed::{Change, ChangeFeed};
use crate::storage::{Storage, StorageError, StorageResult};
use crate::work::{WorkIndex, WorkNode};

#[derive(Default)]
pub(super) struct OpenWork {
    followed: Mutex<Option<Followed>>,
}

/// An index and where its changes come from.
struct Followed {
    store: Weak<dyn Storage>,
    changes: broadcast::Receiver<Arc<Change>>,
    index: WorkIndex,
}

impl OpenWork {
    /// `read` of the index of `store`'s milestones (with their tasks when
    /// `tasks`), up to date with every change `feed` announced.
    pub fn read<T>(
        &self,
        store: &Arc<dyn Storage>,
        feed: &ChangeFeed,
        tasks: bool,
        read: impl FnOnce(&mut WorkIndex) -> T,
    ) -> StorageResult<T> {
        let mut followed = self.followed.lock().unwrap_or_else(PoisonError::into_inner);
        // Taken out: when bringing it up to date fails, the next request
        // builds it again rather than trust it.
        let current = match followed.take() {
            Some(f) if Weak::ptr_eq(&f.store, &Arc::downgrade(store)) && (f.index.has_tasks() || !tasks) => {
                f.caught_up(store)?
            }
            _ => None,
        };
        let mut current = match current {
            Some(current) => current,
            None => Followed::build(store, feed, tasks)?,
        };
        let answer = read(&mut current.index);
        *followed = Some(current);
        Ok(answer)
    }
}

impl Followed {
    fn build(store: &Arc<dyn Storage>, feed: &ChangeFeed, tasks: bool) -> StorageResult<Followed> {
        // Listening first: a change made while the nodes are read is read
        // again at the next request.
        let changes = feed.subscribe();
        let index = WorkIndex::new(store.work_nodes(tasks)?, tasks);
        Ok(Followed { store: Arc::downgrade(store), changes, index })
    }

    /// The index with the changes announced since, read again; `None` when
    /// it must be built again.
    fn caught_up(mut self, store: &Arc<dyn Storage>) -> StorageResult<Option<Followed>> {
        let mut changed = BTreeSet::new();
        loop {
            match self.changes.try_recv() {
                // A change without a milestone (a migration starting or
                // ending) changes none; the switch itself is a new store.
                Ok(change) => changed.extend(change.event.id.clone()),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_) | TryRecvError::Closed) => return Ok(None),
            }
        }
        let changed: Vec<String> = changed.into_iter().collect();
        if changed.is_empty() {
            return Ok(Some(self));
        }
        let with_tasks = self.index.has_tasks();
        for (id, stored) in changed.iter().zip(store.get_many(&changed)?) {
            let node = match stored {
                Ok(stored) => stored.and_then(|s| WorkNode::of(&s.doc, with_tasks)),
                // Left out, as lists leave it out.
                Err(StorageError::Unreadable { .. }) => None,
                Err(e) => return Err(e),
            };
            self.index.set(id, node);
        }
        Ok(Some(self))
    }
}
