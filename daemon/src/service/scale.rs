//! The scale monitor's view of the project: `Scale` requests, and each
//! monitor cycle's figures and decision ([`MilestoneService::observe_scale`]).
//! The decision rules themselves are in `scale::decision`; this file
//! gathers what they are made from: the storage's counts and size, the
//! dependency graph, the requests the daemon measured, and how long the
//! project has been on its backend.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use milestones_protocol::{
    BackendTarget, Filter, FilterOp, Latency, MigrationReport, Query, ScaleEventLine, ScaleMetrics, ScaleReport, Value,
};

use super::{MilestoneService, ServiceError, ServiceResult};
use crate::atomic::FileError;
use crate::peer::Peer;
use crate::scale::decision::{self, Decision, Figures, Trend};
use crate::storage::StorageError;

/// Monitor cycles whose query latency makes the performance trend.
const TREND_CYCLES: usize = 10;

/// Scale events shown by `msctl scale`.
const RECENT_EVENTS: usize = 5;

/// One monitor cycle's view: the report, and what the decision was made of.
pub struct ScaleView {
    pub report: ScaleReport,
    pub figures: Figures,
    pub decision: Decision,
}

impl MilestoneService {
    /// Records one request's latency, for the monitor.
    pub fn record_request(&self, kind: &'static str, user: &str, took: Duration, writes: bool) {
        self.metrics.record(kind, user, took, writes);
    }

    /// `Scale`: the monitor's view, as of now.
    pub(super) fn scale(&self) -> ServiceResult<ScaleReport> {
        Ok(self.view_scale(false)?.report)
    }

    /// A monitor cycle: the view, with this cycle's query latency added to
    /// the performance trend.
    pub fn observe_scale(&self) -> ServiceResult<ScaleView> {
        self.view_scale(true)
    }

    fn view_scale(&self, observe: bool) -> ServiceResult<ScaleView> {
        let storage = self.storage();
        let config = self.config();
        let requests = self.metrics.figures();
        let graph = storage.dependency_graph()?;
        let mut users = requests.users_last_hour.len() as u64;
        // On a shared database, the users of every daemon.
        if let Some(across) = storage.database_health().and_then(|h| h.concurrent_users) {
            users = users.max(across);
        }
        let figures = Figures {
            milestones: storage.count()?,
            users,
            dependencies: graph.edges().len() as u64,
            dependency_depth: graph.longest_chain(),
            data_bytes: storage.data_bytes()?,
            queries_per_minute: requests.reads_per_minute,
            writes_per_second: requests.writes_per_second,
            mean_query: requests.mean_query,
        };
        let trend = {
            let mut history = self.query_history.lock().unwrap_or_else(|p| p.into_inner());
            // A cycle without queries says nothing of their speed.
            if let (true, Some(mean)) = (observe, figures.mean_query) {
                if history.len() == TREND_CYCLES {
                    history.pop_front();
                }
                history.push_back(mean.as_secs_f64() * 1e3);
            }
            Trend::of(history.make_contiguous())
        };
        let current = storage.kind().name();
        let decision = decision::decide(current, &figures, &config.thresholds, self.time_on_backend(), trend);
        let status = if decision.optimal == current {
            "optimal"
        } else if decision.confidence >= config.scale.confidence_threshold {
            "recommended"
        } else {
            "monitoring"
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let report = ScaleReport {
            current_backend: current.to_owned(),
            optimal_backend: decision.optimal.to_owned(),
            status: status.to_owned(),
            confidence: decision.confidence,
            confidence_threshold: config.scale.confidence_threshold,
            reason: decision.reason.clone(),
            auto_migrate: config.scale.auto_migrate,
            interval_seconds: config.scale.interval_seconds,
            metrics: ScaleMetrics {
                milestones: figures.milestones,
                dependencies: figures.dependencies,
                dependency_depth: figures.dependency_depth,
                concurrent_users: figures.users,
                data_bytes: figures.data_bytes,
                events_per_hour: requests.writes_last_hour,
                queries_per_minute: figures.queries_per_minute,
                writes_per_second: figures.writes_per_second,
                complexity_score: decision::complexity(&figures),
                latencies: requests
                    .latencies
                    .iter()
                    .map(|l| Latency {
                        request: l.kind.clone(),
                        count: l.count,
                        mean_ms: ms(l.mean),
                        p50_ms: ms(l.percentiles[0]),
                        p90_ms: ms(l.percentiles[1]),
                        p95_ms: ms(l.percentiles[2]),
                        p99_ms: ms(l.percentiles[3]),
                    })
                    .collect(),
            },
            thresholds: config.thresholds,
            recent_events: self.recent_scale_events()?,
        };
        Ok(ScaleView { report, figures, decision })
    }

    /// What the monitor acts on: the settings as last read.
    pub fn scale_settings(&self) -> crate::config::ScaleSettings {
        self.config().scale
    }

    /// How many milestones say `storage.backend.allow_auto_migration:
    /// false` (any one keeps automatic migrations off).
    pub fn auto_migration_refusals(&self) -> ServiceResult<u64> {
        let filter =
            Filter { path: "storage.backend.allow_auto_migration".into(), op: FilterOp::Eq, value: Value::Bool(false) };
        let query = Query { filters: vec![filter], include_archived: true, limit: Some(0), ..Query::default() };
        Ok(self.storage().query(&query)?.total)
    }

    /// A migration the monitor decided on, to the tier named `to` (the
    /// database tier on the engine `storage-config.yaml` names).
    pub fn migrate_automatically(&self, to: &str) -> ServiceResult<MigrationReport> {
        let target = match to {
            "file" => BackendTarget::File,
            "hybrid" => BackendTarget::Hybrid,
            _ => BackendTarget::Database(self.config().database.kind().map_err(ServiceError::invalid)?),
        };
        self.migrate(target, None, &Peer::daemon("milestoned (scale monitor)"))
    }

    /// How long `storage-backend.txt` has named the current backend (its
    /// age, as seed 004 measures it).
    fn time_on_backend(&self) -> Duration {
        std::fs::metadata(self.layout.backend_file())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default()
    }

    /// The last lines of `logs/scale-events.jsonl` (read from its end: the
    /// file only grows).
    fn recent_scale_events(&self) -> ServiceResult<Vec<ScaleEventLine>> {
        let path = self.layout.scale_events();
        let failed = |e| ServiceError::from(StorageError::from(FileError::new("read", &path, e)));
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(failed(e)),
        };
        let len = file.metadata().map_err(failed)?.len();
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))
            .and_then(|_| file.read_to_end(&mut tail))
            .map_err(failed)?;
        let tail = String::from_utf8_lossy(&tail);
        let mut events: VecDeque<ScaleEventLine> = VecDeque::new();
        // A line cut by the seek, or one that is not the monitor's, is passed over.
        for line in tail.lines() {
            if let Ok(event) = serde_json::from_str::<ScaleEventLine>(line) {
                if events.len() == RECENT_EVENTS {
                    events.pop_front();
                }
                events.push_back(event);
            }
        }
        Ok(events.into())
    }
}
