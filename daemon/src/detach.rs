//! Running in the background (DESIGN §6): fork and `setsid` with the
//! `daemonize` crate before any thread or database handle exists, standard
//! output and error to `.milestones/logs/milestoned.log`, and a pipe on
//! which the background process tells the one that started it whether it is
//! serving, so that `milestoned` (and `msctl`, which runs it) returns only
//! once the daemon answers, or fails with the daemon's own error.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};

/// A log bigger than this is moved to `milestoned.log.1` at start-up.
const LOG_LIMIT: u64 = 10 * 1024 * 1024;

pub enum Detached {
    /// The process that was started: exit with this code.
    Parent(ExitCode),
    /// The daemon, in the background.
    Child(Readiness),
}

/// The daemon's end of the pipe. Dropping it unsent tells the waiting
/// parent that start-up failed without a word.
pub struct Readiness(Option<File>);

impl Readiness {
    /// Tells the parent the daemon is serving.
    pub fn ready(&mut self) {
        self.send("ready\n");
    }

    /// Tells the parent why start-up failed.
    pub fn failed(&mut self, error: &str) {
        self.send(&format!("error: {error}\n"));
    }

    fn send(&mut self, message: &str) {
        if let Some(mut pipe) = self.0.take() {
            let _ = pipe.write_all(message.as_bytes());
        }
    }
}

/// Forks into the background. Must run while the process has one thread.
pub fn detach(root: &Path, log: &Path) -> anyhow::Result<Detached> {
    rotate(log);
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open the log {}", log.display()))?;
    let (mut read_end, write_end) = pipe()?;
    let daemon = daemonize::Daemonize::new()
        .working_directory(root)
        .umask(0o077)
        .stdout(log_file.try_clone().context("cannot share the log file")?)
        .stderr(log_file);
    match daemon.execute() {
        daemonize::Outcome::Parent(Ok(_)) => {
            drop(write_end);
            let mut message = String::new();
            let _ = read_end.read_to_string(&mut message);
            Ok(Detached::Parent(report(&message, log)))
        }
        daemonize::Outcome::Parent(Err(e)) => bail!("cannot start in the background: {e}"),
        daemonize::Outcome::Child(Ok(_)) => {
            drop(read_end);
            Ok(Detached::Child(Readiness(Some(write_end))))
        }
        daemonize::Outcome::Child(Err(e)) => {
            let mut readiness = Readiness(Some(write_end));
            readiness.failed(&format!("cannot start in the background: {e}"));
            std::process::exit(1)
        }
    }
}

/// What the parent says and exits with, given what the daemon sent.
fn report(message: &str, log: &Path) -> ExitCode {
    match message.lines().next() {
        Some("ready") => ExitCode::SUCCESS,
        Some(line) => {
            eprintln!("milestoned: {}", line.strip_prefix("error: ").unwrap_or(line));
            ExitCode::FAILURE
        }
        None => {
            eprintln!("milestoned: the daemon exited during start-up; see {}", log.display());
            ExitCode::FAILURE
        }
    }
}

fn pipe() -> anyhow::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot create the start-up pipe");
    }
    // SAFETY: pipe just returned these descriptors, owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(read), File::from(write)))
}

/// Caps the log: one previous generation is kept.
fn rotate(log: &Path) {
    if std::fs::metadata(log).is_ok_and(|m| m.len() > LOG_LIMIT) {
        let _ = std::fs::rename(log, log.with_extension("log.1"));
    }
}
