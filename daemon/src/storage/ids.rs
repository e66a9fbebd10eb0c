//! `IdAllocator`: generated ids that stay unique across clones, branches
//! and daemons with no coordination at all, so that two people who each
//! create a milestone on their own branch never meet in an add/add
//! conflict. An id is the project's prefix and a random base-36 suffix
//! (`ms-k3f9x`) whose length grows with the project (see [`suffix_length`]).
//!
//! Within one store the insert is atomic and refuses a taken id, so a rare
//! local collision just draws again, one character longer.

use std::sync::Mutex;

use milestones_protocol::{Map, Value};

use super::error::{StorageError, StorageResult};
use super::interface::{Storage, Stored};

/// The shortest suffix, whatever the project's size.
const MIN_SUFFIX: usize = 4;

/// The suffix is sized as if this many clones each created as many
/// milestones as this one holds, none seeing the others' ids...
const CLONES: f64 = 100.0;

/// ...and the chance that any two of all those ids meet stays below this.
const COLLISION_CHANCE: f64 = 1e-4;

/// Attempts before giving up (a store that refuses every id is broken).
const MAX_ATTEMPTS: usize = 64;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// How many base-36 characters a new id's suffix has when the project holds
/// `count` milestones: the fewest for which `CLONES` clones, each making
/// `count + 1` ids at this length, collide with a chance under
/// `COLLISION_CHANCE` (the birthday bound, `pairs / 36^length`). Five
/// characters for a new project, nine at a thousand milestones, twelve
/// at a hundred thousand.
pub fn suffix_length(count: u64) -> usize {
    let ids = CLONES * (count as f64 + 1.0);
    let needed = ids * ids / 2.0 / COLLISION_CHANCE;
    let mut length = MIN_SUFFIX;
    while 36f64.powi(length as i32) < needed {
        length += 1;
    }
    length
}

/// `prefix-` and `length` random base-36 characters; `random` supplies the
/// randomness (the operating system's in the daemon, a seeded generator
/// in tests).
pub fn generate(prefix: &str, length: usize, random: &mut dyn FnMut() -> u64) -> String {
    let mut id = String::with_capacity(prefix.len() + 1 + length);
    if !prefix.is_empty() {
        id.push_str(prefix);
        id.push('-');
    }
    // Twelve base-36 digits fit in a u64 (36^12 < 2^64); the bias of the
    // remainder is below one in a million.
    let mut pool = 0u64;
    for i in 0..length {
        if i % 12 == 0 {
            pool = random();
        }
        id.push(ALPHABET[(pool % 36) as usize] as char);
        pool /= 36;
    }
    id
}

pub struct IdAllocator {
    state: Mutex<State>,
}

struct State {
    /// The milestones the store holds, read on first use and counted up by
    /// each insert; other writers' inserts only make it a little low,
    /// which the suffix length's margin covers.
    count: Option<u64>,
    random: Box<dyn FnMut() -> u64 + Send>,
}

impl Default for IdAllocator {
    fn default() -> Self {
        IdAllocator::with_random(|| getrandom::u64().unwrap_or_else(|_| fallback_random()))
    }
}

impl std::fmt::Debug for IdAllocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdAllocator").field("count", &self.lock().count).finish_non_exhaustive()
    }
}

impl IdAllocator {
    /// An allocator drawing from `random` instead of the operating system
    /// (for tests that need to know which ids come next).
    pub fn with_random(random: impl FnMut() -> u64 + Send + 'static) -> Self {
        IdAllocator { state: Mutex::new(State { count: None, random: Box::new(random) }) }
    }

    /// Forgets the count (the store behind it changed).
    pub fn reset(&self) {
        self.lock().count = None;
    }

    /// Gives `doc` a new generated id starting with `prefix` and inserts it.
    pub fn insert_new(&self, store: &dyn Storage, mut doc: Map, prefix: &str) -> StorageResult<Stored> {
        let count = match self.lock().count {
            Some(count) => count,
            None => store.count()?,
        };
        let mut length = suffix_length(count);
        for _ in 0..MAX_ATTEMPTS {
            let id = generate(prefix, length, &mut *self.lock().random);
            doc.insert("id", Value::String(id));
            doc.reorder(&["id"]);
            match store.insert(doc.clone()) {
                // Taken here already: the project is denser than counted.
                Err(StorageError::AlreadyExists(_)) => length += 1,
                result => {
                    self.lock().count = Some(count + 1);
                    return result;
                }
            }
        }
        Err(StorageError::Unavailable(format!("no free milestone id found after {MAX_ATTEMPTS} attempts")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// When the operating system has no randomness to give (it always has on
/// Linux and macOS): the clock's nanoseconds, the process and a counter,
/// mixed, so ids stay unlikely to meet.
fn fallback_random() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// splitmix64: a seeded generator, so that the property below is the
    /// same every run and a failure can be replayed.
    fn seeded(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state = state.wrapping_add(0x9e3779b97f4a7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            z ^ (z >> 31)
        }
    }

    /// A hundred clones of one project, none seeing another's ids, each
    /// create ten thousand milestones, sizing each suffix by what that
    /// clone holds: the million ids never meet.
    #[test]
    fn a_million_ids_from_a_hundred_clones_never_collide() {
        let mut all = HashSet::with_capacity(1_000_000);
        let mut expected_collisions = 0.0;
        let mut per_length = std::collections::BTreeMap::<usize, f64>::new();
        for clone in 0..100u64 {
            let mut random = seeded(clone.wrapping_mul(0x2545f4914f6cdd1d) ^ 0x5eed);
            let mut mine = HashSet::with_capacity(10_000);
            for count in 0..10_000u64 {
                let mut length = suffix_length(count);
                let id = loop {
                    let id = generate("ms", length, &mut random);
                    // A clone's own store refuses its own repeats.
                    if mine.insert(id.clone()) {
                        break id;
                    }
                    length += 1;
                };
                if clone == 0 {
                    *per_length.entry(id.len() - 3).or_default() += 1.0;
                }
                assert!(all.insert(id.clone()), "clone {clone} made {id}, which another clone made too");
            }
        }
        assert_eq!(all.len(), 1_000_000);
        // The rule itself, not only this draw: pairs of ids from different
        // clones at each length, over the number of suffixes of that length.
        for (length, ids) in per_length {
            expected_collisions += 100.0 * 99.0 / 2.0 * ids * ids / 36f64.powi(length as i32);
        }
        assert!(expected_collisions < 1e-3, "the length rule expects {expected_collisions} collisions");
    }

    #[test]
    fn ids_are_short_while_the_project_is_small_and_grow_with_it() {
        assert_eq!(suffix_length(0), 5);
        assert_eq!(suffix_length(1_000), 9);
        assert_eq!(suffix_length(100_000), 12);
        let mut random = seeded(7);
        let id = generate("ms", suffix_length(0), &mut random);
        assert!(id.starts_with("ms-") && id.len() == 8, "{id}");
        assert!(id[3..].chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()), "{id}");
        crate::document::validate_id(&id, "id").unwrap();
        assert!(!generate("", 5, &mut random).contains('-'));
    }
}
