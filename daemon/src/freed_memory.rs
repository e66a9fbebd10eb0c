//! Handing memory freed by a bulk load back to the system.
//!
//! Loading a project parses every file on several threads; each thread's
//! allocations come from an arena of its own, and what the parse freed
//! stays counted against the daemon (glibc returns memory to the system
//! only from the top of an arena). After such a load, the freed pages are
//! handed back explicitly, so the daemon's size is what it holds.

/// Returns the freed pages of every allocator arena to the system.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas, under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
