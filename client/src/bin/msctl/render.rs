//! Output: exact JSON for scripts, tables and sentences for people.

use milestones_client::protocol::{
    Analytics, AuditReport, BackendInfo, ChangeEvent, DaemonStatus, DatabaseHealth, DatabaseTls, DepsReport,
    EventSource, Map, MigrationPlan, MigrationProgress, MigrationRecord, MigrationReport, Page, ScaleReport, Severity,
    UpgradeOutcome, ValidationReport, Value, WorkItem, WorkPage,
};
use serde::Serialize;

pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON with `--json`, else the human text.
    pub fn print_json_or<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        } else {
            println!("{}", human());
        }
    }

    /// Like [`Output::print_json_or`], but JSON on one line (JSON Lines,
    /// for streams).
    fn print_line<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string(value).unwrap_or_default());
        } else {
            println!("{}", human());
        }
    }

    pub fn document(&self, doc: &Map) {
        if self.json {
            self.print_json_or(doc, String::new);
        } else {
            print!("{}", serde_norway::to_string(doc).unwrap_or_default());
        }
    }

    pub fn document_id(&self, doc: &Map) {
        self.print_json_or(doc, || text(doc, "id").to_owned());
    }

    pub fn changed(&self, doc: &Map, verb: &str) {
        self.print_json_or(doc, || {
            let progress = doc
                .pointer("progress.percentage")
                .and_then(Value::as_f64)
                .map(|p| format!(", {p}% done"))
                .unwrap_or_default();
            format!("{verb} {} (status {}{progress})", text(doc, "id"), text(doc, "status"))
        });
    }

    pub fn page(&self, page: &Page) {
        if self.json {
            self.print_json_or(&page.items, String::new);
            return;
        }
        if page.items.is_empty() {
            println!("no milestones match");
            return;
        }
        let rows: Vec<[String; 5]> = page
            .items
            .iter()
            .filter_map(Value::as_map)
            .map(|d| {
                let pct = d
                    .pointer("progress.percentage")
                    .and_then(Value::as_f64)
                    .map(|p| format!("{p}%"))
                    .unwrap_or_default();
                [
                    text(d, "id").into(),
                    text(d, "status").into(),
                    text(d, "priority").into(),
                    pct,
                    text(d, "title").into(),
                ]
            })
            .collect();
        print_table(&["ID", "STATUS", "PRIORITY", "DONE", "TITLE"], &rows, Some(1));
        if page.total > page.items.len() as u64 {
            println!("({} of {} shown; use --limit and --offset for more)", page.items.len(), page.total);
        }
    }

    pub fn deps(&self, report: &DepsReport) {
        self.print_json_or(report, || {
            let mut out = Vec::new();
            if let Some(focus) = &report.focus {
                out.push(format!("{} requires: {}", focus.id, list_or_none(&focus.requires)));
                out.push(format!("{} is required by: {}", focus.id, list_or_none(&focus.required_by)));
            } else {
                out.push(format!("{} milestones, {} dependencies", report.milestones, report.edges.len()));
                for e in &report.edges {
                    out.push(format!("  {} requires {}", e.from, e.to));
                }
            }
            out.push(format!(
                "critical path: {}",
                if report.critical_path.is_empty() { "none".into() } else { report.critical_path.join(" -> ") }
            ));
            if report.cycles.is_empty() {
                out.push("cycles: none".into());
            }
            for c in &report.cycles {
                out.push(format!("cycle: {}", c.join(" -> ")));
            }
            for e in &report.missing {
                out.push(format!("missing: {} requires {}, which does not exist", e.from, e.to));
            }
            out.join("\n")
        });
    }

    /// `msctl ready` (the ready items) or `msctl blocked` (the blocked ones,
    /// with what each waits on).
    pub fn work(&self, page: &WorkPage, blocked: bool) {
        let items = &page.items;
        if self.json {
            return self.print_json_or(&items, String::new);
        }
        if items.is_empty() {
            return println!("{}", if blocked { "nothing is blocked" } else { "nothing is ready to work on" });
        }
        let id = |i: &WorkItem| match &i.task {
            Some(task) => format!("{} {task}", i.milestone),
            None => i.milestone.clone(),
        };
        let priority = |i: &WorkItem| i.priority.clone().unwrap_or_else(|| "-".into());
        if blocked {
            let rows: Vec<[String; 4]> =
                items.iter().map(|i| [id(i), priority(i), i.waiting_on.join(", "), i.title.clone()]).collect();
            print_table(&["ID", "PRIORITY", "WAITING ON", "TITLE"], &rows, None);
        } else {
            let rows: Vec<[String; 5]> = items
                .iter()
                .map(|i| [id(i), priority(i), i.chain.to_string(), i.status.clone(), i.title.clone()])
                .collect();
            print_table(&["ID", "PRIORITY", "CHAIN", "STATUS", "TITLE"], &rows, Some(3));
        }
        if page.total > items.len() as u64 {
            println!("({} of {} shown; use --limit and --offset, or --all, for more)", items.len(), page.total);
        }
    }

    pub fn health(
        &self,
        status: &DaemonStatus,
        database: Option<&DatabaseHealth>,
        tls: Option<&DatabaseTls>,
        report: &ValidationReport,
        advice: &[String],
    ) {
        let errors = report.problems.iter().filter(|p| p.severity == Severity::Error).count();
        let connected = database.is_none_or(|d| d.connection == "connected");
        let value = serde_json::json!({
            "healthy": errors == 0 && connected,
            "database_server": database,
            "database_connection": tls,
            "backend": status.backend,
            "database": status.database,
            "milestones": status.milestones,
            "watching": status.watching,
            "daemon_version": status.daemon_version,
            "uptime_ms": status.uptime_ms,
            "problems": report.problems,
            "recommendations": advice,
        });
        self.print_json_or(&value, || {
            let db = status.database.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            let mut lines = vec![
                match (errors, connected) {
                    (0, true) => crate::terminal::paint("healthy", "32"),
                    (0, false) => crate::terminal::paint("the database server cannot be reached", "31"),
                    _ => crate::terminal::paint(&format!("{errors} problem(s)"), "31"),
                },
                format!(
                    "backend: {}{db}, {} milestones; watching: {}",
                    status.backend, status.milestones, status.watching
                ),
            ];
            if let Some(d) = database {
                lines.push(database_lines(d));
            }
            if let Some(t) = tls {
                lines.push(match (&t.protocol, &t.cipher) {
                    (Some(protocol), Some(cipher)) if t.encrypted => format!(
                        "connection to {}: encrypted ({protocol}, {cipher}); server checked: {}",
                        t.host, t.checks
                    ),
                    _ if t.encrypted => format!("connection to {}: encrypted; server checked: {}", t.host, t.checks),
                    _ => format!("connection to {}: not encrypted (sslmode={})", t.host, t.sslmode),
                });
            }
            for p in &report.problems {
                let whom = p.file.clone().or_else(|| p.id.clone()).unwrap_or_else(|| "-".into());
                lines.push(format!("  {whom}: {}", p.message));
            }
            lines.extend(advice.iter().map(|a| format!("- {a}")));
            lines.join("\n")
        });
    }

    /// `msctl migrate --dry-run`.
    pub fn migration_plan(&self, plan: &MigrationPlan) {
        self.print_json_or(plan, || {
            let db = plan.database.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            let mut lines = vec![format!(
                "migrating {} milestones from {} to {}{db} would take about {:.1} s:",
                plan.milestones,
                plan.from,
                plan.to,
                plan.estimate_ms as f64 / 1000.0
            )];
            lines.extend(plan.steps.iter().enumerate().map(|(i, s)| format!("  {}. {s}", i + 1)));
            lines.push("nothing was changed (--dry-run)".to_owned());
            lines.join("\n")
        });
    }

    /// `msctl migrate status`.
    pub fn migration_status(&self, progress: Option<&MigrationProgress>) {
        self.print_json_or(&progress, || match progress {
            None => "no migration in progress".to_owned(),
            Some(p) => format!(
                "migrating from {} to {} since {}: {} done",
                p.from,
                p.to,
                p.started_at,
                p.phase.replace('_', " ")
            ),
        });
    }

    /// `msctl migrate history`.
    pub fn migration_history(&self, records: &[MigrationRecord]) {
        if self.json {
            return self.print_json_or(&records, String::new);
        }
        if records.is_empty() {
            println!("no migrations yet");
            return;
        }
        let rows: Vec<[String; 6]> = records
            .iter()
            .map(|r| {
                let what = match (&r.error, r.milestones) {
                    (Some(e), _) => e.clone(),
                    (None, Some(n)) => format!(
                        "{n} milestones in {:.1} s{}",
                        r.duration_ms.unwrap_or(0) as f64 / 1000.0,
                        r.write_stall_ms.map(|s| format!(", writes held {s} ms")).unwrap_or_default()
                    ),
                    (None, None) => String::new(),
                };
                [
                    r.started_at.clone(),
                    format!("{} → {}", r.from, r.to),
                    r.outcome.clone(),
                    r.by.clone(),
                    r.backup.clone().unwrap_or_else(|| "-".to_owned()),
                    what,
                ]
            })
            .collect();
        print_table(&["STARTED", "MOVE", "OUTCOME", "BY", "BACKUP", "WHAT"], &rows, None);
    }

    /// `msctl scale`: seed 004's dashboard.
    /// `msctl audit verify`.
    pub fn audit(&self, r: &AuditReport) {
        self.print_json_or(r, || {
            let mut lines = vec![match (r.immutable, r.problems.len()) {
                (false, _) if r.sealed == 0 => format!(
                    "the audit log is not sealed ({} entries); `storage.audit.immutable_logs: true` seals new entries",
                    r.entries
                ),
                (_, 0) => format!("the audit log is intact: {} sealed entries verified", r.sealed),
                (_, n) => format!("the audit log was tampered with: {n} problem(s) in {} sealed entries", r.sealed),
            }];
            if r.before_sealing > 0 {
                lines.push(format!(
                    "({} earlier entries were written before sealing began, and are not checked)",
                    r.before_sealing
                ));
            }
            lines.extend(r.problems.iter().map(|p| format!("  {}", p.message)));
            lines.join("\n")
        });
    }

    pub fn scale(&self, r: &ScaleReport) {
        self.print_json_or(r, || {
            let m = &r.metrics;
            let t = &r.thresholds;
            let mut lines = vec!["=== MILESTONE SCALE DETECTION DASHBOARD ===".to_owned(), String::new()];
            lines.push(format!("Current Storage Backend: {}", r.current_backend));
            lines.push(format!("Optimal Backend: {}", r.optimal_backend));
            lines.push(match r.status.as_str() {
                "optimal" => "Migration Status: OPTIMAL".to_owned(),
                status => format!(
                    "Migration Status: {} ({} → {})",
                    status.to_uppercase(),
                    r.current_backend,
                    r.optimal_backend
                ),
            });
            if r.status != "optimal" {
                lines.push(format!(
                    "Migration Confidence: {}% (recommended at {}%)",
                    r.confidence, r.confidence_threshold
                ));
            }
            lines.push(format!("Why: {}", r.reason));
            let acting =
                if r.auto_migrate { "migrates automatically" } else { "writes config/migration-notification.yaml" };
            lines.push(format!("Monitor: every {} s; {acting}", r.interval_seconds));
            lines.push(String::new());
            lines.push("SCALE METRICS:".to_owned());
            lines.push(format!("├── Milestones: {}", m.milestones));
            lines.push(format!("├── Dependencies: {} (longest chain {})", m.dependencies, m.dependency_depth));
            lines.push(format!("├── Concurrent Users: {} (last hour)", m.concurrent_users));
            lines.push(format!("├── Data Volume: {:.1} MiB", m.data_bytes as f64 / 1048576.0));
            lines.push(format!(
                "├── Activity: {} changes in the last hour, {:.1} queries/min, {:.2} writes/s",
                m.events_per_hour, m.queries_per_minute, m.writes_per_second
            ));
            lines.push(format!("└── Complexity Score: {:.1}", m.complexity_score));
            lines.push(String::new());
            lines.push("PERFORMANCE METRICS (ms: mean, p50, p90, p95, p99):".to_owned());
            if m.latencies.is_empty() {
                lines.push("└── no requests yet".to_owned());
            }
            for (i, l) in m.latencies.iter().enumerate() {
                let branch = if i + 1 == m.latencies.len() { "└──" } else { "├──" };
                lines.push(format!(
                    "{branch} {:<16} {:>7} × {:.2}, {:.2}, {:.2}, {:.2}, {:.2}",
                    l.request, l.count, l.mean_ms, l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms
                ));
            }
            lines.push(String::new());
            lines.push("SCALE THRESHOLDS:".to_owned());
            lines.push(format!(
                "├── File → Hybrid: {} milestones or {} users",
                t.file_to_hybrid_milestones, t.file_to_hybrid_users
            ));
            lines.push(format!(
                "└── Hybrid → Database: {} milestones or {} users",
                t.hybrid_to_database_milestones, t.hybrid_to_database_users
            ));
            lines.push(String::new());
            lines.push("RECENT SCALE EVENTS:".to_owned());
            if r.recent_events.is_empty() {
                lines.push("No scale events recorded".to_owned());
            }
            for e in &r.recent_events {
                lines.push(format!("{} {}: {} → {}", e.timestamp, e.event, e.current_backend, e.optimal_backend));
            }
            lines.push("=================================".to_owned());
            lines.join("\n")
        });
    }

    /// `msctl health` when the database server cannot be reached.
    pub fn database_unreachable(&self, database: &DatabaseHealth) {
        let value = serde_json::json!({ "healthy": false, "database_server": database });
        self.print_json_or(&value, || {
            format!(
                "the database server cannot be reached\n{}\n- the daemon reconnects by itself (with backoff) once the \
                 server answers again; requests fail with exit 7 meanwhile",
                database_lines(database)
            )
        });
    }

    pub fn validation(&self, report: &ValidationReport) {
        self.print_json_or(report, || {
            let mut out = Vec::new();
            for p in &report.problems {
                let severity = if p.severity == Severity::Error { "error" } else { "warning" };
                let whom = match (&p.id, &p.file) {
                    (_, Some(file)) => file.clone(),
                    (Some(id), None) => id.clone(),
                    (None, None) => "-".into(),
                };
                let field = p.field.as_deref().map(|f| format!(" [{f}]")).unwrap_or_default();
                out.push(format!("{severity}: {whom}{field}: {}", p.message));
            }
            let errors = report.problems.iter().filter(|p| p.severity == Severity::Error).count();
            let warnings = report.problems.len() - errors;
            out.push(format!("checked {} milestone(s): {errors} error(s), {warnings} warning(s)", report.checked));
            out.join("\n")
        });
    }

    pub fn upgraded(&self, outcomes: &[UpgradeOutcome]) {
        self.print_json_or(&outcomes, || {
            if outcomes.is_empty() {
                return "every milestone already has every enhanced section".into();
            }
            outcomes
                .iter()
                .map(|o| {
                    if o.added.is_empty() {
                        format!("{} already has every enhanced section", o.id)
                    } else {
                        format!("upgraded {}: added {}", o.id, o.added.join(", "))
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
    }

    pub fn stats(&self, s: &Analytics) {
        self.print_json_or(s, || {
            let counts = |c: &[milestones_client::protocol::Count]| {
                c.iter().map(|c| format!("{} {}", c.key, c.count)).collect::<Vec<_>>().join(", ")
            };
            let days = |d: Option<f64>| d.map(|d| format!("{d:.1} days")).unwrap_or_else(|| "-".into());
            let created: u64 = s.per_day.iter().map(|d| d.created).sum();
            let completed: u64 = s.per_day.iter().map(|d| d.completed).sum();
            let d = &s.dependencies;
            let mut out = vec![
                format!("milestones:    {} ({} completed)", s.total, s.completed),
                format!("by status:     {}", counts(&s.by_status)),
                format!("by priority:   {}", counts(&s.by_priority)),
                format!("by category:   {}", counts(&s.by_category)),
                format!(
                    "completion:    average {}, median {}",
                    days(s.average_completion_days),
                    days(s.median_completion_days)
                ),
                format!("tasks:         {} of {} completed", s.tasks_completed, s.tasks_total),
                format!(
                    "dependencies:  {} total, {} milestones with some, at most {} on one, longest chain {}",
                    d.total, d.milestones_with_dependencies, d.max_per_milestone, d.longest_chain
                ),
                format!("last 30 days:  {created} created, {completed} completed"),
            ];
            for day in s.per_day.iter().filter(|d| d.created + d.completed > 0) {
                out.push(format!("  {}  +{} created  {} completed", day.date, day.created, day.completed));
            }
            out.join("\n")
        });
    }

    /// One change, as `msctl watch` prints it: a line per event (JSON lines
    /// with --json), flushed at once so a pipe sees it immediately.
    pub fn event(&self, event: &ChangeEvent) {
        self.print_line(event, || {
            let kind = format!("{:?}", event.kind).to_lowercase();
            let what = event.id.as_deref().unwrap_or("-");
            let status = event.status.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
            let source = match event.source {
                EventSource::Request => String::new(),
                EventSource::OutsideEdit => {
                    format!("  [edited outside{}]", event.file.as_deref().map(|f| format!(": {f}")).unwrap_or_default())
                }
                EventSource::SharedDatabase => "  [shared database]".to_owned(),
            };
            let detail = event.detail.as_deref().map(|d| format!("  {d}")).unwrap_or_default();
            format!("{}  {kind:<18} {what}{status}{source}{detail}", event.timestamp)
        });
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }

    pub fn lagged(&self, missed: u64) {
        self.print_line(&serde_json::json!({ "lagged": missed }), || {
            format!("(fell behind: {missed} changes were not shown)")
        });
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }

    pub fn migrated(&self, report: &MigrationReport) {
        self.print_json_or(report, || {
            let db = report.database.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            if report.backup.is_empty() {
                // Nothing was copied: a root with no milestones joined a
                // shared database.
                return format!(
                    "joined the {}{db} backend, which holds {} milestones; nothing needed copying",
                    report.to, report.milestones
                );
            }
            let mut text = format!(
                "migrated {} milestones from {} to {}{db} in {:.1} s, every record verified; backup in {}",
                report.milestones,
                report.from,
                report.to,
                report.duration_ms as f64 / 1000.0,
                report.backup
            );
            // What happened to the YAML files, said plainly: in a git work
            // tree they are what the team shares.
            let (from_files, to_files) = (report.from != "database", report.to != "database");
            if from_files && !to_files {
                text.push_str(
                    "\nthe YAML files are being removed from .milestones/active/ and completed/ (the backup keeps \
                     them in milestones.tar; `msctl migrate status` shows the clean-up until it ends); in a git work \
                     tree, commit their removal, or `msctl migrate rollback` brings them back",
                );
            } else if !from_files && to_files {
                text.push_str(
                    "\nthe milestones are YAML files in .milestones/active/ and completed/ again; in a git work tree, \
                     `git add .milestones` tracks them",
                );
            }
            text
        });
    }

    /// `msctl backend`; `health` adds the database server's masked URL.
    pub fn backend(&self, info: &BackendInfo, health: Option<&DatabaseHealth>) {
        let mut value = serde_json::to_value(info).unwrap_or_default();
        if let Some(health) = health {
            value["url"] = health.url.clone().into();
        }
        self.print_json_or(&value, || {
            let db = info.database.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            let url = health.map(|h| format!(" at {}", h.url)).unwrap_or_default();
            format!(
                "{}{db}{url}: {} milestones in {} (socket {})",
                info.backend, info.milestones, info.root, info.socket
            )
        });
    }
}

/// The database server's part of `msctl health`.
fn database_lines(d: &DatabaseHealth) -> String {
    let figure = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let mut lines = vec![format!(
        "database: {} ({}{})",
        d.url,
        d.connection,
        if d.listening { ", hearing other daemons' changes" } else { ", not hearing other daemons' changes" }
    )];
    if let Some(error) = &d.error {
        lines.push(format!("  error: {error}"));
    }
    if let Some(version) = &d.server_version {
        lines.push(format!(
            "  server {version}: {} active of {} connections, cache hit ratio {}, {} lock(s) waiting, size {}, {} user(s) in the last hour",
            figure(d.active_connections),
            figure(d.total_connections),
            d.cache_hit_ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}%")),
            figure(d.locks_waiting),
            d.database_size_bytes.map_or_else(|| "-".to_owned(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
            figure(d.concurrent_users),
        ));
    }
    lines.join("\n")
}

fn text<'a>(doc: &'a Map, field: &str) -> &'a str {
    doc.get(field).and_then(Value::as_str).unwrap_or("")
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

/// A table: columns as wide as their widest cell, the last one cut to the
/// terminal's width; the `status` column, if any, in its colours.
fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]], status: Option<usize>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let before_last: usize = widths[..N - 1].iter().map(|w| w + 2).sum();
    let last = crate::terminal::width().map(|w| w.saturating_sub(before_last).max(10));
    let line = |cells: Vec<&str>, heading: bool| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let padded = if i + 1 == N {
                last.map_or_else(|| cell.to_string(), |width| crate::terminal::fit(cell, width))
            } else {
                format!("{cell:<w$}  ")
            };
            let styled = match (heading, status == Some(i)) {
                (true, _) => crate::terminal::paint(padded.trim_end(), "1") + &padded[padded.trim_end().len()..],
                (false, true) => crate::terminal::status(&padded),
                (false, false) => padded,
            };
            s.push_str(&styled);
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec(), true);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), false);
    }
}
