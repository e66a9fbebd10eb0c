//! `Journal`: where a migration stands, on disk. It is written atomically
//! and synced at every phase, and read at start-up before any backend opens
//! (see [`super::recover`]), so that a migration a crash interrupted is
//! finished or undone, never left half-way.

use milestones_protocol::DatabaseKind;
use serde::{Deserialize, Serialize};

use crate::layout::ProjectLayout;
use crate::storage::{BackendKind, StorageError, StorageResult};

/// The steps of a migration, in order (a journal closed is the last one,
/// cleaned up). Below [`Phase::Switching`] the
/// running backend is untouched; from [`Phase::Switched`] on the target
/// serves. In between, `config/storage-backend.txt` decides: its rename is
/// the moment of the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Prepared,
    /// The copy is under way, the backup taken alongside; the journal's
    /// cursor counts what is copied.
    Copying,
    /// The copy is in and the backup complete.
    BackedUp,
    /// The copy is compared with the snapshot, while writes go on.
    Copied,
    /// Writes are held and the last catch-up is done.
    CaughtUp,
    /// Every record written during the copy and the count are checked.
    Verified,
    Switching,
    Switched,
}

/// A backend as the journal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum JournalBackend {
    File,
    Hybrid,
    Sqlite,
    Postgresql,
}

impl From<BackendKind> for JournalBackend {
    fn from(kind: BackendKind) -> Self {
        match kind {
            BackendKind::File => JournalBackend::File,
            BackendKind::Hybrid => JournalBackend::Hybrid,
            BackendKind::Database(DatabaseKind::Sqlite) => JournalBackend::Sqlite,
            BackendKind::Database(DatabaseKind::Postgresql) => JournalBackend::Postgresql,
        }
    }
}

impl From<JournalBackend> for BackendKind {
    fn from(backend: JournalBackend) -> Self {
        match backend {
            JournalBackend::File => BackendKind::File,
            JournalBackend::Hybrid => BackendKind::Hybrid,
            JournalBackend::Sqlite => BackendKind::Database(DatabaseKind::Sqlite),
            JournalBackend::Postgresql => BackendKind::Database(DatabaseKind::Postgresql),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    from: JournalBackend,
    to: JournalBackend,
    pub phase: Phase,
    pub started_at: String,
    /// The copy's cursor: milestones copied so far, of how many.
    #[serde(default)]
    pub copied: usize,
    #[serde(default)]
    pub total: usize,
}

impl Journal {
    /// Starts the journal of a migration from `from` to `to`.
    pub fn begin(layout: &ProjectLayout, from: BackendKind, to: BackendKind) -> StorageResult<Journal> {
        let journal = Journal {
            from: from.into(),
            to: to.into(),
            phase: Phase::Prepared,
            started_at: crate::document::now_timestamp(),
            copied: 0,
            total: 0,
        };
        journal.write(layout)?;
        crate::injected::crash_point(phase_name(Phase::Prepared));
        Ok(journal)
    }

    pub fn from(&self) -> BackendKind {
        self.from.into()
    }

    pub fn to(&self) -> BackendKind {
        self.to.into()
    }

    /// Records that the migration reached `phase`, durably, before it goes
    /// on.
    pub fn advance(&mut self, layout: &ProjectLayout, phase: Phase) -> StorageResult<()> {
        // The phase counts only once it is on disk.
        let next = Journal { phase, ..self.clone() };
        next.write(layout)?;
        *self = next;
        crate::injected::crash_point(phase_name(phase));
        Ok(())
    }

    /// Moves the copy's cursor: `copied` of `total` milestones are in the
    /// target. The crash point is reached at the first batch only.
    pub fn copying(&mut self, layout: &ProjectLayout, copied: usize, total: usize) -> StorageResult<()> {
        let first = self.phase != Phase::Copying;
        let next = Journal { phase: Phase::Copying, copied, total, ..self.clone() };
        next.write(layout)?;
        *self = next;
        if first {
            crate::injected::crash_point(phase_name(Phase::Copying));
        }
        Ok(())
    }

    /// Where the migration stands, in words: the phase, and the cursor
    /// while copying.
    pub fn describe(&self) -> String {
        match self.phase {
            Phase::Copying => format!("copying {} of {}", self.copied, self.total),
            // The new backend serves; the clean-up runs after the answer.
            Phase::Switched => "switched, removing what the old backend left".to_owned(),
            phase => phase_name(phase).to_owned(),
        }
    }

    /// The journal of an interrupted migration, if there is one.
    pub fn read(layout: &ProjectLayout) -> StorageResult<Option<Journal>> {
        let path = layout.migration_journal();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io("read", path, e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            StorageError::Invalid(format!(
                "{} does not parse ({e}); it records an interrupted migration, so milestoned will not guess: \
                 compare config/storage-backend.txt with .milestones/backups/ and remove the journal by hand",
                layout.relative(&path).display()
            ))
        })
    }

    /// The migration is over (finished or undone): the journal goes.
    pub fn close(layout: &ProjectLayout) -> StorageResult<()> {
        let path = layout.migration_journal();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(crate::atomic::sync_dir(path.parent().unwrap_or(std::path::Path::new(".")))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("remove", path, e)),
        }
    }

    fn write(&self, layout: &ProjectLayout) -> StorageResult<()> {
        let path = layout.migration_journal();
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| StorageError::Invalid(format!("cannot write the migration journal: {e}")))?;
        Ok(crate::atomic::write_atomically(dir, &name, &json)?)
    }
}

/// The name of a phase, as the journal and the crash points spell it.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Prepared => "prepared",
        Phase::BackedUp => "backed_up",
        Phase::Copying => "copying",
        Phase::Copied => "copied",
        Phase::CaughtUp => "caught_up",
        Phase::Verified => "verified",
        Phase::Switching => "switching",
        Phase::Switched => "switched",
    }
}
