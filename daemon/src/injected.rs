//! What the crash-safety and failure tests inject into a debug build: a
//! crash (`MILESTONED_CRASH_AT=<point>` aborts there, as a `kill -9` would
//! stop the daemon), a fault (`MILESTONED_FAULT_AT=<point>` makes the step
//! there fail), and a pause (`MILESTONED_PAUSE_AT=<point>` waits there while
//! the file `MILESTONED_PAUSE_FILE` exists, so that a test can act at that
//! moment). Release builds compile all of it away.

/// Aborts the process here when a test asked for a crash at `name`.
pub fn crash_point(name: &str) {
    #[cfg(debug_assertions)]
    if asked("MILESTONED_CRASH_AT", name) {
        eprintln!("milestoned: crashing at `{name}` (MILESTONED_CRASH_AT)");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// True when a test asked the step at `name` to fail.
pub fn fault(name: &str) -> bool {
    #[cfg(debug_assertions)]
    if asked("MILESTONED_FAULT_AT", name) {
        eprintln!("milestoned: failing at `{name}` (MILESTONED_FAULT_AT)");
        return true;
    }
    let _ = name;
    false
}

/// Waits here, when a test asked for a pause at `name`, until the test
/// removes its pause file (a minute at most).
pub fn pause(name: &str) {
    #[cfg(debug_assertions)]
    if asked("MILESTONED_PAUSE_AT", name) {
        let Some(file) = std::env::var_os("MILESTONED_PAUSE_FILE") else { return };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::path::Path::new(&file).exists() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

#[cfg(debug_assertions)]
fn asked(variable: &str, name: &str) -> bool {
    std::env::var_os(variable).is_some_and(|at| at == name)
}
