//! `Capture`: the milestones written while a migration copies, so that the
//! migration copies them again once writes are held for the switch.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub(super) struct Capture(Mutex<Option<HashSet<String>>>);

impl Capture {
    /// From now on every write is noted.
    pub fn start(&self) {
        *self.lock() = Some(HashSet::new());
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

    /// What was written since the last take; the capture ends.
    pub fn stop(&self) -> HashSet<String> {
        self.lock().take().unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, Option<HashSet<String>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
