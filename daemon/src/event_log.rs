//! `logs/storage-events.jsonl`: one JSON object per operation, in the shape
//! seed 003's shell tooling writes and reads (timestamp, event, milestone_id,
//! backend, user, details).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One audit event: a line of the log, fields in the order the shell
/// tooling writes them, and a row of `milestone_events` where a backend
/// keeps one.
#[derive(Debug, serde::Serialize)]
pub struct AuditEvent<'a> {
    pub timestamp: &'a str,
    pub event: &'a str,
    pub milestone_id: &'a str,
    pub backend: &'a str,
    pub user: &'a str,
    pub details: serde_json::Value,
}

pub struct StorageEventLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl StorageEventLog {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(StorageEventLog { path: path.to_path_buf(), file: Mutex::new(file) })
    }

    /// Appends one event. The line goes out in one `write` on an `O_APPEND`
    /// file, so lines from the shell tooling and the daemon never interleave.
    /// A failed log write is reported but never fails the operation it
    /// describes: the milestone is already safely stored.
    pub fn record(&self, event: &AuditEvent) {
        let mut bytes = serde_json::to_vec(event).unwrap_or_default();
        bytes.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(&bytes) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot append to the storage event log");
        }
    }
}
