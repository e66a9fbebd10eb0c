//! `Listener`: a thread holding its own connection that LISTENs for the
//! change notifications the `milestones` trigger sends, and hands the ones
//! other writers caused to the daemon (its subscribers hear of them). When
//! the server goes away it reconnects with backoff, listens again, and
//! catches up on what changed meanwhile (rows whose `change_seq` is newer
//! than the last it heard of, and `milestone_deletions`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use milestones_protocol::EventKind;
use postgres::fallible_iterator::FallibleIterator;

use super::pool::{Connection, ConnectionPool};
use super::schema::CHANNEL;
use crate::storage::error::StorageResult;
use crate::storage::interface::{ChangeSink, SharedChange};

/// How often the thread looks up from waiting to see whether it should stop.
const POLL: Duration = Duration::from_millis(250);

/// Waits between reconnection attempts: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

pub struct Listener {
    state: Arc<State>,
}

struct State {
    stop: AtomicBool,
    listening: AtomicBool,
}

impl Listener {
    pub fn start(pool: Arc<ConnectionPool>, sink: ChangeSink) -> Listener {
        let state = Arc::new(State { stop: AtomicBool::new(false), listening: AtomicBool::new(false) });
        let thread_state = state.clone();
        let spawned =
            std::thread::Builder::new().name("pg-listener".to_owned()).spawn(move || run(&pool, &sink, &thread_state));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the database change listener; other daemons' changes go unheard");
        }
        Listener { state }
    }

    /// True while the connection is up and listening.
    pub fn is_listening(&self) -> bool {
        self.state.listening.load(Ordering::Relaxed)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
    }
}

fn run(pool: &ConnectionPool, sink: &ChangeSink, state: &State) {
    let mut heard: Option<i64> = None;
    let mut wait = BACKOFF.0;
    while !state.stop.load(Ordering::Relaxed) {
        match listen(pool, sink, state, &mut heard) {
            Ok(()) => return,
            Err(e) => {
                if state.listening.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "lost the database connection; reconnecting");
                    // The pool's idle connections died with it.
                    pool.clear();
                    wait = BACKOFF.0;
                } else {
                    tracing::debug!(error = %e, ?wait, "cannot reach the database yet");
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(BACKOFF.1);
            }
        }
    }
}

/// One connection's life: listen, catch up, pass notifications on until
/// told to stop (`Ok`) or the connection fails (`Err`).
fn listen(pool: &ConnectionPool, sink: &ChangeSink, state: &State, heard: &mut Option<i64>) -> StorageResult<()> {
    let target = pool.target();
    let failed = |what| super::failure::failed(target, what);
    let mut conn = Connection::open(pool.url(), target)?;
    conn.client.batch_execute(&format!("LISTEN {CHANNEL}")).map_err(failed("listen for changes"))?;
    match *heard {
        // Everything from now on is heard; nothing older is news.
        None => *heard = Some(newest_change(&mut conn, target)?),
        Some(since) => {
            let caught_up = catch_up(&mut conn, target, since, sink)?;
            *heard = Some(caught_up.max(since));
        }
    }
    if !state.listening.swap(true, Ordering::Relaxed) {
        tracing::info!(%target, "listening for other daemons' changes");
    }
    while !state.stop.load(Ordering::Relaxed) {
        {
            let mut notifications = conn.client.notifications();
            let mut waiting = notifications.timeout_iter(POLL);
            while let Some(note) = waiting.next().map_err(failed("listen for changes"))? {
                let Some(change) = parse(note.payload()) else {
                    tracing::debug!(payload = note.payload(), "a change notification milestoned does not read");
                    continue;
                };
                *heard = Some(heard.map_or(change.seq, |h| h.max(change.seq)));
                if !pool.is_own(note.process_id()) {
                    sink(change.change);
                }
            }
        }
        // The wait also ends when the connection does.
        if conn.client.is_closed() {
            return Err(crate::storage::error::StorageError::Unavailable(format!(
                "{target}: the listening connection was closed"
            )));
        }
    }
    Ok(())
}

/// The newest change number the database has handed out.
fn newest_change(conn: &mut Connection, target: &str) -> StorageResult<i64> {
    let row = conn
        .client
        .query_one(
            "SELECT GREATEST((SELECT COALESCE(MAX(change_seq), 0) FROM milestones),
                             (SELECT COALESCE(MAX(change_seq), 0) FROM milestone_deletions))",
            &[],
        )
        .map_err(super::failure::failed(target, "read the newest change"))?;
    Ok(row.get(0))
}

/// Hands on every change newer than `since` (made while this daemon was
/// not listening); returns the newest change number seen.
fn catch_up(conn: &mut Connection, target: &str, since: i64, sink: &ChangeSink) -> StorageResult<i64> {
    let failed = || super::failure::failed(target, "catch up on changes");
    let mut newest = since;
    let changed = conn
        .client
        .query(
            "SELECT id, status, change_seq, created_change > $1 FROM milestones WHERE change_seq > $1 ORDER BY change_seq",
            &[&since],
        )
        .map_err(failed())?;
    let deleted = conn
        .client
        .query("SELECT id, change_seq FROM milestone_deletions WHERE change_seq > $1 ORDER BY change_seq", &[&since])
        .map_err(failed())?;
    if !changed.is_empty() || !deleted.is_empty() {
        tracing::info!(
            changed = changed.len(),
            deleted = deleted.len(),
            "caught up on changes made while disconnected"
        );
    }
    for row in changed {
        newest = newest.max(row.get(2));
        let kind = if row.get(3) { EventKind::Created } else { EventKind::Updated };
        sink(SharedChange { kind, id: row.get(0), status: row.get(1) });
    }
    for row in deleted {
        newest = newest.max(row.get(1));
        sink(SharedChange { kind: EventKind::Deleted, id: row.get(0), status: None });
    }
    Ok(newest)
}

struct Notified {
    change: SharedChange,
    seq: i64,
}

/// Reads the trigger's payload: `{"op": ..., "id": ..., "seq": ..., "status": ...}`.
fn parse(payload: &str) -> Option<Notified> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    let kind = match value.get("op")?.as_str()? {
        "created" => EventKind::Created,
        "updated" => EventKind::Updated,
        "deleted" => EventKind::Deleted,
        _ => return None,
    };
    Some(Notified {
        change: SharedChange {
            kind,
            id: value.get("id")?.as_str()?.to_owned(),
            status: value.get("status").and_then(|s| s.as_str()).map(str::to_owned),
        },
        seq: value.get("seq")?.as_i64()?,
    })
}
