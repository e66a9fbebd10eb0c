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
        let (changed, first) = differences(&kept, &*self.storage())?;
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
        let mut wanted: HashMap<&str, &Doc> =
            kept.iter().map(|d| (crate::document::id(d).unwrap_or_default(), d)).collect();
        let (mut replace, mut extra) = (Vec::new(), Vec::new());
        store.for_each(&mut |doc| {
            let id = crate::document::id(doc).unwrap_or_default();
            match wanted.remove(id) {
                Some(old) if fingerprint(old) == fingerprint(doc) => {}
                Some(old) => replace.push(old.clone()),
                None => extra.push(id.to_owned()),
            }
        })?;
        replace.extend(wanted.into_values().cloned());
        store.import(&replace)?;
        for id in &extra {
            store.remove(id)?;
        }
        Ok(replace.len() + extra.len())
    }
}

/// How many milestones differ between the backup and the store (changed,
/// created or removed since), and the first of them by id.
fn differences(kept: &[Doc], store: &dyn Storage) -> ServiceResult<(usize, String)> {
    let mut wanted: HashMap<&str, String> =
        kept.iter().map(|d| (crate::document::id(d).unwrap_or_default(), fingerprint(d))).collect();
    let mut differ = Vec::new();
    store.for_each(&mut |doc| {
        let id = crate::document::id(doc).unwrap_or_default();
        if wanted.remove(id) != Some(fingerprint(doc)) {
            differ.push(id.to_owned());
        }
    })?;
    differ.extend(wanted.into_keys().map(str::to_owned));
    differ.sort();
    Ok((differ.len(), differ.into_iter().next().unwrap_or_default()))
}
