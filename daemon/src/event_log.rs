//! `logs/storage-events.jsonl`: one JSON object per operation, in the shape
//! seed 003's shell tooling writes and reads (timestamp, event, milestone_id,
//! backend, user, details). With `storage.audit.immutable_logs` each entry
//! is also sealed into a hash chain ([`crate::audit_chain`]), and the
//! chain's head is kept beside the log (`storage-events.head`).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::audit_chain::{self, Head};

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
    head_path: PathBuf,
    state: Mutex<State>,
}

struct State {
    file: File,
    /// Sealing entries into the chain (`immutable_logs`), and the chain's
    /// head once known.
    sealing: bool,
    head: Option<Head>,
}

/// The file beside the log that holds the chain's head.
pub fn head_path(log: &Path) -> PathBuf {
    log.with_extension("head")
}

impl StorageEventLog {
    pub fn open(path: &Path, immutable: bool) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let log = StorageEventLog {
            path: path.to_path_buf(),
            head_path: head_path(path),
            state: Mutex::new(State { file, sealing: false, head: None }),
        };
        log.set_immutable(immutable);
        Ok(log)
    }

    /// Turns sealing on or off (a changed `storage-config.yaml`). Turned
    /// on, the chain goes on from its head: the head file, else the log's
    /// last sealed entry, else it starts.
    pub fn set_immutable(&self, immutable: bool) {
        let mut state = self.state();
        if immutable && !state.sealing && state.head.is_none() {
            state.head = self.read_head();
        }
        state.sealing = immutable;
    }

    /// The chain's head as the daemon last sealed it.
    pub fn head(&self) -> Option<Head> {
        self.state().head.clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event. The line goes out in one `write` on an `O_APPEND`
    /// file, so lines from the shell tooling and the daemon never interleave.
    /// A failed log write is reported but never fails the operation it
    /// describes: the milestone is already safely stored.
    pub fn record(&self, event: &AuditEvent) {
        let body = serde_json::to_vec(event).unwrap_or_default();
        let mut state = self.state();
        let (mut line, head) = if state.sealing {
            let (line, head) = audit_chain::seal(&body, state.head.as_ref());
            (line, Some(head))
        } else {
            (body, None)
        };
        line.push(b'\n');
        if let Err(e) = state.file.write_all(&line) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot append to the storage event log");
            return;
        }
        if let Some(head) = head {
            // Beside the log, replaced whole; not synced (the log is not).
            let dir = self.head_path.parent().unwrap_or(Path::new("."));
            let name = self.head_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let bytes = serde_json::to_vec(&head).unwrap_or_default();
            if let Err(e) = crate::atomic::write_unsynced(dir, &name, &bytes) {
                tracing::warn!(path = %self.head_path.display(), error = %e, "cannot note the audit chain's head");
            }
            state.head = Some(head);
        }
    }

    /// The head file's, else the last sealed line's.
    fn read_head(&self) -> Option<Head> {
        match fs::read(&self.head_path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(head) => return Some(head),
                Err(e) => {
                    tracing::warn!(path = %self.head_path.display(), error = %e, "the audit chain's head is unreadable")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.head_path.display(), error = %e, "cannot read the audit chain's head")
            }
        }
        last_line(&self.path).and_then(|line| audit_chain::head_of(&line))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The log's last line, read from its end (entries are short).
fn last_line(path: &Path) -> Option<String> {
    const TAIL: u64 = 64 * 1024;
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut tail = String::new();
    file.read_to_string(&mut tail).ok()?;
    tail.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_owned)
}
