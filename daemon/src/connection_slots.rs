//! `ConnectionSlots`: the daemon's connection limit, and which connection
//! gives way when a new client needs a slot.
//!
//! A limit that simply turned new clients away would let idle connections
//! (an editor left open, a script that never closes, a thousand clients
//! that handshake and wait) lock everyone else out. So when every slot is
//! taken, the connection that has been idle longest is asked to close, and
//! the newcomer takes its place; a subscriber (whose idleness is its
//! purpose) gives way only when no plain idle connection is left. Only when
//! every connection is in the middle of a request is a newcomer turned away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

/// How many connections may be over the limit at once while the ones asked
/// to give way are closing.
pub const CLOSING_ALLOWANCE: usize = 16;

/// What a connection is doing, which decides whether it may give way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// Between requests (or still in its handshake).
    Idle,
    /// Running a request: never interrupted.
    Busy,
    /// Subscribed to changes: gives way after every idle connection.
    Subscribed,
}

struct Holder {
    activity: Activity,
    since: Instant,
    give_way: Arc<Notify>,
    asked: bool,
}

#[derive(Default)]
struct Table {
    next: u64,
    holders: HashMap<u64, Holder>,
}

pub struct ConnectionSlots {
    limit: usize,
    table: Mutex<Table>,
}

impl ConnectionSlots {
    pub fn new(limit: usize) -> Arc<ConnectionSlots> {
        Arc::new(ConnectionSlots { limit: limit.max(1), table: Mutex::new(Table::default()) })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot for a new connection, asking the longest-idle connection to
    /// give way when all are taken; `None` when every connection is busy.
    pub fn take(self: &Arc<Self>) -> Option<Slot> {
        let mut table = self.table();
        let closing = table.holders.values().filter(|h| h.asked).count();
        if table.holders.len() - closing >= self.limit {
            if table.holders.len() >= self.limit + CLOSING_ALLOWANCE {
                return None;
            }
            let victim = longest_idle(&table)?;
            let holder = table.holders.get_mut(&victim).expect("chosen from the table");
            holder.asked = true;
            holder.give_way.notify_one();
        }
        let id = table.next;
        table.next += 1;
        let give_way = Arc::new(Notify::new());
        table.holders.insert(
            id,
            Holder { activity: Activity::Idle, since: Instant::now(), give_way: give_way.clone(), asked: false },
        );
        Some(Slot { id, slots: self.clone(), give_way })
    }

    /// Asks the longest-idle connection to close, to free its file
    /// descriptor when the process has run out; false when none is idle.
    pub fn free_one(&self) -> bool {
        let mut table = self.table();
        let Some(victim) = longest_idle(&table) else { return false };
        let holder = table.holders.get_mut(&victim).expect("chosen from the table");
        holder.asked = true;
        holder.give_way.notify_one();
        true
    }

    fn set(&self, id: u64, activity: Activity) {
        if let Some(holder) = self.table().holders.get_mut(&id) {
            holder.activity = activity;
            holder.since = Instant::now();
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // The table is consistent after every statement: a panic elsewhere
        // while holding it leaves nothing half-done.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The idle connection not yet asked to close that has waited longest,
/// else the oldest subscriber.
fn longest_idle(table: &Table) -> Option<u64> {
    let oldest = |activity| {
        table
            .holders
            .iter()
            .filter(|(_, h)| !h.asked && h.activity == activity)
            .min_by_key(|(_, h)| h.since)
            .map(|(id, _)| *id)
    };
    oldest(Activity::Idle).or_else(|| oldest(Activity::Subscribed))
}

/// One connection's hold on a slot; released when dropped.
pub struct Slot {
    id: u64,
    slots: Arc<ConnectionSlots>,
    give_way: Arc<Notify>,
}

impl Slot {
    /// Resolves when another client needs this connection's slot.
    pub async fn asked_to_give_way(&self) {
        self.give_way.notified().await
    }

    pub fn busy(&self) {
        self.slots.set(self.id, Activity::Busy);
    }

    pub fn idle(&self) {
        self.slots.set(self.id, Activity::Idle);
    }

    pub fn subscribed(&self) {
        self.slots.set(self.id, Activity::Subscribed);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.table().holders.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_asks_the_longest_idle_connection_to_give_way() {
        let slots = ConnectionSlots::new(2);
        let first = slots.take().expect("a free slot");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = slots.take().expect("a free slot");
        // The first is idle longest: it is asked, and the newcomer is in.
        let third = slots.take().expect("the first gives way");
        assert!(slots.table().holders[&first.id].asked);
        assert!(!slots.table().holders[&second.id].asked);
        drop(first);
        // A busy connection is never asked; the subscriber goes last.
        second.subscribed();
        third.busy();
        let fourth = slots.take().expect("the subscriber gives way");
        assert!(slots.table().holders[&second.id].asked);
        drop(second);
        fourth.busy();
        assert!(slots.take().is_none(), "every connection is busy");
    }
}
