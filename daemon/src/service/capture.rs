//! `Capture`: the milestones written while a migration copies, so that the
//! migration copies them again once writes are held for the switch; and
//! the pace of writes meanwhile, slowed when they come faster than the
//! migration copies them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The longest a write is made to wait for the copy to catch up.
const MOST_DELAY_MS: u64 = 50;

#[derive(Debug, Default)]
pub(super) struct Capture {
    written: Mutex<Option<HashSet<String>>>,
    /// How long each write waits before it begins, in milliseconds.
    delay_ms: AtomicU64,
}

impl Capture {
    /// From now on every write is noted.
    pub fn start(&self) {
        *self.lock() = Some(HashSet::new());
    }

    /// Writes come as fast as the catch-up copies them: from now on each
    /// waits a little before it begins (2 ms, doubled at each call, 50 ms
    /// at most), so that the copy overtakes them and the final hold stays
    /// short. Delayed, never refused.
    pub fn slow_down(&self) {
        let next = (self.delay_ms.load(Ordering::Relaxed) * 2).clamp(2, MOST_DELAY_MS);
        self.delay_ms.store(next, Ordering::Relaxed);
        tracing::info!(delay_ms = next, "writes come faster than the migration copies them; each waits a little");
    }

    /// Called before a write begins (outside any lock).
    pub fn pace(&self) {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
    }

    /// Notes a write to `id`, when a migration is copying.
    pub fn note(&self, id: &str) {
        if let Some(written) = self.lock().as_mut() {
            written.insert(id.to_owned());
        }
    }

    /// What was written so far; the capture goes on.
    pub fn so_far(&self) -> HashSet<String> {
        self.lock().clone().unwrap_or_default()
    }

    /// What was written since the last take; the capture goes on.
    pub fn take(&self) -> HashSet<String> {
        self.lock().as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// What was written since the last take; the capture ends, and writes
    /// go at their own pace again.
    pub fn stop(&self) -> HashSet<String> {
        self.delay_ms.store(0, Ordering::Relaxed);
        self.lock().take().unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, Option<HashSet<String>>> {
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }
}
