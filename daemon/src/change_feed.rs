//! `ChangeFeed`: every change to the project, whatever made it (a request,
//! an outside edit, a migration), fanned out to subscribers. The channel is
//! bounded: a subscriber that falls behind loses the oldest events and is
//! told how many, and publishing never waits for anyone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use milestones_protocol::{ChangeEvent, EventKind, EventSource};
use tokio::sync::broadcast;

/// Events kept for a subscriber that has not read them yet.
const BACKLOG: usize = 1024;

pub struct ChangeFeed {
    sender: broadcast::Sender<Arc<Change>>,
    seq: AtomicU64,
}

/// A change as published: the event subscribers receive, and what only the
/// daemon's own listeners (hooks) need besides.
#[derive(Debug)]
pub struct Change {
    pub event: ChangeEvent,
    /// The milestone's status before the change, when it had one and the
    /// publisher knew it.
    pub previous_status: Option<String>,
}

/// One change, before it is numbered and stamped.
pub struct NewEvent<'a> {
    pub kind: EventKind,
    pub id: Option<&'a str>,
    pub status: Option<crate::document::Status>,
    pub previous_status: Option<crate::document::Status>,
    pub source: EventSource,
    pub file: Option<String>,
    pub detail: Option<String>,
}

impl<'a> NewEvent<'a> {
    /// A change a request made to one milestone.
    pub fn by_request(kind: EventKind, id: &'a str, status: Option<crate::document::Status>) -> Self {
        NewEvent {
            kind,
            id: Some(id),
            status,
            previous_status: None,
            source: EventSource::Request,
            file: None,
            detail: None,
        }
    }
}

impl Default for ChangeFeed {
    fn default() -> Self {
        ChangeFeed { sender: broadcast::channel(BACKLOG).0, seq: AtomicU64::new(0) }
    }
}

impl ChangeFeed {
    pub fn publish(&self, change: NewEvent) {
        let event = ChangeEvent {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            kind: change.kind,
            id: change.id.map(str::to_owned),
            status: change.status.map(|s| s.as_str().to_owned()),
            source: change.source,
            timestamp: crate::document::now_timestamp(),
            file: change.file,
            detail: change.detail,
        };
        let previous_status = change.previous_status.map(|s| s.as_str().to_owned());
        // No subscriber is not an error.
        let _ = self.sender.send(Arc::new(Change { event, previous_status }));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.sender.subscribe()
    }
}
