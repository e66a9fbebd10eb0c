//! `MigrateRollback`: back to the backend the last migration left, with
//! the milestones its backup holds. The way back is a migration like any
//! other (online, journaled, backed up first), so a rollback can itself be
//! rolled back; when milestones changed since the backup, they are kept
//! unless the caller chose to discard them, and then the backup's versions
//! are restored once the way back is done.

use std::collections::HashMap;

use milestones_protocol::{DatabaseKind, MigrationReport};
use serde_json::json;

use super::{MilestoneService, ServiceError, ServiceResult};
use crate::document::fingerprint;
use crate::migration::Backup;
use crate::peer::Peer;
use crate::storage::{BackendKind, BackendSpec, Doc, Storage};

impl MilestoneService {
    pub(super) fn rollback(&self, discard_changes: bool, peer: &Peer) -> ServiceResult<MigrationReport> {
        let history = self.migration_history()?;
        let Some(backup) = history.iter().rev().filter(|r| r.outcome == "completed").find_map(|r| r.backup.as_deref())
        else {
            return Err(ServiceError::invalid(
                "no migration to roll back: `msctl migrate history` lists none that completed with a backup",
            ));
        };
        let backup = Backup::open(&self.layout, backup)?;
        let (from, to, now) = (backup.from(), backup.to(), self.storage().kind());
        if now != to {
            return Err(ServiceError::invalid(format!(
                "the last migration went from {from} to {to}, but the project is on {now} now: roll back by hand \
                 from {}",
                self.layout.relative(&backup.dir).display()
            )));
        }
        if from == BackendKind::Database(DatabaseKind::Postgresql) {
            return Err(ServiceError::invalid(
                "the last migration left PostgreSQL, whose database still holds the milestones (other project roots \
                 may share it) and takes a copy only when empty: join it from an empty project root, or empty it \
                 and `msctl migrate database --database postgresql`",
            ));
        }
        let kept = backup.milestones(&BackendSpec::new(from, &self.config()))?;
        let since = differences(&kept, &*self.storage())?;
        let (changed, first) = (since.count(), since.first());
        if changed > 0 && !discard_changes {
            return Err(ServiceError::invalid(format!(
                "{changed} milestone(s) changed since the backup of {} (first `{first}`): `msctl migrate rollback \
                 --discard-changes` returns to the backup all the same (today's milestones are backed up first), \
                 `msctl migrate {}` moves back keeping them",
                backup.taken_at,
                from.name()
            )));
        }
        let report = self.migrate(from.target(), None, peer)?;
        if changed > 0 {
            let restored = self.restore(&kept)?;
            tracing::info!(restored, "rolled back to the backup, discarding later changes");
            let details = json!({ "backup": self.layout.relative(&backup.dir), "restored": restored });
            self.log("migration_rollback_restored", "", peer, details);
        }
        Ok(report)
    }

    /// Makes the store hold exactly `kept`, with writes held: every
    /// milestone that differs takes the backup's version, and those the
    /// backup does not have go. Returns how many changed.
    fn restore(&self, kept: &[Doc]) -> ServiceResult<usize> {
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let store = self.storage();
        let Differences { restore, remove } = differences(kept, &*store)?;
        store.import(&restore)?;
        for id in &remove {
            store.remove(id)?;
        }
        Ok(restore.len() + remove.len())
    }
}

/// What makes a store hold exactly a backup's milestones.
struct Differences {
    /// The backup's version of each milestone changed or removed since.
    restore: Vec<Doc>,
    /// The milestones created since.
    remove: Vec<String>,
}

impl Differences {
    fn count(&self) -> usize {
        self.restore.len() + self.remove.len()
    }

    /// The first milestone that differs, by id.
    fn first(&self) -> String {
        let restored = self.restore.iter().filter_map(|d| crate::document::id(d));
        restored.chain(self.remove.iter().map(String::as_str)).min().unwrap_or_default().to_owned()
    }
}

fn differences(kept: &[Doc], store: &dyn Storage) -> ServiceResult<Differences> {
    let mut wanted: HashMap<&str, &Doc> =
        kept.iter().map(|d| (crate::document::id(d).unwrap_or_default(), d)).collect();
    let (mut restore, mut remove) = (Vec::new(), Vec::new());
    store.for_each(&mut |doc| {
        let id = crate::document::id(doc).unwrap_or_default();
        match wanted.remove(id) {
            Some(old) if fingerprint(old) == fingerprint(doc) => {}
            Some(old) => restore.push(old.clone()),
            None => remove.push(id.to_owned()),
        }
    })?;
    restore.extend(wanted.into_values().cloned());
    Ok(Differences { restore, remove })
}
