//! Requests, responses and errors exchanged after the handshake.
//!
//! Compatibility rule (see DESIGN §14, pueue's lesson): bincode encodes enum
//! variants by index, so new variants are only ever appended at the end and an
//! existing variant or field never changes. Wire types avoid serde attributes
//! that need a self-describing format (`flatten`, `untagged`,
//! `skip_serializing_if`).

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// What a client sends: a request tagged with an id the reply echoes, so a
/// client may pipeline requests on one connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFrame {
    pub id: u64,
    pub request: Request,
}

/// What the daemon sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The one answer to the request with the same `id`. A frame the daemon
    /// could not read at all is answered with id 0.
    Reply { id: u64, result: Result<Response, ErrorInfo> },
    /// After `Subscribe`: one change, whatever made it.
    Event(ChangeEvent),
    /// After `Subscribe`: this subscriber fell behind and `missed` events
    /// were dropped for it (the daemon never waits for a slow reader).
    Lagged { missed: u64 },
}

/// A change to the project, as subscribers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// Increases by one per event the daemon publishes.
    pub seq: u64,
    pub kind: EventKind,
    /// The milestone, for milestone events.
    pub id: Option<String>,
    /// Its status after the change.
    pub status: Option<String>,
    pub source: EventSource,
    /// RFC 3339.
    pub timestamp: String,
    /// The file involved, relative to the project root, for outside edits
    /// and invalid files.
    pub file: Option<String>,
    /// A sentence for people: the parse error of an invalid file, the
    /// backends of a migration.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    Created,
    Updated,
    /// The status change moved the file between `active/` and `completed/`.
    Moved,
    Deleted,
    /// An outside edit left a file that does not parse or validate; the last
    /// good version is still served.
    Invalid,
    MigrationStarted,
    MigrationFinished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventSource {
    /// A request to this daemon.
    Request,
    /// Someone edited `.milestones/` directly (an editor, a script, git).
    OutsideEdit,
    /// Another writer on the shared database: another daemon (another
    /// project root, maybe on another machine), or `psql`.
    SharedDatabase,
}

/// Which events a subscriber wants; empty lists mean all.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EventFilter {
    pub ids: Vec<String>,
    pub statuses: Vec<String>,
    pub kinds: Vec<EventKind>,
}

impl EventFilter {
    pub fn accepts(&self, event: &ChangeEvent) -> bool {
        let id_ok = self.ids.is_empty() || event.id.as_ref().is_some_and(|id| self.ids.contains(id));
        let status_ok = self.statuses.is_empty() || event.status.as_ref().is_some_and(|s| self.statuses.contains(s));
        let kind_ok = self.kinds.is_empty() || self.kinds.contains(&event.kind);
        id_ok && status_ok && kind_ok
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Liveness check; answered with [`Response::Pong`].
    Ping,
    /// Create a milestone; answered with the stored document.
    Create { input: DocumentInput },
    /// Fetch one milestone; answered with the document or `NotFound`.
    Get { id: String },
    /// List or search milestones; answered with [`Response::Page`].
    List { query: Query },
    /// Change a milestone; answered with the stored document.
    Update { id: String, change: Change },
    /// Archive (or with `purge`, remove for good) a milestone.
    Delete { id: String, purge: bool },
    /// Mark a milestone completed; answered with the stored document.
    Complete { id: String },
    /// Append a task to a milestone; answered with the milestone.
    TaskAdd { milestone: String, task: NewTask },
    /// Set a task's status (`pending`, `in_progress`, `completed`, ...).
    TaskSetStatus { milestone: String, task: String, status: String },
    /// The dependency graph, or one milestone's part of it.
    Deps { id: Option<String> },
    /// Check documents against the schema rules and referential integrity.
    Validate { target: Target },
    /// Add the enhanced sections with the template's defaults where missing.
    Upgrade { target: Target },
    /// Analytics over the whole project.
    Stats,
    /// The active backend and where the daemon lives.
    Backend,
    /// Move every milestone to another backend: back up, copy, verify every
    /// record, switch; or leave the current backend untouched on failure.
    Migrate { target: BackendTarget },
    /// The daemon itself: pid, versions, uptime, backend, socket, settings.
    Status,
    /// Turns this connection into a stream of [`ServerMessage::Event`]s
    /// (after a `Subscribed` reply) until the client closes it.
    Subscribe { filter: EventFilter },
    /// [`Request::Migrate`] to a database that needs a connection URL
    /// (PostgreSQL); answered like `Migrate`.
    MigrateTo { target: BackendTarget, url: Option<String> },
    /// The database connection's state and the server's figures; answered
    /// with [`Response::DatabaseHealth`] (`None` when no server is used).
    DatabaseHealth,
    /// The scale monitor's view: metrics, the optimal backend, the
    /// confidence of a migration; answered with [`Response::Scale`].
    Scale,
    /// The migrations this project went through, oldest first; answered
    /// with [`Response::MigrationHistory`].
    MigrationHistory,
    /// What [`Request::MigrateTo`] would do, without doing it; answered
    /// with [`Response::MigrationPlan`].
    MigrationPlan { target: BackendTarget, url: Option<String> },
    /// The migration under way, if any; answered with
    /// [`Response::MigrationStatus`].
    MigrationStatus,
    /// Returns to the backend the last migration left, with the milestones
    /// its backup holds; answered like `Migrate`. Refused when milestones
    /// changed since that backup, unless `discard_changes` (they are
    /// backed up first).
    MigrateRollback { discard_changes: bool },
    /// Checks the audit log's hash chain (`storage.audit.immutable_logs`);
    /// answered with [`Response::AuditReport`].
    AuditVerify,
    /// What can be worked on now and what waits on what (`msctl ready`,
    /// `msctl blocked`): milestones, or with `tasks` the tasks of open
    /// milestones; answered with [`Response::Work`].
    Work { tasks: bool },
    /// A batch of `msctl import`: each document created (or, with
    /// `replace`, replacing the milestone of its id), checked as `Create`
    /// checks it; with `check_only`, checked and nothing stored. Answered
    /// with [`Response::Imported`].
    Import { documents: Vec<DocumentInput>, replace: bool, check_only: bool },
    /// One page of `Work`'s ready items (or, with `blocked`, its blocked
    /// ones), in the same order: `limit` items from `offset` on. Answered
    /// with [`Response::WorkPage`].
    WorkPage { tasks: bool, blocked: bool, offset: u64, limit: u64 },
    /// How the connection to the database server is secured; answered
    /// with [`Response::DatabaseTls`] (`None` for backends without a
    /// server).
    DatabaseTls,
}

/// A backend to migrate to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendTarget {
    File,
    Hybrid,
    Database(DatabaseKind),
}

/// The engine behind the `database` backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatabaseKind {
    Sqlite,
    Postgresql,
}

impl BackendTarget {
    /// The name `config/storage-backend.txt` uses.
    pub fn backend_name(self) -> &'static str {
        match self {
            BackendTarget::File => "file",
            BackendTarget::Hybrid => "hybrid",
            BackendTarget::Database(_) => "database",
        }
    }
}

impl DatabaseKind {
    /// The name `storage-config.yaml`'s `database.type` uses.
    pub fn name(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgresql => "postgresql",
        }
    }
}

/// A document as a client supplies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DocumentInput {
    /// Already structured (from flags, or from a JSON-speaking plugin).
    Fields(Value),
    /// YAML text exactly as the user wrote it; the daemon parses it so every
    /// client gets the same rules and the same error messages.
    Yaml(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// Set dotted paths (`progress.percentage`) to values.
    Set(Vec<Assignment>),
    /// Replace the whole document (its id and `created_at` are kept).
    Replace(DocumentInput),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub path: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// Generated (`task-1`, `task-2`, ...) when absent.
    pub id: Option<String>,
    pub title: String,
    /// Ids of tasks in the same milestone that must be completed first.
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Target {
    One(String),
    All,
}

/// One query type for `list` and `search`, executed by each backend its own
/// way. Results are ordered by `sort`, then by id, so every backend returns
/// the same order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Query {
    pub filters: Vec<Filter>,
    /// Case-insensitive words that must all appear in the id, title,
    /// description, category or a task title.
    pub text: Option<String>,
    /// Sort keys, most significant first; empty means newest first.
    pub sort: Vec<SortKey>,
    /// Archived milestones are left out unless this is set or a filter names
    /// the `archived` status.
    pub include_archived: bool,
    pub limit: Option<u64>,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// A dotted path into the document (`status`, `timeline.estimated_hours`).
    pub path: String,
    pub op: FilterOp,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// The string at `path` contains the value, or the list at `path` has it.
    Contains,
    /// The path is present (value `true`) or absent (value `false`).
    Exists,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    pub path: String,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Pong {
        daemon_version: String,
        uptime_ms: u64,
    },
    Document(Value),
    Page(Page),
    Deleted {
        id: String,
        purged: bool,
    },
    Deps(DepsReport),
    Validation(ValidationReport),
    Upgraded(Vec<UpgradeOutcome>),
    Stats(Analytics),
    Backend(BackendInfo),
    Migrated(MigrationReport),
    Status(DaemonStatus),
    /// Events follow on this connection.
    Subscribed,
    DatabaseHealth(Option<DatabaseHealth>),
    Scale(ScaleReport),
    MigrationHistory(Vec<MigrationRecord>),
    MigrationPlan(MigrationPlan),
    MigrationStatus(Option<MigrationProgress>),
    AuditReport(AuditReport),
    Work(WorkReport),
    Imported(ImportReport),
    WorkPage(WorkPage),
    DatabaseTls(Option<DatabaseTls>),
}

/// How the daemon's connection to the database server is secured
/// (`msctl health`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseTls {
    /// `HOST:PORT`, or the socket's path.
    pub host: String,
    /// Whether the server reports this connection as TLS.
    pub encrypted: bool,
    /// The TLS version (`TLSv1.3`), when encrypted.
    pub protocol: Option<String>,
    pub cipher: Option<String>,
    /// The URL's `sslmode` (`prefer` when it gives none, as in libpq).
    pub sslmode: String,
    /// How the server's certificate is checked: `certificate chain and
    /// host name`, `certificate chain`, or that it is not.
    pub checks: String,
}

/// What a batch of `Import` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Documents stored (none with `check_only`).
    pub imported: u64,
    /// The documents refused, each once.
    pub problems: Vec<ImportProblem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportProblem {
    /// The document's position in the batch, from 0.
    pub index: u64,
    pub id: Option<String>,
    pub message: String,
}

/// Open work split by whether anything it needs is unfinished, most urgent
/// first: by priority, then by critical-path length, then by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkReport {
    pub ready: Vec<WorkItem>,
    pub blocked: Vec<WorkItem>,
}

/// A slice of the ready (or blocked) items of a [`WorkReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkPage {
    pub items: Vec<WorkItem>,
    /// How many ready (or blocked) items there are in all.
    pub total: u64,
}

/// One open milestone, or one open task of an open milestone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    pub milestone: String,
    /// The task's id, when the report is of tasks.
    pub task: Option<String>,
    pub title: String,
    pub status: String,
    /// The milestone's priority.
    pub priority: Option<String>,
    /// The longest chain of open work waiting on this one, itself
    /// included: 1 when nothing waits on it.
    pub chain: u64,
    /// What it waits for: the milestones it requires (or, for a task, the
    /// tasks it depends on) that are not completed. Empty when ready.
    pub waiting_on: Vec<String>,
}

/// What `AuditVerify` found in `logs/storage-events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Whether `storage.audit.immutable_logs` is on (entries are sealed).
    pub immutable: bool,
    /// Lines in the log.
    pub entries: u64,
    /// Sealed entries among them.
    pub sealed: u64,
    /// Unsealed lines before the first sealed one (written before the log
    /// became immutable): not checked, and not faults.
    pub before_sealing: u64,
    /// Every entry edited, removed, reordered or added by another writer,
    /// each named once.
    pub problems: Vec<AuditProblem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditProblem {
    /// The line, from 1; 0 for the end of the log.
    pub line: u64,
    /// The entry's number in the chain, when known.
    pub seq: Option<u64>,
    pub message: String,
}

/// A migration under way, as its journal records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationProgress {
    pub from: String,
    pub to: String,
    /// The last step done: `prepared`, `backed_up`, `copying N of M`,
    /// `copied`, `caught_up`, `verified`, `switching`, `switched`.
    pub phase: String,
    /// RFC 3339.
    pub started_at: String,
}

/// One past migration, from the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationRecord {
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: String,
    pub from: String,
    pub to: String,
    /// `completed`, `joined` (a shared database, nothing copied), `failed`,
    /// or `interrupted` (no end was logged: the daemon stopped).
    pub outcome: String,
    pub milestones: Option<u64>,
    /// Relative to the project root.
    pub backup: Option<String>,
    pub duration_ms: Option<u64>,
    /// The longest wait a write had (the final catch-up and switch).
    pub write_stall_ms: Option<u64>,
    pub error: Option<String>,
    /// Who asked: a user, or the scale monitor.
    pub by: String,
}

/// What a migration would do (`msctl migrate --dry-run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationPlan {
    pub from: String,
    pub to: String,
    pub database: Option<String>,
    pub milestones: u64,
    /// The steps, in order, in words.
    pub steps: Vec<String>,
    /// A rough duration, from this project's benchmarks.
    pub estimate_ms: u64,
}

/// What `msctl scale` shows (seed 004's dashboard).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleReport {
    /// `file`, `hybrid` or `database`.
    pub current_backend: String,
    pub optimal_backend: String,
    /// `optimal`, `monitoring` (another backend would fit, not yet with
    /// confidence) or `recommended`.
    pub status: String,
    /// Seed 004's migration confidence, 0–100.
    pub confidence: u64,
    pub confidence_threshold: u64,
    /// Why the optimal backend is what it is.
    pub reason: String,
    pub auto_migrate: bool,
    pub interval_seconds: u64,
    pub metrics: ScaleMetrics,
    pub thresholds: Thresholds,
    /// The latest lines of `logs/scale-events.jsonl`, oldest first.
    pub recent_events: Vec<ScaleEventLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleMetrics {
    pub milestones: u64,
    pub dependencies: u64,
    /// The longest chain of dependencies.
    pub dependency_depth: u64,
    /// Distinct users over the last hour (across daemons on PostgreSQL).
    pub concurrent_users: u64,
    pub data_bytes: u64,
    /// Changes (audit events) over the last hour.
    pub events_per_hour: u64,
    /// Read requests per minute, over the last hour.
    pub queries_per_minute: f64,
    /// Writes per second, over the last minute.
    pub writes_per_second: f64,
    /// Seed 001's complexity score.
    pub complexity_score: f64,
    /// Per request kind, since the daemon started (the last 1,024 of each).
    pub latencies: Vec<Latency>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// `get`, `list`, `create`, ...
    pub request: String,
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// One line of `logs/scale-events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleEventLine {
    pub timestamp: String,
    pub event: String,
    pub current_backend: String,
    pub optimal_backend: String,
}

/// A database server's connection and figures (seed 001's
/// `checkPostgreSQLHealth`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseHealth {
    /// The connection URL with its password masked.
    pub url: String,
    /// `connected`, `reconnecting` or `unreachable`.
    pub connection: String,
    /// Why the server cannot be reached, when it cannot.
    pub error: Option<String>,
    /// True while this daemon hears other daemons' changes (LISTEN).
    pub listening: bool,
    /// The server's version.
    pub server_version: Option<String>,
    pub active_connections: Option<u64>,
    pub total_connections: Option<u64>,
    /// Percent of table blocks read from the server's cache.
    pub cache_hit_ratio: Option<f64>,
    pub locks_waiting: Option<u64>,
    pub database_size_bytes: Option<u64>,
    /// Distinct users seen over the last hour by every daemon on the
    /// database.
    pub concurrent_users: Option<u64>,
}

/// What `msctl daemon status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub daemon_version: String,
    pub protocol_version: u32,
    /// RFC 3339.
    pub started_at: String,
    pub uptime_ms: u64,
    pub backend: String,
    pub database: Option<String>,
    pub milestones: u64,
    pub root: String,
    pub socket: String,
    /// True when the listening socket came from systemd (socket activation).
    pub socket_activated: bool,
    pub log_level: String,
    /// When `storage-config.yaml` was last read (start-up or SIGHUP), RFC 3339.
    pub config_loaded_at: String,
    pub thresholds: Thresholds,
    /// How outside edits to the YAML files are noticed: `notify`, or a
    /// periodic scan (with the reason the watcher could not start).
    pub watching: String,
}

/// `storage-config.yaml`'s `storage.thresholds`: when a bigger backend pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    pub file_to_hybrid_milestones: u64,
    pub hybrid_to_database_milestones: u64,
    pub file_to_hybrid_users: u64,
    pub hybrid_to_database_users: u64,
}

/// What a finished migration did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationReport {
    pub from: String,
    pub to: String,
    /// `sqlite` when the target is the database backend.
    pub database: Option<String>,
    /// Milestones copied and verified.
    pub milestones: u64,
    /// The backup taken first, relative to the project root.
    pub backup: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<Value>,
    /// How many milestones matched before `limit` and `offset`.
    pub total: u64,
}

/// An edge `from` requires `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DepEdge {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepsReport {
    pub milestones: u64,
    pub edges: Vec<DepEdge>,
    /// Edges whose target does not exist.
    pub missing: Vec<DepEdge>,
    /// Each cycle as the ids along it, first id repeated at the end.
    pub cycles: Vec<Vec<String>>,
    /// The longest chain of requirements, from the first milestone to do to
    /// the last.
    pub critical_path: Vec<String>,
    pub focus: Option<DepsFocus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepsFocus {
    pub id: String,
    /// Everything `id` needs, directly or through others.
    pub requires: Vec<String>,
    /// Everything that needs `id`, directly or through others.
    pub required_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub checked: u64,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub id: Option<String>,
    /// The file, relative to the project root, for problems found on disk.
    pub file: Option<String>,
    pub severity: Severity,
    pub field: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpgradeOutcome {
    pub id: String,
    /// The top-level sections that were added.
    pub added: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analytics {
    pub total: u64,
    pub by_status: Vec<Count>,
    pub by_priority: Vec<Count>,
    pub by_category: Vec<Count>,
    pub completed: u64,
    pub average_completion_days: Option<f64>,
    pub median_completion_days: Option<f64>,
    pub tasks_total: u64,
    pub tasks_completed: u64,
    pub dependencies: DependencyFigures,
    /// The last 30 days, oldest first, today last (UTC).
    pub per_day: Vec<DayCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub key: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyFigures {
    pub total: u64,
    pub milestones_with_dependencies: u64,
    pub max_per_milestone: u64,
    /// Milestones on the longest requirement chain.
    pub longest_chain: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`
    pub date: String,
    pub created: u64,
    pub completed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `file`, `hybrid` or `database`.
    pub backend: String,
    /// `sqlite` or `postgresql` for the database backend.
    pub database: Option<String>,
    pub milestones: u64,
    pub root: String,
    pub socket: String,
}

/// A structured error: what kind, a sentence for people, and the offending
/// field where there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub kind: ErrorKind,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The milestone (or task) does not exist.
    NotFound,
    /// An id that breaks the rules of DESIGN §4.
    InvalidId,
    /// A value, document or query that cannot be accepted.
    InvalidInput,
    /// The id is taken.
    AlreadyExists,
    /// The change would make the dependency graph cyclic.
    DependencyCycle,
    /// A frame or message that could not be read.
    Protocol,
    /// A frame over the size limit.
    TooLarge,
    /// The daemon has no room for another connection.
    Busy,
    /// The peer is not allowed to talk to this daemon.
    PermissionDenied,
    /// The disk or database failed.
    Storage,
    /// A bug in the daemon.
    Internal,
    /// The change collides with another: the milestone's file was edited
    /// outside milestoned and not yet taken in, or other writers kept
    /// changing it. Read it again and retry.
    Conflict,
    /// The storage cannot answer now (a busy database, a server that is
    /// down) but may soon: retry.
    Unavailable,
}

impl ErrorInfo {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorInfo { kind, message: message.into(), field: None }
    }

    /// The same error in the kinds a client without the `conflict-errors`
    /// capability knows: `Conflict` reads as `Busy`, `Unavailable` as
    /// `Storage`.
    pub fn for_older_clients(self) -> Self {
        let kind = match self.kind {
            ErrorKind::Conflict => ErrorKind::Busy,
            ErrorKind::Unavailable => ErrorKind::Storage,
            other => other,
        };
        ErrorInfo { kind, ..self }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorInfo {}
