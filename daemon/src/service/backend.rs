//! Requests about the storage and the daemon: `Backend`, `Migrate`,
//! `Status`.

use milestones_protocol::{
    BackendInfo, BackendTarget, DaemonStatus, DatabaseKind, EventKind, MigrationReport, PROTOCOL_VERSION,
};
use serde_json::json;

use std::time::Instant;

use super::{MilestoneService, ServiceError, ServiceResult};
use crate::database_url::DatabaseUrl;
use crate::migration::Migration;
use crate::peer::Peer;
use crate::storage::{BackendKind, BackendSpec};

/// Catch-up rounds a migration makes while writes go on.
const CATCH_UP_ROUNDS: usize = 8;

/// A round this small is the last before writes are held.
const HOLD_AT_MOST: usize = 32;

impl MilestoneService {
    pub(super) fn backend(&self) -> ServiceResult<BackendInfo> {
        let storage = self.storage();
        let kind = storage.kind();
        Ok(BackendInfo {
            backend: kind.name().to_owned(),
            database: kind.database().map(|d| d.name().to_owned()),
            milestones: storage.count()?,
            root: self.endpoint.root.clone(),
            socket: self.endpoint.socket.clone(),
        })
    }

    pub(super) fn status(&self) -> ServiceResult<DaemonStatus> {
        let storage = self.storage();
        let kind = storage.kind();
        let settings = self.settings.read().unwrap_or_else(|p| p.into_inner());
        Ok(DaemonStatus {
            pid: std::process::id(),
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: PROTOCOL_VERSION,
            started_at: self.started_at.clone(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            backend: kind.name().to_owned(),
            database: kind.database().map(|d| d.name().to_owned()),
            milestones: storage.count()?,
            root: self.endpoint.root.clone(),
            socket: self.endpoint.socket.clone(),
            socket_activated: self.endpoint.socket_activated,
            log_level: settings.log_level.to_string().to_lowercase(),
            config_loaded_at: settings.loaded_at.clone(),
            thresholds: settings.config.thresholds,
            watching: self.watching.read().unwrap_or_else(|p| p.into_inner()).clone(),
        })
    }

    /// Moves every milestone to another backend, online: reads and writes
    /// go on during the copy, and every milestone written meanwhile is
    /// copied again while writes are held for the final catch-up and the
    /// switch only. Outside edits wait for the whole migration (the watcher
    /// takes them in against the backend that serves afterwards).
    ///
    /// Exports (from the database backend to YAML files) still hold writes
    /// throughout: undoing an interrupted export removes the files that
    /// hold what the source holds, and a write made during the copy would
    /// leave an older file behind for the database to import again.
    pub(super) fn migrate(
        &self,
        target: BackendTarget,
        url: Option<String>,
        peer: &Peer,
    ) -> ServiceResult<MigrationReport> {
        let _migrating = self.migrating.write().unwrap_or_else(|p| p.into_inner());
        let source = self.storage();
        let config = self.config();
        let (from, to) = (source.kind(), BackendKind::from_target(target));
        let mut spec = BackendSpec::new(to, &config);
        if let Some(url) = url {
            if to != BackendKind::Database(DatabaseKind::Postgresql) {
                return Err(ServiceError::invalid(format!(
                    "a URL is given only to migrate to PostgreSQL, not to {to}"
                )));
            }
            spec = spec.with_url(DatabaseUrl::parse(&url).map_err(ServiceError::invalid)?);
        }
        {
            // A project root with no milestones joins a database that has
            // some: nothing is copied.
            let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
            let joined = Migration::join(&self.layout, &config, &*source, &spec).map_err(ServiceError::Migration)?;
            if let Some(joined) = joined {
                self.serve_from(joined.store);
                tracing::info!(milestones = joined.report.milestones, "joined a shared database");
                self.log("migration_completed", "", peer, json!({ "report": joined.report, "joined": true }));
                return Ok(joined.report);
            }
        }
        let details = json!({ "from": from.name(), "to": to.name() });
        self.log("migration_started", "", peer, details.clone());
        let backends = format!("{from} to {to}");
        self.publish_migration(EventKind::MigrationStarted, format!("migrating from {backends}"));
        let exports = !from.keeps_files() && to.keeps_files();
        let mut held_throughout =
            exports.then(|| (self.gate.write().unwrap_or_else(|p| p.into_inner()), Instant::now()));
        self.written.start();
        let migration = Migration::new(&self.layout, &config, source, spec);
        let result = migration.prepare(&|| self.written.so_far()).and_then(|mut prepared| {
            // Rounds of catching up while writes go on, so that few are
            // left for the moment they are held.
            for _ in 0..CATCH_UP_ROUNDS {
                let written = self.written.take();
                let few = written.len() <= HOLD_AT_MOST;
                prepared = prepared.catch_up(&written)?;
                if few {
                    break;
                }
            }
            // From here until the new backend serves, writes wait.
            let (gate, held) = match held_throughout.take() {
                Some(held) => held,
                None => (self.gate.write().unwrap_or_else(|p| p.into_inner()), Instant::now()),
            };
            let written = self.written.stop();
            let migrated = prepared.finish(&written)?;
            self.serve_from(migrated.store);
            // Problems of files dropped into the old backend's folders
            // are the new backend's to find again (it reads the files).
            self.forget_dropped_file_problems();
            migrated.leftovers.remove();
            let stall_ms = held.elapsed().as_millis() as u64;
            drop(gate);
            Ok((migrated.report, written.len(), stall_ms))
        });
        self.written.stop();
        match result {
            Ok((report, caught_up, stall_ms)) => {
                tracing::info!(from = %report.from, to = %report.to, milestones = report.milestones, caught_up, stall_ms, duration_ms = report.duration_ms, "migration finished");
                let details = json!({ "report": report, "caught_up": caught_up, "write_stall_ms": stall_ms });
                self.log("migration_completed", "", peer, details);
                self.publish_migration(
                    EventKind::MigrationFinished,
                    format!("migrated {} milestones from {backends}", report.milestones),
                );
                Ok(report)
            }
            Err(e) => {
                tracing::warn!(error = %e, "migration failed; the backend is unchanged");
                let mut details = details;
                details["error"] = json!(e.to_string());
                self.log("migration_failed", "", peer, details);
                self.publish_migration(EventKind::MigrationFinished, format!("migration from {backends} failed: {e}"));
                Err(ServiceError::Migration(e))
            }
        }
    }
}
