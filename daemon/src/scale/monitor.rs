//! `ScaleMonitor`: the loop in the daemon that, every
//! `monitoring.interval_seconds`, measures the project through the service,
//! appends the figures to `logs/performance-metrics.jsonl`, and acts on
//! the decision: with `auto_migrate` on it migrates once the recommendation
//! has held for `migration_delay_seconds` inside `window_hours` (and no
//! milestone forbids it, and, in a git work tree, only to a tier that keeps
//! the YAML files unless `database_in_git` says otherwise); with it off it
//! writes `config/migration-notification.yaml`. Every decision is a line of
//! `logs/scale-events.jsonl` (seed 004's shapes). A migration, either way,
//! starts the grace period over, so a project near a threshold never flaps.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::log::{append_line, scale_event};
use crate::layout::ProjectLayout;
use crate::service::{MilestoneService, ScaleView};
use crate::stoppable::StoppableThread;

/// How often the loop looks up from sleeping to see whether to stop.
const TICK: Duration = Duration::from_millis(100);

pub struct ScaleMonitor(StoppableThread);

/// What the loop remembers between cycles.
#[derive(Default)]
struct Memory {
    /// The backend recommended, and since when (the grace period runs
    /// from there).
    recommended_since: Option<(String, Instant)>,
    /// The last event written and its reason: the same is not repeated.
    last_event: Option<(String, String)>,
}

impl ScaleMonitor {
    pub fn start(service: Arc<MilestoneService>, layout: ProjectLayout) -> ScaleMonitor {
        let failure = "cannot start the scale monitor";
        ScaleMonitor(StoppableThread::spawn("scale-monitor", failure, move |stop| run(&service, &layout, stop)))
    }

    /// Stops the loop, after the cycle in progress (a migration it started
    /// finishes first).
    pub fn stop(self) {
        self.0.stop();
    }
}

fn run(service: &MilestoneService, layout: &ProjectLayout, stop: &AtomicBool) {
    let mut memory = Memory::default();
    scale_event(layout, "scale_detection_initialized", service.backend_name(), "", json!({}));
    while !stop.load(Ordering::Relaxed) {
        let interval = Duration::from_secs(service.scale_settings().interval_seconds);
        let started = Instant::now();
        while started.elapsed() < interval {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(TICK.min(interval));
        }
        cycle(service, layout, &mut memory);
    }
}

/// One measurement and what follows from it.
fn cycle(service: &MilestoneService, layout: &ProjectLayout, memory: &mut Memory) {
    let started = Instant::now();
    let view = match service.observe_scale() {
        Ok(view) => view,
        Err(e) => {
            tracing::warn!(error = %e, "the scale monitor cannot measure the project");
            return;
        }
    };
    append_line(&layout.performance_metrics(), &metrics_line(&view, started.elapsed()));
    let report = &view.report;
    let (current, optimal) = (report.current_backend.as_str(), report.optimal_backend.as_str());
    match report.status.as_str() {
        "optimal" => {
            memory.recommended_since = None;
            note(layout, memory, "scale_optimal", current, optimal, &report.reason, json!({}));
        }
        "monitoring" => {
            memory.recommended_since = None;
            let details = json!({ "confidence": report.confidence, "reason": report.reason });
            note(layout, memory, "migration_monitoring", current, optimal, &report.reason, details);
        }
        _ => recommended(service, layout, memory, &view),
    }
}

fn recommended(service: &MilestoneService, layout: &ProjectLayout, memory: &mut Memory, view: &ScaleView) {
    let report = &view.report;
    let (current, optimal) = (report.current_backend.as_str(), report.optimal_backend.as_str());
    let since = match &memory.recommended_since {
        Some((target, since)) if target == optimal => *since,
        _ => {
            let now = Instant::now();
            memory.recommended_since = Some((optimal.to_owned(), now));
            now
        }
    };
    let details = json!({ "confidence": report.confidence, "reason": report.reason });
    note(layout, memory, "migration_recommended", current, optimal, &report.reason, details);
    let settings = service.scale_settings();
    if !settings.auto_migrate {
        if let Err(e) = write_notification(layout, view) {
            tracing::warn!(error = %e, "cannot write the migration notification");
        }
        let file = layout.relative(&layout.migration_notification()).display().to_string();
        note(layout, memory, "migration_notification", current, optimal, &file, json!({ "file": file }));
        return;
    }
    // In a git work tree the YAML files are what the team shares: the
    // database tier (which keeps none) waits for the configuration to say
    // so, and a project on files goes as far as hybrid meanwhile.
    let git_holds = optimal == "database" && !settings.database_in_git && in_git_work_tree(layout.root());
    let target = if git_holds && current == "file" { "hybrid" } else { optimal };
    let waited = since.elapsed();
    let held = if waited < Duration::from_secs(settings.delay_seconds) {
        Some(format!("the grace period: {} s of {} s", waited.as_secs(), settings.delay_seconds))
    } else if !in_window(settings.window_hours, chrono::Local::now().time()) {
        settings.window_hours.map(|(from, to)| format!("the migration window, {from}:00 to {to}:00"))
    } else if git_holds && target == "database" {
        Some("a git work tree: the database tier keeps no YAML files (set migration.database_in_git)".to_owned())
    } else {
        match service.auto_migration_refusals() {
            Ok(0) => None,
            Ok(n) => Some(format!("{n} milestone(s) with storage.backend.allow_auto_migration: false")),
            Err(e) => Some(format!("cannot check allow_auto_migration: {e}")),
        }
    };
    if let Some(reason) = held {
        note(layout, memory, "migration_held", current, optimal, &reason, json!({ "waiting_for": reason }));
        return;
    }
    note(layout, memory, "auto_migration_started", current, target, "", json!({ "confidence": report.confidence }));
    let outcome = service.migrate_automatically(target);
    // Whatever happened, a next migration needs the grace period again.
    memory.recommended_since = None;
    match outcome {
        Ok(done) => {
            tracing::info!(from = %done.from, to = %done.to, milestones = done.milestones, "automatic migration finished");
            note(layout, memory, "auto_migration_completed", current, target, "", json!({ "report": done }));
        }
        Err(e) => {
            tracing::warn!(error = %e, "automatic migration failed; the backend is unchanged");
            let reason = e.to_string();
            note(layout, memory, "auto_migration_failed", current, target, &reason, json!({ "error": reason }));
        }
    }
}

/// Writes a scale event unless it is the one written last, for the same
/// reason.
fn note(
    layout: &ProjectLayout,
    memory: &mut Memory,
    event: &str,
    current: &str,
    optimal: &str,
    why: &str,
    details: Value,
) {
    let key = (format!("{event} {current} {optimal}"), why.to_owned());
    if memory.last_event.as_ref() == Some(&key) {
        return;
    }
    memory.last_event = Some(key);
    scale_event(layout, event, current, optimal, details);
}

/// Seed 004's performance-metrics entry, with the daemon's own figures.
fn metrics_line(view: &ScaleView, took: Duration) -> Value {
    let r = &view.report;
    let m = &r.metrics;
    let mean = |kinds: &[&str]| {
        let (sum, n) = m
            .latencies
            .iter()
            .filter(|l| kinds.contains(&l.request.as_str()))
            .fold((0.0, 0u64), |(s, n), l| (s + l.mean_ms * l.count as f64, n + l.count));
        if n == 0 {
            0.0
        } else {
            sum / n as f64
        }
    };
    let latencies: serde_json::Map<String, Value> = m
        .latencies
        .iter()
        .map(|l| {
            let figures = json!({ "count": l.count, "p50_ms": l.p50_ms, "p90_ms": l.p90_ms, "p95_ms": l.p95_ms, "p99_ms": l.p99_ms });
            (l.request.clone(), figures)
        })
        .collect();
    json!({
        "timestamp": crate::document::now_timestamp(),
        "backend": r.current_backend,
        "performance": {
            "avg_read_time_ms": mean(&["get"]),
            "avg_write_time_ms": mean(&["create", "update", "delete", "complete", "task_add", "task_set_status"]),
            "avg_query_time_ms": view.figures.mean_query.map_or(0.0, |d| d.as_secs_f64() * 1e3),
            "latencies": latencies,
        },
        "scale": {
            "milestone_count": m.milestones,
            "concurrent_users": m.concurrent_users,
            "complexity_score": m.complexity_score,
            "dependencies": m.dependencies,
            "dependency_depth": m.dependency_depth,
            "data_bytes": m.data_bytes,
            "events_per_hour": m.events_per_hour,
            "queries_per_minute": m.queries_per_minute,
            "writes_per_second": m.writes_per_second,
        },
        "decision": { "optimal_backend": r.optimal_backend, "status": r.status, "confidence": r.confidence },
        "cycle_ms": took.as_secs_f64() * 1e3,
    })
}

/// Seed 004's `migration-notification.yaml`.
fn write_notification(layout: &ProjectLayout, view: &ScaleView) -> Result<(), crate::atomic::FileError> {
    let r = &view.report;
    let m = &r.metrics;
    let text = format!(
        "migration_recommendation:\n  timestamp: \"{}\"\n  current_backend: \"{}\"\n  recommended_backend: \"{}\"\n  \
         reason: {}\n  confidence: {}\n\nmetrics:\n  milestone_count: {}\n  concurrent_users: {}\n  \
         complexity_score: {:.1}\n  avg_query_time_ms: {:.1}\n\nactions:\n  manual_command: \"msctl migrate {}\"\n  \
         auto_enable: \"Update storage-config.yaml: migration.auto_migrate = true\"\n\nrisk_assessment:\n  \
         migration_time_estimate: \"{}\"\n  downtime_required: false\n  rollback_available: true\n",
        crate::document::now_timestamp(),
        r.current_backend,
        r.optimal_backend,
        serde_json::Value::from(r.reason.clone()),
        r.confidence,
        m.milestones,
        m.concurrent_users,
        m.complexity_score,
        view.figures.mean_query.map_or(0.0, |d| d.as_secs_f64() * 1e3),
        r.optimal_backend,
        estimate(m.milestones),
    );
    crate::atomic::write_atomically(&layout.config(), "migration-notification.yaml", text.as_bytes())
}

/// A rough duration for the copy, from this project's benchmarks (about
/// 1,000 to 2,000 milestones a second).
fn estimate(milestones: u64) -> String {
    match milestones / 1_000 {
        0 => "under 5 seconds".to_owned(),
        s if s < 60 => format!("about {}–{} seconds", s.max(1), 2 * s.max(1)),
        s => format!("about {}–{} minutes", s / 60, (2 * s).div_ceil(60)),
    }
}

/// True when `now` is inside `[from, to)` (which may wrap past midnight);
/// any time without a window.
fn in_window(window: Option<(u32, u32)>, now: chrono::NaiveTime) -> bool {
    use chrono::Timelike;
    let hour = now.hour();
    match window {
        None => true,
        Some((from, to)) if from <= to => (from..to).contains(&hour),
        Some((from, to)) => hour >= from || hour < to,
    }
}

fn in_git_work_tree(root: &Path) -> bool {
    root.ancestors().any(|dir| dir.join(".git").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_may_wrap_past_midnight() {
        let at = |h| chrono::NaiveTime::from_hms_opt(h, 30, 0).unwrap();
        assert!(in_window(None, at(13)));
        assert!(in_window(Some((2, 6)), at(2)) && !in_window(Some((2, 6)), at(6)));
        assert!(in_window(Some((22, 4)), at(23)) && in_window(Some((22, 4)), at(1)));
        assert!(!in_window(Some((22, 4)), at(12)));
    }
}
