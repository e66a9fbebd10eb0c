//! `MigrationLock`: one migration at a time, from its start to the end of
//! its clean-up, and outside edits only between migrations.
//!
//! A lock of its own rather than a `RwLock` because its hold outlives the
//! request: the client is answered at the switch, and the old backend's
//! files are removed afterwards on another thread, which must keep the
//! lock without a gap in which the watcher could take a stale file in.

use std::sync::{Arc, Condvar, Mutex};

#[derive(Default)]
pub struct MigrationLock(Arc<(Mutex<bool>, Condvar)>);

/// Held until dropped, on whichever thread has it.
pub struct MigrationHeld(Arc<(Mutex<bool>, Condvar)>);

impl MigrationLock {
    /// Waits until no migration (or its clean-up) runs, and takes the turn.
    pub fn acquire(&self) -> MigrationHeld {
        let (busy, freed) = &*self.0;
        let mut busy = busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy = true;
        MigrationHeld(self.0.clone())
    }
}

impl Drop for MigrationHeld {
    fn drop(&mut self) {
        let (busy, freed) = &*self.0;
        *busy.lock().unwrap_or_else(|p| p.into_inner()) = false;
        freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn a_turn_handed_to_another_thread_keeps_others_out_until_it_ends() {
        let lock = Arc::new(MigrationLock::default());
        let held = lock.acquire();
        let ended = Arc::new(AtomicBool::new(false));
        let cleaner = {
            let ended = ended.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                ended.store(true, Ordering::SeqCst);
                drop(held);
            })
        };
        let _next = lock.acquire();
        assert!(ended.load(Ordering::SeqCst), "the next turn began before the clean-up ended");
        cleaner.join().expect("the clean-up thread panicked");
    }
}
