//! Requests about the storage and the daemon: `Backend`, `Migrate` (and
//! its plan and history), `Status`.

use milestones_protocol::{
    BackendInfo, BackendTarget, DaemonStatus, DatabaseKind, EventKind, MigrationPlan, MigrationRecord, MigrationReport,
    PROTOCOL_VERSION,
};
use serde_json::json;

use std::time::Instant;

use super::migration_lock::MigrationHeld;
use super::{MilestoneService, ServiceError, ServiceResult};
use crate::atomic::FileError;
use crate::config::StorageConfig;
use crate::database_url::DatabaseUrl;
use crate::migration::{Leftovers, Migration, MigrationError};
use crate::peer::Peer;
use crate::storage::StorageError;
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
    pub(super) fn migrate(
        &self,
        target: BackendTarget,
        url: Option<String>,
        peer: &Peer,
    ) -> ServiceResult<MigrationReport> {
        let migrating = self.migrating.acquire();
        let source = self.storage();
        let config = self.config();
        let (from, to) = (source.kind(), BackendKind::from_target(target));
        let spec = self.target_spec(to, url, &config, peer)?;
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
        self.written.start();
        let migration = Migration::new(&self.layout, &config, source, spec);
        let result = migration.prepare(&|| self.written.so_far()).and_then(|mut prepared| {
            // Rounds of catching up while writes go on, so that few are
            // left for the moment they are held.
            for round in 1..=CATCH_UP_ROUNDS {
                let written = self.written.take();
                let few = written.len() <= HOLD_AT_MOST;
                let started = Instant::now();
                prepared = prepared.catch_up(&written)?;
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(round, milestones = written.len(), ms, "caught up while writes go on");
                if few {
                    break;
                }
                // Two rounds did not leave few to copy: the writes keep up
                // with the copy, and are slowed more at each round.
                if round >= 2 {
                    self.written.slow_down();
                }
            }
            // From here until the new backend serves, writes wait.
            let (gate, held) = (self.gate.write().unwrap_or_else(|p| p.into_inner()), Instant::now());
            let written = self.written.stop();
            let migrated = prepared.finish(&written)?;
            self.serve_from(migrated.store);
            // Problems of files dropped into the old backend's folders
            // are the new backend's to find again (it reads the files).
            self.forget_dropped_file_problems();
            let stall_ms = held.elapsed().as_millis() as u64;
            drop(gate);
            Ok((migrated.report, migrated.leftovers, written.len(), stall_ms))
        });
        self.written.stop();
        match result {
            Ok((report, leftovers, caught_up, stall_ms)) => {
                remove_in_background(leftovers, migrating);
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
                details["by"] = json!(peer.user);
                if e.rolled_back() {
                    let (current, target) = (from.name(), to.name());
                    crate::scale::log::scale_event(
                        &self.layout,
                        "migration_rolled_back",
                        current,
                        target,
                        details.clone(),
                    );
                }
                self.log("migration_failed", "", peer, details);
                self.publish_migration(EventKind::MigrationFinished, format!("migration from {backends} failed: {e}"));
                Err(ServiceError::Migration(e))
            }
        }
    }
}

/// Removes what the old backend leaves on another thread, so that the
/// client has its answer at the switch. Writes go to the new backend
/// meanwhile; outside edits, and the next migration, wait until the old
/// backend's files are gone (`migrating` is held until then). A crash
/// before the end is finished by the next start, as the journal says.
fn remove_in_background(leftovers: Leftovers, migrating: MigrationHeld) {
    // Handed over once the thread exists, so that a failure to start one
    // leaves them here to remove inline.
    let (hand_over, handed) = std::sync::mpsc::channel::<(Leftovers, MigrationHeld)>();
    let spawned = std::thread::Builder::new().name("migration-clean-up".to_owned()).spawn(move || {
        if let Ok((leftovers, _migrating)) = handed.recv() {
            leftovers.remove();
        }
    });
    match spawned {
        Ok(_) => {
            if let Err(std::sync::mpsc::SendError((leftovers, _migrating))) = hand_over.send((leftovers, migrating)) {
                leftovers.remove();
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a thread for the clean-up; it runs before the answer");
            leftovers.remove();
        }
    }
}

/// A rough cost per milestone of a migration, from this project's
/// benchmarks (100,000 milestones: 50–85 s on a slow machine).
const ESTIMATE_PER_MILESTONE_US: u64 = 900;

impl MilestoneService {
    /// What `migrate` to `target` would do, without doing it.
    pub(super) fn migration_plan(
        &self,
        target: BackendTarget,
        url: Option<String>,
        peer: &Peer,
    ) -> ServiceResult<MigrationPlan> {
        let source = self.storage();
        let config = self.config();
        let (from, to) = (source.kind(), BackendKind::from_target(target));
        if from == to {
            return Err(ServiceError::Migration(MigrationError::AlreadyThere(to.name().to_owned())));
        }
        let spec = self.target_spec(to, url, &config, peer)?;
        let old = BackendSpec::new(from, &config);
        let milestones = source.count()?;
        let mut steps = Vec::new();
        let joining = milestones == 0 && spec.joinable()?.is_some();
        if joining {
            steps.push(format!("join {}, which holds milestones already: nothing is copied", spec.describe()));
            steps.push("switch config/storage-backend.txt to database".to_owned());
        } else {
            steps.push(
                "record each step in .milestones/migration-journal.json (a crash is finished or undone at the next start)"
                    .to_owned(),
            );
            steps.push(format!(
                "back up the YAML files (in milestones.tar), config/ and {} to .milestones/backups/<time>-{from}-to-{to}/",
                old.describe()
            ));
            steps.push(format!(
                "copy {milestones} milestones into {}, while reads and writes go on (what is written meanwhile is copied again)",
                spec.describe()
            ));
            steps.push("verify every record: the count, and a SHA-256 of each".to_owned());
            steps.push(
                "hold writes for the last catch-up, its check, and the switch of config/storage-backend.txt".to_owned(),
            );
        }
        steps.extend(old.retire_described(to));
        let estimate_ms = if joining { 100 } else { 200 + milestones * ESTIMATE_PER_MILESTONE_US / 1000 };
        Ok(MigrationPlan {
            from: from.name().to_owned(),
            to: to.name().to_owned(),
            database: to.database().map(|d| d.name().to_owned()),
            milestones,
            steps,
            estimate_ms,
        })
    }

    /// The spec of the backend to migrate to, with the URL a request gave.
    ///
    /// The configured password sources serve a URL the request gives only
    /// when the caller is the daemon's own user or root, who may read them
    /// anyway: anyone else could otherwise have the password sent to a
    /// server of their choosing. Their URL brings its own password.
    fn target_spec(
        &self,
        to: BackendKind,
        url: Option<String>,
        config: &StorageConfig,
        peer: &Peer,
    ) -> ServiceResult<BackendSpec> {
        let spec = BackendSpec::new(to, config);
        match url {
            None => Ok(spec),
            Some(_) if to != BackendKind::Database(DatabaseKind::Postgresql) => {
                Err(ServiceError::invalid(format!("a URL is given only to migrate to PostgreSQL, not to {to}")))
            }
            Some(url) => {
                let url = DatabaseUrl::parse(&url).map_err(ServiceError::invalid)?;
                Ok(if peer.is_owner() { spec.with_url(url) } else { spec.with_url_alone(url) })
            }
        }
    }

    /// Every migration the audit log records, oldest first.
    pub(super) fn migration_history(&self) -> ServiceResult<Vec<MigrationRecord>> {
        let path = self.layout.storage_events();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(StorageError::from(FileError::new("read", &path, e)).into()),
        };
        let mut records: Vec<MigrationRecord> = Vec::new();
        let text_of = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
        for line in text.lines().filter(|l| l.contains("\"event\":\"migration_")) {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let (at, details) = (text_of(&event, "timestamp"), &event["details"]);
            let report = &details["report"];
            let open = records.last_mut().filter(|r| r.outcome == "interrupted");
            match event["event"].as_str() {
                Some("migration_started") => {
                    records.push(begun(at, text_of(details, "from"), text_of(details, "to"), text_of(&event, "user")))
                }
                Some("migration_completed") => {
                    let joined = details["joined"].as_bool() == Some(true);
                    let record = match open {
                        Some(record) if !joined => record,
                        _ => {
                            let joined = begun(
                                at.clone(),
                                text_of(report, "from"),
                                text_of(report, "to"),
                                text_of(&event, "user"),
                            );
                            records.push(joined);
                            records.last_mut().expect("just pushed")
                        }
                    };
                    record.finished_at = at;
                    record.outcome = if joined { "joined" } else { "completed" }.to_owned();
                    record.milestones = report["milestones"].as_u64();
                    record.backup = report["backup"].as_str().filter(|b| !b.is_empty()).map(str::to_owned);
                    record.duration_ms = report["duration_ms"].as_u64();
                    record.write_stall_ms = details["write_stall_ms"].as_u64();
                }
                Some("migration_failed") => {
                    if let Some(record) = open {
                        record.finished_at = at;
                        record.outcome = "failed".to_owned();
                        record.error = details["error"].as_str().map(str::to_owned);
                    }
                }
                _ => {}
            }
        }
        Ok(records)
    }
}

/// A migration as its start is logged: no end yet.
fn begun(started_at: String, from: String, to: String, by: String) -> MigrationRecord {
    MigrationRecord {
        started_at,
        finished_at: String::new(),
        from,
        to,
        outcome: "interrupted".to_owned(),
        milestones: None,
        backup: None,
        duration_ms: None,
        write_stall_ms: None,
        error: None,
        by,
    }
}
