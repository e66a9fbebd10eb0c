//! `Turns`: writers of one milestone within this daemon take turns.
//!
//! Correctness never rests on this: every write states the revision it
//! read and the store refuses a stale one, so writers in other daemons (or
//! outside edits) are handled by the compare-and-swap loop. But fifty
//! clients of one daemon changing one milestone at once would, with the
//! loop alone, collide again and again; queued here, each applies its
//! change to the version the one before it wrote.

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

/// Locks per daemon: milestones share one only by chance, and briefly.
const STRIPES: usize = 64;

pub struct Turns {
    stripes: Vec<Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Turns {
    fn default() -> Self {
        Turns { stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(), hasher: Default::default() }
    }
}

impl Turns {
    /// Waits for `id`'s turn; it lasts until the guard is dropped.
    pub fn take(&self, id: &str) -> MutexGuard<'_, ()> {
        let stripe = &self.stripes[self.hasher.hash_one(id) as usize % STRIPES];
        // Guards nothing but the turn itself: a panic while holding it
        // leaves nothing inconsistent.
        stripe.lock().unwrap_or_else(|p| p.into_inner())
    }
}
