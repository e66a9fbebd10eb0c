//! `MilestoneService`: what each request does. It owns the milestone rules
//! (defaults, status moves, tasks and derived progress) and speaks only to
//! the [`Storage`] interface, so every backend behaves the same.
//!
//! Each request family has its own file: `milestones` (get, list, create,
//! update, delete, complete), `tasks`, `project` (deps, validate, upgrade,
//! stats), `backend` (backend, migrate, status), `outside_edits` (what the
//! watcher hands in). This file holds what they share: the dispatch, and
//! [`MilestoneService::modify`], the compare-and-swap loop every change to
//! an existing milestone goes through.
//!
//! Correctness does not rest on any lock here: a change is applied to the
//! version read and stored only if that version is still the stored one,
//! else read and applied again, so several service instances (several
//! daemons) may share one database. The only lock, the migration gate,
//! holds this process's writes for a migration's final catch-up and switch.

mod access;
mod audit;
mod backend;
mod capture;
mod error;
mod migration_lock;
mod milestones;
mod open_work;
mod outside_edits;
mod project;
mod rollback;
mod scale;
mod tasks;
mod turns;

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Instant;

use milestones_protocol::{EventKind, EventSource, Map, Request, Response, Value};
use serde_json::json;
use tracing::level_filters::LevelFilter;

pub use self::error::{ServiceError, ServiceResult};
pub use self::scale::ScaleView;
use crate::change_feed::{ChangeFeed, NewEvent};
use crate::config::StorageConfig;
use crate::document::{self, Doc, Folder, Status};
use crate::event_log::{AuditEvent, StorageEventLog};
use crate::layout::ProjectLayout;
use crate::peer::Peer;
use crate::storage::{IdAllocator, SharedChange, Storage, StorageError, Stored};

/// Where problems with the configuration (a failing hook) are filed.
const CONFIG_FILE: &str = ".milestones/config/storage-config.yaml";

/// How many times a change is re-applied when other writers keep getting in
/// first, before the request gives up with a conflict.
const MAX_ATTEMPTS: usize = 32;

pub struct MilestoneService {
    /// Swapped whole by a migration, under the gate.
    storage: RwLock<Arc<dyn Storage>>,
    /// Writes hold it shared; a migration holds it alone for its final
    /// catch-up and switch.
    gate: RwLock<()>,
    /// A migration holds it for its whole run, clean-up included; taking
    /// in outside edits waits for it.
    migrating: migration_lock::MigrationLock,
    /// The milestones written while a migration copies.
    written: capture::Capture,
    ids: IdAllocator,
    layout: ProjectLayout,
    /// Replaced whole on SIGHUP.
    settings: RwLock<Settings>,
    events: StorageEventLog,
    /// Writers of one milestone take turns (see `turns.rs`).
    turns: turns::Turns,
    /// Shared with the storage's listener, which hands in other daemons'
    /// changes.
    feed: Arc<ChangeFeed>,
    /// How outside edits are noticed (`notify`, or the polling fallback).
    watching: RwLock<String>,
    /// Files dropped into a database backend's folders that could not be
    /// imported, and folders a rescan could not read.
    outside_problems: RwLock<Vec<milestones_protocol::Problem>>,
    /// The last failure of each hook (event, command line) that has not
    /// succeeded since.
    hook_problems: RwLock<Vec<((String, String), milestones_protocol::Problem)>>,
    started: Instant,
    started_at: String,
    endpoint: Endpoint,
    /// What the daemon measures of its requests, for the scale monitor.
    metrics: crate::request_metrics::RequestMetrics,
    /// The mean query latency (ms) of recent monitor cycles: the trend.
    query_history: std::sync::Mutex<std::collections::VecDeque<f64>>,
    /// What `ready` and `blocked` answer from, between requests.
    open_work: open_work::OpenWork,
    /// Each caller's role under the access list last read.
    roles: access::Roles,
}

/// Where the daemon serves.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    pub root: String,
    pub socket: String,
    /// The socket came from systemd.
    pub socket_activated: bool,
    /// The largest reply a connection carries (the frame limit; 0: none
    /// given). A list reads only as many milestones as fit in one.
    pub max_reply_bytes: usize,
}

/// What `storage-config.yaml` said when last read, and the log level then.
struct Settings {
    config: StorageConfig,
    log_level: LevelFilter,
    loaded_at: String,
    /// Counts the readings: a role worked out under an older one is not
    /// trusted (see `access.rs`).
    generation: u64,
}

/// One change to an existing milestone, computed from the version read.
pub(crate) struct Edit {
    pub doc: Map,
    /// The audit event (`milestone_updated`, `task_added`, ...).
    pub event: &'static str,
    pub details: serde_json::Value,
    /// The dotted paths the change sets (`*` for the whole document): when
    /// another writer changed one of them meanwhile, this change wins and
    /// says so in the log.
    pub touched: Vec<String>,
    /// Timestamps and derived fields follow (everything but `upgrade`).
    pub stamped: bool,
}

impl MilestoneService {
    pub fn new(
        storage: Arc<dyn Storage>,
        layout: ProjectLayout,
        config: StorageConfig,
        events: StorageEventLog,
        endpoint: Endpoint,
        log_level: LevelFilter,
    ) -> Self {
        let now = document::now_timestamp();
        let feed = Arc::new(ChangeFeed::default());
        hear_shared_changes(&*storage, &feed);
        let service = MilestoneService {
            storage: RwLock::new(storage),
            gate: RwLock::new(()),
            migrating: migration_lock::MigrationLock::default(),
            written: capture::Capture::default(),
            ids: IdAllocator::default(),
            layout,
            settings: RwLock::new(Settings { config, log_level, loaded_at: now.clone(), generation: 0 }),
            events,
            turns: turns::Turns::default(),
            feed,
            watching: RwLock::new("off".to_owned()),
            outside_problems: RwLock::new(Vec::new()),
            hook_problems: RwLock::new(Vec::new()),
            started: Instant::now(),
            started_at: now,
            endpoint,
            metrics: crate::request_metrics::RequestMetrics::default(),
            query_history: std::sync::Mutex::new(std::collections::VecDeque::new()),
            open_work: open_work::OpenWork::default(),
            roles: access::Roles::default(),
        };
        service.open_socket();
        service
    }

    /// Takes a freshly read configuration (SIGHUP).
    pub fn set_config(&self, config: StorageConfig, log_level: LevelFilter) {
        self.events.set_immutable(config.immutable_logs);
        let access_changed = {
            let mut settings = self.settings.write().unwrap_or_else(|p| p.into_inner());
            let changed = settings.config.access != config.access;
            let generation = settings.generation + 1;
            *settings = Settings { config, log_level, loaded_at: document::now_timestamp(), generation };
            changed
        };
        if access_changed {
            self.open_socket();
        }
    }

    /// Reads `storage-config.yaml` again, keeping the log level (the
    /// [`crate::config_follower::ConfigFollower`] does this when the file
    /// changes; SIGHUP also re-applies the log level).
    pub fn reload_config(&self) -> Result<(), crate::config::ConfigError> {
        let config = StorageConfig::load_project(&self.layout)?;
        let level = self.settings.read().unwrap_or_else(|p| p.into_inner()).log_level;
        self.set_config(config, level);
        Ok(())
    }

    /// The hooks `storage-config.yaml` names now.
    pub fn hook_settings(&self) -> crate::config::HookSettings {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).config.hooks.clone()
    }

    /// Records how a hook's run went: a failure is shown by `health` and
    /// `validate` until that hook next succeeds.
    pub fn note_hook_outcome(&self, event: &str, command: &str, failure: Option<String>) {
        let key = (event.to_owned(), command.to_owned());
        let mut problems = self.hook_problems.write().unwrap_or_else(|p| p.into_inner());
        problems.retain(|(k, _)| *k != key);
        if let Some(why) = failure {
            let problem = milestones_protocol::Problem {
                id: None,
                file: Some(CONFIG_FILE.to_owned()),
                severity: milestones_protocol::Severity::Warning,
                field: Some(format!("storage.hooks.{event}")),
                message: format!("the hook `{command}` failed ({}): {why}", document::now_timestamp()),
            };
            problems.push((key, problem));
        }
    }

    fn config(&self) -> StorageConfig {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).config.clone()
    }

    /// How many milestones the backend holds.
    pub fn milestone_count(&self) -> Result<u64, StorageError> {
        self.storage().count()
    }

    /// Makes everything stored durable on its own (on the way out).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.storage().flush()
    }

    /// The backend serving now, for logs and status lines.
    pub fn backend_name(&self) -> &'static str {
        self.storage().kind().name()
    }

    /// The backend serving now.
    fn storage(&self) -> Arc<dyn Storage> {
        self.storage.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Held by every write: a migration waits for writes in flight and
    /// keeps new ones waiting until it has switched.
    fn write_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.written.pace();
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// True when `request` is answered from memory in microseconds, so the
    /// server may run it on an async worker thread.
    pub fn is_quick(&self, request: &Request) -> bool {
        match request {
            Request::Ping => true,
            Request::Get { .. } | Request::Backend => self.storage().reads_in_memory(),
            _ => false,
        }
    }

    /// Executes one request. May block on disk or database I/O.
    pub fn handle(&self, request: Request, peer: &Peer) -> ServiceResult<Response> {
        match request {
            Request::Ping => Ok(Response::Pong {
                daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
                uptime_ms: self.started.elapsed().as_millis() as u64,
            }),
            Request::Get { id } => self.get(&id).map(|s| document_response(s.doc)),
            Request::List { query } => self.list(&query).map(Response::Page),
            Request::Create { input } => self.create(input, peer).map(|s| document_response(s.doc)),
            Request::Update { id, change } => self.update(&id, change, peer).map(|s| document_response(s.doc)),
            Request::Delete { id, purge } => self.delete(&id, purge, peer),
            Request::Complete { id } => self.complete(&id, peer).map(|s| document_response(s.doc)),
            Request::TaskAdd { milestone, task } => {
                self.task_add(&milestone, task, peer).map(|s| document_response(s.doc))
            }
            Request::TaskSetStatus { milestone, task, status } => {
                self.task_set_status(&milestone, &task, &status, peer).map(|s| document_response(s.doc))
            }
            Request::Deps { id } => self.deps(id.as_deref()).map(Response::Deps),
            Request::Validate { target } => self.validate(&target).map(Response::Validation),
            Request::Upgrade { target } => self.upgrade(&target, peer).map(Response::Upgraded),
            Request::Stats => self.stats().map(Response::Stats),
            Request::Backend => self.backend().map(Response::Backend),
            Request::Migrate { target } => self.migrate(target, None, peer).map(Response::Migrated),
            Request::MigrateTo { target, url } => self.migrate(target, url, peer).map(Response::Migrated),
            Request::DatabaseHealth => Ok(Response::DatabaseHealth(self.storage().database_health())),
            Request::DatabaseTls => Ok(Response::DatabaseTls(self.storage().database_tls()?)),
            Request::Scale => self.scale().map(Response::Scale),
            Request::MigrationHistory => self.migration_history().map(Response::MigrationHistory),
            Request::MigrationStatus => Ok(Response::MigrationStatus(crate::migration::in_progress(&self.layout)?)),
            Request::MigrationPlan { target, url } => {
                self.migration_plan(target, url, peer).map(Response::MigrationPlan)
            }
            Request::MigrateRollback { discard_changes } => {
                self.rollback(discard_changes, peer).map(Response::Migrated)
            }
            Request::Status => self.status().map(Response::Status),
            Request::AuditVerify => self.audit_verify().map(Response::AuditReport),
            Request::Work { tasks } => self.work(tasks).map(Response::Work),
            Request::WorkPage { tasks, blocked, offset, limit } => {
                self.work_page(tasks, blocked, offset, limit).map(Response::WorkPage)
            }
            Request::Import { documents, replace, check_only } => {
                self.import(documents, replace, check_only, peer).map(Response::Imported)
            }
            // The connection turns into a stream; the server does that.
            Request::Subscribe { .. } => {
                Err(ServiceError::invalid("Subscribe is answered by the connection, not the service"))
            }
        }
    }

    /// The stored milestone `id`, or why not.
    fn stored(&self, id: &str) -> ServiceResult<Stored> {
        document::validate_id(id, "id")?;
        self.storage().get(id)?.ok_or_else(|| ServiceError::NotFound(id.to_owned()))
    }

    /// Applies `change` to the stored milestone `id` and stores the result,
    /// provided nobody wrote it in between; otherwise reads it again and
    /// re-applies the change, up to [`MAX_ATTEMPTS`] times. So two writers
    /// changing different fields both keep their change, and of two
    /// changing the same field the later wins and the log says whose value
    /// it replaced. `change` returns `None` when there is nothing to do.
    pub(crate) fn modify(
        &self,
        id: &str,
        peer: &Peer,
        mut change: impl FnMut(&Map) -> ServiceResult<Option<Edit>>,
    ) -> ServiceResult<Stored> {
        let _gate = self.write_gate();
        let _turn = self.turns.take(id);
        let storage = self.storage();
        let mut first_read: Option<Doc> = None;
        for attempt in 0..MAX_ATTEMPTS {
            let current = self.stored(id)?;
            let first = first_read.get_or_insert_with(|| current.doc.clone()).clone();
            let Some(edit) = change(&current.doc)? else { return Ok(current) };
            let Edit { mut doc, event, mut details, touched, stamped } = edit;
            if stamped {
                finish_change(&current.doc, &mut doc)?;
            }
            let stored = match storage.replace(doc, &current.revision) {
                Ok(stored) => {
                    self.written.note(id);
                    stored
                }
                Err(StorageError::Stale { .. }) => {
                    tracing::debug!(id, attempt, "another writer got in first; applying the change again");
                    back_off(attempt);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let overrode = changed_meanwhile(&first, &current.doc, &touched);
            if !overrode.is_empty() {
                tracing::info!(
                    id,
                    fields = ?overrode,
                    user = %peer.user,
                    "another writer changed these fields while this request applied its change; this request's values win (last writer wins)"
                );
                details["overrode"] = json!(overrode);
            }
            if attempt > 0 {
                details["retries"] = json!(attempt);
            }
            let (was, is) = (document::status(&current.doc), document::status(&stored.doc));
            if was != is {
                details["status"] = json!({ "from": was.map(Status::as_str), "to": is.map(Status::as_str) });
            }
            details["revision"] = json!(stored.revision.as_str());
            self.log(event, id, peer, details);
            let kind =
                if Folder::of(&current.doc) == Folder::of(&stored.doc) { EventKind::Updated } else { EventKind::Moved };
            self.feed.publish(NewEvent { previous_status: was, ..NewEvent::by_request(kind, id, is) });
            return Ok(stored);
        }
        Err(ServiceError::Contended { id: id.to_owned(), attempts: MAX_ATTEMPTS })
    }

    fn publish_migration(&self, kind: EventKind, detail: String) {
        let source = EventSource::Request;
        let detail = Some(detail);
        self.feed.publish(NewEvent { kind, id: None, status: None, previous_status: None, source, file: None, detail });
    }

    /// Makes `store` the one that serves (after a migration), and has it
    /// hand in other writers' changes.
    fn serve_from(&self, store: Arc<dyn Storage>) {
        hear_shared_changes(&*store, &self.feed);
        *self.storage.write().unwrap_or_else(|p| p.into_inner()) = store;
        self.ids.reset();
        // The switch may have saved a database URL or engine: what the
        // next migration reads.
        match StorageConfig::load_project(&self.layout) {
            Ok(config) => self.settings.write().unwrap_or_else(|p| p.into_inner()).config = config,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the settings the migration left; keeping the running ones")
            }
        }
    }

    /// The feed of changes subscribers listen to.
    pub fn feed(&self) -> &ChangeFeed {
        &self.feed
    }

    fn log(&self, event: &str, id: &str, peer: &Peer, details: serde_json::Value) {
        let storage = self.storage();
        let timestamp = document::now_timestamp();
        let event = AuditEvent {
            timestamp: &timestamp,
            event,
            milestone_id: id,
            backend: storage.kind().name(),
            user: &peer.user,
            details,
        };
        self.events.record(&event);
        // The JSONL log has it; a database that cannot take it is reported,
        // never a reason to fail a change already stored.
        if let Err(e) = storage.record_event(&event) {
            tracing::warn!(error = %e, "cannot record the event in the backend's events table");
        }
    }
}

/// A document as a reply: moved when nothing else holds it (a store that
/// reads documents back hands out its own copy), copied otherwise.
fn document_response(doc: Doc) -> Response {
    Response::Document(Value::Map(Arc::try_unwrap(doc).unwrap_or_else(|shared| Map::clone(&shared))))
}

/// A pause before a change is applied again after another writer got in
/// first: random, and longer each time (up to 20 ms), so that many writers
/// of one milestone take turns instead of colliding again and again.
fn back_off(attempt: usize) {
    use std::hash::{BuildHasher, Hasher};
    let ceiling_us = (100u64 << attempt.min(8)).min(20_000);
    // A RandomState is keyed afresh each time: enough randomness for jitter.
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    std::thread::sleep(std::time::Duration::from_micros(random % ceiling_us));
}

/// What every change to an existing milestone gets: `completed_at` when it
/// becomes completed, `updated_at`, derived progress, the core checks and
/// the size limits.
fn finish_change(current: &Map, doc: &mut Map) -> ServiceResult<()> {
    let now = document::now_timestamp();
    let becomes_completed =
        document::status(doc) == Some(Status::Completed) && document::status(current) != Some(Status::Completed);
    if becomes_completed && !doc.contains_key("completed_at") {
        doc.insert("completed_at", Value::from(now.as_str()));
    }
    doc.insert("updated_at", Value::from(now.as_str()));
    document::fill_task_defaults(doc);
    document::check_core_fields(doc)?;
    document::derive_progress(doc, &now);
    crate::document_limits::check(doc)?;
    Ok(())
}

/// Which of `touched` another writer changed between the version a request
/// first read and the one its change was finally applied to.
fn changed_meanwhile(first: &Map, applied_to: &Map, touched: &[String]) -> Vec<String> {
    if std::ptr::eq(first, applied_to) || first == applied_to {
        return Vec::new();
    }
    let (first, applied_to) = (Value::Map(first.clone()), Value::Map(applied_to.clone()));
    touched
        .iter()
        .filter(|path| match path.as_str() {
            "*" => true,
            path => first.pointer(path) != applied_to.pointer(path),
        })
        .cloned()
        .collect()
}

/// Has `store` announce on `feed` the changes other writers make to a
/// shared database (other daemons, `psql`), as their own kind of source.
fn hear_shared_changes(store: &dyn Storage, feed: &Arc<ChangeFeed>) {
    let feed = feed.clone();
    store.listen(Arc::new(move |change: SharedChange| {
        feed.publish(NewEvent {
            kind: change.kind,
            id: Some(&change.id),
            status: change.status.as_deref().and_then(Status::parse),
            previous_status: None,
            source: EventSource::SharedDatabase,
            file: None,
            detail: None,
        })
    }));
}
