//! `IdAllocator`: generated `milestone-NNN` ids that stay unique with
//! several writers. It needs no lock shared between them: each store's
//! insert is atomic and refuses a taken id, so a writer whose guess was
//! taken by another simply moves on, re-reading the highest number when
//! its guesses keep colliding (another daemon has been busy).

use std::sync::Mutex;

use milestones_protocol::{Map, Value};

use super::error::{StorageError, StorageResult};
use super::interface::{Storage, Stored};

const PREFIX: &str = "milestone-";

/// Collisions in a row before the next number is read from the store again.
const RESEED_AFTER: usize = 3;

/// Attempts before giving up (a store that refuses every id is broken).
const MAX_ATTEMPTS: usize = 64;

#[derive(Debug, Default)]
pub struct IdAllocator {
    /// The next number to try; read from the store on first use.
    next: Mutex<Option<u64>>,
}

impl IdAllocator {
    /// Forgets the cached number (the store behind it changed).
    pub fn reset(&self) {
        *self.lock() = None;
    }

    /// Gives `doc` the next free generated id and inserts it.
    pub fn insert_new(&self, store: &dyn Storage, mut doc: Map) -> StorageResult<Stored> {
        let mut collisions = 0;
        for _ in 0..MAX_ATTEMPTS {
            // Taken and advanced in one step, so threads of this process
            // never guess the same number.
            let n = {
                let mut next = self.lock();
                let n = match *next {
                    Some(n) if collisions < RESEED_AFTER => n,
                    // Never backwards: an id held only by a file that does
                    // not load is taken, though no stored milestone has it.
                    tried => {
                        collisions = 0;
                        (highest_number(store)? + 1).max(tried.unwrap_or(0))
                    }
                };
                *next = Some(n + 1);
                n
            };
            doc.insert("id", Value::String(format!("{PREFIX}{n:03}")));
            doc.reorder(&["id"]);
            match store.insert(doc.clone()) {
                Err(StorageError::AlreadyExists(_)) => collisions += 1,
                result => return result,
            }
        }
        Err(StorageError::Unavailable(format!("no free milestone id found after {MAX_ATTEMPTS} attempts")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.next.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn highest_number(store: &dyn Storage) -> StorageResult<u64> {
    let ids = store.ids()?;
    Ok(ids.iter().filter_map(|id| id.strip_prefix(PREFIX)?.parse::<u64>().ok()).max().unwrap_or(0))
}
