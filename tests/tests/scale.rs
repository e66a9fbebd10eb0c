//! The scale monitor in the real daemon, with a one-second interval: its
//! figures and dashboard, its logs, the notification when it may not act,
//! and automatic migrations as a project grows past its thresholds.

use std::time::Duration;

use milestones_e2e::Project;
use serde_json::Value;

/// Small thresholds, a monitor every second, and a confidence threshold a
/// project an hour old can reach (time on the backend counts for nothing
/// yet, and fast queries count against).
fn config(auto_migrate: bool, delay_seconds: u64) -> String {
    format!(
        "storage:\n  thresholds:\n    milestone_count: {{file_to_hybrid: 5, hybrid_to_database: 10}}\n  \
         migration:\n    auto_migrate: {auto_migrate}\n    migration_delay_seconds: {delay_seconds}\n  \
         monitoring:\n    interval_seconds: 1\n    confidence_threshold: 1\n"
    )
}

fn project(config: &str) -> Project {
    let p = Project::new();
    p.write(".milestones/config/storage-config.yaml", config);
    p
}

fn create(p: &Project, n: usize, from: usize) {
    for i in from..from + n {
        p.msctl(&["create", "--id", &format!("m-{i:02}"), "--title", &format!("Milestone {i}")]).ok();
    }
}

fn eventually(what: &str, check: impl FnMut() -> bool) {
    milestones_e2e::eventually(what, Duration::from_secs(30), check);
}

fn lines(p: &Project, log: &str) -> Vec<Value> {
    std::fs::read_to_string(p.milestones().join("logs").join(log))
        .unwrap_or_default()
        .lines()
        // A line the daemon is still appending is read on the next look.
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn events(p: &Project) -> Vec<String> {
    lines(p, "scale-events.jsonl").iter().map(|e| e["event"].as_str().unwrap_or_default().to_owned()).collect()
}

fn backend(p: &Project) -> String {
    let info = p.msctl(&["backend", "--json"]).json();
    format!(
        "{}{}",
        info["backend"].as_str().unwrap(),
        info["database"].as_str().map(|d| format!("/{d}")).unwrap_or_default()
    )
}

#[test]
fn the_dashboard_and_the_logs_show_what_the_monitor_measures() {
    let p = project(&config(true, 3600));
    let _d = p.start(&[]);
    create(&p, 3, 0);
    p.msctl(&["list"]).ok();
    // A cycle's figures are logged first, then its decision.
    eventually("a cycle has run", || events(&p).len() >= 2);
    let report = p.msctl(&["scale", "--json"]).json();
    assert_eq!((report["current_backend"].as_str(), report["optimal_backend"].as_str()), (Some("file"), Some("file")));
    assert_eq!(report["status"], "optimal", "{report}");
    assert_eq!(report["metrics"]["milestones"], 3);
    assert_eq!(report["metrics"]["concurrent_users"], 1, "{report}");
    assert!(report["metrics"]["complexity_score"].as_f64().unwrap() >= 6.0, "{report}");
    let create_latency = report["metrics"]["latencies"].as_array().unwrap().iter().find(|l| l["request"] == "create");
    assert_eq!(create_latency.expect("create is measured")["count"], 3, "{report}");
    assert_eq!(report["thresholds"]["file_to_hybrid_milestones"], 5);
    let metrics = lines(&p, "performance-metrics.jsonl");
    let last = metrics.last().unwrap();
    assert_eq!(last["backend"], "file");
    assert_eq!(last["scale"]["milestone_count"], 3, "{last}");
    assert!(last["performance"]["avg_write_time_ms"].as_f64().unwrap() > 0.0, "{last}");
    assert_eq!(events(&p)[..2], ["scale_detection_initialized", "scale_optimal"]);
    let dashboard = p.msctl(&["scale"]).ok().to_owned();
    for needle in
        ["Current Storage Backend: file", "Migration Status: OPTIMAL", "File → Hybrid: 5 milestones", "scale_optimal"]
    {
        assert!(dashboard.contains(needle), "{needle}: {dashboard}");
    }
}

#[test]
fn a_growing_project_moves_from_files_to_hybrid_to_the_database_by_itself() {
    let p = project(&config(true, 0));
    let _d = p.start(&[]);
    create(&p, 6, 0);
    eventually("the project is on hybrid", || backend(&p) == "hybrid");
    create(&p, 6, 6);
    eventually("the project is on the database", || backend(&p) == "database/sqlite");
    assert_eq!(p.msctl(&["list", "--json"]).json().as_array().unwrap().len(), 12, "nothing lost on the way");
    // The decision is logged once the migration has returned, a moment
    // after the new backend serves.
    let completions = || events(&p).iter().filter(|e| *e == "auto_migration_completed").count();
    eventually("both migrations are logged", || completions() == 2);
    let completed: Vec<Value> =
        lines(&p, "scale-events.jsonl").into_iter().filter(|e| e["event"] == "auto_migration_completed").collect();
    assert_eq!(completed[0]["details"]["report"]["to"], "hybrid");
    assert_eq!(completed[1]["details"]["report"]["to"], "database");
    assert_eq!(completed[1]["details"]["report"]["milestones"], 12);
    // And the history says who moved it.
    let history = p.msctl(&["migrate", "history", "--json"]).json();
    let by: Vec<&str> = history.as_array().unwrap().iter().filter_map(|r| r["by"].as_str()).collect();
    assert_eq!(by, ["milestoned (scale monitor)", "milestoned (scale monitor)"], "{history}");
}

#[test]
fn without_auto_migrate_a_notification_is_written_and_nothing_moves() {
    let p = project(&config(false, 0));
    let _d = p.start(&[]);
    create(&p, 6, 0);
    let file = p.milestones().join("config/migration-notification.yaml");
    eventually("the notification is written", || file.exists());
    let text = std::fs::read_to_string(&file).unwrap();
    let notice: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(notice["migration_recommendation"]["current_backend"].as_str(), Some("file"), "{text}");
    assert_eq!(notice["migration_recommendation"]["recommended_backend"].as_str(), Some("hybrid"), "{text}");
    assert_eq!(notice["actions"]["manual_command"].as_str(), Some("msctl migrate hybrid"), "{text}");
    assert_eq!(notice["metrics"]["milestone_count"].as_u64(), Some(6), "{text}");
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(backend(&p), "file");
    let seen = events(&p);
    assert!(
        seen.contains(&"migration_notification".to_owned()) && !seen.iter().any(|e| e.starts_with("auto_")),
        "{seen:?}"
    );
    let report = p.msctl(&["scale", "--json"]).json();
    assert_eq!((report["status"].as_str(), report["optimal_backend"].as_str()), (Some("recommended"), Some("hybrid")));
}

#[test]
fn edited_thresholds_count_from_the_next_cycle() {
    let p = project(&config(false, 0));
    let _d = p.start(&[]);
    create(&p, 3, 0);
    eventually("a cycle has run", || !lines(&p, "performance-metrics.jsonl").is_empty());
    assert_eq!(p.msctl(&["scale", "--json"]).json()["optimal_backend"], "file");
    // No SIGHUP: the monitor notices the file changed.
    p.write(
        ".milestones/config/storage-config.yaml",
        &config(false, 0).replace("file_to_hybrid: 5", "file_to_hybrid: 2"),
    );
    eventually("the new threshold is used", || {
        let report = p.msctl(&["scale", "--json"]).json();
        report["thresholds"]["file_to_hybrid_milestones"] == 2 && report["optimal_backend"] == "hybrid"
    });
}

#[test]
fn the_grace_period_and_a_milestone_that_forbids_it_hold_the_migration() {
    // A grace period of an hour: recommended, held, not moved.
    let p = project(&config(true, 3600));
    let _d = p.start(&[]);
    create(&p, 6, 0);
    eventually("the migration is held", || events(&p).contains(&"migration_held".to_owned()));
    let held = lines(&p, "scale-events.jsonl").into_iter().find(|e| e["event"] == "migration_held").unwrap();
    assert!(held["details"]["waiting_for"].as_str().unwrap().contains("grace period"), "{held}");
    assert_eq!(backend(&p), "file");

    // No grace, but one milestone says no.
    let q = project(&config(true, 0));
    let _e = q.start(&[]);
    q.msctl_with_input(
        &["create", "--from-file", "-"],
        Some("id: keep-files\ntitle: Stays on files\nstorage:\n  backend:\n    allow_auto_migration: false\n"),
    )
    .ok();
    create(&q, 5, 0);
    eventually("the migration is held", || events(&q).contains(&"migration_held".to_owned()));
    let held = lines(&q, "scale-events.jsonl").into_iter().find(|e| e["event"] == "migration_held").unwrap();
    assert!(held["details"]["waiting_for"].as_str().unwrap().contains("allow_auto_migration"), "{held}");
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(backend(&q), "file");
}

#[test]
fn in_a_git_work_tree_the_files_stay_unless_the_configuration_lets_the_database_take_them() {
    let p = project(&config(true, 0));
    std::fs::create_dir(p.root.join(".git")).unwrap();
    let _d = p.start(&[]);
    create(&p, 12, 0);
    // Hybrid keeps the YAML files: that move is made.
    eventually("the project is on hybrid", || backend(&p) == "hybrid");
    let held = || {
        lines(&p, "scale-events.jsonl").iter().any(|e| {
            e["event"] == "migration_held" && e["details"]["waiting_for"].as_str().is_some_and(|w| w.contains("git"))
        })
    };
    eventually("the move to the database is held", held);
    assert_eq!(backend(&p), "hybrid");
    let files = std::fs::read_dir(p.milestones().join("active")).unwrap().count();
    assert_eq!(files, 12, "the tracked YAML files are all there");

    let allowed = config(true, 0)
        .replace("migration_delay_seconds: 0\n", "migration_delay_seconds: 0\n    database_in_git: true\n");
    p.write(".milestones/config/storage-config.yaml", &allowed);
    eventually("the project is on the database", || backend(&p) == "database/sqlite");
    assert_eq!(p.msctl(&["list", "--json"]).json().as_array().unwrap().len(), 12, "nothing lost on the way");
}
