//! Progress on standard error, on a terminal only: [`counter`] for work
//! counted in milestones (export, import), and [`Progress`] for a
//! migration.
//!
//! `msctl migrate`'s progress: while the migrate request runs on one
//! connection, a second one asks the daemon every few hundred milliseconds
//! how far the migration got (its journal's last step) and shows it on
//! standard error: a bar redrawn in place on a terminal, a line per step
//! otherwise, so standard output keeps only the report.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use milestones_client::protocol::{Request, Response};
use milestones_client::Client;

/// A migration's steps, in the order its journal records them.
const STEPS: [&str; 7] = ["prepared", "copying", "backed_up", "copied", "verified", "switching", "switched"];

const EVERY: Duration = Duration::from_millis(200);

const FIRST_AFTER: Duration = Duration::from_millis(300);

pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing progress, unless `quiet` (`--json`).
    pub fn start(socket: &Path, quiet: bool) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        let thread = (!quiet).then(|| {
            let (socket, done) = (socket.to_path_buf(), done.clone());
            std::thread::spawn(move || show(&socket, &done))
        });
        Progress { done, thread }
    }

    /// Stops, and clears the bar on a terminal.
    pub fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Waits `length`, or until `done` (set by [`Progress::finish`], which
/// wakes the thread), so that msctl never waits on its progress display.
fn pause(done: &AtomicBool, length: Duration) {
    let until = Instant::now() + length;
    while !done.load(Ordering::Relaxed) {
        let Some(left) = until.checked_duration_since(Instant::now()) else { return };
        std::thread::park_timeout(left);
    }
}

fn show(socket: &Path, done: &AtomicBool) {
    // No second connection: no progress, and the migration goes on.
    let Ok(mut client) = Client::connect(socket, "msctl-progress") else { return };
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut shown = None;
    let bar =
        indicatif::ProgressBar::with_draw_target(Some(STEPS.len() as u64), indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:24}] {msg}, {elapsed_precise}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("#-"));
    // A migration over sooner (or refused at once) shows no progress.
    pause(done, FIRST_AFTER);
    while !done.load(Ordering::Relaxed) {
        if let Ok(Response::MigrationStatus(Some(progress))) = client.request(Request::MigrationStatus) {
            // `copying N of M` is the copying step.
            let step = STEPS.iter().position(|s| progress.phase.starts_with(s)).map_or(0, |i| i + 1);
            let label = progress.phase.replace('_', " ");
            if terminal {
                bar.set_prefix(format!("migrating {} → {}", progress.from, progress.to));
                bar.set_position(step as u64);
                bar.set_message(label);
            } else if shown != Some(step) {
                eprintln!(
                    "migration {} → {}: {label} ({:.1} s)",
                    progress.from,
                    progress.to,
                    started.elapsed().as_secs_f64()
                );
            }
            shown = Some(step);
        }
        pause(done, EVERY);
    }
    bar.finish_and_clear();
}

/// A bar for work of `len` milestones (`None` while unknown: a count and a
/// spinner), drawn on standard error when it is a terminal, never
/// otherwise.
pub fn counter(len: Option<u64>, what: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(counter_style(len.is_some()));
    bar.set_message(what);
    bar
}

/// A bar once the length is known; a count and a spinner until then.
pub fn counter_style(length_known: bool) -> indicatif::ProgressStyle {
    let template = if length_known { "{msg} [{bar:24}] {pos}/{len} ({eta})" } else { "{msg} {pos} {spinner}" };
    let style =
        indicatif::ProgressStyle::with_template(template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    style.progress_chars("#-")
}
