//! `MilestoneService`: what each request does. It owns the milestone rules
//! (id generation, defaults, status moves, tasks and derived progress,
//! refusing dependency cycles) and speaks only to the [`Storage`] interface,
//! so every backend behaves the same.
//!
//! Writes are serialised by one lock: a read-modify-write never races another
//! and generated ids are unique. Reads never take it.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use milestones_protocol::{
    Assignment, BackendInfo, BackendTarget, Change, DaemonStatus, DepEdge, DepsReport, DocumentInput, EventKind,
    EventSource, Map, MigrationReport, NewTask, Query, Request, Response, Target, UpgradeOutcome, ValidationReport,
    Value, PROTOCOL_VERSION,
};
use serde_json::json;
use tracing::level_filters::LevelFilter;

use crate::document::{self, Folder, CANONICAL_ORDER, TASK_STATUSES};
use crate::error::{ServiceError, ServiceResult};
use crate::change_feed::{ChangeFeed, NewEvent};
use crate::config::StorageConfig;
use crate::event_log::{AuditEvent, StorageEventLog};
use crate::graph::DependencyGraph;
use crate::layout::ProjectLayout;
use crate::migration::Migration;
use crate::peer::Peer;
use crate::rules;
use crate::storage::{Doc, Storage, StorageError};

mod outside_edits;

pub struct MilestoneService {
    /// Swapped whole by a migration, under the write lock.
    storage: RwLock<Arc<dyn Storage>>,
    layout: ProjectLayout,
    /// Replaced whole on SIGHUP.
    settings: RwLock<Settings>,
    events: StorageEventLog,
    feed: ChangeFeed,
    /// How outside edits are noticed (`notify`, or the polling fallback).
    watching: RwLock<String>,
    writes: Mutex<WriteState>,
    started: Instant,
    started_at: String,
    endpoint: Endpoint,
}

/// Where the daemon serves.
pub struct Endpoint {
    pub root: String,
    pub socket: String,
    /// The socket came from systemd.
    pub socket_activated: bool,
}

/// What `storage-config.yaml` said when last read, and the log level then.
struct Settings {
    config: StorageConfig,
    log_level: LevelFilter,
    loaded_at: String,
}

#[derive(Default)]
struct WriteState {
    /// The next number to try for a generated `milestone-NNN` id; found by
    /// scanning on first use.
    next_number: Option<u64>,
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
        MilestoneService {
            storage: RwLock::new(storage),
            layout,
            settings: RwLock::new(Settings { config, log_level, loaded_at: now.clone() }),
            events,
            feed: ChangeFeed::default(),
            watching: RwLock::new("off".to_owned()),
            writes: Mutex::new(WriteState::default()),
            started: Instant::now(),
            started_at: now,
            endpoint,
        }
    }

    /// Takes a freshly read configuration (SIGHUP).
    pub fn set_config(&self, config: StorageConfig, log_level: LevelFilter) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) =
            Settings { config, log_level, loaded_at: document::now_timestamp() };
    }

    fn config(&self) -> StorageConfig {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).config.clone()
    }

    /// How many milestones the backend holds (0 if it cannot say).
    pub fn milestone_count(&self) -> u64 {
        self.storage().count().unwrap_or(0)
    }

    pub fn backend_name(&self) -> &'static str {
        self.storage().backend_name()
    }

    /// The backend serving now.
    fn storage(&self) -> Arc<dyn Storage> {
        self.storage.read().unwrap_or_else(|p| p.into_inner()).clone()
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
            Request::Get { id } => self.get(&id).map(|d| Response::Document(Value::Map(Map::clone(&d)))),
            Request::List { query } => self.list(&query).map(Response::Page),
            Request::Create { input } => self.create(input, peer).map(document_response),
            Request::Update { id, change } => self.update(&id, change, peer).map(document_response),
            Request::Delete { id, purge } => self.delete(&id, purge, peer),
            Request::Complete { id } => self.complete(&id, peer).map(document_response),
            Request::TaskAdd { milestone, task } => self.task_add(&milestone, task, peer).map(document_response),
            Request::TaskSetStatus { milestone, task, status } => {
                self.task_set_status(&milestone, &task, &status, peer).map(document_response)
            }
            Request::Deps { id } => self.deps(id.as_deref()).map(Response::Deps),
            Request::Validate { target } => self.validate(&target).map(Response::Validation),
            Request::Upgrade { target } => self.upgrade(&target, peer).map(Response::Upgraded),
            Request::Stats => {
                Ok(Response::Stats(self.storage().analytics(chrono::Utc::now().date_naive())?))
            }
            Request::Backend => {
                let storage = self.storage();
                Ok(Response::Backend(BackendInfo {
                    backend: storage.backend_name().to_owned(),
                    database: storage.database_kind().map(str::to_owned),
                    milestones: storage.count()?,
                    root: self.endpoint.root.clone(),
                    socket: self.endpoint.socket.clone(),
                }))
            }
            Request::Migrate { target } => self.migrate(target, peer).map(Response::Migrated),
            Request::Status => self.status().map(Response::Status),
            // The connection turns into a stream; the server does that.
            Request::Subscribe { .. } => Err(ServiceError::invalid("Subscribe is answered by the connection, not the service")),
        }
    }

    fn status(&self) -> ServiceResult<DaemonStatus> {
        let storage = self.storage();
        let settings = self.settings.read().unwrap_or_else(|p| p.into_inner());
        Ok(DaemonStatus {
            pid: std::process::id(),
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: PROTOCOL_VERSION,
            started_at: self.started_at.clone(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            backend: storage.backend_name().to_owned(),
            database: storage.database_kind().map(str::to_owned),
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

    fn get(&self, id: &str) -> ServiceResult<Doc> {
        document::validate_id(id, "id")?;
        self.storage().get(id)?.ok_or_else(|| ServiceError::NotFound(id.to_owned()))
    }

    fn list(&self, query: &Query) -> ServiceResult<milestones_protocol::Page> {
        Ok(self.storage().query(query)?)
    }

    fn create(&self, input: DocumentInput, peer: &Peer) -> ServiceResult<Doc> {
        let mut doc = parse_input(input, "the new milestone")?;
        let mut writes = self.lock_writes();
        let generated = match doc.get("id") {
            None | Some(Value::Null) => true,
            Some(Value::String(id)) => {
                document::validate_id(id, "id")?;
                false
            }
            Some(other) => {
                return Err(ServiceError::invalid_field("id", format!("id must be text, not a {}", other.type_name())))
            }
        };
        let now = document::now_timestamp();
        fill_new_document(&mut doc, &now);
        document::check_core_fields(&doc)?;
        document::derive_progress(&mut doc, &now);
        loop {
            if generated {
                doc.insert("id", Value::String(self.next_generated_id(&mut writes)?));
            }
            doc.reorder(CANONICAL_ORDER);
            self.refuse_cycles(&doc)?;
            match self.storage().insert(doc.clone()) {
                Ok(stored) => {
                    let id = document::id(&stored).unwrap_or_default();
                    self.log("milestone_created", id, peer, json!({}));
                    self.feed.publish(NewEvent::by_request(EventKind::Created, id, document::status(&stored)));
                    return Ok(stored);
                }
                // A file we had not indexed holds the generated id: try the next.
                Err(StorageError::AlreadyExists(_)) if generated => continue,
                Err(StorageError::AlreadyExists(id)) => return Err(ServiceError::AlreadyExists(id)),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn update(&self, id: &str, change: Change, peer: &Peer) -> ServiceResult<Doc> {
        let _writes = self.lock_writes();
        let current = self.get(id)?;
        let mut doc = Map::clone(&current);
        let changed: Vec<String> = match change {
            Change::Set(assignments) => {
                if assignments.is_empty() {
                    return Err(ServiceError::invalid("nothing to update: give at least one PATH=VALUE"));
                }
                for Assignment { path, value } in &assignments {
                    if path == "id" || path.starts_with("id.") {
                        return Err(ServiceError::invalid_field("id", "a milestone's id cannot be changed"));
                    }
                    document::set_path(&mut doc, path, value.clone())?;
                }
                assignments.into_iter().map(|a| a.path).collect()
            }
            Change::Replace(input) => {
                let mut new = parse_input(input, "the replacement document")?;
                match new.get("id") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(new_id)) if new_id == id => {}
                    Some(other) => {
                        return Err(ServiceError::invalid_field(
                            "id",
                            format!("the document's id {other:?} does not match `{id}`; ids cannot be changed"),
                        ))
                    }
                }
                new.insert("id", Value::from(id));
                new.reorder(&["id"]);
                if !new.contains_key("created_at") {
                    if let Some(created) = current.get("created_at") {
                        new.insert("created_at", created.clone());
                    }
                }
                doc = new;
                vec!["*".to_owned()]
            }
        };
        let stored = self.store_change(&current, doc, "milestone_updated", peer, json!({ "fields": changed }))?;
        Ok(stored)
    }

    /// The common tail of every change to an existing milestone: timestamps,
    /// derived fields, checks, storage, log.
    fn store_change(
        &self,
        current: &Map,
        mut doc: Map,
        event: &str,
        peer: &Peer,
        details: serde_json::Value,
    ) -> ServiceResult<Doc> {
        let now = document::now_timestamp();
        let was = document::status(current).map(str::to_owned);
        let is = document::status(&doc).map(str::to_owned);
        if is.as_deref() == Some("completed") && was.as_deref() != Some("completed") && !doc.contains_key("completed_at")
        {
            doc.insert("completed_at", Value::from(now.as_str()));
        }
        doc.insert("updated_at", Value::from(now.as_str()));
        document::check_core_fields(&doc)?;
        document::derive_progress(&mut doc, &now);
        if dependencies_changed(current, &doc) {
            self.refuse_cycles(&doc)?;
        }
        let stored = self.storage().replace(doc)?;
        let id = document::id(&stored).unwrap_or_default();
        let mut details = details;
        if was != is {
            details["status"] = json!({ "from": was, "to": is });
        }
        self.log(event, id, peer, details);
        let kind = if Folder::of(current) == Folder::of(&stored) { EventKind::Updated } else { EventKind::Moved };
        self.feed.publish(NewEvent::by_request(kind, id, is.as_deref()));
        Ok(stored)
    }

    fn delete(&self, id: &str, purge: bool, peer: &Peer) -> ServiceResult<Response> {
        let _writes = self.lock_writes();
        let current = self.get(id)?;
        if purge {
            self.storage().remove(id)?;
            self.log("milestone_deleted", id, peer, json!({ "purged": true }));
            self.feed.publish(NewEvent::by_request(EventKind::Deleted, id, None));
        } else if document::status(&current) != Some("archived") {
            let mut doc = Map::clone(&current);
            doc.insert("status", Value::from("archived"));
            doc.insert("archived_at", Value::from(document::now_timestamp()));
            self.store_change(&current, doc, "milestone_archived", peer, json!({}))?;
        }
        Ok(Response::Deleted { id: id.to_owned(), purged: purge })
    }

    fn complete(&self, id: &str, peer: &Peer) -> ServiceResult<Doc> {
        let _writes = self.lock_writes();
        let current = self.get(id)?;
        if document::status(&current) == Some("completed") {
            return Ok(current);
        }
        let mut doc = Map::clone(&current);
        doc.insert("status", Value::from("completed"));
        doc.insert("completed_at", Value::from(document::now_timestamp()));
        self.store_change(&current, doc, "milestone_completed", peer, json!({}))
    }

    fn task_add(&self, milestone: &str, task: NewTask, peer: &Peer) -> ServiceResult<Doc> {
        if task.title.trim().is_empty() {
            return Err(ServiceError::invalid_field("title", "a task needs a title"));
        }
        let _writes = self.lock_writes();
        let current = self.get(milestone)?;
        let mut doc = Map::clone(&current);
        let tasks = tasks_mut(&mut doc)?;
        let existing: Vec<String> = tasks.iter().filter_map(task_id).map(str::to_owned).collect();
        let id = match task.id {
            Some(id) => {
                document::validate_id(&id, "task")?;
                if existing.contains(&id) {
                    return Err(ServiceError::invalid_field("task", format!("task `{id}` already exists in `{milestone}`")));
                }
                id
            }
            None => (existing.len() + 1..).map(|n| format!("task-{n}")).find(|c| !existing.contains(c)).unwrap_or_default(),
        };
        for dep in &task.depends_on {
            if !existing.contains(dep) {
                return Err(ServiceError::invalid_field(
                    "depends_on",
                    format!("task `{dep}` does not exist in `{milestone}`"),
                ));
            }
        }
        let mut new = Map::new();
        new.insert("id", Value::from(id.as_str()));
        new.insert("title", Value::from(task.title));
        new.insert("status", Value::from("pending"));
        if !task.depends_on.is_empty() {
            new.insert("depends_on", Value::List(task.depends_on.into_iter().map(Value::from).collect()));
        }
        new.insert("created_at", Value::from(document::now_timestamp()));
        tasks.push(Value::Map(new));
        self.store_change(&current, doc, "task_added", peer, json!({ "task": id }))
    }

    fn task_set_status(&self, milestone: &str, task: &str, status: &str, peer: &Peer) -> ServiceResult<Doc> {
        if !TASK_STATUSES.contains(&status) {
            return Err(ServiceError::invalid_field(
                "status",
                format!("task status must be one of {}, not `{status}`", TASK_STATUSES.join(", ")),
            ));
        }
        let _writes = self.lock_writes();
        let current = self.get(milestone)?;
        let mut doc = Map::clone(&current);
        let tasks = tasks_mut(&mut doc)?;
        let statuses: Vec<(String, Option<String>)> = tasks
            .iter()
            .filter_map(|t| {
                let m = t.as_map()?;
                Some((task_id(t)?.to_owned(), m.get("status").and_then(Value::as_str).map(str::to_owned)))
            })
            .collect();
        let not_found = || ServiceError::TaskNotFound { milestone: milestone.to_owned(), task: task.to_owned() };
        let entry = tasks
            .iter_mut()
            .find(|t| task_id(t) == Some(task))
            .and_then(Value::as_map_mut)
            .ok_or_else(not_found)?;
        if status == "completed" {
            let unfinished: Vec<&str> = entry
                .get("depends_on")
                .and_then(Value::as_list)
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_str)
                .filter(|dep| {
                    !statuses.iter().any(|(id, s)| id == dep && matches!(s.as_deref(), Some("completed" | "cancelled")))
                })
                .collect();
            if !unfinished.is_empty() {
                return Err(ServiceError::invalid_field(
                    "depends_on",
                    format!("task `{task}` waits for {} to be completed first", quote_list(&unfinished)),
                ));
            }
        }
        let now = document::now_timestamp();
        entry.insert("status", Value::from(status));
        let stamp = match status {
            "in_progress" => Some("started_at"),
            "completed" => Some("completed_at"),
            _ => None,
        };
        if let Some(stamp) = stamp {
            if !entry.contains_key(stamp) {
                entry.insert(stamp, Value::from(now.as_str()));
            }
        }
        // Starting work on a milestone's first task starts the milestone.
        if status == "in_progress" && document::status(&doc) == Some("planning") {
            doc.insert("status", Value::from("in_progress"));
        }
        self.store_change(&current, doc, "task_updated", peer, json!({ "task": task, "task_status": status }))
    }

    fn deps(&self, id: Option<&str>) -> ServiceResult<DepsReport> {
        let graph = self.graph()?;
        let focus = match id {
            Some(id) => {
                self.get(id)?;
                Some(graph.focus(id))
            }
            None => None,
        };
        Ok(DepsReport {
            milestones: graph.node_count() as u64,
            edges: graph.edges(),
            missing: graph.missing(),
            cycles: graph.cycles(),
            critical_path: graph.critical_path(),
            focus,
        })
    }

    fn validate(&self, target: &Target) -> ServiceResult<ValidationReport> {
        let graph = self.graph()?;
        let mut problems = Vec::new();
        let checked = match target {
            Target::One(id) => {
                let doc = self.get(id)?;
                problems.extend(self.storage().problems().into_iter().filter(|p| p.id.as_deref() == Some(id.as_str())));
                problems.extend(rules::check_document(&doc));
                problems.extend(rules::check_graph(&graph, Some(id)));
                1
            }
            Target::All => {
                let file_problems = self.storage().problems();
                let mut served = std::collections::HashSet::new();
                let mut document_problems = Vec::new();
                self.storage().for_each(&mut |doc| {
                    served.extend(document::id(doc).map(str::to_owned));
                    document_problems.extend(rules::check_document(doc));
                })?;
                // A broken file whose last good version is served is one
                // milestone, not two.
                let unserved = file_problems.iter().filter(|p| p.id.as_ref().is_none_or(|id| !served.contains(id))).count();
                let checked = (served.len() + unserved) as u64;
                problems.extend(file_problems);
                problems.extend(document_problems);
                problems.extend(rules::check_graph(&graph, None));
                checked
            }
        };
        Ok(ValidationReport { checked, problems })
    }

    fn upgrade(&self, target: &Target, peer: &Peer) -> ServiceResult<Vec<UpgradeOutcome>> {
        let _writes = self.lock_writes();
        let docs: Vec<Doc> = match target {
            Target::One(id) => vec![self.get(id)?],
            Target::All => {
                let mut all = Vec::new();
                self.storage().for_each(&mut |d| all.push(d.clone()))?;
                all.into_iter().map(Arc::new).collect()
            }
        };
        let mut outcomes = Vec::new();
        for current in docs {
            let mut doc = Map::clone(&current);
            let added = rules::upgrade(&mut doc);
            let id = document::id(&doc).unwrap_or_default().to_owned();
            if !added.is_empty() {
                // `upgrade` changes nothing but the added sections, not even
                // `updated_at`.
                let stored = self.storage().replace(doc)?;
                self.log("milestone_upgraded", &id, peer, json!({ "added": added }));
                self.feed.publish(NewEvent::by_request(EventKind::Updated, &id, document::status(&stored)));
            }
            if !added.is_empty() || matches!(target, Target::One(_)) {
                outcomes.push(UpgradeOutcome { id, added });
            }
        }
        Ok(outcomes)
    }

    fn graph(&self) -> ServiceResult<DependencyGraph> {
        Ok(self.storage().dependency_graph()?)
    }

    /// Moves every milestone to another backend. Writes wait for it (they
    /// need the write lock); reads go on against the old backend until the
    /// switch.
    fn migrate(&self, target: BackendTarget, peer: &Peer) -> ServiceResult<MigrationReport> {
        let mut writes = self.lock_writes();
        let source = self.storage();
        let config = self.config();
        let details = json!({ "from": source.backend_name(), "to": target.backend_name() });
        self.log("migration_started", "", peer, details.clone());
        let backends = format!("{} to {}", source.backend_name(), target.backend_name());
        self.publish_migration(EventKind::MigrationStarted, format!("migrating from {backends}"));
        match Migration::new(&self.layout, &config, source, target).run() {
            Ok(migrated) => {
                *self.storage.write().unwrap_or_else(|p| p.into_inner()) = migrated.store;
                writes.next_number = None;
                let report = migrated.report;
                tracing::info!(from = %report.from, to = %report.to, milestones = report.milestones, duration_ms = report.duration_ms, "migration finished");
                self.log("migration_completed", "", peer, json!({ "report": report }));
                self.publish_migration(EventKind::MigrationFinished, format!("migrated {} milestones from {backends}", report.milestones));
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

    /// Refuses a document whose dependencies would close a cycle through it.
    /// Walks outward from the document along what each milestone requires,
    /// with the document's new edges standing in for its stored ones, so the
    /// cost is the size of its neighbourhood, not of the project.
    fn refuse_cycles(&self, doc: &Map) -> ServiceResult<()> {
        if document::requires(doc).next().is_none() && document::enables(doc).next().is_none() {
            return Ok(());
        }
        let id = document::id(doc).unwrap_or_default();
        let storage = self.storage();
        let own: Vec<DepEdge> = crate::graph::declared_edges(doc);
        let cycle = crate::graph::find_cycle_through(id, |node| {
            let stored = storage.requirements(node)?.into_iter().filter(|r| r.declared_by != id).map(|r| r.to);
            let new = own.iter().filter(|e| e.from == node).map(|e| e.to.clone());
            Ok::<_, StorageError>(stored.chain(new).collect())
        })?;
        match cycle {
            Some(cycle) => Err(ServiceError::Cycle(cycle)),
            None => Ok(()),
        }
    }

    /// The next free `milestone-NNN` id. Takes the write state, so only a
    /// caller holding the write lock can ask.
    fn next_generated_id(&self, state: &mut WriteState) -> ServiceResult<String> {
        let mut n = match state.next_number {
            Some(n) => n,
            None => {
                let numbers = self.storage().ids()?;
                let numbers = numbers.iter().filter_map(|id| id.strip_prefix("milestone-")?.parse::<u64>().ok());
                numbers.max().unwrap_or(0) + 1
            }
        };
        loop {
            let id = format!("milestone-{n:03}");
            n += 1;
            if self.storage().get(&id)?.is_none() {
                state.next_number = Some(n);
                return Ok(id);
            }
        }
    }

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, WriteState> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish_migration(&self, kind: EventKind, detail: String) {
        let source = EventSource::Request;
        self.feed.publish(NewEvent { kind, id: None, status: None, source, file: None, detail: Some(detail) });
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
            backend: storage.backend_name(),
            user: &peer.user,
            details,
        };
        self.events.record(&event);
        storage.record_event(&event);
    }
}

fn document_response(doc: Doc) -> Response {
    Response::Document(Value::Map(Map::clone(&doc)))
}

/// Turns what a client sent into a document.
fn parse_input(input: DocumentInput, what: &str) -> ServiceResult<Map> {
    match input {
        DocumentInput::Yaml(text) => crate::yaml::parse_document(&text, what),
        DocumentInput::Fields(Value::Map(map)) => Ok(map),
        DocumentInput::Fields(other) => {
            Err(ServiceError::invalid(format!("{what} must be a mapping, not a {}", other.type_name())))
        }
    }
}

/// Fills what a new milestone needs and the user did not give.
fn fill_new_document(doc: &mut Map, now: &str) {
    let defaults: [(&str, fn(&str) -> Value); 7] = [
        ("status", |_| Value::from("planning")),
        ("priority", |_| Value::from("medium")),
        ("created_at", |now| Value::from(now)),
        ("updated_at", |now| Value::from(now)),
        ("progress", |_| {
            Value::Map(
                [("percentage", 0), ("tasks_completed", 0), ("total_tasks", 0)]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::Int(v)))
                    .collect(),
            )
        }),
        ("tasks", |_| Value::List(Vec::new())),
        ("dependencies", |_| {
            Value::Map(["requires", "enables", "external"].into_iter().map(|k| (k.to_owned(), Value::List(Vec::new()))).collect())
        }),
    ];
    for (key, make) in defaults {
        if doc.get(key).is_none_or(Value::is_null) {
            doc.insert(key, make(now));
        }
    }
}

fn dependencies_changed(a: &Map, b: &Map) -> bool {
    a.get("dependencies") != b.get("dependencies")
}

fn tasks_mut(doc: &mut Map) -> ServiceResult<&mut Vec<Value>> {
    if doc.get("tasks").is_none_or(Value::is_null) {
        doc.insert("tasks", Value::List(Vec::new()));
    }
    match doc.get_mut("tasks") {
        Some(Value::List(tasks)) => Ok(tasks),
        _ => Err(ServiceError::invalid_field("tasks", "this milestone's `tasks` is not a list")),
    }
}

fn task_id(task: &Value) -> Option<&str> {
    task.as_map()?.get("id")?.as_str()
}

fn quote_list(items: &[&str]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}
