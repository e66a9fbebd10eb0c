//! Crash points for the crash-safety tests. In a debug build,
//! `MILESTONED_CRASH_AT=<name>` makes the daemon abort at the point of that
//! name, as a `kill -9` would stop it there; release builds compile the
//! check away.

/// Aborts the process here when the test asked for a crash at `name`.
pub fn reached(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("MILESTONED_CRASH_AT").is_some_and(|at| at == name) {
        eprintln!("milestoned: crashing at `{name}` (MILESTONED_CRASH_AT)");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
