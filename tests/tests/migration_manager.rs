//! What `msctl migrate` shows besides moving: the plan of a dry run, and
//! the history of past migrations (manual, failed, and the scale
//! monitor's).

use milestones_e2e::Project;

#[test]
fn a_dry_run_shows_the_plan_and_moves_nothing() {
    let p = Project::new();
    let _d = p.start(&[]);
    for i in 0..3 {
        p.msctl(&["create", "--title", &format!("Milestone {i}")]).ok();
    }
    let plan = p.msctl(&["migrate", "database", "--dry-run", "--json"]).json();
    assert_eq!(
        (plan["from"].as_str(), plan["to"].as_str(), plan["database"].as_str()),
        (Some("file"), Some("database"), Some("sqlite"))
    );
    assert_eq!(plan["milestones"], 3);
    let steps: Vec<&str> = plan["steps"].as_array().unwrap().iter().filter_map(|s| s.as_str()).collect();
    assert!(steps.iter().any(|s| s.starts_with("copy 3 milestones into .milestones/enterprise.db")), "{steps:?}");
    assert!(steps.iter().any(|s| s.starts_with("verify every record")), "{steps:?}");
    assert!(steps.iter().any(|s| s.starts_with("remove the YAML files")), "{steps:?}");
    assert!(plan["estimate_ms"].as_u64().unwrap() > 0);
    let text = p.msctl(&["migrate", "hybrid", "--dry-run"]).ok().to_owned();
    assert!(text.contains("from file to hybrid") && text.contains("nothing was changed"), "{text}");
    assert_eq!(p.msctl(&["backend", "--json"]).json()["backend"], "file", "a dry run moves nothing");
    assert!(!p.milestones().join("backups").exists(), "nor backs up");
    p.msctl(&["migrate", "file", "--dry-run"]).fails(4, "already on the file backend");
}

#[test]
fn the_history_lists_completed_and_failed_migrations() {
    let p = Project::new();
    let _d = p.start(&[]);
    assert_eq!(p.msctl(&["migrate", "history"]).ok().trim(), "no migrations yet");
    p.msctl(&["create", "--id", "a", "--title", "A"]).ok();
    p.msctl(&["migrate", "hybrid"]).ok();
    // Something where the export would write a file is in the way:
    // refused. (A folder, which the database backend's watcher leaves
    // alone; a file dropped in would be imported and removed first.)
    p.msctl(&["migrate", "database"]).ok();
    // The hybrid backend's files go after the answer.
    p.wait_until_no_migration();
    std::fs::create_dir(p.milestones().join("active/a.yaml")).unwrap();
    assert_ne!(p.msctl(&["migrate", "file"]).code, 0);
    let history = p.msctl(&["migrate", "history", "--json"]).json();
    let records = history.as_array().unwrap();
    assert_eq!(records.len(), 3, "{history}");
    let outcome = |i: usize| (records[i]["from"].as_str(), records[i]["to"].as_str(), records[i]["outcome"].as_str());
    assert_eq!(outcome(0), (Some("file"), Some("hybrid"), Some("completed")));
    assert_eq!(outcome(1), (Some("hybrid"), Some("database"), Some("completed")));
    assert_eq!(outcome(2), (Some("database"), Some("file"), Some("failed")));
    assert_eq!(records[0]["milestones"], 1);
    assert!(records[0]["backup"].as_str().unwrap().starts_with(".milestones/backups/"), "{history}");
    assert!(records[2]["error"].as_str().unwrap().contains("already exists"), "{history}");
    let table = p.msctl(&["migrate", "history"]).ok().to_owned();
    assert!(table.contains("file → hybrid") && table.contains("failed"), "{table}");
}

#[test]
fn status_shows_a_migration_under_way_and_none_after() {
    let p = Project::new();
    milestones_e2e::corpus::generate(&p, 3_000);
    let _d = p.start(&[]);
    assert_eq!(p.msctl(&["migrate", "status"]).ok().trim(), "no migration in progress");
    let seen = std::thread::scope(|scope| {
        let migrating = scope.spawn(|| p.msctl(&["migrate", "database", "--json"]));
        let mut seen = None;
        while !migrating.is_finished() {
            let status = p.msctl(&["migrate", "status", "--json"]).json();
            if !status.is_null() {
                seen = Some(status);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(migrating.join().unwrap().json()["milestones"], 3_000);
        seen
    });
    let seen = seen.expect("the migration was seen under way");
    assert_eq!((seen["from"].as_str(), seen["to"].as_str()), (Some("file"), Some("database")), "{seen}");
    let phase = seen["phase"].as_str().unwrap();
    let phases = ["prepared", "backed_up", "copied", "caught_up", "verified", "switching", "switched"];
    let copying = phase.strip_prefix("copying ").and_then(|c| c.split_once(" of 3000"));
    assert!(phases.contains(&phase) || copying.is_some_and(|(n, _)| n.parse::<u32>().is_ok()), "{seen}");
    // Answered at the switch; the old backend's files go right after.
    let status = p.msctl(&["migrate", "status", "--json"]).json();
    assert!(status.is_null() || status["phase"] == "switched, removing what the old backend left", "{status}");
    p.wait_until_no_migration();
}

#[test]
fn a_migration_reports_its_steps_on_standard_error_as_it_goes() {
    let p = Project::new();
    milestones_e2e::corpus::generate(&p, 3_000);
    let _d = p.start(&[]);
    let run = p.msctl(&["migrate", "hybrid"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("migrated 3000 milestones from file to hybrid"), "{run:?}");
    // Not a terminal: a plain line per step seen.
    let steps: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("migration file → hybrid: ")).collect();
    assert!(!steps.is_empty(), "no progress shown: {run:?}");
    let quiet = p.msctl(&["migrate", "database", "--json"]);
    assert_eq!(quiet.code, 0);
    assert!(quiet.stderr.is_empty(), "--json keeps standard error quiet: {quiet:?}");
}

#[test]
fn rollback_returns_to_the_backend_and_the_backup_of_the_last_migration() {
    let p = Project::new();
    let d = p.start(&[]);
    p.msctl(&["migrate", "rollback"]).fails(4, "no migration to roll back");
    for (id, title) in [("a", "Alpha"), ("b", "Beta"), ("c", "Gamma")] {
        p.msctl(&["create", "--id", id, "--title", title]).ok();
    }
    let original = std::fs::read_to_string(p.milestones().join("active/a.yaml")).unwrap();
    let moved = p.msctl(&["migrate", "database"]).ok().to_owned();
    assert!(moved.contains("the YAML files are being removed") && moved.contains("milestones.tar"), "{moved}");
    p.wait_until_no_migration();
    assert!(!p.milestones().join("active/a.yaml").exists(), "the clean-up removed the files");
    let back = p.msctl(&["migrate", "rollback", "--json"]).json();
    assert_eq!(
        (back["from"].as_str(), back["to"].as_str(), back["milestones"].as_u64()),
        (Some("database"), Some("file"), Some(3))
    );
    assert_eq!(p.msctl(&["backend", "--json"]).json()["backend"], "file");
    assert_eq!(std::fs::read_to_string(p.milestones().join("active/a.yaml")).unwrap(), original);

    // A change made since the backup is not thrown away unasked.
    p.msctl(&["migrate", "hybrid"]).ok();
    p.msctl(&["update", "b", "--set", "title=Beta, renamed"]).ok();
    p.msctl(&["create", "--id", "d", "--title", "Delta"]).ok();
    let refused = p.msctl(&["migrate", "rollback"]);
    refused.fails(4, "2 milestone(s) changed since the backup");
    assert!(refused.stderr.contains("first `b`") && refused.stderr.contains("--discard-changes"), "{refused:?}");
    assert_eq!(p.msctl(&["backend", "--json"]).json()["backend"], "hybrid", "a refused rollback moves nothing");
    let backups = std::fs::read_dir(p.milestones().join("backups")).unwrap().count();

    p.msctl(&["migrate", "rollback", "--discard-changes"]).ok();
    assert_eq!(p.msctl(&["backend", "--json"]).json()["backend"], "file");
    assert_eq!(p.msctl(&["get", "b", "--json"]).json()["title"], "Beta");
    p.msctl(&["get", "d"]).fails(3, "d");
    assert!(!p.milestones().join("active/d.yaml").exists());
    // The discarded changes are in the backup the way back took.
    assert_eq!(std::fs::read_dir(p.milestones().join("backups")).unwrap().count(), backups + 1);
    drop(d);
}
